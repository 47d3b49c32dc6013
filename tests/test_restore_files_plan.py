"""The files restore plans, read whole: the archive's `.env` with this host's keys and identity,
the archive's glitchtip.yaml with its identity commented out, the notes saying so, a
`.glitchtiprc` that is no INI file refused in one line, and the modes the plan writes.

test_hostile_restore.py checks these through whole restores by parts of the text (issue 20:
`plan_files`, `_env_without_identity` and `_yaml_without_identity` kept surviving mutants)."""

from __future__ import annotations

import stat

import pytest

from provision.errors import UsageError
from provision.ops.restore_files import apply_files, plan_files

ARCHIVED_ENV = (
    "SECRET_KEY=a\nGLITCHTIP_KIT_HTTP_PORT=9999\nPOSTGRES_PASSWORD=old\nGLITCHTIP_KIT_MAJOR=5\n"
)
NOTE_END = "(the archive's with --archived-identity)"


def test_a_new_host_takes_the_archives_files_without_their_identity(tmp_path):
    yaml_text = "# mine\nbind_address: 0.0.0.0\nhttp_port: 9999\nglitchtip_major: 5"
    plan = plan_files(tmp_path, {"glitchtip.yaml": yaml_text, ".env": ARCHIVED_ENV}, new_host=True)
    assert plan.contents == {
        # a new host: the archive's password and major; the port emptied (not recorded)
        ".env": "SECRET_KEY=a\nGLITCHTIP_KIT_HTTP_PORT=\nPOSTGRES_PASSWORD=old\n"
        "GLITCHTIP_KIT_MAJOR=5\n",
        "glitchtip.yaml": "# mine\n"
        "# bind_address: 0.0.0.0  # left out by restore (this host's identity)\n"
        "# http_port: 9999  # left out by restore (this host's identity)\n"
        "glitchtip_major: 5",  # no newline added where the archive had none
    }
    assert plan.notes == [
        f"kept this host's GLITCHTIP_KIT_HTTP_PORT {NOTE_END}",
        "left out the archive's bind_address, http_port from glitchtip.yaml (this host's "
        "defaults; the archive's with --archived-identity)",
    ]
    assert plan.current == {}


def test_an_existing_host_keeps_its_password_major_volume_and_identity(tmp_path):
    host_env = (
        "SECRET_KEY=b\nGLITCHTIP_KIT_HTTP_PORT=8000\nPOSTGRES_PASSWORD=host\n"
        "GLITCHTIP_KIT_MAJOR=6\nGLITCHTIP_KIT_BIND_ADDRESS=127.0.0.1\n"
    )
    (tmp_path / ".env").write_text(host_env)
    archived = (
        ARCHIVED_ENV + "GLITCHTIP_KIT_BIND_ADDRESS=0.0.0.0\nGLITCHTIP_KIT_POSTGRES_VOLUME=x\n"
    )
    plan = plan_files(tmp_path, {".env": archived}, new_host=False)
    assert plan.contents == {
        ".env": "SECRET_KEY=a\nGLITCHTIP_KIT_HTTP_PORT=8000\nPOSTGRES_PASSWORD=host\n"
        "GLITCHTIP_KIT_MAJOR=6\nGLITCHTIP_KIT_BIND_ADDRESS=127.0.0.1\n"
        "GLITCHTIP_KIT_POSTGRES_VOLUME=\n"
    }
    assert plan.notes == [
        f"kept this host's GLITCHTIP_KIT_BIND_ADDRESS, GLITCHTIP_KIT_HTTP_PORT {NOTE_END}"
    ]
    assert plan.current == {".env": host_env}
    asked = plan_files(tmp_path, {".env": archived}, new_host=False, archived_identity=True)
    assert asked.notes == []
    assert asked.contents[".env"] == (
        "SECRET_KEY=a\nGLITCHTIP_KIT_HTTP_PORT=9999\nPOSTGRES_PASSWORD=host\n"
        "GLITCHTIP_KIT_MAJOR=6\nGLITCHTIP_KIT_BIND_ADDRESS=0.0.0.0\n"
        "GLITCHTIP_KIT_POSTGRES_VOLUME=\n"
    )


def test_a_glitchtiprc_that_is_no_ini_file_is_refused_in_one_line(tmp_path):
    with pytest.raises(UsageError) as caught:
        plan_files(tmp_path, {".glitchtiprc": "url = x\n"}, new_host=True)
    assert caught.value.line() == (
        "the backup's .glitchtiprc is not an INI file (MissingSectionHeaderError); nothing was "
        "changed: use another archive (or take a new one with `provision backup`)"
    )


def test_the_plan_writes_secrets_0600_and_keeps_what_it_replaces(tmp_path):
    (tmp_path / ".env").write_text("SECRET_KEY=b\n")
    rc = "[defaults]\nurl = http://k@localhost:8000/1\n"
    plan = plan_files(tmp_path, {".env": "SECRET_KEY=a\n", ".glitchtiprc": rc}, new_host=False)
    kept = apply_files(plan)
    assert [path.name.split(".before-restore-")[0] for path in kept] == [".env"]
    assert kept[0].read_text() == "SECRET_KEY=b\n"
    modes = {
        path.name.split(".before-restore-")[0]: stat.S_IMODE(path.stat().st_mode)
        for path in tmp_path.iterdir()
    }
    assert modes == {".env": 0o600, ".glitchtiprc": 0o600}
    assert (tmp_path / ".env").read_text() == "SECRET_KEY=a\n"
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    apply_files(plan_files(fresh, {"glitchtip.yaml": "glitchtip_major: 6\n"}, new_host=True))
    assert stat.S_IMODE((fresh / "glitchtip.yaml").stat().st_mode) == 0o644
