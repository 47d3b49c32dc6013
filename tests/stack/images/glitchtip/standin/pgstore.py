"""A `Store` (see fakeglitchtip.store) keeping the fake's whole state in Postgres.

One table, one row: `glitchtip_standin_state(id = 1, doc jsonb)`. `transaction()` opens a
database transaction, reads the document with `SELECT ... FOR UPDATE` (so web and worker
containers serialise on the row lock, as the protocol asks), yields it as a dict, and writes it
back on a clean exit (skipped when nothing changed); an exception rolls the transaction back.
The table is created by `bin/run-migrate.sh` (`migrate()` below), as Django migrations would.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.extras

STATE_TABLE = "glitchtip_standin_state"
QUEUE_TABLE = "glitchtip_standin_queue"  # before 0004: the queue of VALKEY_URL="" (unused now)
# django-vtasks' database backend (app label `db`, django_vtasks/db/migrations), the queue of
# GlitchTip 6 with VALKEY_URL="": its columns the kit's `status`/`verify` read, nothing more.
VTASKS_TABLE = "db_queuedtask"
VTASKS_METADATA_TABLE = "db_vtaskmetadata"
MIGRATIONS_TABLE = "glitchtip_standin_migrations"


class NotMigrated(RuntimeError):
    """The state table is missing: ./bin/run-migrate.sh has not run against this database."""


def connect(dsn: dict, *, wait: float = 0.0, application_name: str = "glitchtip-standin"):
    """A psycopg2 connection; retries refused/unresolvable hosts for `wait` seconds.

    Authentication failures and unknown databases are not retried: they need a fix, not time.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            return psycopg2.connect(connect_timeout=5, application_name=application_name, **dsn)
        except psycopg2.OperationalError as exc:
            text = str(exc)
            fatal = "password authentication failed" in text or "does not exist" in text
            if fatal or time.monotonic() >= deadline:
                raise
            time.sleep(1)


def _dumps(state: Any) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":"))


def migrate(
    conn, initial_state: dict, *, advanced_partitioning: bool = False, vtasks_tables: bool = False
) -> list[str]:
    """Create the stand-in's tables (idempotent). Returns what was applied. `vtasks_tables`:
    django-vtasks' database-backend tables, which GlitchTip 6 has and 5 does not."""
    applied: list[str] = []
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(872364501)")  # one migrate at a time
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
            " name text PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"
        )
        cur.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")
        done = {row[0] for row in cur.fetchall()}

        def step(name: str, *sql: str) -> None:
            if name in done:
                return
            for statement in sql:
                cur.execute(statement)
            cur.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (%s)", (name,))
            applied.append(name)

        step(
            "0001_state",
            f"CREATE TABLE {STATE_TABLE} ("
            " id integer PRIMARY KEY CHECK (id = 1),"
            " doc jsonb NOT NULL,"
            " updated timestamptz NOT NULL DEFAULT now())",
        )
        step(
            "0002_queue",
            f"CREATE TABLE {QUEUE_TABLE} ("
            " id bigserial PRIMARY KEY, item jsonb NOT NULL,"
            " queued timestamptz NOT NULL DEFAULT now())",
        )
        # Like GlitchTip 5's issue_events.0004 and performance.0015 migrations: with advanced
        # partitioning (decided before the first migrate) each of the three tables is
        # hash-partitioned into `_p0`..`_p3`, each `PARTITION BY RANGE` on its time column and
        # without partitions: pg_partman must create them, else writes fail ("no partition of
        # relation ... found for row"). Without it a default partition stands for GlitchTip's
        # Python-managed partitions (the worker writes issue_events_issueaggregate only).
        if advanced_partitioning:
            step("0003_partitioned_tables_partman", *partman_tables_sql())
        elif "0003_partitioned_tables_partman" not in done:
            step(
                "0003_partitioned_tables",
                f"CREATE TABLE {AGGREGATE_TABLE} ("
                " id bigserial, date timestamptz NOT NULL, count integer NOT NULL,"
                " PRIMARY KEY (id, date)) PARTITION BY RANGE (date)",
                f"CREATE TABLE {AGGREGATE_TABLE}_default PARTITION OF {AGGREGATE_TABLE} DEFAULT",
            )
        if vtasks_tables:
            step(
                "0004_vtasks_database_backend",
                f"CREATE TABLE {VTASKS_TABLE} ("
                " id bigserial PRIMARY KEY, queue varchar(255) NOT NULL DEFAULT 'ingest',"
                " status varchar(20) NOT NULL DEFAULT 'QUEUED', worker_id varchar(255),"
                " data jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
                f"CREATE TABLE {VTASKS_METADATA_TABLE} ("
                " key varchar(255) PRIMARY KEY, value text NOT NULL, expires_at timestamptz)",
            )
        cur.execute(
            f"INSERT INTO {STATE_TABLE} (id, doc) VALUES (1, %s) ON CONFLICT (id) DO NOTHING",
            (_dumps(initial_state),),
        )
    return applied


AGGREGATE_TABLE = "issue_events_issueaggregate"
# GlitchTip 5's tables handed to pg_partman with advanced partitioning (contract NOTES.md):
# name -> the time column pg_partman partitions on. Columns beyond these are left out.
PARTMAN_TABLES = {
    "issue_events_issueaggregate": "date",
    "performance_transactionevent": "start_timestamp",
    "performance_transactiongroupaggregate": "date",
}
HASH_PARTITIONS = 4


def partman_tables_sql() -> list[str]:
    """The advanced-partitioning tables: hash parents, each range-partitioned, no partitions."""
    statements = []
    for name, control in PARTMAN_TABLES.items():
        statements.append(
            f"CREATE TABLE {name} (id bigserial, {control} timestamptz NOT NULL,"
            f" count integer NOT NULL DEFAULT 1, PRIMARY KEY (id, {control}))"
            " PARTITION BY HASH (id)"
        )
        for index in range(HASH_PARTITIONS):
            statements.append(
                f"CREATE TABLE {name}_p{index} PARTITION OF {name}"
                f" FOR VALUES WITH (MODULUS {HASH_PARTITIONS}, REMAINDER {index})"
                f" PARTITION BY RANGE ({control})"
            )
    return statements


class PostgresStore:
    """The fake's `Store` protocol on one jsonb row, row-locked per transaction.

    One connection per thread (the fake's HTTP server is threaded); a connection found broken
    is replaced on the next transaction.
    """

    def __init__(
        self, dsn: dict, initial_state: dict | None = None, *, health_checks: bool = False
    ) -> None:
        self._dsn = dsn
        self._initial = initial_state or {}
        self._local = threading.local()
        self._health_checks = health_checks

    def _conn(self):
        """The thread's connection, as Django's pool hands one out: without health checks a
        connection the server dropped (a Postgres restart) is given as is and fails its first
        query; with CONN_HEALTH_CHECKS (`ConnectionPool.check_connection`) it is checked first
        and replaced, waiting up to the pool's 30 s timeout for the server to come back."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed and self._health_checks:
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                conn.rollback()
            except psycopg2.Error:
                with contextlib.suppress(Exception):
                    conn.close()
        if conn is None or conn.closed:
            conn = connect(self._dsn, wait=30 if self._health_checks else 10)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed:
            conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict]:
        conn = self._conn()
        try:
            with conn, conn.cursor() as cur:
                try:
                    cur.execute(f"SELECT doc FROM {STATE_TABLE} WHERE id = 1 FOR UPDATE")
                except psycopg2.errors.UndefinedTable as exc:
                    raise NotMigrated(
                        f"table {STATE_TABLE} is missing: run ./bin/run-migrate.sh first"
                    ) from exc
                row = cur.fetchone()
                if row is None:
                    raise NotMigrated(f"{STATE_TABLE} is empty: run ./bin/run-migrate.sh")
                state = row[0]
                # Collections the fake added since the state was written start empty.
                for key, value in self._initial.items():
                    state.setdefault(key, json.loads(_dumps(value)))
                before = _dumps(state)
                yield state
                after = _dumps(state)
                if after != before:
                    cur.execute(
                        f"UPDATE {STATE_TABLE} SET doc = %s, updated = now() WHERE id = 1",
                        (after,),
                    )
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            # The connection is unusable (server restart, network): drop it, re-raise.
            with contextlib.suppress(Exception):
                conn.close()
            raise

    def snapshot(self) -> dict:
        with self.transaction() as state:
            return json.loads(_dumps(state))


class PostgresQueue:
    """The `EventQueue` protocol on django-vtasks' database-backend table: for VALKEY_URL=""
    (GlitchTip 6). Simpler than vtasks: an event is deleted as it is taken (no PROCESSING
    rows), so the stand-in does not model a killed all-in-one's batches (docs/durability.md)."""

    def __init__(self, dsn: dict) -> None:
        self._dsn = dsn
        self._local = threading.local()

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = connect(self._dsn, wait=10)
            self._local.conn = conn
        return conn

    def push(self, item: dict) -> None:
        conn = self._conn()
        with conn, conn.cursor() as cur:
            cur.execute(f"INSERT INTO {VTASKS_TABLE} (data) VALUES (%s)", (json.dumps(item),))

    def pop(self) -> dict | None:
        conn = self._conn()
        with conn, conn.cursor() as cur:
            cur.execute(
                f"DELETE FROM {VTASKS_TABLE} WHERE id = (SELECT id FROM {VTASKS_TABLE}"
                " WHERE status = 'QUEUED' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                " RETURNING data"
            )
            row = cur.fetchone()
        return row[0] if row else None

    def wait(self, timeout: float) -> bool:
        """Poll until an item is queued or `timeout` passes; True when something is there."""
        deadline = time.monotonic() + timeout
        conn = self._conn()
        while True:
            with conn, conn.cursor() as cur:
                cur.execute(f"SELECT EXISTS (SELECT 1 FROM {VTASKS_TABLE} WHERE status = 'QUEUED')")
                if cur.fetchone()[0]:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)

    def __len__(self) -> int:
        conn = self._conn()
        with conn, conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {VTASKS_TABLE} WHERE status = 'QUEUED'")
            return int(cur.fetchone()[0])


# psycopg2 decodes jsonb to Python objects by default; make that explicit.
psycopg2.extras.register_default_jsonb(globally=True)
