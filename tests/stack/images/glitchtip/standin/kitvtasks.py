"""GlitchTip 6's ingest queue when the worker runs the kit's backend (issue 19).

The kit's GlitchTip 6 worker module (provision/worker_modules/glitchtip6.py) names, in
`TASKS`, its subclass of django-vtasks' ValkeyTaskBackend; tests/stack/test_vtasks_real_stack.py
proves it on the real django-vtasks 2.1.2. The stand-in reads the same setting
(standin.workersettings.load_tasks_backend) and, when it names the kit's class, keeps its batches
the way that class does, with the same keys:

- a fetched task moves into `{vt}:processing:{worker_id}` in the step that takes it off the
  queue (LMOVE), and leaves it once its batch is stored (`ack`, LREM);
- a batch that failed because the database went away (an OperationalError or InterfaceError in
  its chain) waits and goes back on its queue, at most len(RETRY_DELAYS) times; anything else
  goes to the dead-letter list as django-vtasks' `_fail_task` does;
- each worker keeps `{vt}:kit:alive:{worker_id}` (TTL ALIVE_TTL, refreshed every ALIVE_EVERY
  seconds) and its id in the hash `{vt}:kit:workers`; at its start and every RESCUE_EVERY
  seconds it puts back its own list (a predecessor with its id) and the lists of the kit workers
  without a liveness key, each task back on the consuming end, a task rescued more than
  MAX_RESCUES times into the dead-letter list;
- the worker knows which raw tasks it holds (fetched, not yet removed from its list); every
  RESCUE_EVERY seconds it also puts back the entries of its own list it does not hold, once
  seen unheld in two consecutive sweeps (a fetch Valkey applied whose reply never came: a
  connection cut by a Valkey restart);
- Valkey at maxmemory (noeviction) refuses LMOVE (a write) but not a pop: the fetch falls back
  to django-vtasks' unrecorded pop, which drains the full queue.

The worker id is django-vtasks' `hostname-pid` (backends/base.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

from .valkeyqueue import VTASKS_DLQ_CAP, VTASKS_FAILED, ValkeyQueue

PREFIX = "{vt}:"
WORKERS = PREFIX + "kit:workers"
# The kit module's values (provision/worker_modules/glitchtip6.py).
ALIVE_TTL = 15
ALIVE_EVERY = 3
RESCUE_EVERY = 10
MAX_RESCUES = 5
RETRY_DELAYS = (1, 2, 4, 8, 15, 30, 30, 30)
ACK_ATTEMPTS = 30
# Tag prefix of a task popped without a record (Valkey full): nothing to acknowledge or move.
UNRECORDED = "unrecorded:"
TRANSIENT_ERRORS = frozenset({"OperationalError", "InterfaceError", "PoolTimeout"})
# Up to ARGV[1] tasks from the queue's consuming end into the processing list, in one step (one
# round trip, as the kit backend's script). KEYS: the queue, the processing list.
MOVE_MANY = """
local out = {}
for i = 1, tonumber(ARGV[1]) do
    local item = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
    if not item then break end
    out[#out + 1] = item
end
return out
"""
# KEYS: source list, destination; ARGV: the raw task, its new payload, R (consuming end), L
# (far end) or F (dead-letter list, trimmed to ARGV[4]).
REQUEUE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
if ARGV[3] == 'R' then
    redis.call('RPUSH', KEYS[2], ARGV[2])
else
    redis.call('LPUSH', KEYS[2], ARGV[2])
end
if ARGV[3] == 'F' then redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1) end
return 1
"""


def worker_id() -> str:
    """django-vtasks' worker id: `hostname-pid`."""
    return f"{socket.gethostname()}-{os.getpid()}"


def is_transient(error: BaseException) -> bool:
    """The database went away: an error class of that name anywhere in the chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(cls.__name__ in TRANSIENT_ERRORS for cls in type(current).__mro__):
            return True
        current = current.__cause__ or current.__context__
    return False


class RecordingQueue(ValkeyQueue):
    """The ingest queue with the kit backend's processing list (module docstring)."""

    records_batches = True

    def __init__(self, client, key: str, *, worker: str | None = None) -> None:
        super().__init__(client, key, track_unacked=False)
        self.worker = worker or worker_id()
        self._waited_for: OrderedDict[int, BaseException] = OrderedDict()
        self._retry_lock = threading.Lock()
        # Raw tasks this worker fetched and has not yet removed from its list (a multiset: two
        # equal payloads are two tasks), and its list's entries it did not hold at the last
        # sweep. The keeper thread reads them while the consumer and the batch threads change
        # them: one lock.
        self._held_raws: Counter[str] = Counter()
        self._held_lock = threading.Lock()
        self._unheld_before: Counter[str] = Counter()

    def processing_key(self, worker: str | None = None) -> str:
        return f"{PREFIX}processing:{worker or self.worker}"

    @staticmethod
    def alive_key(worker: str) -> str:
        return f"{PREFIX}kit:alive:{worker}"

    def _hold(self, raws: list[bytes]) -> list[bytes]:
        with self._held_lock:
            self._held_raws.update(raw.decode() for raw in raws)
        return raws

    def _release(self, tags: list[str]) -> None:
        """The tasks left this worker's list (or the worker gave up on them): no longer held."""
        with self._held_lock:
            self._held_raws -= Counter(tags)

    # -- the batch worker's Broker -----------------------------------------------------------
    def fetch(self, limit: int, timeout: float) -> list[tuple[str, dict]]:
        """Up to `limit` tasks, each moved into this worker's processing list as it is taken
        (LMOVE in a script; BLMOVE for the first when the queue is empty) and held from the
        moment its reply arrives; the tag is the raw payload."""
        processing = self.processing_key()
        try:
            raws = self._hold(list(self._client.eval(MOVE_MANY, 2, self._key, processing, limit)))
        except Exception as exc:
            if "maxmemory" not in str(exc):
                raise
            # Valkey full (noeviction) refuses LMOVE, not a pop: the kit backend falls back to
            # vtasks' unrecorded pop, which drains the queue and frees memory.
            return [
                (UNRECORDED + tag, item) for tag, item in ValkeyQueue.fetch(self, limit, timeout)
            ]
        if not raws:
            raw = self._client.blmove(self._key, processing, max(0.01, timeout), "RIGHT", "LEFT")
            if raw is None:
                return []
            raws = self._hold([raw])
            # Valkey gone after the first: store that one (as the kit backend's fetch does).
            with contextlib.suppress(Exception):
                raws += self._hold(
                    list(self._client.eval(MOVE_MANY, 2, self._key, processing, limit - 1))
                )
        return [(raw.decode(), json.loads(raw)) for raw in raws]

    def ack(self, tags: list[str] | tuple[str, ...]) -> None:
        """The batch is stored: its tasks leave the processing list."""
        tags = [tag for tag in tags if not tag.startswith(UNRECORDED)]
        if not tags:
            return
        for attempt in range(ACK_ATTEMPTS):  # Valkey restarting: as the kit backend, retried
            try:
                pipe = self._client.pipeline()
                for tag in tags:
                    pipe.lrem(self.processing_key(), 1, tag)
                pipe.execute()
                self._release(tags)  # after the removal: never unheld while still listed
                return
            except Exception:
                if attempt == ACK_ATTEMPTS - 1:
                    # Given up (the kit's backend hands them to _fail_task, which lets go):
                    # the sweep puts them back once Valkey answers; stored again, once.
                    self._release(tags)
                    raise
                time.sleep(1)

    def fail_batch(self, batch: list[tuple[str, dict]], error: BaseException) -> None:
        """Database gone: wait once for the batch, then each task back on its queue (bounded);
        otherwise the dead-letter list. Each task is let go once it was moved (or could not
        be: the sweep puts it back then)."""
        for tag, item in batch:
            try:
                self._fail_one(tag, item, error)
            finally:
                self._release([tag])

    def _fail_one(self, tag: str, item: dict, error: BaseException) -> None:
        retries = int(item.get("_kit_retries", 0))
        if not is_transient(error) or retries >= len(RETRY_DELAYS):
            failed = json.dumps({**item, "error_msg": type(error).__name__})
            if tag.startswith(UNRECORDED):
                ValkeyQueue.fail(self, [item], type(error).__name__)
            else:
                self._move(self.processing_key(), tag, VTASKS_FAILED, failed, "F")
            return
        with self._retry_lock:  # once per batch; other batches fail meanwhile
            first = id(error) not in self._waited_for
            self._waited_for[id(error)] = error
            while len(self._waited_for) > 64:
                self._waited_for.popitem(last=False)
        if first:
            time.sleep(RETRY_DELAYS[retries])
        payload = json.dumps({**item, "_kit_retries": retries + 1})
        if tag.startswith(UNRECORDED):  # popped from a full Valkey: no record to move
            self._client.lpush(self._key, payload)
        else:
            self._move(self.processing_key(), tag, self._key, payload, "L")

    def _move(self, source: str, raw: str, dest: str, payload: str, side: str) -> bool:
        """`raw` out of `source` and `payload` into `dest` in one step (a Lua script, as the
        kit backend's), only if `raw` was still there (nobody put it back meanwhile)."""
        moved = self._client.eval(REQUEUE, 2, source, dest, raw, payload, side, VTASKS_DLQ_CAP)
        return bool(moved)

    # -- putting back dead workers' tasks ------------------------------------------------------
    def mark_alive(self) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.set(self.alive_key(self.worker), "1", ex=ALIVE_TTL)
        pipe.hset(WORKERS, self.worker, int(time.time()))
        pipe.execute()

    def rescue(self, *, own: bool) -> int:
        """Put back this worker's own list (`own`, at its start) and the dead kit workers'."""
        rescued = self._rescue_list(self.worker) if own else 0
        for raw in self._client.hkeys(WORKERS):
            name = raw.decode() if isinstance(raw, bytes) else raw
            if name == self.worker or self._client.exists(self.alive_key(name)):
                continue
            rescued += self._rescue_list(name)
            if not self._client.llen(self.processing_key(name)):
                self._client.hdel(WORKERS, name)
        return rescued

    def _rescue_list(self, worker: str) -> int:
        processing = self.processing_key(worker)
        rescued = 0
        while True:
            raw = self._client.lindex(processing, -1)
            if raw is None:
                return rescued
            rescued += self._put_back(processing, raw.decode())

    def _put_back(self, processing: str, raw: str) -> int:
        """One task of `processing` back on the queue's consuming end with its rescue count
        (the dead-letter list past MAX_RESCUES): 1 when it went back on the queue."""
        item = json.loads(raw)
        count = int(item.get("_rescue_count", 0))
        item["_rescue_count"] = count + 1
        if count >= max(int(item.get("max_rescues", 0) or 0), MAX_RESCUES):
            self._move(processing, raw, VTASKS_FAILED, json.dumps(item), "F")
            return 0
        return int(self._move(processing, raw, self._key, json.dumps(item), "R"))

    def sweep_own(self) -> int:
        """Put back the entries of this worker's own list that it does not hold and did not
        hold at the previous sweep either: a fetch Valkey applied (and kept in its append-only
        file) whose reply died with the connection. One sweep is not enough: a reply merely in
        flight, or an acknowledgement between its LREM and its release, looks the same for a
        moment. No lock across fetches: the kit backend runs one consumer per queue at once."""
        processing = self.processing_key()
        listed = Counter(raw.decode() for raw in self._client.lrange(processing, 0, -1))
        with self._held_lock:
            unheld = listed - self._held_raws
        stranded = unheld & self._unheld_before
        self._unheld_before = unheld - stranded
        put_back = 0
        for raw, copies in stranded.items():
            for _ in range(copies):
                put_back += self._put_back(processing, raw)
        return put_back

    def start_keeper(self, stop: threading.Event, log: Callable[[str], None]) -> None:
        """At the worker's start and then in the background, as the kit backend does."""
        try:
            self.mark_alive()
            rescued = self.rescue(own=True)
            if rescued:
                log(f"Put back {rescued} task(s) of dead workers on start")
        except Exception as exc:
            log(f"putting back dead workers' tasks failed: {type(exc).__name__}: {exc}")

        def run() -> None:
            last = time.monotonic()
            while not stop.wait(ALIVE_EVERY):
                try:
                    self.mark_alive()
                    if time.monotonic() - last >= RESCUE_EVERY:
                        last = time.monotonic()
                        rescued = self.rescue(own=False)
                        if rescued:
                            log(f"Put back {rescued} task(s) of dead workers")
                        stranded = self.sweep_own()
                        if stranded:
                            log(
                                f"Put back {stranded} task(s) of this worker's own list that "
                                "it never received (a fetch whose reply was lost)"
                            )
                except Exception as exc:
                    log(f"keeping the liveness key failed: {type(exc).__name__}: {exc}")

        threading.Thread(target=run, name="kit-vtasks-keeper", daemon=True).start()
