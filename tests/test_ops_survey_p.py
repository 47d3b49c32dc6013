"""Issue 20, part p: what the CI-shaped run's survivors in ops/ showed no test looked at.

Each test reads a user-visible result whole: the step a rollback names when removing the new
Postgres volume fails unexpectedly, the stamp an upgrade writes into glitchtip.yaml, and the
latency `provision verify` reports in its data."""

from __future__ import annotations

import re

from test_ops_upgrade import FakeOps
from test_ops_upgrade import deployment as upgrade_deployment
from test_ops_upgrade import run as upgrade_run
from test_ops_verify import by_name, context, deploy, fake  # noqa: F401 (the fixture)
from test_upgrade_transcript import transcript

from provision.ops.verify import run_verify

# --- ops/upgrade.rollback: the step an unexpected error names -------------------------------


def test_an_unexpected_error_removing_the_new_volume_names_the_volume_step(tmp_path):
    """Not a KitError (the net): the rollback's problem starts with the step, `volume`."""
    directory = upgrade_deployment(tmp_path, glitchtip_major=6, postgres_image="postgres:17.7")
    ops = FakeOps(tmp_path, fail="restore", version="6.2.6")

    def broken(ctx, name):
        raise OSError("the volume store is unreadable")

    ops.remove_volume = broken
    _lines, _settings, _failure, outcome = transcript(
        tmp_path, ops, directory, to=None, postgres="18.1"
    )
    assert not outcome.rollback.ok
    assert outcome.rollback.done == ["files restored", "stack up"]
    assert outcome.rollback.problem.startswith("volume: "), outcome.rollback.problem
    assert "the volume store is unreadable" in outcome.rollback.problem


# --- ops/upgrade.step_settings: the stamp written into glitchtip.yaml ----------------------


def test_the_upgrade_stamps_glitchtip_yaml_with_a_utc_time(tmp_path):
    directory = upgrade_deployment(tmp_path)
    outcome, _compose = upgrade_run(directory, FakeOps(tmp_path))
    assert outcome.ok, outcome.report.error and outcome.report.error.line()
    text = (directory / "glitchtip.yaml").read_text()
    stamps = re.findall(r"^# set by `provision upgrade` .*$", text, re.M)
    assert len(stamps) == 1, text
    assert re.fullmatch(
        r"# set by `provision upgrade` \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamps[0]
    ), stamps[0]


# --- ops/verify.Verifier.check_event: the latency in the data is the one in the line -------


def test_the_reported_latency_is_the_measured_one(fake, tmp_path):  # noqa: F811
    report = run_verify(context(deploy(tmp_path, fake)), event_timeout=10, min_free_gib=0)
    event = by_name(report)["event"]
    shown = float(re.search(r"processed in (\d+\.\d\d) s", event.detail).group(1))
    assert abs(event.data["latency_s"] - shown) <= 0.006, (event.data, event.detail)
