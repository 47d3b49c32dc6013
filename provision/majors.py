"""The one table of what differs between GlitchTip 5 and GlitchTip 6 for a deployment.

Everything the kit does differently per major reads a field of `MAJORS[n]`; there is no
`if major == 5` anywhere else. Facts come from GlitchTip's public sources (see
`GLITCHTIP6.md` in the contract notes): 6 dropped Celery for django-vtasks, serves on 8000,
exposes `/metrics` without authentication, renamed the retention variable and removed pg_partman;
5 runs Celery with beat and supports pg_partman >= 5.

GlitchTip 5 comes as two codes the kit must both run (contract NOTES.md, "GlitchTip v5.1.0 ...
differs from the snapshot"): the released image v5.1.0 (August 2025, the kit's pin) and later
5.x code (the December 2025 snapshot most of NOTES.md was recorded on). Where they differ, the
kit renders what works on both; `RELEASES_5` below says which behaviour belongs to which:

- Valkey URL (broker, cache, sessions): v5.1.0 reads `REDIS_URL` only, later code
  `VALKEY_URL`, falling back to `REDIS_URL`. The kit renders both, one value
  (`valkey_url_envs`).
- Web server (`bin/run-web.sh`): v5.1.0 has no granian, `USE_ASYNC_SERVER=true` starts uvicorn
  on `UVICORN_PORT`; later code starts granian on `GRANIAN_PORT` with `USE_GRANIAN=true` (ASGI
  with `USE_ASYNC_SERVER=true`). The kit renders all of them, both ports 8000: uvicorn on
  v5.1.0, granian ASGI later (`web_server_env`), `WEB_CONCURRENCY` workers either way.
- `setup_advanced_partitions`: v5.1.0's calls `create_parent` with `p_type := 'native'` and
  `p_infinite_time_partitions`, which no pg_partman release accepts; later code's works with
  pg_partman 5. The kit runs it, then its own idempotent pg_partman 5 configuration of the same
  tables (`PARTMAN_TABLES`, provision/partman_sql.py).
- All-in-one beat schedule: v5.1.0's app.py writes `celerybeat-schedule` in the working
  directory, later code `/tmp/celerybeat-schedule`. The kit runs it from /tmp
  (`all_in_one_workdir`).

The web server of 5 is chosen here, not left to the image's default. GlitchTip 5's
`bin/start.sh` runs `bin/run-web.sh`, which starts uWSGI (`bin/run-uwsgi.sh`, `--http-socket` on
`$PORT`) unless told otherwise (table above). Recorded on a real GlitchTip 5 (contract NOTES.md):
uWSGI answers one request per connection without saying so, and sentry-sdk lost 11-17 of 40 events
of a burst; granian WSGI answers 200 to an uncompressed envelope but keeps only its first line
(events silently dropped); granian ASGI kept them all, and so did uvicorn on v5.1.0. So 5 is
deployed with an ASGI server that keeps connections alive, like 6.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Major:
    """How one GlitchTip major is deployed."""

    number: int
    # Image defaults: pinned tags, overridable in settings (mirrors, air-gapped hosts).
    glitchtip_image: str
    postgres_image: str
    valkey_image: str
    # The port the web server listens on inside the container (also exported as PORT).
    web_port: int
    # Environment that makes the image's `bin/start.sh` start the web server the kit wants
    # (name, value), rendered for every GlitchTip service; empty when the default is right.
    web_server_env: tuple[tuple[str, str], ...]
    web_command: str
    worker_command: str
    # A byte string found in the command line of the running worker process and in no other
    # process of the worker container: the worker healthcheck looks for it in /proc.
    worker_process_marker: str
    # The Valkey lists (database 0) holding the worker's queued tasks, ingest queue first:
    # `LLEN` of each is the backlog not yet fetched by the worker. 5: Celery's default queue
    # (GlitchTip 5 routes nothing elsewhere); 6: django-vtasks' "{vt}:" prefix + "q:<queue>"
    # for GlitchTip 6's VTASKS_QUEUES (its settings.py; django_vtasks/conf.py).
    task_queue_keys: tuple[str, ...]
    # Environment variables that set the worker's and the web server's concurrency.
    worker_concurrency_env: str
    web_concurrency_envs: tuple[str, ...]
    # Default web processes per CPU (`web_concurrency`, capped by memory). 5: 2. The ASGI server
    # the kit runs on 5 (uvicorn on v5.1.0, granian later) takes about 3x as long per ingest
    # request as the image's default uWSGI (recorded, NOTES.md: granian ASGI x2 113 envelopes/s
    # against uWSGI x1 up to 185/s; v5.1.0 measured in issue 17: uvicorn 70/s against 133/s),
    # so one process per CPU accepted about half of what uWSGI does; two per CPU match it while
    # keeping connections alive (bench/bench_ingest.py). 6: 1.
    web_processes_per_cpu: int
    # Celery's worker pool and prefetch multiplier (5); None where the worker has neither (6).
    # GlitchTip 5's bin/run-celery-with-beat.sh assigns CELERY_WORKER_POOL, _CONCURRENCY and
    # _PREFETCH_MULTIPLIER without `export`: its own defaults never reach Celery (which then runs
    # prefork, one process per CPU, prefetch 4), but a variable already in the container's
    # environment stays exported and does (click's auto_envvar_prefix "CELERY").
    worker_pool_env: str | None
    worker_prefetch_env: str | None
    # The worker stores events in batches of this many (5: celery-batches `flush_every` of the
    # ingest tasks; 6: VTASKS_BATCH_QUEUES["ingest"]["count"]), at least every 2 s.
    ingest_batch_size: int
    # GlitchTip's own default worker concurrency when the kit sets none (6: django-vtasks' 20
    # async slots in one process); None: the image's default depends on the host (5: CPUs).
    upstream_worker_concurrency: int | None
    # DATABASE_POOL_MAX_SIZE's default in GlitchTip's settings: connections per process.
    db_pool_default: int
    # The variable GlitchTip reads for event retention in days.
    retention_env: str
    # Prometheus metrics: path on the web service and whether a staff user's token is needed.
    metrics_path: str
    metrics_needs_staff_token: bool
    # pg_partman advanced partitioning (GLITCHTIP_ADVANCED_PARTITIONING + setup service).
    supports_partman: bool
    # The command of the one-shot partman setup service and the line it prints on success (it
    # exits 0 on failure too); None where partman is unsupported.
    partman_setup_command: str | None
    partman_setup_success: str | None
    # The all-in-one mode (`profile: minimal`): one GlitchTip container serves the web and runs
    # the worker (and beat). Its command, the environment that selects it, and whether it
    # still needs Valkey (6: no, with VALKEY_URL="" tasks, cache and sessions go to Postgres;
    # 5: yes, Celery's broker, the cache and the sessions are Valkey in its settings).
    all_in_one_command: str = "./bin/start.sh"
    all_in_one_env: tuple[tuple[str, str], ...] = ()
    all_in_one_needs_valkey: bool = True
    # The all-in-one's working directory when it must not be the image's (None: the image's).
    # GlitchTip v5.1.0's app.py keeps Celery beat's schedule `celerybeat-schedule` in it, which
    # the read-only root refuses (beat dies, no periodic task runs); /tmp is the tmpfs.
    all_in_one_workdir: str | None = None
    # The worker pool the all-in-one's embedded worker always runs, whatever the settings say
    # (None: it follows the settings). GlitchTip 5's app.py starts `app.Worker(pool="threads")`
    # with no concurrency or prefetch, so Celery takes those from the Django settings module
    # (provision/durability: the kit's module carries them in the minimal profile).
    all_in_one_worker_pool: str | None = None
    # Every variable the major's versions read the Valkey URL (broker, cache, sessions) from,
    # all rendered with the same value: v5.1.0 reads only REDIS_URL, later code VALKEY_URL.
    valkey_url_envs: tuple[str, ...] = ("VALKEY_URL",)
    # Log lines meaning the scheduler died while its container lives on (the healthcheck does
    # not see it): Celery's embedded beat process (`-B`, multiprocessing prints "Process Beat:"
    # and the traceback) and app.py's beat thread failing on its schedule file.
    scheduler_failure_markers: tuple[str, ...] = ()
    # The worker loads the kit's settings module (provision/durability.py): GlitchTip 5's
    # Celery reads acks_late and the visibility timeout from Django settings only; 6's
    # django-vtasks has no setting that would make its batch fetch safe, but its backend class
    # is a setting (TASKS), which the module points at the kit's subclass.
    worker_settings_overlay: bool = False


# Postgres images with pg_partman 5, by Postgres major (GlitchTip's own compose.partman.yml
# uses this family). The kit picks the one matching the Postgres major of `postgres_image`, so
# the data volume stays readable when the override swaps the image. The `-5` suffix pins
# pg_partman's major: the bare `<pg>` tag is the repository's default major, which "can change
# without notice" and once was a bitnami-based 4.7 (contract NOTES.md, last section).
PARTMAN_MAJOR = 5
PARTMAN_IMAGE_TEMPLATE = "ghcr.io/dbsystel/postgresql-partman:{postgres_major}-" + str(
    PARTMAN_MAJOR
)


@dataclass(frozen=True)
class PartmanTable:
    """One table GlitchTip 5's advanced partitioning hands to pg_partman (v5.1.0 and later alike:
    contract NOTES.md). The migrations make it hash-partitioned into `<name>_p0`..`_p3`, each
    `PARTITION BY RANGE (<control>)` without partitions; pg_partman manages each of the four."""

    name: str
    control: str
    retention_days: int
    # p_start_partition: now, or this many days back.
    start_days_back: int = 0


PARTMAN_TABLES = (
    PartmanTable("issue_events_issueaggregate", "date", 14),
    PartmanTable("performance_transactionevent", "start_timestamp", 90, start_days_back=1),
    PartmanTable("performance_transactiongroupaggregate", "date", 90),
)
PARTMAN_HASH_PARTITIONS = 4
PARTMAN_INTERVAL = "2 days"
PARTMAN_PREMAKE = 4


@dataclass(frozen=True)
class Release:
    """One GlitchTip 5 code line: what the kit's rendering must work with (it renders for all;
    the stand-in images copy each, tests/stack/test_standin_config.py holds them to this)."""

    name: str  # the stand-in's GLITCHTIP_STANDIN_RELEASE
    reads_valkey_url: bool  # else REDIS_URL only
    has_granian: bool  # else USE_ASYNC_SERVER=true starts uvicorn, USE_GRANIAN is unknown


RELEASES_5 = (
    Release("v5.1.0", reads_valkey_url=False, has_granian=False),
    Release("snapshot", reads_valkey_url=True, has_granian=True),
)


MAJORS: dict[int, Major] = {
    5: Major(
        number=5,
        glitchtip_image="glitchtip/glitchtip:v5.1.0",
        postgres_image="postgres:17.7",
        valkey_image="valkey/valkey:8.1",
        # granian ASGI (keep-alive, full request bodies); see the module docstring.
        web_port=8000,
        # v5.1.0 knows no USE_GRANIAN: USE_ASYNC_SERVER alone starts uvicorn on UVICORN_PORT.
        web_server_env=(
            ("USE_GRANIAN", "true"),
            ("USE_ASYNC_SERVER", "true"),
            ("GRANIAN_PORT", "8000"),
            ("UVICORN_PORT", "8000"),
        ),
        web_command="./bin/start.sh",
        worker_command="./bin/run-celery-with-beat.sh",
        worker_process_marker="glitchtip\0worker",
        task_queue_keys=("celery",),
        worker_concurrency_env="CELERY_WORKER_CONCURRENCY",
        # run-granian.sh and run-uvicorn.sh read WEB_CONCURRENCY (UWSGI_WORKERS: uWSGI only).
        web_concurrency_envs=("WEB_CONCURRENCY",),
        web_processes_per_cpu=2,
        worker_pool_env="CELERY_WORKER_POOL",
        worker_prefetch_env="CELERY_WORKER_PREFETCH_MULTIPLIER",
        ingest_batch_size=100,
        upstream_worker_concurrency=None,
        db_pool_default=10,
        retention_env="GLITCHTIP_MAX_EVENT_LIFE_DAYS",
        metrics_path="/api/0/observability/django/",
        metrics_needs_staff_token=True,
        supports_partman=True,
        partman_setup_command="./manage.py setup_advanced_partitions",
        partman_setup_success="Successfully configured all pg_partman tables",
        # app.py: migrate, then Celery worker (threads) + beat + pgpartition in threads beside
        # uvicorn on 0.0.0.0:8000 (its own fixed port).
        # bin/run-all-in-one.sh is `python app.py`: started by its absolute path so that the
        # working directory can be /tmp (v5.1.0's beat writes its schedule there).
        all_in_one_command="python /code/app.py",
        all_in_one_env=(),
        all_in_one_needs_valkey=True,
        all_in_one_workdir="/tmp",
        all_in_one_worker_pool="threads",
        valkey_url_envs=("VALKEY_URL", "REDIS_URL"),
        scheduler_failure_markers=("Process Beat:", "celerybeat-schedule'"),
        worker_settings_overlay=True,
    ),
    6: Major(
        number=6,
        glitchtip_image="glitchtip/glitchtip:6.2.6",
        postgres_image="postgres:18.1",
        valkey_image="valkey/valkey:9.0",
        # 6 serves with granian ASGI on 8000 by default (bin/run-granian.sh).
        web_port=8000,
        web_server_env=(),
        web_command="./bin/start.sh",
        worker_command="./bin/run-worker.sh",
        worker_process_marker="runworker",
        task_queue_keys=("{vt}:q:ingest", "{vt}:q:default"),
        worker_concurrency_env="VTASKS_CONCURRENCY",
        web_concurrency_envs=("WEB_CONCURRENCY",),
        web_processes_per_cpu=1,
        worker_pool_env=None,
        worker_prefetch_env=None,
        ingest_batch_size=100,
        upstream_worker_concurrency=20,
        db_pool_default=20,
        retention_env="GLITCHTIP_RETENTION_DAYS",
        metrics_path="/metrics",
        metrics_needs_staff_token=False,
        supports_partman=False,
        partman_setup_command=None,
        partman_setup_success=None,
        # bin/start.sh: SERVER_ROLE=all_in_one -> bin/run-all-in-one.sh (init unless SKIP_INIT,
        # then granian with django-vtasks' worker embedded); the kit's migrate service has done
        # the init already. Official compose.minimal.yml: postgres + this, VALKEY_URL="".
        all_in_one_command="./bin/start.sh",
        all_in_one_env=(("SERVER_ROLE", "all_in_one"), ("SKIP_INIT", "true")),
        all_in_one_needs_valkey=False,
        worker_settings_overlay=True,
    ),
}

DEFAULT_MAJOR = 6

# The metrics stack (compose.metrics.yml), the same for both majors: pinned official images,
# overridable in settings like the others.
PROMETHEUS_IMAGE = "prom/prometheus:v3.13.1"
GRAFANA_IMAGE = "grafana/grafana:12.4.1"  # grafana/grafana-oss is no longer updated from 12.4
POSTGRES_EXPORTER_IMAGE = "prometheuscommunity/postgres-exporter:v0.20.1"
VALKEY_EXPORTER_IMAGE = "oliver006/redis_exporter:v1.91.1"
# The TLS front door (provision/proxy/): the official Caddy image, pinned.
CADDY_IMAGE = "caddy:2.10.2"

# Postgres: the oldest major GlitchTip supports, and the first whose official image keeps its
# data in /var/lib/postgresql (PGDATA in a versioned subdirectory) instead of .../data.
MINIMUM_POSTGRES = 14
POSTGRES_NEW_LAYOUT = 18


def postgres_data_path(postgres_major: int) -> str:
    """Where the official Postgres image of `postgres_major` expects its volume."""
    if postgres_major >= POSTGRES_NEW_LAYOUT:
        return "/var/lib/postgresql"
    return "/var/lib/postgresql/data"


def partman_image_for(postgres_major: int) -> str:
    """The default pg_partman-capable image with the same Postgres major as the base image."""
    return PARTMAN_IMAGE_TEMPLATE.format(postgres_major=postgres_major)


def partman_reference() -> Major:
    """The major whose pg_partman facts `compose.part.yml` is rendered from.

    `compose.part.yml` is rendered for every major so that its shape is always checked; with a
    major that has no pg_partman (6) the settings refuse `advanced_partitioning`, so the file is
    never used there.
    """
    return next(major for major in MAJORS.values() if major.supports_partman)
