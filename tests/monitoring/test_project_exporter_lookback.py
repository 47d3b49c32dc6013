"""The events counter follows the last COUNTER_LOOKBACK_HOURS (3) hours of stats_v2, not the
current hour alone: an event is counted by the hour GlitchTip received it, and the worker can
store it hours later (a backlog, a restart), so an hour already polled can still grow and its
growth must reach `glitchtip_project_events_total`.

The exporter's clock is moved forward instead of waiting: events stored now are, three hours
later, in an hour before the current one but inside the lookback.
"""

from __future__ import annotations

import time

import pytest
from project_exporter_world import ORG, make_world, write_config

from provision.monitoring import project_exporter as pe

HOUR = 3600


def events(exporter: pe.Exporter, project: str) -> float | None:
    labels = {"organization": ORG, "project": project, "category": "error"}
    return exporter.registry.get_sample_value("glitchtip_project_events_total", labels)


def test_an_earlier_hour_that_grows_after_a_poll_is_still_counted(fake, tmp_path):
    world = make_world(fake)
    world.send_errors("web", 4)
    assert world.store() == 4
    now = time.time()
    clock = {"now": now}
    config = pe.load_config(str(write_config(tmp_path, fake.url, world.token)))
    exporter = pe.Exporter(
        config, pe.read_token(config.token_file), spread_seconds=0.0, clock=lambda: clock["now"]
    )
    assert exporter.poll().ok  # the first poll records what is there: nothing counted
    assert (events(exporter, "web"), events(exporter, "worker")) == (0, 0)
    # Three more received in the same hour, polled three hours later: that hour is no longer
    # the current one, but it is the first of the 3-hour lookback.
    world.send_errors("web", 3)
    assert world.store() == 3
    clock["now"] = now + 3 * HOUR
    assert exporter.poll().ok
    assert (events(exporter, "web"), events(exporter, "worker")) == (3, 0)
    # Four hours later the hour is out of the lookback: its buckets are no longer followed.
    world.send_errors("web", 2)
    assert world.store() == 2
    if pe.floor_hour(time.time()) != pe.floor_hour(now):  # received in the next hour: in it
        pytest.skip("the events were received across an hour boundary")
    clock["now"] = now + 4 * HOUR
    assert exporter.poll().ok
    assert events(exporter, "web") == 3


def test_stats_v2_answering_404_carries_no_organization_hint(fake, tmp_path):
    """A 404 from stats_v2 is a project deleted since the list (recorded 183), not an unknown
    organization: the organization hint is only for the other calls' 404."""
    world = make_world(fake)
    config = pe.load_config(str(write_config(tmp_path, fake.url, world.token)))
    exporter = pe.Exporter(config, world.token, spread_seconds=0.0)
    api = pe.Api(config, world.token, exporter.requests)
    stats = (
        f"/api/0/organizations/{ORG}/stats_v2/?category=error&field=sum%28quantity%29"
        "&interval=1h&start=2026-12-07T00%3A00%3A00Z&end=2026-12-07T01%3A00%3A00Z&project=999"
    )
    with pytest.raises(pe.ApiFailure) as gone:
        api.get(stats)
    assert (str(gone.value), gone.value.code) == (
        f"GET /api/0/organizations/{ORG}/stats_v2/ answered 404",
        "404",
    )
    with pytest.raises(pe.ApiFailure) as unknown:
        api.get("/api/0/organizations/nope/projects/")
    assert (str(unknown.value), unknown.value.code) == (
        "GET /api/0/organizations/nope/projects/ answered 404: "
        "no such organization for this token: check organization",
        "404",
    )
