"""Where the fake GlitchTip keeps its state, and the queue ingestion feeds.

Both are small protocols so that the in-memory versions used by the tests can be swapped for a
Postgres-backed store and a Valkey-backed queue in the stand-in Docker image without touching the
request handling. The whole state is one JSON-serialisable dict (string keys only).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from typing import Any, Protocol

State = dict[str, Any]

COLLECTIONS = (
    "users",
    "tokens",
    "sessions",
    "orgs",
    "teams",
    "projects",
    "keys",
    "alerts",
    "monitors",
    "checks",
    "issues",
    "events",
)


def initial_state() -> State:
    """An empty GlitchTip: no users, no orgs; per-table id counters like Django's sequences."""
    state: State = {name: {} for name in COLLECTIONS}
    state["counters"] = {}
    return state


class Store(Protocol):
    """The fake's persistent state.

    `transaction()` yields the whole mutable state dict; whatever the caller leaves in it is saved
    when the block exits without an exception (and discarded if it raises). Transactions are
    serialised: one at a time.
    """

    def transaction(self) -> ContextManager[State]: ...


class EventQueue(Protocol):
    """Raw ingested events waiting for the worker (`process_pending`)."""

    def push(self, item: dict) -> None: ...

    def pop(self) -> dict | None: ...


class MemoryStore:
    """A `Store` in process memory, guarded by a lock; rolls back a failed transaction."""

    def __init__(self, state: State | None = None) -> None:
        self._state = state if state is not None else initial_state()
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        with self._lock:
            working = copy.deepcopy(self._state)
            yield working
            self._state = working

    def snapshot(self) -> State:
        """A deep copy of the current state (for tests)."""
        with self._lock:
            return copy.deepcopy(self._state)


class MemoryQueue:
    """An `EventQueue` in process memory (a thread-safe FIFO)."""

    def __init__(self) -> None:
        self._items: collections.deque[dict] = collections.deque()
        self._lock = threading.Lock()

    def push(self, item: dict) -> None:
        with self._lock:
            self._items.append(copy.deepcopy(item))

    def pop(self) -> dict | None:
        with self._lock:
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
