"""The fake's `EventQueue` protocol on a Valkey list (python3-redis speaks to Valkey).

The list is the one the real GlitchTip queues ingest tasks in (`queue_key`): GlitchTip 5's
Celery default queue `celery`, GlitchTip 6's django-vtasks ingest queue `{vt}:q:ingest`, so
`LLEN` of `provision.majors.Major.task_queue_keys` measures the stand-in's backlog as it would
the real one's. `push` is LPUSH of the item's JSON, `pop` a non-blocking RPOP (FIFO). `wait`
lets a worker sleep on BRPOP; the item it receives is kept for the next `pop`.

`fetch`/`ack` are the batch worker's `Broker` (standin.batchworker): on GlitchTip 5 fetched
messages stay in the hash `unacked` until acked, as kombu's Redis transport keeps a worker's
prefetched messages; on 6 a fetched batch is simply popped (django-vtasks' `fetch_batch`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

CELERY_QUEUE = "celery"
CELERY_UNACKED = "unacked"
VTASKS_INGEST_QUEUE = "{vt}:q:ingest"
DEFAULT_KEY = VTASKS_INGEST_QUEUE


def queue_key(major: int) -> str:
    """The list GlitchTip `major` queues ingested events in."""
    return CELERY_QUEUE if major < 6 else VTASKS_INGEST_QUEUE


def connect(url: str, *, wait: float = 0.0) -> redis.Redis:
    """A client for `url` that answered PING; retries connection errors for `wait` seconds.

    Authentication errors and unparseable URLs are raised at once.
    """
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
    deadline = time.monotonic() + wait
    while True:
        try:
            client.ping()
            return client
        except redis.exceptions.AuthenticationError:
            raise
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)


class ValkeyQueue:
    def __init__(
        self, client: redis.Redis, key: str = DEFAULT_KEY, *, track_unacked: bool | None = None
    ) -> None:
        self._client = client
        self._key = key
        self._track_unacked = key == CELERY_QUEUE if track_unacked is None else track_unacked
        self._held: list[dict] = []
        self._lock = threading.Lock()

    def push(self, item: dict) -> None:
        self._client.lpush(self._key, json.dumps(item))

    def pop(self) -> dict | None:
        with self._lock:
            if self._held:
                return self._held.pop(0)
        raw = self._client.rpop(self._key)
        return json.loads(raw) if raw is not None else None

    def wait(self, timeout: float) -> bool:
        """Block until an item is queued (True) or `timeout` seconds pass (False)."""
        with self._lock:
            if self._held:
                return True
        got = self._client.brpop([self._key], timeout=max(1, int(timeout)))
        if got is None:
            return False
        with self._lock:
            self._held.append(json.loads(got[1]))
        return True

    def __len__(self) -> int:
        with self._lock:
            held = len(self._held)
        return held + int(self._client.llen(self._key))

    # -- the batch worker's Broker -----------------------------------------------------------
    def fetch(self, limit: int, timeout: float) -> list[tuple[str, dict]]:
        """Up to `limit` messages, waiting up to `timeout` s for the first (BRPOP, then RPOP
        with a count for the rest)."""
        raws: list[bytes] = []
        with self._lock:
            held, self._held = self._held[:limit], self._held[limit:]
        items = list(held)
        if len(items) < limit:
            if not items:
                got = self._client.brpop([self._key], timeout=max(0.01, timeout))
                if got is not None:
                    raws.append(got[1])
            need = limit - len(items) - len(raws)
            if need > 0 and (items or raws):
                more = self._client.rpop(self._key, need)
                raws.extend(more or [])
        items.extend(json.loads(raw) for raw in raws)
        pairs = [(uuid.uuid4().hex, item) for item in items]
        if pairs and self._track_unacked:
            self._client.hset(
                CELERY_UNACKED, mapping={tag: json.dumps(item) for tag, item in pairs}
            )
        return pairs

    def ack(self, tags: list[str] | tuple[str, ...]) -> None:
        if tags and self._track_unacked:
            self._client.hdel(CELERY_UNACKED, *tags)

    def restore_unacked(self) -> int:
        """Put messages a stopped worker held back on the queue (kombu restores them at worker
        shutdown); returns how many."""
        if not self._track_unacked:
            return 0
        pending = self._client.hgetall(CELERY_UNACKED)
        if not pending:
            return 0
        pipe = self._client.pipeline()
        pipe.rpush(self._key, *pending.values())
        pipe.hdel(CELERY_UNACKED, *pending.keys())
        pipe.execute()
        return len(pending)
