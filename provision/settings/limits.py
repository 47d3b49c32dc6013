"""Memory, CPU and process limits of the containers, derived from the host and the settings.

Docker bounds nothing by default: one runaway container (a worker holding a huge batch, a
Postgres query gone wrong, a fork loop) can take the whole host's memory and starve the rest.
Every service of every compose file therefore carries `mem_limit`, `cpus` and `pids_limit`.

The limits of the services whose needs grow with the host or the settings (web and worker by
their processes, Postgres by its buffers and connections, Valkey by its queue) are derived here,
written to `.env` by `provision render` and reach the compose files through `${VAR:-default}`
interpolation, so the committed compose files stay the same on every host. The small services
(exporters, Prometheus, Grafana, Locust) have fixed limits written in their template.

A limit is a ceiling, not a reservation: the limits of all services may add up to more than
the host has. Each is sized above what the service was seen to need under load, and capped at
the host's memory (a larger figure bounds nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from provision import durability
from provision.settings.sizing import worker_processes

if TYPE_CHECKING:
    from provision import majors
    from provision.settings.model import Settings

# Memory of one GlitchTip process: a granian worker or the worker's one process at rest holds
# about 150-250 MiB (Django, the SDK parsers); the rest is headroom for large envelopes.
WEB_BASE_MB = 256
WEB_PER_PROCESS_MB = 384
# GlitchTip 6's worker (one process, 20 async slots) and GlitchTip 5's threaded Celery worker
# hold whole batches of 100 events in memory; a prefork Celery worker forks one process a slot.
WORKER_SINGLE_PROCESS_MB = 1024
WORKER_PREFORK_BASE_MB = 384
WORKER_PER_CHILD_MB = 256
# Postgres: a backend needs a few MiB plus work_mem (4 MiB by default) per sort or hash.
POSTGRES_PER_CONNECTION_MB = 8
POSTGRES_BASE_MB = 256
# Valkey holds the task queue: a backlog of events waits there while the worker catches up.
VALKEY_MIN_MB = 256
VALKEY_MAX_MB = 4096
# Threads and processes: Python threads (asyncio executors, connection pools, granian's
# runtime) and Postgres's one process per connection each count as one pid.
PIDS_PER_WEB_PROCESS = 128
PIDS_BASE = 64
WORKER_PIDS = 256
PIDS_PER_PREFORK_CHILD = 64
POSTGRES_EXTRA_PIDS = 64  # checkpointer, walwriter, autovacuum workers, parallel workers


def web_memory_mb(web_concurrency: int, host_memory_mb: int) -> int:
    """The web service: a base plus one granian worker's share per process."""
    return _cap(WEB_BASE_MB + WEB_PER_PROCESS_MB * web_concurrency, host_memory_mb)


def worker_memory_mb(major: majors.Major, pool: str, concurrency: int, host_memory_mb: int) -> int:
    """The worker service (and migrate, also one Django process doing large work)."""
    processes = worker_processes(major, pool, concurrency)
    if processes == 1:
        return _cap(WORKER_SINGLE_PROCESS_MB, host_memory_mb)
    return _cap(WORKER_PREFORK_BASE_MB + WORKER_PER_CHILD_MB * processes, host_memory_mb)


def postgres_memory_mb(
    shared_buffers_mb: int, maintenance_work_mem_mb: int, max_connections: int, host_memory_mb: int
) -> int:
    """Postgres: shared buffers (charged to the container's memory), vacuum and index builds
    (maintenance_work_mem, twice: autovacuum and a manual one), and every connection."""
    needed = (
        shared_buffers_mb
        + 2 * maintenance_work_mem_mb
        + POSTGRES_PER_CONNECTION_MB * max_connections
        + POSTGRES_BASE_MB
    )
    return _cap(needed, host_memory_mb)


def valkey_memory_mb(host_memory_mb: int) -> int:
    """Valkey: a quarter of the host, from 256 MiB to 4 GiB (the queue's backlog under load)."""
    return _cap(max(VALKEY_MIN_MB, min(host_memory_mb // 4, VALKEY_MAX_MB)), host_memory_mb)


def web_pids(web_concurrency: int) -> int:
    """Threads and processes of the web service."""
    return PIDS_BASE + PIDS_PER_WEB_PROCESS * web_concurrency


def worker_pids(major: majors.Major, pool: str, concurrency: int) -> int:
    """Threads and processes of the worker service."""
    processes = worker_processes(major, pool, concurrency)
    return WORKER_PIDS + PIDS_PER_PREFORK_CHILD * (processes - 1)


def postgres_pids(max_connections: int) -> int:
    """One process per connection plus Postgres's own background processes."""
    return max_connections + POSTGRES_EXTRA_PIDS


def _cap(needed_mb: int, host_memory_mb: int) -> int:
    return max(64, min(needed_mb, host_memory_mb))


def mebibytes(value: int) -> str:
    """A size in MiB as Compose reads it (`mem_limit: 1024m`)."""
    return f"{value}m"


def cpus(host_cpus: int) -> str:
    """The CPU limit of the main services: all of the host's CPUs (Docker refuses more than
    the host has, so it is host-derived and lives in `.env`). It stops none of them from
    using the host; the small services have fractions written in their templates."""
    return str(max(1, host_cpus))


def limit_values(settings: Settings, host_cpus: int) -> dict[str, str]:
    """The `.env` keys of the host- and settings-derived limits (see the module docstring).

    In the minimal profile the web container is GlitchTip's all-in-one: the web server and the
    worker in one container, so its limits are the sum of both."""
    from provision.profiles import is_minimal

    worker_threads = worker_pids(settings.major, settings.worker_pool, settings.worker_concurrency)
    web_memory = settings.web_memory_limit_mb
    web_threads = web_pids(settings.web_concurrency)
    if is_minimal(settings):
        web_memory += settings.worker_memory_limit_mb
        web_threads += worker_threads
    return {
        "GLITCHTIP_KIT_CPUS": cpus(host_cpus),
        "GLITCHTIP_KIT_WEB_MEMORY_LIMIT": mebibytes(web_memory),
        "GLITCHTIP_KIT_WORKER_MEMORY_LIMIT": mebibytes(settings.worker_memory_limit_mb),
        "GLITCHTIP_KIT_POSTGRES_MEMORY_LIMIT": mebibytes(settings.postgres_memory_limit_mb),
        "GLITCHTIP_KIT_VALKEY_MEMORY_LIMIT": mebibytes(settings.valkey_memory_limit_mb),
        "GLITCHTIP_KIT_VALKEY_MAXMEMORY": durability.valkey_maxmemory(
            settings.valkey_memory_limit_mb
        ),
        "GLITCHTIP_KIT_WEB_PIDS_LIMIT": str(web_threads),
        "GLITCHTIP_KIT_WORKER_PIDS_LIMIT": str(worker_threads),
        "GLITCHTIP_KIT_POSTGRES_PIDS_LIMIT": str(postgres_pids(settings.postgres_max_connections)),
    }
