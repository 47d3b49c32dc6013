"""profile minimal on a real engine: GlitchTip's all-in-one through `provision up`.

The stand-in copies the official images' all-in-one: 6's bin/start.sh with SERVER_ROLE=all_in_one
runs bin/run-all-in-one.sh (web with the worker embedded; with VALKEY_URL="" the tasks go
through Postgres, django-vtasks' database backend); 5's bin/run-all-in-one.sh runs app.py (web,
Celery worker and beat in one process, Valkey as broker). Each test: up, an event through the
DSN processed by the in-process worker, a second up that changes nothing, down, up.
"""

from __future__ import annotations

import json

import pytest
from test_up_stack import Deployment, send_event, wait_for_issue

pytestmark = pytest.mark.stack


@pytest.fixture
def deploy(tmp_path, stack_env):
    made: list[Deployment] = []

    def make(major: int, profile: str = "minimal") -> Deployment:
        directory = tmp_path / f"gt{major}-{profile}"
        directory.mkdir(exist_ok=True)
        deployment = Deployment(directory, major, stack_env.images)
        with (directory / "glitchtip.yaml").open("a") as settings:
            settings.write(f"profile: {profile}\n")
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.teardown()


def services(deployment: Deployment) -> set[str]:
    """The services that have a container, from the container names (<project>-<svc>-1)."""
    prefix = f"{deployment.project}-"
    return {name[len(prefix) :].rsplit("-", 1)[0] for name in deployment.container_ids()}


def set_profile(deployment: Deployment, profile: str) -> None:
    path = deployment.directory / "glitchtip.yaml"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("profile:")]
    path.write_text("\n".join([*lines, f"profile: {profile}"]) + "\n")


@pytest.mark.parametrize(("major", "expected"), [(6, set()), (5, {"valkey"})])
def test_minimal_up_event_second_up_down_up(deploy, major, expected):
    gt = deploy(major)
    first = gt.provision("up")
    assert "DSN:" in first.stdout
    assert services(gt) == {"postgres", "migrate", "web"} | expected
    dsn = gt.dsn()
    from secret_check import assert_no_secret_in_containers  # issue 18

    assert_no_secret_in_containers(gt.directory, gt.project, {"postgres", "migrate", "web"})

    message = f"kit minimal stack test {major}"
    send_event(dsn, gt.port, message)
    seconds = wait_for_issue(gt, "glitchtip", "default", message)
    print(f"event processed by the all-in-one after {seconds:.1f} s")
    logs = gt.provision("logs", "web", "--tail", "200").stdout
    assert "stand-in worker" in logs  # processed inside web: there is no worker container
    verified = gt.provision("verify")  # services, health, an event through the DSN processed
    assert "event" in verified.stdout
    status = json.loads(gt.provision("status", "--json").stdout)
    assert status["up"] is True, status

    ids = gt.container_ids()
    second = gt.up_json()
    changed = [(s["name"], s.get("detail")) for s in second["steps"] if s.get("changed")]
    assert second["ok"] is True and changed == [], changed
    assert gt.container_ids() == ids

    volumes = gt.volumes()
    gt.provision("down")
    assert gt.container_ids() == {}
    assert gt.volumes() == volumes
    again = gt.provision("up")
    assert "DSN:" in again.stdout and gt.dsn() == dsn
    wait_for_issue(gt, "glitchtip", "default", message)  # the data survived
    send_event(dsn, gt.port, message + " after restart")
    wait_for_issue(gt, "glitchtip", "default", message + " after restart")


def test_switch_standard_to_minimal_keeps_data_and_retires_worker_and_valkey(deploy):
    gt = deploy(6, profile="standard")
    gt.provision("up")
    assert {"valkey", "worker"} <= services(gt)
    dsn = gt.dsn()
    send_event(dsn, gt.port, "before the switch")
    wait_for_issue(gt, "glitchtip", "default", "before the switch")

    set_profile(gt, "minimal")
    switched = gt.provision("up")
    assert "removed valkey and worker of profile standard" in switched.stdout
    assert services(gt) == {"postgres", "migrate", "web"}
    assert gt.dsn() == dsn  # same database, same project and key
    wait_for_issue(gt, "glitchtip", "default", "before the switch")
    send_event(dsn, gt.port, "after the switch")
    wait_for_issue(gt, "glitchtip", "default", "after the switch")

    set_profile(gt, "standard")  # and back: Compose brings worker and valkey again
    gt.provision("up")
    assert {"valkey", "worker"} <= services(gt)
    send_event(dsn, gt.port, "back on standard")
    wait_for_issue(gt, "glitchtip", "default", "back on standard")
