"""The kit's GlitchTip 6 backend puts back what sits in its LIVE worker's own processing list
without the worker holding it (issue 19): a fetch Valkey applied (and kept in its append-only
file) whose reply died with the connection. Seen in a full Docker tier: 314 of 315 accepted
events stored after a Valkey SIGKILL, one left in the live worker's list until it restarted.

The module (provision/worker_modules/glitchtip6.py) runs on django-vtasks 2.1.2, which cannot be
installed here (Django 6, a Rust Valkey driver): `FakeValkeyTaskBackend` is what the subclass
uses of 2.1.2's ValkeyTaskBackend (backends/valkey.py: `_fetch_task` BLMOVEs into
`processing:<worker id>`, `_ack_task` LREMs, `_fail_task` pipelines LPUSH/LTRIM to `q:failed` and
LREM, `fetch_batch` BLMPOPs), `FakeDriver` a Valkey holding lists, running the module's scripts
as their Lua does. tests/stack/test_vtasks_real_stack.py runs the same on the real library.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from provision import durability

WORKER = "host-1"
PROCESSING = f"{{vt}}:processing:{WORKER}"
QUEUE = "{vt}:q:ingest"
FAILED = "{vt}:q:failed"


def serialize(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True).encode()


def deserialize(raw: bytes) -> dict:
    return json.loads(raw)


class FakeDriver:
    """Lists in memory; the module's scripts run as their Lua does. `on_call(name, args)`
    runs before each command (a test looks at the worker's state at that moment); `lose_reply`
    names a command that is applied and then raises, as a connection cut after Valkey wrote."""

    def __init__(self, module) -> None:
        self.lists: dict[str, list[bytes]] = {}
        self.strings: dict[str, bytes] = {}
        self.hashes: dict[str, dict[str, bytes]] = {}
        self.on_call: Callable[[str, list], None] = lambda name, args: None
        self.lose_reply: str | None = None
        self.refuse: set[str] = set()
        m = module
        self._scripts = {
            m._MOVE_MANY: self._move_many,
            m._REQUEUE: self._requeue,
            m._ALIVE: self._alive,
            m._DEAD_WORKERS: self._dead_workers,
            m._FORGET: self._forget,
            m._PEEK: lambda keys, args: (self.lists.get(keys[0]) or [None])[-1],
        }
        if hasattr(m, "_RANGE"):  # the sweep's (none before it)
            self._scripts[m._RANGE] = lambda keys, args: list(self.lists.get(keys[0], []))
        self._loaded: dict[str, str] = {}

    def _enter(self, name: str, args: list) -> None:
        self.on_call(name, args)
        if name in self.refuse:
            raise ConnectionError("Connection reset by peer")

    def _leave(self, name: str, result):
        if self.lose_reply == name:
            self.lose_reply = None
            raise ConnectionError("Connection reset by peer (the reply was lost)")
        return result

    def list(self, key: str) -> list[bytes]:
        return self.lists.setdefault(key, [])

    # -- commands the module and vtasks 2.1.2 use -------------------------------------------
    async def script_load(self, source: str) -> bytes:
        sha = f"sha{len(self._loaded)}"
        self._loaded[sha] = source
        return sha.encode()

    async def evalsha(self, sha: str, keys: list, args: list):
        source = self._loaded[sha]
        name = next(n for n, s in vars(MODULE).items() if s is source and n.startswith("_"))
        self._enter(name, args)
        keys = [k.decode() if isinstance(k, bytes) else k for k in keys]
        return self._leave(name, self._scripts[source](keys, args))

    async def blmove(self, source, dest, wherefrom, whereto, timeout):
        self._enter("blmove", [])
        items = self.list(source)
        item = items.pop() if items else None
        if item is not None:
            self.list(dest).insert(0, item)
        return self._leave("blmove", item)

    async def lrem(self, key, count, value):
        self._enter("lrem", [value])
        return self._leave("lrem", self._lrem(key, value))

    async def lpush(self, key, values):
        self._enter("lpush", values)
        for value in values:
            self.list(key).insert(0, value)
        return self._leave("lpush", len(self.list(key)))

    async def pipeline_exec(self, commands):
        self._enter("pipeline_exec", commands)
        for name, args in commands:
            key = args[0].decode()
            if name == "LREM":
                self._lrem(key, args[2])
            elif name == "LPUSH":
                self.list(key).insert(0, args[1])
            elif name == "LTRIM":
                del self.list(key)[int(args[2]) + 1 :]
            elif name == "DEL":
                self.strings.pop(key, None)
        return self._leave("pipeline_exec", None)

    # -- the scripts ---------------------------------------------------------------------------
    def _lrem(self, key: str, value: bytes) -> int:
        items = self.list(key)
        if value in items:
            items.remove(value)  # LREM count 1: the first from the head
            return 1
        return 0

    def _move_many(self, keys, args):
        out = []
        for _ in range(int(args[0])):
            if not self.list(keys[0]):
                break
            out.append(self.list(keys[0]).pop())
            self.list(keys[1]).insert(0, out[-1])
        return out

    def _requeue(self, keys, args):
        raw, payload, side = args[0], args[1], args[2].decode()
        if not self._lrem(keys[0], raw):
            return 0
        if side == "R":
            self.list(keys[1]).append(payload)
        else:
            self.list(keys[1]).insert(0, payload)
        if side == "F":
            del self.list(keys[1])[int(args[3]) :]
        return 1

    def _alive(self, keys, args):
        self.strings[keys[0]] = b"1"
        self.hashes.setdefault(keys[1], {})[args[1].decode()] = args[2]
        return 1

    def _dead_workers(self, keys, args):
        prefix, own = args[0].decode(), args[1].decode()
        return [
            w.encode()
            for w in self.hashes.get(keys[0], {})
            if w != own and prefix + w not in self.strings
        ]

    def _forget(self, keys, args):
        if not self.list(keys[1]):
            self.hashes.get(keys[0], {}).pop(args[0].decode(), None)
        return 1


class FakeValkeyTaskBackend:
    """What the kit's subclass uses of django-vtasks 2.1.2's ValkeyTaskBackend."""

    dlq_cap = 1000
    blocking_timeout = 0.01

    def __init__(self, alias, params) -> None:
        self.alias = alias
        self.worker_id = WORKER
        self.driver = FakeDriver(MODULE)

    def _get_key(self, key: str) -> str:
        return f"{{vt}}:{key}"

    async def _fetch_task(self, queues):
        data = await self.driver.blmove(
            self._get_key(f"q:{queues[0]}"),
            self._get_key(f"processing:{self.worker_id}"),
            "RIGHT",
            "LEFT",
            self.blocking_timeout,
        )
        if data:
            unpacked = deserialize(data)
            unpacked["_raw"] = data
            return unpacked
        return None

    async def _ack_task(self, task_data):
        await self.driver.lrem(self._get_key(f"processing:{self.worker_id}"), 1, task_data["_raw"])

    async def _fail_task(self, task_data, exception):
        failed = {k: v for k, v in task_data.items() if k != "_raw"}
        failed["error_msg"] = str(exception)
        failed_key = self._get_key("q:failed").encode()
        await self.driver.pipeline_exec(
            [
                ("LPUSH", [failed_key, serialize(failed)]),
                ("LTRIM", [failed_key, b"0", str(self.dlq_cap - 1).encode()]),
                (
                    "LREM",
                    [
                        self._get_key(f"processing:{self.worker_id}").encode(),
                        b"1",
                        task_data["_raw"],
                    ],
                ),
            ]
        )

    async def fetch_batch(self, queue, count, timeout):  # BLMPOP: no record (not used here)
        raise AssertionError("the kit's recorded fetch should have been used")


MODULE: types.ModuleType


@pytest.fixture
def module(tmp_path: Path, monkeypatch):
    """The rendered module without GlitchTip's settings, its vtasks imports answered by the
    fakes above."""
    global MODULE
    name = "kit6_own_list"
    (tmp_path / f"{name}.py").write_text(
        durability.worker_settings_module(6).replace(
            "from glitchtip.settings import *  # noqa: F403\n"
            "from glitchtip.settings import TASKS as _GLITCHTIP_TASKS\n",
            "_GLITCHTIP_TASKS = {}\n",
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    valkey = types.ModuleType("django_vtasks.backends.valkey")
    valkey.ValkeyTaskBackend = FakeValkeyTaskBackend
    serialization = types.ModuleType("django_vtasks.serialization")
    serialization.serialize, serialization.deserialize = serialize, deserialize
    for mod_name, mod in {
        "django_vtasks": types.ModuleType("django_vtasks"),
        "django_vtasks.backends": types.ModuleType("django_vtasks.backends"),
        "django_vtasks.backends.valkey": valkey,
        "django_vtasks.serialization": serialization,
    }.items():
        monkeypatch.setitem(sys.modules, mod_name, mod)
    monkeypatch.delitem(sys.modules, name, raising=False)
    MODULE = __import__(name)
    monkeypatch.setattr(MODULE, "_RETRY_DELAYS", (0,) * 8)
    return MODULE


@pytest.fixture
def backend(module):
    return module.KitValkeyTaskBackend("default", {})


def task(n: int, **extra) -> bytes:
    return serialize({"id": f"t{n}", "queue": "ingest", "func": "ingest", **extra})


def run(coro):
    return asyncio.run(coro)


async def sweeps(backend, count: int) -> list[int]:
    return [await backend._sweep_own() for _ in range(count)]


def test_an_entry_the_live_worker_never_received_goes_back_on_the_second_sweep(backend):
    """A fetch Valkey applied whose reply died: the task is in the worker's own list, the
    worker never got it. The first sweep only notes it; the second puts it back on the queue's
    consuming end with its rescue count."""
    driver = backend.driver
    driver.list(QUEUE).extend([task(2), task(1)])
    driver.lose_reply = "_MOVE_MANY"

    async def scenario():
        got = await backend.fetch_batch("ingest", 100, 0.05)
        assert got == []  # the reply was lost: nothing to process
        assert driver.list(PROCESSING) == [task(2), task(1)]  # but Valkey moved both
        first = await backend._sweep_own()
        assert (first, driver.list(PROCESSING)) == (0, [task(2), task(1)])
        return first, await backend._sweep_own()

    assert run(scenario()) == (0, 2)
    assert driver.list(PROCESSING) == []
    # Back on the consuming end (the right), the oldest (t1) taken first again.
    assert [deserialize(raw) for raw in driver.list(QUEUE)] == [
        {"id": f"t{n}", "queue": "ingest", "func": "ingest", "_rescue_count": 1} for n in (2, 1)
    ]
    assert backend._held == {}


def test_a_single_task_whose_blmove_reply_died_goes_back(backend):
    """vtasks' own `_fetch_task` (queues without batches) BLMOVEs into the same list."""
    driver = backend.driver
    driver.list("{vt}:q:default").append(task(1, queue="default"))
    driver.lose_reply = "blmove"

    async def scenario():
        with pytest.raises(ConnectionError):
            await backend._fetch_task(["default"])  # the consumer logs it and fetches again
        return await sweeps(backend, 2)

    assert run(scenario()) == [0, 1]
    assert driver.list(PROCESSING) == []
    assert deserialize(driver.list("{vt}:q:default")[0])["_rescue_count"] == 1


def test_the_keeper_sweeps_and_says_how_many(module, backend, monkeypatch, caplog):
    """The liveness keeper runs the sweep (every _RESCUE_EVERY s; here every turn) and logs a
    warning with the count."""
    monkeypatch.setattr(module, "_ALIVE_EVERY", 0)
    monkeypatch.setattr(module, "_RESCUE_EVERY", 0)
    backend.driver.list(PROCESSING).append(task(1))

    async def scenario():
        keeper = asyncio.get_running_loop().create_task(backend._keep_alive())
        try:
            for _ in range(200):
                if not backend.driver.list(PROCESSING):
                    break
                await asyncio.sleep(0)
        finally:
            keeper.cancel()

    with caplog.at_level(logging.WARNING, logger="glitchtip_kit.vtasks"):
        run(scenario())
    assert backend.driver.list(PROCESSING) == []
    assert backend.driver.list(QUEUE) and "never received" in caplog.text
    assert "Put back 1 task(s) of this worker's own list" in caplog.text


def test_a_held_batch_is_never_put_back(backend):
    """A batch being stored, and a single task from `_fetch_task`, stay in the list through
    any number of sweeps; the acknowledgement removes them and lets them go."""
    driver = backend.driver
    driver.list(QUEUE).extend([task(3), task(2), task(1)])
    driver.list("{vt}:q:default").append(task(9, queue="default"))

    async def scenario():
        batch = await backend.fetch_batch("ingest", 3, 0.05)
        single = await backend._fetch_task(["default"])
        assert await sweeps(backend, 4) == [0, 0, 0, 0]
        assert sorted(driver.list(PROCESSING)) == sorted(
            [task(1), task(2), task(3), task(9, queue="default")]
        )
        await backend._ack_batch(batch)
        await backend._ack_task(single)
        return await sweeps(backend, 2)

    assert run(scenario()) == [0, 0]
    assert driver.list(PROCESSING) == [] and driver.list(QUEUE) == []
    assert backend._held == {}


def test_a_batch_waiting_on_a_database_retry_stays_held(module, backend, monkeypatch):
    """A batch the database failed waits (held, in the list) before it goes back on its queue:
    sweeps during the wait leave it alone; it is let go once it moved."""
    driver = backend.driver
    driver.list(QUEUE).extend([task(2), task(1)])
    swept: list[list[int]] = []

    class OperationalError(Exception):
        pass

    async def wait(exception, retries):  # the sweeps run while the batch waits
        swept.append(await sweeps(backend, 3))

    monkeypatch.setattr(backend, "_wait_before_retry", wait)

    async def scenario():
        batch = await backend.fetch_batch("ingest", 2, 0.05)
        error = OperationalError("terminating connection due to administrator command")
        for item in batch:
            await backend._fail_task(item, error)
        return await sweeps(backend, 2)

    assert run(scenario()) == [0, 0]
    assert swept == [[0, 0, 0], [0, 0, 0]]
    assert driver.list(PROCESSING) == []
    assert [deserialize(raw)["_kit_retries"] for raw in driver.list(QUEUE)] == [1, 1]
    assert backend._held == {}


def test_tasks_are_let_go_only_after_their_removal(module, backend, monkeypatch):
    """Each removal (batch ack, single ack, dead-letter) runs while the task is still held; a
    removal that failed keeps a stored batch held until `_fail_task` (process_batch's next
    step) gives up on it, and what is then left in the list goes back by the sweep."""
    monkeypatch.setattr(module, "_ACK_ATTEMPTS", 1)
    driver = backend.driver
    driver.list(QUEUE).extend([task(2), task(1)])
    driver.list("{vt}:q:default").append(task(9, queue="default"))
    seen: list[tuple[str, list[int]]] = []

    def on_call(name, args):
        if name in ("lrem", "pipeline_exec"):
            seen.append((name, sorted(backend._held.values())))

    driver.on_call = on_call

    async def scenario():
        batch = await backend.fetch_batch("ingest", 2, 0.05)
        single = await backend._fetch_task(["default"])
        await backend._ack_task(single)
        assert seen == [("lrem", [1, 1, 1])] and len(backend._held) == 2
        driver.refuse = {"pipeline_exec"}  # Valkey away: the stored batch's ack fails
        with pytest.raises(ConnectionError):
            await backend._ack_batch(batch)
        assert sorted(backend._held) == sorted([task(1), task(2)])
        # process_batch: the batch failed, each task to _fail_task in one loop (also refused):
        # none may raise, or the loop would end with the rest of the batch held.
        for item in batch:
            assert await backend._fail_task(item, RuntimeError("Valkey away")) is None
        assert backend._held == {}
        driver.refuse = set()
        return await sweeps(backend, 2)

    assert run(scenario()) == [0, 2]
    assert seen[1:] == [("pipeline_exec", [1, 1]), ("pipeline_exec", [1, 1]),
                        ("pipeline_exec", [1])]  # fmt: skip
    assert driver.list(PROCESSING) == [] and len(driver.list(QUEUE)) == 2


def test_an_unreadable_task_is_dead_lettered_and_let_go(backend):
    driver = backend.driver
    driver.list(QUEUE).extend([task(1), b"not json"])

    async def scenario():
        got = await backend.fetch_batch("ingest", 2, 0.05)
        assert [t["id"] for t in got] == ["t1"] and len(backend._held) == 1
        await backend._ack_batch(got)
        return await sweeps(backend, 2)

    assert run(scenario()) == [0, 0]
    assert driver.list(FAILED) == [b"not json"] and driver.list(PROCESSING) == []
    assert backend._held == {}


def test_equal_payloads_are_counted_not_merged(backend):
    """Two equal raw tasks in the list, one held: the other one goes back, the held one
    stays."""
    driver = backend.driver
    driver.list(QUEUE).append(task(1))

    async def scenario():
        batch = await backend.fetch_batch("ingest", 1, 0.05)
        driver.list(PROCESSING).insert(0, task(1))  # the same payload, a lost reply's
        swept = await sweeps(backend, 2)
        assert driver.list(PROCESSING) == [task(1)]
        await backend._ack_batch(batch)
        return swept

    assert run(scenario()) == [0, 1]
    assert driver.list(PROCESSING) == [] and len(driver.list(QUEUE)) == 1


# -- the stand-in (tests/stack/images/glitchtip/standin/kitvtasks.py): the same rule ----------
IMAGE = Path(__file__).parent / "stack" / "images" / "glitchtip"


class SyncValkey:
    """FakeDriver's lists and scripts as redis-py's client calls them (the stand-in's)."""

    def __init__(self, driver: FakeDriver) -> None:
        self.d = driver

    @staticmethod
    def _b(value) -> bytes:
        return value if isinstance(value, bytes) else str(value).encode()

    def eval(self, script, numkeys, *rest):
        keys, args = list(rest[:numkeys]), [self._b(a) for a in rest[numkeys:]]
        name = "_MOVE_MANY" if script == MODULE._MOVE_MANY else script[:20]
        self.d._enter(name, args)
        return self.d._leave(name, self.d._scripts[script](keys, args))

    def blmove(self, source, dest, timeout, src="RIGHT", dest_side="LEFT"):
        return asyncio.run(self.d.blmove(source, dest, src, dest_side, timeout))

    def lrange(self, key, start, end):
        return list(self.d.list(key))

    def lindex(self, key, index):
        items = self.d.list(key)
        return items[index] if items else None

    def pipeline(self, transaction=False):
        driver, commands = self.d, []

        class Pipe:
            def lrem(self, key, count, value):
                commands.append(("LREM", [key.encode(), b"1", SyncValkey._b(value)]))

            def execute(self):
                return asyncio.run(driver.pipeline_exec(commands))

        return Pipe()


@pytest.fixture
def standin(module, monkeypatch):
    monkeypatch.syspath_prepend(str(IMAGE))
    from standin import kitvtasks

    driver = FakeDriver(module)
    queue = kitvtasks.RecordingQueue(SyncValkey(driver), QUEUE, worker=WORKER)
    return kitvtasks, queue, driver


def test_the_stand_in_puts_back_what_its_live_worker_never_received(standin):
    _kitvtasks, queue, driver = standin
    driver.list(QUEUE).extend([task(2), task(1)])
    driver.lose_reply = "_MOVE_MANY"
    with pytest.raises(ConnectionError):
        queue.fetch(100, 0.01)
    assert driver.list(PROCESSING) == [task(2), task(1)]
    assert [queue.sweep_own(), queue.sweep_own()] == [0, 2]
    assert driver.list(PROCESSING) == []
    assert [deserialize(raw)["_rescue_count"] for raw in driver.list(QUEUE)] == [1, 1]


def test_the_stand_in_never_puts_back_a_batch_it_holds(standin, monkeypatch):
    """Fetched and being stored, then waiting on a database retry: held through every sweep,
    let go once moved back to its queue (or acknowledged)."""
    kitvtasks, queue, driver = standin
    driver.list(QUEUE).extend([task(3), task(2), task(1)])
    batch = queue.fetch(2, 0.01)
    assert [queue.sweep_own() for _ in range(3)] == [0, 0, 0]
    swept: list[int] = []

    class OperationalError(Exception):
        pass

    monkeypatch.setattr(
        kitvtasks,
        "time",
        types.SimpleNamespace(sleep=lambda s: swept.extend(queue.sweep_own() for _ in range(3))),
    )
    queue.fail_batch(batch, OperationalError("the database restarted"))
    assert swept == [0, 0, 0] and driver.list(PROCESSING) == []
    rest = queue.fetch(5, 0.01)  # t3, then the two retried
    assert [queue.sweep_own() for _ in range(2)] == [0, 0]
    removed: list[int] = []
    driver.on_call = lambda name, args: removed.append(sum(queue._held_raws.values()))
    queue.ack([tag for tag, _item in rest])
    assert removed == [3] and queue._held_raws == {} and driver.list(PROCESSING) == []
