"""Issue 20, part p: a backup's progress line comes once a whole second (PROGRESS_EVERY) has
passed since the last, not only after more than that: with a clock that reads 1.0 s further at
each chunk, every chunk gets its line."""

from __future__ import annotations

import provision.ops.backup as backup
from provision.ops.manifest import human_size


def test_a_progress_line_comes_once_exactly_a_second_has_passed(monkeypatch):
    ticks = iter([100.0, 101.0, 102.0, 103.0])
    lines: list[str] = []
    with monkeypatch.context() as patched:  # the clock only around the progress calls
        patched.setattr(backup.time, "monotonic", lambda: next(ticks))
        progress = backup._Progress(lines.append, "pg_dump")
        for _ in range(3):
            progress.add(1000)
    assert backup.PROGRESS_EVERY == 1.0
    assert lines == [f"pg_dump: {human_size(n)} so far" for n in (1000, 2000, 3000)]
