"""Connection manners of the real web servers, in the fake and in the kit's HTTP clients.

GlitchTip 5's uWSGI (`--http-socket`) answers one request per TCP connection and closes it
without a `Connection: close` header; a second request on that connection is neither answered nor
executed (NOTES.md, "The web server of GlitchTip 5 and HTTP keep-alive"). GlitchTip 6's granian
keeps HTTP/1.1 connections alive. The fake copies both (`start_fake(keep_alive=...)`), checked
here with raw sockets, and the kit must work against both without ever repeating a POST that
GlitchTip may have executed.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from click.testing import CliRunner
from fakeglitchtip import create_api_token, create_superuser, start_fake

from provision.api.client import GlitchTipClient, RetryPolicy
from provision.cli import cli
from provision.errors import ApiError

ADMIN = "admin@example.com"
PASSWORD = "admin-Passw0rd-123"
ONE_SHOT = RetryPolicy(attempts=1, backoff=0.0)  # no retry: nothing may depend on one
FAST = RetryPolicy(attempts=3, backoff=0.001)


@pytest.fixture(params=[False, True], ids=["uwsgi", "granian"])
def any_fake(request):
    handle = start_fake(keep_alive=request.param)
    create_superuser(handle.store, ADMIN, PASSWORD)
    yield handle
    handle.stop()


@pytest.fixture
def rude():
    handle = start_fake(keep_alive=False)
    create_superuser(handle.store, ADMIN, PASSWORD)
    yield handle
    handle.stop()


@pytest.fixture
def polite():
    handle = start_fake(keep_alive=True)
    create_superuser(handle.store, ADMIN, PASSWORD)
    yield handle
    handle.stop()


def org_post(token: str, name: str, extra_headers: str = "") -> bytes:
    body = json.dumps({"name": name}).encode()
    head = (
        "POST /api/0/organizations/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra_headers}\r\n"
    )
    return head.encode() + body


class Connection:
    """A raw TCP connection that reads responses by Content-Length, as a keep-alive client."""

    def __init__(self, fake) -> None:
        host, port = fake.url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.buffer = b""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, what: str) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"connection closed {what}: {self.buffer!r}"
        self.buffer += chunk

    def read_response(self) -> tuple[str, dict[str, str], bytes]:
        """The next response: status line, headers (lower-case names), body."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill("before a full response head")
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._fill("inside the body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status_line, headers, body

    def read_rest(self) -> bytes:
        """Everything until EOF; a reset raises (the real server sent a clean FIN)."""
        data, self.buffer = self.buffer, b""
        while chunk := self.sock.recv(65536):
            data += chunk
        return data


def org_count(fake) -> int:
    return len(fake.store.snapshot()["orgs"])


# --- the fake: uWSGI manners (keep_alive=False, the default) --------------------------------


def test_default_fake_is_the_uwsgi_one():
    handle = start_fake()
    try:
        assert handle.keep_alive is False
    finally:
        handle.stop()


def test_uwsgi_answers_the_first_of_two_pipelined_requests_and_runs_only_it(rude):
    token = create_api_token(rude.store, ADMIN, ["org:admin"])
    with Connection(rude) as sock:
        sock.sendall(org_post(token, "First") + org_post(token, "Second"))
        status_line, headers, body = sock.read_response()
        rest = sock.read_rest()
    assert status_line == "HTTP/1.1 201 Created"
    assert int(headers["content-length"]) == len(body) and json.loads(body)["slug"] == "first"
    assert "connection" not in headers, "uWSGI never announces that it closes"
    assert rest == b"", "the pipelined second request was answered"
    assert org_count(rude) == 1, "the unanswered second request was executed"
    assert rude.count("POST") == 1


@pytest.mark.parametrize("pause", [0.0, 0.01, 0.2])
@pytest.mark.parametrize("connection", ["", "Connection: keep-alive\r\n"])
def test_uwsgi_never_answers_or_runs_a_second_request_on_a_connection(rude, pause, connection):
    token = create_api_token(rude.store, ADMIN, ["org:admin"])
    with Connection(rude) as sock:
        sock.sendall(org_post(token, "First", connection))
        status_line, headers, _ = sock.read_response()
        time.sleep(pause)
        sock.sendall(org_post(token, "Second", connection))  # the send itself succeeds
        assert sock.read_rest() == b"", "expected a clean EOF with 0 bytes"
    assert status_line.startswith("HTTP/1.1 201") and "connection" not in headers
    time.sleep(0.05)  # a request that was going to run would have run by now
    assert org_count(rude) == 1


def test_uwsgi_closes_right_after_the_response(rude):
    with Connection(rude) as sock:
        sock.sendall(b"GET /_health/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.read_response()
        began = time.monotonic()
        assert sock.read_rest() == b""
        waited = time.monotonic() - began
    # Recorded: the FIN follows the last byte after 0.4-0.9 ms; a busy test host gets slack.
    assert waited < 0.25, f"the connection stayed open {waited:.3f} s after the response"


def test_uwsgi_answers_a_1_0_request_in_1_0(rude):
    with Connection(rude) as sock:
        sock.sendall(b"GET /_health/ HTTP/1.0\r\n\r\n")
        status_line, headers, _ = sock.read_response()
        assert sock.read_rest() == b""
    assert status_line.startswith("HTTP/1.0 200") and "connection" not in headers


def test_a_pooled_httpx_client_fails_on_the_uwsgi_fake_as_on_the_real_one(rude):
    """Recorded: httpx's default pool lost 2 of 10 GETs; the fake must reproduce that.

    A race (the client reuses the connection before it sees the FIN), so it is given up to
    500 tries; the first failure ends the test.
    """
    answered = 0
    with httpx.Client(base_url=rude.url) as pooled:
        while answered < 500:
            try:
                pooled.get("/_health/")
            except httpx.RemoteProtocolError as exc:
                assert "without sending a response" in str(exc)
                break
            answered += 1
        else:
            pytest.fail("500 requests on a pooled client and no reused connection failed")
    assert rude.count("GET") == answered, "the request on the reused connection was answered"


def test_latency_delays_every_answer():
    handle = start_fake(latency=0.15)
    try:
        began = time.monotonic()
        assert httpx.get(f"{handle.url}/_health/").status_code == 200
        waited = time.monotonic() - began
    finally:
        handle.stop()
    assert waited >= 0.15


# --- the fake: granian manners (keep_alive=True) --------------------------------------------


def test_granian_answers_sequential_and_pipelined_requests_on_one_connection(polite):
    token = create_api_token(polite.store, ADMIN, ["org:admin"])
    with Connection(polite) as sock:
        sock.sendall(org_post(token, "One"))
        first = sock.read_response()
        sock.sendall(org_post(token, "Two") + org_post(token, "Three"))
        second, third = sock.read_response(), sock.read_response()
    assert [r[0] for r in (first, second, third)] == ["HTTP/1.1 201 Created"] * 3
    assert [json.loads(r[2])["slug"] for r in (first, second, third)] == ["one", "two", "three"]
    assert org_count(polite) == 3


# --- the kit's API client --------------------------------------------------------------------


def test_client_needs_no_retry_on_either_server(any_fake):
    """No connection reuse: 40 requests, GET and POST mixed, with retries switched off."""
    token = create_api_token(any_fake.store, ADMIN, ["org:admin"])
    with GlitchTipClient(any_fake.url, token, retry=ONE_SHOT) as api:
        for number in range(20):
            api.create_organization(f"Org {number}")
            assert len(api.organizations()) == number + 1
    assert org_count(any_fake) == 20 and any_fake.count("POST") == 20


def test_a_get_whose_answer_was_lost_is_repeated(any_fake):
    token = create_api_token(any_fake.store, ADMIN, ["org:admin"])
    any_fake.drop_after_executing("GET")
    with GlitchTipClient(any_fake.url, token, retry=FAST) as api:
        assert api.organizations() == []
    assert any_fake.count("GET") == 2


def test_a_get_that_never_gets_an_answer_names_the_request(rude):
    token = create_api_token(rude.store, ADMIN, ["org:admin"])
    rude.drop_after_executing("GET", times=3)
    with GlitchTipClient(rude.url, token, retry=FAST) as api, pytest.raises(ApiError) as err:
        api.organizations()
    line = err.value.line()
    assert "did not answer GET /api/0/organizations/ (RemoteProtocolError, 3 attempts)" in line
    assert token not in line and rude.count("GET") == 3


def test_a_post_whose_answer_was_lost_is_reported_not_repeated(any_fake):
    token = create_api_token(any_fake.store, ADMIN, ["org:admin"])
    any_fake.drop_after_executing("POST")
    with GlitchTipClient(any_fake.url, token, retry=FAST) as api, pytest.raises(ApiError) as err:
        api.create_organization("Acme")
    line = err.value.line()
    assert "before answering POST /api/0/organizations/" in line
    assert "may have executed it" in line and token not in line
    assert any_fake.count("POST") == 1 and org_count(any_fake) == 1


def test_a_post_that_cannot_have_been_sent_is_retried():
    """A refused connection never reached GlitchTip, so even a POST is safe to repeat."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    slept: list[float] = []
    api = GlitchTipClient(f"http://127.0.0.1:{port}", "t", retry=FAST, sleep=slept.append)
    with api, pytest.raises(ApiError, match=r"ConnectError, 3 attempts"):
        api.create_organization("Acme")
    assert api.posts == 3 and len(slept) == 2


# --- create-project through the CLI -----------------------------------------------------------


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("GLITCHTIP_URL", "GLITCHTIP_API_TOKEN", "GLITCHTIP_ADMIN_EMAIL",
                 "GLITCHTIP_ADMIN_PASSWORD", "ERROR_TRACKING_DSN", "SENTRY_DSN"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROVISION_API_BACKOFF", "0.001")
    monkeypatch.setenv("PROVISION_API_RETRIES", "1")  # nothing may lean on a retry
    return tmp_path


def create_project(url: str, *args: str):
    return CliRunner().invoke(
        cli, ["create-project", "--url", url, "--org", "Acme", "--project", "Web App", *args]
    )


def test_create_project_on_either_server_then_a_rerun_posts_nothing(any_fake, workdir):
    first = create_project(any_fake.url, "--admin-email", ADMIN, "--admin-password", PASSWORD)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip().endswith("/1") and (workdir / ".glitchtiprc").exists()
    any_fake.clear_log()
    second = create_project(any_fake.url, "--admin-email", ADMIN, "--admin-password", PASSWORD)
    assert second.exit_code == 0, second.output
    assert second.stdout == first.stdout and any_fake.count("POST") == 0


def test_create_project_with_a_lost_post_answer_fails_once_and_never_duplicates(rude, workdir):
    token = create_api_token(rude.store, ADMIN, ["org:admin", "team:write", "project:write",
                             "project:admin", "org:read", "project:read"])  # fmt: skip
    rude.drop_after_executing("POST")  # the organization is created, its answer lost
    failed = create_project(rude.url, "--token", token)
    assert failed.exit_code == 1
    assert failed.output.count("\n") == 1 and "Traceback" not in failed.output
    assert "may have executed it" in failed.output and token not in failed.output
    assert not (workdir / ".glitchtiprc").exists()
    assert org_count(rude) == 1 and rude.count("POST") == 1
    again = create_project(rude.url, "--token", token)
    assert again.exit_code == 0, again.output
    assert org_count(rude) == 1, "the rerun created the organization a second time"
    state = rude.store.snapshot()
    assert len(state["teams"]) == len(state["projects"]) == 1


# --- other httpx callers in provision/ (read-only check) ---------------------------------------


def test_stack_probes_survive_the_uwsgi_fake(rude):
    """`provision status` and the start step's wait use one-shot httpx calls: no reuse."""
    from provision.stack.start import _http_status
    from provision.stack.status import probe

    for _ in range(20):
        assert _http_status(f"{rude.url}/_health/") == 200
        assert probe(f"{rude.url}/api/settings/")["ok"] is True
