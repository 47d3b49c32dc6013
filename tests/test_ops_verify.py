"""`provision verify` against the fake GlitchTip over real HTTP (uWSGI manners: one request per
connection), with each failure it must report: the worker down (the event never arrives), the
token revoked, a 5xx, unhealthy services, a full disk, an untrusted or expiring certificate."""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import ssl
import subprocess
import threading

import pytest
from cli_run import run
from click.testing import CliRunner
from fakeglitchtip import create_superuser, process_pending, start_fake
from ops_fakes import FakeEngine

from provision.cli import cli
from provision.envfile import read_env_file
from provision.ops.verify import CHECKS, check_line, run_verify
from provision.runtime.engine import ContainerState
from provision.stack.context import StackContext

ADMIN = "admin@example.com"
PASSWORD = "admin-Passw0rd-123"


def container(service, state="running", health="healthy", exit_code=None):
    return ContainerState(service, service, "glitchtip", state, health, exit_code, "image")


HEALTHY = [
    container("postgres"), container("valkey"), container("web"), container("worker"),
    container("migrate", "exited", None, 0),
]  # fmt: skip


def deploy(directory, fake, domain=None):
    """A deployment directory whose settings point at the fake, provisioned through the CLI."""
    port = fake.url.rsplit(":", 1)[1]
    lines = [f"http_port: {port}", f"glitchtip_domain: {domain or fake.url}"]
    (directory / "glitchtip.yaml").write_text("\n".join(lines) + "\n")
    env = {"PROVISION_API_BACKOFF": "0.01"}
    with contextlib.chdir(directory):  # create-project writes .env and .glitchtiprc here
        result = CliRunner().invoke(
            cli,
            ["create-project", "--url", fake.url, "--org", "GlitchTip", "--project", "default",
             "--admin-email", ADMIN, "--admin-password", PASSWORD],
            env=env,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    return directory


@pytest.fixture
def fake():
    handle = start_fake(worker=True, worker_interval=0.1)
    create_superuser(handle.store, ADMIN, PASSWORD)
    yield handle
    handle.stop()


class QuietQueue:
    """`compose exec valkey` answering a drained queue: nothing waiting, unacked, failed or held
    by a gone worker."""

    def run(self, *argv, timeout=None):
        from provision.runtime.process import ProcessResult

        keys = argv[argv.index("-c") + 3 :]  # sh -c SCRIPT sh KEY...: LLEN of each first
        values = ["0"] * len(keys) + ["0", "none", "0", "0", "1048576", "268435456", "1700000000"]
        return ProcessResult(tuple(argv), 0, "\n".join(values) + "\n", "")


def context(directory, containers=HEALTHY):
    engine = FakeEngine(containers, directory)
    return StackContext(
        directory=directory,
        environ={},
        engine_factory=lambda: engine,
        compose_factory=lambda settings: QuietQueue(),
    )


def by_name(report):
    return {check.name: check for check in report.checks}


def test_a_working_deployment_passes_every_check_and_reports_the_latency(fake, tmp_path):
    ctx = context(deploy(tmp_path, fake))
    seen = []
    report = run_verify(ctx, event_timeout=10, min_free_gib=0, on_check=seen.append)
    assert [c.name for c in report.checks] == list(CHECKS) == [c.name for c in seen]
    assert report.ok, [check_line(c) for c in report.checks]
    event = by_name(report)["event"]
    assert 0 < event.data["latency_s"] < 10 and "processed in" in event.detail
    assert event.data == {
        "event_id": event.data["event_id"],
        "latency_s": event.data["latency_s"],
        "project": "glitchtip/glitchtip-kit-verify",
        "issue_resolved": True,
    }
    assert event.detail.startswith(f"event {event.data['event_id'][:8]} processed in ")
    assert len(event.data["event_id"]) == 32
    assert "user admin@example.com" in by_name(report)["token"].detail
    assert "5 services" not in by_name(report)["services"].detail  # migrate exited 0: not running
    assert by_name(report)["services"].detail == "4 services running and healthy"
    posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/store/")]
    assert len(posts) == 1  # one event, never repeated


def test_the_test_event_is_what_glitchtip_shows_for_it(fake, tmp_path, monkeypatch):
    """The event verify sends lands in the user's `glitchtip-kit-verify` project: its id (the
    one verify then looks for), the time it was sent, and the platform, level, logger and
    message GlitchTip shows on it, whole. The store answers 500 here, so only the send runs."""
    import time

    import httpx

    from provision.ops import verify

    sent: list[dict] = []
    real_client = verify._client

    def capturing_client(timeout: float = verify.HTTP_TIMEOUT):
        forward = real_client(timeout)

        def handle(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/store/"):
                sent.append(json.loads(request.content))
                return httpx.Response(500)
            return forward.send(request)

        return httpx.Client(transport=httpx.MockTransport(handle))

    monkeypatch.setattr(verify, "_client", capturing_client)
    ctx = context(deploy(tmp_path, fake))
    before = time.time()
    report = run_verify(ctx, checks=["event"], event_timeout=1)
    assert by_name(report)["event"].detail == "the DSN's store endpoint answered HTTP 500"
    [event] = sent
    assert re.fullmatch(r"[0-9a-f]{32}", event["event_id"])
    assert before <= event["timestamp"] <= time.time()
    assert event == {
        "event_id": event["event_id"],
        "timestamp": event["timestamp"],
        "platform": "python",
        "level": "info",
        "logger": "provision.verify",
        "message": "provision verify: test event",
    }


def test_worker_down_the_event_never_arrives(tmp_path):
    fake = start_fake(worker=False)
    try:
        create_superuser(fake.store, ADMIN, PASSWORD)
        ctx = context(deploy(tmp_path, fake))
        # An older event was processed while the worker ran: the check must look for its own.
        run_verify(ctx, checks=["event"], event_timeout=0.1)
        assert process_pending(fake.store, fake.queue) == 1
        report = run_verify(ctx, event_timeout=1.0, min_free_gib=0)
    finally:
        fake.stop()
    checks = by_name(report)
    assert not report.ok and [c.name for c in report.failed()] == ["event"]
    assert re.fullmatch(
        r"event [0-9a-f]{8} was accepted but not processed within 1 s \(not seen yet\): is "
        r"the worker running\? \(`provision logs worker`\)",
        checks["event"].detail,
    ), checks["event"].detail
    assert checks["event"].seconds >= 1.0


def test_a_revoked_token_fails_the_token_check_and_is_never_shown(fake, tmp_path):
    ctx = context(deploy(tmp_path, fake))
    token = read_env_file(tmp_path / ".env")["GLITCHTIP_API_TOKEN"]
    with fake.store.transaction() as state:
        state["tokens"].clear()
    report = run_verify(ctx, event_timeout=1.0, min_free_gib=0, checks=["token", "event"])
    checks = by_name(report)
    assert not checks["token"].ok
    assert checks["token"].detail == (
        "the API token in .env is not accepted (revoked?): run `provision up`"
    )
    assert not checks["event"].ok
    assert token not in json.dumps(report.as_dict())


def test_a_server_error_fails_the_database_check(fake, tmp_path):
    ctx = context(deploy(tmp_path, fake))
    fake.fail_next(500)
    report = run_verify(ctx, checks=["settings"])
    assert not report.ok and "/api/settings/ (reads the database) answered HTTP 500" in (
        report.checks[0].detail
    )
    assert run_verify(ctx, checks=["settings"]).ok  # the fault hit one request only


def test_unreachable_glitchtip_fails_the_http_checks(fake, tmp_path):
    ctx = context(deploy(tmp_path, fake))
    fake.stop()
    report = run_verify(ctx, event_timeout=1.0, checks=["url", "health", "settings", "token"])
    assert not any(check.ok for check in report.checks)
    assert all("no answer from" in check.detail for check in report.checks)


def test_unhealthy_services_and_a_full_disk_are_named(fake, tmp_path):
    sick = [*HEALTHY[:3], container("worker", health="unhealthy"),
            container("migrate", "exited", None, 1)]  # fmt: skip
    ctx = context(deploy(tmp_path, fake), sick)
    report = run_verify(ctx, checks=["services", "disk"], min_free_gib=10**6)
    checks = by_name(report)
    assert checks["services"].detail == (
        "not healthy: worker unhealthy, migrate exited (1) (see `provision logs SERVICE`)"
    )
    assert not checks["disk"].ok and "Docker data root" in checks["disk"].detail
    assert "deployment dir" in checks["disk"].detail


def test_cli_prints_a_line_per_check_and_exits_3_on_failure(tmp_path, monkeypatch):
    fake = start_fake(worker=False)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    try:
        create_superuser(fake.store, ADMIN, PASSWORD)
        directory = deploy(tmp_path, fake)
        result = run(directory, "verify", "--event-timeout", "1", "--min-free-gib", "0")
        as_json = run(directory, "verify", "--skip", "event", "--skip", "services", "--json",
                      "--skip", "queue", "--min-free-gib", "0")  # fmt: skip
    finally:
        fake.stop()
    assert result.exit_code == 3, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines[:-1]] == list(CHECKS)
    # services and queue (no engine: nothing to read) and event
    assert lines[-1] == "verify: 3 of 8 checks FAILED"
    assert lines[5].startswith("ok   disk") and lines[6].startswith("FAIL queue")
    assert lines[7].startswith("FAIL event")
    token = read_env_file(directory / ".env")["GLITCHTIP_API_TOKEN"]
    assert token not in result.output and token not in as_json.output
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert document["ok"] and [c["name"] for c in document["checks"]] == [
        "url", "health", "settings", "token", "disk"
    ]  # fmt: skip


# --- https: the certificate is verified and its expiry reported -----------------------------


def certificate(tmp_path, days):
    key, cert = tmp_path / f"key{days}.pem", tmp_path / f"cert{days}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
         "-out", cert, "-days", str(days), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/_health/" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def https_server(tmp_path):
    servers = []

    def start(days):
        key, cert = certificate(tmp_path, days)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"https://127.0.0.1:{server.server_address[1]}", cert

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def trust(monkeypatch):
    """Make the kit's one TLS context trust a test certificate (as a real CA bundle would)."""
    from provision.api import client

    def add(cert):
        context = ssl.create_default_context(cafile=str(cert))
        monkeypatch.setattr(client, "_TLS", [context])

    return add


def test_https_certificate_verified_with_days_to_expiry(fake, tmp_path, https_server, trust):
    url, cert = https_server(30)
    ctx = context(deploy(tmp_path, fake, domain=url))
    untrusted = run_verify(ctx, checks=["url"])
    assert not untrusted.ok and "CERTIFICATE_VERIFY_FAILED" in untrusted.checks[0].detail
    trust(cert)
    trusted = run_verify(ctx, checks=["url"])
    assert trusted.ok, trusted.checks[0].detail
    assert trusted.checks[0].detail == f"{url} answers; certificate valid, expires in 30 days"


def test_a_certificate_about_to_expire_fails(fake, tmp_path, https_server, trust):
    url, cert = https_server(5)
    ctx = context(deploy(tmp_path, fake, domain=url))
    trust(cert)
    report = run_verify(ctx, checks=["url"])
    assert not report.ok
    assert report.checks[0].detail == f"the certificate of {url} expires in 5 days: renew it"


# --- issue 18: the test events go to the kit's own project and do not pile up ---


def test_the_test_events_go_to_the_kits_own_project_and_leave_one_resolved_issue(fake, tmp_path):
    ctx = context(deploy(tmp_path, fake))
    user_project = fake.store.snapshot()["projects"]
    assert [p["slug"] for p in user_project.values()] == ["default"]
    for _ in range(3):
        report = run_verify(ctx, event_timeout=10, min_free_gib=0, checks=["token", "event"])
        assert report.ok, [check_line(c) for c in report.checks]
    event_detail = by_name(report)["event"].detail
    state = fake.store.snapshot()
    slugs = {p["id"]: p["slug"] for p in state["projects"].values()}
    assert sorted(slugs.values()) == ["default", "glitchtip-kit-verify"]  # created once
    default_id = next(i for i, slug in slugs.items() if slug == "default")
    assert not [e for e in state["events"].values() if e["project_id"] == default_id]
    issues = list(state["issues"].values())
    assert len(issues) == 1 and issues[0]["count"] == 3, event_detail  # one issue, not one per run
    assert issues[0].get("status") == "resolved", event_detail
    event = by_name(report)["event"]
    assert "glitchtip/glitchtip-kit-verify" in event.detail and "issue resolved" in event.detail
    assert "the DSN in .glitchtiprc is a key of glitchtip/default" in event.detail


def test_a_glitchtiprc_dsn_that_is_no_key_of_its_project_fails_the_event_check(fake, tmp_path):
    ctx = context(deploy(tmp_path, fake))
    rc = tmp_path / ".glitchtiprc"
    text = rc.read_text()
    url = next(line for line in text.splitlines() if line.startswith("url = "))
    key = url.split("//", 1)[1].split("@", 1)[0]
    rc.write_text(text.replace(key, "0" * 32))
    report = run_verify(ctx, event_timeout=10, checks=["event"])
    assert not report.ok
    assert "the DSN in .glitchtiprc is not a key of glitchtip/default" in report.checks[0].detail


def test_a_bad_given_token_is_named_as_given_and_the_event_check_does_not_wait(fake, tmp_path):
    """`verify --token BAD`: the token given is rejected (not "the token in .env"), and the
    event check fails at once instead of waiting --event-timeout for an event it cannot see."""
    import time

    directory = deploy(tmp_path, fake)
    began = time.monotonic()
    result = run(directory, "verify", "--token", "0123456789abcdef", "--event-timeout", "30")
    took = time.monotonic() - began
    assert result.exit_code == 3, result.output
    lines = {
        line.split()[1]: line for line in result.output.splitlines() if line[:4] in ("ok  ", "FAIL")
    }
    assert (
        "the API token given with --token / GLITCHTIP_API_TOKEN is not accepted" in lines["token"]
    )
    assert "in .env" not in lines["token"]
    assert lines["event"].startswith("FAIL") and "not sent" in lines["event"]
    assert took < 10
    posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/store/")]
    assert posts == []


def test_why_an_exception_failed_is_one_short_line() -> None:
    """verify's failure detail: the exception's class and its message on one line (a
    multi-line error, e.g. from the TLS stack, folded), cut at 160 characters; the class alone
    when the message is empty."""
    from provision.ops.verify import _why

    assert _why(OSError("connection\n   refused\tby peer")) == "OSError: connection refused by peer"
    assert _why(TimeoutError()) == "TimeoutError"
    assert _why(ValueError("x" * 500)) == "ValueError: " + "x" * 160


def test_run_verify_refuses_a_check_it_does_not_have_naming_the_first(tmp_path):
    """A caller of `run_verify` (upgrade, restore, the CLI) naming no check it has gets one
    line naming the first unknown name and every check there is, before anything is run."""
    from provision.errors import UsageError

    ctx = StackContext(tmp_path, environ={})
    with pytest.raises(UsageError) as refused:
        run_verify(ctx, checks=["health", "evnet", "dsik"])
    assert refused.value.message == "no check named 'evnet'"
    assert refused.value.fix == (
        "choose from url, health, settings, token, services, disk, queue, event"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_worker_that_crashed_since_start_fails_the_services_check(fake, tmp_path):
    """Running and healthy now, but restarted a minute ago: verify names it (stack/liveness)
    with where to look, as `up` does."""
    import time

    crashed = ContainerState(
        "p-worker-1", "worker", "glitchtip", "running", "healthy", None, "image",
        restart_count=2, started_at=time.time() - 60,
    )  # fmt: skip
    ctx = context(deploy(tmp_path, fake), [*HEALTHY[:3], crashed, HEALTHY[4]])
    report = run_verify(ctx, checks=["services"])
    assert by_name(report)["services"].detail == (
        "worker crashed and was restarted 2 time(s) (see `provision logs SERVICE`)"
    )
    assert not report.ok


def test_the_verify_event_is_an_info_level_message_of_the_kits_project(fake, tmp_path):
    """The event verify sends shows in GlitchTip as what it is: an info message of the kit's
    own project (an event without a level is an error, GlitchTip's default), never an error
    in the user's project."""
    ctx = context(deploy(tmp_path, fake))
    assert run_verify(ctx, checks=["token", "event"], event_timeout=10).ok
    state = fake.store.snapshot()
    projects = {project["id"]: project["name"] for project in state["projects"].values()}
    issues = [(projects[i["project_id"]], i["level"]) for i in state["issues"].values()]
    assert issues == [("GlitchTip kit verify", "info")]


def test_the_queue_of_a_swarm_stack_is_not_read_through_compose(tmp_path):
    """A Swarm stack has no compose project whose valkey `exec` could reach: the queue check
    says it did not look, instead of failing on a compose call."""

    class NoCompose:
        def run(self, *argv, timeout=None):
            raise AssertionError(f"compose was called: {argv}")

    (tmp_path / "glitchtip.yaml").write_text("target: swarm\n")
    ctx = StackContext(directory=tmp_path, environ={}, compose_factory=lambda s: NoCompose())
    report = run_verify(ctx, checks=["queue"])
    assert [(c.name, c.ok, c.detail) for c in report.checks] == [
        ("queue", True, "not checked: the kit reads the queue of a compose deployment only")
    ]


def test_certificate_days_count_from_the_time_given_to_the_certificates_end(
    tmp_path, https_server, trust
):
    """The days left are counted from `now` when one is given (else the clock), to the very
    second the certificate the server presents ends: 2.5 days before it, 2.5; after it, less
    than 0."""
    from provision.ops.verify import certificate_days

    url, cert = https_server(30)
    trust(cert)
    end = subprocess.run(
        ["openssl", "x509", "-enddate", "-noout", "-in", cert],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    ends = ssl.cert_time_to_seconds(end.strip().removeprefix("notAfter="))
    assert certificate_days(url, now=ends - 2.5 * 86400) == 2.5
    assert certificate_days(url, now=ends + 86400) == -1.0
    assert 29 < certificate_days(url) <= 30  # from the clock: issued just now for 30 days
