"""`provision restore`: refusals before anything changes, then the order and the result, over
the fake Compose that streams real bytes (tests/ops_fake_compose.py). Migrations, the start and
verify are proven on a real engine in tests/stack/test_backup_stack.py."""

from __future__ import annotations

import os

import pytest
from cli_run import one_line_error, run
from ops_fakes import FakeCompose, fake_compose_fixture, make_state

from provision.envfile import read_env_file
from provision.errors import KitError, UsageError
from provision.ops import restore as restore_module
from provision.ops.backup import create_backup
from provision.ops.restore import restore_backup
from provision.stack.context import StackContext

OLD_DB = b"PGDMP" + os.urandom(2 * (1 << 20) + 2)  # a custom-format dump's header
OLD_UPLOADS = b"old uploads" * 300


@pytest.fixture
def use_fake_compose(monkeypatch):
    yield from fake_compose_fixture(monkeypatch)


@pytest.fixture
def started(monkeypatch):
    """The migrations and the start recorded, not run (they need a real engine)."""
    calls = []
    monkeypatch.setattr(restore_module, "_migrate_and_start", lambda ctx, say: calls.append(1))
    return calls


def deployment(tmp_path, name, db, uploads, *, major="6", **state):
    directory = tmp_path / name
    directory.mkdir()
    for command in ("init", "render"):  # glitchtip.yaml, .env and compose.yml, as after `up`
        result = run(directory, command, "--major", major)
        assert result.exit_code == 0, result.output
    (directory / ".glitchtiprc").write_text(f"[defaults]\nurl = http://{name}@localhost:8000/1\n")
    state_dir = tmp_path / f"{name}-state"
    make_state(state_dir, db, uploads, **state)
    compose = FakeCompose(directory, state_dir)
    ctx = StackContext(directory=directory, environ={}, compose_factory=lambda s: compose)
    return directory, compose, ctx


@pytest.fixture
def archive(tmp_path):
    """A backup of deployment 'old' (its own secrets), as `provision backup` writes it."""
    directory, _, ctx = deployment(tmp_path, "old", OLD_DB, OLD_UPLOADS)
    return create_backup(ctx).path, directory


def snapshot(directory):
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()}


def test_restore_into_a_used_deployment_needs_replace_and_then_keeps_what_was_there(
    tmp_path, archive, started
):
    path, old = archive
    target, compose, ctx = deployment(tmp_path, "new", b"new database", b"new uploads", tables=9)
    before = snapshot(target)
    with pytest.raises(UsageError, match=r"already holds 9 tables; nothing was changed.*--replace"):
        restore_backup(ctx, path, verify=False)
    assert snapshot(target) == before
    assert not any(("pg_restore" in c or c.startswith("stop")) for c in compose.calls())

    lines = []
    result = restore_backup(ctx, path, replace=True, verify=False, progress=lines.append)
    assert (compose.state_dir / "db.bin").read_bytes() == OLD_DB
    assert (compose.state_dir / "uploads.tar").read_bytes() == OLD_UPLOADS
    assert started == [1]
    # the state before was backed up first, and holds the replaced data
    saved = result.pre_restore_backup
    assert saved is not None and saved.parent == target / "backups"
    import tarfile

    with tarfile.open(saved) as tar:
        assert tar.extractfile("database.dump").read() == b"new database"
    # the order: stop web and worker, drop and create, then pg_restore, then uploads
    calls = compose.calls()
    order = [
        next(i for i, c in enumerate(calls) if c.startswith("stop web worker")),
        next(i for i, c in enumerate(calls) if "DROP DATABASE" in c),
        next(i for i, c in enumerate(calls) if "pg_restore" in c and "--exit-on-error" in c),
        next(i for i, c in enumerate(calls) if c.startswith("run") and "-xpf" in c),
    ]
    assert order == sorted(order)
    # files: .env and .glitchtiprc from the archive, the host's password and yaml kept
    old_env, before_env = read_env_file(old / ".env"), read_env_file_bytes(before[".env"])
    new_env = read_env_file(target / ".env")
    assert new_env["SECRET_KEY"] == old_env["SECRET_KEY"] != before_env["SECRET_KEY"]
    assert new_env["POSTGRES_PASSWORD"] == before_env["POSTGRES_PASSWORD"]
    assert (target / ".glitchtiprc").read_bytes() == (old / ".glitchtiprc").read_bytes()
    assert (target / "glitchtip.yaml").read_bytes() == before["glitchtip.yaml"]
    aside = {p.name.split(".before-restore-")[0]: p for p in result.kept_aside}
    assert set(aside) == {".env", ".glitchtiprc"}
    assert aside[".env"].read_bytes() == before[".env"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in aside.values())
    assert (target / ".env").stat().st_mode & 0o777 == 0o600
    assert any("pg_restore:" in line for line in lines)
    for name, path in aside.items():  # the operator is told what was kept, and where
        assert f"kept the previous {name} as {path}" in lines


def read_env_file_bytes(data: bytes) -> dict:
    from provision.envfile import parse_env

    return parse_env(data.decode())


def test_an_empty_database_is_restored_without_replace(tmp_path, archive, started):
    path, _ = archive
    _target, compose, ctx = deployment(tmp_path, "new", b"", b"", tables=0)
    result = restore_backup(ctx, path, verify=False)
    assert result.pre_restore_backup is None
    assert (compose.state_dir / "db.bin").read_bytes() == OLD_DB


def test_a_corrupted_archive_is_refused_before_anything_runs(tmp_path, archive, started):
    path, _ = archive
    data = bytearray(path.read_bytes())
    data[512 + 1000] ^= 0xFF
    path.write_bytes(bytes(data))
    target, compose, ctx = deployment(tmp_path, "new", b"x", b"y", tables=0)
    before = snapshot(target)
    with pytest.raises(UsageError, match=r"does not match its SHA-256"):
        restore_backup(ctx, path, replace=True)
    assert compose.calls() == [] and snapshot(target) == before and started == []


def test_a_newer_glitchtip_or_postgres_is_refused(tmp_path, archive, started):
    path, _ = archive
    _five, compose5, ctx5 = deployment(tmp_path, "five", b"x", b"y", major="5", tables=0)
    with pytest.raises(UsageError, match=r"from GlitchTip 6, this deployment runs GlitchTip 5"):
        restore_backup(ctx5, path, replace=True)
    assert compose5.calls() == []
    old_pg, compose16, ctx16 = deployment(tmp_path, "pg16", b"x", b"y", server_major=16, tables=0)
    before = snapshot(old_pg)
    with pytest.raises(UsageError, match=r"dump is from Postgres 17, the target server is .* 16"):
        restore_backup(ctx16, path, replace=True)
    assert not any("pg_restore" in c or "DROP" in c for c in compose16.calls())
    assert snapshot(old_pg) == before


def test_a_failing_pg_restore_says_so_and_leaves_the_files(tmp_path, archive, started):
    path, _ = archive
    target, compose, ctx = deployment(tmp_path, "new", b"x", b"y", tables=0)
    compose.set_state(fail={"pg_restore": True})
    before = snapshot(target)
    with pytest.raises(KitError, match=r"restore failed: pg_restore failed .*partly restored"):
        restore_backup(ctx, path)
    assert snapshot(target) == before and started == []


def test_cli_restore_refusal_is_one_line_and_prints_no_secret(tmp_path, archive, use_fake_compose):
    path, old = archive
    target, compose, _ = deployment(tmp_path, "new", b"x", b"y", tables=4)
    use_fake_compose(compose.state_dir)
    result = run(target, "restore", str(path))
    line = one_line_error(result)
    assert line == (
        "error: the database already holds 4 tables; nothing was changed: restore into an "
        "empty deployment, or give --replace (the current state is backed up first)"
    )
    secrets = list(read_env_file(old / ".env").values()) + list(
        read_env_file(target / ".env").values()
    )
    assert not any(len(s) > 8 and s in result.output for s in secrets)
    truncated = tmp_path / "cut.tar"
    truncated.write_bytes(path.read_bytes()[:50_000])
    line = one_line_error(run(target, "restore", str(truncated)))
    assert "not a usable backup" in line and "nothing was changed" in line


def test_a_dump_written_by_a_newer_pg_dump_is_refused_too(tmp_path, archive):
    from provision.ops.manifest import read_manifest
    from provision.ops.restore import check_compatible

    manifest = read_manifest(archive[0])
    check_compatible(manifest, 6, 17)  # same majors: fine
    check_compatible(manifest, 6, 18)  # a newer target reads an older dump
    manifest.pg_dump_major = 18  # a pg_dump 18 client against a Postgres 17 server
    with pytest.raises(UsageError, match=r"dump is from Postgres 18, the target server is .* 17"):
        check_compatible(manifest, 6, 17)


@pytest.mark.parametrize(
    "archived_env",
    [
        "SECRET_KEY=from-the-backup\nexport POSTGRES_PASSWORD=archived-password\n",
        "SECRET_KEY=from-the-backup\n",  # an archive without the key
    ],
    ids=["export-line", "missing"],
)
def test_the_hosts_postgres_password_survives_the_restored_env(tmp_path, archived_env):
    """The volume keeps the password it was created with; a dump does not carry it. Whatever
    shape the archive's .env has, the restored one must hold this host's."""
    from provision.ops.restore import restore_files

    (tmp_path / ".env").write_text("SECRET_KEY=current\nPOSTGRES_PASSWORD=host-password\n")
    (tmp_path / ".env").chmod(0o600)
    kept = restore_files(tmp_path, {".env": archived_env})
    restored = read_env_file(tmp_path / ".env")
    assert restored["POSTGRES_PASSWORD"] == "host-password"
    assert restored["SECRET_KEY"] == "from-the-backup"
    assert [path.name.startswith(".env.before-restore-") for path in kept] == [True]
    assert read_env_file(kept[0])["SECRET_KEY"] == "current"


def test_a_file_member_that_is_not_utf8_is_a_one_line_refusal(tmp_path, monkeypatch):
    """A hand-made archive whose checksums match but whose .env is not text: no traceback."""
    import contextlib
    import types

    @contextlib.contextmanager
    def member(archive, name, info):
        yield iter([b"SECRET_KEY=\xff\xfe\n"])

    monkeypatch.setattr(restore_module, "open_member", member)
    member = types.SimpleNamespace(size=14)  # what open_member is told: its size only here
    manifest = types.SimpleNamespace(members={f"{restore_module.FILES_DIR}.env": member})
    with pytest.raises(UsageError) as refused:
        restore_module._archive_files(tmp_path / "backup.tar", manifest)
    assert refused.value.line() == (
        f"{tmp_path / 'backup.tar'} is not a usable backup: files/.env is not UTF-8 text; nothing "
        "was changed: use another archive (or take a new one with `provision backup`)"
    )


def test_a_refusal_stops_only_the_postgres_restore_started(tmp_path, archive):
    """Postgres stopped before, a used database: restore starts postgres to count the tables,
    refuses, and stops postgres again: only postgres (the operator's other services are theirs
    to start or stop)."""
    path, _ = archive
    _, compose, ctx = deployment(
        tmp_path, "new", b"new database", b"new uploads", tables=9, postgres="exited"
    )
    with pytest.raises(UsageError, match="already holds 9 tables"):
        restore_backup(ctx, path, verify=False)
    stops = [c for c in compose.calls() if c.startswith("stop")]
    assert stops == ["stop postgres"], compose.calls()
    assert not any(c.startswith("down") for c in compose.calls())
    # Bounded as every stop and down the kit runs (300 s; Compose.run's own default is 600):
    # a hung engine leaves the refusal to be printed within 5 minutes.
    assert [t for t in compose.timeouts if t[0][:1] == ("stop",)] == [(("stop", "postgres"), 300)]


def test_uploads_are_restored_where_the_web_service_mounts_them() -> None:
    """The throw-away container untars into the uploads volume's mount point as the resolved
    compose file gives it (an operator's override may move it); the default only without one."""
    moved = {"web": {"volumes": [
        {"type": "bind", "source": "/srv/static", "target": "/code/static"},
        {"type": "volume", "source": "uploads", "target": "/data/uploads"},
    ]}}  # fmt: skip
    assert restore_module._uploads_target(moved) == "/data/uploads"
    assert restore_module._uploads_target({"web": {}}) == restore_module.UPLOADS_TARGET
    assert restore_module._uploads_target({}) == "/code/uploads"


def test_restore_verifies_the_deployment_it_restored(tmp_path, archive, started, monkeypatch):
    """With verify on (the default), `provision verify` runs against the restored deployment,
    with the event timeout given, and its result comes back in the restore's result."""
    import provision.ops.verify

    path, _ = archive
    _target, _compose, ctx = deployment(tmp_path, "new", b"", b"", tables=0)
    seen = []

    def fake_verify(given_ctx, event_timeout):
        seen.append((given_ctx, event_timeout))
        return "verified"

    monkeypatch.setattr(provision.ops.verify, "run_verify", fake_verify)
    result = restore_backup(ctx, path, event_timeout=7.5)
    assert seen == [(ctx, 7.5)]
    assert result.verify == "verified"


def test_a_postgres_that_does_not_start_stops_the_restore_saying_nothing_changed(
    tmp_path, archive, started
):
    """The database must run to be replaced: when `up postgres` fails the restore stops there,
    every file as it was, and says so beside the cause."""
    path, _ = archive
    target, compose, ctx = deployment(
        tmp_path, "new", b"new database", b"new uploads", postgres="exited", fail={"up": True}
    )
    before = snapshot(target)
    with pytest.raises(KitError) as failed:
        restore_backup(ctx, path, verify=False)
    assert failed.value.line() == (
        "postgres did not become healthy: postgres unhealthy; nothing was changed"
    )
    assert snapshot(target) == before and started == []
    assert (compose.state_dir / "db.bin").read_bytes() == b"new database"
