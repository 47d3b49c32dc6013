"""GlitchTip 5: the kit's kombu transport takes a message and records it in one step (issue 19).

kombu 5.5.4's Redis transport pops with BRPOP and records the message in `unacked` afterwards,
in the client; the kit's worker module names (CELERY_BROKER_TRANSPORT) a subclass whose channel
takes with one Lua script instead. kombu, redis-py and Valkey are not dependencies of the kit:
these tests cover the setting and the channel's steps against a minimal kombu shaped like
kombu/transport/redis.py (the attributes and calls the subclass uses, as kombu 5.5.4 has them);
tests/stack/test_celery5_real_stack.py runs the module on the real Celery 5.5.3 / kombu 5.5.4 /
redis-py 5.2.1 against Valkey 8 (worker SIGKILL, Valkey SIGKILL, Valkey at maxmemory).
"""

from __future__ import annotations

import json
import queue
import sys
import types
from contextlib import contextmanager

import pytest

from provision import durability
from provision.worker_modules import glitchtip5_transport as transport

MODULE = durability.WORKER_SETTINGS_MODULE


def _render_and_import(tmp_path, monkeypatch, glitchtip_settings: str):
    (tmp_path / "glitchtip").mkdir()
    (tmp_path / "glitchtip" / "__init__.py").write_text("")
    (tmp_path / "glitchtip" / "settings.py").write_text(glitchtip_settings)
    (tmp_path / f"{MODULE}.py").write_text(durability.worker_settings_module(5))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("glitchtip", "glitchtip.settings", MODULE):
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name))
        del sys.modules[name]
    return __import__(MODULE)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("CELERY_BROKER_URL = 'redis://valkey:6379/0'\n", f"{MODULE}:KitRedisTransport"),
        ("CELERY_BROKER_URL = 'redis://:secret@valkey:6379/0'\n", f"{MODULE}:KitRedisTransport"),
        # TLS, Sentinel, a socket: kombu's transport as GlitchTip sets it (the URL's scheme).
        ("CELERY_BROKER_URL = 'rediss://valkey:6379/0'\n", None),
        ("CELERY_BROKER_URL = 'sentinel://s0:26379;s1:26379/0'\n", None),
        ("CELERY_BROKER_URL = 'redis+socket:///run/valkey.sock'\n", None),
        ("", None),
        # A transport GlitchTip (or an operator's settings) chose stays.
        (
            "CELERY_BROKER_URL = 'redis://valkey:6379/0'\nCELERY_BROKER_TRANSPORT = 'theirs'\n",
            "theirs",
        ),
    ],
)
def test_the_module_names_the_kits_transport_for_a_plain_redis_broker_only(
    settings, expected, tmp_path, monkeypatch
):
    module = _render_and_import(
        tmp_path, monkeypatch, "CELERY_BROKER_TRANSPORT_OPTIONS = {}\n" + settings
    )
    assert expected == module.CELERY_BROKER_TRANSPORT


def test_the_settings_module_imports_without_kombu(tmp_path, monkeypatch):
    """Django imports the module in every process that names it (the stand-in has no kombu);
    kombu is imported only when kombu resolves the class (`symbol_by_name` -> getattr)."""
    monkeypatch.setitem(sys.modules, "kombu", None)  # `import kombu...` raises ImportError
    module = _render_and_import(
        tmp_path,
        monkeypatch,
        "CELERY_BROKER_URL = 'redis://valkey:6379/0'\nCELERY_BROKER_TRANSPORT_OPTIONS = {}\n",
    )
    assert f"{MODULE}:KitRedisTransport" == module.CELERY_BROKER_TRANSPORT
    with pytest.raises(ImportError):
        module.KitRedisTransport  # noqa: B018 (the lazy attribute needs kombu)
    with pytest.raises(AttributeError):
        module.SomethingElse  # noqa: B018


def test_the_module_ends_with_the_transport_source_copied_as_it_is():
    source = durability.WORKER5_TRANSPORT_SOURCE.read_text(encoding="utf-8")
    retry = durability.WORKER5_RETRY_SOURCE.read_text(encoding="utf-8")
    for embedded in (None, (4, 25)):
        assert durability.worker_settings_module(5, embedded).endswith(retry + "\n" + source)


def test_the_script_sha_is_the_scripts():
    import hashlib

    assert hashlib.sha1(transport._TAKE_SCRIPT.encode()).hexdigest() == transport._TAKE_SHA
    # It writes kombu's record in kombu's keys and layout, the writes only after the pop (a
    # script's first write is what maxmemory refuses; a pop is never refused).
    script = transport._TAKE_SCRIPT
    assert script.index("'RPOP'") < script.index("'HSET'") < script.index("'ZADD'")
    assert "'[' .. item .. ', '" in script


# -- the channel's steps, against a minimal kombu ----------------------------------------------
class ResponseError(Exception):
    pass


class NoScriptError(ResponseError):
    pass


class OutOfMemoryError(ResponseError):
    pass


class ExecAbortError(ResponseError):
    pass


class FakeConnection:
    """redis-py's Connection as kombu's channel uses it: send_command, then the reply."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []
        self.replies: list[object] = []
        self.disconnected = False

    def send_command(self, *args) -> None:
        self.sent.append(args)

    def disconnect(self) -> None:
        self.disconnected = True


class FakeClient:
    def __init__(self) -> None:
        self.connection = FakeConnection()
        self.loaded: list[str] = []
        self.executed: list[tuple] = []

    def parse_response(self, connection, command_name, **options):
        reply = connection.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def execute_command(self, *args):
        self.executed.append(args)

    def script_load(self, script: str) -> str:
        self.loaded.append(script)
        return transport._TAKE_SHA


class Cycle:
    def __init__(self) -> None:
        self.rotated: list[str] = []

    def consume(self, n: int) -> list[str]:
        return ["celery"][:n]

    def rotate(self, queue: str) -> None:
        self.rotated.append(queue)


def fake_kombu(monkeypatch) -> types.SimpleNamespace:
    """kombu.transport.redis / virtual, kombu.utils and redis.exceptions, as far as used."""
    records: list[str] = []

    class VirtualQoS:
        def __init__(self, channel) -> None:
            self.channel = channel
            self._delivered: dict[str, object] = {}

        def append(self, message, delivery_tag) -> None:
            self._delivered[delivery_tag] = message

    class RedisQoS(VirtualQoS):
        def append(self, message, delivery_tag) -> None:  # kombu: ZADD + HSET, then in memory
            records.append(delivery_tag)
            super().append(message, delivery_tag)

        def __init__(self, channel) -> None:
            super().__init__(channel)
            self._vrestore_count = 0

        def restore_visible(self, start=0, num=10, interval=10):  # kombu: SET NX, then LPUSHes
            self._vrestore_count += 1  # kombu acts on calls 1, 1 + interval, 1 + 2 interval...
            if (self._vrestore_count - 1) % interval:
                return None
            if self.channel.full:
                raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
            return "restored"

    class RedisChannel:
        QoS = RedisQoS
        sep = "\x06\x16"
        priority_steps = (0, 3, 6, 9)
        global_keyprefix = ""
        unacked_key = "unacked"
        unacked_index_key = "unacked_index"
        ack_emulation = True
        connection_errors = (ConnectionError,)
        ResponseError = ResponseError
        keyprefix_queue = "_kombu.binding.%s"
        full = False  # Valkey at maxmemory: kombu's SADD and SET NX raise OutOfMemoryError

        def __init__(self, connection) -> None:
            self.connection = connection
            self.client = FakeClient()
            self.qos = self.QoS(self)
            self._queue_cycle = Cycle()
            self.active_queues = {"celery"}
            self._in_poll = None

        def _q_for_pri(self, queue, pri):
            return f"{queue}{self.sep}{pri}" if pri else queue

        @contextmanager
        def conn_or_acquire(self, client=None):
            yield self.client

        def _brpop_start(self, timeout=1):
            self.client.connection.send_command("BRPOP", "kombu's own")

        def _queue_bind(self, exchange, routing_key, pattern, queue):  # kombu: SADD
            if self.full:
                raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
            self.client.executed.append(("SADD", exchange, queue))

    class RedisTransport:
        Channel = RedisChannel

    virtual = types.ModuleType("kombu.transport.virtual")
    virtual.QoS = VirtualQoS
    virtual.Empty = queue.Empty
    redis_transport = types.ModuleType("kombu.transport.redis")
    redis_transport.QoS, redis_transport.Channel = RedisQoS, RedisChannel
    redis_transport.Transport = RedisTransport
    encoding = types.ModuleType("kombu.utils.encoding")
    encoding.bytes_to_str = lambda s: s.decode() if isinstance(s, bytes) else s
    kjson = types.ModuleType("kombu.utils.json")
    kjson.loads = json.loads
    exceptions = types.ModuleType("redis.exceptions")
    exceptions.NoScriptError = NoScriptError
    exceptions.OutOfMemoryError = OutOfMemoryError
    exceptions.ExecAbortError = ExecAbortError
    kombu_transport = types.ModuleType("kombu.transport")
    kombu_transport.redis, kombu_transport.virtual = redis_transport, virtual
    modules = {
        "kombu": types.ModuleType("kombu"),
        "kombu.transport": kombu_transport,
        "kombu.transport.redis": redis_transport,
        "kombu.transport.virtual": virtual,
        "kombu.utils": types.ModuleType("kombu.utils"),
        "kombu.utils.encoding": encoding,
        "kombu.utils.json": kjson,
        "redis": types.ModuleType("redis"),
        "redis.exceptions": exceptions,
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return types.SimpleNamespace(records=records, Transport=transport._build_transport())


class Delivering:
    """kombu's virtual Transport `_deliver` -> basic_consume's callback -> `qos.append`."""

    def __init__(self) -> None:
        self.channel = None
        self.delivered: list[tuple[dict, str]] = []

    def _deliver(self, message, queue_name) -> None:
        self.delivered.append((message, queue_name))
        tag = message["properties"]["delivery_tag"]
        self.channel.qos.append(message, tag)


def make_channel(monkeypatch):
    kombu = fake_kombu(monkeypatch)
    connection = Delivering()
    channel = kombu.Transport.Channel(connection)
    connection.channel = channel
    return kombu, channel, connection


def message(tag: str) -> bytes:
    return json.dumps(
        {"body": "e30=", "properties": {"delivery_tag": tag, "delivery_info": {}}}
    ).encode()


def step(channel, reply):
    """One poll: the channel sends its command, Valkey answers `reply`, the channel reads it."""
    channel._brpop_start()
    sent = channel.client.connection.sent[-1]
    channel.client.connection.replies.append(reply)
    try:
        return sent, channel._brpop_read()
    except queue.Empty:
        return sent, "empty"


def test_a_taken_message_is_delivered_without_a_second_record(monkeypatch):
    kombu, channel, connection = make_channel(monkeypatch)
    sent, result = step(channel, [b"celery", message("t1"), 1])

    assert sent[:2] == ("EVALSHA", transport._TAKE_SHA)
    # Keys: the queue at each of kombu's priority steps, in BRPOP's order, then its records.
    assert sent[2] == 6
    assert sent[3:9] == (
        "celery",
        "celery\x06\x163",
        "celery\x06\x166",
        "celery\x06\x169",
        "unacked",
        "unacked_index",
    )
    assert float(sent[9]) > 0  # the worker's clock, as kombu scores unacked_index
    assert result is True
    assert connection.delivered[0][1] == "celery"
    assert kombu.records == []  # the script recorded it: QoS.append writes nothing more ...
    assert "t1" in channel.qos._delivered  # ... but keeps it in memory as kombu does
    assert channel._kit_recorded == set()
    assert channel._queue_cycle.rotated == ["celery"]
    assert channel._in_poll is None


def test_a_message_the_script_left_unrecorded_is_recorded_by_kombu(monkeypatch):
    kombu, channel, connection = make_channel(monkeypatch)
    step(channel, [b"celery\x06\x163", message("t2"), 0])
    assert kombu.records == ["t2"]
    assert connection.delivered[0][1] == "celery"  # the priority suffix stripped, as kombu does


def test_an_empty_take_waits_without_taking_then_takes_again(monkeypatch):
    _kombu, channel, _connection = make_channel(monkeypatch)
    assert step(channel, None)[1] == "empty"
    sent, result = step(channel, None)  # the wait timed out (or saw an item): nothing taken
    assert sent == ("BLMOVE", "celery", "celery", "LEFT", "LEFT", 1)
    assert result == "empty"
    assert step(channel, [b"celery", message("t3"), 1])[0][0] == "EVALSHA"


def test_a_full_valkey_refuses_the_wait_and_the_channel_sleeps_instead(monkeypatch):
    _kombu, channel, _connection = make_channel(monkeypatch)
    step(channel, None)  # empty take
    assert step(channel, OutOfMemoryError("command not allowed"))[0][0] == "BLMOVE"
    assert step(channel, None)[0][0] == "EVALSHA"  # take at once: a full queue must drain
    sent, result = step(channel, None)  # empty while full: sleep on the server, no spinning
    assert sent == ("BLPOP", transport._SLEEP_KEY, 1)
    assert result == "empty"
    assert step(channel, None)[0][0] == "EVALSHA"
    assert step(channel, None)[0][0] == "BLMOVE"  # not full any more: wait again


def test_an_unknown_script_is_loaded_and_the_take_sent_again(monkeypatch):
    _kombu, channel, _connection = make_channel(monkeypatch)
    assert step(channel, NoScriptError("No matching script."))[1] == "empty"
    assert channel.client.loaded == [transport._TAKE_SCRIPT]
    assert step(channel, [b"celery", message("t4"), 1])[0][0] == "EVALSHA"


def test_a_refused_record_sleeps_before_the_next_take(monkeypatch, caplog):
    _kombu, channel, _connection = make_channel(monkeypatch)
    assert step(channel, ResponseError("WRONGTYPE"))[1] == "empty"
    assert "stays queued" in caplog.text
    assert step(channel, None)[0][0] == "BLPOP"


def test_a_lost_connection_is_raised_as_kombu_does(monkeypatch):
    _kombu, channel, _connection = make_channel(monkeypatch)
    connection = channel.client.connection
    with pytest.raises(ConnectionError):
        step(channel, ConnectionError("reset"))
    assert connection.disconnected
    assert channel._in_poll is None


def test_a_global_key_prefix_prefixes_every_key_and_is_stripped_from_the_reply(monkeypatch):
    _kombu, channel, connection = make_channel(monkeypatch)
    channel.global_keyprefix = "gt:"
    sent, _ = step(channel, [b"gt:celery", message("t5"), 1])
    assert all(key.startswith("gt:") for key in sent[3:9])
    assert connection.delivered[0][1] == "celery"


def test_without_ack_emulation_the_channel_is_kombus(monkeypatch):
    _kombu, channel, _connection = make_channel(monkeypatch)
    channel.ack_emulation = False
    channel._brpop_start()
    assert channel.client.connection.sent == [("BRPOP", "kombu's own")]


def test_a_queue_binding_valkey_refused_is_written_by_a_script(monkeypatch):
    """A worker starting against a full Valkey died on its queue bindings (SADD refused):
    measured on the real Celery 5.5.3, 'Unrecoverable error: OutOfMemoryError'."""
    _kombu, channel, _connection = make_channel(monkeypatch)
    channel._queue_bind("celery", "celery", None, "celery")
    assert channel.client.executed == [("SADD", "celery", "celery")]  # kombu's, when it can
    channel.full = True
    channel.global_keyprefix = "gt:"
    channel._queue_bind("celery.pidbox", "", None, "celery@host.celery.pidbox")
    command, script, nkeys, key, member = channel.client.executed[-1]
    assert (command, script, nkeys) == ("EVAL", transport._BIND_SCRIPT, 1)
    assert key == "gt:_kombu.binding.celery.pidbox"
    assert member == "\x06\x16\x06\x16celery@host.celery.pidbox"  # kombu's sep-joined member


def test_the_restore_is_put_off_while_valkey_is_full(monkeypatch, caplog):
    _kombu, channel, _connection = make_channel(monkeypatch)
    assert channel.qos.restore_visible() == "restored"
    channel.full = True
    assert channel.qos.restore_visible() is None
    assert "Valkey is full: restoring unacknowledged messages later" in caplog.text


def test_a_new_channel_restores_on_every_look_for_a_minute_then_on_every_tenth(monkeypatch):
    """kombu looks every 10 s and acts on looks 1, 11, 21...: what a crash stranded in
    `unacked`, younger than the visibility timeout at a channel's start, came back ~100 s
    later. The kit's QoS acts on every look for its channel's first minute (a worker's start,
    a reconnection after Valkey came back), then at kombu's pace again."""
    import time

    clock = [500.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    _kombu, channel, _connection = make_channel(monkeypatch)
    acted = []
    for _look in range(21):
        acted.append(channel.qos.restore_visible(num=None) == "restored")
        clock[0] += 10.0
    assert transport._EAGER_RESTORE_SECONDS == 60.0
    # Looks at 0-50 s act (eager); from 60 s kombu's count goes on: its 11th and 21st act.
    assert [n + 1 for n, did in enumerate(acted) if did] == [1, 2, 3, 4, 5, 6, 11, 21]


def test_the_bind_script_writes_only_after_a_write_that_cannot_grow_memory():
    script = transport._BIND_SCRIPT
    assert script.index("'SISMEMBER'") < script.index("'SREM'") < script.index("'SADD'")
