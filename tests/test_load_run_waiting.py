"""`provision load` on a GlitchTip still storing earlier events: before its own load it waits
for the stored count to settle, and says so, so the operator knows why nothing starts yet.

Uses the fake Compose of `test_load_run_counts.py` (its Valkey answers `queued` for each key)
and the fake GlitchTip with its worker.
"""

from __future__ import annotations

from test_load_run_counts import fake, load, stack  # noqa: F401 (fixtures)


def test_a_busy_queue_before_the_load_is_said_once_before_the_load_starts(stack):  # noqa: F811
    directory, state, _state_dir = stack
    state(sent=2, queued=3)
    result, lines = load(directory)
    waiting = [line for line in lines if line.startswith("waiting for GlitchTip")]
    # 3 in each of the two task queues of GlitchTip 6 (the kit sums their LLEN)
    assert waiting == ["waiting for GlitchTip to store 6 queued events first"]
    first_load = next(i for i, line in enumerate(lines) if line.startswith("load: "))
    assert lines.index(waiting[0]) < first_load
    assert (result["events_sent"], result["events_processed"]) == (2, 2)
