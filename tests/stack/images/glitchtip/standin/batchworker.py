"""The stand-in worker: stores queued events in batches the way the real worker does.

`capacity.WorkerModel` says what the real worker would be (pool, concurrency, prefetch window,
batch size, flush interval, CPUs); this module runs that mechanism in real time:

  celery (GlitchTip 5): a consumer fetches messages while the unacknowledged ones stay inside
    the prefetch window (they move from the `celery` list to the `unacked` hash, as kombu's
    Redis transport does); a buffer is flushed as one batch when it holds `flush_every`
    messages or when the `flush_interval` timer fires; a pool of `concurrency` slots stores the
    batches, acknowledging a batch when a slot accepts it (which frees the window), or with
    `acks_late` (CELERY_TASK_ACKS_LATE) when the batch returns (celery_batches `Batches.flush`).
    A failing batch is logged and acknowledged all the same (celery_batches/trace.py swallows
    the exception): its events are gone.
  vtasks (GlitchTip 6): one consumer collects up to `flush_every` tasks or waits
    `flush_interval` seconds, takes one of `VTASKS_CONCURRENCY` slots and hands the batch to a
    thread pool of min(32, CPUs + 4) threads (asyncio's default executor). The batch was popped
    from Valkey: a killed worker loses it; a failing batch goes to the dead-letter list
    (`Broker.fail`, django-vtasks' `Worker.process_batch` -> `_fail_task`). With the kit's
    backend (a broker with `records_batches`, standin.kitvtasks) the batch stays in the worker's
    processing list until it is stored (`ack` then), and a failing one goes to `fail_batch`.

A batch costs what `capacity` says: the modelled CPU part (one batch at a time in a threaded
worker, the GIL; up to the CPUs for prefork) sleeps for what the stand-in's own store does not
already take (its recent duration), then the database-wait part sleeps, then the store commits
(last, as the real batch commits at its end) holding a CPU slot again: pad plus store are the
modelled CPU time, serialised as the model says. So the stand-in's rate follows from the same
inputs as the real worker's, not from the recorded figures. `time_scale` shrinks every duration
(tests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from . import capacity


class Broker(Protocol):
    """The task queue as the worker sees it."""

    def fetch(self, limit: int, timeout: float) -> list[tuple[str, dict]]:
        """Up to `limit` (tag, item) pairs, blocking up to `timeout` s for the first one."""
        ...

    def ack(self, tags: Sequence[str]) -> None: ...

    def fail(self, items: list[dict], error: str) -> None:
        """A failed vtasks batch into the dead-letter list."""
        ...


StoreBatch = Callable[[list[dict]], int]


class BatchWorker:
    """Runs `model` against `broker`; `store_batch(items)` stores a batch, returns the count."""

    def __init__(
        self,
        model: capacity.WorkerModel,
        broker: Broker,
        store_batch: StoreBatch,
        *,
        time_scale: float = 1.0,
        acks_late: bool = False,
        call_around: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.model = model
        self.acks_late = acks_late
        # Celery's "@__call__" task annotation (standin.workersettings.call_around): each batch
        # runs as `around(__call__)(task, batch)`, as celery-batches' `task(*args)` does.
        self._call = call_around(_BatchTask.__call__) if call_around else _BatchTask.__call__
        self.broker = broker
        self.store_batch = store_batch
        self.scale = time_scale
        self.log = log
        self.stop_event = threading.Event()
        self.stored = 0
        self.batches: list[int] = []
        self.errors = 0
        self._lock = threading.Lock()
        self._buffer: list[tuple[str, dict]] = []
        self._unaccepted = 0  # flushed to the pool, not yet accepted by a slot (still unacked)
        # With acks_late a batch stays unacknowledged while it is stored: kombu's QoS counts a
        # message against the prefetch window until it is acked (virtual `QoS.can_consume`).
        self._storing = 0
        self.max_held = 0.0  # the longest a message waited from delivery to its ack (seconds)
        self.store_estimate = 0.0  # recent duration of the stand-in's own store (seconds)
        self._cpu = threading.BoundedSemaphore(model.cpu_slots)
        if model.flavour == "vtasks":
            self._slots = threading.BoundedSemaphore(model.concurrency)
        else:
            self._slots = None
        self._pool = ThreadPoolExecutor(model.parallel_batches, thread_name_prefix="batch")
        # The kit's GlitchTip 6 backend (standin.kitvtasks): a batch stays in the worker's
        # processing list until stored, and a failed one goes to `fail_batch`.
        self._records = bool(getattr(broker, "records_batches", False))
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> BatchWorker:
        targets = (
            [self._consume_vtasks]
            if self.model.flavour == "vtasks"
            else [
                self._consume_celery,
                self._flush_timer,
            ]
        )
        for target in targets:
            thread = threading.Thread(target=target, name=target.__name__, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout)
        self._flush()
        self._pool.shutdown(wait=True)

    # -- celery ------------------------------------------------------------------------------
    def _room(self) -> int:
        window = self.model.window
        with self._lock:
            held = len(self._buffer) + self._unaccepted + self._storing
        if window is None:
            return max(0, self.model.flush_every - len(self._buffer))
        return window - held

    def _consume_celery(self) -> None:
        while not self.stop_event.is_set():
            room = self._room()
            if room <= 0:
                self.stop_event.wait(0.01 * self.scale)
                continue
            try:
                got = self.broker.fetch(min(room, self.model.flush_every), 0.5)
            except Exception as exc:  # the broker restarting: retry, like kombu reconnects
                self._error(f"fetch failed: {type(exc).__name__}: {exc}")
                lost = getattr(self.broker, "connection_lost", None)
                if lost is not None:
                    lost()
                continue
            if not got:
                continue
            with self._lock:
                self._buffer.extend(got)
                full = len(self._buffer) >= self.model.flush_every
            if full:
                self._flush()

    def _flush_timer(self) -> None:
        interval = self.model.flush_interval * self.scale
        while not self.stop_event.wait(interval):
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
            self._unaccepted += len(batch)
        if batch:
            self._submit(batch, accept=True)

    # -- vtasks ------------------------------------------------------------------------------
    def _consume_vtasks(self) -> None:
        assert self._slots is not None
        count, timeout = self.model.flush_every, self.model.flush_interval * self.scale
        while not self.stop_event.is_set():
            batch: list[tuple[str, dict]] = []
            deadline = time.monotonic() + timeout
            while len(batch) < count and not self.stop_event.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.extend(self.broker.fetch(count - len(batch), min(remaining, 0.5)))
                except Exception as exc:
                    self._error(f"fetch failed: {type(exc).__name__}: {exc}")
                    break
            if not batch:
                continue
            if not self._records:  # popped: gone from Valkey
                self.broker.ack([tag for tag, _item in batch])
            while not self._slots.acquire(timeout=0.5):
                if self.stop_event.is_set():
                    break
            else:
                self._submit(batch, accept=False)

    # -- storing -----------------------------------------------------------------------------
    def _submit(self, batch: list[tuple[str, dict]], *, accept: bool) -> None:
        self._pool.submit(self._run_batch, batch, accept)

    def _ack(self, batch: list[tuple[str, dict]]) -> None:
        tags = [tag for tag, _item in batch]
        held = getattr(self.broker, "held_seconds", None)
        if held is not None:
            oldest = held(tags)
            with self._lock:
                self.max_held = max(self.max_held, oldest)
        try:
            self.broker.ack(tags)
        except Exception as exc:
            self._error(f"ack failed: {type(exc).__name__}: {exc}")

    def _run_batch(self, batch: list[tuple[str, dict]], accept: bool) -> None:
        if accept:  # celery: the batch leaves the prefetch window when a pool slot accepts it
            with self._lock:
                self._unaccepted -= len(batch)
                if self.acks_late:
                    self._storing += len(batch)
            if not self.acks_late:  # celery-batches' default: acknowledged as it starts
                self._ack(batch)
        try:
            items = [item for _tag, item in batch]
            stored, took, modelled = self._call(_BatchTask(self), items)
            if self._records:
                self._ack(batch)
            self.log(
                f"Process {len(items)} issue event requests (stored {stored}; longest held "
                f"before ack so far {self.max_held:.1f} s; stand-in store {took:.2f} s of the "
                f"modelled {modelled:.2f} s CPU)"
            )
        except Exception as exc:
            self._error(f"batch of {len(batch)} failed: {type(exc).__name__}: {exc}")
            if not accept:  # vtasks: every task of the batch into the dead-letter list
                try:
                    if self._records:  # the kit's backend: retried when the database went away
                        self.broker.fail_batch(batch, exc)
                    else:
                        self.broker.fail([item for _tag, item in batch], f"{type(exc).__name__}")
                except Exception as dlq_exc:
                    self._error(f"dead-lettering failed: {type(dlq_exc).__name__}: {dlq_exc}")
        finally:
            if accept and self.acks_late:  # after it returns, stored or swallowed failure
                self._ack(batch)
                with self._lock:
                    self._storing -= len(batch)
            if self._slots is not None:
                self._slots.release()

    def _process(self, items: list[dict]) -> tuple[int, float, float]:
        """One batch's work, what the task's `__call__` runs: (stored, store s, modelled s).
        A failure raises (to the task annotation's around, if any, then to `_run_batch`)."""
        # The real batch computes and queries first and commits at its end, right before
        # it returns (and, with acks_late, is acknowledged): the modelled CPU and database
        # time comes before the stand-in's one-transaction store, so a kill mid-batch finds
        # it uncommitted, as it would the real one.
        # The stand-in's own store (its whole state is one jsonb row, read and written
        # back per batch) is not GlitchTip's cost: the modelled CPU time is padded with
        # sleep only for what the recent stores did not already take (`store_estimate`),
        # so a batch costs what `capacity` says, unless the stand-in's store alone is
        # slower (then it costs the store; the log line says so).
        modelled = capacity.batch_cpu_seconds(len(items)) * self.scale
        with self._cpu:
            time.sleep(max(0.0, modelled - self.store_estimate))
        time.sleep(capacity.batch_wait_seconds(len(items)) * self.scale)
        with self._cpu:  # the store is part of the CPU time it was taken off above
            began = time.monotonic()
            stored = self.store_batch(items)
            took = time.monotonic() - began
        with self._lock:
            self.stored += stored
            self.batches.append(len(items))
            self.store_estimate = (
                took if not self.store_estimate else 0.7 * self.store_estimate + 0.3 * took
            )
        return stored, took, modelled

    def _error(self, line: str) -> None:
        with self._lock:
            self.errors += 1
        self.log(line)
        self.stop_event.wait(1.0 * self.scale)


class _BatchTask:
    """The task object celery-batches calls (`task(*args)`, celery_batches/trace.py): its
    `__call__` stores the batch; a task annotation may wrap it (BatchWorker's `call_around`)."""

    name = "apps.event_ingest.tasks.ingest_event"

    def __init__(self, worker: BatchWorker) -> None:
        self.worker = worker

    def __call__(self, items: list[dict]) -> tuple[int, float, float]:
        return self.worker._process(items)


class MemoryBroker:
    """A `Broker` on a list, with celery's unacked bookkeeping (tests)."""

    def __init__(self, items: Sequence[dict] = ()) -> None:
        self._items = list(items)
        self.unacked: dict[str, dict] = {}
        self.delivered_at: dict[str, float] = {}
        self.failed: list[dict] = []
        self._next = 0
        self._cond = threading.Condition()

    def push(self, item: dict) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def fetch(self, limit: int, timeout: float) -> list[tuple[str, dict]]:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            taken, self._items = self._items[:limit], self._items[limit:]
            out = []
            for item in taken:
                self._next += 1
                tag = str(self._next)
                self.unacked[tag] = item
                self.delivered_at[tag] = time.monotonic()
                out.append((tag, item))
            return out

    def ack(self, tags: Sequence[str]) -> None:
        with self._cond:
            for tag in tags:
                self.unacked.pop(tag, None)

    def fail(self, items: list[dict], error: str) -> None:
        with self._cond:
            self.failed.extend(items)

    def held_seconds(self, tags: Sequence[str]) -> float:
        """How long the oldest of `tags` has been delivered and unacknowledged."""
        with self._cond:
            times = [self.delivered_at[tag] for tag in tags if tag in self.delivered_at]
        return time.monotonic() - min(times) if times else 0.0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
