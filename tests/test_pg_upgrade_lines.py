"""The Postgres steps upgrade and restore share, read whole: a postgres that cannot even be
created (no image with `--pull never`) is named with Compose's own last lines, and the
upgrade's default database restore streams a backup into the running postgres (issue 20:
`start_postgres`'s fallback line and `upgrade._restore_database` had no test)."""

from __future__ import annotations

import pytest
from test_ops_pg_upgrade import DUMP, deployment

from provision.errors import KitError
from provision.ops import upgrade
from provision.ops.backup import create_backup
from provision.ops.pg_upgrade import start_postgres


def test_a_postgres_without_a_container_is_named_with_composes_last_lines(tmp_path):
    ctx, _ = deployment(tmp_path, "dep", postgres="absent", fail={"up": "no-image"})
    with pytest.raises(KitError) as failed:
        start_postgres(ctx)
    assert failed.value.line() == (
        "postgres did not become healthy: Container x-postgres-1  Creating | Error response "
        "from daemon: No such image: postgres:19.1"
    )


def test_the_upgrades_own_database_restore_streams_the_backup(tmp_path):
    old, _ = deployment(tmp_path, "old")
    archive = create_backup(old).path
    new, compose = deployment(tmp_path, "new", db=b"", tables=5)
    lines: list[str] = []
    assert upgrade._restore_database(new, archive, lines.append) == len(DUMP)
    assert (compose.state_dir / "db.bin").read_bytes() == DUMP
    assert lines[-1] == "pg_restore: 2.3 MB restored"


def test_the_upgrades_engine_pieces_act_on_this_deployment(tmp_path, monkeypatch):
    """`default_ops`' pieces that need the engine: postgres started through this deployment's
    Compose, volumes asked of and removed from its engine, the stack started then migrate read."""
    import types

    import provision.stack.migrate
    import provision.stack.start

    ctx, compose = deployment(tmp_path, "dep", postgres="exited", server_major=18)
    ops = upgrade.default_ops()
    assert ops.start_postgres(ctx) == 18
    assert any(call.startswith("up --detach --wait") for call in compose.calls())

    class Engine:
        def __init__(self) -> None:
            self.volumes = {"gtkit_postgres-18"}

        def volume_exists(self, name: str) -> bool:
            return name in self.volumes

        def remove_volume(self, name: str) -> None:
            self.volumes.discard(name)

    engine = Engine()
    ctx.engine_factory = lambda: engine
    assert ops.volume_exists(ctx, "gtkit_postgres-18") is True
    ops.remove_volume(ctx, "gtkit_postgres-18")
    assert ops.volume_exists(ctx, "gtkit_postgres-18") is False

    order: list[str] = []
    monkeypatch.setattr(
        provision.stack.start,
        "start",
        lambda c: order.append("start") or types.SimpleNamespace(detail="4 services up"),
    )
    monkeypatch.setattr(
        provision.stack.migrate,
        "check_migrate",
        lambda c: order.append("migrate") or types.SimpleNamespace(detail="migrate exited 0"),
    )
    assert ops.start_stack(ctx) == "migrate exited 0; 4 services up"
    assert order == ["start", "migrate"]
    assert (ops.backup, ops.verify, ops.restore_database, ops.server_version) == (
        upgrade._backup, upgrade._verify, upgrade._restore_database, upgrade.server_version,
    )  # fmt: skip
