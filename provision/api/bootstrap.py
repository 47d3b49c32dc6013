"""Mint an API token from an admin's e-mail and password (allauth's headless "browser" flow).

GlitchTip creates API tokens only for a logged-in session: fetch the CSRF cookie from
`/_allauth/browser/v1/config`, log in with `X-CSRFToken`, re-read the cookie (Django rotates it at
login), and `POST /api/0/api-tokens/`. The session is then logged out and never used for anything
else: a session call to `/api/0/` logs the session out (recorded GOTCHA), and every later call
uses the Bearer token.

Cookies go out in an explicit `Cookie` header built from the whole jar: with an https domain
GlitchTip marks `sessionid` (and, in later 6.x, `csrftoken`) Secure, and httpx does not send a
Secure cookie to the plain-http port the kit logs in through (GLITCHTIP6-audit.md D1). A custom
`CookiePolicy` cannot fix that: httpx copies cookies into a default-policy jar per request. Every
cookie in this jar came from the one GlitchTip at `base_url`, so none leaks elsewhere.
"""

from __future__ import annotations

import contextlib
from typing import Any

from provision.api.client import GlitchTipClient, RetryPolicy
from provision.errors import ApiError

CONFIG = "/_allauth/browser/v1/config"
LOGIN = "/_allauth/browser/v1/auth/login"
SESSION = "/_allauth/browser/v1/auth/session"
TOKENS = "/api/0/api-tokens/"

# What the kit does with the token: orgs, teams, projects, keys, alerts, reading issues,
# resolving the issue of verify's own test events (PUT /api/0/issues/{id}/ needs event:write),
# and `provision apply`'s members (invite: member:write, remove: member:admin) and team deletes
# (team:admin).
KIT_SCOPES = (
    "org:read",
    "org:write",
    "member:read",
    "member:write",
    "member:admin",
    "team:read",
    "team:write",
    "team:admin",
    "project:read",
    "project:write",
    "project:admin",
    "event:read",
    "event:write",
)
TOKEN_LABEL = "glitchtip-kit"


def _csrf(client: GlitchTipClient) -> str:
    token = client.http.cookies.get("csrftoken")
    if not token:
        raise ApiError(
            "GlitchTip set no CSRF cookie on its login page",
            "check that --url points at GlitchTip itself, not a proxy that strips cookies",
        )
    return token


def _cookies(client: GlitchTipClient) -> dict[str, str]:
    """A `Cookie` header holding every cookie GlitchTip set, Secure ones included."""
    pairs = [f"{cookie.name}={cookie.value}" for cookie in client.http.cookies.jar]
    return {"Cookie": "; ".join(pairs)} if pairs else {}


def bootstrap_token(
    base_url: str,
    email: str,
    password: str,
    *,
    scopes: tuple[str, ...] = KIT_SCOPES,
    label: str = TOKEN_LABEL,
    retry: RetryPolicy | None = None,
    **client_options: Any,
) -> str:
    """Log in as the admin, create an API token with `scopes`, log out; return the token."""
    with GlitchTipClient(
        base_url, None, retry=retry, secrets=(password,), **client_options
    ) as client:
        response = client.send("GET", CONFIG)
        client.raise_for_status(response, action="open the login flow")
        response = client.send(
            "POST",
            LOGIN,
            json={"email": email, "password": password},
            headers={
                "X-CSRFToken": _csrf(client),
                "Referer": f"{client.base_url}/",
                **_cookies(client),
            },
        )
        if response.status_code == 400:
            raise ApiError(
                "GlitchTip rejected the admin's e-mail or password",
                "check --admin-email/--admin-password (GLITCHTIP_ADMIN_EMAIL/"
                "GLITCHTIP_ADMIN_PASSWORD, or DJANGO_SUPERUSER_* in .env)",
                status=400,
            )
        if response.status_code == 403:
            raise ApiError(
                "GlitchTip refused the login (403, CSRF or Origin check)",
                "call GlitchTip directly at --url, or add it to CSRF_TRUSTED_ORIGINS",
                status=403,
            )
        client.raise_for_status(response, action="log in")
        # Django rotates the CSRF token at login: the pre-login one would get 403.
        response = client.send(
            "POST",
            TOKENS,
            json={"label": label, "scopes": list(scopes)},
            headers={"X-CSRFToken": _csrf(client), **_cookies(client)},
        )
        client.raise_for_status(response, action="create an API token")
        try:
            token = response.json()["token"]
        except (ValueError, KeyError, TypeError):
            raise ApiError("GlitchTip's answer to creating an API token had no token") from None
        # The token exists; a failed logout only leaves a session to expire.
        with contextlib.suppress(ApiError):
            client.send(
                "DELETE", SESSION, headers={"X-CSRFToken": _csrf(client), **_cookies(client)}
            )
        return str(token)
