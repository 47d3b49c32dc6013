"""`run_load` end to end without Docker: the kit's own Compose runs tests/load_fake_compose.py,
whose "Locust" sends real events through the load project's DSN to the fake GlitchTip, whose
worker stores them. What the summary counts must be what GlitchTip stored, not what it accepted:
events answered 200 and then lost show as processed < sent, never as 100%."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from cli_run import run
from fakeglitchtip import create_superuser, start_fake

from provision.envfile import read_env_file
from provision.errors import KitError, UsageError
from provision.load.run import RESULT_KEYS, run_load
from provision.load.summary import summary_lines

SCRIPT = Path(__file__).resolve().parent / "load_fake_compose.py"
RUNNING = {"postgres": "running", "valkey": "running", "web": "running", "worker": "running"}


@pytest.fixture
def fake():
    handle = start_fake(worker=True, worker_interval=0.05)
    yield handle
    handle.stop()


@pytest.fixture
def stack(tmp_path, fake, monkeypatch):
    """A deployment whose published port is the fake GlitchTip, and the fake compose."""
    from provision.runtime.compose_binary import compose_command

    directory = tmp_path / "dep"
    directory.mkdir()
    port = fake.url.rsplit(":", 1)[1]
    (directory / "glitchtip.yaml").write_text(f"http_port: {port}\nglitchtip_domain: {fake.url}\n")
    for command in ("init", "render"):
        result = run(directory, command)
        assert result.exit_code == 0, result.output
    env = read_env_file(directory / ".env")
    create_superuser(fake.store, "admin@example.com", env["DJANGO_SUPERUSER_PASSWORD"])
    state_dir = tmp_path / "compose-state"
    state_dir.mkdir()
    binary = state_dir / "fake-compose"
    binary.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{SCRIPT}" "{state_dir}" "$@"\n')
    binary.chmod(0o755)
    monkeypatch.setenv("GLITCHTIP_KIT_COMPOSE", str(binary))
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("PROVISION_API_BACKOFF", "0.01")
    compose_command.cache_clear()

    def state(**values):
        document = {"ps": RUNNING, "sent": 0, "lost": 0, "failures": 0, **values}
        (state_dir / "state.json").write_text(json.dumps(document))

    state()
    yield directory, state, state_dir
    compose_command.cache_clear()


def load(directory, **kwargs):
    lines: list[str] = []
    options = {"duration_s": 1, "drain_timeout_s": 20, "users": 2, "workers": 0, **kwargs}
    return run_load(directory, progress=lines.append, **options), lines


def test_every_accepted_event_stored_is_100_percent(stack):
    directory, state, state_dir = stack
    state(sent=6)
    result, _ = load(directory)
    assert list(result) == [*RESULT_KEYS, "report_html"]
    assert (result["events_sent"], result["events_processed"]) == (6, 6)
    assert result["requests"] == 6 and result["failures"] == 0
    assert result["project"] == "loadtest" and result["drain_s"] is not None
    assert result["accepted_per_s"] == 6.0
    summary = "\n".join(summary_lines(result))
    assert "stored      6 of 6 events (100%" in summary
    report = Path(result["report_dir"])
    assert report.parent == directory / "reports"
    assert (report / "locust_stats.csv").is_file() and (report / "report.html").is_file()
    assert (directory / "locust" / "locustfile.py").is_file()
    calls = (state_dir / "calls.log").read_text().splitlines()
    assert calls[-1].startswith("glitchtip-locust: --profile headless down")  # always removed
    assert not (directory / ".glitchtiprc").exists()  # the production DSN file is not written


def test_events_accepted_then_lost_are_counted_as_lost(stack):
    directory, state, _ = stack
    state(sent=4, lost=2)  # GlitchTip answered 200 six times and stored four
    result, _ = load(directory, drain_timeout_s=15)
    assert (result["events_sent"], result["events_processed"]) == (6, 4)
    summary = "\n".join(summary_lines(result))
    assert "stored      4 of 6 events (67%" in summary
    assert result["processed_per_s"] < result["accepted_per_s"]


def test_failed_requests_are_not_counted_as_sent(stack):
    directory, state, _ = stack
    state(sent=3, lost=2, failures=2)  # two of five requests failed: three events to store
    result, _ = load(directory)
    assert (result["requests"], result["failures"]) == (5, 2)
    assert (result["events_sent"], result["events_processed"]) == (3, 3)


def test_a_stack_that_is_not_running_is_refused_before_any_load(stack):
    directory, state, state_dir = stack
    state(ps={**RUNNING, "worker": "exited", "valkey": ""})
    with pytest.raises(KitError) as refused:
        load(directory)
    assert refused.value.line() == (
        "the stack (glitchtip) is not running: valkey missing, worker exited: start it with "
        "`make start` (provision up), then run the load again"
    )
    calls = (state_dir / "calls.log").read_text()
    assert "up" not in calls.split()  # no Locust started


def test_a_running_web_ui_is_refused(stack):
    directory, state, _ = stack
    state(locust_ps={"locust-master": "running"})
    with pytest.raises(UsageError) as refused:
        load(directory)
    assert refused.value.line() == (
        "the Locust web UI is running (make locust-start): stop it first with "
        "`make locust-stop` (provision load --stop)"
    )


def test_the_production_project_is_refused(stack):
    directory, _, _ = stack
    for project in ("default", "Default"):  # the same slug
        with pytest.raises(UsageError) as refused:
            load(directory, project=project)
        assert refused.value.line() == (
            "the load test would send its events to the production project 'default': name a "
            "dedicated project with --project (default loadtest) or load_project"
        )


@pytest.mark.parametrize("seconds", [0, 0.5, 24 * 3600 + 1])
def test_a_duration_out_of_range_is_refused_whole(stack, seconds):
    directory, _, state_dir = stack
    with pytest.raises(UsageError) as refused:
        load(directory, duration_s=seconds)
    assert refused.value.line() == "the duration must be 1 s to 24 h: e.g. --duration 30s"
    assert not (state_dir / "calls.log").exists()


def test_a_run_that_sent_nothing_is_no_failure(stack):
    """Locust ran and exited 0 without a request (no user got to send in the time given): the
    result says 0 requests; only a failed Locust with no statistics is an error."""
    directory, state, _ = stack
    state(sent=0)
    result, _ = load(directory)
    assert (result["requests"], result["events_sent"], result["events_processed"]) == (0, 0, 0)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"duration_s": 0}, "the duration must be 1 s to 24 h"),
        ({"users": 0}, "--users must be 1 to 100000"),
        ({"spawn_rate": 0}, "--spawn-rate must be above 0"),
        ({"workers": 65}, "--workers must be 0 to 64"),
        ({"distinct_issues": 0}, "--issues must be 1 to 100000"),
        ({"rate": -1}, "--rate must be 0"),
        ({"mix": {"nonsense": 1}}, "the mix needs known kinds"),
        ({"mix": {"store": 0}}, "the mix needs known kinds"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(stack, options, words):
    directory, _, state_dir = stack
    with pytest.raises(UsageError, match=words.replace("(", r"\(")):
        load(directory, **options)
    assert not (state_dir / "calls.log").exists()


def test_locust_that_never_ran_says_why(stack):
    directory, state, state_dir = stack
    state(sent=0, locust_exit=1)
    (state_dir / "locust_stats.csv").unlink(missing_ok=True)

    # The fake writes its CSV even when it exits 1; a Locust that produced no statistics
    # (no requests at all) is reported as failed.
    with pytest.raises(KitError, match=r"Locust failed \(exit 1"):
        load(directory)


# --- the web UI (make locust-start / locust-stop) ------------------------------------------------


def ui_state(state_dir):
    return json.loads((state_dir / "state.json").read_text())


def test_the_web_ui_starts_master_and_workers_with_the_load_projects_dsn(stack):
    from provision.load.run import start_ui, stop_ui

    directory, _, state_dir = stack
    lines: list[str] = []
    started = start_ui(directory, workers=3, distinct_issues=7, rate=2, progress=lines.append)
    port = read_env_file(directory / ".env").get("GLITCHTIP_KIT_LOCUST_PORT", "8089")
    assert started == {
        "url": f"http://127.0.0.1:{port}",
        "project": "loadtest",
        "workers": 3,
        "target": started["target"],
    }
    assert started["target"].startswith("http://web:")
    recorded = ui_state(state_dir)
    assert recorded["ui_workers"] == 3
    env = recorded["ui_env"]
    assert env["GLITCHTIP_KIT_LOCUST_MASTER"] == "locust-master"
    assert env["GLITCHTIP_LOAD_ISSUES"] == "7" and env["GLITCHTIP_LOAD_RATE"] == "2"
    assert "/" in env["GLITCHTIP_LOAD_DSN"] and env["GLITCHTIP_LOAD_DSN"].startswith("http")
    assert not any("warning" in line for line in lines)  # 127.0.0.1: nobody else reaches it
    assert (directory / "locust" / "locustfile.py").is_file()

    with pytest.raises(UsageError, match="the Locust web UI is running"):
        load(directory)  # a headless run would join the UI's workers
    assert stop_ui(directory) is True
    assert ui_state(state_dir)["locust_ps"] == {}
    assert stop_ui(directory) is False  # nothing ran


def test_the_web_ui_on_every_address_warns_and_shows_a_local_url(stack):
    from provision.load.run import start_ui

    directory, _, _ = stack
    lines: list[str] = []
    started = start_ui(directory, overrides={"bind_address": "0.0.0.0"}, progress=lines.append)
    assert started["url"].startswith("http://127.0.0.1:")
    warning = [line for line in lines if line.startswith("warning:")]
    assert len(warning) == 1 and "no login and listens on 0.0.0.0:" in warning[0]


def test_the_web_ui_refuses_no_workers_a_stopped_stack_and_a_failed_start(stack):
    from provision.load.run import start_ui

    directory, state, _ = stack
    with pytest.raises(UsageError) as refused:
        start_ui(directory, workers=0)
    assert refused.value.line() == (
        "the web UI's master generates no load itself: give --workers 1 or more"
    )
    state(ps={**RUNNING, "web": "exited"})
    with pytest.raises(KitError, match="is not running: web exited"):
        start_ui(directory)
    state(ui_fail=True)
    with pytest.raises(KitError) as failed:
        start_ui(directory)
    assert failed.value.message == (
        "cannot start Locust (Error response from daemon: port is already allocated)"
    )
    assert failed.value.fix == (
        "check the image (locust_image) and that the port is free (locust_port)"
    )


def test_stop_without_a_locust_file_does_nothing(tmp_path):
    from provision.load.run import stop_ui

    assert run(tmp_path, "init").exit_code == 0
    assert stop_ui(tmp_path) is False


def test_locust_that_never_ran_names_its_last_lines_and_where_to_look(stack):
    """The whole refusal: Locust's exit status and last log lines, and the fix."""
    directory, state, _ = stack
    state(sent=0, locust_exit=1)
    with pytest.raises(KitError) as failed:
        load(directory)
    assert failed.value.message == (
        "Locust failed (exit 1: [2026-12-06 10:00:05] host/INFO/locust.main: --run-time limit "
        "reached, shutting down)"
    )
    assert failed.value.fix == "see the output above; `provision logs web` shows GlitchTip's side"


def test_statistics_that_cannot_be_copied_out_of_locust_are_one_line_and_locust_is_removed(stack):
    """Locust ran (exit 0) but its statistics cannot be copied out of the stopped container:
    the whole refusal names the file and Compose's own line, and the headless containers are
    removed all the same."""
    directory, state, state_dir = stack
    state(sent=2, no_stats=True)
    with pytest.raises(KitError) as failed:
        load(directory)
    assert (failed.value.message, failed.value.fix) == (
        "cannot copy Locust's locust_stats.csv out of its container (Error: no such file "
        "/tmp/locust_stats.csv)",
        "run the load again; `docker compose cp` needs the stopped container",
    )
    calls = (state_dir / "calls.log").read_text().splitlines()
    assert calls[-2:] == [
        f"glitchtip-locust: cp locust-headless:/tmp/locust_stats.csv {_report_dir(directory)}"
        "/locust_stats.csv",
        "glitchtip-locust: --profile headless down --remove-orphans -t 5",
    ]


def _report_dir(directory):
    """The one report directory a run made."""
    (report,) = (directory / "reports").iterdir()
    return report


def test_stop_removes_the_ui_a_headless_leftover_and_orphans_of_an_older_file(stack):
    """`make locust-stop` removes every Locust container of the deployment: the UI's master and
    workers, a headless master an interrupted run left (profile `headless`, so `--profile '*'`)
    and a container of a service compose.locust.yml no longer has (`--remove-orphans`)."""
    from provision.load.run import start_ui, stop_ui

    directory, state, state_dir = stack
    start_ui(directory)  # writes compose.locust.yml
    state(
        locust_ps={
            "locust-master": "running",
            "locust-worker": "running",
            "locust-headless": "exited",
            "locust-old-worker": "running",
        },
        locust_orphans=["locust-old-worker"],
    )
    assert stop_ui(directory) is True
    assert ui_state(state_dir)["locust_ps"] == {}


def test_stop_talks_to_the_deployment_the_overrides_and_environment_name(stack):
    from provision.load.run import start_ui, stop_ui

    directory, _, state_dir = stack
    start_ui(directory)
    (state_dir / "calls.log").unlink()
    stop_ui(directory, overrides={"compose_project_name": "errors"})
    stop_ui(directory, environ={"GLITCHTIP_KIT_COMPOSE_PROJECT_NAME": "other"})
    calls = (state_dir / "calls.log").read_text().splitlines()
    assert [call.split(":")[0] for call in calls] == [
        "errors-locust",  # ps
        "errors-locust",  # down
        "other-locust",
        "other-locust",
    ]


def test_every_compose_call_of_stop_is_bounded(stack, monkeypatch):
    """A hung `docker compose down` must not hang `make locust-stop` for ever: each call
    carries a timeout (the wait itself is Compose's runner's, tested there)."""
    from provision.load.run import start_ui, stop_ui
    from provision.runtime import process

    directory, _, _ = stack
    start_ui(directory)
    timeouts: list[tuple[str, float | None]] = []
    real_run = process.run

    def recording(argv, *, what, timeout, **kwargs):
        timeouts.append((what, timeout))
        return real_run(argv, what=what, timeout=timeout, **kwargs)

    monkeypatch.setattr(process, "run", recording)
    assert stop_ui(directory) is True
    assert [what for what, _ in timeouts] == ["compose ps -a", "compose --profile *"]
    assert all(timeout is not None and timeout <= 600 for _, timeout in timeouts)


def test_the_web_ui_by_default_runs_one_worker_fifty_issues_as_fast_as_answered(stack):
    """`make locust-start` without options: the documented defaults reach Locust."""
    from provision.load.run import start_ui

    directory, _, state_dir = stack
    started = start_ui(directory)
    assert started["workers"] == 1
    recorded = ui_state(state_dir)
    assert recorded["ui_workers"] == 1
    env = recorded["ui_env"]
    assert (env["GLITCHTIP_LOAD_ISSUES"], env["GLITCHTIP_LOAD_RATE"]) == ("50", "0")


def test_the_web_ui_takes_the_mix_names_its_deployment_and_refuses_in_one_line(stack):
    from provision.load.run import start_ui

    directory, _, state_dir = stack
    start_ui(directory, mix={"store": 3, "message": 1}, environ={
        "GLITCHTIP_KIT_COMPOSE_PROJECT_NAME": "other"})  # fmt: skip
    recorded = ui_state(state_dir)
    assert recorded["ui_env"]["GLITCHTIP_LOAD_MIX"] == (
        "error_gzip=0,error_plain=0,message=1,transaction=0,store=3"
    )
    ups = [c for c in (state_dir / "calls.log").read_text().splitlines() if " up " in f" {c} "]
    assert ups == ["other-locust: up --detach --scale locust-worker=1 locust-master locust-worker"]
    with pytest.raises(UsageError) as refused:
        start_ui(directory, workers=0)
    assert (refused.value.message, refused.value.fix) == (
        "the web UI's master generates no load itself",
        "give --workers 1 or more",
    )


def test_every_compose_call_of_the_web_ui_is_bounded(stack, monkeypatch):
    from provision.load.run import start_ui
    from provision.runtime import process

    directory, _, _ = stack
    timeouts: list[tuple[str, float | None]] = []
    real_run = process.run

    def recording(argv, *, what, timeout, **kwargs):
        timeouts.append((what, timeout))
        return real_run(argv, what=what, timeout=timeout, **kwargs)

    monkeypatch.setattr(process, "run", recording)
    start_ui(directory)
    assert "compose up --detach" in [what for what, _ in timeouts]
    assert all(timeout is not None and timeout <= 600 for _, timeout in timeouts)


def test_the_headless_run_scales_the_workers_asked_for(stack):
    directory, state, state_dir = stack
    state(sent=2)
    load(directory, workers=3)
    assert ui_state(state_dir)["headless_scale"] == "locust-worker=3"
    load(directory, workers=0)  # the master runs the users: no worker, no --scale
    assert ui_state(state_dir)["headless_scale"] is None
    # The services are named: `up` without them would start every service of the file without
    # a profile too (the web UI's master and its workers) beside the headless run. (The profile
    # before `up` is left out: Compose starts a named service whatever its profile, see the
    # ledger's `_run_headless` blocks.)
    ups = [c for c in (state_dir / "calls.log").read_text().splitlines() if " up " in f" {c} "]
    assert [line.split(" up ", 1)[1] for line in ups] == [
        "--scale locust-worker=3 --exit-code-from locust-headless --attach locust-headless "
        "locust-headless locust-worker",
        "--exit-code-from locust-headless --attach locust-headless locust-headless",
    ]


def test_the_headless_run_by_default_is_twenty_users_one_worker_fifty_issues(stack, fake):
    """`provision load` without options: the documented defaults reach Locust, whole."""
    from provision.load.payloads import MIX, format_mix

    directory, state, state_dir = stack
    state(sent=2)
    lines: list[str] = []
    result = run_load(directory, duration_s=1, drain_timeout_s=20, progress=lines.append)
    assert {k: result[k] for k in ("users", "spawn_rate", "workers", "duration_s")} == {
        "users": 20,
        "spawn_rate": 10.0,
        "workers": 1,
        "duration_s": 1,
    }
    recorded = ui_state(state_dir)
    assert recorded["headless_scale"] == "locust-worker=1"
    env = recorded["headless_env"]
    env.pop("GLITCHTIP_KIT_COMPOSE")  # the test's fake Compose and the conftest's rc bound
    env.pop("GLITCHTIP_KIT_RC_CEILING", None)
    assert re.fullmatch(r"http://[0-9a-f]{32}@127\.0\.0\.1:\d+/\d+", env.pop("GLITCHTIP_LOAD_DSN"))
    assert env == {
        "GLITCHTIP_LOAD_ISSUES": "50",
        "GLITCHTIP_LOAD_MIX": format_mix(MIX),
        "GLITCHTIP_LOAD_RATE": "0",
        "GLITCHTIP_KIT_LOAD_TARGET": "http://web:8000",
        "GLITCHTIP_KIT_LOAD_HOST_HEADER": fake.url.removeprefix("http://"),  # glitchtip_domain
        "GLITCHTIP_KIT_LOCUST_MASTER": "locust-headless",
        "LOCUST_USERS": "20",
        "LOCUST_SPAWN_RATE": "10",
        "LOCUST_RUN_TIME": "6s",
        "GLITCHTIP_LOAD_SEND_FOR": "1",
        "LOCUST_CSV": "/tmp/locust",
        "LOCUST_HTML": "/tmp/report.html",
        "LOCUST_EXIT_CODE_ON_ERROR": "0",
        "LOCUST_STOP_TIMEOUT": "5",
        "LOCUST_MODE_MASTER": "true",
        "LOCUST_EXPECT_WORKERS": "1",
        "LOCUST_EXPECT_WORKERS_MAX_WAIT": "60",
    }
    assert "load: 20 users (1 worker) for 1 s against http://web:8000, project loadtest" in lines


def test_a_headless_run_returns_its_whole_result_and_calls_compose_in_order(stack):
    """Every field of the result `summary_lines` and `--json` read, and every Compose call of
    one run, compared whole; only the drain's timing (and the rate derived from it) varies."""
    directory, state, state_dir = stack
    state(sent=6, lost=1, failures=1)  # 7 requests, 1 failed: 6 accepted, 6 stored
    result, lines = load(
        directory, users=3, spawn_rate=1.5, workers=2, distinct_issues=4, rate=2.5, mix={"store": 1}
    )
    report = directory / "reports" / Path(result["report_dir"]).name
    drain_s = result.pop("drain_s")
    assert drain_s is not None and 0 <= drain_s <= 20
    # Stored events over the load and its drain (the drain's unrounded seconds), one decimal.
    per_s = result.pop("processed_per_s")
    low, high = 6 / (1 + drain_s + 0.05), 6 / (1 + max(drain_s - 0.05, 0))
    assert round(low, 1) <= per_s <= round(high, 1) and per_s == round(per_s, 1)
    assert result == {
        "target": "http://web:8000",
        "project": "loadtest",
        "users": 3,
        "spawn_rate": 1.5,
        "workers": 2,
        "duration_s": 1,
        "requests": 7,
        "failures": 1,
        "accepted_per_s": 6.0,
        "p50_ms": 12.0,
        "p95_ms": 30.0,
        "events_sent": 6,
        "events_processed": 6,
        "transactions_processed": 0,
        "drain_timeout_s": 20,
        "queue_keys": ["{vt}:q:ingest", "{vt}:q:default"],
        "queue_peak": 0,
        "by_kind": {"store": {"requests": 7, "failures": 1}},
        "top_failures": [],
        "report_dir": str(report),
        "report_html": str(report / "report.html"),
    }
    assert lines[-2:] == [
        "load: 3 users (2 workers) for 1 s against http://web:8000, project loadtest",
        "load: run time reached, Locust stops",
    ]
    env = ui_state(state_dir)["headless_env"]
    assert (env["GLITCHTIP_LOAD_MIX"], env["GLITCHTIP_LOAD_RATE"]) == (
        "error_gzip=0,error_plain=0,message=0,transaction=0,store=1",
        "2.5",
    )
    assert (env["LOCUST_USERS"], env["LOCUST_SPAWN_RATE"], env["LOCUST_EXPECT_WORKERS"]) == (
        "3",
        "1.5",
        "2",
    )
    llen = (
        'glitchtip: exec -T valkey sh -c for key in "$@"; do valkey-cli LLEN "$key" || exit 1; '
        "done sh {vt}:q:ingest {vt}:q:default"
    )
    calls = [c for c in (state_dir / "calls.log").read_text().splitlines() if c != llen]
    copies = [
        f"glitchtip-locust: cp locust-headless:/tmp/{source} {report / name}"
        for source, name in (
            ("locust_stats.csv", "locust_stats.csv"),
            ("locust_stats_history.csv", "locust_stats_history.csv"),
            ("locust_failures.csv", "locust_failures.csv"),
            ("locust_exceptions.csv", "locust_exceptions.csv"),
            ("report.html", "report.html"),
        )
    ]
    assert calls == [
        "glitchtip: ps -a --format json",
        "glitchtip-locust: ps -a --format json",
        "glitchtip-locust: --profile headless up --scale locust-worker=2 --exit-code-from "
        "locust-headless --attach locust-headless locust-headless locust-worker",
        *copies,
        "glitchtip-locust: --profile headless down --remove-orphans -t 5",
    ]


def test_the_headless_run_is_bounded_by_locusts_run_time_the_workers_wait_and_two_minutes(
    stack, monkeypatch
):
    """A hung headless run must end, but never before Locust could have finished: its bound
    is the run time Locust is given (the duration and 5 s of grace), the 60 s the master waits
    for its workers, and two minutes for Compose to start and stop the containers."""
    from provision.runtime import compose as compose_module

    directory, state, _ = stack
    state(sent=1)
    bounds: list[tuple[tuple[str, ...], float | None]] = []
    real_stream = compose_module.Compose.stream

    def recording(self, *args, on_line, env=None, timeout=None):
        bounds.append((args[:3], timeout))
        return real_stream(self, *args, on_line=on_line, env=env, timeout=timeout)

    monkeypatch.setattr(compose_module.Compose, "stream", recording)
    load(directory, duration_s=7, workers=2)
    assert bounds == [(("--profile", "headless", "up"), 7 + 5 + 60 + 120)]


def test_a_failed_stop_names_composes_last_two_lines(stack):
    from provision.load.run import start_ui, stop_ui

    directory, state, _ = stack
    start_ui(directory)
    state(
        locust_ps={"locust-master": "running"},
        down_exit=1,
        down_error=[
            " Container glitchtip-locust-locust-master-1  Stopping",
            " Container glitchtip-locust-locust-master-1  Error while Stopping",
            "Error response from daemon: cannot stop container: permission denied",
        ],
    )
    with pytest.raises(KitError) as failed:
        stop_ui(directory)
    assert (failed.value.message, failed.value.fix) == (
        "cannot stop Locust (Container glitchtip-locust-locust-master-1  Error while Stopping | "
        "Error response from daemon: cannot stop container: permission denied)",
        "see `docker ps`",
    )


def test_the_web_ui_on_every_ipv6_address_warns_in_one_whole_line(stack):
    from provision.load.run import start_ui

    directory, _, _ = stack
    lines: list[str] = []
    started = start_ui(directory, overrides={"bind_address": "::"}, progress=lines.append)
    port = read_env_file(directory / ".env").get("GLITCHTIP_KIT_LOCUST_PORT", "8089")
    assert started["url"] == f"http://127.0.0.1:{port}"
    assert lines[-1] == (
        f"warning: Locust's web UI has no login and listens on :::{port} (bind_address): "
        "anyone who reaches it can start a load; stop it with make locust-stop when done"
    )


def test_the_load_writes_no_rc_file_where_it_is_run_and_passes_its_options(stack, monkeypatch):
    """`provision load` run from another directory leaves no `.glitchtiprc` there (the load
    project's DSN is never written), and Locust gets the --issues asked for; the rate of
    stored events is over the load and its drain, not the drain's bound."""
    directory, state, state_dir = stack
    elsewhere = directory.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    state(sent=6)
    result, _ = load(directory, distinct_issues=7)
    assert list(elsewhere.iterdir()) == []
    assert ui_state(state_dir)["headless_env"]["GLITCHTIP_LOAD_ISSUES"] == "7"
    assert result["drain_s"] is not None
    assert result["processed_per_s"] == pytest.approx(6 / (1 + result["drain_s"]), abs=0.3)


class _SplitClock:
    """The run's clock for a test: Locust's "run time reached" line read at 100.0 s (the users
    stopped sending GRACE_S earlier, at 95.0), every sample of the sampler's thread at
    `sampled_at`, and real seconds from 100.0 on for anything after the line (a drain measured
    after Locust, which this test must not reach, still ends at its bound)."""

    def __init__(self, sampled_at: float) -> None:
        import threading
        import time

        self.sampled_at, self.threading, self.time = sampled_at, threading, time
        self.line_read_at: float | None = None

    def __call__(self) -> float:
        if self.threading.current_thread().name == "load-sampler":
            return self.sampled_at
        if self.line_read_at is None:
            self.line_read_at = self.time.monotonic()
            return 100.0
        return 100.0 + self.time.monotonic() - self.line_read_at


def test_a_drain_seen_by_the_samples_of_the_quiet_tail_is_timed_from_the_end_of_sending(stack):
    """Locust runs GRACE_S past the users' last send: when the samples taken during that quiet
    tail already show every accepted event stored, the drain is over before Locust is gone and
    is timed from the end of sending (95.0 s) to that sample (95.7 s), with no drain measured
    after Locust. 6 events stored over the 1 s load and its 0.7 s drain: 3.5 per second (one
    decimal)."""
    directory, state, _ = stack
    state(sent=6, tail_samples=5)
    result, _ = load(directory, sample_interval_s=0.01, clock=_SplitClock(95.7))
    figures = ("events_sent", "events_processed", "transactions_processed", "drain_s")
    assert {key: result[key] for key in (*figures, "processed_per_s", "queue_peak")} == {
        "events_sent": 6,
        "events_processed": 6,
        "transactions_processed": 0,
        "drain_s": 0.7,
        "processed_per_s": 3.5,
        "queue_peak": 0,
    }
