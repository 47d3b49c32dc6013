"""The Postgres major upgrade's pieces (ops/pg_upgrade.py) over the ops fakes: start only
postgres and read its major, restore a backup's dump into the new volume as a stream, refuse a
dump that is none, and the engine's volume calls (absent is not an error)."""

from __future__ import annotations

import time

import pytest
from cli_run import run
from docker.errors import NotFound
from ops_fakes import FakeCompose, make_state

from provision.errors import KitError
from provision.ops.backup import create_backup
from provision.ops.pg_upgrade import removal_command, restore_database, start_postgres
from provision.runtime.engine import Engine
from provision.stack.context import StackContext

DUMP = b"PGDMP" + bytes(range(256)) * 9000  # over 2 MiB: several chunks of the stream


def deployment(tmp_path, name, db=DUMP, **state):
    directory = tmp_path / name
    directory.mkdir()
    for command in ("init", "render"):
        assert run(directory, command).exit_code == 0
    state_dir = tmp_path / f"{name}-state"
    make_state(state_dir, db, b"uploads", **state)
    compose = FakeCompose(directory, state_dir)
    ctx = StackContext(
        directory=directory, environ={}, compose_factory=lambda s: compose, wait_timeout=7
    )
    return ctx, compose


def test_start_postgres_starts_only_postgres_and_returns_its_major(tmp_path):
    ctx, compose = deployment(tmp_path, "dep", postgres="exited", server_major=18)
    assert start_postgres(ctx) == 18
    up = next(call for call in compose.calls() if call.startswith("up "))
    assert up.split() == [
        "up", "--detach", "--wait", "--wait-timeout", "7", "--pull", "never", "--no-deps",
        "postgres",
    ]  # fmt: skip


def test_a_postgres_that_never_gets_healthy_is_named_with_its_log(tmp_path):
    ctx, _ = deployment(
        tmp_path, "dep", fail={"up": True}, logs="FATAL:  database files are incompatible"
    )
    with pytest.raises(KitError) as failed:
        start_postgres(ctx)
    line = failed.value.line()
    assert "postgres did not become healthy: postgres unhealthy" in line
    assert "its log ends: FATAL:  database files are incompatible" in line


def test_restore_database_streams_the_dump_into_a_recreated_database(tmp_path):
    old, _ = deployment(tmp_path, "old")
    archive = create_backup(old).path
    new, compose = deployment(tmp_path, "new", db=b"", tables=5)
    lines: list[str] = []
    began = time.monotonic()
    assert restore_database(new, archive, lines.append) == len(DUMP)
    took = time.monotonic() - began
    assert (compose.state_dir / "db.bin").read_bytes() == DUMP
    # The dump arrives in many chunks; progress is shown at most once a second (the first at
    # once), not once per chunk.
    shown = [line for line in lines if line.endswith(" of 2.3 MB")]
    assert 1 <= len(shown) <= int(took) + 1, (took, shown)
    calls = compose.calls()
    drop = next(i for i, c in enumerate(calls) if "DROP DATABASE" in c)
    restore = next(i for i, c in enumerate(calls) if "pg_restore" in c and "--version" not in c)
    assert drop < restore  # recreated first, then restored
    assert lines[0].startswith("pg_restore: ") and " of 2.3 MB" in lines[0]
    assert lines[-1] == "pg_restore: 2.3 MB restored"


def test_restore_database_refuses_what_is_no_dump(tmp_path):
    old, _ = deployment(tmp_path, "old", db=b"SELECT 1;\n")
    archive = create_backup(old).path
    new, compose = deployment(tmp_path, "new", db=b"kept")
    # Refused when the archive is read, before the database is dropped (manifest.DUMP_MAGIC).
    with pytest.raises(KitError, match="is not a pg_dump custom-format dump"):
        restore_database(new, archive, lambda line: None)
    assert (compose.state_dir / "db.bin").read_bytes() == b"kept"


def test_restore_database_refuses_a_damaged_archive_before_touching_the_database(tmp_path):
    old, _ = deployment(tmp_path, "old")
    archive = create_backup(old).path
    data = bytearray(archive.read_bytes())
    data[2048] ^= 0xFF  # inside the dump
    archive.write_bytes(bytes(data))
    new, compose = deployment(tmp_path, "new", db=b"kept")
    with pytest.raises(KitError, match="not a usable backup"):
        restore_database(new, archive, lambda line: None)
    assert not any("DROP DATABASE" in call for call in compose.calls())


class Api:
    def __init__(self, volumes):
        self.volumes = set(volumes)
        self.removed = []

    def inspect_volume(self, name):
        if name not in self.volumes:
            raise NotFound(f"get {name}: no such volume")
        return {"Name": name}

    def remove_volume(self, name):
        if name not in self.volumes:
            raise NotFound(f"get {name}: no such volume")
        self.volumes.discard(name)
        self.removed.append(name)


class Client:
    """The parts of docker.DockerClient the volume calls use."""

    def __init__(self, volumes):
        self.api = Api(volumes)


def test_volume_exists_and_remove_volume_take_absent_for_an_answer():
    engine = Engine(Client({"glitchtip_postgres-18"}))
    assert engine.volume_exists("glitchtip_postgres-18") is True
    assert engine.volume_exists("glitchtip_postgres-19") is False
    assert engine.remove_volume("glitchtip_postgres-18") is True
    assert engine.client.api.removed == ["glitchtip_postgres-18"]
    assert engine.volume_exists("glitchtip_postgres-18") is False
    assert engine.remove_volume("glitchtip_postgres-18") is False  # gone already: fine
    assert removal_command("glitchtip_postgres-17") == "docker volume rm glitchtip_postgres-17"


def test_the_database_names_come_from_the_compose_environment_in_either_form():
    """`compose config` prints a service's environment as a mapping, older Compose as
    KEY=VALUE items: both give the same role and database; a name that is no plain SQL
    identifier (it is used unquoted) is refused naming the variable."""
    from provision.errors import UsageError
    from provision.ops.database import Database

    mapping = {"postgres": {"environment": {"POSTGRES_USER": "gt", "POSTGRES_DB": "events"}}}
    items = {"postgres": {"environment": ["POSTGRES_USER=gt", "POSTGRES_DB=events", "TZ=UTC"]}}
    assert Database.of(mapping) == Database.of(items) == Database("gt", "events")
    assert Database.of({"postgres": {"environment": ["POSTGRES_USER=gt"]}}) == Database("gt", "gt")
    assert Database.of({}) == Database("postgres", "postgres")
    with pytest.raises(UsageError) as refused:
        Database.of({"postgres": {"environment": ["POSTGRES_USER=g t"]}})
    assert (refused.value.message, refused.value.fix) == (
        "POSTGRES_USER 'g t' is not a plain name",
        "use letters, digits and _",
    )
    with pytest.raises(UsageError) as refused:
        Database.of({"postgres": {"environment": {"POSTGRES_DB": "a;b"}}})
    assert refused.value.message == "POSTGRES_DB 'a;b' is not a plain name"
