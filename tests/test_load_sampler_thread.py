"""The load sampler's thread never keeps the kit's process alive.

A sample runs `docker exec ... valkey-cli` and a GlitchTip API call; either can hang (an engine
that stopped answering). `Sampler.__exit__` waits 65 s for the thread at most, then the command
goes on to its report and ends: the thread must be a daemon, or Python's exit would wait for the
hung sample forever (a non-daemon thread is joined at interpreter shutdown).
"""

from __future__ import annotations

import threading

from provision.load import measure


def test_a_hung_sample_runs_in_a_daemon_thread_that_cannot_hold_the_exit():
    entered = threading.Event()
    release = threading.Event()

    def backlog() -> int:
        entered.set()
        release.wait(timeout=30)  # a sample that hangs until the test lets it go
        return 0

    with measure.Sampler(backlog, interval_s=0.001):
        try:
            assert entered.wait(timeout=10)
            hung = [t for t in threading.enumerate() if t.name == "load-sampler"]
            seen = [(t.daemon, t.is_alive()) for t in hung]
        finally:
            release.set()  # before the exit's join, also when the wait failed
    assert seen == [(True, True)]
    assert not any(t.name == "load-sampler" for t in threading.enumerate())
