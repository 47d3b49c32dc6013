"""Postgres in the deployment's container (`provision.ops.database`), over the fake Compose
whose psql refuses a database that does not exist: the server's version and the table count are
read from the maintenance database, so a missing app database (a restore stopped between its
DROP and CREATE) is an empty one, not an error; each failure is one whole line."""

from __future__ import annotations

import pytest
from ops_fakes import FakeCompose, make_state

from provision.errors import KitError
from provision.ops import database
from provision.runtime.process import ProcessResult

DB = database.Database("glitchtip", "glitchtip")


@pytest.fixture
def compose(tmp_path):
    make_state(tmp_path / "state", b"PGDMP", b"", tables=4)
    return FakeCompose(tmp_path, tmp_path / "state")


def test_a_dropped_app_database_reads_as_empty_and_its_server_still_answers(compose):
    assert (database.server_major(compose, DB), database.table_count(compose, DB)) == (17, 4)
    compose.set_state(app_database=False)
    assert database.server_major(compose, DB) == 17
    assert database.table_count(compose, DB) == 0
    database.recreate(compose, DB)
    assert compose.state["app_database"] is True
    assert compose.calls()[-2:] == [
        'exec -T postgres sh -c PGPASSWORD="$POSTGRES_PASSWORD" exec "$0" "$@" psql -X -A -t '
        "-U glitchtip -d postgres -c DROP DATABASE IF EXISTS glitchtip WITH (FORCE)",
        'exec -T postgres sh -c PGPASSWORD="$POSTGRES_PASSWORD" exec "$0" "$@" psql -X -A -t '
        "-U glitchtip -d postgres -c CREATE DATABASE glitchtip OWNER glitchtip",
    ]


def test_a_query_postgres_refuses_is_one_line_with_its_words(compose):
    with pytest.raises(KitError) as caught:
        database.table_count(compose, database.Database("nobody", "glitchtip"))
    assert caught.value.line() == (
        "Postgres did not answer `SELECT count(*) FROM pg_database WHERE datname = 'glitchtip'` "
        '(psql: error: connection to server failed: FATAL:  role "nobody" does not exist)'
    )


class Answering:
    """`compose run` answering one fixed result (a tool's version, a broken container)."""

    def __init__(self, code: int, stdout: str, stderr: str = "") -> None:
        self.result = ProcessResult(("compose",), code, stdout, stderr)
        self.calls: list[tuple] = []

    def run(self, *args, timeout=None):
        self.calls.append((args, timeout))
        return self.result


def test_tool_and_server_versions_are_read_or_refused_whole():
    found = Answering(0, "pg_dump (PostgreSQL) 18.1 (Debian 18.1-1.pgdg13+2)\n")
    assert database.tool_major(found, "pg_dump") == 18
    [(args, timeout)] = found.calls
    assert args == ("exec", "-T", "postgres", "pg_dump", "--version")
    assert timeout is not None and 0 < timeout <= 120  # a hung container is not waited on
    with pytest.raises(KitError) as caught:
        database.tool_major(Answering(126, "", "OCI runtime exec failed\nno such file"), "pg_dump")
    assert caught.value.line() == ("cannot run pg_dump in the postgres container (no such file)")
    with pytest.raises(KitError) as caught:
        database.server_major(Answering(0, "seventeen\n"), DB)
    assert caught.value.line() == "Postgres answered 'seventeen' for its version"
    assert database.server_major(Answering(0, "170004\n"), DB) == 17


def test_the_stack_not_running_names_postgres_state_and_the_action():
    class Rows:
        def __init__(self, rows):
            self.rows = rows

        def ps(self, *services):
            return self.rows

    for rows, state in (
        ([], "not created"),
        ([{"Service": "postgres", "State": "paused"}], "paused"),
    ):
        with pytest.raises(KitError) as caught:
            database.require_running(Rows(rows), "restore")
        assert caught.value.line() == (
            f"cannot restore: the stack is not running (postgres is {state}): start it with "
            "`provision up`, then restore again"
        )
    database.require_running(Rows([{"Service": "postgres", "State": "running"}]), "restore")
