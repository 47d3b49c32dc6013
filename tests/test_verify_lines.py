"""`provision verify`'s check details read whole: what each check says when it passes and each
way it fails, against a small local HTTP server answering what the test sets (an HTML page
where JSON belongs, a status code), the stand-in engine and real directories.

test_ops_verify.py runs verify against the fake GlitchTip and reads most details by substring;
these compare the whole detail (numbers masked), so a reworded, truncated or case-changed line
fails here (issue 20: `check_settings`, `check_token`, `check_disk`, `check_services` and
`check_event` kept surviving mutants of their messages)."""

from __future__ import annotations

import http.server
import re
import shutil
import threading
import typing

import pytest
from ops_fakes import FakeEngine

from provision.ops import verify
from provision.ops.verify import Verifier, check_line, run_verify
from provision.runtime.engine import ContainerState
from provision.stack.context import StackContext

TOKEN = "0123456789abcdef" * 4


class Canned(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the status and body the test put in `routes` (404 otherwise)."""

    routes: typing.ClassVar[dict[str, tuple[int, str, bytes]]] = {}

    def do_GET(self) -> None:
        status, kind, body = self.routes.get(self.path, (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    routes: dict[str, tuple[int, str, bytes]] = {}
    handler = type("Handler", (Canned,), {"routes": routes})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield routes, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def deployment(tmp_path, url: str, token: str | None = TOKEN, containers=None, extra: str = ""):
    port = url.rsplit(":", 1)[1]
    (tmp_path / "glitchtip.yaml").write_text(f"http_port: {port}\nglitchtip_domain: {url}\n{extra}")
    (tmp_path / ".env").write_text(f"GLITCHTIP_API_TOKEN={token}\n" if token else "")
    engine = FakeEngine(containers if containers is not None else [], tmp_path)
    return StackContext(directory=tmp_path, environ={}, engine_factory=lambda: engine)


def details(ctx, *checks, **options) -> dict[str, tuple[bool, str]]:
    """Each check's outcome and detail, the server's URL shown as URL and numbers as N."""
    report = run_verify(ctx, checks=list(checks), **options)
    url = str(ctx.load_settings().glitchtip_domain)
    return {
        check.name: (check.ok, re.sub(r"[0-9]+(\.[0-9]+)?", "N", check.detail.replace(url, "URL")))
        for check in report.checks
    }


HTML = (200, "text/html", b"<html>a proxy's page</html>")
JSON_OK = (200, "application/json", b"{}")


def test_http_checks_name_what_answered_and_how(server, tmp_path):
    routes, url = server
    ctx = deployment(tmp_path, url)
    routes["/_health/"] = JSON_OK
    routes["/api/settings/"] = HTML
    routes["/api/0/"] = HTML
    found = details(ctx, "url", "health", "settings", "token")
    assert found == {
        "url": (True, "URL answers (http: no certificate to check)"),
        "health": (True, "URL/_health/ HTTP N in N ms"),
        "settings": (False, "/api/settings/ answered N without JSON"),
        "token": (False, "/api/N/ answered without JSON"),
    }
    routes["/_health/"] = (503, "text/plain", b"down")
    routes["/api/settings/"] = JSON_OK
    routes["/api/0/"] = (401, "application/json", b"{}")
    found = details(ctx, "url", "health", "settings", "token")
    assert found == {
        "url": (False, "the public URL URL/_health/ answered HTTP N"),
        "health": (False, "/_health/ answered HTTP N"),
        "settings": (True, "/api/settings/ HTTP N in N ms (database)"),
        "token": (False, "the API token in .env is rejected (HTTP N)"),
    }
    routes["/api/0/"] = (502, "text/plain", b"bad gateway")
    assert details(ctx, "token") == {"token": (False, "/api/N/ answered HTTP N")}
    routes["/api/0/"] = (200, "application/json", b'{"user": {"id": "7"}}')
    assert details(ctx, "token", token="a" * 40) == {
        "token": (
            True,
            "the API token given with --token / GLITCHTIP_API_TOKEN is accepted (user N)",
        )
    }
    routes["/api/0/"] = (200, "application/json", b'{"user": null}')
    assert details(ctx, "token", token="a" * 40) == {
        "token": (
            False,
            "the API token given with --token / GLITCHTIP_API_TOKEN is not accepted (revoked?): "
            "check the token",
        )
    }


def test_the_event_check_is_not_sent_without_an_accepted_token(server, tmp_path):
    routes, url = server
    routes["/api/0/"] = (403, "application/json", b"{}")
    ctx = deployment(tmp_path, url)
    assert details(ctx, "token", "event") == {
        "token": (False, "the API token in .env is rejected (HTTP N)"),
        "event": (False, "not sent: the API token in .env is not accepted (see token)"),
    }
    bare = deployment(tmp_path, url, token=None)
    assert details(bare, "token", "event") == {
        "token": (False, "no GLITCHTIP_API_TOKEN in .env: run `provision up` to create one"),
        "event": (False, "not sent: no API token to find the event with"),
    }


def container(service, state="running", health="healthy", exit_code=None):
    return ContainerState(service, service, "glitchtip", state, health, exit_code, "image")


def test_the_services_check_names_each_sick_container(server, tmp_path):
    _routes, url = server
    assert details(deployment(tmp_path, url), "services") == {
        "services": (False, "no containers: run `provision up`")
    }
    sick = [
        container("postgres"),
        container("valkey", "restarting", None, None),
        container("web", health="starting"),
        container("worker", "exited", None, 137),
        container("migrate", "exited", None, 0),
    ]
    assert details(deployment(tmp_path, url, containers=sick), "services") == {
        "services": (
            False,
            "not healthy: valkey restarting, web starting, worker exited (N) "
            "(see `provision logs SERVICE`)",
        )
    }
    kube = deployment(tmp_path, url, extra="target: kubernetes\n")
    assert details(kube, "services") == {
        "services": (
            False,
            "the kit cannot see Kubernetes pods: check `kubectl -n glitchtip get pods` and run "
            "verify with --skip services",
        )
    }


def test_the_disk_check_names_each_place_and_its_free_space(server, tmp_path):
    _routes, url = server
    ctx = deployment(tmp_path, url)
    root = f"Docker data root {tmp_path}"
    where = f"deployment dir {tmp_path}"
    report = run_verify(ctx, checks=["disk"], min_free_gib=0)
    check = report.checks[0]
    assert re.fullmatch(
        re.escape(f"{root}: ") + r"[0-9]+\.[0-9] GiB free, " + re.escape(f"{where}: ")
        + r"[0-9]+\.[0-9] GiB free",
        check.detail,
    ), check.detail  # fmt: skip
    free = shutil.disk_usage(tmp_path).free / 2**30
    assert sorted(check.data["free_gib"]) == sorted([root, where])
    assert all(abs(gib - free) < 0.5 for gib in check.data["free_gib"].values())
    assert check_line(check) == f"ok   disk     {check.detail} ({check.seconds:.2f} s)"
    low = run_verify(ctx, checks=["disk"], min_free_gib=10**6).checks[0]
    masked = re.sub(r"[0-9]+\.[0-9] GiB", "G", low.detail)
    assert masked == f"less than 1e+06 GiB free ({root}: G free, {where}: G free)"
    assert not low.ok
    verifier = Verifier(ctx, 1.0, 0)
    shutil.rmtree(tmp_path)  # the deployment directory went away under verify
    with pytest.raises(verify._Failed) as caught:
        verifier.check_disk()
    assert str(caught.value) == (
        f"cannot read free space of {tmp_path} (FileNotFoundError: [Errno 2] No such file or "
        f"directory: '{tmp_path}')"
    )


def test_a_swarm_stack_not_converged_names_every_problem(tmp_path, monkeypatch):
    """verify's services check on a Swarm stack lists each unconverged service, comma-separated,
    with where to look (stack_health's problems, in the stand-in Swarm)."""
    from test_swarm_engine import FakeSwarm, context, swarm_dir, up_engine

    from provision.deployment import Deployment

    directory = swarm_dir(tmp_path)
    swarm = FakeSwarm()
    up_engine(directory, swarm)
    ctx = context(directory, swarm)
    docker = ctx.results["docker"]
    monkeypatch.setattr(Deployment, "docker", lambda self: docker)
    del swarm.services["glitchtip_worker"]
    del swarm.services["glitchtip_valkey"]
    with pytest.raises(verify._Failed) as caught:
        verify._swarm_services(ctx.load_settings())
    assert str(caught.value) == (
        "not converged: valkey missing, worker missing (see `docker service ps glitchtip_web`)"
    )
    swarm.services.clear()  # the stack removed (or never deployed)
    with pytest.raises(verify._Failed) as caught:
        verify._swarm_services(ctx.load_settings())
    assert str(caught.value) == "no services in stack glitchtip: run `provision up --target swarm`"


def test_the_event_check_names_why_it_has_no_project_to_send_to(server, tmp_path):
    """The token is accepted, but the API does not create the verify project (a proxy in front
    answering 404 for the rest of /api/): the event check says so whole, with the client's
    reason, and sends nothing."""
    routes, url = server
    routes["/api/0/"] = (200, "application/json", b'{"user": {"id": "7"}}')
    ctx = deployment(tmp_path, url)
    assert details(ctx, "token", "event", event_timeout=1.0) == {
        "token": (True, "the API token in .env is accepted (user N)"),
        "event": (
            False,
            "cannot get the kit's verify project (URL has no GlitchTip API at "
            "/api/N/organizations/ (N without GlitchTip's JSON answer) while trying to list "
            "organizations: check that --url / GLITCHTIP_URL is GlitchTip's own address "
            "(scheme, host, port, no path))",
        ),
    }


def test_an_issue_that_cannot_be_resolved_is_reported_with_the_reason(server, tmp_path):
    """The test events' issue is resolved after the event is seen; GlitchTip refusing that is
    a note in the event check's line, naming what was tried and GlitchTip's answer."""
    routes, url = server
    routes["/api/0/issues/12/"] = (403, "application/json", b'{"detail": "no permission"}')
    verifier = Verifier(deployment(tmp_path, url), 1.0, 0)
    said = verifier._resolve("12")
    assert said == (
        "issue not resolved (GlitchTip refused to resolve the test events' issue: no permission)"
    )
    assert verifier._resolve(None) == "issue not resolved: the event names no issue"
    assert verifier._resolve("abc") == "issue not resolved: the event names no issue"
    routes["/api/0/issues/12/"] = (200, "application/json", b"{}")
    assert verifier._resolve("12") == "issue resolved"


class Valkey:
    """`compose exec valkey` answering the queue script with the given lines (or failing)."""

    def __init__(self, values: list[str] | None, stderr: str = "") -> None:
        self.values, self.stderr = values, stderr

    def run(self, *argv, timeout=None):
        from provision.runtime.process import ProcessResult

        if self.values is None:
            return ProcessResult(tuple(argv), 1, "", self.stderr)
        keys = argv[argv.index("-c") + 3 :]
        lengths = ["0"] * len(keys)
        return ProcessResult(tuple(argv), 0, "\n".join(lengths + self.values) + "\n", "")


def queue_detail(tmp_path, url, monkeypatch, valkey: Valkey) -> tuple[bool, str]:
    from provision.stack import queue_health

    real = queue_health.read_queue_health
    monkeypatch.setattr(
        queue_health,
        "queue_reader",
        lambda settings, compose: lambda: real(valkey, ["q"], sleep=lambda seconds: None),
    )
    ctx = deployment(tmp_path, url)
    ctx.compose_factory = lambda settings: valkey
    check = run_verify(ctx, checks=["queue"]).checks[0]
    return check.ok, check.detail


def test_the_queue_check_says_what_waits_and_what_is_wrong(server, tmp_path, monkeypatch):
    _routes, url = server
    drained = ["0", "none", "0", "0", "1048576", "268435456", "1700000000"]
    assert queue_detail(tmp_path, url, monkeypatch, Valkey(drained)) == (
        True,
        "0 event(s) queued and draining, 0 unacknowledged, none stuck",
    )
    assert queue_detail(
        tmp_path, url, monkeypatch, Valkey(None, "service valkey is not running")
    ) == (False, "cannot read the queue: cannot read the queue from Valkey (service valkey is "
          "not running)")  # fmt: skip
    sick = ["0", "none", "2", "1", "1048576", "268435456", "1700000000"]
    assert queue_detail(tmp_path, url, monkeypatch, Valkey(sick)) == (
        False,
        "2 task(s) dead-lettered in Valkey's list {vt}:q:failed: batches that failed, e.g. "
        "while Postgres was down; no worker retries them; 1 task(s) held by a worker that is gone "
        "(killed mid-batch); a running worker puts them back on the queue within half a minute: "
        "run `provision up` if the worker is down",
    )


def test_where_verify_looks_and_which_token_it_names(server, tmp_path):
    from provision.errors import UsageError

    _routes, url = server
    ctx = deployment(tmp_path, url)
    plain = Verifier(ctx, 1.0, 0)
    port = url.rsplit(":", 1)[1]
    assert (plain.public, plain.internal, plain.kubernetes) == (
        url,
        f"http://127.0.0.1:{port}",
        False,
    )
    assert (plain.token, plain.token_from) == (TOKEN, "in .env")
    given = Verifier(ctx, 1.0, 0, url="https://gt.example.com/", token="b" * 40)
    assert (given.internal, given.token, given.token_from) == (
        "https://gt.example.com",
        "b" * 40,
        "given with --token / GLITCHTIP_API_TOKEN",
    )
    # only the trailing slashes go: a path whose last letter is an upper-case X stays whole
    prefixed = Verifier(ctx, 1.0, 0, url="https://gt.example.com/GTX//", token="b" * 40)
    assert prefixed.internal == "https://gt.example.com/GTX"
    port_line = f"http_port: {port}\n"
    (tmp_path / "glitchtip.yaml").write_text(
        port_line + "glitchtip_domain: https://gt.example.com\n"
    )
    compose = Verifier(StackContext(directory=tmp_path, environ={}), 1.0, 0)
    assert (compose.public, compose.internal) == (
        "https://gt.example.com",
        f"http://127.0.0.1:{port}",
    )
    (tmp_path / "glitchtip.yaml").write_text(
        port_line + "glitchtip_domain: https://gt.example.com\ntarget: kubernetes\n"
    )
    kube = Verifier(StackContext(directory=tmp_path, environ={}), 1.0, 0)
    assert (kube.internal, kube.kubernetes) == ("https://gt.example.com", True)
    refusal = (
        "the API token ({}) has spaces, control or non-ASCII characters, or is too long; "
        "GlitchTip's tokens are letters and digits: copy the token again (Profile > Auth Tokens "
        "in GlitchTip)"
    )
    with pytest.raises(UsageError) as caught:
        Verifier(ctx, 1.0, 0, token="bad token")
    assert caught.value.line() == refusal.format("--token / GLITCHTIP_API_TOKEN")
    spaced = deployment(tmp_path, url)
    (tmp_path / ".env").write_text("GLITCHTIP_API_TOKEN=has space\n")
    with pytest.raises(UsageError) as caught:
        Verifier(spaced, 1.0, 0)
    assert caught.value.line() == refusal.format("GLITCHTIP_API_TOKEN in .env")


def test_verify_names_the_kit_as_its_user_agent(tmp_path):
    """Every request verify makes says it is the kit (`User-Agent: glitchtip-kit`), so a
    proxy's or GlitchTip's log tells verify's checks from users' requests."""
    agents: list[str | None] = []

    class Recording(Canned):
        routes: typing.ClassVar[dict[str, tuple[int, str, bytes]]] = {"/_health/": JSON_OK}

        def do_GET(self) -> None:
            agents.append(self.headers.get("User-Agent"))
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        assert details(deployment(tmp_path, url), "url", "health")["health"][0] is True
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert agents == ["glitchtip-kit", "glitchtip-kit"]
