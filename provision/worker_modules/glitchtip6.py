"""GlitchTip 6 worker settings written by the GlitchTip kit (provision/durability). Do not edit:
`provision render` writes this file again.

GlitchTip's own settings, with one change: where they name django-vtasks' Valkey backend in
`TASKS`, the worker runs the kit's subclass of it, `KitValkeyTaskBackend` (below), and where
they name its database backend (VALKEY_URL="": the minimal profile's all-in-one),
`KitDatabaseTaskBackend`, so that an event GlitchTip answered 200 is not lost when the worker is
killed or Postgres restarts.

What django-vtasks 2.1.2 (the version GlitchTip 6 pins) does, and what the subclass changes
(docs/durability.md has the whole account):

- `ValkeyTaskBackend.fetch_batch` takes an ingest batch (GlitchTip: 100 tasks, 2 s) off the
  queue with BLMPOP and keeps no record of it: a killed worker loses every batch it holds. The
  subclass moves each task atomically (LMOVE in a Lua script, BLMOVE while it waits) into the
  worker's own list `{prefix}processing:{worker_id}`, the list vtasks already keeps for single
  tasks, and removes a batch's tasks from it once the batch is stored (`_ack_batch`).
- `_rescue_tasks` (run once when a worker starts) puts back the worker's own list and the lists
  of workers with the *same hostname*; a container recreated by `provision up` has a new
  hostname, so its predecessor's list would never come back, and `max_rescues` defaults to 0,
  which sends every rescued task to the dead-letter list. The subclass has each worker keep a
  liveness key (`{prefix}kit:alive:{worker_id}`, a short TTL it refreshes) and put back, when it
  starts and every few seconds after, the list of every kit worker whose liveness key is gone,
  whatever its hostname; never the list of a worker that is alive (several replicas, Swarm,
  Kubernetes). A task rescued more than `_MAX_RESCUES` times (a batch that kills its worker
  each time) goes to the dead-letter list, as vtasks does beyond `max_rescues`.
- A fetch (the subclass's batch fetch, vtasks' BLMOVE of a single task) that Valkey applied,
  and kept in its append-only file, but whose reply died with the connection (Valkey killed or
  restarted) leaves a task in the live worker's own list that the worker never received. The
  subclass knows which raw tasks it holds (fetched, not yet removed from the list) and, every
  _RESCUE_EVERY s, puts back the entries of its own list it did not hold in two consecutive
  looks: one look is not enough, a reply in flight or an acknowledgement between its LREM and
  its release looks the same for a moment.
- `Worker.process_batch` hands a batch that raised to `_fail_task`, which moves it to the
  dead-letter list `{prefix}q:failed`, where nothing retries it. When the error is the database
  going away (OperationalError, InterfaceError, a pool timeout) the subclass waits and puts the
  batch back on its queue instead, at most `len(_RETRY_DELAYS)` times; other errors go to the
  dead-letter list as before.
- Valkey at maxmemory (noeviction, the kit's) refuses LMOVE, which writes, but not BLMPOP: while
  it is full the subclass fetches with vtasks' own unrecorded pop, the only way to drain a full
  queue (a kill then loses those batches, as without the kit).

The database backend's subclass does the same with rows instead of lists (its docstring below):
liveness rows, the PROCESSING rows of dead workers put back, a batch the database failed put
back to QUEUED.

A batch that runs twice is stored once: GlitchTip inserts the events with
`bulk_create(ignore_conflicts=True)` on (event id, received), both carried in the task. Its
counts (the issue's event count, hourly and tag statistics) are added to again.
"""

# isort: off
from glitchtip.settings import *  # noqa: F403
from glitchtip.settings import TASKS as _GLITCHTIP_TASKS

# After GlitchTip's names (a star import brings its module-level imports too): these are ours.
import asyncio
import logging
import time
from collections import Counter, OrderedDict

# isort: on

# django-vtasks' backends as GlitchTip's settings name them (Valkey when VALKEY_URL is set, the
# database otherwise: the minimal profile's all-in-one), and the kit's subclass of each.
_KIT_BACKENDS = {
    "django_vtasks.backends.valkey.ValkeyTaskBackend": f"{__name__}.KitValkeyTaskBackend",
    "django_vtasks.backends.db.DatabaseTaskBackend": f"{__name__}.KitDatabaseTaskBackend",
}

# Only the backend class changes; its options and any other backend stay as GlitchTip set them.
TASKS = {
    alias: (
        {**conf, "BACKEND": _KIT_BACKENDS[conf["BACKEND"]]}
        if conf.get("BACKEND") in _KIT_BACKENDS
        else conf
    )
    for alias, conf in _GLITCHTIP_TASKS.items()
}

# A worker's liveness key lives this many seconds and is refreshed every _ALIVE_EVERY seconds;
# lists of workers without one are put back every _RESCUE_EVERY seconds. A killed worker's
# batches are back on the queue within _ALIVE_TTL + _RESCUE_EVERY seconds (25 s).
_ALIVE_TTL = 15
_ALIVE_EVERY = 3
_RESCUE_EVERY = 10
# Times a task may come back from a dead worker's list before it is dead-lettered.
_MAX_RESCUES = 5
# Seconds to wait before each retry of a batch that failed because the database went away
# (about 2 minutes in all: a Postgres restart, a failover).
_RETRY_DELAYS = (1, 2, 4, 8, 15, 30, 30, 30)
# Seconds (one attempt each) a stored batch's acknowledgement is retried while Valkey is away.
_ACK_ATTEMPTS = 30
# Error class names (anywhere in an exception's chain) that mean the database went away.
_TRANSIENT_ERRORS = frozenset({"OperationalError", "InterfaceError", "PoolTimeout"})

# Moves up to ARGV[1] tasks from the queue's consuming end into the processing list, in one
# step, and returns them. KEYS: the queue, the processing list (both under vtasks' `{vt}:`
# prefix, so one cluster slot).
_MOVE_MANY = """
local out = {}
for i = 1, tonumber(ARGV[1]) do
    local item = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
    if not item then break end
    out[#out + 1] = item
end
return out
"""
# Puts one task back: only if it is still in the processing list (nobody rescued it meanwhile),
# removes it there and pushes ARGV[2] (its new payload) where it goes. KEYS: the processing
# list, the destination; ARGV[3]: R (consuming end: next), L (far end) or F (dead-letter list,
# trimmed to ARGV[4] entries).
_REQUEUE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
if ARGV[3] == 'R' then
    redis.call('RPUSH', KEYS[2], ARGV[2])
else
    redis.call('LPUSH', KEYS[2], ARGV[2])
end
if ARGV[3] == 'F' then redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1) end
return 1
"""

# This worker is alive for ARGV[1] seconds: KEYS[1] its liveness key, KEYS[2] the hash of kit
# workers (ARGV[2] its id, ARGV[3] when it was last seen).
_ALIVE = """
redis.call('SET', KEYS[1], '1', 'EX', tonumber(ARGV[1]))
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""
# The kit workers (KEYS[1]) other than ARGV[2] with no liveness key (ARGV[1] .. id).
_DEAD_WORKERS = """
local out = {}
for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
    if id ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. id) == 0 then out[#out + 1] = id end
end
return out
"""
# Forget worker ARGV[1] (KEYS[1]: the hash) once its processing list (KEYS[2]) is empty.
_FORGET = """
if redis.call('LLEN', KEYS[2]) == 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""
# The oldest task of a processing list, without taking it.
_PEEK = "return redis.call('LINDEX', KEYS[1], -1)"
# Every task of a processing list (the worker's own: at most its batches in flight).
_RANGE = "return redis.call('LRANGE', KEYS[1], 0, -1)"


def _is_transient(error: BaseException) -> bool:
    """Whether `error` (or what caused it) says the database went away: Django's and psycopg's
    OperationalError and InterfaceError, psycopg_pool's PoolTimeout (compared by class name, so
    that both the wrapped and the raw driver errors count)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(cls.__name__ in _TRANSIENT_ERRORS for cls in type(current).__mro__):
            return True
        current = current.__cause__ or current.__context__
    return False


def _as_bytes(raw) -> bytes:
    """A raw task as the driver returns it (bytes; str from a test's or another driver)."""
    return raw if isinstance(raw, bytes) else str(raw).encode()


def _is_full(error: BaseException) -> bool:
    """Valkey refused a write at maxmemory (noeviction): "OOM command not allowed when used
    memory > 'maxmemory'"."""
    return "maxmemory" in str(error)


_LOGGER = logging.getLogger("glitchtip_kit.vtasks")


class _KitWorker:
    """What both kit backends add to the worker's side of django-vtasks: a liveness mark kept
    fresh, dead workers' batches put back when the worker starts and every _RESCUE_EVERY s
    after, and one wait per failed batch before it is retried. Each backend says how it marks
    itself alive (`_mark_alive`) and what it puts back (`_rescue_at_start`, `_rescue_dead`,
    `_sweep_own`).
    Plain Python: importing it imports nothing of Django's or vtasks'."""

    def __init__(self, alias, params):
        super().__init__(alias, params)
        self._keeper: asyncio.Task | None = None
        # Exceptions of batches already waited for (the last few: see `_wait_before_retry`).
        self._waited_for: OrderedDict[int, BaseException] = OrderedDict()

    async def _rescue_tasks(self) -> None:
        """vtasks' start-up hook: mark this worker alive, put back what dead workers (and a
        predecessor with this worker's id) left, then keep doing so in the background."""
        try:
            await self._mark_alive()
            rescued = await self._rescue_at_start()
            if rescued:
                _LOGGER.warning("Put back %d task(s) of dead workers on start", rescued)
        except Exception:
            # The queue's store not reachable yet: the keeper tries again every few seconds.
            _LOGGER.warning("Putting back dead workers' tasks failed", exc_info=True)
        if self._keeper is None:
            self._keeper = asyncio.get_running_loop().create_task(self._keep_alive())

    async def _keep_alive(self) -> None:
        last_rescue = time.monotonic()
        while True:
            await asyncio.sleep(_ALIVE_EVERY)
            try:
                await self._mark_alive()
                if time.monotonic() - last_rescue >= _RESCUE_EVERY:
                    last_rescue = time.monotonic()
                    rescued = await self._rescue_dead()
                    if rescued:
                        _LOGGER.warning("Put back %d task(s) of dead workers", rescued)
                    stranded = await self._sweep_own()
                    if stranded:
                        _LOGGER.warning(
                            "Put back %d task(s) of this worker's own list that it never "
                            "received (a fetch whose reply was lost)",
                            stranded,
                        )
            except asyncio.CancelledError:
                raise
            except Exception:
                _LOGGER.warning("Keeping the worker's liveness mark failed", exc_info=True)

    async def _sweep_own(self) -> int:
        """Put back what this worker's own list holds that the worker does not (the database
        backend does it in `_rescue_dead`): none by default."""
        return 0

    async def _wait_before_retry(self, exception: BaseException, retries: int) -> None:
        """The wait before retry number `retries` + 1 of a batch the database failed.
        process_batch calls `_fail_task` once per task with the batch's one exception: wait
        once per batch, holding its worker slot. Other batches fail meanwhile with exceptions
        of their own: remember the last few."""
        if id(exception) in self._waited_for:
            return
        self._waited_for[id(exception)] = exception
        while len(self._waited_for) > 64:
            self._waited_for.popitem(last=False)
        _LOGGER.warning(
            "A batch failed because the database went away (%s); retrying in %s s",
            type(exception).__name__,
            _RETRY_DELAYS[retries],
        )
        await asyncio.sleep(_RETRY_DELAYS[retries])


def _build_backend():
    """The backend class, built on first use: importing django-vtasks' backend while Django is
    still reading this settings module would import Django's cache and database layers too
    early."""
    from django_vtasks.backends.valkey import ValkeyTaskBackend
    from django_vtasks.serialization import deserialize, serialize

    logger = _LOGGER

    class KitValkeyTaskBackend(_KitWorker, ValkeyTaskBackend):
        """django-vtasks' Valkey backend whose batches survive a killed worker and a database
        restart (this module's docstring)."""

        def __init__(self, alias, params):
            super().__init__(alias, params)
            self._scripts: dict[str, str] = {}
            # Raw tasks this worker fetched into its list and has not yet removed from it (a
            # multiset: two equal payloads are two tasks), and the entries of its list it did
            # not hold at the last sweep. Only the event loop touches them: no lock.
            self._held: Counter[bytes] = Counter()
            self._unheld_before: Counter[bytes] = Counter()

        def _hold(self, raws: list) -> list:
            self._held.update(_as_bytes(raw) for raw in raws)
            return raws

        def _release(self, raws: list) -> None:
            """Called once a task left the list (or the worker gave up on it: the sweep puts it
            back then), never before: an entry of the list is unheld only when nothing of this
            worker will touch it again."""
            self._held -= Counter(_as_bytes(raw) for raw in raws)

        # -- keys and scripts ----------------------------------------------------------------
        def _processing_key(self, worker_id: str | None = None) -> str:
            return self._get_key(f"processing:{worker_id or self.worker_id}")

        def _alive_key(self, worker_id: str) -> str:
            return self._get_key(f"kit:alive:{worker_id}")

        def _workers_key(self) -> str:
            return self._get_key("kit:workers")

        async def _script(self, name: str, source: str, keys: list, args: list):
            """EVALSHA, loading the script first and again after a Valkey restart (NOSCRIPT).
            The driver takes the arguments as bytes."""
            args = [a if isinstance(a, bytes) else str(a).encode() for a in args]
            for attempt in (0, 1):
                sha = self._scripts.get(name)
                if sha is None:
                    loaded = await self.driver.script_load(source)
                    sha = loaded.decode() if isinstance(loaded, bytes) else loaded
                    self._scripts[name] = sha
                try:
                    return await self.driver.evalsha(sha, keys, args)
                except Exception as error:
                    if attempt or "NOSCRIPT" not in str(error):
                        raise
                    self._scripts.pop(name, None)
            return None

        # -- fetching and acknowledging a batch -----------------------------------------------
        async def fetch_batch(self, queue: str, count: int, timeout: float) -> list[dict]:
            """Up to `count` tasks within `timeout` seconds, each moved into this worker's
            processing list in the same step that takes it off the queue."""
            source = self._get_key(f"q:{queue}")
            processing = self._processing_key()
            deadline = time.monotonic() + max(timeout, 0.0)
            raws: list[bytes] = []
            while len(raws) < count:
                try:
                    moved = await self._script(
                        "move_many", _MOVE_MANY, [source, processing], [str(count - len(raws))]
                    )
                    raws.extend(self._hold(list(moved or [])))
                    remaining = deadline - time.monotonic()
                    if len(raws) >= count or remaining <= 0:
                        break
                    item = await self.driver.blmove(
                        source, processing, "RIGHT", "LEFT", max(0.01, remaining)
                    )
                except Exception as error:
                    if not raws and _is_full(error):
                        return await self._fetch_unrecorded(queue, count, timeout)
                    # A connection error: what was read is processed now; what Valkey moved
                    # but whose reply was lost is in the processing list, unheld, and the
                    # sweep puts it back (`_sweep_own`).
                    logger.warning("Fetching a batch from %s failed", source, exc_info=True)
                    break
                if item is None:
                    break
                raws.extend(self._hold([item]))
            tasks = []
            for raw in raws:
                try:
                    task = deserialize(raw)
                except Exception as error:
                    try:
                        await self._fail_raw(raw, error)
                    except Exception:
                        logger.warning("Dead-lettering failed; the sweep will", exc_info=True)
                    finally:
                        self._release([raw])
                    continue
                task["_raw"] = raw
                tasks.append(task)
            return tasks

        async def _fetch_unrecorded(self, queue: str, count: int, timeout: float) -> list[dict]:
            """Valkey at maxmemory (noeviction) refuses LMOVE and BLMOVE, which write, but not
            BLMPOP: only vtasks' own unrecorded pop drains a full queue (and frees the memory
            that lets the recorded fetch work again). A kill loses such a batch, as without
            the kit."""
            logger.warning("Valkey is full: fetching a batch without a processing record")
            tasks = await super().fetch_batch(queue, count, timeout)
            for task in tasks:
                task["_kit_unrecorded"] = True
            return tasks

        async def _fail_raw(self, raw: bytes, error: Exception) -> None:
            """A task that cannot be read goes to the dead-letter list as it came."""
            logger.error("Dead-lettering an unreadable task: %s", error)
            await self._script(
                "requeue",
                _REQUEUE,
                [self._processing_key(), self._get_key("q:failed")],
                [raw, raw, "F", str(self.dlq_cap)],
            )

        async def _fetch_task(self, queues: list[str]) -> dict | None:
            """vtasks' single-task fetch (BLMOVE into the same processing list), held."""
            task = await super()._fetch_task(queues)
            if task:
                self._hold([task["_raw"]])
            return task

        async def _ack_task(self, task_data: dict) -> None:
            await super()._ack_task(task_data)
            self._release([task_data["_raw"]])

        async def _ack_batch(self, tasks: list[dict]) -> None:
            """The batch is stored: its tasks leave the processing list (and are let go once
            they did; if this gives up, process_batch hands them to `_fail_task`)."""
            processing = self._processing_key().encode()
            commands = []
            for task in tasks:
                commands.append(("LREM", [processing, b"1", task["_raw"]]))
                if task.get("unique") and task.get("remove_unique_on_complete"):
                    unique = self._get_key(f"unique:{task['unique_key']}")
                    commands.append(("DEL", [unique.encode()]))
            # Valkey restarting: try again for a while (the batch is stored; if this gives up,
            # its tasks stay in the list and are stored again, counted twice, after a restart).
            for attempt in range(_ACK_ATTEMPTS):
                try:
                    if commands:
                        await self.driver.pipeline_exec(commands)
                    self._release(
                        [t["_raw"] for t in tasks if "_raw" in t and not t.get("_kit_unrecorded")]
                    )
                    return
                except Exception:
                    if attempt == _ACK_ATTEMPTS - 1:
                        raise
                    logger.warning("Acknowledging a stored batch failed; retrying in 1 s")
                    await asyncio.sleep(1)

        # -- a batch that failed ---------------------------------------------------------------
        async def _fail_task(self, task_data: dict, exception: Exception) -> None:
            """Database gone: wait, then put the task back on its queue (bounded). Anything
            else: vtasks' dead-letter list. The task is held until then, let go after (if the
            move failed, the sweep puts it back).

            Never raises: vtasks' process_batch calls this for each task of a failed batch in
            one loop, and an error here (Valkey away) would end the loop with the rest of the
            batch still held, stuck in this live worker's list until it restarts."""
            try:
                await self._fail_held_task(task_data, exception)
            except Exception:
                # Left in the list, let go below: the sweep puts it back. A task popped from a
                # full Valkey has no record to fall back on: that one is lost, as without the kit.
                level = logging.ERROR if task_data.get("_kit_unrecorded") else logging.WARNING
                logger.log(
                    level,
                    "Handing on failed task %s failed; %s",
                    task_data.get("id", "?"),
                    "lost (fetched without a record)"
                    if task_data.get("_kit_unrecorded")
                    else "the sweep puts it back",
                    exc_info=True,
                )
            finally:
                if "_raw" in task_data and not task_data.get("_kit_unrecorded"):
                    self._release([task_data["_raw"]])

        async def _fail_held_task(self, task_data: dict, exception: Exception) -> None:
            retries = int(task_data.get("_kit_retries", 0))
            if not _is_transient(exception) or retries >= len(_RETRY_DELAYS):
                await super()._fail_task(task_data, exception)
                return
            # The batch stays in the processing list while it waits.
            await self._wait_before_retry(exception, retries)
            payload = {k: v for k, v in task_data.items() if k not in ("_raw", "_kit_unrecorded")}
            payload["_kit_retries"] = retries + 1
            queue = self._get_key(f"q:{task_data.get('queue', 'default')}")
            if task_data.get("_kit_unrecorded"):  # popped from a full Valkey: no record
                await self.driver.lpush(queue, [serialize(payload)])
                return
            await self._script(
                "requeue",
                _REQUEUE,
                [self._processing_key(), queue],
                [task_data["_raw"], serialize(payload), "L", "0"],
            )

        # -- putting back a dead worker's tasks ----------------------------------------------
        async def _rescue_at_start(self) -> int:
            """Its own list (a predecessor with the same id, e.g. the same container
            restarted) and every dead kit worker's."""
            rescued = await self._rescue_list(self.worker_id)
            return rescued + await self._rescue_dead_workers()

        async def _rescue_dead(self) -> int:
            return await self._rescue_dead_workers()

        async def _mark_alive(self) -> None:
            await self._script(
                "alive",
                _ALIVE,
                [self._alive_key(self.worker_id), self._workers_key()],
                [str(_ALIVE_TTL), self.worker_id, str(int(time.time()))],
            )

        async def _rescue_dead_workers(self) -> int:
            """Put back the lists of the kit workers that have no liveness key, and forget
            those whose list is empty."""
            dead = await self._script(
                "dead",
                _DEAD_WORKERS,
                [self._workers_key()],
                [self._alive_key(""), self.worker_id],
            )
            rescued = 0
            for raw_name in dead or []:
                name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
                rescued += await self._rescue_list(name)
                await self._script(
                    "forget",
                    _FORGET,
                    [self._workers_key(), self._processing_key(name)],
                    [name],
                )
            return rescued

        async def _rescue_list(self, worker_id: str) -> int:
            """Move every task of `worker_id`'s processing list back to its queue (the consuming
            end: they are the oldest), one atomic step per task."""
            processing = self._processing_key(worker_id)
            rescued = 0
            while True:
                raw = await self._script("peek", _PEEK, [processing], [])
                if not raw:
                    return rescued
                rescued += await self._put_back(processing, raw)

        async def _sweep_own(self) -> int:
            """Put back the entries of this worker's own list that it did not hold at this look
            nor at the previous one (_RESCUE_EVERY s before): fetches Valkey applied whose
            replies never came. No lock across fetches: vtasks runs one consumer per queue at
            once, and a lock around their blocking waits would serialize them."""
            processing = self._processing_key()
            listed = await self._script("range", _RANGE, [processing], [])
            unheld = Counter(_as_bytes(raw) for raw in listed or []) - self._held
            stranded = unheld & self._unheld_before
            self._unheld_before = unheld - stranded
            put_back = 0
            for raw, copies in stranded.items():
                for _ in range(copies):
                    put_back += await self._put_back(processing, raw)
            return put_back

        async def _put_back(self, processing: str, raw: bytes) -> int:
            """One task of `processing` back on its queue's consuming end with its rescue count,
            in one atomic step (the dead-letter list past the rescue limit, or if unreadable):
            1 when it went back on its queue."""
            try:
                task = deserialize(raw)
            except Exception as error:
                logger.error("Dead-lettering an unreadable task: %s", error)
                await self._script(
                    "requeue",
                    _REQUEUE,
                    [processing, self._get_key("q:failed")],
                    [raw, raw, "F", str(self.dlq_cap)],
                )
                return 0
            task.pop("_raw", None)
            count = int(task.get("_rescue_count", 0))
            limit = max(int(task.get("max_rescues", 0) or 0), _MAX_RESCUES)
            task["_rescue_count"] = count + 1
            if count >= limit:
                task["error_msg"] = f"Exceeded max_rescues ({limit})"
                dest, side = self._get_key("q:failed"), "F"
            else:
                dest, side = self._get_key(f"q:{task.get('queue', 'default')}"), "R"
            moved = await self._script(
                "requeue",
                _REQUEUE,
                [processing, dest],
                [raw, serialize(task), side, str(self.dlq_cap)],
            )
            return int(bool(moved) and side == "R")

    return KitValkeyTaskBackend


def _build_database_backend():
    """The database backend's class, built on first use (as `_build_backend`)."""
    from datetime import timedelta

    from asgiref.sync import sync_to_async
    from django.db import transaction
    from django.db.models import Q
    from django.utils import timezone
    from django_vtasks.backends.db import DatabaseTaskBackend
    from django_vtasks.db.models import QueuedTask, TaskStatus, VTaskMetadata
    from django_vtasks.serialization import deserialize, serialize

    logger = _LOGGER

    class KitDatabaseTaskBackend(_KitWorker, DatabaseTaskBackend):
        """django-vtasks' database backend (VALKEY_URL="": the minimal profile's all-in-one)
        whose batches survive a killed process and a database restart.

        vtasks marks the rows it fetches PROCESSING with its worker id (`hostname-pid`), puts
        back only rows of *other* pids of the *same* hostname, only when a worker starts, and
        with `max_rescues` 0 marks them FAILED; a batch that fails while the database is away
        cannot even be marked FAILED, so its rows stay PROCESSING under a live worker's id,
        where nothing looks at them again. This subclass keeps a liveness row per worker
        (VTaskMetadata `kit:alive:<worker id>`, expiring after _ALIVE_TTL s, refreshed every
        _ALIVE_EVERY s) and puts back, at start and every _RESCUE_EVERY s, the PROCESSING rows
        of every worker without a live row, whatever its hostname, and its own rows that it no
        longer holds (a batch whose failure could not be written); a batch the database failed
        waits and goes back to QUEUED, as the Valkey subclass does."""

        def __init__(self, alias, params):
            super().__init__(alias, params)
            # Rows this worker fetched and has not yet acknowledged or given back.
            self._held: set[str] = set()
            # Fetching and the rescue of this worker's own rows never interleave: a fetched
            # batch is in _held before a rescue can look at it.
            self._own_lock = asyncio.Lock()

        # -- fetching and acknowledging ------------------------------------------------------
        async def fetch_batch(self, queue: str, count: int, timeout: float) -> list[dict]:
            async with self._own_lock:
                tasks = await super().fetch_batch(queue, count, timeout)
                self._held.update(task["id"] for task in tasks)
            return tasks

        async def _fetch_task(self, queues: list[str]) -> dict | None:
            async with self._own_lock:
                task = await super()._fetch_task(queues)
                if task:
                    self._held.add(task["id"])
            return task

        async def _ack_task(self, task_data: dict) -> None:
            await super()._ack_task(task_data)
            self._held.discard(task_data["id"])

        async def _ack_batch(self, tasks: list[dict]) -> None:
            await super()._ack_batch(tasks)
            self._held.difference_update(task["id"] for task in tasks)

        # -- a batch that failed -------------------------------------------------------------
        async def _fail_task(self, task_data: dict, exception: Exception) -> None:
            """Database gone: wait, then put the row back to QUEUED (bounded). Anything else:
            vtasks' FAILED. A row that cannot be written either way is let go: the rescue
            puts it back once the database answers again."""
            retries = int(task_data.get("_kit_retries", 0))
            try:
                if not _is_transient(exception) or retries >= len(_RETRY_DELAYS):
                    await super()._fail_task(task_data, exception)
                    return
                await self._wait_before_retry(exception, retries)
                await self._requeue(task_data, retries + 1)
            except Exception:
                logger.warning(
                    "Could not write task %s back; the rescue will",
                    task_data.get("id"),
                    exc_info=True,
                )
            finally:
                self._held.discard(task_data.get("id"))

        @sync_to_async
        def _requeue(self, task_data: dict, retries: int) -> None:
            data = deserialize(task_data["_raw"])
            data["_kit_retries"] = retries
            QueuedTask.objects.filter(
                id=task_data["id"], status=TaskStatus.PROCESSING, worker_id=self.worker_id
            ).update(status=TaskStatus.QUEUED, worker_id=None, data=serialize(data))

        # -- putting back a dead worker's rows -----------------------------------------------
        async def _rescue_at_start(self) -> int:
            """Every row of a worker without a live row, and this worker's own (it holds
            nothing yet: a predecessor with the same id)."""
            return await self._rescue()

        async def _rescue_dead(self) -> int:
            return await self._rescue()

        @sync_to_async
        def _mark_alive(self) -> None:
            VTaskMetadata.objects.update_or_create(
                key=f"kit:alive:{self.worker_id}",
                defaults={
                    "value": self.worker_id,
                    "expires_at": timezone.now() + timedelta(seconds=_ALIVE_TTL),
                },
            )

        async def _rescue(self) -> int:
            async with self._own_lock:
                return await self._rescue_rows(frozenset(self._held))

        @sync_to_async
        @transaction.atomic
        def _rescue_rows(self, held: frozenset) -> int:
            """PROCESSING rows of workers without a live row, and this worker's own rows it
            does not hold (at start: all of them), back to QUEUED (FAILED past the rescue
            limit); then the expired liveness rows go."""
            now = timezone.now()
            alive = set(
                VTaskMetadata.objects.filter(
                    key__startswith="kit:alive:", expires_at__gt=now
                ).values_list("value", flat=True)
            )
            alive.add(self.worker_id)
            dead = ~Q(worker_id__in=alive)
            own_not_held = Q(worker_id=self.worker_id) & ~Q(id__in=list(held))
            rows = QueuedTask.objects.select_for_update(**self._get_lock_params()).filter(
                Q(status=TaskStatus.PROCESSING) & (dead | own_not_held)
            )
            rescued = 0
            for row in rows:
                data = deserialize(row.data)
                count = int(data.get("_rescue_count", 0))
                limit = max(int(data.get("max_rescues", 0) or 0), _MAX_RESCUES)
                data["_rescue_count"] = count + 1
                if count >= limit:
                    data["error_msg"] = f"Exceeded max_rescues ({limit})"
                    row.status = TaskStatus.FAILED
                else:
                    row.status = TaskStatus.QUEUED
                    rescued += 1
                row.data = serialize(data)
                row.worker_id = None
                row.save(update_fields=["status", "data", "worker_id"])
            VTaskMetadata.objects.filter(key__startswith="kit:alive:", expires_at__lte=now).delete()
            return rescued

    return KitDatabaseTaskBackend


_BUILDERS = {
    "KitValkeyTaskBackend": _build_backend,
    "KitDatabaseTaskBackend": _build_database_backend,
}


def __getattr__(name: str):
    """`TASKS` names `<this module>.Kit...TaskBackend`; Django imports it when the worker first
    uses its task backend, after the settings are loaded."""
    if name in _BUILDERS:
        cls = _BUILDERS[name]()
        globals()[name] = cls
        return cls
    raise AttributeError(name)
