"""Entry points of the stand-in GlitchTip image (called by bin/*.sh and manage.py).

    python3 -m standin migrate      ./bin/run-migrate.sh
    python3 -m standin web          ./bin/start.sh (the image's CMD)
    ./manage.py runworker           ./bin/run-worker.sh (6)
    python3 -m standin all-in-one   ./bin/run-all-in-one.sh (6) and app.py (5): web + worker
    python3 -m standin celery ...   ./bin/run-celery-with-beat.sh (5)
    python3 -m standin manage ARGS  ./manage.py ARGS

The fake GlitchTip (tests/fakeglitchtip, copied into the image) does the HTTP API; this module
wires it to Postgres (PostgresStore) and Valkey (ValkeyQueue) and adds the image's behaviour:
loud failures on a wrong DATABASE_URL / VALKEY_URL, ALLOWED_HOSTS, the ports of each major.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from . import config
from .config import die


def _initial_state() -> dict:
    from fakeglitchtip.store import initial_state

    return initial_state()


def _db(wait: float = 10.0):
    """A Postgres connection, or a loud exit naming the (redacted) URL and the cause."""
    import psycopg2

    from . import pgstore

    dsn = config.database_dsn()
    try:
        return dsn, pgstore.connect(dsn, wait=wait)
    except psycopg2.OperationalError as exc:
        reason = " ".join(str(exc).split())
        die(f"cannot connect to the database {config.describe_dsn(dsn)}: {reason}")
    raise AssertionError  # unreachable


def _store(dsn: dict):
    import psycopg2

    from . import pgstore

    store = pgstore.PostgresStore(
        dsn, _initial_state(), health_checks=config.env_bool("DATABASE_CONN_HEALTH_CHECKS")
    )
    try:
        with store.transaction():
            pass
    except pgstore.NotMigrated as exc:
        die(f"the database is not migrated: {exc}")
    except psycopg2.Error as exc:
        die(f"database error: {' '.join(str(exc).split())}")
    return store


def _queue(dsn: dict, wait: float = 10.0, *, kit_backend: bool = False):
    """ValkeyQueue on VALKEY_URL (loud exit when unreachable); PostgresQueue when it is "".
    `kit_backend` (a GlitchTip 6 worker whose TASKS name the kit's backend): the queue that
    keeps batches in a processing list (standin.kitvtasks)."""
    url = config.valkey_url()
    if url is None:
        from . import pgstore

        print("VALKEY_URL is empty: queueing events in Postgres", flush=True)
        return pgstore.PostgresQueue(dsn)
    import redis

    from . import valkeyqueue

    try:
        client = valkeyqueue.connect(url, wait=wait)
    except (redis.exceptions.RedisError, ValueError) as exc:
        die(f"cannot connect to Valkey at {config.redact_url(url)}: {exc}")
    if kit_backend:
        from . import kitvtasks

        return kitvtasks.RecordingQueue(client, valkeyqueue.queue_key(config.major()))
    return valkeyqueue.ValkeyQueue(client, valkeyqueue.queue_key(config.major()))


# -- migrate ---------------------------------------------------------------------------------
def cmd_migrate() -> int:
    from . import pgstore

    dsn, conn = _db()
    advanced = config.major() < 6 and config.env_bool("GLITCHTIP_ADVANCED_PARTITIONING")
    print(f"Operations to perform: apply stand-in migrations on {config.describe_dsn(dsn)}")
    try:
        applied = pgstore.migrate(
            conn,
            _initial_state(),
            advanced_partitioning=advanced,
            vtasks_tables=config.major() >= 6,
        )
    except Exception as exc:
        die(f"migration failed: {' '.join(str(exc).split())}")
    for name in applied:
        print(f"  Applying standin.{name}... OK")
    if not applied:
        print("  No migrations to apply.")
    conn.close()
    if FIRST_MIGRATION in applied:
        _populate_initial_user(dsn)
    return 0


# The stand-in's first migration: applied only on an empty database.
FIRST_MIGRATION = "0001_state"


def _populate_initial_user(dsn: dict) -> None:
    """GlitchTip's users migration 0013 (`provision_user_and_token`): with INITIAL_USER_EMAIL and
    INITIAL_USER_PASSWORD both set, create that superuser. Like the real migration it runs once,
    when first applied on an empty database; a later migrate (or later variables) does nothing.
    (INITIAL_USER_AUTH_TOKEN, a token with the single scope org:admin, is not copied.)"""
    from fakeglitchtip import create_superuser

    email = config.env("INITIAL_USER_EMAIL")
    password = config.env("INITIAL_USER_PASSWORD")
    if email is None or password is None:
        return
    create_superuser(_store(dsn), email, password)
    print("  Applying users.0013_populate_user_and_token... OK")


# -- manage.py -------------------------------------------------------------------------------
def cmd_createsuperuser(args: list[str]) -> int:
    # Django's createsuperuser reads os.environ itself, not GlitchTip's FileAwareEnv: no _FILE.
    email = os.environ.get("DJANGO_SUPERUSER_EMAIL")
    password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
    for i, arg in enumerate(args):
        if arg.startswith("--email="):
            email = arg.split("=", 1)[1]
        elif arg == "--email" and i + 1 < len(args):
            email = args[i + 1]
    if "--noinput" not in args and "--no-input" not in args:
        die("the stand-in supports only `createsuperuser --noinput`")
    if not email:
        print("CommandError: You must use --email with --noinput.", file=sys.stderr)
        return 1
    from fakeglitchtip import create_superuser

    dsn, conn = _db()
    conn.close()
    store = _store(dsn)
    if not create_superuser(store, email, password or ""):
        print("CommandError: Error: That email is already taken.", file=sys.stderr)
        return 1
    print("Superuser created successfully.")
    return 0


# What GlitchTip 5's command prints when every table is configured (the kit greps for it).
PARTMAN_SUCCESS = "Successfully configured all pg_partman tables"
# (table, p_start_partition) as GlitchTip 5 configures them: start now, or one day back for
# transaction events; retention 14 days for issue aggregates, 90 for the others.
PARTMAN_CONFIG = (
    ("issue_events_issueaggregate", "date", "now()", "14 days"),
    ("performance_transactionevent", "start_timestamp", "now() - interval '1 day'", "90 days"),
    ("performance_transactiongroupaggregate", "date", "now()", "90 days"),
)


def _create_parent_sql(parent: str, control: str, start: str) -> str:
    """The create_parent call of each release (contract NOTES.md). v5.1.0's asks for
    `p_type := 'native'` and `p_infinite_time_partitions`, which no pg_partman release accepts
    (5.x: neither exists; 4.7: no p_default_table): pg_partman itself refuses it here too."""
    common = (
        f"p_parent_table := '{parent}', p_control := '{control}', p_interval := '2 days',"
        f" p_premake := 4, p_start_partition := to_char({start}, 'YYYY-MM-DD HH24:MI:SS'),"
        " p_default_table := false"
    )
    if config.is_v510():
        return (
            f"SELECT partman.create_parent({common}, p_type := 'native',"
            " p_infinite_time_partitions := true)"
        )
    return f"SELECT partman.create_parent({common}, p_type := 'range')"


def cmd_setup_advanced_partitions() -> int:
    """GlitchTip 5's command: pg_partman setup of the 12 parents; on failure it prints and
    STILL exits 0. Unlike the real one, a parent pg_partman already manages is skipped."""
    if config.major() >= 6:
        print("Unknown command: 'setup_advanced_partitions'", file=sys.stderr)
        return 1
    if not config.env_bool("GLITCHTIP_ADVANCED_PARTITIONING"):
        print("GLITCHTIP_ADVANCED_PARTITIONING is not enabled; nothing to do.")
        return 0
    _dsn, conn = _db()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE SCHEMA IF NOT EXISTS partman")
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")
        for table, control, start, retention in PARTMAN_CONFIG:
            with conn, conn.cursor() as cur:
                for index in range(4):
                    parent = f"public.{table}_p{index}"
                    cur.execute(
                        "SELECT 1 FROM partman.part_config WHERE parent_table = %s", (parent,)
                    )
                    if not cur.fetchone():
                        cur.execute(_create_parent_sql(parent, control, start))
                cur.execute(
                    "UPDATE partman.part_config SET retention = %s,"
                    " retention_keep_table = false, infinite_time_partitions = true"
                    " WHERE parent_table LIKE %s",
                    (retention, f"public.{table}_p%"),
                )
            print(f"Configured pg_partman for {table}.")
        print(PARTMAN_SUCCESS)
    except Exception as exc:
        print(
            "An error occurred during pg_partman table configuration: " + " ".join(str(exc).split())
        )
    finally:
        conn.close()
    return 0


def cmd_manage(args: list[str]) -> int:
    if not args or args[0] in {"help", "-h", "--help"}:
        names = ["check", "createsuperuser", "migrate"]
        if config.major() < 6:
            names.append("setup_advanced_partitions")
        else:
            names.append("runworker")
        print("Available subcommands (stand-in):\n  " + "\n  ".join(names))
        return 0
    name, rest = args[0], args[1:]
    if name == "createsuperuser":
        return cmd_createsuperuser(rest)
    if name == "setup_advanced_partitions":
        return cmd_setup_advanced_partitions()
    if name == "migrate":
        return cmd_migrate()
    if name == "check":
        dsn, conn = _db(wait=0)
        conn.close()
        _queue(dsn, wait=0)
        print("System check identified no issues (0 silenced).")
        return 0
    if name == "runworker" and config.major() >= 6:
        return cmd_worker(rest)
    print(f"Unknown command: {name!r}", file=sys.stderr)
    return 1


# -- worker ----------------------------------------------------------------------------------
def _record_aggregate(conn, count: int) -> None:
    """Write ingest counts into the partitioned table, as GlitchTip's issue aggregates do: with
    advanced partitioning but no pg_partman partitions this fails like the real thing."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO issue_events_issueaggregate (date, count) VALUES (now(), %s)", (count,)
        )


def _stop_on_signals(stop: threading.Event | None) -> threading.Event:
    """`stop` when given (an embedded worker: the process's signals belong to its web server),
    else a new event set by SIGTERM and SIGINT."""
    if stop is not None:
        return stop
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_worker(argv: list[str] | None = None, stop: threading.Event | None = None) -> int:
    """The worker: stores queued events in batches as the real worker would (standin.batchworker,
    standin.capacity), plus uptime checks. `argv` is the celery command line (GlitchTip 5);
    `stop` is given when the worker runs embedded in the web process (all-in-one)."""
    import psycopg2
    from fakeglitchtip import run_uptime_checks
    from fakeglitchtip.worker import store_batch

    from . import batchworker, capacity

    celery = _celery_settings() if config.major() < 6 else None
    if celery and config.ALL_IN_ONE:
        from .workersettings import embedded_worker_environ

        environ = embedded_worker_environ(celery)  # app.py's worker: no command line
    else:
        environ = _worker_environ(argv or [])
    try:
        model = capacity.model_for(config.major(), environ)
    except ValueError as exc:  # Celery's CLI refuses a bad option value before starting
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        return 2
    dsn, conn = _db()
    store = _store(dsn)
    backend = _tasks_backend() if config.major() >= 6 else ""
    from . import workersettings

    queue = _queue(dsn, kit_backend=workersettings.is_kit_backend(backend))
    if celery and celery.take_script and hasattr(queue, "use_kit_transport"):
        queue.use_kit_transport(celery.take_script, celery.bind_script)  # CELERY_BROKER_TRANSPORT
    if celery and hasattr(queue, "bind"):
        try:
            queue.bind()  # kombu binds the consumed queue when the worker starts
        except Exception as exc:  # Celery: "Unrecoverable error", the worker process exits
            print(
                f"[CRITICAL/MainProcess] Unrecoverable error: {type(exc).__name__}({exc})",
                file=sys.stderr,
                flush=True,
            )
            return 1
    if not hasattr(queue, "fetch"):
        return _worker_polling(dsn, conn, store, queue, stop, backend)
    stop = _stop_on_signals(stop)
    aggregate_lock = threading.Lock()

    aggregate_conn = [conn]

    def store_and_count(items: list[dict]) -> int:
        # A failure is raised to the batch worker, which does what the real worker does with
        # the batch (celery-batches: acknowledged and gone; django-vtasks: dead-lettered).
        # The aggregate row goes through the same health-checked store connection, so a stale
        # connection after a Postgres restart cannot fail a batch that is already stored.
        count = store_batch(store, items)
        if count:
            with aggregate_lock:
                try:
                    _record_aggregate(aggregate_conn[0], count)
                except psycopg2.Error:
                    aggregate_conn[0] = _db(wait=30)[1]
                    _record_aggregate(aggregate_conn[0], count)
        return count

    worker = batchworker.BatchWorker(
        model,
        queue,
        store_and_count,
        acks_late=bool(celery and celery.acks_late),
        # The kit's module wraps the batch task's __call__ (Celery task_annotations): a batch
        # the database failed is retried there; without it the failure is swallowed as before.
        call_around=celery.call_around if celery else None,
        log=lambda line: print(line, flush=True),
    )
    banner = f"stand-in worker (GlitchTip {config.major()}) ready: {model.describe()}"
    if celery:
        banner += (
            f", settings {celery.module}, acks_late={celery.acks_late}, "
            f"visibility_timeout={celery.visibility_timeout:g}s, "
            f"ingest_event __call__ annotated={celery.call_around is not None}, "
            f"transport {celery.transport or 'redis'}"
        )
        _start_restorer(queue, celery.visibility_timeout, stop, celery.eager_restore_s)
    if backend:
        banner += f", task backend {backend}"
    if hasattr(queue, "start_keeper"):
        queue.start_keeper(stop, lambda line: print(line, flush=True))
    print(banner, flush=True)
    worker.start()
    beat = _open_beat_schedule(argv or [])
    uptime_every = float(config.env("STANDIN_UPTIME_INTERVAL", "10") or 10)
    while not stop.wait(uptime_every):
        if not beat:
            continue  # the embedded beat died: events are stored, periodic tasks never run
        try:
            run_uptime_checks(store)
        except Exception as exc:
            print(f"worker error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    worker.stop()
    restored = queue.restore_delivered()  # kombu at a clean shutdown (SIGTERM), never at SIGKILL
    if restored:
        print(f"Restored {restored} unacknowledged message(s)", flush=True)
    print("stand-in worker stopped", flush=True)
    return 0


def _tasks_backend() -> str:
    """GlitchTip 6's task backend class from the worker's settings module; a module that does
    not import stops the worker loudly, as Django would."""
    from . import workersettings

    try:
        return workersettings.load_tasks_backend()
    except Exception as exc:
        die(f"cannot load the settings module: {type(exc).__name__}: {exc}")
    raise AssertionError  # unreachable


def _celery_settings():
    """The worker's Celery settings from its Django settings module (standin.workersettings);
    a module that does not import stops the worker loudly, as Django would."""
    from . import workersettings

    try:
        return workersettings.load()
    except Exception as exc:
        die(f"cannot load the settings module: {type(exc).__name__}: {exc}")
    raise AssertionError  # unreachable


def _start_restorer(
    queue, visibility_timeout: float, stop: threading.Event, eager_s: float = 0.0
) -> None:
    """kombu's restore of messages unacknowledged longer than the visibility timeout
    (kombu/transport/redis.py, kombu 5.5): `QoS.restore_visible` acts on its calls 1, 11, 21...
    (RESTORE_INTERVAL); call 1 is `MultiChannelPoller.on_poll_init` when the worker's event loop
    starts, the others come from `loop.call_repeatedly(10, cycle.maybe_restore_messages)`
    (RESTORE_EVERY), whose first call is 10 s after the start. So it acts at 0 s, 100 s,
    200 s... (measured on the real Celery 5.5.3/kombu 5.5.4: a killed worker's messages, too young
    at the restarted worker's start, came back ~100 s after it was ready). The kit's transport
    (`eager_s`, its `_EAGER_RESTORE_SECONDS`) acts on every look for a channel's first minute:
    after the worker's start and after each reconnection (`queue.channel_started`)."""
    from . import workersettings

    def restore() -> None:
        try:
            restored = queue.restore_visible(visibility_timeout)
            if restored:
                print(f"Restored {restored} message(s) past the visibility timeout", flush=True)
        except Exception as exc:
            print(f"restore failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    def run() -> None:
        calls = 1  # on_poll_init
        restore()
        while not stop.wait(workersettings.RESTORE_EVERY):
            calls += 1
            started = getattr(queue, "channel_started", None)
            eager = started is not None and time.monotonic() < started + eager_s
            if eager or (calls - 1) % workersettings.RESTORE_INTERVAL == 0:
                restore()

    threading.Thread(target=run, name="restore-visible", daemon=True).start()


def _open_beat_schedule(argv: list[str]) -> bool:
    """`celery worker -B -s FILE` (GlitchTip 5's run-celery-with-beat.sh, FILE in /tmp): the
    embedded beat opens its shelve schedule file at start. Where it cannot (a read-only root
    file system without a writable /tmp), the real beat process dies with the error and the
    worker goes on without periodic tasks; the stand-in does the same (no uptime checks)."""
    if "-B" not in argv and "--beat" not in argv:
        return True
    path = "celerybeat-schedule"  # Celery's default: in the working directory (/code)
    for i, arg in enumerate(argv):
        if arg in ("-s", "--schedule") and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--schedule="):
            path = arg.partition("=")[2]
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        print(f"[ERROR/Beat] Process Beat: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.stderr.flush()
        return False
    return True


# Celery's worker options the stand-in understands, and the variables click would read them from.
_CELERY_FLAGS = {
    "-P": "CELERY_WORKER_POOL",
    "--pool": "CELERY_WORKER_POOL",
    "-c": "CELERY_WORKER_CONCURRENCY",
    "--concurrency": "CELERY_WORKER_CONCURRENCY",
    "--prefetch-multiplier": "CELERY_WORKER_PREFETCH_MULTIPLIER",
}


def _worker_environ(argv: list[str]) -> dict[str, str]:
    """The worker's settings: the process environment (what click's auto_envvar_prefix sees:
    only exported variables), overridden by command-line flags, as Celery's CLI does."""
    import os

    environ = dict(os.environ)
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, _, value = arg.partition("=")
        if name in _CELERY_FLAGS:
            if not value and i + 1 < len(argv):
                i += 1
                value = argv[i]
            environ[_CELERY_FLAGS[name]] = value
        elif arg.startswith("-c") and len(arg) > 2 and arg[2:].isdigit():
            environ["CELERY_WORKER_CONCURRENCY"] = arg[2:]
        i += 1
    return environ


def _worker_polling(
    dsn, conn, store, queue, stop: threading.Event | None = None, backend: str = ""
) -> int:
    """VALKEY_URL="" (Postgres queue, django-vtasks' database backend): one event at a time.
    `backend`: the task backend class GlitchTip 6's settings module names (in the banner)."""
    from fakeglitchtip import process_pending, run_uptime_checks

    stop = _stop_on_signals(stop)
    uptime_every = float(config.env("STANDIN_UPTIME_INTERVAL", "10") or 10)
    next_uptime = time.monotonic()
    banner = f"stand-in worker (GlitchTip {config.major()}) ready"
    if backend:
        banner += f", task backend {backend}"
    print(banner, flush=True)
    while not stop.is_set():
        try:
            if queue.wait(1.0):
                count = process_pending(store, queue)
                if count:
                    _record_aggregate(conn, count)
                    print(f"processed {count} event(s)", flush=True)
            if time.monotonic() >= next_uptime:
                run_uptime_checks(store)
                next_uptime = time.monotonic() + uptime_every
        except Exception as exc:
            print(f"worker error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            if conn.closed:
                _dsn, conn = _db()
            stop.wait(1)
    print("stand-in worker stopped", flush=True)
    return 0


# -- web -------------------------------------------------------------------------------------
def cmd_web() -> int:
    from . import web

    settings = config.settings()
    dsn, conn = _db()
    conn.close()
    store = _store(dsn)
    queue = _queue(dsn)
    return web.serve(settings, store, queue)


def cmd_all_in_one() -> int:
    """One process serving the web and running the worker, as GlitchTip's all-in-one does.

    6 (bin/run-all-in-one.sh): the script has run the init already (unless SKIP_INIT); granian
    serves glitchtip.asgi with GLITCHTIP_EMBED_WORKER=true, which wraps the application in
    django-vtasks' worker (`get_worker_application`): tasks run in the web process, from Valkey
    or, with VALKEY_URL="", from the database backend. 5 (bin/run-all-in-one.sh -> app.py):
    migrate first, then Celery's worker (threads) and beat in threads beside uvicorn on
    0.0.0.0:8000, whatever PORT says; the broker is Valkey. Here: the stand-in's worker in a
    thread beside its web server; SIGTERM stops the web server, then the worker."""
    config.ALL_IN_ONE = True
    beat: list[str] = []
    if config.major() < 6:
        cmd_migrate()  # app.py's run_init: migrate (and createcachetable)
        # app.py's beat: its schedule `celerybeat-schedule` in the working directory on v5.1.0,
        # /tmp/celerybeat-schedule on later 5.x (contract NOTES.md).
        beat = ["-B"] if config.is_v510() else ["-B", "-s", "/tmp/celerybeat-schedule"]
    stop = threading.Event()
    embedded = threading.Thread(
        target=cmd_worker,
        args=(beat,),
        kwargs={"stop": stop},
        name="embedded-worker",
        daemon=True,
    )
    embedded.start()
    try:
        return cmd_web()
    finally:
        stop.set()
        embedded.join(timeout=10)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "migrate":
        return cmd_migrate()
    if cmd == "web":
        return cmd_web()
    if cmd in ("worker", "celery"):
        return cmd_worker(rest)
    if cmd == "all-in-one":
        return cmd_all_in_one()
    if cmd == "manage":
        return cmd_manage(rest)
    print(f"unknown stand-in command {cmd!r}", file=sys.stderr)
    return 2
