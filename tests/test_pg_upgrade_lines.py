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
