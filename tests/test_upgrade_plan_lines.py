"""Every refusal of `provision upgrade`'s plan, read as the whole line the operator sees.

The plan's tests elsewhere check that a refusal names the problem (substrings); these compare
the complete `error: ...: fix` line, so a reworded, truncated or case-changed message or fix
fails here (issue 20: such changes left every fast test green)."""

from __future__ import annotations

import pytest
from test_ops_upgrade_plan import DERIVED, current, refused

from provision.ops.upgrade_plan import make_plan

RESTORE = "(`provision restore FILE --replace`)"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            (current(6), "v5.1.0", None),
            "glitchtip/glitchtip:v5.1.0 is GlitchTip 5, older than the GlitchTip 6 this "
            "database was migrated by; migrations cannot be undone: stay on GlitchTip 6, or "
            f"restore a backup taken before the upgrade {RESTORE}",
        ),
        (
            (current(6, server_version="6.2.8"), "6.2.7", None),
            "glitchtip/glitchtip:6.2.7 is older than GlitchTip 6.2.8, which this database was "
            "migrated by; migrations cannot be undone: choose the running version or a newer "
            f"one, or restore a backup taken before that upgrade {RESTORE}",
        ),
        (  # no version from the server: the image the settings name stands for it
            (
                current(6, server_version=None, glitchtip_image="glitchtip/glitchtip:6.2.8"),
                "6.2.7",
                None,
            ),
            "glitchtip/glitchtip:6.2.7 is older than GlitchTip glitchtip/glitchtip:6.2.8, which "
            "this database was migrated by; migrations cannot be undone: choose the running "
            f"version or a newer one, or restore a backup taken before that upgrade {RESTORE}",
        ),
        (
            (current(6), None, "17"),
            "--postgres postgres:17 is Postgres 17, older than the running Postgres 18, which "
            "cannot be read by it: give Postgres 18 or newer",
        ),
        (
            (current(6, postgres_major=13, postgres_image="postgres:13.1"), None, "13.2"),
            "Postgres 13 is older than 14: use Postgres 14 or newer",
        ),
        (
            (current(6), "9.0.0", None),
            "--to 'glitchtip/glitchtip:9.0.0' is GlitchTip 9, which this kit does not know: use "
            "a GlitchTip 5 or 6 image (or update the kit)",
        ),
        (
            (current(6), "stable", None),
            "--to 'glitchtip/glitchtip:stable' has no version in its tag, so its GlitchTip "
            "major is unknown: use an image whose tag starts with the version (e.g. "
            "glitchtip/glitchtip:6.2.7)",
        ),
        (
            (current(6), "glitchtip/glitchtip:6.2", None),
            "--to glitchtip/glitchtip:6.2 is a floating tag: it moves to whatever release is "
            "newest: give a release tag (e.g. 6.2.7) or a digest (name@sha256:...), as for latest",
        ),
        (
            (current(6), " ", None),
            "--to is empty: give a version (6.2.7) or an image (name:tag)",
        ),
    ],
    ids=[
        "older-major",
        "older-than-the-server",
        "older-than-the-image",
        "older-postgres",
        "postgres-below-minimum",
        "unknown-major",
        "no-version",
        "floating-tag",
        "empty",
    ],
)
def test_each_refusal_is_one_whole_line(args, line):
    assert refused(*args) == line


def test_the_partman_refusal_spells_out_the_way_to_leave_it():
    assert refused(current(5, partman=True), "6.2.6", None) == (
        "this deployment uses pg_partman advanced partitioning: GlitchTip 6 has no pg_partman "
        "support and GlitchTip ships no way to convert a pg_partman database; to leave it: "
        "1) `provision backup` here and keep the archive; 2) deploy GlitchTip 6 in a new "
        "directory without advanced partitioning (`provision up --major 6`, another "
        "compose_project_name and http_port); 3) `provision create-project` there and point "
        "your apps at its DSN; 4) keep this deployment until its events expire, then "
        "`provision down --volumes` here"
    )


@pytest.mark.parametrize(
    ("name", "source", "variable", "args"),
    [
        ("glitchtip_image", "environment", "GLITCHTIP_KIT_GLITCHTIP_IMAGE", ("6.2.7", None)),
        ("glitchtip_major", "option", "GLITCHTIP_KIT_MAJOR", ("6.2.6", None)),
        ("postgres_image", "environment", "GLITCHTIP_KIT_POSTGRES_IMAGE", (None, "18.2")),
        ("postgres_version", "environment", "GLITCHTIP_KIT_POSTGRES_VERSION", (None, "19.1")),
        ("postgres_data_path", "environment", "GLITCHTIP_KIT_POSTGRES_DATA_PATH", (None, "19.1")),
    ],
)
def test_a_setting_the_environment_would_override_is_refused_whole(name, source, variable, args):
    major = 5 if name == "glitchtip_major" else 6
    state = current(major, sources={**DERIVED, name: source})
    assert refused(state, *args) == (
        f"{name} is set by the environment variable {variable}, which would override the "
        f"upgraded value in glitchtip.yaml: unset {variable} (keep the value in glitchtip.yaml), "
        "then run the upgrade again"
    )


def test_the_postgres_note_of_a_major_upgrade_is_whole():
    assert make_plan(current(5), "6.2.6", None).notes == [
        "Postgres stays 17; GlitchTip 6's default is 18: `provision upgrade --postgres 18.1` "
        "moves the database (dump and restore into a new volume) when you choose"
    ]
