"""The stand-in worker acknowledges, restores and drops events when the real worker would.

A worker SIGKILL is modelled by a store that never returns (the process is gone mid-batch):
what is still in the broker's `unacked` afterwards is what kombu would put back on the queue;
what is neither stored nor unacked is lost. celery-batches (celery_batches/__init__.py
`Batches.flush`) acknowledges a batch when a pool slot starts it unless the task is acks_late,
and swallows a failing batch (celery_batches/trace.py), acknowledging it either way;
django-vtasks pops a batch (BLMPOP, "unsafe") and dead-letters a failing one.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

IMAGE = Path(__file__).parent / "stack" / "images" / "glitchtip"
if str(IMAGE) not in sys.path:
    sys.path.insert(0, str(IMAGE))

from standin import batchworker, capacity, workersettings  # noqa: E402

from provision import durability  # noqa: E402

SCALE = 0.02


def _worker(major: int, broker, store, *, acks_late: bool = False):
    environ = (
        {
            "CELERY_WORKER_POOL": "threads",
            "CELERY_WORKER_CONCURRENCY": "4",
            "CELERY_WORKER_PREFETCH_MULTIPLIER": "100",
        }
        if major == 5
        else {}
    )
    model = capacity.model_for(major, environ, cpus=2)
    return batchworker.BatchWorker(model, broker, store, time_scale=SCALE, acks_late=acks_late)


def _hanging_store(started: threading.Event, release: threading.Event):
    """A store that blocks like a batch cut short by SIGKILL (never stores)."""

    def store(items: list[dict]) -> int:
        started.set()
        release.wait(10)
        raise RuntimeError("killed")

    return store


@pytest.mark.parametrize(("acks_late", "kept"), [(False, 0), (True, 100)])
def test_celery_batch_in_flight_survives_a_kill_only_with_acks_late(acks_late, kept):
    broker = batchworker.MemoryBroker([{"n": i} for i in range(100)])
    started, release = threading.Event(), threading.Event()
    worker = _worker(5, broker, _hanging_store(started, release), acks_late=acks_late).start()
    try:
        assert started.wait(5), "no batch started"
        # The process dies here: what is still unacknowledged is what kombu restores.
        assert len(broker.unacked) == kept
        assert len(broker) == 0
    finally:
        release.set()
        worker.stop_event.set()


def test_celery_failing_batch_is_acknowledged_and_gone_even_with_acks_late():
    broker = batchworker.MemoryBroker([{"n": i} for i in range(100)])

    def failing(items: list[dict]) -> int:
        raise RuntimeError("database restarting")

    worker = _worker(5, broker, failing, acks_late=True).start()
    deadline = time.monotonic() + 5
    while (len(broker) or broker.unacked) and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop_event.set()
    assert len(broker) == 0 and broker.unacked == {}  # nothing kept: the events are lost
    assert broker.failed == []  # celery has no dead-letter list


def test_the_kit_modules_task_annotation_retries_a_batch_the_database_failed(tmp_path, monkeypatch):
    """The stand-in resolves CELERY_TASK_ANNOTATIONS of the kit's rendered module for the ingest
    task as Celery does and runs each batch through its "@__call__" around: a batch whose store
    raised the driver's OperationalError (the stand-in's psycopg2; GlitchTip's Django raises
    django.db.utils.OperationalError) is stored on the retry, not acknowledged and gone."""
    assert workersettings.load({}).call_around is None  # GlitchTip's settings: none
    (tmp_path / f"{durability.WORKER_SETTINGS_MODULE}.py").write_text(
        durability.worker_settings_module()
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = workersettings.load({"DJANGO_SETTINGS_MODULE": durability.WORKER_SETTINGS_MODULE})
    assert loaded.call_around is not None
    module = sys.modules[durability.WORKER_SETTINGS_MODULE]
    sleeps: list[float] = []
    monkeypatch.setattr(module, "_close_database_connections", lambda: None)
    around = module._retry_when_the_database_goes_away

    OperationalError = type("OperationalError", (Exception,), {})
    attempts: list[int] = []

    def restarting(items: list[dict]) -> int:
        attempts.append(len(items))
        if len(attempts) == 1:
            raise OperationalError("terminating connection due to administrator command")
        return len(items)

    broker = batchworker.MemoryBroker([{"n": i} for i in range(100)])
    model = capacity.model_for(5, {}, cpus=2)
    worker = batchworker.BatchWorker(
        model,
        broker,
        restarting,
        time_scale=SCALE,
        acks_late=loaded.acks_late,
        call_around=lambda call: around(call, sleep=sleeps.append),
    ).start()
    deadline = time.monotonic() + 5
    while (len(broker) or broker.unacked or worker.stored < 100) and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop_event.set()
    # The first batch failed once and ran again (same size); every event stored, none lost.
    assert sleeps == [1] and attempts[0] == attempts[1]
    assert sum(attempts) == 100 + attempts[0]
    assert worker.stored == 100 and broker.unacked == {} and len(broker) == 0


def test_the_stand_in_resolves_task_annotations_as_celery_does():
    """Dicts by task name or "*", objects with annotate(task); the last "@__call__" wins
    (Celery's add_around unwraps `__wrapped__` before wrapping again)."""

    def first(call):
        return call

    def second(call):
        return call

    class ByObject:
        def annotate(self, task):
            return {"@__call__": second} if task.name == workersettings.INGEST_TASK else None

    name = workersettings.INGEST_TASK
    assert workersettings.call_around({name: {"@__call__": first}}, name) is first
    assert workersettings.call_around({"*": {"@__call__": first}}, name) is first
    assert workersettings.call_around({"other.task": {"@__call__": first}}, name) is None
    assert workersettings.call_around(({name: {"@__call__": first}}, ByObject()), name) is second
    assert workersettings.call_around({name: {"rate_limit": "1/s"}}, name) is None


def test_vtasks_batch_is_popped_and_a_failing_one_dead_lettered():
    broker = batchworker.MemoryBroker([{"n": i} for i in range(100)])
    started, release = threading.Event(), threading.Event()
    worker = _worker(6, broker, _hanging_store(started, release)).start()
    try:
        assert started.wait(5)
        assert len(broker) == 0 and broker.unacked == {}  # popped: a kill now loses them
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while len(broker.failed) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop_event.set()
    assert len(broker.failed) == 100


def test_worker_settings_module_is_what_the_stand_in_reads(tmp_path, monkeypatch):
    """The kit's rendered module, imported over the stand-in's glitchtip.settings, gives the
    worker acks_late and the kit's visibility timeout; without it Celery's defaults."""
    defaults = workersettings.load({})
    assert (defaults.acks_late, defaults.visibility_timeout) == (False, 3600.0)

    (tmp_path / f"{durability.WORKER_SETTINGS_MODULE}.py").write_text(
        durability.worker_settings_module()
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = workersettings.load({"DJANGO_SETTINGS_MODULE": durability.WORKER_SETTINGS_MODULE})
    assert loaded.acks_late is True
    assert loaded.visibility_timeout == durability.CELERY_VISIBILITY_TIMEOUT
    # GlitchTip's own transport options are kept, only the timeout is added.
    module = sys.modules[durability.WORKER_SETTINGS_MODULE]
    assert module.CELERY_BROKER_TRANSPORT_OPTIONS["max_connections"] == 100


def test_the_stand_in_takes_with_the_scripts_of_the_transport_the_module_names(
    tmp_path, monkeypatch
):
    """Celery hands CELERY_BROKER_TRANSPORT to kombu, which imports the named class; the
    stand-in (no kombu) imports the named module and runs its scripts. GlitchTip's settings
    name no transport: kombu's two steps."""
    from provision.worker_modules import glitchtip5_transport

    monkeypatch.setenv("REDIS_URL", "redis://valkey:6379/0")
    for name in ("glitchtip.settings", durability.WORKER_SETTINGS_MODULE):
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name))
        sys.modules.pop(name)
    defaults = workersettings.load({})
    assert (defaults.transport, defaults.take_script, defaults.bind_script) == (None, None, None)

    (tmp_path / f"{durability.WORKER_SETTINGS_MODULE}.py").write_text(
        durability.worker_settings_module(5)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = workersettings.load({"DJANGO_SETTINGS_MODULE": durability.WORKER_SETTINGS_MODULE})
    assert loaded.transport == f"{durability.WORKER_SETTINGS_MODULE}:KitRedisTransport"
    assert loaded.take_script == glitchtip5_transport._TAKE_SCRIPT
    assert loaded.bind_script == glitchtip5_transport._BIND_SCRIPT
    assert (defaults.eager_restore_s, loaded.eager_restore_s) == (0.0, 60.0)


def test_minimal_profile_sizes_the_all_in_one_worker_through_its_settings_module(
    tmp_path, monkeypatch
):
    """GlitchTip 5's app.py starts `app.Worker(pool="threads")` with no command line: the
    CELERY_* environment never reaches it, so the kit's module carries concurrency and
    prefetch in the minimal profile (else Celery's defaults: a window of CPUs x 4, batches of
    8 on 2 CPUs). The stand-in's all-in-one reads them from the module, not the environment."""
    from provision.render import worker_settings_files
    from provision.settings import load_settings

    settings = load_settings(
        tmp_path,
        {"glitchtip_major": 5, "profile": "minimal"},
        environ={},
    )
    assert settings.worker_pool == "threads"  # what app.py runs, whatever the host
    text = worker_settings_files(settings)[durability.WORKER_SETTINGS_FILE]
    (tmp_path / f"{durability.WORKER_SETTINGS_MODULE}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, durability.WORKER_SETTINGS_MODULE, raising=False)
    loaded = workersettings.load({"DJANGO_SETTINGS_MODULE": durability.WORKER_SETTINGS_MODULE})
    assert (loaded.concurrency, loaded.prefetch) == (
        settings.worker_concurrency,
        settings.worker_prefetch,
    )
    environ = workersettings.embedded_worker_environ(loaded)
    model = capacity.model_for(5, environ)
    assert (model.pool, model.concurrency, model.prefetch_multiplier) == (
        "threads",
        settings.worker_concurrency,
        settings.worker_prefetch,
    )
    assert model.window >= 100  # a full batch fits the window

    # The standard profile's module leaves them to the worker's command line.
    standard = load_settings(tmp_path, {"glitchtip_major": 5}, environ={})
    assert (
        "CELERY_WORKER_CONCURRENCY"
        not in worker_settings_files(standard)[durability.WORKER_SETTINGS_FILE]
    )
    # Without the kit's module app.py's worker runs Celery's defaults.
    bare = workersettings.embedded_worker_environ(workersettings.load({}))
    assert bare == {"CELERY_WORKER_POOL": "threads"}
    assert capacity.model_for(5, bare).prefetch_multiplier == capacity.CELERY_DEFAULT_PREFETCH


def test_a_redelivered_event_is_one_row_counted_twice_and_a_resent_one_two_rows():
    """What GlitchTip 5's worker does with a repeated event id (apps/event_ingest/
    process_event.py `process_issue_events`): the row insert is `bulk_create(...,
    ignore_conflicts=True)` on a table whose key is (id, received), while `update_issues` and
    `update_statistics` count every event of the batch. A message kombu delivers again (same
    task: same id, same received time) is skipped as a row and the batch goes on, yet counted
    twice; the same id in a new request (new received time) becomes a second row (NOTES.md,
    "Duplicate event IDs are not rejected")."""
    from fakeglitchtip import FakeConfig, FakeGlitchTip, MemoryQueue, MemoryStore, Request, stats
    from fakeglitchtip import model as fmodel
    from fakeglitchtip.worker import store_batch
    from standin import web

    store, queue = MemoryStore(), MemoryQueue()
    app = FakeGlitchTip(store, queue, FakeConfig(glitchtip_domain="http://localhost:8000"))
    with store.transaction() as state:
        user = fmodel.add_user(state, "a@example.com", "pw", superuser=True)
        org = fmodel.add_org(state, user, "Org")
        team = fmodel.add_team(state, org, "team", user)
        project = fmodel.add_project(state, org, team, "p", "python", None)
        key = next(k for k in state["keys"].values() if k["project_id"] == project["id"])
    pid, public = project["id"], key["uuid"].replace("-", "")
    body = "\n".join(
        [
            json.dumps({"event_id": "a" * 32}),
            json.dumps({"type": "event"}),
            json.dumps({"message": "boom", "level": "error"}),
        ]
    ).encode()
    keys = web.KeyCache(store)

    def send() -> dict:
        request = Request(
            "POST",
            f"/api/{pid}/envelope/?sentry_key={public}",
            {"content-type": "application/x-sentry-envelope"},
            body,
        )
        assert web.ingest(app, keys, request, str(pid), "envelope").status == 200
        item = queue.pop()
        assert item is not None
        return item

    first = send()
    assert store_batch(store, [first]) == 1
    assert store_batch(store, [first]) == 0  # redelivered: no new row, the batch goes on
    state = store.snapshot()
    assert [e["event_id"] for e in state["events"].values()] == ["a" * 32]
    (issue,) = state["issues"].values()
    assert issue["count"] == 2  # counted twice, as update_issues does
    assert sum(count for _pid, _hour, count in stats.hourly_rows(state, "error")) == 2

    again = send()  # the SDK sends the same id again: a new request, a new received time
    assert again["received_exact"] != first["received_exact"]
    assert store_batch(store, [again]) == 1
    state = store.snapshot()
    assert [e["event_id"] for e in state["events"].values()] == ["a" * 32, "a" * 32]


def test_celery_window_counts_a_batch_being_stored_with_acks_late():
    """kombu's QoS counts a message against the prefetch window until it is acknowledged
    (virtual `QoS.can_consume`): with acks_late a batch being stored still fills the window, so
    the worker holds at most `window` messages; acked early, the window frees as a batch
    starts and the worker takes more while it stores."""
    for acks_late, most in ((True, 100), (False, 500)):
        broker = batchworker.MemoryBroker([{"n": i} for i in range(1000)])
        started, release = threading.Event(), threading.Event()
        environ = {
            "CELERY_WORKER_POOL": "threads",
            "CELERY_WORKER_CONCURRENCY": "4",
            "CELERY_WORKER_PREFETCH_MULTIPLIER": "25",
        }
        model = capacity.model_for(5, environ, cpus=2)
        assert model.window == 100
        worker = batchworker.BatchWorker(
            model, broker, _hanging_store(started, release), time_scale=SCALE, acks_late=acks_late
        ).start()
        try:
            assert started.wait(5)
            time.sleep(0.3)
            taken = 1000 - len(broker)
            if acks_late:
                assert taken == most, taken
            else:
                assert taken > 100, taken
        finally:
            release.set()
            worker.stop_event.set()


def test_restore_of_visible_messages_runs_at_start_then_every_tenth_tick(monkeypatch):
    """kombu 5.5's Redis transport calls `QoS.restore_visible` once when the worker's event loop
    starts (`MultiChannelPoller.on_poll_init`) and then from a 10 s timer
    (`loop.call_repeatedly(10, cycle.maybe_restore_messages)`); it acts on calls 1, 11, 21...:
    at 0 s, 100 s, 200 s after the worker starts. A worker restarted before a killed worker's
    messages are older than the visibility timeout gets them back 100 s later (measured on the
    real Celery 5.5.3 / kombu 5.5.4, docs/durability.md)."""
    from standin import cli

    # Ticks of 0.2 s: a first call "at once" is told from one a tick later with 150 ms to spare
    # for the thread's start on a loaded machine (the fast suite runs beside other work).
    monkeypatch.setattr(workersettings, "RESTORE_EVERY", 0.2)
    monkeypatch.setattr(workersettings, "RESTORE_INTERVAL", 3)
    calls: list[float] = []

    class Queue:
        def restore_visible(self, timeout: float) -> int:
            calls.append(time.monotonic())
            return 0

    stop = threading.Event()
    began = time.monotonic()
    cli._start_restorer(Queue(), 10.0, stop)
    time.sleep(1.0)
    stop.set()
    assert calls, "never restored"
    assert calls[0] - began < 0.15  # at once (on_poll_init), not one tick later
    assert calls[1] - calls[0] >= 3 * 0.2 - 0.01  # then every 3rd tick (kombu: 10th)
    assert len(calls) == 2  # calls 1 and 4 of ticks 1-5; the 7th would come at 1.2 s


class Ticks:
    """`stop` for the restorer: `wait` returns at once, `n` times False (a tick), then True."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.done = threading.Event()

    def wait(self, _seconds: float) -> bool:
        if self.left == 0:
            self.done.set()
            return True
        self.left -= 1
        return False


@pytest.mark.parametrize(
    ("eager_s", "started_ago", "restores"),
    [(0.0, 0.0, 2), (60.0, 0.0, 13), (60.0, 61.0, 2)],
    ids=["kombus-transport", "kit-transport-new-channel", "kit-transport-after-its-minute"],
)
def test_the_kit_transport_restores_on_every_tick_of_a_new_channels_first_minute(
    eager_s, started_ago, restores
):
    """The kit's transport (`_EAGER_RESTORE_SECONDS`) acts on every look while its channel is
    younger than a minute (a worker's start, a reconnection after Valkey came back), so what a
    crash stranded in `unacked` comes back within the visibility timeout plus 10 s; kombu's own
    acts on looks 1, 11, 21... The ticks here take no time: 1 + 12 looks."""
    from standin import cli

    calls: list[int] = []

    class Queue:
        channel_started = time.monotonic() - started_ago

        def restore_visible(self, timeout: float) -> int:
            calls.append(len(calls))
            return 0

    ticks = Ticks(12)
    cli._start_restorer(Queue(), 10.0, ticks, eager_s)
    assert ticks.done.wait(10)
    assert len(calls) == restores


def test_a_failed_fetch_starts_a_new_channels_minute(monkeypatch):
    """kombu's consumer reconnects with a new channel after it lost Valkey; the stand-in's
    queue stands for that with the time of the last failed fetch."""
    from standin import valkeyqueue

    clock = [100.0]
    monkeypatch.setattr(valkeyqueue.time, "monotonic", lambda: clock[0])
    queue = valkeyqueue.ValkeyQueue(client=None)
    assert queue.channel_started == 100.0
    clock[0] = 250.0
    queue.connection_lost()
    assert queue.channel_started == 250.0


def test_stand_in_store_time_counts_inside_the_modelled_batch_cost(monkeypatch):
    """The stand-in's own store (one jsonb row) is not GlitchTip's cost: the modelled CPU part
    is padded only for what recent stores did not take, so a batch costs what the calibrated
    model says instead of model + the stand-in's store."""
    model = capacity.model_for(5, {"CELERY_WORKER_POOL": "solo"}, cpus=2)
    clock = [1000.0]  # the worker's clock, moved only by the store: no wall-clock timing

    def slow_store(items: list[dict]) -> int:
        clock[0] += 0.05
        return len(items)

    worker = batchworker.BatchWorker(model, batchworker.MemoryBroker(), slow_store)
    sleeps: list[float] = []
    monkeypatch.setattr(batchworker.time, "sleep", sleeps.append)
    monkeypatch.setattr(batchworker.time, "monotonic", lambda: clock[0])
    batch = [(str(n), {"n": n}) for n in range(100)]
    modelled = capacity.batch_cpu_seconds(100)
    worker._run_batch(batch, False)
    assert sleeps[0] == modelled  # nothing known of the store yet
    worker._run_batch(batch, False)
    assert sleeps[2] == pytest.approx(modelled - 0.05)  # the store's 0.05 s taken off
    worker._run_batch(batch, False)
    assert sleeps[4] == pytest.approx(modelled - 0.05)  # 0.7 * 0.05 + 0.3 * 0.05
    assert sleeps[1] == sleeps[3] == sleeps[5] == capacity.batch_wait_seconds(100)


class RecordingBroker(batchworker.MemoryBroker):
    """The kit backend's bookkeeping on a list (standin.kitvtasks.RecordingQueue's contract): a
    fetched task stays in `processing` until its batch is acked; a failed batch is handed to
    `fail_batch`."""

    records_batches = True

    def __init__(self, items) -> None:
        super().__init__(items)
        self.failed_batches: list[tuple[int, str]] = []

    def fail_batch(self, batch, error) -> None:
        self.failed_batches.append((len(batch), type(error).__name__))
        self.ack([tag for tag, _item in batch])


def test_vtasks_batch_with_the_kit_backend_stays_recorded_until_stored():
    """A kill mid-batch leaves the batch in the worker's processing list (what the kit backend
    puts back when the worker is gone); a stored batch leaves it; a failing one is handed to
    the kit's retry instead of the dead-letter list."""
    broker = RecordingBroker([{"n": i} for i in range(100)])
    started, release = threading.Event(), threading.Event()
    worker = _worker(6, broker, _hanging_store(started, release)).start()
    try:
        assert started.wait(5)
        assert len(broker) == 0 and len(broker.unacked) == 100  # recorded, not lost
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while not broker.failed_batches and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop_event.set()
    assert broker.failed_batches == [(100, "RuntimeError")] and broker.failed == []

    stored: list[int] = []
    broker = RecordingBroker([{"n": i} for i in range(100)])
    worker = _worker(6, broker, lambda items: stored.append(len(items)) or len(items)).start()
    deadline = time.monotonic() + 5
    while (broker.unacked or not stored) and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop_event.set()
    assert sum(stored) == 100 and broker.unacked == {}


@pytest.mark.parametrize(
    ("valkey_url", "glitchtip_backend", "kit_backend"),
    [
        ("redis://valkey:6379/0", workersettings.VTASKS_VALKEY_BACKEND, "KitValkeyTaskBackend"),
        ("", "django_vtasks.backends.db.DatabaseTaskBackend", "KitDatabaseTaskBackend"),
    ],
)
def test_glitchtip6_module_names_the_kit_backend_the_stand_in_reads(
    tmp_path, monkeypatch, valkey_url, glitchtip_backend, kit_backend
):
    """The kit's GlitchTip 6 module, imported over the stand-in's glitchtip.settings as Django
    would import it, names the kit's subclass of the backend GlitchTip's settings name:
    django-vtasks' Valkey backend, or its database backend when VALKEY_URL is empty (the
    minimal profile's all-in-one)."""
    monkeypatch.setenv("VALKEY_URL", valkey_url)
    # The stand-in's glitchtip package, imported afresh (another test may have left one of its
    # own in sys.modules).
    for name in ("glitchtip", "glitchtip.settings", durability.WORKER_SETTINGS_MODULE):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(IMAGE))
    assert workersettings.load_tasks_backend({}) == glitchtip_backend
    assert not workersettings.is_kit_backend(glitchtip_backend)
    (tmp_path / f"{durability.WORKER_SETTINGS_MODULE}.py").write_text(
        durability.worker_settings_module(6)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    backend = workersettings.load_tasks_backend(
        {"DJANGO_SETTINGS_MODULE": durability.WORKER_SETTINGS_MODULE}
    )
    assert backend == f"{durability.WORKER_SETTINGS_MODULE}.{kit_backend}"
    # The stand-in keeps batches in a processing list only for the Valkey backend's subclass.
    assert workersettings.is_kit_backend(backend) == (kit_backend == "KitValkeyTaskBackend")
    module = sys.modules[durability.WORKER_SETTINGS_MODULE]
    # Everything else of GlitchTip's settings is kept.
    expected = {"BACKEND": backend}
    if valkey_url:
        expected["OPTIONS"] = {"cache_alias": "default"}
    assert list(module.TASKS) == ["default"]
    assert module.TASKS["default"] == expected
    assert module.CELERY_BROKER_TRANSPORT_OPTIONS["max_connections"] == 100


def test_database_errors_are_what_the_kit_backend_retries(tmp_path, monkeypatch):
    """The kit module's and the stand-in's test for "the database went away" agree: the class
    name anywhere in the exception's chain (Django wraps the driver's errors)."""
    from standin import kitvtasks

    (tmp_path / "kit6.py").write_text(
        durability.worker_settings_module(6).replace(
            "from glitchtip.settings import *  # noqa: F403\n"
            "from glitchtip.settings import TASKS as _GLITCHTIP_TASKS\n",
            "_GLITCHTIP_TASKS = {}\n",
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import kit6

    class OperationalError(Exception):
        pass

    class InterfaceError(OperationalError):
        pass

    def chained() -> Exception:
        try:
            raise InterfaceError("connection already closed")
        except InterfaceError as inner:
            try:
                raise RuntimeError("batch failed") from inner
            except RuntimeError as outer:
                return outer

    for check in (kit6._is_transient, kitvtasks.is_transient):
        assert check(OperationalError("terminating connection due to administrator command"))
        assert check(chained())
        assert not check(ValueError("bad event"))
        assert not check(RuntimeError("no cause"))


class FullValkey:
    """A Valkey at maxmemory (noeviction) as redis-py sees it: scripts that write (LMOVE) are
    refused, pops are not (BRPOP/RPOP/LREM are not `denyoom` commands)."""

    def __init__(self, items) -> None:
        self.items = [json.dumps(item).encode() for item in items]

    def eval(self, *args):
        raise RuntimeError("OOM command not allowed when used memory > 'maxmemory'.")

    def brpop(self, keys, timeout=0):
        return (keys[0].encode(), self.items.pop()) if self.items else None

    def rpop(self, key, count=None):
        taken = [self.items.pop() for _ in range(min(count or 1, len(self.items)))]
        return taken or None


def test_kit_backend_drains_a_full_valkey_with_the_unrecorded_pop():
    """At maxmemory the recorded fetch (LMOVE) is refused: the kit's backend, and the stand-in
    after it, pops without a record so a full queue still drains (the durability run's
    queue-full row stored 0 of 489 before this)."""
    from standin import kitvtasks

    queue = kitvtasks.RecordingQueue(FullValkey([{"n": i} for i in range(150)]), "q", worker="w")
    got = queue.fetch(100, 0.1)
    assert sorted(item["n"] for _tag, item in got) == list(range(50, 150))
    assert all(tag.startswith(kitvtasks.UNRECORDED) for tag, _item in got)
    queue.ack([tag for tag, _item in got])  # nothing recorded: nothing to remove, no error
    source = (Path(durability.WORKER6_SOURCE)).read_text(encoding="utf-8")
    assert "_fetch_unrecorded" in source and "maxmemory" in source


def test_the_stand_in_models_the_kit_backend_with_its_own_scripts_and_timings(
    tmp_path, monkeypatch
):
    """standin.kitvtasks copies the kit module's Lua scripts and timings (the image cannot
    import the module before Django's settings are read): a change to the kit's backend that
    the stand-in does not follow would leave the Docker tier proving the old one."""
    from standin import kitvtasks

    (tmp_path / "kit6_values.py").write_text(
        durability.worker_settings_module(6).replace(
            "from glitchtip.settings import *  # noqa: F403\n"
            "from glitchtip.settings import TASKS as _GLITCHTIP_TASKS\n",
            "_GLITCHTIP_TASKS = {}\n",
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import kit6_values as kit

    pairs = {
        "ALIVE_TTL": kit._ALIVE_TTL,
        "ALIVE_EVERY": kit._ALIVE_EVERY,
        "RESCUE_EVERY": kit._RESCUE_EVERY,
        "MAX_RESCUES": kit._MAX_RESCUES,
        "RETRY_DELAYS": kit._RETRY_DELAYS,
        "ACK_ATTEMPTS": kit._ACK_ATTEMPTS,
        "TRANSIENT_ERRORS": kit._TRANSIENT_ERRORS,
        "MOVE_MANY": kit._MOVE_MANY,
        "REQUEUE": kit._REQUEUE,
    }
    assert {name: getattr(kitvtasks, name) for name in pairs} == pairs


def test_the_celery_consumer_marks_a_new_channel_when_a_fetch_fails():
    """The stand-in's consumer tells its broker when a fetch failed (Valkey gone), so the
    restorer starts the reconnected channel's eager minute; a fetch that succeeds does not."""
    model = capacity.model_for(5, {"CELERY_WORKER_POOL": "solo"}, cpus=2)
    marks: list[str] = []

    class FlakyBroker(batchworker.MemoryBroker):
        calls = 0

        def fetch(self, count, timeout):
            FlakyBroker.calls += 1
            if FlakyBroker.calls == 1:
                raise ConnectionError("Error -2 connecting to valkey:6379.")
            worker.stop_event.set()
            return []

        def connection_lost(self) -> None:
            marks.append("lost")

    worker = batchworker.BatchWorker(model, FlakyBroker(), lambda items: len(items))
    worker._consume_celery()
    assert (FlakyBroker.calls, marks) == (2, ["lost"])
