"""The fake's `EventQueue` protocol on a Valkey list (python3-redis speaks to Valkey).

`push` is LPUSH of the item's JSON, `pop` is a non-blocking RPOP (FIFO). `wait(timeout)` lets
the worker sleep on BRPOP instead of polling; the item it receives is kept and handed out by the
next `pop`, so nothing is lost between the two calls.
"""

from __future__ import annotations

import json
import threading
import time

import redis

DEFAULT_KEY = "glitchtip-standin:ingest"


def connect(url: str, *, wait: float = 0.0) -> redis.Redis:
    """A client for `url` that answered PING; retries connection errors for `wait` seconds.

    Authentication errors and unparseable URLs are raised at once.
    """
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
    def __init__(self, client: redis.Redis, key: str = DEFAULT_KEY) -> None:
        self._client = client
        self._key = key
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
