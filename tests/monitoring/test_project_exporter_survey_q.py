"""The exporter's poll duration gauge and an api_url whose last character is an `X`
(part q of the CI-shaped run's survivors)."""

from __future__ import annotations

import time

import pytest
from project_exporter_world import make_world, write_config

from provision.monitoring import project_exporter as pe


def test_the_poll_duration_gauge_holds_how_long_the_last_poll_took(fake, tmp_path):
    world = make_world(fake)
    config = pe.load_config(str(write_config(tmp_path, fake.url, world.token)))
    exporter = pe.Exporter(config, pe.read_token(config.token_file), spread_seconds=0.0)
    started = time.monotonic()
    assert exporter.poll().ok
    took = time.monotonic() - started
    duration = exporter.registry.get_sample_value(
        "glitchtip_project_exporter_poll_duration_seconds"
    )
    assert duration is not None and 0 < duration <= took


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("http://GLITCHTIP-BOX", "http://GLITCHTIP-BOX"),
        ("https://glitchtip.example.com/XX/", "https://glitchtip.example.com/XX"),
    ],
)
def test_only_the_trailing_slash_is_dropped_from_the_api_url(given, kept):
    assert pe.parse_config({"api_url": given, "organization": "acme"}).api_url == kept
