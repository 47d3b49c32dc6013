"""The kit's durability knobs in one place: what makes "answered 200" mean "will be stored".

What is acknowledged when (public sources; docs/durability.md has the whole account):

- Valkey holds the queue in memory. The official image runs with its defaults: no append-only
  file, RDB snapshots at most every minute, so a SIGKILL of Valkey loses what was queued since
  the last snapshot. With `appendonly yes` every write is handed to the kernel (write(2)) before
  its reply goes out, whatever `appendfsync` says; `everysec` fsyncs once a second, so only a
  host crash or power cut (not a killed process) can cost the last second. `maxmemory` with
  `noeviction` makes a full Valkey refuse writes (an error GlitchTip answers with a 5xx, which
  SDKs may retry) instead of growing until the container's memory limit OOM-kills it with the
  whole queue.
- GlitchTip 5 (Celery + celery-batches, apps/event_ingest/tasks.py: FLUSH_EVERY 100,
  FLUSH_INTERVAL 2): kombu's Redis transport keeps each delivered message in the `unacked` hash
  until acknowledged; celery-batches (celery_batches/__init__.py `Batches.flush`) acknowledges a
  batch when a pool slot *starts* it unless the task is `acks_late`, and swallows a failing
  batch (celery_batches/trace.py) so it is acknowledged either way. Unacknowledged messages come
  back only after `visibility_timeout` (3600 s by default; kombu/transport/redis.py
  `restore_visible`, run when the worker starts and then every 100 s) or when it shuts down
  cleanly. GlitchTip's settings (glitchtip/settings.py) read neither from the environment, so
  the kit gives the worker a settings module of its own that imports GlitchTip's and sets both
  (`worker_settings_module`), Celery task annotations that retry an ingest batch the
  database failed instead of letting celery-batches drop it (worker_modules/glitchtip5_retry.py),
  and a kombu transport (CELERY_BROKER_TRANSPORT) whose consumer pops a message and records it
  in `unacked` in one Lua script, where kombu's own pops with BRPOP and records afterwards, so
  that neither a killed worker, a killed Valkey nor a full one loses the message in between
  (worker_modules/glitchtip5_transport.py).
- GlitchTip 6 (django-vtasks 2.1.2): the ingest queue is a batch queue (settings.py
  VTASKS_BATCH_QUEUES = {"ingest": {"count": 100, "timeout": 2.0}}) fetched with BLMPOP, which
  django-vtasks' own docstring calls unsafe: a killed worker loses the batches it holds; a batch
  that fails (Postgres gone) goes to the capped dead-letter list `{vt}:q:failed`. No setting
  changes either, but GlitchTip's `TASKS` setting names the backend class: the kit gives 6's
  worker a settings module too (provision/worker_modules/glitchtip6.py), which names a subclass
  of vtasks' Valkey backend that records each batch in the worker's processing list, puts back
  dead workers' lists and retries a batch the database failed (its docstring says how).
"""

from __future__ import annotations

from pathlib import Path

# -- Valkey (both majors) ------------------------------------------------------------------------
# The append-only file and its fsync policy. `always` would fsync before every reply (safe
# against power loss too) at a large cost in writes/s; `everysec` already keeps everything a
# killed Valkey acknowledged.
VALKEY_APPENDONLY = "yes"
VALKEY_APPENDFSYNC = "everysec"
# A full queue refuses new writes instead of evicting keys (the queue, sessions) or growing
# into an OOM kill.
VALKEY_MAXMEMORY_POLICY = "noeviction"
# maxmemory as a share of the container's memory limit: the rest is headroom for the AOF
# rewrite's fork (copy-on-write pages count against the cgroup), client buffers and
# fragmentation.
VALKEY_MAXMEMORY_PERCENT = 50


def valkey_maxmemory_mb(memory_limit_mb: int) -> int:
    """Valkey's `maxmemory` in MiB for a container limited to `memory_limit_mb`."""
    return max(32, memory_limit_mb * VALKEY_MAXMEMORY_PERCENT // 100)


def valkey_maxmemory(memory_limit_mb: int) -> str:
    """`maxmemory` as valkey-server reads it on its command line (`256mb`)."""
    return f"{valkey_maxmemory_mb(memory_limit_mb)}mb"


# -- Postgres (both majors) ----------------------------------------------------------------------
# GlitchTip's settings read DATABASE_CONN_HEALTH_CHECKS into CONN_HEALTH_CHECKS (5 and 6:
# glitchtip/settings.py); with Django's connection pool that makes the pool check a connection
# before handing it out (Django's postgresql backend: `check=ConnectionPool.check_connection`),
# so after a Postgres restart a batch waits for a new connection (DATABASE_POOL_TIMEOUT, 30 s)
# instead of failing on a stale one and being dropped (5) or dead-lettered (6). Its cost: one
# round trip per connection checkout.
DATABASE_CONN_HEALTH_CHECKS = "true"

# -- GlitchTip 5's Celery worker -------------------------------------------------------------------
# Acknowledge a batch after it is stored, not when it starts (a SIGKILL mid-batch then leaves the
# batch in `unacked` instead of losing it).
CELERY_TASK_ACKS_LATE = True
# Seconds a delivered message may stay unacknowledged before any worker puts it back on the
# queue. kombu looks when a worker starts (on_poll_init) and every 100 s after, so with 10 s a
# killed worker's messages are back as soon as the restarted worker starts if that is 10 s or
# more after the kill (`provision up`), otherwise ~100 s later (Docker's restart policy; measured
# on the real kombu 5.5.4, docs/durability.md). A healthy worker holds a message about its
# prefetch window / its rate plus the 2 s flush and one batch (a few seconds; bench_ingest
# prints the longest). One held longer is delivered again, and GlitchTip skips its row
# (bulk_create ignore_conflicts on (id, received)) but counts it twice in the issue and hourly
# statistics: counted twice, never lost (docs/durability.md).
CELERY_VISIBILITY_TIMEOUT = 10

# The worker's settings module (GlitchTip 5), mounted read-only and named by
# DJANGO_SETTINGS_MODULE (glitchtip/celery.py and manage.py only `setdefault` it).
WORKER_SETTINGS_MODULE = "glitchtip_kit_worker_settings"
WORKER_SETTINGS_DIR = "/kit/python"
WORKER_SETTINGS_FILE = f"python/{WORKER_SETTINGS_MODULE}.py"
# The worker's PYTHONPATH: the module's directory, then GlitchTip's code directory (the image's
# WORKDIR), so `glitchtip.settings` imports whether or not the image sets PYTHONPATH itself.
WORKER_PYTHONPATH = f"{WORKER_SETTINGS_DIR}:/code"


# GlitchTip 6's module: a file of its own (it holds the backend class), copied as it is.
WORKER6_SOURCE = Path(__file__).resolve().parent / "worker_modules" / "glitchtip6.py"
# GlitchTip 5's module ends with this file, copied as it is: Celery task annotations that retry
# an ingest batch the database failed, which celery-batches would otherwise log and drop.
WORKER5_RETRY_SOURCE = Path(__file__).resolve().parent / "worker_modules" / "glitchtip5_retry.py"
# ... and then with this one: kombu's Redis transport with a consumer that takes a message off
# the queue and records it in `unacked` in one step (a Lua script), named by
# CELERY_BROKER_TRANSPORT, so that no message is lost between kombu's pop and its record.
WORKER5_TRANSPORT_SOURCE = (
    Path(__file__).resolve().parent / "worker_modules" / "glitchtip5_transport.py"
)


def worker_settings_module(major: int = 5, embedded: tuple[int, int] | None = None) -> str:
    """The Python module the GlitchTip `major` worker loads as its Django settings.

    `embedded` (GlitchTip 5) is (concurrency, prefetch multiplier) for the minimal profile's
    all-in-one: app.py starts `app.Worker(pool="threads")` in-process, which reads neither the
    environment nor a command line, so Celery takes them from these settings or uses its own
    defaults (one thread per CPU, prefetch 4: a window of 8 on 2 CPUs, batches of 8 every 2 s,
    about 4 events/s). The standard worker gets them on its command line, so its module
    leaves them out (and keeps its digest).
    """
    if major == 6:
        return WORKER6_SOURCE.read_text(encoding="utf-8")
    timeout = CELERY_VISIBILITY_TIMEOUT
    retry = WORKER5_RETRY_SOURCE.read_text(encoding="utf-8")
    transport = WORKER5_TRANSPORT_SOURCE.read_text(encoding="utf-8")
    tuning = ""
    if embedded is not None:
        concurrency, prefetch = embedded
        tuning = f"""
# The all-in-one's embedded worker (app.py) reads its size from here only.
CELERY_WORKER_CONCURRENCY = {concurrency!r}
CELERY_WORKER_PREFETCH_MULTIPLIER = {prefetch!r}
"""
    return f'''"""GlitchTip 5 worker settings written by the GlitchTip kit (provision/durability).

GlitchTip's own settings, plus what makes an event it answered 200 survive a killed worker, a
killed or full Valkey or a Postgres restart: late acknowledgement of ingest batches, a short
visibility timeout, task annotations that retry an ingest batch the database failed, and a kombu
transport that takes a message off the queue and records it in one step (both at the end). Do
not edit: `provision render` writes this file again.
"""

from glitchtip.settings import *  # noqa: F401,F403
from glitchtip.settings import CELERY_BROKER_TRANSPORT_OPTIONS as _TRANSPORT

# celery-batches acknowledges a batch when it is stored instead of when it starts.
CELERY_TASK_ACKS_LATE = {CELERY_TASK_ACKS_LATE!r}
# kombu's Redis transport puts messages a dead worker held back on the queue after this long.
CELERY_BROKER_TRANSPORT_OPTIONS = {{**_TRANSPORT, "visibility_timeout": {timeout!r}}}
{tuning}
{retry}
{transport}'''


# -- Waiting events (provision status / verify) -------------------------------------------------
# An event unacknowledged longer than this is stuck (GlitchTip 5: a dead worker's messages).
STUCK_AFTER_SECONDS = 60
# A backlog is "not draining" when it did not shrink over this many seconds of sampling.
DRAIN_SAMPLE_SECONDS = 3.0
