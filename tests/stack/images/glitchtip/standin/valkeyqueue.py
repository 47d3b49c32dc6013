"""The fake's `EventQueue` protocol on a Valkey list (python3-redis speaks to Valkey).

The list is the one the real GlitchTip queues ingest tasks in (`queue_key`): GlitchTip 5's
Celery default queue `celery`, GlitchTip 6's django-vtasks ingest queue `{vt}:q:ingest`, so
`LLEN` of `provision.majors.Major.task_queue_keys` measures the stand-in's backlog as it would
the real one's. `push` is LPUSH of the item's JSON, `pop` a non-blocking RPOP (FIFO). `wait`
lets a worker sleep on BRPOP; the item it receives is kept for the next `pop`.

`fetch`/`ack` are the batch worker's `Broker` (standin.batchworker): on GlitchTip 5 fetched
messages stay in the hash `unacked` (and the sorted set `unacked_index`, scored with the
delivery time) until acked, as kombu's Redis transport keeps a worker's prefetched messages
(kombu/transport/redis.py `QoS.append`); they go back on the queue only when older than the
visibility timeout (`restore_visible`) or, at a clean shutdown, those this worker delivered
(`restore_delivered`). On 6 a fetched batch is simply popped (django-vtasks' `fetch_batch`,
BLMPOP, "unsafe" in its own words) and a failed batch goes to the capped dead-letter list
`{vt}:q:failed` (`fail`, as django-vtasks' `_fail_task`).

On GlitchTip 5 a queued item is wrapped as kombu wraps a message (`properties.delivery_tag`,
`properties.delivery_info.exchange/routing_key`, the item as `body`) and recorded as kombu
records it (`unacked[tag] = [message, exchange, routing_key]`, `unacked_index[tag] = delivery
time`), so that the kit's transport script (`use_kit_transport`: the worker settings module
names it, standin.workersettings) runs on it as it runs on kombu's messages. Without it the
stand-in pops and then records, two steps, as kombu's transport; and it binds the queue at start
(`bind`: kombu's `_queue_bind`, SADD `_kombu.binding.celery`), which a Valkey at maxmemory refuses,
so a worker started then dies as the real Celery worker does.
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
CELERY_UNACKED_INDEX = "unacked_index"
# kombu's binding of the `celery` queue to the `celery` exchange: key and member (sep-joined
# routing key, pattern, queue; kombu/transport/redis.py `_queue_bind`).
CELERY_BINDING = "_kombu.binding.celery"
CELERY_BINDING_MEMBER = "celery\x06\x16\x06\x16celery"
VTASKS_INGEST_QUEUE = "{vt}:q:ingest"
VTASKS_FAILED = "{vt}:q:failed"
VTASKS_DLQ_CAP = 1000  # django-vtasks' VTASKS_DLQ_CAP default
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
        self._delivered: dict[str, float] = {}  # tag -> delivery time (time.time())
        self._failed: Exception | None = None
        self._lock = threading.Lock()
        self._take_script: str | None = None
        self._bind_script: str | None = None
        self._full = False  # the kit's transport: Valkey refused its wait (maxmemory)
        # When kombu's channel started: the worker's start, then each reconnection (kombu's
        # consumer opens a new connection and channel after it lost Valkey).
        self.channel_started = time.monotonic()

    def connection_lost(self) -> None:
        """A fetch failed (Valkey gone): kombu's consumer reconnects with a new channel, whose
        first minute the kit's transport restores on every look; the last failure before the
        reconnection stands for its start."""
        self.channel_started = time.monotonic()

    def use_kit_transport(self, take_script: str, bind_script: str | None) -> None:
        """Take and bind as the kit's kombu transport does, with its scripts."""
        self._take_script, self._bind_script = take_script, bind_script

    def push(self, item: dict) -> None:
        if self._track_unacked:  # kombu's message: a delivery tag and where it was sent
            item = {
                "body": item,
                "content-type": "application/json",
                "properties": {
                    "delivery_tag": str(uuid.uuid4()),
                    "delivery_info": {"exchange": "", "routing_key": CELERY_QUEUE},
                },
            }
        self._client.lpush(self._key, json.dumps(item))

    def pop(self) -> dict | None:
        with self._lock:
            if self._held:
                return self._held.pop(0)
        raw = self._client.rpop(self._key)
        return _unwrap(json.loads(raw))[1] if raw is not None else None

    def bind(self) -> None:
        """kombu's `_queue_bind` of the consumed queue at the worker's start (SADD); refused at
        maxmemory (OutOfMemoryError, raised: Celery's worker dies of it), unless the kit's
        transport writes it with its script."""
        if not self._track_unacked:
            return
        import redis

        try:
            self._client.sadd(CELERY_BINDING, CELERY_BINDING_MEMBER)
        except redis.exceptions.OutOfMemoryError:
            if self._bind_script is None:
                raise
            self._client.eval(self._bind_script, 1, CELERY_BINDING, CELERY_BINDING_MEMBER)

    def wait(self, timeout: float) -> bool:
        """Block until an item is queued (True) or `timeout` seconds pass (False)."""
        with self._lock:
            if self._held:
                return True
        got = self._client.brpop([self._key], timeout=max(1, int(timeout)))
        if got is None:
            return False
        with self._lock:
            self._held.append(_unwrap(json.loads(got[1]))[1])
        return True

    def __len__(self) -> int:
        with self._lock:
            held = len(self._held)
        return held + int(self._client.llen(self._key))

    # -- the batch worker's Broker -----------------------------------------------------------
    def fetch(self, limit: int, timeout: float) -> list[tuple[str, dict]]:
        """Up to `limit` messages, waiting up to `timeout` s for the first.

        GlitchTip 6 (django-vtasks' fetch_batch): BRPOP, then RPOP with a count: popped, gone
        from Valkey. GlitchTip 5 (kombu): one message at a time, each popped and then recorded
        in `unacked`/`unacked_index` (kombu/transport/redis.py `_brpop_read` -> `QoS.append`),
        two steps as in kombu: a kill between them loses that one message, and a refused
        record (Valkey at maxmemory, noeviction) loses it too (the error is raised).
        """
        with self._lock:
            held, self._held = self._held[:limit], self._held[limit:]
        if not self._track_unacked:
            items = list(held)
            raws: list[bytes] = []
            if len(items) < limit:
                if not items:
                    got = self._client.brpop([self._key], timeout=max(0.01, timeout))
                    if got is not None:
                        raws.append(got[1])
                need = limit - len(items) - len(raws)
                if need > 0 and (items or raws):
                    raws.extend(self._client.rpop(self._key, need) or [])
            items.extend(json.loads(raw) for raw in raws)
            return [(uuid.uuid4().hex, item) for item in items]
        if self._failed is not None:  # the refused record of the previous call: raise it now
            failed, self._failed = self._failed, None
            raise failed
        if self._take_script is not None:
            return self._fetch_taken(limit, timeout)
        pairs = [self._record(item) for item in held]
        while len(pairs) < limit:
            if pairs:
                raw = self._client.rpop(self._key)
            else:
                got = self._client.brpop([self._key], timeout=max(0.01, timeout))
                raw = got[1] if got is not None else None
            if raw is None:
                break
            try:
                pairs.append(self._record(json.loads(raw)))
            except Exception as exc:  # this message is lost; the ones delivered before are not
                if not pairs:
                    raise
                self._failed = exc
                break
        return pairs

    def _fetch_taken(self, limit: int, timeout: float) -> list[tuple[str, dict]]:
        """The kit's transport: each message popped and recorded by its take script; when the
        queue is empty, a wait that takes nothing (BLMOVE of the list onto itself), refused at
        maxmemory, where a short sleep stands in for the transport's server-side one."""
        import redis

        pairs: list[tuple[str, dict]] = []
        waited = False
        while len(pairs) < limit:
            taken = self._take()
            if taken is not None:
                pairs.append(taken)
                continue
            if pairs or waited:
                break
            waited = True
            try:
                self._full = False
                self._client.blmove(self._key, self._key, max(0.01, timeout), "LEFT", "LEFT")
            except redis.exceptions.OutOfMemoryError:
                self._full = True
                time.sleep(min(1.0, max(0.01, timeout)))
        return pairs

    def _take(self) -> tuple[str, dict] | None:
        reply = self._client.eval(
            self._take_script, 3, self._key, CELERY_UNACKED, CELERY_UNACKED_INDEX,
            repr(time.time()),
        )  # fmt: skip
        if not reply:
            return None
        _key, raw, recorded = reply
        if not recorded:  # not kombu's message: kombu records it itself
            return self._record(json.loads(raw))
        tag, item = _unwrap(json.loads(raw))
        with self._lock:
            self._delivered[tag] = time.time()
        return tag, item

    def _record(self, message: dict) -> tuple[str, dict]:
        """kombu's `QoS.append`: the delivered message into `unacked_index` and `unacked`."""
        tag, item = _unwrap(message)
        info = message.get("properties", {}).get("delivery_info", {})
        delivered = time.time()
        pipe = self._client.pipeline()
        pipe.zadd(CELERY_UNACKED_INDEX, {tag: delivered})
        pipe.hset(
            CELERY_UNACKED,
            tag,
            json.dumps([message, info.get("exchange", ""), info.get("routing_key", CELERY_QUEUE)]),
        )
        pipe.execute()
        with self._lock:
            self._delivered[tag] = delivered
        return tag, item

    def ack(self, tags: list[str] | tuple[str, ...]) -> None:
        if tags and self._track_unacked:
            pipe = self._client.pipeline()
            pipe.zrem(CELERY_UNACKED_INDEX, *tags)
            pipe.hdel(CELERY_UNACKED, *tags)
            pipe.execute()
            with self._lock:
                for tag in tags:
                    self._delivered.pop(tag, None)

    def held_seconds(self, tags: list[str] | tuple[str, ...]) -> float:
        """How long the oldest of `tags` (delivered by this worker) has been unacknowledged:
        past the visibility timeout, kombu would have put it back on the queue meanwhile."""
        with self._lock:
            times = [self._delivered[tag] for tag in tags if tag in self._delivered]
        return time.time() - min(times) if times else 0.0

    def fail(self, items: list[dict], error: str) -> None:
        """django-vtasks' `_fail_task` for each task of a failed batch: into the dead-letter
        list, trimmed to its cap (the oldest beyond it are dropped)."""
        if not items:
            return
        pipe = self._client.pipeline()
        for item in items:
            pipe.lpush(VTASKS_FAILED, json.dumps({**item, "error_msg": error}))
        pipe.ltrim(VTASKS_FAILED, 0, VTASKS_DLQ_CAP - 1)
        pipe.execute()

    def _restore(self, tags: list[str]) -> int:
        """kombu's `restore_by_tag`: the message back on the right end of the queue (the next
        one consumed), out of `unacked` and `unacked_index`, in one transaction each."""
        restored = 0
        for tag in tags:
            pipe = self._client.pipeline()
            pipe.hget(CELERY_UNACKED, tag)
            raw = pipe.execute()[0]
            pipe = self._client.pipeline(transaction=True)
            pipe.zrem(CELERY_UNACKED_INDEX, tag)
            pipe.hdel(CELERY_UNACKED, tag)
            if raw is not None:
                record = json.loads(raw)  # kombu's [message, exchange, routing_key]
                message = record[0] if isinstance(record, list) else record
                pipe.rpush(self._key, json.dumps(message))
                restored += 1
            pipe.execute()
        return restored

    def restore_visible(self, visibility_timeout: float) -> int:
        """kombu's `QoS.restore_visible`: messages delivered more than `visibility_timeout`
        seconds ago (by any worker, dead or alive) go back on the queue; returns how many."""
        if not self._track_unacked:
            return 0
        ceiling = time.time() - visibility_timeout
        tags = [
            tag.decode() if isinstance(tag, bytes) else tag
            for tag in self._client.zrangebyscore(CELERY_UNACKED_INDEX, 0, ceiling)
        ]
        return self._restore(tags)

    def restore_delivered(self) -> int:
        """kombu's `restore_unacked` at a clean shutdown: what this worker delivered and did
        not acknowledge goes back on the queue; returns how many."""
        if not self._track_unacked:
            return 0
        with self._lock:
            tags, self._delivered = sorted(self._delivered), {}
        return self._restore(tags)


def _unwrap(message: object) -> tuple[str, dict]:
    """(delivery tag, item) of a queued message: kombu's wrapping on GlitchTip 5, the item
    itself elsewhere (a fresh tag)."""
    if isinstance(message, dict) and isinstance(message.get("properties"), dict):
        properties = message["properties"]
        if "delivery_tag" in properties and "body" in message:
            return str(properties["delivery_tag"]), message["body"]
    return uuid.uuid4().hex, message  # type: ignore[return-value]
