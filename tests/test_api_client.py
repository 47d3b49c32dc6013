"""The API client against the fake over HTTP: pagination, retries and error mapping."""

from __future__ import annotations

import pytest
from fakeglitchtip import create_api_token, create_superuser, start_fake

from provision.api.bootstrap import KIT_SCOPES, bootstrap_token
from provision.api.client import GlitchTipClient, RetryPolicy, parse_link_header
from provision.errors import ApiError

FAST = RetryPolicy(attempts=3, backoff=0.001)


@pytest.fixture
def fake():
    handle = start_fake()
    create_superuser(handle.store, "admin@example.com", "admin-Passw0rd-123")
    yield handle
    handle.stop()


def client(fake, scopes=KIT_SCOPES) -> GlitchTipClient:
    token = create_api_token(fake.store, "admin@example.com", list(scopes))
    return GlitchTipClient(fake.url, token, retry=FAST)


def test_parse_malformed_link_header():
    value = (
        '{\'<http://h/api/0/x/>; rel="previous"; results="false", '
        '<http://h/api/0/x/?cursor=abc>; rel="next"; results="true"; cursor="abc"\'}'
    )
    links = parse_link_header(value)
    assert links["next"]["url"] == "http://h/api/0/x/?cursor=abc"
    assert links["next"]["results"] == "true" and links["previous"]["results"] == "false"


def test_pagination_follows_next_pages(fake):
    with client(fake, ["org:admin"]) as api:
        for number in range(120):
            api.create_organization(f"Org {number}")
        orgs = api.organizations()
    assert len(orgs) == 120 and len({o["slug"] for o in orgs}) == 120


def test_whoami_and_error_mapping(fake):
    with client(fake, ["org:read"]) as api:
        assert api.whoami()["user"]["email"] == "admin@example.com"
        with pytest.raises(ApiError, match="token lacks scope to create an organization"):
            api.create_organization("Acme")
        with pytest.raises(ApiError, match="no organization named 'nope'"):
            api.teams("nope")
    with GlitchTipClient(fake.url, "bad", retry=FAST) as api, pytest.raises(ApiError) as err:
        api.organizations()
    assert err.value.status == 401 and "token rejected" in str(err.value)


def test_validation_errors_name_the_field(fake):
    with client(fake) as api, pytest.raises(ApiError, match="name: Field required"):
        api.request("POST", "/api/0/organizations/", json={}, action="create an organization")


def test_duplicate_team_500_shows_first_line(fake):
    with client(fake) as api:
        api.create_organization("Acme")
        api.create_team("acme", "backend")
        with pytest.raises(ApiError, match=r"HTTP 500: Server Error \(500\)"):
            api.create_team("acme", "backend")


def test_retries_503_then_succeeds_without_duplicating_posts(fake):
    with client(fake) as api:
        fake.fail_next(503, 503)
        assert api.create_organization("Acme")["slug"] == "acme"
    assert len(fake.store.snapshot()["orgs"]) == 1


def test_post_is_not_retried_on_504(fake):
    with client(fake) as api:
        fake.fail_next(504)
        with pytest.raises(ApiError, match="HTTP 504"):
            api.create_organization("Acme")
        fake.fail_next(504, 504)
        assert api.organizations() == []


def test_bootstrap_token_switches_to_bearer(fake):
    token = bootstrap_token(fake.url, "admin@example.com", "admin-Passw0rd-123", retry=FAST)
    paths = [r.path for r in fake.requests]
    assert "/api/0/" not in paths  # never call /api/0/ on the session (drops it)
    assert paths[:3] == [
        "/_allauth/browser/v1/config",
        "/_allauth/browser/v1/auth/login",
        "/api/0/api-tokens/",
    ]
    with GlitchTipClient(fake.url, token, retry=FAST) as api:
        assert sorted(api.whoami()["auth"]["scopes"]) == sorted(KIT_SCOPES)


def test_bootstrap_wrong_password(fake):
    with pytest.raises(ApiError, match="rejected the admin's e-mail or password"):
        bootstrap_token(fake.url, "admin@example.com", "nope", retry=FAST)


def test_unreachable_message_drops_the_urls_password():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = GlitchTipClient(f"http://admin:hunter2hunter2@127.0.0.1:{port}", "t", retry=FAST)
    with api, pytest.raises(ApiError) as caught:
        api.whoami()
    assert "cannot reach GlitchTip at http://127.0.0.1:" in caught.value.line()
    assert "hunter2" not in caught.value.line(), "the URL's password reached the message"


@pytest.mark.parametrize("status", [403, 422, 500])
def test_bootstrap_never_echoes_the_admin_password(status):
    """GlitchTip (or a proxy) echoing the request body must not put the password in the line."""
    import httpx

    password = "admin-Passw0rd-echoed"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/config"):
            return httpx.Response(200, json={}, headers={"set-cookie": "csrftoken=abc; Path=/"})
        echoed = request.content.decode()
        if status == 403:
            return httpx.Response(403, json={"detail": echoed})
        if status == 422:
            return httpx.Response(422, json={"detail": [{"loc": ["body"], "msg": echoed}]})
        return httpx.Response(500, text=echoed)

    with pytest.raises(ApiError) as caught:
        bootstrap_token(
            "http://glitchtip.test",
            "admin@example.com",
            password,
            retry=FAST,
            transport=httpx.MockTransport(handler),
        )
    assert password not in caught.value.line(), "the admin password reached the message"


def test_a_server_that_is_not_glitchtip_is_named_as_such(tmp_path):
    """An HTML 404 (no API route: another web server, or a URL with a path) says to check the
    URL; GlitchTip's own JSON 404 for an unknown name still says to check the names."""
    import http.server
    import threading

    class NotGlitchTip(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html><body><h1>Not Found</h1></body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotGlitchTip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        with GlitchTipClient(url, "t" * 64, retry=FAST) as api, pytest.raises(ApiError) as err:
            api.teams("acme")
    finally:
        server.shutdown()
    message = str(err.value)
    assert err.value.status == 404
    assert "has no GlitchTip API at /api/0/organizations/acme/teams/" in message
    assert "GlitchTip's own address" in message and "check the names" not in message
    assert "t" * 64 not in message


def test_an_http_client_trusts_no_ca_and_never_loads_the_bundle(monkeypatch):
    """Loading the CA bundle costs ~40 ms of a create-project re-run; a client of an http
    GlitchTip must not pay it, and must still refuse any TLS peer it is led to (fail closed)."""
    import ssl

    from provision.api import client as api_client

    def no_bundle():
        raise AssertionError("the CA bundle was loaded for an http client")

    monkeypatch.setattr(api_client, "tls_context", no_bundle)
    plain = api_client.tls_context_for("HTTP://127.0.0.1:8000")
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname is True
    assert plain.cert_store_stats()["x509_ca"] == 0
    api_client.GlitchTipClient("http://127.0.0.1:8000").close()
    monkeypatch.undo()
    secure = api_client.tls_context_for("https://errors.example.com")
    assert secure is api_client.tls_context()
    assert secure.cert_store_stats()["x509_ca"] > 0


def test_an_unknown_team_is_named_when_a_project_cannot_be_created(fake):
    """Unknown team slug: create project -> 404 (NOTES.md, recorded); the refusal names the team
    and the organization in one line."""
    with client(fake) as api:
        org = api.create_organization("Acme")["slug"]
        with pytest.raises(ApiError) as err:
            api.create_project(org, "ghosts", "web", None)
    assert err.value.status == 404
    assert str(err.value) == (
        "no team named 'ghosts' in organization 'acme': check the names, or let create-project "
        "create them"
    )
