"""Switching a running Valkey to the append-only file without losing its queue.

Valkey started with `--appendonly yes` on a data directory that holds only an RDB snapshot does
not load the snapshot: it creates an empty AOF base and starts empty (measured on Valkey 8.1:
`Creating AOF base file appendonly.aof.1.base.rdb on server start`, every key gone). A deployment
rendered before the durability settings (provision/durability.py) would lose its queued events,
sessions and cache on the first `provision up` that recreates Valkey with them.

So before `compose up` recreates a running Valkey whose `appendonly` is still `no`, the start
step turns it on in place (`CONFIG SET appendonly yes`, the documented live switch): Valkey
writes the AOF from memory with a background rewrite; once that is done the recreated container
loads the AOF and keeps everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from provision.errors import KitError

REWRITE_WAIT = 120.0  # seconds for the background rewrite of a large queue
POLL = 0.5


def _cli(compose: Any, *args: str) -> Any:
    return compose.run("exec", "-T", "valkey", "valkey-cli", *args, timeout=60)


def _persistence(compose: Any) -> dict[str, str]:
    result = _cli(compose, "INFO", "persistence")
    if not result.ok:
        raise KitError(
            f"cannot read Valkey's persistence state ({result.last_lines(2)})",
            "check the valkey service (`provision logs valkey`), then run `provision up` again",
        )
    fields = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.strip().partition(":")
        if sep:
            fields[name] = value
    return fields


def enable_aof_in_place(
    compose: Any,
    note: Callable[[str], None],
    *,
    wait: float = REWRITE_WAIT,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Turn the running Valkey's AOF on from memory; True when it did. Nothing to do (False)
    when Valkey is not running or already writes an AOF."""
    current = _cli(compose, "CONFIG", "GET", "appendonly")
    if not current.ok:
        return False  # not running (or not created yet): nothing in memory to keep
    if current.stdout.split()[-1:] != ["no"]:
        return False
    switched = _cli(compose, "CONFIG", "SET", "appendonly", "yes")
    if not switched.ok or "OK" not in switched.stdout:
        raise KitError(
            f"cannot turn on Valkey's append-only file in place ({switched.last_lines(2)})",
            "check `provision logs valkey` (disk space in its volume), then run `provision up`",
        )
    deadline = time.monotonic() + wait
    while True:
        state = _persistence(compose)
        done = (
            state.get("aof_enabled") == "1"
            and state.get("aof_rewrite_in_progress") == "0"
            and state.get("aof_rewrite_scheduled") == "0"
        )
        if done:
            if state.get("aof_last_bgrewrite_status", "ok") != "ok":
                raise KitError(
                    "Valkey failed to write its append-only file",
                    "check `provision logs valkey` (disk space in its volume), then run "
                    "`provision up` again",
                )
            note("Valkey: append-only file written from memory before the restart (queue kept)")
            return True
        if time.monotonic() >= deadline:
            raise KitError(
                f"Valkey did not finish writing its append-only file within {wait:g} s",
                "wait for `valkey-cli INFO persistence` to show aof_rewrite_in_progress:0, then "
                "run `provision up` again",
            )
        sleep(POLL)
