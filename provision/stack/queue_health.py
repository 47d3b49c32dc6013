"""Events that wait longer than they should, read from the stack's Valkey.

`provision status` and `provision verify` ask this once: the backlog (LLEN of the major's task
queues) sampled twice `DRAIN_SAMPLE_SECONDS` apart, and what each major leaves behind when an
event went wrong:

- GlitchTip 5 (kombu's Redis transport, kombu/transport/redis.py `QoS.append`): a delivered,
  unacknowledged message sits in the hash `unacked`, its delivery time in the sorted set
  `unacked_index`. One older than `STUCK_AFTER_SECONDS` belongs to a worker that died (the
  kit's worker holds a message for seconds); it comes back only after the visibility timeout.
- GlitchTip 6 (django-vtasks): a batch that failed (Postgres gone) lands in the dead-letter list
  `{vt}:q:failed`, capped at 1000, which no worker reads again. With the kit's worker module a
  worker's batches sit in `{vt}:processing:<worker id>` while it stores them and the worker
  keeps `{vt}:kit:alive:<worker id>`; tasks in the list of a worker whose liveness key is gone
  wait for a running kit worker to put them back (within half a minute): still there, no
  worker is running.
- Both: `used_memory` against `maxmemory` (noeviction): a full Valkey refuses new events.
- GlitchTip 6's minimal profile (VALKEY_URL="": django-vtasks' database backend) keeps its queue
  in the bundled Postgres instead: `QUEUED` rows are the backlog, `FAILED` rows the dead
  letters, and `PROCESSING` rows of a worker without a live liveness row (the kit's
  KitDatabaseTaskBackend, `kit:alive:<worker id>` in vtasks' metadata table) are held by a
  worker that is gone.

One `compose exec` of valkey-cli (or of psql) reads everything; without a bundled Valkey or
Postgres (external services) there is nothing to read and the result says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from provision import durability
from provision.errors import KitError

UNACKED_INDEX = "unacked_index"  # kombu's default unacked_index_key
VTASKS_FAILED = "{vt}:q:failed"  # django-vtasks' dead-letter list (VTASKS_VALKEY_PREFIX "vt")
FULL_SHARE = 0.9  # used_memory above this share of maxmemory: new events are about to be refused

# One valkey-cli session's worth of facts, one value per line, in this order.
_SCRIPT = """
set -e
for key in "$@"; do valkey-cli LLEN "$key"; done
valkey-cli ZCARD unacked_index
valkey-cli ZRANGE unacked_index 0 0 WITHSCORES | sed -n 2p | grep . || echo none
valkey-cli LLEN '{vt}:q:failed'
gone=0
for id in $(valkey-cli HKEYS '{vt}:kit:workers'); do
    if [ "$(valkey-cli EXISTS "{vt}:kit:alive:$id")" = 0 ]; then
        gone=$((gone + $(valkey-cli LLEN "{vt}:processing:$id")))
    fi
done
echo "$gone"
valkey-cli INFO memory | tr -d '\\r' \\
    | sed -n 's/^used_memory:\\(.*\\)/\\1/p;s/^maxmemory:\\(.*\\)/\\1/p'
valkey-cli TIME | head -1
"""


# django-vtasks' database backend (app label `db`: tables db_queuedtask, db_vtaskmetadata):
# the backlog, the dead letters and the rows held by workers without a live liveness row, on
# one line (psql -A -t: values separated by "|"), then the server's clock.
DATABASE_DEAD_LETTERS = "django-vtasks' table db_queuedtask (status FAILED)"
VALKEY_DEAD_LETTERS = f"Valkey's list {VTASKS_FAILED}"
_DATABASE_SQL = """
SELECT (SELECT count(*) FROM db_queuedtask WHERE status = 'QUEUED'),
       (SELECT count(*) FROM db_queuedtask WHERE status = 'FAILED'),
       (SELECT count(*) FROM db_queuedtask AS t WHERE status = 'PROCESSING' AND NOT EXISTS (
            SELECT 1 FROM db_vtaskmetadata AS m
            WHERE m.key = 'kit:alive:' || t.worker_id AND m.expires_at > now()))
"""


@dataclass
class QueueHealth:
    """What the queue says; `problems` is empty when no event waits longer than it should."""

    backlog: int = 0
    backlog_later: int = 0
    unacked: int = 0
    oldest_unacked_s: float | None = None
    dead_letters: int = 0
    held_by_gone_workers: int = 0
    used_memory: int = 0
    maxmemory: int = 0
    problems: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def parse(values: Sequence[str], keys: Sequence[str]) -> dict[str, Any]:
    """The script's lines -> the numbers; ValueError when Valkey answered something else."""
    expected = len(keys) + 7
    if len(values) != expected:
        raise ValueError(f"expected {expected} values, got {len(values)}")
    backlog = sum(int(v) for v in values[: len(keys)])
    rest = values[len(keys) :]
    oldest = None if rest[1] == "none" else float(rest[1])
    return {
        "backlog": backlog,
        "unacked": int(rest[0]),
        "oldest_delivery": oldest,
        "dead_letters": int(rest[2]),
        "held_by_gone_workers": int(rest[3]),
        "used_memory": int(rest[4]),
        "maxmemory": int(rest[5]),
        "now": float(rest[6]),
    }


def parse_database(text: str) -> dict[str, Any]:
    """psql's `QUEUED|FAILED|held` line -> the numbers `judge` reads (a database queue has no
    unacknowledged messages and no memory limit); ValueError on anything else."""
    values = text.strip().split("|")
    if len(values) != 3:
        raise ValueError(f"expected 3 values, got {len(values)}")
    backlog, failed, held = (int(value) for value in values)
    return {
        "backlog": backlog,
        "unacked": 0,
        "oldest_delivery": None,
        "dead_letters": failed,
        "held_by_gone_workers": held,
        "used_memory": 0,
        "maxmemory": 0,
        "now": 0.0,
    }


def judge(
    first: dict[str, Any], later: dict[str, Any], dead_letters_in: str = VALKEY_DEAD_LETTERS
) -> QueueHealth:
    """The findings from two readings `DRAIN_SAMPLE_SECONDS` apart; `dead_letters_in` names
    where the dead letters are (the Valkey list, or the database backend's FAILED rows)."""
    health = QueueHealth(
        backlog=first["backlog"],
        backlog_later=later["backlog"],
        unacked=later["unacked"],
        dead_letters=later["dead_letters"],
        held_by_gone_workers=later["held_by_gone_workers"],
        used_memory=later["used_memory"],
        maxmemory=later["maxmemory"],
    )
    if later["oldest_delivery"] is not None:
        health.oldest_unacked_s = round(later["now"] - later["oldest_delivery"], 1)
        if health.oldest_unacked_s > durability.STUCK_AFTER_SECONDS:
            health.problems.append(
                f"{later['unacked']} event(s) delivered to a worker and unacknowledged for up to "
                f"{health.oldest_unacked_s:.0f} s (a worker died holding them; they return to "
                "the queue after the visibility timeout: run `provision up` if the worker is "
                "down)"
            )
    if first["backlog"] > 0 and later["backlog"] >= first["backlog"]:
        health.problems.append(
            f"the backlog does not drain: {first['backlog']} -> {later['backlog']} queued event(s) "
            f"over {durability.DRAIN_SAMPLE_SECONDS:g} s (is the worker running? "
            "`provision logs worker`)"
        )
    if later["dead_letters"]:
        health.problems.append(
            f"{later['dead_letters']} task(s) dead-lettered in {dead_letters_in}: batches that "
            "failed, e.g. while Postgres was down; no worker retries them"
        )
    if later["held_by_gone_workers"]:
        health.problems.append(
            f"{later['held_by_gone_workers']} task(s) held by a worker that is gone (killed "
            "mid-batch); a running worker puts them back on the queue within half a minute: "
            "run `provision up` if the worker is down"
        )
    if later["maxmemory"] and later["used_memory"] >= FULL_SHARE * later["maxmemory"]:
        health.problems.append(
            f"Valkey is {100 * later['used_memory'] // later['maxmemory']}% full (maxmemory "
            f"{later['maxmemory'] // 2**20} MiB): new events are refused when it is full"
        )
    return health


def read_queue_health(
    compose: Any,
    keys: Sequence[str],
    *,
    sample_s: float = durability.DRAIN_SAMPLE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> QueueHealth:
    """Two readings of the bundled Valkey through `compose exec`; an unreadable Valkey is an
    `error`, not an exception (status and verify report it and go on)."""

    def reading() -> dict[str, Any]:
        result = compose.run("exec", "-T", "valkey", "sh", "-c", _SCRIPT, "sh", *keys, timeout=60)
        if not result.ok:
            raise KitError(f"cannot read the queue from Valkey ({result.last_lines(2)})", "")
        try:
            return parse(result.stdout.split(), keys)
        except ValueError as exc:
            raise KitError(f"unexpected answer from Valkey ({exc})", "") from None

    return _two_readings(reading, sample_s, sleep, VALKEY_DEAD_LETTERS)


def _two_readings(
    reading: Callable[[], dict[str, Any]],
    sample_s: float,
    sleep: Callable[[float], None],
    dead_letters_in: str,
) -> QueueHealth:
    """`judge` of two readings `sample_s` apart; a reading that fails (a `KitError`) is the
    result's `error`, not an exception (status and verify report it and go on)."""
    try:
        first = reading()
        sleep(sample_s)
        return judge(first, reading(), dead_letters_in)
    except KitError as error:
        return QueueHealth(error=error.message)


def read_database_queue_health(
    compose: Any,
    db: Any,
    *,
    sample_s: float = durability.DRAIN_SAMPLE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> QueueHealth:
    """Two readings of django-vtasks' database queue in the bundled Postgres (`db`: the
    ops.database.Database GlitchTip uses), as `read_queue_health` reads Valkey."""
    from provision.ops.database import tool_args

    def reading() -> dict[str, Any]:
        argv = tool_args("psql", "-X", "-A", "-t", "-U", db.user, "-d", db.name)
        result = compose.run(*argv, "-c", _DATABASE_SQL, timeout=60)
        if not result.ok:
            raise KitError(f"cannot read the queue from Postgres ({result.last_lines(2)})", "")
        try:
            return parse_database(result.stdout)
        except ValueError as exc:
            raise KitError(f"unexpected answer from Postgres ({exc})", "") from None

    return _two_readings(reading, sample_s, sleep, DATABASE_DEAD_LETTERS)


@dataclass(frozen=True)
class QueueReader:
    """Reads the queue that `service` holds (it must be running for the reading to mean
    anything: `provision status` skips the reading otherwise)."""

    service: str
    read: Callable[[], QueueHealth]

    def __call__(self) -> QueueHealth:
        return self.read()


def queue_reader(settings: Any, compose: Any) -> QueueReader | None:
    """A reader for this deployment's queue: its bundled Valkey, or, where GlitchTip 6's tasks
    live in Postgres (minimal profile), its bundled Postgres; None when the queue is in an
    external service."""
    from provision.profiles import queue_keys, uses_valkey

    if not uses_valkey(settings):
        if getattr(settings, "external_database", False) or settings.major.number < 6:
            return None
        from provision.ops.database import Database

        return QueueReader(
            "postgres", lambda: read_database_queue_health(compose, Database.of(compose.services()))
        )
    if getattr(settings, "external_valkey", False):
        return None
    keys = queue_keys(settings)
    return QueueReader("valkey", lambda: read_queue_health(compose, keys))


def health_lines(health: QueueHealth) -> list[str]:
    """Lines for `provision status`."""
    if health.error:
        return [f"  queue: cannot tell ({health.error})"]
    oldest = (
        f", oldest unacknowledged {health.oldest_unacked_s:g} s"
        if health.oldest_unacked_s is not None
        else ""
    )
    memory = (
        f", Valkey {health.used_memory // 2**20}/{health.maxmemory // 2**20} MiB"
        if health.maxmemory
        else ""
    )
    lines = [
        f"  queue: {health.backlog_later} waiting, {health.unacked} unacknowledged"
        f"{oldest}, {health.dead_letters} dead-lettered"
        + (
            f", {health.held_by_gone_workers} held by gone workers"
            if health.held_by_gone_workers
            else ""
        )
        + memory
    ]
    lines += [f"  queue PROBLEM: {problem}" for problem in health.problems]
    return lines
