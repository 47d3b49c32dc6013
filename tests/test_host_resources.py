"""What the kit reads of this host (CPUs it may use, memory), and its fallbacks where the
platform does not say: every other test pins `host_resources`, so only these reach it."""

from __future__ import annotations

import os

import pytest

from provision.settings import sizing

MIB = 1024 * 1024


def test_this_hosts_usable_cpus_and_memory_in_mib() -> None:
    cpus, memory = sizing.host_resources()
    assert cpus == len(os.sched_getaffinity(0))
    assert memory == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // MIB


def test_the_page_counts_are_turned_into_whole_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    """1000 MiB and 255 pages more: the part MiB is dropped, not rounded."""
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 1000 * 256 + 255}
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    assert sizing.host_resources() == (3, 1000)


@pytest.mark.parametrize("error", [OSError, AttributeError])
def test_without_an_affinity_the_cpu_count_counts_and_none_is_one(monkeypatch, error) -> None:
    def no_affinity(pid: int) -> set[int]:
        raise error("not on this platform")

    monkeypatch.setattr(os, "sched_getaffinity", no_affinity)
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096}.get(name, 1 << 20))
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert sizing.host_resources() == (6, 4096)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert sizing.host_resources() == (1, 4096)


@pytest.mark.parametrize("error", [ValueError, OSError, AttributeError])
def test_without_a_memory_figure_two_gib_are_assumed(monkeypatch, error) -> None:
    def no_memory(name: str) -> int:
        raise error(name)

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setattr(os, "sysconf", no_memory)
    assert sizing.host_resources() == (1, 2048)


def test_no_cpus_and_tiny_memory_are_raised_to_the_floor(monkeypatch) -> None:
    """An empty affinity set (a container misreporting) is one CPU; memory is never less than
    256 MiB, the least the derivations below are meant for."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set())
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096}.get(name, 100 * 256))
    assert sizing.host_resources() == (1, 256)
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096}.get(name, 257 * 256))
    assert sizing.host_resources() == (1, 257)
