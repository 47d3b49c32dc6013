"""The stand-in worker acknowledges, restores and drops events when the real worker would.

A worker SIGKILL is modelled by a store that never returns (the process is gone mid-batch):
what is still in the broker's `unacked` afterwards is what kombu would put back on the queue;
what is neither stored nor unacked is lost. celery-batches (celery_batches/__init__.py
`Batches.flush`) acknowledges a batch when a pool slot starts it unless the task is acks_late,
and swallows a failing batch (celery_batches/trace.py), acknowledging it either way;
django-vtasks pops a batch (BLMPOP, "unsafe") and dead-letters a failing one.
"""

from __future__ import annotations

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
