"""Two more edges the digging sample of part m found untried: a name (organization, team,
project) of one character, the shortest the fix promises ("use 1-64 printable characters"),
taken, and the empty and 65-character ones refused whole; GlitchTip 5's worker pool, which
forks only where the host has both two CPUs and memory for two slots: one without the other
keeps threads."""

from __future__ import annotations

import pytest

from provision.settings.base import Invalid
from provision.settings.parsers import parse_name
from provision.settings.sizing import derive_worker_pool

FIX = "use 1-64 printable characters, no quotes"


def test_a_name_of_one_character_and_one_of_64_are_taken() -> None:
    assert parse_name(" a ") == "a"
    assert parse_name("b" * 64) == "b" * 64


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("  ", "'' is not a usable name"),
        ("c" * 65, "'" + "c" * 54 + "...' (65 characters) is not a usable name"),
    ],
)
def test_an_empty_name_and_one_of_65_characters_are_refused_whole(raw, problem) -> None:
    with pytest.raises(Invalid) as refused:
        parse_name(raw)
    assert (refused.value.problem, refused.value.fix) == (problem, FIX)


@pytest.mark.parametrize(
    ("cpus", "memory_mib", "pool"),
    [
        (2, 1024 + 400, "prefork"),  # two CPUs, memory for two forked slots
        (2, 1024 + 399, "threads"),  # two CPUs, memory for one slot only
        (1, 64 * 1024, "threads"),  # memory for many slots, one CPU
        (4, 64 * 1024, "prefork"),
    ],
)
def test_the_worker_forks_only_with_two_cpus_and_memory_for_two_slots(
    cpus, memory_mib, pool
) -> None:
    assert derive_worker_pool(cpus, memory_mib) == pool
    assert derive_worker_pool(cpus, memory_mib, fixed="solo") == "solo"
