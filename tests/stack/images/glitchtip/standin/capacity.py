"""How fast the real GlitchTip worker stores events, as a model the stand-in worker runs.

The real worker stores ingested events in batches, so its rate is set by how big a batch can get
and how often one is flushed, not by a per-event speed:

GlitchTip 5 (Celery 5 + celery-batches; apps/event_ingest/tasks.py: `ingest_event` and
`ingest_transaction` are `Batches` tasks with `flush_every=100`, `flush_interval=2`):
  - every task message goes to Celery's default queue `celery` (a Valkey list);
  - the worker may hold at most `concurrency x prefetch_multiplier` unacknowledged messages
    (the prefetch window; 0 = unlimited). celery-batches keeps received messages in a buffer and
    flushes it to the pool every `flush_interval` seconds (a repeating timer) and whenever the
    count of received messages reaches a multiple of `flush_every`; a flushed batch is acked when
    a pool slot accepts it (acks early), which frees the window;
  - `bin/run-celery-with-beat.sh` assigns CELERY_WORKER_POOL/CONCURRENCY/PREFETCH_MULTIPLIER
    without `export`: a value only reaches Celery (click's `auto_envvar_prefix`) when it was
    already in the container's environment; otherwise Celery's defaults apply (prefork,
    concurrency = CPUs, prefetch 4). With the image's defaults on 2 CPUs the window is 8 < 100,
    so a batch of 8 leaves every 2 s: ~4 events/s (recorded: 4.0).
GlitchTip 6 (django-vtasks 2.1.2; settings `VTASKS_BATCH_QUEUES = {"ingest": {"count": 100,
"timeout": 2.0}}`): one consumer per queue collects up to 100 tasks or waits 2 s
(`fetch_batch`), takes a slot of the `VTASKS_CONCURRENCY` semaphore (default 20) and runs the
sync `ingest_event` in asyncio's default thread pool (`asyncio.to_thread`: at most
min(32, CPUs + 4) threads), then fetches the next batch at once.

Storing a batch costs CPU time (Python: one thread at a time in a process, the GIL; prefork
processes run in parallel up to the CPUs) plus database waits that overlap. The per-batch cost
below is calibrated on the recorded runs of a real GlitchTip 5 on a 2-core host (contract
NOTES.md, "ingest capacity"); `RECORDED` lists them and the fast test replays them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

# celery-batches parameters of GlitchTip 5's ingest tasks (apps/event_ingest/tasks.py).
CELERY_FLUSH_EVERY = 100
CELERY_FLUSH_INTERVAL = 2.0
# Celery 5 defaults when nothing reaches the worker CLI.
CELERY_DEFAULT_POOL = "prefork"
CELERY_DEFAULT_PREFETCH = 4
CELERY_POOLS = ("prefork", "threads", "solo", "eventlet", "gevent", "processes", "custom")
# GlitchTip 6's VTASKS_BATCH_QUEUES["ingest"] and django-vtasks' default concurrency.
VTASKS_BATCH_COUNT = 100
VTASKS_BATCH_TIMEOUT = 2.0
VTASKS_DEFAULT_CONCURRENCY = 20

# Calibrated cost of storing one batch of n events (seconds): CPU time (holds the GIL in a
# threaded worker) and database waits (overlap with other batches). Chosen so that a threaded
# worker with 4 threads and full batches of 100 stores ~125 events/s on 2 CPUs, between the
# recorded 108/s (granian ASGI x2 on the same host), 128/s (uWSGI) and ~150/s (prefetch 100).
CPU_PER_BATCH = 0.02
CPU_PER_EVENT = 0.0078
WAIT_PER_BATCH = 0.05
WAIT_PER_EVENT = 0.003


def batch_cpu_seconds(events: int) -> float:
    return CPU_PER_BATCH + CPU_PER_EVENT * events


def batch_wait_seconds(events: int) -> float:
    return WAIT_PER_BATCH + WAIT_PER_EVENT * events


@dataclass(frozen=True)
class WorkerModel:
    """The inputs that set the worker's rate, as the real worker would see them."""

    flavour: str  # "celery" (GlitchTip 5) or "vtasks" (GlitchTip 6)
    pool: str  # celery pool; "threads" for vtasks (asyncio.to_thread)
    concurrency: int  # celery pool size / VTASKS_CONCURRENCY
    prefetch_multiplier: int  # celery only (0 = unlimited); 0 for vtasks
    flush_every: int  # batch size that triggers a flush
    flush_interval: float  # seconds between timer flushes / batch wait
    cpus: int

    @property
    def window(self) -> int | None:
        """Unacknowledged messages the worker may hold (None: unlimited)."""
        if self.flavour != "celery" or self.prefetch_multiplier == 0:
            return None
        return self.concurrency * self.prefetch_multiplier

    @property
    def parallel_batches(self) -> int:
        """Batches that can be stored at the same time."""
        if self.flavour == "vtasks":
            # The semaphore, and asyncio's default executor runs the sync task.
            return max(1, min(self.concurrency, min(32, self.cpus + 4)))
        if self.pool == "solo":
            return 1
        return max(1, self.concurrency)

    @property
    def cpu_slots(self) -> int:
        """Batches whose CPU work can run at once: processes up to the CPUs; threads share one
        interpreter lock."""
        if self.flavour == "celery" and self.pool in ("prefork", "processes"):
            return max(1, min(self.concurrency, self.cpus))
        return 1

    def describe(self) -> str:
        window = "unlimited" if self.window is None else str(self.window)
        return (
            f"{self.flavour} pool={self.pool} concurrency={self.concurrency} "
            f"prefetch={self.prefetch_multiplier} window={window} batch<={self.flush_every} "
            f"every {self.flush_interval:g}s cpus={self.cpus}"
        )


def host_cpus() -> int:
    """What Celery's default concurrency counts (os.cpu_count(), not the cgroup quota)."""
    return os.cpu_count() or 1


def _int(environ: Mapping[str, str], name: str, default: int, low: int = 0) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value < low:
        raise ValueError(f"{name}={raw!r} must be at least {low}")
    return value


def celery_model(environ: Mapping[str, str], cpus: int | None = None) -> WorkerModel:
    """The Celery worker GlitchTip 5's `celery -A glitchtip worker` starts in `environ`.

    Only variables present in the process environment reach Celery (click auto_envvar_prefix
    "CELERY" + the `worker` command): CELERY_WORKER_POOL, CELERY_WORKER_CONCURRENCY,
    CELERY_WORKER_PREFETCH_MULTIPLIER. A bad value fails like Celery's CLI does (ValueError).
    """
    cpus = cpus or host_cpus()
    pool = (environ.get("CELERY_WORKER_POOL") or CELERY_DEFAULT_POOL).strip()
    if pool not in CELERY_POOLS:
        raise ValueError(
            f"Invalid value for '-P' / '--pool': {pool!r} is not one of "
            + ", ".join(repr(p) for p in CELERY_POOLS)
        )
    concurrency = _int(environ, "CELERY_WORKER_CONCURRENCY", cpus, low=1)
    if pool == "solo":
        concurrency = 1
    prefetch = _int(environ, "CELERY_WORKER_PREFETCH_MULTIPLIER", CELERY_DEFAULT_PREFETCH)
    return WorkerModel(
        "celery",
        pool,
        concurrency,
        prefetch,
        CELERY_FLUSH_EVERY,
        CELERY_FLUSH_INTERVAL,
        cpus,
    )


def vtasks_model(environ: Mapping[str, str], cpus: int | None = None) -> WorkerModel:
    """django-vtasks' worker (GlitchTip 6) in `environ`: VTASKS_CONCURRENCY (an int; anything
    else falls back to the default 20, as django_vtasks.conf does)."""
    cpus = cpus or host_cpus()
    raw = environ.get("VTASKS_CONCURRENCY")
    try:
        concurrency = int(raw) if raw is not None else VTASKS_DEFAULT_CONCURRENCY
    except ValueError:
        concurrency = VTASKS_DEFAULT_CONCURRENCY
    return WorkerModel(
        "vtasks",
        "threads",
        max(1, concurrency),
        0,
        VTASKS_BATCH_COUNT,
        VTASKS_BATCH_TIMEOUT,
        cpus,
    )


def model_for(major: int, environ: Mapping[str, str], cpus: int | None = None) -> WorkerModel:
    return celery_model(environ, cpus) if major < 6 else vtasks_model(environ, cpus)


def service_rate(model: WorkerModel, batch: int) -> float:
    """Events/s the worker can store with a backlog, in batches of `batch`: parallel batches,
    their CPU part serialised on the CPU slots."""
    cpu = batch_cpu_seconds(batch)
    total = cpu + batch_wait_seconds(batch)
    per_second_parallel = model.parallel_batches / total
    per_second_cpu = model.cpu_slots / cpu
    return batch * min(per_second_parallel, per_second_cpu)


def steady_rate(model: WorkerModel) -> tuple[float, int]:
    """(events/s stored with an unbounded backlog, typical batch size), from the mechanism.

    A batch leaves when the buffer holds `flush_every` messages, else when the timer fires
    every `flush_interval`. A Celery window smaller than `flush_every` never fills a batch: the
    timer flushes `window` messages per interval. (celery-batches' size trigger counts received
    messages, which would add an early flush per 100 received; the recorded rates, 4.0/s and
    7.7/s = window / 2 s, and batch sizes, 8 and 16, show none: the recordings win.)
    Otherwise batches are full and the rate is the service rate.
    """
    window = model.window
    if model.flavour == "celery" and window is not None and window < model.flush_every:
        rate = window / model.flush_interval
        return min(rate, service_rate(model, window)), window
    batch = model.flush_every
    return service_rate(model, batch), batch


@dataclass(frozen=True)
class Recorded:
    """One recorded run of a real GlitchTip 5 on a 2-core host (contract NOTES.md)."""

    label: str
    environ: tuple[tuple[str, str], ...]
    processed_per_s: float


# NOTES.md "Recorded on 2026-11-26: ingest capacity of a real GlitchTip 5 on a 2-core host".
RECORDED: tuple[Recorded, ...] = (
    Recorded("uWSGI x1, worker defaults, 8 clients", (), 4.0),
    Recorded("uWSGI x1, worker defaults, 32 clients", (), 4.0),
    Recorded(
        "granian ASGI x2, threads x4",
        (("CELERY_WORKER_POOL", "threads"), ("CELERY_WORKER_CONCURRENCY", "4")),
        7.7,
    ),
    Recorded(
        "granian ASGI x2, threads x4, prefetch 25",
        (
            ("CELERY_WORKER_POOL", "threads"),
            ("CELERY_WORKER_CONCURRENCY", "4"),
            ("CELERY_WORKER_PREFETCH_MULTIPLIER", "25"),
        ),
        108.0,
    ),
    Recorded(
        "uWSGI x1, threads x4, prefetch 25",
        (
            ("CELERY_WORKER_POOL", "threads"),
            ("CELERY_WORKER_CONCURRENCY", "4"),
            ("CELERY_WORKER_PREFETCH_MULTIPLIER", "25"),
        ),
        128.0,
    ),
    Recorded(
        "uWSGI x2, threads x4, prefetch 100",
        (
            ("CELERY_WORKER_POOL", "threads"),
            ("CELERY_WORKER_CONCURRENCY", "4"),
            ("CELERY_WORKER_PREFETCH_MULTIPLIER", "100"),
        ),
        150.0,
    ),
)
RECORDED_CPUS = 2


def expected_batches(model: WorkerModel) -> int:
    """The batch size the recorded runs saw in the queue for this configuration."""
    return steady_rate(model)[1]


def drain_seconds(model: WorkerModel, backlog: int) -> float:
    """Seconds to store `backlog` queued events with no new load (whole batches)."""
    if backlog <= 0:
        return 0.0
    rate, _batch = steady_rate(model)
    return math.ceil(backlog) / rate
