"""provision/stack/valkey_aof.py: a running Valkey gets its AOF from memory before it is
recreated with `--appendonly yes` (which, on an RDB-only data directory, would start empty)."""

from __future__ import annotations

import pytest

from provision.errors import KitError
from provision.runtime.process import ProcessResult
from provision.stack.valkey_aof import enable_aof_in_place


class FakeValkey:
    """`compose exec valkey valkey-cli ...` answering from a small state machine."""

    def __init__(self, appendonly="no", running=True, rewrites=2, status="ok"):
        self.appendonly, self.running = appendonly, running
        self.rewrites, self.status = rewrites, status
        self.commands = []

    def run(self, *argv, timeout=None):
        cli = list(argv[argv.index("valkey-cli") + 1 :])
        self.commands.append(cli)
        if not self.running:
            return ProcessResult(tuple(argv), 1, "", 'service "valkey" is not running')
        if cli[:2] == ["CONFIG", "GET"]:
            out = f"appendonly\n{self.appendonly}\n"
        elif cli[:2] == ["CONFIG", "SET"]:
            self.appendonly, out = "yes", "OK\n"
        else:  # INFO persistence: the rewrite runs for a few polls
            busy = "1" if self.rewrites > 0 else "0"
            self.rewrites -= 1
            enabled = "1" if self.appendonly == "yes" else "0"
            lines = [
                "# Persistence",
                f"aof_enabled:{enabled}",
                f"aof_rewrite_in_progress:{busy}",
                "aof_rewrite_scheduled:0",
                f"aof_last_bgrewrite_status:{self.status}",
            ]
            out = "\r\n".join(lines) + "\r\n"
        return ProcessResult(tuple(argv), 0, out, "")


def test_switches_a_running_rdb_only_valkey_and_waits_for_the_rewrite():
    valkey, notes = FakeValkey(), []
    assert enable_aof_in_place(valkey, notes.append, sleep=lambda s: None) is True
    assert ["CONFIG", "SET", "appendonly", "yes"] in valkey.commands
    assert valkey.rewrites < 0  # polled until the rewrite was over
    assert "queue kept" in notes[0]


@pytest.mark.parametrize("valkey", [FakeValkey(appendonly="yes"), FakeValkey(running=False)])
def test_nothing_to_do_when_already_on_or_not_running(valkey):
    assert enable_aof_in_place(valkey, lambda line: None, sleep=lambda s: None) is False
    assert not any(cmd[:2] == ["CONFIG", "SET"] for cmd in valkey.commands)


def test_a_failed_rewrite_stops_before_the_restart():
    valkey = FakeValkey(status="err")
    with pytest.raises(KitError, match="failed to write its append-only file"):
        enable_aof_in_place(valkey, lambda line: None, sleep=lambda s: None)


def test_a_rewrite_that_never_ends_is_bounded():
    valkey = FakeValkey(rewrites=10**9)
    with pytest.raises(KitError, match="did not finish"):
        enable_aof_in_place(valkey, lambda line: None, wait=0.0, sleep=lambda s: None)
