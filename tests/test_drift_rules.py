"""Drift's dependency rules in isolation: which one-shots `up` must run again."""

from __future__ import annotations

from provision.stack.drift import dependencies, drift, one_shots, rerun_needed

DONE = {"condition": "service_completed_successfully"}
HEALTHY = {"condition": "service_healthy"}
SERVICES = {
    "postgres": {},
    "valkey": {},
    "migrate": {"depends_on": {"postgres": HEALTHY}},
    "web": {"depends_on": {"migrate": DONE, "valkey": HEALTHY}},
    "worker": {"depends_on": {"migrate": DONE}},
}


def test_dependencies_are_followed_through_other_services():
    chain = {"a": {"depends_on": {"b": HEALTHY}}, "b": {"depends_on": ["c"]}, "c": {}}
    assert dependencies(chain, "a") == {"b", "c"}
    assert dependencies(SERVICES, "web") == {"migrate", "valkey", "postgres"}
    assert dependencies(SERVICES, "postgres") == set()


def test_a_dependency_outside_the_files_is_named_not_a_crash():
    """An external service (`depends_on` of a name the files do not define) ends the walk."""
    assert dependencies({"web": {"depends_on": {"db": HEALTHY}}}, "web") == {"db"}
    assert dependencies({}, "web") == set()


def test_the_one_shots_run_again_unless_they_and_all_they_need_are_current():
    assert one_shots(SERVICES) == {"migrate"}
    assert rerun_needed(SERVICES, {"migrate", "postgres"}) is False  # exactly what it needs
    assert rerun_needed(SERVICES, {"migrate", "postgres", "web", "valkey"}) is False
    assert rerun_needed(SERVICES, {"migrate"}) is True  # postgres was recreated
    assert rerun_needed(SERVICES, {"postgres", "web"}) is True  # a new image for migrate
    assert rerun_needed({"web": {}}, set()) is False  # no one-shot at all


def test_nothing_to_compare_is_said_in_words():
    assert drift({}, {}, {}, []) == ["the rendered files name no service to compare"]


def container(service, state="running", health=None, exit_code=None):
    from provision.runtime.engine import ContainerState

    return ContainerState(
        f"gt-{service}-1", service, "gt", state, health, exit_code, "img", (), "sha256:a",
        config_hash="h",
    )  # fmt: skip


def test_every_service_is_judged_even_after_one_without_a_container():
    services = {"postgres": {"image": "img"}, "web": {"image": "img"}}
    found = drift(
        services, {"postgres": "h", "web": "h"}, {"img": "sha256:a"},
        [container("web", state="")],
    )  # fmt: skip
    assert found == ["postgres has no container", "web is not started"]
    one_shot = {
        "migrate": {"image": "img"},
        "web": {"depends_on": {"migrate": DONE}, "image": "img"},
    }
    found = drift(
        one_shot, {"migrate": "h", "web": "h"}, {"img": "sha256:a"},
        [container("migrate", state=""), container("web")],
    )  # fmt: skip
    assert found == ["migrate is not started"]
