"""provision/stack/queue_health.py: events that wait longer than they should."""

from __future__ import annotations

from provision import durability
from provision.runtime.process import ProcessResult
from provision.stack.queue_health import health_lines, judge, parse, read_queue_health

KEYS = ("celery",)
NOW = 1_700_000_000.0


def reading(backlog=0, unacked=0, oldest=None, failed=0, used=2**20, maxmemory=256 * 2**20, gone=0):
    return [str(backlog), str(unacked), "none" if oldest is None else str(oldest), str(failed),
            str(gone), str(used), str(maxmemory), str(int(NOW))]  # fmt: skip


class Readings:
    """compose.run answering one prepared reading per call."""

    def __init__(self, *readings):
        self.readings = list(readings)
        self.calls = []

    def run(self, *argv, timeout=None):
        self.calls.append(argv)
        values = self.readings.pop(0)
        return ProcessResult(tuple(argv), 0, "\n".join(values) + "\n", "")


def health(*readings):
    return read_queue_health(Readings(*readings), KEYS, sleep=lambda s: None)


def test_a_draining_queue_is_fine():
    found = health(reading(backlog=500, unacked=400, oldest=NOW - 2), reading(backlog=120))
    assert found.ok, found.problems
    assert (found.backlog, found.backlog_later) == (500, 120)


def test_a_dead_workers_unacked_events_are_stuck():
    old = NOW - durability.STUCK_AFTER_SECONDS - 30
    found = health(reading(unacked=87, oldest=old), reading(unacked=87, oldest=old))
    assert not found.ok
    assert found.oldest_unacked_s == durability.STUCK_AFTER_SECONDS + 30
    assert "87 event(s)" in found.problems[0] and "unacknowledged" in found.problems[0]


def test_a_backlog_that_does_not_shrink():
    found = health(reading(backlog=300), reading(backlog=310))
    assert any("does not drain: 300 -> 310" in p for p in found.problems)


def test_dead_letters_and_a_full_valkey_are_reported():
    found = health(reading(), reading(failed=100, used=250 * 2**20))
    assert found.problems == [
        "100 task(s) dead-lettered in Valkey's list {vt}:q:failed: batches that failed, "
        "e.g. while Postgres was down; no worker retries them",
        "Valkey is 97% full (maxmemory 256 MiB): new events are refused when it is full",
    ]
    assert any("PROBLEM" in line for line in health_lines(found))


def test_tasks_held_by_a_gone_glitchtip6_worker_are_reported():
    """The kit's GlitchTip 6 backend: a killed worker's batches stay in its processing list
    until a running worker puts them back; still there means no worker runs."""
    found = health(reading(gone=200), reading(gone=200))
    assert any("200 task(s) held by a worker that is gone" in p for p in found.problems)
    assert "200 held by gone workers" in health_lines(found)[0]
    assert health(reading(), reading()).ok


def test_the_script_counts_only_lists_of_workers_without_a_liveness_key():
    from provision.stack.queue_health import _SCRIPT

    assert "HKEYS '{vt}:kit:workers'" in _SCRIPT
    assert 'EXISTS "{vt}:kit:alive:$id"' in _SCRIPT
    assert 'LLEN "{vt}:processing:$id"' in _SCRIPT


def test_an_unreadable_valkey_is_an_error_not_an_exception():
    class Down:
        def run(self, *argv, timeout=None):
            return ProcessResult(tuple(argv), 1, "", 'service "valkey" is not running')

    found = read_queue_health(Down(), KEYS, sleep=lambda s: None)
    assert not found.ok and "not running" in found.error


def test_parse_needs_every_value():
    import pytest

    with pytest.raises(ValueError):
        parse(["1", "2"], KEYS)
    assert judge(parse(reading(), KEYS), parse(reading(), KEYS)).ok


# -- GlitchTip 6's minimal profile: django-vtasks' database backend in the bundled Postgres ----
class PsqlReadings(Readings):
    """compose.run answering psql's one line per call, and the compose file's services."""

    def services(self):
        return {"postgres": {"environment": {"POSTGRES_USER": "gt", "POSTGRES_DB": "gtdb"}}}

    def run(self, *argv, timeout=None):
        self.calls.append(argv)
        return ProcessResult(tuple(argv), 0, self.readings.pop(0) + "\n", "")


def test_glitchtip6_minimal_queue_is_read_from_the_database_backends_rows():
    from provision.ops.database import Database
    from provision.stack.queue_health import _DATABASE_SQL, read_database_queue_health

    compose = PsqlReadings("300|0|0", "310|2|150")
    found = read_database_queue_health(compose, Database("gt", "gtdb"), sleep=lambda s: None)
    assert (found.backlog, found.backlog_later) == (300, 310)
    assert (found.dead_letters, found.held_by_gone_workers) == (2, 150)
    assert found.problems == [
        "the backlog does not drain: 300 -> 310 queued event(s) over 3 s (is the worker "
        "running? `provision logs worker`)",
        "2 task(s) dead-lettered in django-vtasks' table db_queuedtask (status FAILED): "
        "batches that failed, e.g. while Postgres was down; no worker retries them",
        "150 task(s) held by a worker that is gone (killed mid-batch); a running worker puts "
        "them back on the queue within half a minute: run `provision up` if the worker is down",
    ]
    # psql in the postgres container, as the deployment's role on its database, password from
    # the container's environment (ops.database.tool_args), the one query.
    assert compose.calls[0] == (
        "exec", "-T", "postgres", "sh", "-c", 'PGPASSWORD="$POSTGRES_PASSWORD" exec "$0" "$@"',
        "psql", "-X", "-A", "-t", "-U", "gt", "-d", "gtdb", "-c", _DATABASE_SQL,
    )  # fmt: skip
    assert "status = 'PROCESSING'" in _DATABASE_SQL and "'kit:alive:' ||" in _DATABASE_SQL
    fine = read_database_queue_health(
        PsqlReadings("40|0|0", "0|0|0"), Database("gt", "gtdb"), sleep=lambda s: None
    )
    assert fine.ok and fine.as_dict()["backlog"] == 40


def test_an_unreadable_database_queue_is_an_error_not_an_exception():
    from provision.ops.database import Database
    from provision.stack.queue_health import read_database_queue_health

    class Missing(PsqlReadings):
        def run(self, *argv, timeout=None):
            return ProcessResult(tuple(argv), 1, "", 'relation "db_queuedtask" does not exist')

    found = read_database_queue_health(Missing(), Database("gt", "gtdb"), sleep=lambda s: None)
    assert found.error == (
        'cannot read the queue from Postgres (relation "db_queuedtask" does not exist)'
    )
    odd = read_database_queue_health(
        PsqlReadings("1|2", "1|2"), Database("gt", "gtdb"), sleep=lambda s: None
    )
    assert odd.error == "unexpected answer from Postgres (expected 3 values, got 2)"


def test_the_queue_reader_follows_where_the_queue_is(tmp_path, kit_environ):
    from provision.settings import load_settings
    from provision.stack.queue_health import queue_reader

    def reader(**overrides):
        return queue_reader(load_settings(tmp_path, overrides, environ={}), PsqlReadings())

    # 6 minimal: the database backend in the bundled Postgres.
    compose = PsqlReadings("0|0|0", "0|0|0")
    settings = load_settings(tmp_path, {"glitchtip_major": 6, "profile": "minimal"}, environ={})
    found = queue_reader(settings, compose)()
    assert found.ok and compose.calls[0][2] == "postgres"
    # The bundled Valkey wherever there is one (6 standard, 5 minimal).
    assert reader(glitchtip_major=6) is not None
    compose = Readings(reading(), reading())
    five = load_settings(tmp_path, {"glitchtip_major": 5, "profile": "minimal"}, environ={})
    assert queue_reader(five, compose)().ok and compose.calls[0][2] == "valkey"
    # An external Postgres holds 6 minimal's queue: nothing the kit reads.
    assert (
        reader(
            glitchtip_major=6,
            profile="minimal",
            database_url="postgres://gt:pw@db.example.com:5432/gt",
        )
        is None
    )


def test_status_reads_the_queue_only_while_its_service_runs():
    """`provision status` reads the queue of the service that holds it: Valkey, or Postgres for
    GlitchTip 6's minimal profile; not while that service is stopped (nothing to read)."""
    from provision.stack.queue_health import QueueHealth, QueueReader
    from provision.stack.status import collect_queue

    def containers(**states):
        return [{"service": name, "state": state} for name, state in states.items()]

    reads = []

    def read():
        reads.append(1)
        return QueueHealth(backlog=5, backlog_later=2)

    in_postgres = QueueReader("postgres", read)
    assert collect_queue(containers(web="running", postgres="exited"), in_postgres) is None
    assert reads == []
    found = collect_queue(containers(web="running", postgres="running"), in_postgres)
    assert found == {**QueueHealth(backlog=5, backlog_later=2).as_dict(), "ok": True}
    in_valkey = QueueReader("valkey", read)
    assert collect_queue(containers(postgres="running"), in_valkey) is None
    assert collect_queue(containers(valkey="running"), in_valkey)["backlog_later"] == 2
    assert collect_queue(containers(valkey="running"), None) is None
    assert len(reads) == 2
