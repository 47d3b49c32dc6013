"""The stand-in web's ingest path: DSN keys from a short-lived cache, no state lock; the queue
keys are the real ones; a batch is stored in one transaction."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from pathlib import Path

IMAGE = Path(__file__).parent / "stack" / "images" / "glitchtip"
if str(IMAGE) not in sys.path:
    sys.path.insert(0, str(IMAGE))

from fakeglitchtip import FakeConfig, FakeGlitchTip, MemoryQueue, MemoryStore, Request  # noqa: E402
from fakeglitchtip import model as fmodel  # noqa: E402
from fakeglitchtip.worker import store_batch  # noqa: E402
from standin import web  # noqa: E402

from provision import majors  # noqa: E402


class CountingStore(MemoryStore):
    """A MemoryStore that counts transactions and can hold its lock from outside."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions = 0
        self.gate = threading.Lock()

    @contextlib.contextmanager
    def transaction(self):
        with self.gate:
            self.transactions += 1
            with super().transaction() as state:
                yield state


def _project(store: MemoryStore) -> tuple[int, str]:
    with store.transaction() as state:
        user = fmodel.add_user(state, "a@example.com", "pw", superuser=True)
        org = fmodel.add_org(state, user, "Org")
        team = fmodel.add_team(state, org, "team", user)
        project = fmodel.add_project(state, org, team, "p", "python", None)
        key = next(iter(k for k in state["keys"].values() if k["project_id"] == project["id"]))
    return project["id"], key["uuid"].replace("-", "")


def _envelope(pid: int, key: str) -> Request:
    body = "\n".join(
        [
            json.dumps({"event_id": "a" * 32}),
            json.dumps({"type": "event"}),
            json.dumps({"message": "hello", "level": "error"}),
        ]
    )
    return Request(
        "POST",
        f"/api/{pid}/envelope/?sentry_key={key}",
        {"host": "localhost", "content-type": "application/x-sentry-envelope"},
        body.encode(),
    )


def test_ingest_queues_without_taking_the_state_lock():
    store, queue = CountingStore(), MemoryQueue()
    pid, key = _project(store)
    app = FakeGlitchTip(store, queue, FakeConfig(glitchtip_domain="http://localhost:8000"))
    keys = web.KeyCache(store, ttl=60)
    first = web.ingest(app, keys, _envelope(pid, key), str(pid), "envelope")
    assert first.status == 200 and len(queue) == 1
    before = store.transactions
    with store.gate:  # the worker (or anyone) holds the state: ingest must not wait for it
        for _ in range(5):
            response = web.ingest(app, keys, _envelope(pid, key), str(pid), "envelope")
            assert response.status == 200
    assert store.transactions == before and len(queue) == 6


def test_a_new_key_is_accepted_at_once_and_a_wrong_one_refused():
    store, queue = CountingStore(), MemoryQueue()
    app = FakeGlitchTip(store, queue, FakeConfig(glitchtip_domain="http://localhost:8000"))
    keys = web.KeyCache(store, ttl=60, min_reload=0)
    keys.state()  # cached before the project exists
    pid, key = _project(store)
    assert web.ingest(app, keys, _envelope(pid, key), str(pid), "envelope").status == 200
    wrong = web.ingest(app, keys, _envelope(pid, "0" * 32), str(pid), "envelope")
    assert wrong.status == 403 and len(queue) == 1


def test_store_batch_is_one_transaction():
    store, queue = CountingStore(), MemoryQueue()
    pid, key = _project(store)
    app = FakeGlitchTip(store, queue, FakeConfig(glitchtip_domain="http://localhost:8000"))
    keys = web.KeyCache(store)
    for _ in range(10):
        web.ingest(app, keys, _envelope(pid, key), str(pid), "envelope")
    items = [queue.pop() for _ in range(10)]
    before = store.transactions
    assert store_batch(store, items) == 10
    assert store.transactions == before + 1
    assert len(store.snapshot()["events"]) == 10


def test_stand_in_queue_keys_are_the_kits():
    from standin import valkeyqueue

    for number, major in majors.MAJORS.items():
        assert valkeyqueue.queue_key(number) == major.task_queue_keys[0]
    assert majors.MAJORS[5].task_queue_keys == ("celery",)
    assert majors.MAJORS[6].task_queue_keys == ("{vt}:q:ingest", "{vt}:q:default")


def test_web_server_capacity_follows_the_environment(monkeypatch):
    from standin import config

    for name in ("USE_GRANIAN", "USE_ASYNC_SERVER", "WEB_CONCURRENCY", "UWSGI_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GLITCHTIP_STANDIN_MAJOR", "5")
    monkeypatch.setenv("GLITCHTIP_STANDIN_RELEASE", "snapshot")
    uwsgi = config.web_server()
    assert (uwsgi.name, uwsgi.processes) == ("uwsgi", 1)
    monkeypatch.setenv("USE_GRANIAN", "true")
    monkeypatch.setenv("USE_ASYNC_SERVER", "true")
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    granian = config.web_server()
    assert (granian.name, granian.processes) == ("granian-asgi", 2)
    # v5.1.0: the same variables start uvicorn, `--workers $WEB_CONCURRENCY`.
    monkeypatch.setenv("GLITCHTIP_STANDIN_RELEASE", "v5.1.0")
    uvicorn = config.web_server()
    assert (uvicorn.name, uvicorn.processes) == ("uvicorn", 2)
    # Recorded: granian ASGI x2 ~113 envelopes/s, uWSGI x1 up to ~185/s.
    assert round(granian.processes / granian.ingest_seconds) == 113
    assert round(uwsgi.processes / uwsgi.ingest_seconds) == 185


def test_ingest_gate_limits_requests_per_second():
    import time as _time

    gate = web.IngestGate(processes=2, seconds=0.02)
    done = []

    def client():
        for _ in range(10):
            with gate:
                done.append(1)

    threads = [threading.Thread(target=client) for _ in range(6)]
    began = _time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = _time.monotonic() - began
    # 60 requests, 2 at a time, 20 ms each: at least 0.6 s (an unbounded server: ~0).
    assert len(done) == 60 and elapsed >= 0.58
