"""The API-token bootstrap with an https domain: Secure cookies over the plain-http port.

Recorded (NOTES.md, "what the real server did to clients"): with SESSION_COOKIE_SECURE, which an
https GLITCHTIP_DOMAIN calls for, the login over http://127.0.0.1:PORT succeeds but httpx keeps
the Secure session cookie to itself and `POST /api/0/api-tokens/` answers 401. Later GlitchTip 6
releases also mark `csrftoken` Secure for https (GLITCHTIP6-audit.md D1), and the login gets 403.
"""

from __future__ import annotations

import httpx
import pytest
from fakeglitchtip import create_superuser, start_fake

from provision.api.bootstrap import KIT_SCOPES, bootstrap_token
from provision.api.client import GlitchTipClient, RetryPolicy

ADMIN = "admin@example.com"
PASSWORD = "admin-Passw0rd-123"
HTTPS_DOMAIN = "https://errors.example.com"
FAST = RetryPolicy(attempts=2, backoff=0.001)
NO_REUSE = httpx.Limits(max_keepalive_connections=0)  # the fake closes like uWSGI


@pytest.fixture
def https_fake(request):
    options = getattr(request, "param", {})
    handle = start_fake(glitchtip_domain=HTTPS_DOMAIN, **options)
    create_superuser(handle.store, ADMIN, PASSWORD)
    yield handle
    handle.stop()


def test_https_domain_marks_both_cookies_secure(https_fake):
    with httpx.Client(base_url=https_fake.url, limits=NO_REUSE) as browser:
        config = browser.get("/_allauth/browser/v1/config")
        login = browser.post(
            "/_allauth/browser/v1/auth/login",
            json={"email": ADMIN, "password": PASSWORD},
            headers={
                "X-CSRFToken": config.cookies["csrftoken"],
                "Cookie": f"csrftoken={config.cookies['csrftoken']}",
            },
        )
    assert login.status_code == 200, login.text
    csrf_cookie = config.headers["set-cookie"]
    session_cookie = next(
        c for c in login.headers.get_list("set-cookie") if c.startswith("sessionid=")
    )
    assert csrf_cookie.endswith("; Path=/; SameSite=Lax; Secure"), csrf_cookie
    assert "; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax; Secure" in session_cookie


def test_http_domain_cookies_are_not_secure():
    handle = start_fake()  # domain: its own http:// address
    try:
        cookie = httpx.get(f"{handle.url}/_allauth/browser/v1/config").headers["set-cookie"]
    finally:
        handle.stop()
    assert "Secure" not in cookie and cookie.startswith("csrftoken=")


def test_plain_httpx_does_not_send_secure_cookies_to_http(https_fake):
    """Why bootstrap builds its own Cookie header: the recorded 403/401 with a default client."""
    with httpx.Client(base_url=https_fake.url, limits=NO_REUSE) as browser:
        csrf = browser.get("/_allauth/browser/v1/config").cookies["csrftoken"]
        login = browser.post(
            "/_allauth/browser/v1/auth/login",
            json={"email": ADMIN, "password": PASSWORD},
            headers={"X-CSRFToken": csrf},
        )
    assert login.status_code == 403


@pytest.mark.parametrize(
    "https_fake",
    [
        {},  # later GlitchTip 6: session and CSRF cookies Secure
        {"csrf_cookie_secure": False},  # GlitchTip 5 with SESSION_COOKIE_SECURE only
        {"keep_alive": True},  # granian
    ],
    ids=["both-secure", "session-secure", "granian"],
    indirect=True,
)
def test_bootstrap_token_works_with_secure_cookies_over_http(https_fake):
    token = bootstrap_token(https_fake.url, ADMIN, PASSWORD, retry=FAST)
    with GlitchTipClient(https_fake.url, token, retry=FAST) as api:
        whoami = api.whoami()
    assert whoami["user"]["email"] == ADMIN
    assert sorted(whoami["auth"]["scopes"]) == sorted(KIT_SCOPES)
    calls = [(r.method, r.path, r.status) for r in https_fake.requests]
    assert calls[:4] == [
        ("GET", "/_allauth/browser/v1/config", 200),
        ("POST", "/_allauth/browser/v1/auth/login", 200),
        ("POST", "/api/0/api-tokens/", 201),
        ("DELETE", "/_allauth/browser/v1/auth/session", 401),  # logged out (recorded 401)
    ]
    assert not https_fake.store.snapshot()["sessions"], "the session was not logged out"
