"""Host-derived defaults: CPUs and memory, the web and worker concurrency, the database pools
and Postgres's connections and memory. Pure functions of the host and the GlitchTip major."""

from __future__ import annotations

import os

from provision import majors


def host_resources() -> tuple[int, int]:
    """(usable CPUs, memory in MiB) of this host."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError, AttributeError):
        memory = 2048
    return max(cpus, 1), max(memory, 256)


def derive_concurrency(cpus: int, memory_mib: int, web_per_cpu: int = 1) -> tuple[int, int]:
    """(web, worker) concurrency for a host: `web_per_cpu` web processes per CPU (the major's
    `web_processes_per_cpu`), two worker slots per CPU, both capped by memory after keeping
    1 GiB for Postgres, Valkey and the OS (a web process needs about 300 MiB, a worker process
    about 200 MiB). The worker figure is for a worker that forks a process per slot (Celery
    prefork); see `derive_worker_concurrency`."""
    budget = max(memory_mib - 1024, 256)
    web = max(1, min(cpus * web_per_cpu, budget // 300, 8))
    worker = max(1, min(cpus * 2, budget // 200, 16))
    return web, worker


def derive_worker_pool(cpus: int, memory_mib: int, fixed: str | None = None) -> str:
    """GlitchTip 5's Celery pool: `fixed` where the deployment's worker always runs one (the
    minimal profile's all-in-one: GlitchTip's app.py starts a threaded worker, so memory and
    connections are sized for threads); else prefork (Celery's and GlitchTip's image default)
    where the host has two or more CPUs and memory for two or more forked slots, else
    threads. Storing a
    batch is mostly Python work, so one threaded process stores on one CPU at a time (the
    interpreter lock): on 2 CPUs it stored ~90-150 events/s (stand-in; a real GlitchTip 5 with
    4 threads was recorded at 108-150/s) while the kit's web accepts ~180/s, so a 30 s burst
    took 17-30 s to drain; forked slots use every CPU (docs/durability.md, "Draining a
    burst"). Threads keep one process's memory on a one-CPU or small host."""
    if fixed is not None:
        return fixed
    if cpus >= 2 and derive_concurrency(cpus, memory_mib)[1] >= 2:
        return "prefork"
    return "threads"


# Threads of a threaded Celery worker: they share one process (and its memory), so memory does
# not cap them; the interpreter lock makes more than 2 per CPU useless for storing batches.
MAX_WORKER_THREADS = 16

# Connections kept free of the pools: migrate and `manage.py` one-offs, psql, and Postgres's
# superuser_reserved_connections (3).
RESERVED_CONNECTIONS = 10

POSTGRES_DEFAULT_MAX_CONNECTIONS = 100


def derive_worker_concurrency(major: majors.Major, pool: str, cpus: int, memory_mib: int) -> int:
    """Worker slots: GlitchTip's own default where it has one that does not depend on the host
    (6: django-vtasks' 20 async slots in one process, the figure its batch queue and thread
    lanes are built around; the kit used to give it 2 per CPU, far fewer); for Celery (5) two
    per CPU, capped by memory only when each slot is a forked process."""
    if major.upstream_worker_concurrency is not None:
        return major.upstream_worker_concurrency
    if pool == "threads":
        return max(2, min(cpus * 2, MAX_WORKER_THREADS))
    if pool == "solo":
        return 1
    return derive_concurrency(cpus, memory_mib)[1]


def worker_prefetch_default(major: majors.Major) -> int:
    """Celery's prefetch multiplier: the worker may hold concurrency x this unacknowledged
    messages, and celery-batches only stores a full batch (`ingest_batch_size`, 100) when that
    window holds one. Celery's default, 4, gives a window of 8 on 2 CPUs: a batch of 8 every
    2 s, ~4 events/s (recorded on a real GlitchTip 5). A multiplier of one batch lets every
    thread hold a full batch (recorded ~150 events/s with 4 threads on 2 CPUs)."""
    return major.ingest_batch_size


def worker_processes(major: majors.Major, pool: str, concurrency: int) -> int:
    """Processes the worker container runs that each open their own database pool."""
    if major.worker_pool_env is not None and pool == "prefork":
        return concurrency
    return 1


def worker_db_slots(major: majors.Major, pool: str, concurrency: int) -> int:
    """Connections one worker process may want at once: one per thread or async slot."""
    if major.worker_pool_env is not None and pool in ("prefork", "solo"):
        return 1
    return concurrency


def derive_db_pool_max_size(major: majors.Major, pool: str, concurrency: int) -> int:
    """DATABASE_POOL_MAX_SIZE: GlitchTip's default (5: 10, 6: 20 per process), raised to the
    worker's slots so no thread or task waits for a connection (GlitchTip's pool times out
    after 30 s and the task fails)."""
    return max(major.db_pool_default, worker_db_slots(major, pool, concurrency))


def connections_needed(
    major: majors.Major, pool: str, worker_concurrency: int, web_concurrency: int, pool_max: int
) -> int:
    """The most connections the stack can open: every web and worker process's full pool, plus
    the reserve."""
    processes = web_concurrency + worker_processes(major, pool, worker_concurrency)
    return processes * pool_max + RESERVED_CONNECTIONS


def derive_postgres_memory(memory_mib: int) -> tuple[int, int, int]:
    """(shared_buffers, effective_cache_size, maintenance_work_mem) in MiB for a host running
    Postgres next to GlitchTip: an eighth of memory for shared buffers (a quarter is the usual
    advice for a host of its own; GlitchTip's processes need the rest), half as the planner's
    cache estimate, a 32nd for vacuum and index builds; Postgres's own defaults as the floor."""
    shared = max(128, min(memory_mib // 8, 8192))
    cache = max(512, memory_mib // 2)
    maintenance = max(64, min(memory_mib // 32, 1024))
    return shared, cache, maintenance
