"""Issue 20, part p: every psql query the kit runs in the postgres container has a bound (a
hung container is not waited on forever), as the tool's version check has."""

from __future__ import annotations

from ops_fakes import FakeCompose, make_state

from provision.ops import database

DB = database.Database("glitchtip", "glitchtip")


def test_each_postgres_query_is_bounded(tmp_path):
    make_state(tmp_path / "state", b"PGDMP", b"", tables=4)
    compose = FakeCompose(tmp_path, tmp_path / "state")
    assert database.server_major(compose, DB) == 17
    assert database.table_count(compose, DB) == 4
    database.recreate(compose, DB)
    psql = [(args, timeout) for args, timeout in compose.timeouts if "psql" in args]
    assert len(psql) == 5, compose.calls()
    assert [timeout for _args, timeout in psql] == [120] * 5
