"""A GlitchTip 5 worker with the prefork or solo pool runs one task at a time per process, so
each process needs one pooled database connection whatever worker_concurrency says: the
smallest pool, 1, is accepted there (with threads, the same concurrency is refused whole)."""

from __future__ import annotations

import pytest

from provision.errors import SettingsError
from provision.settings import load_settings

pytestmark = pytest.mark.usefixtures("kit_environ")


@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_a_process_pool_needs_one_connection_per_process(tmp_path, pool):
    overrides = {
        "glitchtip_major": "5",
        "worker_pool": pool,
        "worker_concurrency": "4",
        "db_pool_max_size": "1",
    }
    settings = load_settings(tmp_path, overrides, environ={})
    assert (settings.worker_pool, settings.worker_concurrency, settings.db_pool_max_size) == (
        pool,
        4,
        1,
    )


def test_a_thread_pool_needs_one_connection_per_thread(tmp_path):
    overrides = {
        "glitchtip_major": "5",
        "worker_pool": "threads",
        "worker_concurrency": "4",
        "db_pool_max_size": "1",
    }
    with pytest.raises(SettingsError) as refused:
        load_settings(tmp_path, overrides, environ={})
    assert (refused.value.message, refused.value.fix) == (
        "db_pool_max_size (from option db_pool_max_size): 1 connections per process, but the "
        "worker runs 4 slots that each need one",
        "set db_pool_max_size to at least 4, or lower worker_concurrency",
    )
