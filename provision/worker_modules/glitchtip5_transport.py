# -- GlitchTip 5: a message is taken off the queue and recorded in `unacked` in one step --------
# (provision/worker_modules/glitchtip5_transport.py, appended to the module by `provision render`.)
#
# kombu 5.5.4's Redis transport (kombu/transport/redis.py) consumes with BRPOP
# (`Channel._brpop_start` sends it, `_brpop_read` parses the reply and calls
# `connection._deliver`) and only then, in the client, records the message in the hash `unacked`
# and the sorted set `unacked_index` (`QoS.append`, called by kombu/transport/virtual/base.py
# `basic_consume`'s callback). Between the two the message exists nowhere but in the worker:
#  - a worker SIGKILLed there loses it (1 of 2,000 on the real libraries);
#  - a Valkey SIGKILLed with a BRPOP reply in flight has popped it (and written the pop to its
#    append-only file) but never recorded it (1 of 1,680);
#  - a Valkey at maxmemory (noeviction) lets BRPOP pop (a pop is not refused) and refuses the
#    record: the message is gone.
# Celery's `broker_transport` setting (CELERY_BROKER_TRANSPORT here) is handed to
# `kombu.Connection(transport=...)`, where it wins over the URL's scheme and may name a class by
# its dotted path (kombu/connection.py `__init__`, kombu/transport/__init__.py
# `resolve_transport`). The worker module names `KitRedisTransport`, kombu's Redis transport
# whose channel takes each message with one Lua script (_TAKE_SCRIPT) that pops it and writes
# kombu's own record of it (the same keys, the same value, `[message, exchange, routing_key]`,
# scored with the worker's clock) before it answers: a message is always either in its list or
# in `unacked`, which kombu's acknowledgement, `restore_visible` (the 10 s visibility timeout)
# and clean-shutdown restore already handle. The web (LPUSH) and everything else is kombu's.
#
# A script cannot block, so the channel alternates: after a take that found nothing it waits
# with `BLMOVE q q LEFT LEFT 1` on the first list it consumes (it blocks until that list has an
# item, then moves the head onto the head: the list is unchanged, nothing is taken), then takes
# again; while messages keep coming it only takes (one round trip per message, where kombu
# needs two: BRPOP, then the record). A message pushed onto another of the worker's lists (a
# priority step or a second queue) while the first is empty waits at most the wait's 1 s, as
# kombu's own BRPOP reissues every 1 s. GlitchTip 5 queues on `celery` only, priority 0.
#
# At maxmemory (noeviction) Valkey refuses BLMOVE (a write that may grow memory) but not the
# script: a script's first write is checked against maxmemory only if the command may grow
# memory, and its RPOP may not; once a script has written, its later writes are not refused
# (Valkey would otherwise leave it half done). So a full Valkey still drains, every message
# recorded; the record briefly takes what the pop freed (plus about 100 bytes). While BLMOVE is
# refused the channel sleeps 1 s on the server (BLPOP on a key nothing pushes to) between
# takes that find nothing. A take whose record fails anyway (an error other than memory) puts
# the message back where it was and answers an error: nothing is lost. A worker (kombu's
# transport or this one) starting against a full Valkey died before it consumed anything: its
# queue bindings (SADD) and the lock of kombu's restore of old unacknowledged messages (SET NX)
# are refused: the channel writes a refused binding with a script too, and puts the restore off
# until Valkey has room (the records stay where they are).
#
# Rolled back (a worker without this module): kombu restores these records as its own.
# Used only when the broker URL is `redis://` (the kit's Valkey); TLS (`rediss://`), Sentinel
# and sockets keep kombu's transport as GlitchTip sets it.
import hashlib as _hashlib
from urllib.parse import urlsplit as _urlsplit

# Pops the first message of KEYS[1..n-2] (kombu's BRPOP order: queues at priority 0, then 3...)
# and records it in KEYS[n-1] (`unacked`) and KEYS[n] (`unacked_index`, score ARGV[1]), as
# kombu's QoS.append does. Returns {list, message, 1}, {list, message, 0} for a message kombu
# must record itself (not kombu's JSON), or nil when every list is empty.
_TAKE_SCRIPT = """
local n = #KEYS
local unacked, index, now = KEYS[n - 1], KEYS[n], ARGV[1]
for i = 1, n - 2 do
  local item = redis.call('RPOP', KEYS[i])
  if item then
    local ok, message = pcall(cjson.decode, item)
    local properties = ok and type(message) == 'table' and message['properties']
    local info = type(properties) == 'table' and properties['delivery_info']
    local tag = type(properties) == 'table' and properties['delivery_tag']
    if type(info) ~= 'table' or type(tag) ~= 'string'
        or type(info['exchange']) ~= 'string' or type(info['routing_key']) ~= 'string' then
      return {KEYS[i], item, 0}
    end
    local record = '[' .. item .. ', ' .. cjson.encode(info['exchange']) .. ', '
      .. cjson.encode(info['routing_key']) .. ']'
    local done = redis.pcall('HSET', unacked, tag, record)
    if type(done) ~= 'table' or not done['err'] then
      done = redis.pcall('ZADD', index, now, tag)
    end
    if type(done) == 'table' and done['err'] then
      redis.pcall('HDEL', unacked, tag)
      redis.call('RPUSH', KEYS[i], item)
      return redis.error_reply(done['err'])
    end
    return {KEYS[i], item, 1}
  end
end
return nil
"""
_TAKE_SHA = _hashlib.sha1(_TAKE_SCRIPT.encode()).hexdigest()
# kombu's queue binding (`Channel._queue_bind`: SADD to `_kombu.binding.<exchange>`), for when
# Valkey refused it at maxmemory: SADD may grow memory, so Valkey refuses it, and a worker
# starting against a full Valkey dies on it ("Unrecoverable error: OutOfMemoryError", from
# mingle's reply queue, the pidbox and the `celery` queue, all bound at start): the queue would
# never drain. The SREM before it is a write that cannot grow memory, after which Valkey does
# not refuse the script's SADD (a binding is a few dozen bytes).
_BIND_SCRIPT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return 0
end
redis.call('SREM', KEYS[1], ARGV[1])
return redis.call('SADD', KEYS[1], ARGV[1])
"""
# A key nothing pushes to: BLPOP on it is the 1 s sleep while Valkey refuses BLMOVE.
_SLEEP_KEY = "glitchtip-kit:worker-sleep"
# kombu looks for messages unacknowledged past the visibility timeout every 10 s
# (`maybe_restore_messages`), but `QoS.restore_visible` acts only on its 1st, 11th, 21st...
# call: at a channel's start, then every 100 s. What a crash strands in `unacked` (a killed
# worker's batches, a take or an acknowledgement whose reply died with Valkey) is younger than
# the timeout at that start, so it came back only ~100 s later. For its first minute a channel
# (a worker's start, the consumer's reconnection after Valkey came back) acts on every look
# instead, so they come back within the timeout plus 10 s; then kombu's pace again, so batches
# a worker holds longer than the timeout (a database retry) are not handed out again every 10 s.
_EAGER_RESTORE_SECONDS = 60.0


def _kit_transport(theirs: object, broker_url: object) -> object:
    """CELERY_BROKER_TRANSPORT: the kit's transport for a `redis://` broker that GlitchTip did
    not give a transport of its own, else GlitchTip's setting as it was."""
    if theirs or not isinstance(broker_url, str) or _urlsplit(broker_url).scheme != "redis":
        return theirs
    return f"{__name__}:KitRedisTransport"


def _build_transport() -> type:
    """kombu's Redis transport with the recorded take (imported here, when kombu resolves the
    class: the settings module itself imports without kombu)."""
    import logging
    import time

    from kombu.transport import redis as kombu_redis
    from kombu.transport import virtual
    from kombu.utils.encoding import bytes_to_str
    from kombu.utils.json import loads
    from redis.exceptions import ExecAbortError, NoScriptError, OutOfMemoryError

    logger = logging.getLogger("glitchtip_kit_worker_settings")

    class KitQoS(kombu_redis.QoS):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._kit_eager_until = time.monotonic() + _EAGER_RESTORE_SECONDS

        def append(self, message, delivery_tag):
            """kombu's, minus the write for a message the take script already recorded."""
            recorded = self.channel._kit_recorded
            if delivery_tag in recorded:
                recorded.discard(delivery_tag)
                virtual.QoS.append(self, message, delivery_tag)
                return
            super().append(message, delivery_tag)

        def restore_visible(self, start=0, num=10, interval=10):
            """kombu's, acting on every look for the channel's first minute
            (`_EAGER_RESTORE_SECONDS`), and put off while Valkey is full: its lock (SET NX) and
            the restore (LPUSH) are refused then, and kombu's error would stop the worker
            starting (its first call is in `on_poll_init`). The records stay; a later look
            restores them."""
            if time.monotonic() < self._kit_eager_until:
                interval = 1
            try:
                return super().restore_visible(start, num, interval)
            except (OutOfMemoryError, ExecAbortError) as error:
                logger.warning(
                    "Valkey is full: restoring unacknowledged messages later (%s)", error
                )
                return None

    class KitChannel(kombu_redis.Channel):
        QoS = KitQoS

        def __init__(self, *args, **kwargs):
            self._kit_recorded = set()
            self._kit_next = "take"  # take | wait | sleep
            self._kit_sent = None
            self._kit_full = False
            super().__init__(*args, **kwargs)

        def _brpop_start(self, timeout=1):
            if not self.ack_emulation:
                return super()._brpop_start(timeout)
            queues = self._queue_cycle.consume(len(self.active_queues))
            if not queues:
                return
            prefix = self.global_keyprefix
            keys = [
                prefix + self._q_for_pri(queue, pri)
                for pri in self.priority_steps
                for queue in queues
            ]
            step = self._kit_next
            if step == "take":
                keys += [prefix + self.unacked_key, prefix + self.unacked_index_key]
                command = ("EVALSHA", _TAKE_SHA, len(keys), *keys, repr(time.time()))
            elif step == "wait":
                command = ("BLMOVE", keys[0], keys[0], "LEFT", "LEFT", timeout or 1)
            else:
                command = ("BLPOP", prefix + _SLEEP_KEY, timeout or 1)
            self._kit_sent = step
            self._in_poll = self.client.connection
            self.client.connection.send_command(*command)

        def _brpop_read(self, **options):
            if not self.ack_emulation:
                return super()._brpop_read(**options)
            step = self._kit_sent
            try:
                try:
                    reply = self.client.parse_response(
                        self.client.connection, "KIT_" + str(step).upper(), **options
                    )
                except self.connection_errors:
                    self.client.connection.disconnect()
                    raise
                except self.ResponseError as error:
                    self._kit_refused(step, error)
                    raise virtual.Empty() from None
                if step != "take":
                    if step == "sleep":
                        self._kit_full = False
                    self._kit_next = "take"
                    raise virtual.Empty()
                if not reply:
                    self._kit_next = "sleep" if self._kit_full else "wait"
                    raise virtual.Empty()
                key, item, recorded = reply
                dest = bytes_to_str(key)[len(self.global_keyprefix) :].rsplit(self.sep, 1)[0]
                self._queue_cycle.rotate(dest)
                message = loads(bytes_to_str(item))
                tag = message["properties"]["delivery_tag"] if recorded else None
                if tag is not None:
                    self._kit_recorded.add(tag)
                try:
                    self.connection._deliver(message, dest)
                finally:
                    if tag is not None:
                        self._kit_recorded.discard(tag)
                return True
            finally:
                self._in_poll = None

        def _queue_bind(self, exchange, routing_key, pattern, queue):
            """kombu's, and the binding written by _BIND_SCRIPT when Valkey is full."""
            try:
                return super()._queue_bind(exchange, routing_key, pattern, queue)
            except OutOfMemoryError:
                member = self.sep.join([routing_key or "", pattern or "", queue or ""])
                key = self.global_keyprefix + self.keyprefix_queue % (exchange,)
                with self.conn_or_acquire() as client:
                    client.execute_command("EVAL", _BIND_SCRIPT, 1, key, member)

        def _kit_refused(self, step, error):
            """An error reply: Valkey refused the wait (full: sleep instead until a take finds
            the queue empty again), does not know the script (started again: load it), or
            refused a take's record (the message is back in its list)."""
            if step == "wait":
                self._kit_full = True
                self._kit_next = "take"
            elif step == "take" and isinstance(error, NoScriptError):
                with self.conn_or_acquire() as client:
                    client.script_load(_TAKE_SCRIPT)
                self._kit_next = "take"
            elif step == "take":
                logger.warning("taking a message failed, it stays queued: %s", error)
                self._kit_next = "sleep"
            else:
                self._kit_next = "take"

    class KitRedisTransport(kombu_redis.Transport):
        """kombu's Redis transport whose consumer pops and records a message in one step."""

        Channel = KitChannel

    return KitRedisTransport


def __getattr__(name: str) -> object:
    """`KitRedisTransport`, built on first use (kombu's `symbol_by_name` gets it with getattr)."""
    if name == "KitRedisTransport":
        transport = _build_transport()
        globals()[name] = transport
        return transport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


CELERY_BROKER_TRANSPORT = _kit_transport(
    globals().get("CELERY_BROKER_TRANSPORT"), globals().get("CELERY_BROKER_URL")
)
