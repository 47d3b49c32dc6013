"""A restore into an empty directory that is refused after it started postgres leaves the
engine as it found it: the container goes, and so does the volume postgres made, which was
initialised with the password of the archive's `.env` that the refusal removes again (left
behind, it would refuse the password the next `provision up` there generates). A volume the
project already had is someone's data and stays; so does every volume when Compose is too old
to list them (`compose volumes`, Compose 2.23)."""

from __future__ import annotations

import json

import pytest
from ops_fakes import FakeCompose, make_state
from test_ops_restore import OLD_DB, OLD_UPLOADS, deployment

from provision.errors import KitError, UsageError
from provision.ops import restore as restore_module
from provision.ops.backup import create_backup
from provision.stack.context import StackContext

TOO_OLD = (
    "the dump is from Postgres 17, the target server is Postgres 16, whose pg_restore cannot "
    "read it; nothing was changed: set postgres_image to a Postgres 17 or newer image (the "
    "backup used postgres:18.1)"
)


@pytest.fixture
def archive(tmp_path):
    _directory, _, ctx = deployment(tmp_path, "old", OLD_DB, OLD_UPLOADS)
    return create_backup(ctx).path


def _restore_into_empty(tmp_path, archive, error_type, **state):
    """Restore `archive` into a new empty directory whose engine state is `state`; return the
    refusal's line, the fake Compose and the directory."""
    target = tmp_path / "empty"
    target.mkdir()
    make_state(tmp_path / "engine", b"", b"", postgres="absent", tables=0, **state)
    compose = FakeCompose(target, tmp_path / "engine")
    ctx = StackContext(directory=target, environ={}, compose_factory=lambda s: compose)
    with pytest.raises(error_type) as caught:
        restore_module.restore_backup(ctx, archive, verify=False)
    return caught.value.line(), compose, target


def _calls(compose) -> list[str]:
    """The calls that create or remove something on the engine, in order."""
    return [
        call for call in compose.calls() if call.split()[0] in ("volumes", "up", "down", "stop")
    ]


def test_a_refusal_after_postgres_started_removes_the_volume_it_made(tmp_path, archive):
    line, compose, target = _restore_into_empty(tmp_path, archive, UsageError, server_major=16)
    assert line == TOO_OLD
    assert _calls(compose) == [
        "volumes --quiet",
        "up --detach --wait --wait-timeout 300 --pull never --no-deps postgres",
        "down --remove-orphans --volumes",
    ]
    assert compose.state["volumes"] == [] and compose.state["postgres"] == "absent"
    assert list(target.iterdir()) == []


def test_a_postgres_that_never_became_healthy_leaves_no_volume_either(tmp_path, archive):
    line, compose, target = _restore_into_empty(tmp_path, archive, KitError, fail={"up": True})
    assert line.startswith("postgres did not become healthy: ")
    assert line.endswith("; nothing was changed")
    assert _calls(compose)[-1] == "down --remove-orphans --volumes"
    assert compose.state["volumes"] == []
    assert list(target.iterdir()) == []


def test_a_volume_the_project_already_had_stays(tmp_path, archive):
    """Another deployment of the same name left its volume (its directory is gone, its data
    is not): the refusal takes down only the container."""
    line, compose, _target = _restore_into_empty(
        tmp_path, archive, UsageError, server_major=16, volumes=["x_postgres-data"]
    )
    assert line == TOO_OLD
    assert _calls(compose)[-1] == "down --remove-orphans"
    assert compose.state["volumes"] == ["x_postgres-data"]


def test_a_compose_that_cannot_list_volumes_leaves_them(tmp_path, archive):
    """Compose 2.20-2.22 has no `compose volumes`: what existed before is unknown, so nothing
    is removed but the container (as before this change)."""
    line, compose, _target = _restore_into_empty(
        tmp_path, archive, UsageError, server_major=16, compose_volumes=False
    )
    assert line == TOO_OLD
    assert _calls(compose)[-2:] == [
        "up --detach --wait --wait-timeout 300 --pull never --no-deps postgres",
        "down --remove-orphans",
    ]
    assert compose.state["volumes"] == ["x_postgres-data"]


def test_a_restore_into_an_existing_deployment_never_lists_or_removes_volumes(tmp_path, archive):
    """Only a new host's refusal takes anything down; an existing deployment's postgres that
    restore started is only stopped again."""
    _target, compose, ctx = deployment(
        tmp_path, "existing", b"PGDMP x", b"", tables=0, server_major=16, postgres="exited"
    )
    with pytest.raises(UsageError) as caught:
        restore_module.restore_backup(ctx, archive, verify=False)
    assert caught.value.line() == TOO_OLD
    assert _calls(compose) == [
        "up --detach --wait --wait-timeout 300 --pull never --no-deps postgres",
        "stop postgres",
    ]
    assert json.loads((compose.state_dir / "state.json").read_text())["volumes"] == [
        "x_postgres-data"
    ]


def test_a_created_entry_that_cannot_be_removed_leaves_the_rest_removed(tmp_path, monkeypatch):
    """The cleanup runs while a refusal is on its way to the user: an entry it cannot remove
    (a busy mount, a file another process holds) is left, every other created entry still
    goes, and the refusal is what the user reads, not the cleanup's OSError."""
    from provision.ops import restore_files

    target = tmp_path / "empty"
    target.mkdir()
    (target / "unrelated.txt").write_text("mine\n")
    (target / "secrets").mkdir()
    (target / "secrets" / "postgres_password").write_text("x")
    (target / "compose.yml").write_text("services: {}\n")
    (target / ".env").write_text("SECRET_KEY=x\n")

    def busy(path, *args, **kwargs):
        raise OSError(16, "Device or resource busy", str(path))

    monkeypatch.setattr(restore_files.shutil, "rmtree", busy)
    restore_files.remove_created(target, {"unrelated.txt"})
    assert sorted(path.name for path in target.iterdir()) == ["secrets", "unrelated.txt"]
