"""`derive_concurrency` at each of its edges: the 1 GiB kept for Postgres, Valkey and the OS,
then one web process per 300 MiB and one worker slot per 200 MiB of the rest, each tried at a
whole multiple and one MiB below it; the CPU figures (with `web_per_cpu`) and the caps of 8
web processes and 16 worker slots, each tried where it decides and one CPU short of it."""

from __future__ import annotations

import pytest

from provision.settings.sizing import derive_concurrency

GIB = 1024


@pytest.mark.parametrize(
    ("cpus", "memory_mib", "web_per_cpu", "expected"),
    [
        (4, GIB + 600, 1, (2, 3)),  # 600 MiB: two web processes, three worker slots
        (4, GIB + 599, 1, (1, 2)),  # a MiB less: one web process, two slots
        (4, GIB + 400, 1, (1, 2)),
        (4, GIB + 399, 1, (1, 1)),
        (1, GIB, 1, (1, 1)),  # nothing left over: still one of each
        (1, 512, 1, (1, 1)),  # less than the 1 GiB kept
        (3, 64 * GIB, 1, (3, 6)),  # CPUs decide
        (3, 64 * GIB, 2, (6, 6)),  # two web processes per CPU (GlitchTip 6)
        (7, 64 * GIB, 1, (7, 14)),  # one CPU short of both caps
        (9, 64 * GIB, 1, (8, 16)),  # the caps decide
        (16, GIB + 3200, 1, (8, 16)),  # memory for exactly 16 slots
        (16, GIB + 3199, 1, (8, 15)),
        (16, GIB + 2400, 1, (8, 12)),  # memory for exactly 8 web processes
        (16, GIB + 2399, 1, (7, 11)),
    ],
)
def test_the_concurrency_of_a_host_at_each_edge(cpus, memory_mib, web_per_cpu, expected) -> None:
    assert derive_concurrency(cpus, memory_mib, web_per_cpu) == expected
