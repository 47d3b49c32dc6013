"""The project exporter against the fake GlitchTip over real sockets, with GlitchTip 5's manners
(one request per connection, a little latency): counts move only after the worker stores events,
budgets are computed, a GlitchTip outage keeps the last values with `up` 0, a restart of either
side produces no spike, the calls per poll are bounded, and the token never shows."""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fakeglitchtip import start_fake
from project_exporter_world import ORG, make_world, write_config

from provision.monitoring import project_exporter as pe

EXPORTER = Path(pe.__file__)


def exporter_for(path: Path, **kwargs) -> pe.Exporter:
    config = pe.load_config(str(path))
    return pe.Exporter(config, pe.read_token(config.token_file), spread_seconds=0.0, **kwargs)


def value(exporter: pe.Exporter, name: str, **labels: str) -> float | None:
    return exporter.registry.get_sample_value(name, labels or None)


def events(exporter: pe.Exporter, project: str, category: str = "error") -> float | None:
    labels = {"organization": ORG, "project": project, "category": category}
    return value(exporter, "glitchtip_project_events_total", **labels)


def in_window(exporter: pe.Exporter, project: str) -> float | None:
    labels = {"organization": ORG, "project": project}
    return value(exporter, "glitchtip_project_errors_in_budget_window", **labels)


# --- counts and budgets -----------------------------------------------------------------------


def test_counts_move_only_after_the_worker_stores_the_events(fake, tmp_path):
    world = make_world(fake)
    world.send_errors("worker", 2)  # history: an hour in which only `worker` has events
    world.store()
    exporter = exporter_for(write_config(tmp_path, fake.url, world.token))

    assert exporter.poll().ok
    assert events(exporter, "web") == 0 and events(exporter, "worker") == 0  # first poll: baseline
    assert in_window(exporter, "worker") == 2 and in_window(exporter, "web") == 0

    world.send_errors("web", 3)
    world.send_transactions("web", 2)
    assert exporter.poll().ok
    assert events(exporter, "web") == 0  # queued, not stored: GlitchTip does not count them yet

    assert world.store() == 5
    assert exporter.poll().ok
    assert events(exporter, "web") == 3
    assert events(exporter, "web", "transaction") == 2
    assert events(exporter, "worker") == 0
    assert in_window(exporter, "web") == 3

    assert exporter.poll().ok  # nothing new: counters stay
    assert events(exporter, "web") == 3
    world.send_errors("worker", 1)
    world.store()
    assert exporter.poll().ok
    assert events(exporter, "worker") == 1 and in_window(exporter, "worker") == 3
    assert value(exporter, "glitchtip_project_exporter_up") == 1


def test_budgets_come_from_the_project_else_the_default_else_none(fake, tmp_path):
    world = make_world(fake, ("web", "worker", "batch"))
    budgets = {
        "default": {"max_errors": 200, "per_seconds": 86400},
        "web": {"max_errors": 5, "per_seconds": 7200},
    }
    exporter = exporter_for(write_config(tmp_path, fake.url, world.token, error_budgets=budgets))
    world.send_errors("web", 4)
    world.store()
    assert exporter.poll().ok
    web = {"organization": ORG, "project": "web"}
    worker = {"organization": ORG, "project": "worker"}
    assert value(exporter, "glitchtip_project_error_budget_max_errors", **web) == 5
    assert value(exporter, "glitchtip_project_error_budget_window_seconds", **web) == 7200
    assert value(exporter, "glitchtip_project_errors_in_budget_window", **web) == 4
    assert value(exporter, "glitchtip_project_error_budget_max_errors", **worker) == 200
    assert value(exporter, "glitchtip_project_error_budget_window_seconds", **worker) == 86400

    no_default = {"web": {"max_errors": 5, "per_seconds": 3600}}
    exporter = exporter_for(write_config(tmp_path, fake.url, world.token, error_budgets=no_default))
    assert exporter.poll().ok
    assert value(exporter, "glitchtip_project_error_budget_max_errors", **web) == 5
    assert value(exporter, "glitchtip_project_error_budget_max_errors", **worker) is None
    assert in_window(exporter, "worker") is None and in_window(exporter, "batch") is None
    assert events(exporter, "worker") == 0  # counted all the same


def test_the_budget_window_holds_whole_hours_covering_it():
    budget = pe.Budget(max_errors=1, per_seconds=5400)
    assert budget.hours == 2
    now = 10 * 3600 + 600  # 10:10
    buckets = {h * 3600: 1 for h in range(5, 12)}  # 05:00 .. 11:00 (the future bucket)
    start = pe.floor_hour(now) - budget.hours * 3600
    assert sum(c for h, c in buckets.items() if start <= h <= now) == 3  # 08, 09, 10


def test_a_project_created_later_counts_its_first_events(fake, tmp_path):
    world = make_world(fake)
    exporter = exporter_for(write_config(tmp_path, fake.url, world.token))
    assert exporter.poll().ok
    world.add_project("mobile")
    world.send_errors("mobile", 2)
    world.store()
    assert exporter.poll().ok
    assert events(exporter, "mobile") == 2


def test_a_deleted_project_loses_its_series(fake, tmp_path):
    world = make_world(fake)
    exporter = exporter_for(write_config(tmp_path, fake.url, world.token))
    assert exporter.poll().ok
    assert events(exporter, "worker") == 0
    with fake.store.transaction() as state:
        state["projects"][str(world.projects["worker"][0])]["deleted"] = True
    assert exporter.poll().ok
    assert events(exporter, "worker") is None and in_window(exporter, "worker") is None
    assert events(exporter, "web") == 0


# --- outages and restarts -------------------------------------------------------------------


def test_glitchtip_down_keeps_the_last_values_and_a_restart_resumes(tmp_path):
    handle = start_fake(keep_alive=False, latency=0.002)
    world = make_world(handle)
    port = int(handle.url.rsplit(":", 1)[1])
    exporter = exporter_for(write_config(tmp_path, handle.url, world.token))
    assert exporter.poll().ok
    world.send_errors("web", 3)
    world.store()
    assert exporter.poll().ok
    last_success = value(exporter, "glitchtip_project_exporter_last_success_timestamp_seconds")
    assert events(exporter, "web") == 3 and last_success

    handle.stop()  # GlitchTip goes away (its data stays in the store)
    result = exporter.poll()
    assert not result.ok and result.calls == 1, result  # stops at the first failed call
    assert "no answer" in result.error
    assert value(exporter, "glitchtip_project_exporter_up") == 0
    assert events(exporter, "web") == 3 and in_window(exporter, "web") == 3
    assert value(exporter, "glitchtip_project_exporter_last_success_timestamp_seconds") == (
        last_success
    )
    assert value(exporter, "glitchtip_project_exporter_api_requests_total", code="error") == 1
    assert 60 * 0.9 <= exporter.next_delay() <= 60 * 1.1  # retried a poll later, then backs off
    assert not exporter.poll().ok
    assert 120 * 0.9 <= exporter.next_delay() <= 120 * 1.1
    exporter.failures = 30
    assert exporter.next_delay() <= 900 * 1.1

    restarted = start_fake(port=port, store=handle.store, keep_alive=False, latency=0.002)
    try:
        world.handle = restarted
        world.send_errors("web", 2)
        world.store()
        assert exporter.poll().ok
        assert value(exporter, "glitchtip_project_exporter_up") == 1
        assert events(exporter, "web") == 5  # the growth only: no spike after the outage
        assert exporter.next_delay() == 60
    finally:
        restarted.stop()


def test_server_errors_are_counted_by_code_and_stop_the_poll(fake, tmp_path):
    world = make_world(fake)
    exporter = exporter_for(write_config(tmp_path, fake.url, world.token))
    assert exporter.poll().ok
    fake.fail_next(503)
    result = exporter.poll()
    assert not result.ok and result.calls == 1 and "503" in result.error
    assert value(exporter, "glitchtip_project_exporter_api_requests_total", code="503") == 1
    assert value(exporter, "glitchtip_project_exporter_api_requests_total", code="200") == 5
    assert value(exporter, "glitchtip_project_exporter_up") == 0


def test_an_exporter_restart_starts_its_counters_at_zero_without_a_spike(fake, tmp_path):
    world = make_world(fake)
    path = write_config(tmp_path, fake.url, world.token)
    world.send_errors("web", 4)
    world.store()
    first = exporter_for(path)
    assert first.poll().ok and events(first, "web") == 0
    world.send_errors("web", 1)
    world.store()
    assert first.poll().ok and events(first, "web") == 1

    second = exporter_for(path)  # the container restarted: a new process
    assert second.poll().ok
    assert events(second, "web") == 0 and in_window(second, "web") == 5
    world.send_errors("web", 2)
    world.store()
    assert second.poll().ok and events(second, "web") == 2


def test_tracker_counts_growth_new_hours_and_ignores_shrinking():
    tracker = pe.Tracker()
    assert tracker.update({0: 5, 3600: 2}, since=0) == 0  # first poll: baseline
    assert tracker.update({0: 5, 3600: 4, 7200: 1}, since=0) == 3  # growth + a new hour
    assert tracker.update({3600: 3, 7200: 1}, since=3600) == 0  # shrank (retention): nothing
    assert tracker.update({3600: 4, 7200: 1}, since=3600) == 1
    assert pe.Tracker(seen={}).update({0: 2}, since=0) == 2  # a project that appeared later


def test_missing_buckets_count_as_zero_and_answers_are_checked():
    body = {
        "intervals": ["2026-11-26T01:00:00+00:00", "2026-11-26T02:00:00+00:00"],
        "groups": [{"series": {"sum(quantity)": [None, 3]}}],
    }
    hour = 1795654800  # 2026-11-26T01:00:00Z
    assert pe.parse_buckets(body) == {hour: 0, hour + 3600: 3}
    one = ["2026-11-26T01:00:00+00:00"]
    # Each refusal whole: the poll's error line quotes it ("stats_v2 answered an unexpected
    # shape (...)").
    for broken, message in (
        ({"intervals": one, "groups": []}, "not exactly one group"),
        ({"intervals": one, "groups": [{}, {}]}, "not exactly one group"),
        ({"intervals": one, "groups": ["a"]}, "not exactly one group"),
        ({"intervals": one, "groups": [{"series": {"a": [1, 2]}}]}, LENGTHS),
        ({"intervals": one, "groups": [{"series": {"a": 1}}]}, LENGTHS),
        ({"intervals": one, "groups": [{"series": {"a": ["1"]}}]}, "count '1' is not a number"),
        ({"intervals": one, "groups": [{"series": {"a": [True]}}]}, "count True is not a number"),
        ({"intervals": one, "groups": [{"series": {}}]}, "not exactly one series"),
        ({"intervals": one, "groups": [{"series": {"a": [1], "b": [1]}}]}, SERIES),
        ({"intervals": one, "groups": [{"series": [[1]]}]}, "not exactly one series"),
        ({"intervals": "x", "groups": []}, "no intervals"),
        ({"groups": []}, "no intervals"),
        ([], "no intervals"),
    ):
        with pytest.raises(ValueError) as caught:
            pe.parse_buckets(broken)
        assert str(caught.value) == message, broken
    # A float count is read as a whole number; a naive stamp is UTC.
    naive = {"intervals": ["2026-11-26T01:00:00"], "groups": [{"series": {"a": [2.0]}}]}
    assert pe.parse_buckets(naive) == {hour: 2}


LENGTHS = "intervals and values differ in length"
SERIES = "not exactly one series"


# --- manners: bounded calls, Host, no keep-alive --------------------------------------------


def stats_calls(handle) -> list[dict[str, list[str]]]:
    return [
        parse_qs(urlsplit(r.path).query)
        for r in handle.requests
        if urlsplit(r.path).path.endswith("/stats_v2/")
    ]


def test_calls_per_poll_are_bounded_and_follow_the_malformed_link(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(pe, "PAGE_SIZE", 2)  # pages of 2: the Link header is followed
    world = make_world(fake, ("a", "b", "c", "d", "e"))
    exporter = exporter_for(write_config(tmp_path, fake.url, world.token, max_projects=4))
    fake.clear_log()
    result = exporter.poll()
    assert result.ok and result.projects == 4
    lists = [r for r in fake.requests if urlsplit(r.path).path.endswith("/projects/")]
    assert len(lists) == 2  # ceil(max_projects / page) pages, not the fifth project's page
    assert len(fake.requests) == result.calls == 2 + 4 * 2
    queries = stats_calls(fake)
    assert {q["project"][0] for q in queries} == {str(world.projects[s][0]) for s in "abcd"}
    for query in queries:
        assert query["interval"] == ["1h"] and len(query["project"]) == 1
        assert query["start"][0].endswith(":00:00Z") and query["end"][0].endswith("Z")
        assert query["category"][0] in ("error", "transaction")
    assert events(exporter, "e") is None  # beyond max_projects


def test_the_host_header_is_sent_so_allowed_hosts_accepts_the_calls(tmp_path):
    handle = start_fake(keep_alive=False, allowed_hosts=("glitchtip.example.com",))
    try:
        world = make_world(handle)
        path = write_config(tmp_path, handle.url, world.token)
        refused = exporter_for(path).poll()
        assert not refused.ok and "400" in refused.error  # Host web:8000 is not allowed
        path = write_config(tmp_path, handle.url, world.token, host_header="glitchtip.example.com")
        assert exporter_for(path).poll().ok
    finally:
        handle.stop()


def test_a_slow_glitchtip_times_out_instead_of_hanging(tmp_path):
    handle = start_fake(keep_alive=False, latency=0.5)
    try:
        world = make_world(handle)
        config = pe.load_config(str(write_config(tmp_path, handle.url, world.token)))
        exporter = pe.Exporter(config, world.token, spread_seconds=0.0)
        exporter.api._timeout = 0.1
        started = time.monotonic()
        result = exporter.poll()
        assert not result.ok and result.calls == 1 and "no answer" in result.error
        assert time.monotonic() - started < 0.45
    finally:
        handle.stop()


def test_redirects_are_not_followed(tmp_path):
    """A redirect could take the Authorization header to another host."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    path = write_config(tmp_path, f"http://127.0.0.1:{port}", "f" * 64)
    exporter = exporter_for(path)

    import threading

    def answer():
        connection, _ = server.accept()
        connection.recv(65536)
        connection.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:9/steal\r\nContent-Length: 0\r\n\r\n"
        )
        connection.close()

    thread = threading.Thread(target=answer)
    thread.start()
    result = exporter.poll()
    thread.join(timeout=5)
    server.close()
    assert not result.ok and "302" in result.error and result.calls == 1


# --- configuration, token, command line ------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"poll_seconds": 30}, "poll_seconds is 30: at least 60"),
        ({"poll_seconds": "60"}, "poll_seconds must be an integer"),
        ({"max_projects": 0}, "max_projects must be an integer from 1"),
        ({"api_url": "web:8000"}, "api_url must be an http(s) URL"),
        ({"api_url": "http://web:8000/?x=1"}, "api_url must be an http(s) URL"),  # a query
        ({"api_url": "http://user:pw@web:8000"}, "api_url must not carry credentials"),
        ({"organization": "no such/org"}, "organization must be an organization slug"),
        ({"organisation": "acme"}, "unknown key 'organisation'"),
        ({"token_file": "token"}, "token_file must be an absolute path"),
        ({"listen_port": 70000}, "listen_port must be an integer from 1 to 65535"),
        ({"error_budgets": {"default": {"max_errors": 5}}}, "per_seconds is missing"),
        (
            {"error_budgets": {"web": {"max_errors": 5, "per_seconds": 60}}},
            "error_budgets.web.per_seconds must be an integer from 3600",
        ),
        ({"error_budgets": {"bad slug!": {}}}, "neither 'default' nor a project slug"),
        ({"host_header": "a b"}, "host_header must be a host name"),
    ],
)
def test_a_bad_config_is_refused_in_one_line(tmp_path, capsys, change, words):
    path = write_config(tmp_path, "http://127.0.0.1:9", "secret-token-value", **change)
    assert pe.main(["--config", str(path), "--once"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}: ") and words in err[0], err


def test_a_missing_token_file_is_refused(tmp_path, capsys):
    path = write_config(tmp_path, "http://127.0.0.1:9", "x")
    (tmp_path / "glitchtip_api_token").unlink()
    assert pe.main([str(path), "--once"]) == 2
    err = capsys.readouterr().err
    assert "cannot read the API token file" in err and "glitchtip_api_token secret" in err


def test_the_empty_token_message(tmp_path, capsys):
    path = write_config(tmp_path, "http://127.0.0.1:9", "x")
    (tmp_path / "glitchtip_api_token").write_text("  \n")
    assert pe.main(["--config", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: the API token file {tmp_path / 'glitchtip_api_token'} is empty "
        "(run provision up to create it)"
    )


def test_the_token_never_appears_in_output_or_errors(fake, tmp_path, capsys):
    world = make_world(fake)
    path = write_config(tmp_path, fake.url, world.token)
    assert pe.main(["--config", str(path), "--once"]) == 0
    out, err = capsys.readouterr()
    assert "glitchtip_project_exporter_up 1.0" in out
    fake.fail_next(500)
    assert pe.main(["--config", str(path), "--once"]) == 1
    out2, err2 = capsys.readouterr()
    assert "answered 500" in err2
    exporter = exporter_for(path)
    for text in (out, err, out2, err2, repr(exporter.api), repr(exporter.config)):
        assert world.token not in text
    bad = write_config(tmp_path, fake.url, world.token, poll_seconds=1)
    assert pe.main(["--config", str(bad)]) == 2
    assert world.token not in capsys.readouterr().err


def test_runs_as_a_script_and_serves_the_metrics(fake, tmp_path):
    world = make_world(fake)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = write_config(
        tmp_path, fake.url, world.token, listen_port=port, listen_address="127.0.0.1"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    process = subprocess.Popen(
        [sys.executable, str(EXPORTER), "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 15
        text = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
                if "glitchtip_project_exporter_up 1.0" in text:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert "glitchtip_project_exporter_up 1.0" in text
        assert f'glitchtip_project_events_total{{category="error",organization="{ORG}",' in text
        assert "process_resident_memory_bytes" in text
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert process.returncode in (0, -15)
    assert world.token not in out + err
    assert "serving on 127.0.0.1" in err


@pytest.mark.source_text
def test_the_exporter_imports_only_the_standard_library_and_prometheus_client():
    tree = ast.parse(EXPORTER.read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules.add(node.module.split(".")[0])
    assert modules - {"__future__"} <= set(sys.stdlib_module_names) | {"prometheus_client"}
    assert "prometheus_client" in modules


def test_the_config_the_kit_renders_is_accepted():
    """The keys agreed in /tmp/facts/metrics-interfaces.md (M3 renders them)."""
    config = pe.parse_config(
        json.loads(
            """{"api_url": "http://web:8000", "host_header": "glitchtip.example.com",
            "organization": "acme", "poll_seconds": 60, "max_projects": 50,
            "listen_port": 9808, "token_file": "/run/secrets/glitchtip_api_token",
            "error_budgets": {"default": {"max_errors": 200, "per_seconds": 86400},
                              "web": {"max_errors": 10, "per_seconds": 3600}}}"""
        )
    )
    assert config.budget_for("web") == pe.Budget(10, 3600)
    assert config.budget_for("other") == pe.Budget(200, 86400)
    assert config.listen_address == "0.0.0.0"


def test_a_project_deleted_between_the_list_and_its_stats_is_skipped(fake, tmp_path):
    """stats_v2 answers 404 for a project id it does not know (recorded 183)."""
    world = make_world(fake)
    exporter = exporter_for(write_config(tmp_path, fake.url, world.token))
    listed = exporter._list_projects
    exporter._list_projects = lambda: [*listed(), ("ghost", "999")]
    result = exporter.poll()
    assert result.ok and result.calls == 1 + 3 * 2
    assert value(exporter, "glitchtip_project_exporter_api_requests_total", code="404") == 2
    assert events(exporter, "ghost") is None and events(exporter, "web") == 0


def test_the_calls_are_spread(fake, tmp_path):
    world = make_world(fake)
    config = pe.load_config(str(write_config(tmp_path, fake.url, world.token)))
    pauses: list[float] = []
    exporter = pe.Exporter(config, world.token, spread_seconds=0.25, sleep=pauses.append)
    assert exporter.poll().ok
    assert pauses == [0.25] * 4  # before each stats call of the 2 projects
    many = pe.Exporter(config, world.token, spread_seconds=1.0, sleep=pauses.append)
    many._list_projects = lambda: [(f"p{n}", str(n)) for n in range(100)]
    many._poll_project = lambda *args: None
    pauses.clear()
    assert many.poll().ok
    assert len(pauses) == 200 and sum(pauses) <= 0.5 * 60 + 1e-9  # within half the interval


def test_a_failing_stats_call_fails_the_poll_and_keeps_the_values(fake, tmp_path):
    world = make_world(fake)
    exporter = exporter_for(write_config(tmp_path, fake.url, world.token))
    assert exporter.poll().ok
    listed = exporter._list_projects()
    exporter._list_projects = lambda: listed  # the next request is a stats call
    fake.fail_next(502)
    result = exporter.poll()
    assert not result.ok and "answered 502" in result.error and result.calls == 1
    assert value(exporter, "glitchtip_project_exporter_up") == 0
    assert events(exporter, "web") == 0 and in_window(exporter, "web") == 0


def test_a_rejected_token_is_said_with_its_fix(fake, tmp_path):
    world = make_world(fake)
    exporter = exporter_for(write_config(tmp_path, fake.url, "0" * 64))
    result = exporter.poll()
    assert not result.ok and result.error == (
        f"GET /api/0/organizations/{ORG}/projects/ answered 401: the API token is not valid "
        "(any more): run provision up to mint one, then recreate the project-exporter container"
    )
    assert world.token not in result.error


def test_the_loop_logs_failures_without_the_token_and_stops_promptly(tmp_path, caplog):
    import threading

    handle = start_fake(keep_alive=False)
    world = make_world(handle)
    handle.stop()  # GlitchTip is down from the start
    exporter = exporter_for(write_config(tmp_path, handle.url, world.token))
    stop = threading.Event()
    thread = threading.Thread(target=exporter.run, args=(stop,))
    with caplog.at_level("INFO", logger="project-exporter"):
        thread.start()
        deadline = time.monotonic() + 5
        while exporter.failures == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        thread.join(timeout=2)
    assert not thread.is_alive()  # waits on the stop event, not a sleep of poll_seconds
    assert value(exporter, "glitchtip_project_exporter_up") == 0
    assert "poll failed (1 in a row): GET /api/0/organizations/acme/projects/ got no answer" in (
        caplog.text
    )
    assert world.token not in caplog.text


def test_the_loop_logs_each_failure_once_the_recovery_once_and_waits_the_backoff(tmp_path, caplog):
    """`Exporter.run`: a warning per failed poll with its count in a row, one info line when a
    poll succeeds after failures (none for a success after a success), the wait between polls
    from `next_delay`, and the loop ends when `stop` is set."""
    import logging
    import threading

    exporter = exporter_for(write_config(tmp_path, "http://127.0.0.1:9", "not-a-token-1"))
    script = [(False, "no answer A"), (False, "no answer B"), (True, None), (True, None)]
    script.append((False, "no answer C"))
    waits: list[float] = []

    def poll() -> pe.PollResult:
        ok, error = script.pop(0)
        exporter.failures = 0 if ok else exporter.failures + 1
        return pe.PollResult(ok=ok, calls=1, projects=4 if ok else 0, error=error)

    class Stop(threading.Event):
        def wait(self, timeout=None):
            waits.append(timeout)
            if not script:
                self.set()
            return self.is_set()

    exporter.poll = poll
    with caplog.at_level(logging.INFO, logger="project-exporter"):
        exporter.run(Stop())
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "poll failed (1 in a row): no answer A"),
        ("WARNING", "poll failed (2 in a row): no answer B"),
        ("INFO", "poll succeeded again: 4 projects"),
        ("WARNING", "poll failed (1 in a row): no answer C"),
    ]
    assert len(waits) == 5
    assert 60 * 0.9 <= waits[0] <= 60 * 1.1 and 120 * 0.9 <= waits[1] <= 120 * 1.1
    assert waits[2] == waits[3] == 60
    stopped = Stop()
    stopped.set()
    exporter.run(stopped)  # already stopped: no poll at all
    assert len(waits) == 5


# --- issue 20: survivors of `make mutation` in the exporter, killed ----------------------------


def test_sigterm_stops_the_serving_exporter_cleanly(tmp_path, monkeypatch):
    """`docker stop` sends SIGTERM: the exporter ends its loop and exits 0 (Python's default
    would kill it mid-poll). The metrics server is stood in for (no port is bound)."""
    import signal

    served: list[tuple[int, str]] = []
    monkeypatch.setattr(
        pe, "start_http_server", lambda port, address, registry: served.append((port, address))
    )
    polls: list[bool] = []
    original_run = pe.Exporter.run

    def run_after_sigterm(self, stop):
        os.kill(os.getpid(), signal.SIGTERM)
        self.poll = lambda: polls.append(True) or pe.PollResult(True, 0, 0)
        original_run(self, stop)

    monkeypatch.setattr(pe.Exporter, "run", run_after_sigterm)
    path = write_config(tmp_path, "http://127.0.0.1:9", "not-a-token-2", listen_port=19808)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert pe.main(["--config", str(path)]) == 0
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert served == [(19808, "0.0.0.0")]
    assert polls == []  # stopped before its first poll


class _ProjectsOpener:
    """An opener answering the project list with `page` (stats_v2 with empty hours)."""

    def __init__(self, page):
        self.page = page

    def open(self, request, timeout=None):
        import io
        from email.message import Message

        if "/projects/" in request.full_url:
            body = json.dumps(self.page).encode()
        else:
            body = json.dumps({"intervals": [], "groups": [{"series": {"x": []}}]}).encode()

        class Answer(io.BytesIO):
            status = 200
            headers = Message()

        return Answer(body)


def test_a_listed_item_without_a_usable_slug_is_skipped(tmp_path):
    """Not recorded (GlitchTip always lists a slug): an item without one, or whose slug is
    no slug, exports nothing instead of failing the poll or naming a series after it."""
    page = [{"id": 1, "slug": "web"}, {"id": 2}, {"id": 3, "slug": "a b"}, "x"]
    exporter = exporter_for(
        write_config(tmp_path, "http://127.0.0.1:9", "not-a-token-3"),
        opener=_ProjectsOpener(page),
    )
    result = exporter.poll()
    assert (result.ok, result.projects, result.error) == (True, 1, None)
    assert exporter.projects == {"web": "1"}


def test_a_taken_listen_port_is_refused_in_one_line(tmp_path, capsys):
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        path = write_config(
            tmp_path,
            "http://127.0.0.1:9",
            "not-a-token-4",
            listen_port=port,
            listen_address="127.0.0.1",
        )
        assert pe.main(["--config", str(path)]) == 2
    finally:
        holder.close()
    assert capsys.readouterr().err == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use (change listen_port)\n"
    )


@pytest.mark.parametrize("key", ["api_url", "organization"])
def test_an_empty_required_key_is_refused_whole(key):
    data = {"api_url": "http://web:8000", "organization": ORG, key: "  "}
    with pytest.raises(pe.ConfigError) as refused:
        pe.parse_config(data)
    assert str(refused.value) == f"{key} must be a non-empty string"


def test_proxies_of_the_environment_are_not_used(fake, tmp_path, monkeypatch):
    """The exporter talks to GlitchTip directly: an http_proxy in its environment (a dead one
    here) would otherwise carry the token through the proxy, or fail every poll."""
    world = make_world(fake)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    result = exporter_for(write_config(tmp_path, fake.url, world.token)).poll()
    assert (result.ok, result.error) == (True, None)


def test_projects_without_any_budget_export_counts_and_no_budget_series(fake, tmp_path):
    world = make_world(fake)
    exporter = exporter_for(write_config(tmp_path, fake.url, world.token, error_budgets={}))
    assert exporter.poll().ok and exporter.poll().ok
    assert events(exporter, "web") == 0
    assert in_window(exporter, "web") is None


@pytest.mark.parametrize(
    ("change", "line"),
    [
        ([],
         'the configuration must be a JSON object'),
        ({'organisation': 'acme'},
         "unknown key 'organisation' (known: error_budgets, host_header, listen_address, "
         "listen_port, max_projects, poll_seconds, token_file)"),
        ({'api_url': 5},
         'api_url must be a non-empty string'),
        ({'api_url': 'web:8000'},
         "api_url must be an http(s) URL such as http://web:8000, not 'web:8000'"),
        ({'api_url': 'http://web:8000/?x=1'},
         "api_url must be an http(s) URL such as http://web:8000, not 'http://web:8000/?x=1'"),
        ({'api_url': 'ftp://web'},
         "api_url must be an http(s) URL such as http://web:8000, not 'ftp://web'"),
        ({'api_url': 'http://user:pw@web:8000'},
         'api_url must not carry credentials: the token comes from token_file'),
        ({'organization': 'no such/org'},
         "organization must be an organization slug, not 'no such/org'"),
        ({'host_header': 'a b'},
         'host_header must be a host name (and port) such as glitchtip.example.com'),
        ({'host_header': 5},
         'host_header must be a host name (and port) such as glitchtip.example.com'),
        ({'poll_seconds': 30},
         'poll_seconds is 30: at least 60 (one poll a minute at most)'),
        ({'poll_seconds': '60'},
         'poll_seconds must be an integer from 60 to 86400, not "60"'),
        ({'poll_seconds': 86401},
         'poll_seconds must be an integer from 60 to 86400, not 86401'),
        ({'max_projects': 0},
         'max_projects must be an integer from 1 to 1000, not 0'),
        ({'listen_port': 70000},
         'listen_port must be an integer from 1 to 65535, not 70000'),
        ({'listen_port': True},
         'listen_port must be an integer from 1 to 65535, not true'),
        ({'token_file': 'token'},
         'token_file must be an absolute path such as /run/secrets/...'),
        ({'token_file': 5},
         'token_file must be an absolute path such as /run/secrets/...'),
        ({'listen_address': ''},
         'listen_address must be an address such as 0.0.0.0'),
        ({'listen_address': 0},
         'listen_address must be an address such as 0.0.0.0'),
        ({'error_budgets': []},
         'error_budgets must be an object: {"default": {...}, "<slug>": {...}}'),
        ({'error_budgets': {'bad slug!': {}}},
         "error_budgets: 'bad slug!' is neither 'default' nor a project slug"),
        ({'error_budgets': {'web': 3}},
         'error_budgets.web must be an object with max_errors, per_seconds'),
        ({'error_budgets': {'web': {'max_errors': 5, 'per_second': 3600}}},
         'error_budgets.web.per_second is not a budget key (max_errors, per_seconds)'),
        ({'error_budgets': {'web': {'max_errors': 5, 'per_seconds': 3600, 'a': 1, 'b': 2}}},
         'error_budgets.web.a is not a budget key (max_errors, per_seconds)'),
        ({'error_budgets': {'default': {'max_errors': 5}}},
         'error_budgets.default.per_seconds is missing'),
        ({'error_budgets': {'default': {'per_seconds': 3600}}},
         'error_budgets.default.max_errors is missing'),
        ({'error_budgets': {'web': {'max_errors': 5, 'per_seconds': 60}}},
         'error_budgets.web.per_seconds must be an integer from 3600 to 3600000, not 60'),
        ({'error_budgets': {'web': {'max_errors': -1, 'per_seconds': 3600}}},
         'error_budgets.web.max_errors must be an integer from 0 to 1000000000000, not -1'),
        ({'error_budgets': {'web': {'max_errors': 5, 'per_seconds': 1000000000}}},
         'error_budgets.web.per_seconds must be an integer from 3600 to 3600000, not 1000000000'),
    ],
)  # fmt: skip
def test_every_config_refusal_is_one_whole_line(change, line):
    """config.json's refusals compared whole (a word dropped or changed is another line): the
    exporter exits on them, and the line is all an operator reads in its container's log."""
    data = change if isinstance(change, list) else {
        "api_url": "http://web:8000", "organization": ORG, **change}  # fmt: skip
    with pytest.raises(pe.ConfigError) as refused:
        pe.parse_config(data)
    assert str(refused.value) == line


def test_a_project_list_that_is_no_list_fails_the_poll_in_one_line(tmp_path):
    """Not recorded (GlitchTip lists projects as a JSON array): any other JSON fails the poll
    with one line saying so, and no project is exported."""
    exporter = exporter_for(
        write_config(tmp_path, "http://127.0.0.1:9", "not-a-token-5"),
        opener=_ProjectsOpener({"detail": "x"}),
    )
    result = exporter.poll()
    assert (result.ok, result.error) == (False, "the project list is not a JSON list")
    assert exporter.projects == {}


def test_the_metrics_page_names_help_and_labels_every_series(tmp_path):
    """/metrics after one poll of one project, line by line: the names the alert rules and
    dashboards read (monitoring/), each family's help and type, and the labels of each series.
    The `_created` samples and the poll's duration vary run to run and are left out."""
    from prometheus_client import generate_latest

    exporter = exporter_for(
        write_config(tmp_path, "http://127.0.0.1:9", "not-a-token-6"),
        opener=_ProjectsOpener([{"id": 1, "slug": "web"}]),
        clock=lambda: 1765000000.0,
    )
    assert exporter.poll().ok
    lines = [
        line
        for line in generate_latest(exporter.registry).decode().splitlines()
        if not line.startswith("glitchtip_project_exporter_poll_duration_seconds ")
        and "_created{" not in line
        and not line.startswith(("# HELP glitchtip_project_events_created",
                                 "# TYPE glitchtip_project_events_created",
                                 "# HELP glitchtip_project_exporter_api_requests_created",
                                 "# TYPE glitchtip_project_exporter_api_requests_created"))
    ]  # fmt: skip
    labels = 'organization="acme",project="web"'
    assert lines == [
        "# HELP glitchtip_project_events_total Events GlitchTip stored for the project (by "
        "received hour, from stats_v2).",
        "# TYPE glitchtip_project_events_total counter",
        f'glitchtip_project_events_total{{category="error",{labels}}} 0.0',
        f'glitchtip_project_events_total{{category="transaction",{labels}}} 0.0',
        "# HELP glitchtip_project_errors_in_budget_window Error events in the budget window "
        "(whole hourly buckets covering it).",
        "# TYPE glitchtip_project_errors_in_budget_window gauge",
        f"glitchtip_project_errors_in_budget_window{{{labels}}} 0.0",
        "# HELP glitchtip_project_error_budget_max_errors Error events the project's budget "
        "allows per window.",
        "# TYPE glitchtip_project_error_budget_max_errors gauge",
        f"glitchtip_project_error_budget_max_errors{{{labels}}} 200.0",
        "# HELP glitchtip_project_error_budget_window_seconds Length of the project's error "
        "budget window.",
        "# TYPE glitchtip_project_error_budget_window_seconds gauge",
        f"glitchtip_project_error_budget_window_seconds{{{labels}}} 86400.0",
        "# HELP glitchtip_project_exporter_up 1 when the last poll of GlitchTip succeeded.",
        "# TYPE glitchtip_project_exporter_up gauge",
        "glitchtip_project_exporter_up 1.0",
        "# HELP glitchtip_project_exporter_last_success_timestamp_seconds When the last "
        "successful poll ended (Unix time).",
        "# TYPE glitchtip_project_exporter_last_success_timestamp_seconds gauge",
        "glitchtip_project_exporter_last_success_timestamp_seconds 1.765e+09",
        "# HELP glitchtip_project_exporter_poll_duration_seconds How long the last poll took.",
        "# TYPE glitchtip_project_exporter_poll_duration_seconds gauge",
        "# HELP glitchtip_project_exporter_api_requests_total Calls to GlitchTip's API by HTTP "
        'status ("error": no answer).',
        "# TYPE glitchtip_project_exporter_api_requests_total counter",
        'glitchtip_project_exporter_api_requests_total{code="200"} 3.0',
    ]


def test_the_exporters_help_says_what_it_does_and_each_option(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as done:
        pe.main(["--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out == (
        "usage: exporter.py [-h] [--config CONFIG] [--once] [config_path]\n"
        "\n"
        "Export GlitchTip's per-project event counts and error budgets to Prometheus.\n"
        "\n"
        "positional arguments:\n"
        "  config_path      path of config.json (same as --config)\n"
        "\n"
        "options:\n"
        "  -h, --help       show this help message and exit\n"
        "  --config CONFIG  path of config.json\n"
        "  --once           poll once, print the metrics and exit (0 when the poll succeeded, 1 "
        "when not)\n"
    )


@pytest.mark.parametrize("argv", [[], ["--config", "a.json", "b.json"]])
def test_the_config_path_is_given_exactly_once(capsys, monkeypatch, argv):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as done:
        pe.main(argv)
    assert done.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "exporter.py: error: give the path of config.json once: --config PATH (or PATH)"
    )


def test_token_file_refusals_are_whole(tmp_path):
    path = tmp_path / "token"
    with pytest.raises(pe.ConfigError) as missing:
        pe.read_token(str(path))
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(pe.ConfigError) as binary:
        pe.read_token(str(path))
    path.write_text("two words\n")
    with pytest.raises(pe.ConfigError) as two:
        pe.read_token(str(path))
    path.write_text("  tok-123  \n")
    assert pe.read_token(str(path)) == "tok-123"
    assert [str(missing.value), str(binary.value), str(two.value)] == [
        f"cannot read the API token file {path}: No such file or directory (give the service "
        "the glitchtip_api_token secret)",
        f"the API token file {path} is not text",
        f"the API token file {path} holds more than one token-like word",
    ]


def test_serving_logs_where_it_listens_and_what_it_polls(tmp_path, monkeypatch, caplog):
    """The one line `docker logs` shows at start: address, port, GlitchTip URL, organization
    and interval. The metrics server and the loop are stood in for (no port is bound)."""
    import logging

    monkeypatch.setattr(pe, "start_http_server", lambda port, address, registry: None)
    monkeypatch.setattr(pe.Exporter, "run", lambda self, stop: None)
    monkeypatch.setattr(pe, "ProcessCollector", lambda registry: None)
    monkeypatch.setattr(pe.signal, "signal", lambda sig, handler: None)
    path = write_config(
        tmp_path, "http://web:8000", "not-a-token-7", listen_port=19809, poll_seconds=120
    )
    with caplog.at_level(logging.INFO, logger=pe.LOG.name):
        assert pe.main([str(path)]) == 0
    assert [record.getMessage() for record in caplog.records] == [
        "serving on 0.0.0.0:19809; polling http://web:8000 for organization acme every 120s"
    ]


class _BodyOpener:
    """An opener answering the project list with `projects` bytes and stats_v2 with `stats`."""

    def __init__(self, projects: bytes, stats: bytes = b'{"intervals": [], "groups": []}'):
        self.projects, self.stats = projects, stats

    def open(self, request, timeout=None):
        import io
        from email.message import Message

        body = self.projects if "/projects/" in request.full_url else self.stats

        class Answer(io.BytesIO):
            status = 200
            headers = Message()

        return Answer(body)


def test_answers_that_are_too_big_no_json_or_no_stats_fail_the_poll_in_one_whole_line(tmp_path):
    """Not recorded (GlitchTip answers JSON within bounds): a body past MAX_BODY_BYTES, one that
    is no JSON, and a stats_v2 answer of another shape each fail the poll with one line naming
    the call; each call is counted under its status."""
    projects = "/api/0/organizations/acme/projects/"
    big = b"[" + b" " * pe.MAX_BODY_BYTES + b"]"
    page = json.dumps([{"id": 1, "slug": "web"}]).encode()
    cases = [
        (big, None, f"GET {projects} answered more than 8388608 bytes"),
        (b"[" + b" " * (pe.MAX_BODY_BYTES - 2) + b"]", None, None),  # exactly the bound
        (b"<html>", None, f"GET {projects} answered something that is not JSON"),
        (page, b"{}", "stats_v2 answered an unexpected shape (no intervals)"),
    ]
    for number, (body, stats, error) in enumerate(cases):
        opener = _BodyOpener(body) if stats is None else _BodyOpener(body, stats)
        exporter = exporter_for(
            write_config(tmp_path, "http://127.0.0.1:9", f"not-a-token-b{number}"),
            opener=opener,
        )
        result = exporter.poll()
        assert (result.ok, result.error) == (error is None, error), number
        requests = value(exporter, "glitchtip_project_exporter_api_requests_total", code="200")
        assert requests == (2 if stats is not None else 1), number


def test_a_config_file_that_cannot_be_read_or_is_no_json_is_refused_whole(tmp_path):
    missing = tmp_path / "absent.json"
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    wrong = tmp_path / "wrong.json"
    wrong.write_text("[]", encoding="utf-8")
    refusals = []
    for path in (missing, broken, wrong, tmp_path):
        with pytest.raises(pe.ConfigError) as refused:
            pe.load_config(str(path))
        refusals.append(str(refused.value))
    assert refusals == [
        f"cannot read {missing}: No such file or directory",
        f"{broken} is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        f"{wrong}: the configuration must be a JSON object",
        f"cannot read {tmp_path}: Is a directory",
    ]


def test_more_projects_than_max_projects_warns_whole_and_fewer_stop_at_the_last_page(
    fake, tmp_path, monkeypatch, caplog
):
    """Pages of 2 for max_projects 3: the second page holds a fourth project, which is left
    out with one warning naming the setting; an organization with one project is listed in one
    call (no next page), however many pages max_projects would allow."""
    import logging

    monkeypatch.setattr(pe, "PAGE_SIZE", 2)
    world = make_world(fake, ("a", "b", "c", "d"))
    exporter = exporter_for(write_config(tmp_path, fake.url, world.token, max_projects=3))
    fake.clear_log()
    with caplog.at_level(logging.WARNING, logger=pe.LOG.name):
        result = exporter.poll()
    assert (result.ok, result.projects) == (True, 3)
    assert sorted(exporter.projects) == ["a", "b", "c"]
    assert [r.getMessage() for r in caplog.records] == [
        f"organization {ORG} has more than 3 projects: exporting the first 3 (max_projects)"
    ]
    lists = [r for r in fake.requests if urlsplit(r.path).path.endswith("/projects/")]
    assert [parse_qs(urlsplit(r.path).query)["limit"] for r in lists] == [["2"], ["2"]]


def test_an_organization_of_one_project_is_listed_in_one_call(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(pe, "PAGE_SIZE", 2)
    world = make_world(fake, ("a",))
    exporter = exporter_for(write_config(tmp_path, fake.url, world.token, max_projects=6))
    fake.clear_log()
    result = exporter.poll()
    assert (result.ok, result.projects, result.calls) == (True, 1, 1 + 2)
    lists = [r for r in fake.requests if urlsplit(r.path).path.endswith("/projects/")]
    assert len(lists) == 1


def test_an_api_call_is_bounded_by_the_timeout_the_api_was_given(tmp_path):
    """`Api(timeout=...)` bounds each call (the exporter's own default is
    REQUEST_TIMEOUT_SECONDS): a GlitchTip answering after 0.5 s is no answer at 0.1 s, counted
    as an "error" call, and the poll goes on instead of hanging."""
    handle = start_fake(keep_alive=False, latency=0.5)
    try:
        world = make_world(handle)
        config = pe.load_config(str(write_config(tmp_path, handle.url, world.token)))
        exporter = pe.Exporter(config, world.token, spread_seconds=0.0)
        api = pe.Api(config, world.token, exporter.requests, timeout=0.1)
        started = time.monotonic()
        with pytest.raises(pe.ApiFailure) as failed:
            api.get(f"/api/0/organizations/{ORG}/projects/")
        assert time.monotonic() - started < 0.45
        assert (str(failed.value), failed.value.code, api.calls) == (
            f"GET /api/0/organizations/{ORG}/projects/ got no answer (TimeoutError)",
            "error",
            1,
        )
        counted = "glitchtip_project_exporter_api_requests_total"
        assert exporter.registry.get_sample_value(counted, {"code": "error"}) == 1
    finally:
        handle.stop()
