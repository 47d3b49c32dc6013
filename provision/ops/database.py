"""Postgres inside the deployment's `postgres` container: versions, emptiness, dump and restore.

Postgres publishes no port, so every command runs in its container (`compose exec -T`). The
password is taken from the container's own environment (`$POSTGRES_PASSWORD`) by a small `sh`
wrapper, so it is on no command line and in no file the kit writes; the user and database names
come from the rendered compose file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from provision.errors import KitError
from provision.ops.manifest import safe_identifier

SERVICE = "postgres"
# "$0" is the tool, "$@" its arguments: nothing from the kit is parsed by the shell.
_WITH_PASSWORD = 'PGPASSWORD="$POSTGRES_PASSWORD" exec "$0" "$@"'


@dataclass(frozen=True)
class Database:
    """The role and database GlitchTip uses, as the compose file gives them to Postgres."""

    user: str
    name: str

    @classmethod
    def of(cls, services: dict[str, dict]) -> Database:
        environment = services.get(SERVICE, {}).get("environment") or {}
        if isinstance(environment, list):  # older Compose prints KEY=VALUE items
            environment = dict(item.partition("=")[::2] for item in environment)
        user = environment.get("POSTGRES_USER") or "postgres"
        name = environment.get("POSTGRES_DB") or user
        return cls(safe_identifier(user, "POSTGRES_USER"), safe_identifier(name, "POSTGRES_DB"))


def tool_args(tool: str, *args: str) -> list[str]:
    """`compose` arguments running `tool ARGS` in the postgres container with its password."""
    return ["exec", "-T", SERVICE, "sh", "-c", _WITH_PASSWORD, tool, *args]


def require_running(compose: Any, action: str) -> None:
    """A `KitError` unless the postgres container runs (the database is needed to `action`)."""
    rows = [row for row in compose.ps(SERVICE) if row.get("Service", SERVICE) == SERVICE]
    state = rows[-1].get("State", "") if rows else ""
    if state != "running":
        raise KitError(
            f"cannot {action}: the stack is not running (postgres is {state or 'not created'})",
            f"start it with `provision up`, then {action} again",
        )


def _query(compose: Any, db: Database, sql: str, database: str | None = None) -> str:
    result = compose.run(
        *tool_args("psql", "-X", "-A", "-t", "-U", db.user, "-d", database or db.name, "-c", sql),
        timeout=120,
    )
    if not result.ok:
        raise KitError(f"Postgres did not answer `{sql[:60]}` ({result.last_lines(2)})")
    return result.stdout.strip()


def server_major(compose: Any, db: Database) -> int:
    """The major version of the running Postgres server (e.g. 17)."""
    text = _query(compose, db, "SHOW server_version_num", "postgres")
    if not text.isdigit():
        raise KitError(f"Postgres answered {text[:40]!r} for its version")
    return int(text) // 10000


def tool_major(compose: Any, tool: str) -> int:
    """The major version of `pg_dump` / `pg_restore` in the postgres container."""
    result = compose.run("exec", "-T", SERVICE, tool, "--version", timeout=60)
    match = re.search(r"\)\s*(\d+)", result.stdout)
    if not result.ok or not match:
        raise KitError(f"cannot run {tool} in the postgres container ({result.last_lines(1)})")
    return int(match.group(1))


def table_count(compose: Any, db: Database) -> int:
    """Tables in the database's public schema: 0 for a database nobody migrated yet."""
    exists = _query(
        compose, db, f"SELECT count(*) FROM pg_database WHERE datname = '{db.name}'", "postgres"
    )
    if exists == "0":
        return 0
    text = _query(
        compose, db, "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public'"
    )
    return int(text) if text.isdigit() else 0


def dump_args(db: Database) -> list[str]:
    """pg_dump in custom format to stdout: one consistent snapshot while GlitchTip writes."""
    return tool_args("pg_dump", "--format=custom", "--no-password", "-U", db.user, "-d", db.name)


def recreate(compose: Any, db: Database) -> None:
    """Drop the database (closing its connections) and create it empty, owned by its user."""
    for sql in (
        f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)",
        f"CREATE DATABASE {db.name} OWNER {db.user}",
    ):
        _query(compose, db, sql, "postgres")


def restore_args(db: Database) -> list[str]:
    """pg_restore from stdin; stops at the first error instead of going on half-restored."""
    return tool_args(
        "pg_restore", "--exit-on-error", "--no-owner", "--no-privileges", "--no-password",
        "-U", db.user, "-d", db.name,
    )  # fmt: skip
