"""`provision load` without Docker: options, target guard, Locust's CSV, the drain measure,
the summary, the rendered compose.locust.yml and the refusals of the command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from cli_run import one_line_error, run

from provision.errors import KitError, UsageError
from provision.load import measure, report
from provision.load.options import parse_duration, resolve_target
from provision.load.summary import summary_lines

REPO = Path(__file__).resolve().parent.parent

# Locust 2.47's stats CSV (locust/stats.py requests_csv_columns), two kinds and the total.
STATS_CSV = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\n"
    "POST,error_gzip,300,2,12,14.1,3,80,45,10.0,0.07,12,14,16,18,25,31,40,60,80,80,80\n"
    "POST,transaction,100,0,9,10.2,2,50,45,3.3,0,9,10,11,12,15,20,30,40,50,50,50\n"
    ",Aggregated,400,2,11,13.0,2,80,45,13.3,0.07,11,13,15,17,22,29,38,55,80,80,80\n"
)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("2m", 120), ("1h30m", 5400), ("45", 45), ("1m5s", 65)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "5x", "-3s", "25h", "1.5m", "m"])
def test_bad_durations(text):
    with pytest.raises(UsageError):
        parse_duration(text)


def _target(target, allow=False):
    return resolve_target(
        target,
        web_service_url="http://web:8000",
        host_header="errors.example.com",
        stack_hosts=("web", "glitchtip-web-1"),
        allow_remote=allow,
    )


def test_default_target_is_the_stack_with_the_public_host():
    target = _target(None)
    assert (target.url, target.host_header, target.is_stack) == (
        "http://web:8000",
        "errors.example.com",
        True,
    )
    assert _target("http://web:8000").host_header == "errors.example.com"


def test_remote_targets_need_the_flag():
    with pytest.raises(UsageError, match="allow-remote-target"):
        _target("https://errors.example.com")
    allowed = _target("https://errors.example.com", allow=True)
    assert (allowed.url, allowed.host_header, allowed.is_stack) == (
        "https://errors.example.com",
        "",
        False,
    )


@pytest.mark.parametrize(
    "bad",
    [
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "ftp://web",
        "http://u:p@web:8000",
        "http://web:8000/api",
        "web:8000",
        "http://web:99999",
    ],
)
def test_targets_refused(bad):
    with pytest.raises(UsageError):
        _target(bad, allow=True)


def test_stats_csv():
    stats = report.parse_stats(STATS_CSV)
    assert (stats.requests, stats.failures, stats.accepted) == (400, 2, 398)
    assert (stats.p50_ms, stats.p95_ms) == (11.0, 29.0)
    assert stats.by_kind["error_gzip"] == {"requests": 300, "failures": 2}
    with pytest.raises(Exception, match="stats CSV"):
        report.parse_stats("Name,Other\nx,1\n")


def test_failures_csv_most_frequent_first():
    text = (
        "Method,Name,Error,Occurrences,First Seen,Last Seen\n"
        "POST,store,HTTP 500,2,0,0\nPOST,error_gzip,HTTP 403,9,0,0\n"
    )
    assert report.parse_failures(text) == [
        "9 x POST error_gzip: HTTP 403",
        "2 x POST store: HTTP 500",
    ]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def _drain(queue, stored, accepted=10, timeout=30.0):
    """Run measure_drain over scripted samples (one entry per sample; the last repeats)."""
    clock = Clock()
    state = {"i": 0}

    def pick(seq):
        return seq[min(state["i"], len(seq) - 1)]

    def backlog():
        return pick(queue)

    def count():
        value = pick(stored)
        state["i"] += 1
        return measure.Stored(value + 5, 2)  # 5 events and 2 transactions from before

    return measure.measure_drain(
        accepted=accepted,
        before=measure.Stored(5, 2),
        count=count,
        backlog=backlog,
        load_end=100.0,
        timeout_s=timeout,
        clock=clock,
        sleep=clock.sleep,
    )


def test_drain_ends_when_the_queue_is_empty_and_everything_is_stored():
    drain = _drain(queue=[8, 3, 0, 0], stored=[0, 4, 7, 10])
    assert (drain.drain_s, drain.stored.total, drain.queue_peak) == (3.0, 10, 8)


def test_an_empty_queue_is_not_enough_while_events_are_still_being_stored():
    # GlitchTip 6 pops a batch before storing it: queue 0 at once, the count still rising.
    drain = _drain(queue=[0], stored=[0, 2, 4, 6, 8, 10])
    assert drain.drain_s == 5.0


def test_other_projects_traffic_in_the_queue_does_not_hold_the_drain():
    drain = _drain(queue=[90, 60, 40], stored=[0, 6, 10])
    assert (drain.drain_s, drain.queue_peak) == (2.0, 90)


def test_a_busy_queue_with_a_stuck_count_is_not_called_drained():
    drain = _drain(queue=[30], stored=[4], timeout=12.0)
    assert drain.drain_s is None and drain.stored.total == 4


def test_lost_events_end_the_drain_once_the_count_stops_moving():
    drain = _drain(queue=[4, 0], stored=[0, 7])
    assert drain.stored.total == 7
    assert drain.drain_s == 2.0  # first sample of the settled count (queue 0, count 7)


def test_no_drain_within_the_bound_is_none():
    drain = _drain(queue=[50], stored=[0], timeout=10.0)
    assert drain.drain_s is None and drain.samples == 11


def test_queue_lengths_reads_every_key_in_one_exec():
    class FakeCompose:
        def run(self, *args, timeout=None):
            self.args = args
            from provision.runtime.process import ProcessResult

            return ProcessResult(tuple(args), 0, "3\n0\n", "")

    compose = FakeCompose()
    assert measure.queue_lengths(compose, ("{vt}:q:ingest", "{vt}:q:default")) == {
        "{vt}:q:ingest": 3,
        "{vt}:q:default": 0,
    }
    assert compose.args[:3] == ("exec", "-T", "valkey")
    assert compose.args[-2:] == ("{vt}:q:ingest", "{vt}:q:default")


def test_summary_lines():
    result = {
        "duration_s": 30, "users": 20, "workers": 1, "target": "http://web:8000",
        "project": "loadtest", "requests": 400, "failures": 2, "accepted_per_s": 13.3,
        "p50_ms": 11.0, "p95_ms": 29.0, "events_sent": 398, "events_processed": 398,
        "transactions_processed": 100, "processed_per_s": 11.7, "drain_s": 4.2,
        "drain_timeout_s": 120.0, "queue_peak": 35, "report_dir": "reports/x",
        "top_failures": ["2 x POST store: HTTP 500"],
    }  # fmt: skip
    text = "\n".join(summary_lines(result))
    for part in ("13.3/s", "p95 29 ms", "398 of 398 events (100%", "4.2 s after the load",
                 "HTTP 500", "reports/x/report.html"):  # fmt: skip
        assert part in text
    result["drain_s"] = None
    assert "NOT drained within 120 s" in "\n".join(summary_lines(result))


# --- compose.locust.yml ---


@pytest.fixture
def settings(tmp_path, kit_environ):
    from provision.settings import load_settings

    return load_settings(tmp_path, {}, environ={})


@pytest.mark.snapshot
def test_committed_compose_locust_is_the_default_render(settings):
    from provision.load.compose_file import render_locust

    assert render_locust(settings) == (REPO / "compose.locust.yml").read_text(encoding="utf-8")


def test_compose_locust_follows_the_settings(tmp_path, kit_environ):
    from provision.load.compose_file import render_locust
    from provision.settings import load_settings

    settings = load_settings(
        tmp_path,
        {
            "compose_project_name": "errors",
            "locust_port": "18089",
            "bind_address": "0.0.0.0",
            "glitchtip_domain": "https://errors.example.com",
            "locust_image": "mirror.local/locust:2.47.0",
        },
        environ={},
    )
    model = yaml.safe_load(render_locust(settings))
    assert model["name"] == "errors-locust"
    assert model["networks"]["glitchtip"] == {"name": "errors_default", "external": True}
    master = model["services"]["locust-master"]
    assert master["image"] == "mirror.local/locust:2.47.0"
    assert master["ports"][0]["published"] == "18089"
    assert master["ports"][0]["host_ip"] == "0.0.0.0"
    # Every variable Locust's containers get, whole: the defaults the web UI starts with
    # (payloads.MIX's weights written out, 50 issues, no rate) and the public host header.
    assert model["x-locust-environment"] == {
        "LOCUST_HOST": "${GLITCHTIP_KIT_LOAD_TARGET:-http://web:8000}",
        "GLITCHTIP_LOAD_HOST_HEADER": "${GLITCHTIP_KIT_LOAD_HOST_HEADER-errors.example.com}",
        "GLITCHTIP_LOAD_DSN": "${GLITCHTIP_LOAD_DSN:-}",
        "GLITCHTIP_LOAD_ISSUES": "${GLITCHTIP_LOAD_ISSUES:-50}",
        "GLITCHTIP_LOAD_MIX": (
            "${GLITCHTIP_LOAD_MIX:-error_gzip=50,error_plain=15,message=10,transaction=20,store=5}"
        ),
        "GLITCHTIP_LOAD_RATE": "${GLITCHTIP_LOAD_RATE:-0}",
        "GLITCHTIP_LOAD_SEND_FOR": None,
        "LOCUST_LOCUSTFILE": "/mnt/locust/locustfile.py",
    }
    assert "ports" not in model["services"]["locust-headless"]


def test_compose_config_accepts_both_modes(tmp_path, settings):
    from provision.load.compose_file import write_locust
    from provision.runtime.compose_binary import compose_command

    write_locust(settings)
    assert (tmp_path / "compose.locust.yml").stat().st_mode & 0o777 == 0o644
    base = [*compose_command(), "-f", str(tmp_path / "compose.locust.yml")]
    dsn = "http://" + "d" * 32 + "@localhost:8000/3"
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "GLITCHTIP_LOAD_DSN": dsn,
           "LOCUST_USERS": "7", "GLITCHTIP_KIT_LOCUST_MASTER": "locust-headless"}  # fmt: skip
    done = subprocess.run(
        [*base, "--profile", "headless", "config", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    import json

    services = json.loads(done.stdout)["services"]
    assert services["locust-headless"]["environment"]["LOCUST_USERS"] == "7"
    assert services["locust-headless"]["environment"]["GLITCHTIP_LOAD_DSN"] == dsn
    assert services["locust-worker"]["command"][-1] == "locust-headless"
    # The DSN travels in the environment only: never written into the file.
    assert "d" * 32 not in (tmp_path / "compose.locust.yml").read_text()


# --- the command line ---


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--duration", "5x"], "--duration"),
        (["--mix", "bogus=3"], "--mix"),
        (["--ui", "--stop"], "opposite"),
        (["--ui", "--workers", "0"], "--workers 1 or more"),
        (["--rate", "nan"], "--rate"),
        (["--spawn-rate", "0"], "--spawn-rate"),
        (["--users", "0"], "--users"),
        (["--project", "default"], "production project"),
        (["--target", "http://127.0.0.1:8000"], "Locust container itself"),
        (["--target", "https://errors.example.com"], "--allow-remote-target"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, words):
    before = sorted(p.name for p in tmp_path.iterdir())
    line = one_line_error(run(tmp_path, "load", *args))
    assert words in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def _settle(queue, stored, timeout=30.0):
    clock = Clock()
    state = {"i": 0}

    def pick(seq):
        return seq[min(state["i"], len(seq) - 1)]

    def backlog():
        return pick(queue)

    def count():
        value = pick(stored)
        state["i"] += 1
        return measure.Stored(value, 0)

    found = measure.settled_count(
        count=count, backlog=backlog, timeout_s=timeout, clock=clock, sleep=clock.sleep
    )
    return found, state["i"]


def test_the_baseline_waits_for_an_earlier_backlog():
    # An earlier load's tail: queue 300 -> 0 while the count still rises, then idle.
    assert _settle(queue=[300, 120, 0, 0, 0], stored=[10, 50, 90, 95, 95]) == (
        measure.Stored(95, 0),
        5,
    )


def test_an_idle_project_settles_after_two_samples():
    assert _settle(queue=[0], stored=[7]) == (measure.Stored(7, 0), 2)


def test_other_traffic_in_the_queue_does_not_block_a_settled_count():
    assert _settle(queue=[40], stored=[7]) == (measure.Stored(7, 0), 5)


def test_a_count_that_never_settles_is_refused():
    from provision.errors import KitError

    with pytest.raises(KitError) as refused:
        _settle(queue=[5], stored=list(range(100)), timeout=10.0)
    assert refused.value.line() == (
        "GlitchTip is still storing earlier events (5 queued, the count still moving), so this "
        "run's events could not be told apart: wait until `provision load` can start on an "
        "idle GlitchTip, or give a larger --drain-timeout"
    )


def test_sampler_keeps_the_peak_skips_failed_samples_and_finds_the_drain():
    import time as _time

    from provision.errors import KitError

    values = iter([3, 9, None, 4] + [0] * 10_000)
    ticks = iter(range(10_000))
    totals = iter([0, 2, 4, 6, 8, 10] + [10] * 10_000)

    def backlog():
        value = next(values)
        if value is None:
            raise KitError("valkey restarting")
        return value

    with measure.Sampler(
        backlog,
        lambda: measure.Stored(next(totals) + 5, 0),
        interval_s=0.01,
        clock=lambda: float(next(ticks)),
    ) as sampler:
        _time.sleep(0.3)
    assert sampler.peak == 9
    before = measure.Stored(5, 0)
    # Clock ticks 0, 1 (failed sample), 2, ...: totals 0, 2, 4, 6, 8, 10 at ticks 0, 2, 3, 4, 5, 6.
    assert sampler.drained_at(load_end=3.0, accepted=10, before=before) == 6.0
    assert sampler.drained_at(load_end=3.0, accepted=11, before=before) is None


def test_progress_shows_stats_every_5_s_and_trouble_but_not_the_table():
    from provision.load.run import _LogFilter

    seen: list[str] = []
    now = [0.0]
    logs = _LogFilter(seen.append, clock=lambda: now[0])
    table = "POST     error_gzip     1332     0(0.00%) |      2       0      30      2 |    0.00"
    aggregated = "Aggregated   2642 0(0.00%) |  2  0  32  2 |  12.50  0.00"
    for line in (
        f"locust-headless-1  | {table}",
        f"locust-headless-1  | {aggregated}",
        f"locust-headless-1  | {aggregated}",  # < 5 s later: not repeated
        "locust-headless-1  | Traceback (most recent call last):",
        "locust-headless-1  | SystemExit: 0",
        "locust-headless-1  | [2026-11-26 10:00:00,000] abc/ERROR/locust.runners: worker lost",
    ):
        logs(line)
    now[0] = 12.0
    logs("locust-headless-1  | [2026-11-26 10:00:12,000] abc/INFO/locust.main: --run-time limit "
         "reached, shutting down")  # fmt: skip
    assert seen == [
        "load: 2642 requests, 0 failed, 12.50 req/s, median 2 ms",
        "locust: [2026-11-26 10:00:00,000] abc/ERROR/locust.runners: worker lost",
        "load: run time reached, Locust stops",
    ]
    assert logs.load_end == 12.0


def test_reports_as_a_file_or_a_symlink_is_refused_and_left_alone(tmp_path: Path) -> None:
    """`reports/` must be a directory of the kit's own: a regular file there (not only a
    symbolic link) is refused with the fix, before anything is created."""
    from provision.load.run import new_report_dir

    (tmp_path / "reports").write_text("my notes\n")
    with pytest.raises(UsageError) as refused:
        new_report_dir(tmp_path)
    assert refused.value.message == f"{tmp_path / 'reports'} is not a directory"
    assert refused.value.fix == f"move it away; the kit writes {tmp_path / 'reports'}/"
    assert (tmp_path / "reports").read_text() == "my notes\n"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "reports").symlink_to(elsewhere)
    with pytest.raises(UsageError, match="is not a directory"):
        new_report_dir(linked)
    assert list(elsewhere.iterdir()) == []


def test_a_locust_directory_that_is_a_file_or_a_symlink_is_refused_and_left_alone(
    tmp_path: Path,
) -> None:
    """`locust/` (where the kit copies locustfile.py and payloads.py) must be a directory of the
    kit's own: a regular file or a symbolic link there is refused whole, with the fix, and
    nothing is written through it."""
    from provision.load.run import install_locustfile

    (tmp_path / "locust").write_text("my notes\n")
    with pytest.raises(UsageError) as refused:
        install_locustfile(tmp_path)
    assert refused.value.line() == (
        f"{tmp_path / 'locust'} is not a directory: move it away; the kit writes "
        f"{tmp_path / 'locust'}/"
    )
    assert (tmp_path / "locust").read_text() == "my notes\n"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "locust").symlink_to(elsewhere)
    with pytest.raises(UsageError) as refused:
        install_locustfile(linked)
    assert refused.value.line() == (
        f"{linked / 'locust'} is not a directory: move it away; the kit writes {linked / 'locust'}/"
    )
    assert list(elsewhere.iterdir()) == []


def test_reports_are_named_by_the_utc_second_with_a_suffix_for_the_same_second(
    tmp_path: Path,
) -> None:
    """Two runs in one second keep both reports (`-2`, `-3`...); the 100th is refused whole,
    the directories already there left as they were."""
    import datetime as dt
    import os
    import re

    from provision.errors import KitError
    from provision.load.run import new_report_dir

    moment = dt.datetime(2026, 12, 7, 4, 5, 6, 999_000, tzinfo=dt.UTC)
    reports = tmp_path / "reports"
    first = new_report_dir(tmp_path, moment)
    assert first == reports / "20261207T040506Z"  # to the second
    assert (oct(reports.stat().st_mode & 0o777), oct(first.stat().st_mode & 0o777)) == (
        oct(0o755 & ~_umask()),
        oct(0o755 & ~_umask()),
    )
    assert new_report_dir(tmp_path, moment) == reports / "20261207T040506Z-2"
    assert new_report_dir(tmp_path, moment) == reports / "20261207T040506Z-3"
    for n in range(4, 100):
        (reports / f"20261207T040506Z-{n}").mkdir()
    with pytest.raises(KitError) as refused:
        new_report_dir(tmp_path, moment)
    assert refused.value.line() == f"{reports} has 99 reports from the same second: remove some"
    assert len(os.listdir(reports)) == 99
    # Without a time: now, in UTC.
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    now = new_report_dir(tmp_path)
    after = dt.datetime.now(dt.UTC)
    assert re.fullmatch(r"\d{8}T\d{6}Z", now.name), now.name
    stamp = dt.datetime.strptime(now.name, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert before <= stamp <= after


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_the_wait_for_an_earlier_backlog_is_said_once_with_its_size():
    """The operator is told once why the baseline waits (the queue's size when first seen),
    not on every sample, and not at all when the queue is empty."""
    lines: list[str] = []
    clock = Clock()
    queue = iter([300, 120, 0, 0, 0])
    stored = iter([10, 50, 90, 95, 95])
    found = measure.settled_count(
        count=lambda: measure.Stored(next(stored), 0),
        backlog=lambda: next(queue),
        timeout_s=60.0,
        clock=clock,
        sleep=clock.sleep,
        progress=lines.append,
    )
    assert found == measure.Stored(95, 0)
    assert lines == ["waiting for GlitchTip to store 300 queued events first"]
    lines.clear()
    measure.settled_count(
        count=lambda: measure.Stored(7, 0),
        backlog=lambda: 0,
        timeout_s=60.0,
        clock=clock,
        sleep=clock.sleep,
        progress=lines.append,
    )
    assert lines == []


# --- issue 20: survivors of `make mutation` in provision/load, killed -------------------------


def test_lost_events_are_waited_for_five_unchanged_samples_then_no_longer():
    """The drain after lost events ends after `settle` (5) samples of an empty queue and an
    unchanged count, no sooner and no later: the samples taken are the command's wait."""
    drain = _drain(queue=[4, 0], stored=[0, 7])
    # Samples: queue 4 (count 0), queue 0 (count 7, moved), then five with 7 unchanged.
    assert drain == measure.Drain(2.0, measure.Stored(7, 0), 4, 7)


def test_the_failures_shown_are_the_five_most_frequent():
    rows = "".join(f"POST,kind{n},HTTP 5{n:02d},{n},0,0\n" for n in range(1, 8))
    text = "Method,Name,Error,Occurrences,First Seen,Last Seen\n" + rows
    assert report.parse_failures(text) == [
        "7 x POST kind7: HTTP 507",
        "6 x POST kind6: HTTP 506",
        "5 x POST kind5: HTTP 505",
        "4 x POST kind4: HTTP 504",
        "3 x POST kind3: HTTP 503",
    ]


def test_a_target_with_a_trailing_slash_is_the_same_target():
    assert _target("http://web:8000/") == _target("http://web:8000")
    assert _target("http://web:8000/") == resolve_target(
        None,
        web_service_url="http://web:8000",
        host_header="errors.example.com",
        stack_hosts=("web",),
        allow_remote=False,
    )


def test_an_aggregated_line_locust_cut_short_is_shown_as_it_came():
    from provision.load.run import _LogFilter

    seen: list[str] = []
    logs = _LogFilter(seen.append, clock=lambda: 0.0)
    logs("locust-headless-1  | Aggregated   12 0(0.00%)")
    assert seen == ["load: Aggregated 12 0(0.00%)"]


def test_a_sampler_that_breaks_is_reported_as_the_load_sampler(monkeypatch):
    """An unexpected error while sampling (not a KitError: a bug) ends the sampler's thread;
    Python's report of it names the load sampler, so the operator knows which part broke."""
    import threading

    reported: list[tuple[str, str]] = []
    monkeypatch.setattr(
        threading,
        "excepthook",
        lambda args: reported.append((args.thread.name, repr(args.exc_value))),
    )

    def backlog():
        raise ZeroDivisionError("a bug")

    with measure.Sampler(backlog, interval_s=0.001) as sampler:
        sampler._thread.join(timeout=5)
    assert reported == [("load-sampler", "ZeroDivisionError('a bug')")]


def test_a_sampler_without_a_count_samples_the_backlog_alone():
    """A Sampler built without a count (its default; `run_load` passes one) samples the queue
    only: each sample has no stored count, and the peak is the queue's highest."""
    import threading

    queue = iter([3, 9, 4, 1, 1, 1, 1, 1])
    third = threading.Event()
    calls: list[int] = []

    def backlog() -> int:
        calls.append(1)
        if len(calls) == 3:
            third.set()
        return next(queue, 0)

    with measure.Sampler(backlog, interval_s=0.001) as sampler:
        assert third.wait(timeout=10)
    assert sampler.peak == 9
    assert [(queued, stored) for _when, queued, stored in sampler.samples[:3]] == [
        (3, None),
        (9, None),
        (4, None),
    ]


def test_a_long_duration_is_quoted_cut_to_twenty_characters():
    with pytest.raises(UsageError) as refused:
        parse_duration("9" * 30)
    assert refused.value.message == (
        "--duration '99999999999999999999' is not between 1 s and 24 h"
    )
    assert refused.value.fix == "e.g. --duration 30s, 2m or 1h30m"


def test_this_host_is_found_by_binding_any_free_port_not_a_fixed_one():
    """Whether an address is this machine's is probed by binding a free port (0) on it: a fixed
    port could be taken (here: held by this test) or privileged, and the answer would be no."""
    import errno
    import socket

    from provision.load.options import _is_this_host

    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            holder.bind(("127.0.0.1", 1))
        except OSError as error:  # not root (EACCES) or already held: port 1 is unusable anyway
            assert error.errno in (errno.EACCES, errno.EADDRINUSE)
        assert _is_this_host("127.0.0.1") is True
    finally:
        holder.close()
    assert _is_this_host("192.0.2.1") is False  # TEST-NET-1: no machine's address


def test_the_external_queue_is_read_through_the_engine_given(monkeypatch):
    """The throw-away Valkey container runs on the engine `provision load` talks to (its
    DOCKER_HOST), not on another one."""
    import types

    from provision.stack import external

    engine = object()
    used: list[object] = []

    def runner_for(given):
        used.append(given)
        return lambda image, script, environment: external.ProbeResult(0, "4\n1\n")

    monkeypatch.setattr(external, "engine_runner", runner_for)
    settings = types.SimpleNamespace(
        valkey_image="valkey/valkey:8.1", valkey_url="redis://valkey.example.com:6379/0"
    )
    assert measure.external_queue_lengths(engine, settings, ("q:a", "q:b")) == {"q:a": 4, "q:b": 1}
    assert used == [engine]


def test_a_name_that_resolves_to_nothing_is_not_this_host(monkeypatch):
    """Not seen with glibc (an unknown name raises instead), but a resolver answering an empty
    list must not make a remote target pass as this host: nothing was proven ours."""
    import socket

    from provision.load.options import _is_this_host

    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: [])
    assert _is_this_host("errors.example.com") is False


def test_a_drain_already_done_at_the_load_end_took_no_time_and_saw_no_queue():
    drain = measure.measure_drain(
        accepted=3,
        before=measure.Stored(0, 0),
        count=lambda: measure.Stored(2, 1),
        backlog=lambda: 0,
        load_end=100.0,
        timeout_s=30.0,
        clock=Clock(),
        sleep=lambda seconds: None,
    )
    assert drain == measure.Drain(0.0, measure.Stored(2, 1), 0, 1)


def test_lost_events_settled_half_a_second_after_the_load_drained_in_half_a_second():
    clock = Clock()  # 100.0: the drain starts sampling half a second after the load ended
    drain = measure.measure_drain(
        accepted=10,
        before=measure.Stored(0, 0),
        count=lambda: measure.Stored(7, 0),
        backlog=lambda: 0,
        load_end=99.5,
        timeout_s=30.0,
        clock=clock,
        sleep=clock.sleep,
    )
    # The second sample (101.0) is the first of the settled count: 1.5 s after the load end.
    assert drain == measure.Drain(1.5, measure.Stored(7, 0), 0, 6)
    clock = Clock()
    drain = measure.measure_drain(
        accepted=10,
        before=measure.Stored(0, 0),
        count=lambda: measure.Stored(7, 0),
        backlog=lambda: 0,
        load_end=100.5,
        timeout_s=30.0,
        clock=clock,
        sleep=clock.sleep,
    )
    assert drain == measure.Drain(0.5, measure.Stored(7, 0), 0, 6)


def test_the_drain_says_how_it_goes_every_five_seconds():
    lines: list[str] = []
    clock = Clock()
    totals = iter(range(0, 100))
    measure.measure_drain(
        accepted=10,
        before=measure.Stored(0, 0),
        count=lambda: measure.Stored(next(totals), 0),
        backlog=lambda: 3,
        load_end=100.0,
        timeout_s=12.0,
        clock=clock,
        sleep=clock.sleep,
        progress=lines.append,
    )
    assert lines == [
        "draining: 3 queued, 0 of 10 stored",
        "draining: 3 queued, 5 of 10 stored",
    ]


def test_failures_without_a_count_come_after_counted_ones():
    text = (
        "Method,Name,Error,Occurrences,First Seen,Last Seen\n"
        "POST,store,HTTP 500,N/A,0,0\nPOST,error_gzip,HTTP 403,1,0,0\n"
    )
    assert report.parse_failures(text) == [
        "1 x POST error_gzip: HTTP 403",
        "N/A x POST store: HTTP 500",
    ]


def test_a_sample_taken_at_the_load_end_with_everything_stored_is_the_drain():
    sampler = measure.Sampler(lambda: 0, interval_s=1.0)
    sampler.samples = [(9.0, 4, measure.Stored(2, 0)), (10.0, 0, measure.Stored(5, 0))]
    assert sampler.drained_at(load_end=10.0, accepted=5, before=measure.Stored(0, 0)) == 10.0


def test_a_drain_that_times_out_keeps_its_peak_and_waits_no_longer_than_the_timeout():
    clock = Clock()
    drain = measure.measure_drain(
        accepted=10,
        before=measure.Stored(0, 0),
        count=lambda: measure.Stored(1, 0),
        backlog=lambda: 50,
        load_end=100.0,
        timeout_s=10.5,
        clock=clock,
        sleep=clock.sleep,
    )
    assert drain == measure.Drain(None, measure.Stored(1, 0), 50, 12)
    assert clock.now == 110.5  # the last wait was cut to the deadline


def test_a_run_that_sent_nothing_shows_no_share_of_stored_events():
    result = {
        "duration_s": 30, "users": 20, "workers": 1, "target": "http://web:8000",
        "project": "loadtest", "requests": 0, "failures": 0, "accepted_per_s": 0.0,
        "p50_ms": None, "p95_ms": None, "events_sent": 0, "events_processed": 0,
        "transactions_processed": 0, "processed_per_s": 0.0, "drain_s": 0.0,
        "drain_timeout_s": 120.0, "queue_peak": 0, "report_dir": "reports/x",
        "top_failures": [],
    }  # fmt: skip
    stored = [line for line in summary_lines(result) if line.startswith("  stored ")]
    assert len(stored) == 1 and stored[0].startswith("  stored      0 of 0 events (n/a; ")


def test_stats_csv_whole_with_empty_and_missing_numbers():
    """Every kind's counts and the totals; Locust's "N/A" and empty cells are no number (no
    requests of a kind, no percentile yet), never a crash or a zero latency."""
    text = (
        "Type,Name,Request Count,Failure Count,50%,95%\n"
        "POST,store,5,N/A,12,30\n"
        "POST,message,,1,N/A,\n"
        "POST,transaction,7,0,x,9.5\n"
        ",Aggregated,12,1,N/A,\n"
    )
    stats = report.parse_stats(text)
    assert stats == report.LoadStats(
        requests=12,
        failures=1,
        p50_ms=None,
        p95_ms=None,
        by_kind={
            "store": {"requests": 5, "failures": 0},
            "message": {"requests": 0, "failures": 1},
            "transaction": {"requests": 7, "failures": 0},
        },
    )
    assert stats.accepted == 11
    for broken in ("", "Name,Request Count,Failure Count,50%\nx,1,0,1\n"):
        with pytest.raises(KitError) as refused:
            report.parse_stats(broken)
        assert (refused.value.message, refused.value.fix) == (
            "Locust's stats CSV has no rows or misses columns",
            "see the report's other files",
        )


def test_stats_csv_percentiles_that_are_no_number_are_none_and_spaces_are_read():
    text = "Name,Request Count,Failure Count,50%,95%\nAggregated, 4 ,  ,abc, 7.5 \n"
    assert report.parse_stats(text) == report.LoadStats(
        requests=4, failures=0, p50_ms=None, p95_ms=7.5, by_kind={}
    )


def test_progress_filter_each_kind_of_line_and_the_tail():
    """What reaches the progress from Locust's and Compose's lines: the run-time limit once,
    the aggregated line every 5 s (never one of 0 requests), CRITICAL and the locustfile's
    refusal, Compose's pulls; problems cut to 300 characters; the last 20 lines kept."""
    from provision.load.run import _LogFilter

    seen: list[str] = []
    now = [0.0]
    logs = _LogFilter(seen.append, clock=lambda: now[0])
    lines = [
        "locust-headless-1  | Aggregated   0 0(0.00%) |  0  0  0  0 |  0.00  0.00",
        "locust-headless-1  | Aggregated   10 1(10.00%) |  3  1  9  4 |  2.00  0.10",
        "locust-headless-1  | [t] h/CRITICAL/locust.main: " + "x" * 400,
        "GLITCHTIP_LOAD_DSN is not set",
        " locust Pulling ",
        "locust Pulled",
        "Error response from daemon: pull access denied for locust",
        "locust-headless-1  | [t] h/INFO/locust.main: --run-time limit reached, stopping",
        "locust-headless-1  | [t] h/INFO/locust.main: --run-time limit reached, stopping",
    ]
    for line in lines[:2]:
        logs(line)
    now[0] = 4.9
    logs("locust-headless-1  | Aggregated   20 1(5.00%) |  3  1  9  4 |  3.00  0.10")
    now[0] = 5.0
    logs("locust-headless-1  | Aggregated   30 1(3.33%) |  3  1  9  5 |  4.00  0.10")
    for line in lines[2:]:
        logs(line)
    assert seen == [
        "load: 10 requests, 1 failed, 2.00 req/s, median 4 ms",
        "load: 30 requests, 1 failed, 4.00 req/s, median 5 ms",
        "locust: " + ("[t] h/CRITICAL/locust.main: " + "x" * 400)[:300],
        "locust: GLITCHTIP_LOAD_DSN is not set",
        "compose: locust Pulling",
        "compose: locust Pulled",
        "compose: Error response from daemon: pull access denied for locust",
        "load: run time reached, Locust stops",
    ]
    assert logs.load_end == 5.0
    for number in range(25):
        logs(f"line {number}")
    assert logs.tail == [f"line {number}" for number in range(5, 25)]


class _ValkeyCompose:
    """`compose.run` of `exec -T valkey sh -c SCRIPT sh KEYS...` answering `answer`; the argv
    and timeout it was given are kept."""

    def __init__(self, returncode: int, stdout: str, stderr: str = "") -> None:
        self.answer = (returncode, stdout, stderr)
        self.calls: list[tuple[tuple[str, ...], float]] = []

    def run(self, *args: str, timeout: float):
        from provision.runtime.process import ProcessResult

        self.calls.append((args, timeout))
        return ProcessResult(("docker", "compose", *args), *self.answer)


def test_queue_lengths_asks_valkey_for_each_key_in_one_exec():
    compose = _ValkeyCompose(0, "3\n0\n")
    assert measure.queue_lengths(compose, ["celery", "vtasks:default"]) == {
        "celery": 3,
        "vtasks:default": 0,
    }
    assert compose.calls == [
        (
            ("exec", "-T", "valkey", "sh", "-c",
             'for key in "$@"; do valkey-cli LLEN "$key" || exit 1; done',
             "sh", "celery", "vtasks:default"),
            60,
        )
    ]  # fmt: skip
    nothing = _ValkeyCompose(0, "")
    assert measure.queue_lengths(nothing, []) == {} and nothing.calls == []


@pytest.mark.parametrize(
    "answer",
    [(1, "4\n1\n"), (0, "4\n"), (0, "4\n1\n7\n"), (0, "4\nWRONGTYPE\n"), (0, "")],
)
def test_an_unreadable_external_queue_length_is_one_whole_line(monkeypatch, answer):
    """The external Valkey's answer is refused whole when the probe failed, or when it gave
    another number of lengths than keys, or one that is no number."""
    import types

    from provision.stack import external

    scripts: list[tuple[str, str, dict]] = []

    def runner_for(engine):
        def run(image, script, environment):
            scripts.append((image, script, dict(environment)))
            return external.ProbeResult(*answer)

        return run

    monkeypatch.setattr(external, "engine_runner", runner_for)
    url = "redis://:s3cret@valkey.example.com:6379/0"
    settings = types.SimpleNamespace(valkey_image="valkey/valkey:8.1", valkey_url=url)
    with pytest.raises(KitError) as failed:
        measure.external_queue_lengths(object(), settings, ("q:a", "q:b"))
    assert failed.value.line() == (
        "cannot read the task queue's length from the external Valkey: check valkey_url and "
        "that this host may connect to it (`provision up` preflight)"
    )
    ((image, script, environment),) = scripts
    assert (image, script) == (
        "valkey/valkey:8.1",
        f"for key in 'q:a' 'q:b'; do {external.VALKEY_CLI} LLEN \"$key\" || exit 1; done",
    )
    assert environment == external.valkey_environment(url)  # the URL never on a command line
    assert url not in script
    # No key (no Valkey queue on this major): nothing is asked.
    scripts.clear()
    assert measure.external_queue_lengths(object(), settings, ()) == {}
    assert scripts == []


@pytest.mark.parametrize(
    ("answer", "cause"),
    [
        ((1, "", 'service "valkey" is not running\n'), 'service "valkey" is not running'),
        ((0, "3\n", ""), "3"),  # one length for two keys
        ((0, "3\nWRONGTYPE\n", ""), "3 | WRONGTYPE"),
        ((0, "", "a\nb\nc\n"), "b | c"),
    ],
)
def test_an_unreadable_queue_length_is_one_whole_line(answer, cause):
    with pytest.raises(KitError) as failed:
        measure.queue_lengths(_ValkeyCompose(*answer), ["celery", "other"])
    assert (failed.value.message, failed.value.fix) == (
        f"cannot read the task queue's length from Valkey ({cause})",
        "check that the stack runs: provision status",
    )


@pytest.mark.parametrize(
    ("numbers", "message", "fix"),
    [
        ((0, 1.0, 1, 1, 0.0), "--users must be 1 to 100000", "e.g. --users 20"),
        ((100_001, 1.0, 1, 1, 0.0), "--users must be 1 to 100000", "e.g. --users 20"),
        ((1, 0.0, 1, 1, 0.0),
         "--spawn-rate must be above 0 and at most 10000 users per second", "e.g. --spawn-rate 10"),
        ((1, float("nan"), 1, 1, 0.0),
         "--spawn-rate must be above 0 and at most 10000 users per second", "e.g. --spawn-rate 10"),
        ((1, 10_000.5, 1, 1, 0.0),
         "--spawn-rate must be above 0 and at most 10000 users per second", "e.g. --spawn-rate 10"),
        ((1, 1.0, 65, 1, 0.0), "--workers must be 0 to 64", "0 runs the users in the master"),
        ((1, 1.0, -1, 1, 0.0), "--workers must be 0 to 64", "0 runs the users in the master"),
        ((1, 1.0, 1, 0, 0.0), "--issues must be 1 to 100000", "e.g. --issues 50"),
        ((1, 1.0, 1, 1, -0.5),
         "--rate must be 0 (as fast as answered) to 10000 requests/s per user", "e.g. --rate 2"),
        ((1, 1.0, 1, 1, float("inf")),
         "--rate must be 0 (as fast as answered) to 10000 requests/s per user", "e.g. --rate 2"),
    ],
)  # fmt: skip
def test_each_load_number_out_of_range_is_refused_whole(numbers, message, fix):
    from provision.load.run import _check_numbers

    with pytest.raises(UsageError) as refused:
        _check_numbers(*numbers)
    assert (refused.value.message, refused.value.fix) == (message, fix)
    _check_numbers(100_000, 10_000.0, 64, 100_000, 10_000.0)  # every upper end is accepted
    _check_numbers(1, 0.001, 0, 1, 0.0)
