"""The upgrade plan: which steps and settings for which transition, and every refusal."""

from __future__ import annotations

import pytest

from provision.errors import UsageError
from provision.ops.upgrade_plan import (
    POSTGRES_VOLUME_KEY,
    Current,
    image_parts,
    is_older,
    make_plan,
    version_key,
)

DERIVED = {
    "glitchtip_image": "derived",
    "postgres_image": "derived",
    "valkey_image": "derived",
    "postgres_version": "derived",
    "postgres_data_path": "derived",
    "glitchtip_major": "file",
}


def current(major: int = 5, **changes) -> Current:
    values = {
        "major": major,
        "glitchtip_image": "glitchtip/glitchtip:v5.1.0"
        if major == 5
        else "glitchtip/glitchtip:6.2.6",
        "postgres_image": "postgres:17.7" if major == 5 else "postgres:18.1",
        "postgres_major": 17 if major == 5 else 18,
        "valkey_image": "valkey/valkey:8.1" if major == 5 else "valkey/valkey:9.0",
        "partman": False,
        "compose_project_name": "glitchtip",
        "postgres_volume": "glitchtip_postgres-data",
        "server_version": "5.1.0" if major == 5 else "6.2.6",
        "sources": dict(DERIVED),
    }
    values.update(changes)
    return Current(**values)


def refused(*args, **kwargs) -> str:
    with pytest.raises(UsageError) as caught:
        make_plan(*args, **kwargs)
    assert caught.value.exit_code == 2
    return caught.value.line()


# --- parsing ---


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("6.2.6", (6, 2, 6)),
        ("v5.1.0", (5, 1, 0)),
        ("5.1.1-standin", (5, 1, 1)),
        ("5-snapshot+c264800", (5,)),  # the recorded real GlitchTip 5's /api/settings/ version
        ("6", (6,)),
        ("stable", None),
        (None, None),
    ],
)
def test_version_key(text, key):
    assert version_key(text) == key


def test_is_older_compares_what_both_name():
    assert is_older((6, 2, 5), (6, 2, 6))
    assert not is_older((6, 2, 7), (6, 2, 6))
    assert not is_older((6,), (6, 2, 6))  # a floating major tag is not a downgrade
    assert is_older((5,), (6, 2, 6))


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("glitchtip/glitchtip:6.2.6", ("glitchtip/glitchtip", "6.2.6")),
        ("registry.local:5000/glitchtip:6.2.6", ("registry.local:5000/glitchtip", "6.2.6")),
        ("registry.local:5000/glitchtip", ("registry.local:5000/glitchtip", None)),
        ("glitchtip/glitchtip@sha256:" + "a" * 64, ("glitchtip/glitchtip", None)),
    ],
)
def test_image_parts(image, parts):
    assert image_parts(image) == parts


# --- transitions ---


def test_same_major_tag_upgrade_keeps_the_repository_and_touches_only_the_image():
    plan = make_plan(
        current(6, glitchtip_image="mirror.local:5000/gt/glitchtip:6.2.6"), "6.2.7", None
    )
    assert plan.glitchtip_image == "mirror.local:5000/gt/glitchtip:6.2.7"
    assert plan.major == 6
    assert plan.settings == {"glitchtip_image": "mirror.local:5000/gt/glitchtip:6.2.7"}
    assert plan.env == {}
    assert plan.steps() == ["preflight", "pull", "stop", "backup", "settings", "start", "verify"]


def test_major_upgrade_pins_the_derived_postgres_and_valkey_and_notes_the_postgres_step():
    plan = make_plan(current(5), "6.2.6", None)
    assert plan.major == 6 and plan.glitchtip_image == "glitchtip/glitchtip:6.2.6"
    # 6's defaults (postgres:18.1 on a 17 volume, valkey 9) must not slip in with the major.
    assert plan.settings == {
        "glitchtip_image": "glitchtip/glitchtip:6.2.6",
        "glitchtip_major": 6,
        "postgres_image": "postgres:17.7",
        "valkey_image": "valkey/valkey:8.1",
    }
    assert not plan.postgres_upgrade and "postgres" not in plan.steps()
    assert plan.notes == [
        "Postgres stays 17; GlitchTip 6's default is 18: `provision upgrade --postgres 18.1` "
        "moves the database (dump and restore into a new volume) when you choose"
    ]


def test_major_upgrade_leaves_images_the_operator_set_alone():
    sources = {**DERIVED, "postgres_image": "file", "valkey_image": "file"}
    plan = make_plan(current(5, sources=sources), "6.2.6", None)
    assert set(plan.settings) == {"glitchtip_image", "glitchtip_major"}


def test_major_and_postgres_upgrade_in_one_run():
    plan = make_plan(current(5), "6.2.6", "18.1")
    assert (plan.glitchtip_image, plan.major) == ("glitchtip/glitchtip:6.2.6", 6)
    assert plan.postgres_image == "postgres:18.1" and plan.postgres_major == 18
    assert plan.settings["postgres_image"] == "postgres:18.1"
    assert plan.env == {POSTGRES_VOLUME_KEY: "glitchtip_postgres-18"}
    assert plan.new_volume == "glitchtip_postgres-18"
    assert plan.steps() == [
        "preflight", "pull", "stop", "backup", "settings", "postgres", "start", "verify"
    ]  # fmt: skip
    assert not plan.notes


def test_postgres_only_upgrade_writes_an_explicit_data_path_and_version():
    sources = {**DERIVED, "postgres_version": "file", "postgres_data_path": "file"}
    plan = make_plan(
        current(6, postgres_image="pg:17", postgres_major=17, sources=sources), None, "18"
    )
    assert plan.glitchtip_image == "glitchtip/glitchtip:6.2.6" and not plan.glitchtip_changes
    assert plan.settings == {
        "postgres_image": "pg:18",
        "postgres_version": 18,
        "postgres_data_path": "/var/lib/postgresql",
    }
    assert "postgres" in plan.steps()


def test_postgres_upgrade_moves_a_partman_image_set_in_the_file_along():
    sources = {**DERIVED, "partman_image": "file", "postgres_image": "file"}
    same = current(
        6, postgres_image="pg:17", postgres_major=17, partman_image="pg:17", sources=sources
    )
    assert make_plan(same, None, "18").settings["partman_image"] == "pg:18"
    other = current(
        6, postgres_image="pg:17", postgres_major=17, partman_image="p:17", sources=sources
    )
    assert make_plan(other, None, "18").settings["partman_image"] == (
        "ghcr.io/dbsystel/postgresql-partman:18-5"
    )


def test_postgres_only_keeps_glitchtip_as_it_is():
    plan = make_plan(current(5, server_version="5.2.0"), None, "18.2")
    assert plan.glitchtip_image == "glitchtip/glitchtip:v5.1.0" and not plan.glitchtip_changes
    assert "glitchtip_image" not in plan.settings and plan.postgres_upgrade
    assert plan.settings == {"postgres_image": "postgres:18.2"}
    # Not even to the kit's pin of its major: a GlitchTip older than the pin stays as it is.
    behind = current(6, glitchtip_image="glitchtip/glitchtip:6.2.5", server_version="6.2.5")
    plan = make_plan(behind, None, "18.2")
    assert (plan.glitchtip_image, plan.glitchtip_changes) == ("glitchtip/glitchtip:6.2.5", False)
    assert plan.settings == {"postgres_image": "postgres:18.2"}


def test_a_new_postgres_image_of_the_same_major_needs_no_dump():
    plan = make_plan(current(6), None, "18.2")
    assert plan.settings == {"postgres_image": "postgres:18.2"} and plan.env == {}
    assert not plan.postgres_upgrade and not plan.nothing_to_do
    assert plan.steps() == ["preflight", "pull", "stop", "backup", "settings", "start", "verify"]


def test_without_to_the_kits_pin_of_the_current_major_and_nothing_to_do_when_there():
    plan = make_plan(current(6), None, None)
    assert plan.nothing_to_do and plan.steps() == ["preflight"] and plan.settings == {}
    older = make_plan(
        current(6, glitchtip_image="glitchtip/glitchtip:6.2.5", server_version="6.2.5"), None, None
    )
    assert older.glitchtip_image == "glitchtip/glitchtip:6.2.6"


# --- refusals ---


def test_downgrade_of_the_major_is_refused():
    line = refused(current(6), "v5.1.0", None)
    assert "GlitchTip 5, older than the GlitchTip 6" in line and "provision restore" in line


def test_downgrade_below_what_migrated_the_database_is_refused():
    # The image setting says 6.2.6 but the server reports 6.2.8: the database is 6.2.8's.
    line = refused(current(6, server_version="6.2.8"), "6.2.7", None)
    assert "older than GlitchTip 6.2.8" in line


def test_unknown_major_and_unversioned_images_are_refused():
    assert "GlitchTip 9, which this kit does not know" in refused(current(6), "9.0.0", None)
    assert "has no version in its tag" in refused(current(6), "stable", None)
    assert "is not an image reference" in refused(current(6), "Not An Image!", None)
    assert "is not pinned" in refused(current(6), "glitchtip/glitchtip:latest", None)


def test_partman_deployment_is_refused_with_the_steps_to_leave_it():
    line = refused(current(5, partman=True), "6.2.6", None)
    assert "pg_partman" in line and "provision backup" in line and "create-project" in line
    # A same-major upgrade of a partman deployment is fine.
    assert make_plan(current(5, partman=True), "v5.1.1", None).major == 5


def test_a_postgres_image_without_a_major_in_its_tag_is_refused_with_the_fix():
    assert refused(current(6), None, "postgres:stable") == (
        "--postgres 'postgres:stable' has no major version in its tag: use an image whose tag "
        "starts with the major (e.g. postgres:18.1)"
    )


def test_older_postgres_is_refused():
    line = refused(current(6), None, "17")
    assert "older than the running Postgres 18, which cannot be read by it" in line
    assert line.endswith("which cannot be read by it: give Postgres 18 or newer")


def test_a_setting_the_environment_overrides_is_refused():
    sources = {**DERIVED, "glitchtip_image": "environment"}
    line = refused(
        current(6, glitchtip_image="glitchtip/glitchtip:6.2.5", sources=sources), "6.2.6", None
    )
    assert "GLITCHTIP_KIT_GLITCHTIP_IMAGE" in line and "unset" in line
