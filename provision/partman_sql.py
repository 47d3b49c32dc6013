"""The kit's own pg_partman configuration of GlitchTip 5's advanced partitioning.

GlitchTip v5.1.0's `setup_advanced_partitions` cannot succeed with any pg_partman release (it
calls `create_parent` with `p_type := 'native'` and `p_infinite_time_partitions`, contract
NOTES.md), so the kit configures the same tables with the same settings itself, with psql in the
pg_partman Postgres image (the `partman-config` one-shot of compose.part.yml), after GlitchTip's
own command has had its go. The script is idempotent: a table pg_partman already manages (by
GlitchTip's command on later 5.x code, or by an earlier run) is left alone, only the retention
settings are written again. It checks the extension's major first: pg_partman 4 has another
`create_parent` and would fail half-way.
"""

from __future__ import annotations

from provision import majors

# What the script prints last, on success only; `provision.stack.partman.judge` looks for it.
DONE = "partman-config: done,"


def parents() -> list[tuple[majors.PartmanTable, str]]:
    """Every (table, range-partitioned parent) pg_partman must manage: 3 tables x 4 hashes."""
    return [
        (table, f"public.{table.name}_p{index}")
        for table in majors.PARTMAN_TABLES
        for index in range(majors.PARTMAN_HASH_PARTITIONS)
    ]


def _quote(text: str) -> str:
    """A SQL string literal (the values are the kit's own constants; quoted all the same)."""
    return "'" + text.replace("'", "''") + "'"


def config_sql() -> str:
    """One DO block: extension, version check, every missing parent, retention, final count."""
    rows = ",\n      ".join(
        f"({_quote(t.name)}, {_quote(t.control)}, {int(t.retention_days)}, "
        f"{int(t.start_days_back)})"
        for t in majors.PARTMAN_TABLES
    )
    total = len(parents())
    names = ", ".join(_quote(parent) for _table, parent in parents())
    return f"""DO $kit$
DECLARE
  version text;
  t record;
  parent text;
  managed int;
BEGIN
  CREATE SCHEMA IF NOT EXISTS partman;
  CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;
  SELECT extversion INTO version FROM pg_extension WHERE extname = 'pg_partman';
  IF split_part(version, '.', 1)::int <> {majors.PARTMAN_MAJOR} THEN
    RAISE EXCEPTION 'partman-config: pg_partman % is installed, GlitchTip needs pg_partman \
{majors.PARTMAN_MAJOR} (partman_image: a ...postgresql-partman:<postgres>-{majors.PARTMAN_MAJOR} \
tag)', version;
  END IF;
  FOR t IN SELECT * FROM (VALUES
      {rows}
    ) AS v(name, control, retention_days, start_days_back) LOOP
    FOR i IN 0..{majors.PARTMAN_HASH_PARTITIONS - 1} LOOP
      parent := 'public.' || t.name || '_p' || i;
      IF NOT EXISTS (SELECT 1 FROM partman.part_config WHERE parent_table = parent) THEN
        PERFORM partman.create_parent(
          p_parent_table := parent, p_control := t.control, p_type := 'range',
          p_interval := {_quote(majors.PARTMAN_INTERVAL)}, p_premake := {majors.PARTMAN_PREMAKE},
          p_start_partition := to_char(now() - make_interval(days => t.start_days_back),
                                       'YYYY-MM-DD HH24:MI:SS'),
          p_default_table := false);
        RAISE NOTICE 'partman-config: configured %', parent;
      END IF;
    END LOOP;
    UPDATE partman.part_config
      SET retention = t.retention_days || ' days', retention_keep_table = false,
          infinite_time_partitions = true
      WHERE parent_table LIKE 'public.' || t.name || '_p%';
  END LOOP;
  SELECT count(*) INTO managed FROM partman.part_config
    WHERE parent_table = ANY (ARRAY[{names}]);
  IF managed <> {total} THEN
    RAISE EXCEPTION 'partman-config: pg_partman manages % of {total} tables', managed;
  END IF;
  RAISE NOTICE '{DONE} pg_partman % manages % of {total} tables', version, managed;
END
$kit$;"""


PASSWORD_FILE = "/run/secrets/postgres_password"  # provision/secret_files.py, row postgres_password


def psql() -> list[str]:
    """psql running the SQL, stopping at the first error (connection from its environment or
    options). `provision partman` runs it inside the postgres container (its local socket)."""
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", config_sql()]


def command() -> list[str]:
    """The partman-config service's command: `psql()` over the network (host, user and database
    from its PG* environment). The password is read from its secret file into psql's own
    environment: libpq has no PGPASSWORD_FILE, and a .pgpass must be 0600, which a bind-mounted
    secret readable by the container's user cannot be."""
    *options, sql = psql()  # plain words, then the SQL as the script's $1 (never re-parsed)
    script = (
        f'PGPASSWORD="$(cat {PASSWORD_FILE})" && export PGPASSWORD && exec {" ".join(options)} "$1"'
    )
    return ["sh", "-c", script, "partman-config", sql]
