"""The error-budget window counts its own hours only: the exporter asks stats_v2 for at least
the counters' lookback (3 hours), longer than a 1-hour budget, so older buckets come back in the
same answer and must stay out of `glitchtip_project_errors_in_budget_window`.

The clock is moved forward instead of waiting: events stored now are, two and three hours
later, inside the query but outside a 1-hour window (the current hour and the one before it).
"""

from __future__ import annotations

import time

import pytest
from project_exporter_world import ORG, make_world, write_config

from provision.monitoring import project_exporter as pe

HOUR = 3600


def in_window(exporter: pe.Exporter, project: str) -> float | None:
    labels = {"organization": ORG, "project": project}
    return exporter.registry.get_sample_value("glitchtip_project_errors_in_budget_window", labels)


@pytest.mark.parametrize(("hours_later", "expected"), [(0, 4), (1, 4), (2, 0), (3, 0)])
def test_older_hours_in_the_answer_stay_out_of_a_one_hour_window(
    fake, tmp_path, hours_later, expected
):
    world = make_world(fake)
    world.send_errors("web", 4)
    assert world.store() == 4
    now = time.time()
    budgets = {"default": {"max_errors": 10, "per_seconds": HOUR}}
    config = pe.load_config(
        str(write_config(tmp_path, fake.url, world.token, error_budgets=budgets))
    )
    exporter = pe.Exporter(
        config,
        pe.read_token(config.token_file),
        spread_seconds=0.0,
        clock=lambda: now + hours_later * HOUR,
    )
    assert exporter.poll().ok
    # the current hour and the one before it (ceil(3600 / 3600) = 1 hour back)
    assert in_window(exporter, "web") == expected
    assert in_window(exporter, "worker") == 0
