"""provision/stack/queue_health.py: events that wait longer than they should."""

from __future__ import annotations

from provision import durability
from provision.runtime.process import ProcessResult
from provision.stack.queue_health import health_lines, judge, parse, read_queue_health

KEYS = ("celery",)
NOW = 1_700_000_000.0


def reading(backlog=0, unacked=0, oldest=None, failed=0, used=2**20, maxmemory=256 * 2**20, gone=0):
    return [str(backlog), str(unacked), "none" if oldest is None else str(oldest), str(failed),
            str(gone), str(used), str(maxmemory), str(int(NOW))]  # fmt: skip


class Readings:
    """compose.run answering one prepared reading per call."""

    def __init__(self, *readings):
        self.readings = list(readings)
        self.calls = []

    def run(self, *argv, timeout=None):
        self.calls.append(argv)
        values = self.readings.pop(0)
        return ProcessResult(tuple(argv), 0, "\n".join(values) + "\n", "")


def health(*readings):
    return read_queue_health(Readings(*readings), KEYS, sleep=lambda s: None)


def test_a_draining_queue_is_fine():
    found = health(reading(backlog=500, unacked=400, oldest=NOW - 2), reading(backlog=120))
    assert found.ok, found.problems
    assert (found.backlog, found.backlog_later) == (500, 120)


def test_a_dead_workers_unacked_events_are_stuck():
    old = NOW - durability.STUCK_AFTER_SECONDS - 30
    found = health(reading(unacked=87, oldest=old), reading(unacked=87, oldest=old))
    assert not found.ok
    assert found.oldest_unacked_s == durability.STUCK_AFTER_SECONDS + 30
    assert "87 event(s)" in found.problems[0] and "unacknowledged" in found.problems[0]


def test_a_backlog_that_does_not_shrink():
    found = health(reading(backlog=300), reading(backlog=310))
    assert any("does not drain: 300 -> 310" in p for p in found.problems)


def test_dead_letters_and_a_full_valkey_are_reported():
    found = health(reading(), reading(failed=100, used=250 * 2**20))
    assert any("dead-letter" in p for p in found.problems)
    assert any("97% full" in p for p in found.problems)
    assert any("PROBLEM" in line for line in health_lines(found))


def test_tasks_held_by_a_gone_glitchtip6_worker_are_reported():
    """The kit's GlitchTip 6 backend: a killed worker's batches stay in its processing list
    until a running worker puts them back; still there means no worker runs."""
    found = health(reading(gone=200), reading(gone=200))
    assert any("200 task(s) held by a worker that is gone" in p for p in found.problems)
    assert "200 held by gone workers" in health_lines(found)[0]
    assert health(reading(), reading()).ok


def test_the_script_counts_only_lists_of_workers_without_a_liveness_key():
    from provision.stack.queue_health import _SCRIPT

    assert "HKEYS '{vt}:kit:workers'" in _SCRIPT
    assert 'EXISTS "{vt}:kit:alive:$id"' in _SCRIPT
    assert 'LLEN "{vt}:processing:$id"' in _SCRIPT


def test_an_unreadable_valkey_is_an_error_not_an_exception():
    class Down:
        def run(self, *argv, timeout=None):
            return ProcessResult(tuple(argv), 1, "", 'service "valkey" is not running')

    found = read_queue_health(Down(), KEYS, sleep=lambda s: None)
    assert not found.ok and "not running" in found.error


def test_parse_needs_every_value():
    import pytest

    with pytest.raises(ValueError):
        parse(["1", "2"], KEYS)
    assert judge(parse(reading(), KEYS), parse(reading(), KEYS)).ok
