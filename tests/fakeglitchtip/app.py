"""Request handling of the fake GlitchTip: routes, auth, CSRF and the recorded error shapes.

`FakeGlitchTip.handle(request)` is pure with respect to HTTP: it takes a parsed `Request` and
returns a `Response`, reading and writing state only through the `Store` and pushing ingested
events to the `EventQueue`. `server.py` puts it behind a stdlib HTTP server.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from . import model, stats
from .hosts import host_allowed
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import RequestMetrics
from .store import EventQueue, State, Store

SLUG = r"[-a-zA-Z0-9_]+"
DEFAULT_LIMIT = 50
MAX_HITS = 1000
HTML_PAGE = "<!DOCTYPE html>\n<html>\n  <head>\n    <title>GlitchTip</title>\n  </head>\n</html>\n"


def _pattern_error(field: str, pattern: str) -> dict:
    """Pydantic's 422 item for a string not matching its pattern."""
    anchored = f"^{pattern}$"
    return {
        "type": "string_pattern_mismatch",
        "loc": ["body", "payload", field],
        "msg": f"String should match pattern '{anchored}'",
        "ctx": {"pattern": anchored},
    }


def _rate_limit_errors(rate_limit: Any) -> list[dict]:
    """Pydantic's 422 items for a key's `rateLimit` ({"window": int, "count": int} or null)."""
    if rate_limit is None:
        return []
    if not isinstance(rate_limit, dict):
        return [
            {
                "type": "model_type",
                "loc": ["body", "payload", "rateLimit"],
                "msg": "Input should be a valid dictionary or instance of RateLimit",
            }
        ]
    errors = []
    for name in ("window", "count"):
        loc = ["body", "payload", "rateLimit", name]
        if name not in rate_limit:
            errors.append({"type": "missing", "loc": loc, "msg": "Field required"})
        elif not isinstance(rate_limit[name], int):
            try:
                int(str(rate_limit[name]))
            except ValueError:
                errors.append(
                    {
                        "type": "int_parsing",
                        "loc": loc,
                        "msg": "Input should be a valid integer, unable to parse string as an "
                        "integer",
                    }
                )
    return errors


def _html_error(title: str) -> str:
    return (
        '\n<!doctype html>\n<html lang="en">\n<head>\n'
        f"  <title>{title}</title>\n</head>\n<body>\n  <h1>{title}</h1><p></p>\n</body>\n</html>\n"
    )


CSRF_FAILURE_HTML = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n'
    '  <meta http-equiv="content-type" content="text/html; charset=utf-8">\n'
    '  <meta name="robots" content="NONE,NOARCHIVE">\n  <title>403 Forbidden</title>\n</head>\n'
    "<body>\n  <h1>Forbidden <span>(403)</span></h1>\n"
    "  <p>CSRF verification failed. Request aborted.</p>\n</body>\n</html>\n"
)
COMMON_PASSWORDS = {"123", "1234", "12345678", "password", "password1", "qwerty", "123456789"}


@dataclass
class FakeConfig:
    """Server settings that change recorded behaviour (names follow GlitchTip's env vars)."""

    glitchtip_domain: str = "http://localhost:8000"
    allowed_hosts: tuple[str, ...] = ("*",)
    enable_user_registration: bool = True
    enable_organization_creation: bool = False
    version: str = "fake"
    # Django's SESSION_COOKIE_SECURE / CSRF_COOKIE_SECURE; None: when the domain is https.
    session_cookie_secure: bool | None = None
    csrf_cookie_secure: bool | None = None
    # The major whose metrics endpoint is served (5: /api/0/observability/django/ for staff;
    # 6: /metrics) and ENABLE_OBSERVABILITY_API (6: /metrics at all; both: django_http_*).
    major: int = 5
    observability_api: bool = False

    def cookie_secure(self, name: str) -> bool:
        """Whether Django would mark cookie `name` Secure (the kit renders it for https)."""
        flag = self.session_cookie_secure if name == "sessionid" else self.csrf_cookie_secure
        return self.glitchtip_domain.startswith("https://") if flag is None else flag


def _cookie_expires(max_age: int) -> str:
    """Django's `expires` cookie attribute for a cookie living `max_age` seconds."""
    from email.utils import formatdate

    return formatdate(time.time() + max_age, usegmt=True)


@dataclass
class Request:
    """One parsed HTTP request; header names are lower case."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    @property
    def cookies(self) -> dict[str, str]:
        jar: dict[str, str] = {}
        for part in self.headers.get("cookie", "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep:
                jar[name] = value
        return jar

    def json(self) -> Any:
        if not self.body:
            return {}
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    """Status, headers (a list: Set-Cookie may repeat) and body bytes."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None):
    """A JSON response with GlitchTip's content type."""
    return Response(
        status,
        [("Content-Type", "application/json; charset=utf-8"), *(headers or [])],
        json.dumps(payload).encode(),
    )


def text_response(status: int, text: str, content_type: str = "text/html; charset=utf-8"):
    """A text (usually HTML) response."""
    return Response(status, [("Content-Type", content_type)], text.encode())


def detail(status: int, message: str) -> Response:
    """`{"detail": message}`, the shape of every ninja error."""
    return json_response(status, {"detail": message})


UNAUTHORIZED = (401, "Unauthorized")
DENIED = (403, "Permission denied")
NOT_FOUND = (404, "Not Found")


def missing_field(name: str) -> Response:
    """Pydantic's 422 for a required body field."""
    return json_response(
        422,
        {
            "detail": [
                {"type": "missing", "loc": ["body", "payload", name], "msg": "Field required"}
            ]
        },
    )


class HttpError(Exception):
    """Raised by handlers to answer with a ready response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def fail(status: int, message: str) -> HttpError:
    """An `HttpError` carrying `{"detail": message}`."""
    return HttpError(detail(status, message))


@dataclass
class Auth:
    """Who is calling: the user, and the token's scopes (None: a session, every scope)."""

    user: dict | None = None
    scopes: set[str] | None = None
    token: dict | None = None
    session_id: str | None = None


ROUTES: list[tuple[str, str, str]] = [
    # (methods, path regex, handler name)
    ("GET", r"/_health/", "health"),
    ("GET", r"/api/0/internal/health", "internal_health"),
    ("GET", r"/api/settings/", "settings"),
    ("GET", r"/api/0/", "api_root"),
    ("GET", r"/_allauth/browser/v1/config", "allauth_config"),
    ("POST", r"/_allauth/browser/v1/auth/login", "allauth_login"),
    ("POST", r"/_allauth/browser/v1/auth/signup", "allauth_signup"),
    ("GET DELETE", r"/_allauth/browser/v1/auth/session", "allauth_session"),
    ("GET POST", r"/api/0/api-tokens/", "api_tokens"),
    ("DELETE", r"/api/0/api-tokens/(?P<token_id>\d+)/", "api_token_delete"),
    ("GET POST", r"/api/0/organizations/", "organizations"),
    ("GET PUT DELETE", rf"/api/0/organizations/(?P<org>{SLUG})/", "organization"),
    ("GET POST", rf"/api/0/organizations/(?P<org>{SLUG})/members/", "members"),
    (
        "GET PUT DELETE",
        rf"/api/0/organizations/(?P<org>{SLUG})/members/(?P<member>\d+)/",
        "member",
    ),
    ("GET POST", rf"/api/0/organizations/(?P<org>{SLUG})/teams/", "org_teams"),
    ("GET", rf"/api/0/organizations/(?P<org>{SLUG})/projects/", "org_projects"),
    ("GET", rf"/api/0/organizations/(?P<org>{SLUG})/issues/", "org_issues"),
    ("GET", rf"/api/0/organizations/(?P<org>{SLUG})/transaction-groups/", "transaction_groups"),
    ("GET", rf"/api/0/organizations/(?P<org>{SLUG})/stats_v2/", "stats_v2"),
    ("GET POST", rf"/api/0/organizations/(?P<org>{SLUG})/monitors/", "monitors"),
    ("GET PUT DELETE", rf"/api/0/organizations/(?P<org>{SLUG})/monitors/(?P<mid>\d+)/", "monitor"),
    ("GET", rf"/api/0/organizations/(?P<org>{SLUG})/monitors/(?P<mid>\d+)/checks/", "checks"),
    ("POST", rf"/api/0/organizations/(?P<org>{SLUG})/heartbeat_check/(?P<eid>[^/]+)/", "beat"),
    ("GET POST", rf"/api/0/organizations/(?P<org>{SLUG})/status-pages/", "status_pages"),
    ("GET POST", rf"/api/0/organizations/(?P<org>{SLUG})/releases/", "org_releases"),
    (
        "GET PUT DELETE",
        rf"/api/0/organizations/(?P<org>{SLUG})/releases/(?P<version>[^/]+)/",
        "org_release",
    ),
    (
        "GET POST",
        rf"/api/0/projects/(?P<org>{SLUG})/(?P<project>{SLUG})/releases/",
        "project_releases",
    ),
    (
        "GET PUT DELETE",
        rf"/api/0/projects/(?P<org>{SLUG})/(?P<project>{SLUG})/releases/(?P<version>[^/]+)/",
        "project_release",
    ),
    ("GET PUT DELETE", rf"/api/0/teams/(?P<org>{SLUG})/(?P<team>{SLUG})/", "team"),
    (
        "POST DELETE",
        rf"/api/0/organizations/(?P<org>{SLUG})/members/(?P<member>me|\d+)/teams/(?P<team>{SLUG})/",
        "member_team",
    ),
    ("GET POST", rf"/api/0/teams/(?P<org>{SLUG})/(?P<team>{SLUG})/projects/", "team_projects"),
    ("GET", r"/api/0/projects/", "all_projects"),
    ("GET PUT DELETE", rf"/api/0/projects/(?P<org>{SLUG})/(?P<project>{SLUG})/", "project"),
    ("GET", rf"/api/0/projects/(?P<org>{SLUG})/(?P<project>{SLUG})/teams/", "project_teams"),
    (
        "POST DELETE",
        rf"/api/0/projects/(?P<org>{SLUG})/(?P<project>{SLUG})/teams/(?P<team>{SLUG})/",
        "project_team",
    ),
    ("GET", rf"/api/0/teams/(?P<org>{SLUG})/(?P<team>{SLUG})/members/", "team_members"),
    ("GET POST", rf"/api/0/projects/(?P<org>{SLUG})/(?P<project>{SLUG})/keys/", "keys"),
    (
        "GET PUT DELETE",
        rf"/api/0/projects/(?P<org>{SLUG})/(?P<project>{SLUG})/keys/(?P<key>[^/]+)/",
        "key",
    ),
    ("GET POST", rf"/api/0/projects/(?P<org>{SLUG})/(?P<project>{SLUG})/alerts/", "alerts"),
    (
        "PUT DELETE",
        rf"/api/0/projects/(?P<org>{SLUG})/(?P<project>{SLUG})/alerts/(?P<aid>\d+)/",
        "alert",
    ),
    ("GET", rf"/api/0/projects/(?P<org>{SLUG})/(?P<project>{SLUG})/issues/", "project_issues"),
    ("GET", rf"/api/0/projects/(?P<org>{SLUG})/(?P<project>{SLUG})/events/", "project_events"),
    ("GET PUT", r"/api/0/issues/(?P<iid>\d+)/", "issue"),
    ("GET", r"/api/0/issues/(?P<iid>\d+)/events/", "issue_events"),
    ("GET", r"/api/0/issues/(?P<iid>\d+)/events/latest/", "issue_latest_event"),
    ("GET", r"/api/0/observability/django/", "metrics"),
    ("GET", r"/metrics", "metrics_v6"),
    ("POST", r"/api/(?P<pid>\d+)/envelope/", "envelope"),
    ("POST", r"/api/(?P<pid>\d+)/store/", "store"),
]
_COMPILED = [(methods.split(), re.compile(f"^{rx}$"), name) for methods, rx, name in ROUTES]


class FakeGlitchTip:
    """The fake's application: `handle()` one request against the store."""

    def __init__(self, store: Store, queue: EventQueue, config: FakeConfig | None = None) -> None:
        self.store = store
        self.queue = queue
        self.config = config or FakeConfig()
        self.metrics = RequestMetrics()

    def route_name(self, path: str) -> str | None:
        """The handler a path is routed to (None: the SPA's 404), for the metrics' view label."""
        path = urlsplit(path).path
        for _methods, pattern, name in _COMPILED:
            if pattern.match(path):
                return name
        return None

    # --- dispatch -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request (never raises)."""
        if not host_allowed(request.headers.get("host"), list(self.config.allowed_hosts)):
            return text_response(400, _html_error("Bad Request (400)"))
        path = request.path
        for methods, pattern, name in _COMPILED:
            match = pattern.match(path)
            if not match:
                continue
            if request.method not in methods:
                # ninja's routers declare their methods (recorded 50, 441).
                response = text_response(405, "Method not allowed")
                response.headers.append(("Allow", ", ".join(methods)))
                return response
            try:
                with self.store.transaction() as state:
                    return getattr(self, f"h_{name}")(state, request, **match.groupdict())
            except HttpError as error:
                return error.response
            except (ValueError, KeyError, TypeError, AttributeError):
                return text_response(500, _html_error("Server Error (500)"))
        return text_response(404, HTML_PAGE)

    # --- auth helpers ---------------------------------------------------------------------

    def auth(self, state: State, request: Request, *, session: bool = True) -> Auth:
        """Bearer token first, then the session cookie (like ninja's [TokenAuth, SessionAuth])."""
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            record = state["tokens"].get(header[len("Bearer ") :].strip())
            if record is not None:
                user = state["users"].get(str(record["user_id"]))
                if user is not None:
                    return Auth(user, set(record["scopes"]), record)
        if session:
            sid = request.cookies.get("sessionid")
            record = state["sessions"].get(sid or "")
            if record is not None:
                user = state["users"].get(str(record["user_id"]))
                if user is not None:
                    return Auth(user, None, None, sid)
        return Auth()

    def require(self, state: State, request: Request, *scopes: str) -> Auth:
        """The caller, if authenticated (401) with one of `scopes` (403); none: any token."""
        who = self.auth(state, request)
        if who.user is None:
            raise fail(*UNAUTHORIZED)
        if who.session_id and request.method not in ("GET", "HEAD"):
            self.check_csrf(state, request, json_failure=True)
        if scopes and who.scopes is not None and not who.scopes.intersection(scopes):
            raise fail(*DENIED)
        return who

    def check_csrf(self, state: State, request: Request, *, json_failure: bool) -> None:
        """Django's CSRF check: matching Origin, and X-CSRFToken equal to the csrftoken cookie."""
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host", ""):
            raise HttpError(text_response(403, CSRF_FAILURE_HTML))
        cookie = request.cookies.get("csrftoken", "")
        header = request.headers.get("x-csrftoken", "")
        ok = bool(cookie) and secrets.compare_digest(cookie, header)
        if ok:
            sid = request.cookies.get("sessionid", "")
            session = state["sessions"].get(sid)
            # Django rotates the token at login: the pre-login token no longer passes.
            if session is not None and session.get("csrf") and session["csrf"] != cookie:
                ok = False
        if not ok:
            if json_failure:
                raise fail(403, "CSRF check Failed")
            raise HttpError(text_response(403, CSRF_FAILURE_HTML))

    def org_for(self, state: State, who: Auth, slug: str) -> dict:
        """The caller's org with this slug, or 404."""
        org = model.find_org(state, who.user, slug)
        if org is None:
            raise fail(*NOT_FOUND)
        return org

    def project_for(self, state: State, who: Auth, org_slug: str, slug: str) -> dict:
        """The live project, or 404."""
        org = self.org_for(state, who, org_slug)
        project = model.find_project(state, org["id"], slug)
        if project is None:
            raise fail(*NOT_FOUND)
        return project

    def body(self, request: Request) -> dict:
        """The JSON body as a dict, or 400 like ninja."""
        try:
            payload = request.json()
        except (ValueError, UnicodeDecodeError):
            raise fail(400, "Cannot parse request body") from None
        if not isinstance(payload, dict):
            raise fail(400, "Cannot parse request body")
        return payload

    def paginated(self, request: Request, items: list[Any]) -> Response:
        """A list page with X-Hits, X-Max-Hits and the malformed (set-repr) Link header."""
        query = request.query
        try:
            limit = max(1, min(int(query.get("limit", [DEFAULT_LIMIT])[0]), 100))
        except ValueError:
            limit = DEFAULT_LIMIT
        offset = 0
        cursor = query.get("cursor", [""])[0]
        if cursor:
            try:
                offset = int(base64.urlsafe_b64decode(cursor.encode()).decode().split("=", 1)[1])
            except (ValueError, IndexError):
                offset = 0
        page = items[offset : offset + limit]
        base = f"http://{request.headers.get('host', 'localhost')}{request.path}"
        keep = {k: v[0] for k, v in query.items() if k != "cursor"}

        def link(rel: str, target: int | None) -> str:
            if target is None:
                params = urlencode(keep)
                return f'<{base}{"?" + params if params else ""}>; rel="{rel}"; results="false"'
            token = base64.urlsafe_b64encode(f"o={target}".encode()).decode()
            params = urlencode({"cursor": token, **keep})
            return f'<{base}?{params}>; rel="{rel}"; results="true"; cursor="{token}"'

        previous = link("previous", max(0, offset - limit) if offset > 0 else None)
        following = link("next", offset + limit if offset + limit < len(items) else None)
        header = "{'" + ", ".join([previous, following]) + "'}"
        return json_response(
            200,
            page,
            [("Link", header), ("X-Max-Hits", str(MAX_HITS)), ("X-Hits", str(len(items)))],
        )

    # --- health, settings, whoami -------------------------------------------------------

    def h_health(self, state: State, request: Request) -> Response:
        return text_response(200, "ok", "text/plain")

    def h_internal_health(self, state: State, request: Request) -> Response:
        return Response(
            200, [("Content-Type", "application/json")], b'{"healthy": {}, "problems": []}'
        )

    def h_settings(self, state: State, request: Request) -> Response:
        registration = self.config.enable_user_registration or not state["users"]
        return json_response(
            200,
            {
                "socialApps": [],
                "billingEnabled": False,
                "iPaidForGlitchTip": False,
                "enableUserRegistration": registration,
                "enableSocialAppsUserRegistration": registration,
                "enableOrganizationCreation": self.config.enable_organization_creation,
                "stripePublicKey": None,
                "plausibleUrl": None,
                "plausibleDomain": None,
                "chatwootWebsiteToken": None,
                "sentryDSN": None,
                "sentryTracesSampleRate": 0.01,
                "environment": None,
                "version": self.config.version,
                "serverTimeZone": "UTC",
                "glitchtipInstanceName": None,
            },
        )

    def h_api_root(self, state: State, request: Request) -> Response:
        who = self.auth(state, request, session=False)
        if who.user is not None:
            return json_response(
                200,
                {
                    "version": "0",
                    "user": model.user_json(who.user),
                    "auth": model.token_json(who.token),
                },
            )
        headers = []
        if "sessionid" in request.cookies:
            # Recorded GOTCHA: the async session lookup fails with Valkey sessions, so the
            # session looks empty and Django deletes the client's session cookie.
            headers.append(
                (
                    "Set-Cookie",
                    'sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; '
                    "SameSite=Lax",
                )
            )
        return json_response(200, {"version": "0", "user": None, "auth": None}, headers)

    def h_metrics(self, state: State, request: Request) -> Response:
        """GlitchTip 5's metrics: any token or session of a staff user (scopes unchecked)."""
        if self.config.major >= 6:
            return text_response(404, HTML_PAGE)  # 6 serves /metrics instead
        who = self.auth(state, request)
        if who.user is None:
            raise fail(*UNAUTHORIZED)
        if not who.user["is_staff"]:
            raise fail(403, "is_staff required")
        return self._exposition(state)

    def h_metrics_v6(self, state: State, request: Request) -> Response:
        """GlitchTip 6's `/metrics`: no authentication, and only with ENABLE_OBSERVABILITY_API."""
        if self.config.major < 6 or not self.config.observability_api:
            return text_response(404, HTML_PAGE)  # no such URL: the SPA's 404 (recorded 90)
        return self._exposition(state)

    def _exposition(self, state: State) -> Response:
        orgs = [
            (org["slug"], len(model.org_projects(state, org["id"])))
            for org in state["orgs"].values()
        ]
        body = self.metrics.exposition(orgs, http=self.config.observability_api)
        return Response(200, [("Content-Type", METRICS_CONTENT_TYPE)], body)

    # --- allauth headless (browser client) -------------------------------------------------

    def _allauth(self, request: Request, status: int, payload: Any, cookies: dict[str, str]):
        csrf = cookies.pop("csrftoken", None) or request.cookies.get("csrftoken")
        csrf = csrf or secrets.token_urlsafe(24)
        headers = [("Content-Type", "application/json")]
        # Attributes in Django's order (recorded); Secure last, as Django writes it.
        secure = "; Secure" if self.config.cookie_secure("csrftoken") else ""
        expires = _cookie_expires(31449600)
        headers.append(
            (
                "Set-Cookie",
                f"csrftoken={csrf}; expires={expires}; Max-Age=31449600; Path=/; "
                f"SameSite=Lax{secure}",
            )
        )
        for name, value in cookies.items():
            if value:
                secure = "; Secure" if self.config.cookie_secure(name) else ""
                headers.append(
                    (
                        "Set-Cookie",
                        f"{name}={value}; expires={_cookie_expires(1209600)}; HttpOnly; "
                        f"Max-Age=1209600; Path=/; SameSite=Lax{secure}",
                    )
                )
            else:
                headers.append(
                    (
                        "Set-Cookie",
                        f'{name}=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; '
                        "SameSite=Lax",
                    )
                )
        return Response(status, headers, json.dumps(payload).encode())

    @staticmethod
    def _anonymous_session() -> dict:
        return {
            "status": 401,
            "data": {"flows": [{"id": "login"}, {"id": "mfa_login_webauthn"}]},
            "meta": {"is_authenticated": False},
        }

    @staticmethod
    def _session_payload(user: dict, methods: list[dict]) -> dict:
        return {
            "status": 200,
            "data": {"user": model.allauth_user_json(user), "methods": methods},
            "meta": {"is_authenticated": True},
        }

    def _start_session(self, state: State, user: dict, method: dict) -> tuple[str, str]:
        sid = secrets.token_hex(16)
        csrf = secrets.token_urlsafe(24)  # rotated at login
        state["sessions"][sid] = {"user_id": user["id"], "csrf": csrf, "methods": [method]}
        state["users"][str(user["id"])]["last_login"] = model.now_iso()
        return sid, csrf

    def h_allauth_config(self, state: State, request: Request) -> Response:
        open_signup = self.config.enable_user_registration or not state["users"]
        payload = {
            "status": 200,
            "data": {
                "account": {
                    "login_methods": ["email"],
                    "is_open_for_signup": open_signup,
                    "email_verification_by_code_enabled": False,
                    "login_by_code_enabled": False,
                    "password_reset_by_code_enabled": False,
                    "authentication_method": "email",
                },
                "socialaccount": {"providers": []},
                "mfa": {
                    "supported_types": ["totp", "webauthn", "recovery_codes"],
                    "passkey_login_enabled": True,
                },
            },
        }
        return self._allauth(request, 200, payload, {})

    def h_allauth_login(self, state: State, request: Request) -> Response:
        self.check_csrf(state, request, json_failure=False)
        payload = self.body(request)
        email, password = payload.get("email"), payload.get("password")
        errors = [
            {"message": "This field is required.", "code": "required", "param": name}
            for name in ("email", "password")
            if not payload.get(name)
        ]
        if errors:
            return self._allauth(request, 400, {"status": 400, "errors": errors}, {})
        user = model.find_user(state, str(email))
        if user is None or not model.check_password(user, str(password)):
            errors = [
                {
                    "message": "The email address and/or password you specified are not correct.",
                    "code": "email_password_mismatch",
                    "param": "password",
                }
            ]
            return self._allauth(request, 400, {"status": 400, "errors": errors}, {})
        method = {"method": "password", "at": time.time(), "email": user["email"]}
        sid, csrf = self._start_session(state, user, method)
        body = self._session_payload(user, [method])
        return self._allauth(request, 200, body, {"csrftoken": csrf, "sessionid": sid})

    def h_allauth_signup(self, state: State, request: Request) -> Response:
        self.check_csrf(state, request, json_failure=False)
        if not (self.config.enable_user_registration or not state["users"]):
            return self._allauth(request, 403, {"status": 403}, {})
        payload = self.body(request)
        email, password = str(payload.get("email") or ""), str(payload.get("password") or "")
        errors = []
        if not email or "@" not in email:
            errors.append(
                {"message": "Enter a valid email address.", "code": "invalid", "param": "email"}
            )
        elif model.find_user(state, email) is not None:
            errors.append(
                {
                    "message": "A user is already registered with this email address.",
                    "code": "email_taken",
                    "param": "email",
                }
            )
        if len(password) < 8:
            errors.append(
                {
                    "message": "This password is too short. It must contain at least 8 characters.",
                    "code": "password_too_short",
                    "param": "password",
                }
            )
        if password.lower() in COMMON_PASSWORDS:
            errors.append(
                {
                    "message": "This password is too common.",
                    "code": "password_too_common",
                    "param": "password",
                }
            )
        if password.isdigit():
            errors.append(
                {
                    "message": "This password is entirely numeric.",
                    "code": "password_entirely_numeric",
                    "param": "password",
                }
            )
        if errors:
            return self._allauth(request, 400, {"status": 400, "errors": errors}, {})
        user = model.add_user(state, email, password, superuser=False)
        method = {"method": "signup", "at": time.time()}
        sid, csrf = self._start_session(state, user, method)
        body = self._session_payload(user, [method])
        return self._allauth(request, 200, body, {"csrftoken": csrf, "sessionid": sid})

    def h_allauth_session(self, state: State, request: Request) -> Response:
        sid = request.cookies.get("sessionid", "")
        session = state["sessions"].get(sid)
        if request.method == "DELETE":
            self.check_csrf(state, request, json_failure=False)
            if session is not None:
                del state["sessions"][sid]
            # allauth answers a successful logout with 401 "not authenticated"; Django deletes
            # the session cookie when the request carried one, valid or not (recorded, 137).
            cookies = {"sessionid": ""} if "sessionid" in request.cookies else {}
            return self._allauth(request, 401, self._anonymous_session(), cookies)
        if session is None or str(session["user_id"]) not in state["users"]:
            return self._allauth(request, 401, self._anonymous_session(), {})
        user = state["users"][str(session["user_id"])]
        return self._allauth(request, 200, self._session_payload(user, session["methods"]), {})

    # --- API tokens (session only) -----------------------------------------------------------

    def _session_user(self, state: State, request: Request) -> dict:
        session = state["sessions"].get(request.cookies.get("sessionid", ""))
        if session is None:
            raise fail(*UNAUTHORIZED)
        return state["users"][str(session["user_id"])]

    def h_api_tokens(self, state: State, request: Request) -> Response:
        if request.method == "GET":
            user = self._session_user(state, request)
            tokens = [t for t in state["tokens"].values() if t["user_id"] == user["id"]]
            tokens.sort(key=lambda t: t["id"], reverse=True)
            return self.paginated(request, [model.token_json(t) for t in tokens])
        self.check_csrf(state, request, json_failure=True)
        user = self._session_user(state, request)
        payload = self.body(request)
        if "scopes" not in payload:
            return missing_field("scopes")
        scopes = payload["scopes"]
        if not isinstance(scopes, list) or any(s not in model.ALL_SCOPES for s in scopes):
            return json_response(422, {"detail": [{"scopes": "Invalid scope"}]})
        record = model.add_token(state, user, scopes, str(payload.get("label") or ""))
        return json_response(201, model.token_json(record))

    def h_api_token_delete(self, state: State, request: Request, token_id: str) -> Response:
        self.check_csrf(state, request, json_failure=True)
        user = self._session_user(state, request)
        for value, record in list(state["tokens"].items()):
            if record["id"] == int(token_id) and record["user_id"] == user["id"]:
                del state["tokens"][value]
                return Response(204, [("Content-Type", "application/json; charset=utf-8")])
        raise fail(*NOT_FOUND)

    # --- organizations ------------------------------------------------------------------------

    def h_organizations(self, state: State, request: Request) -> Response:
        if request.method == "GET":
            who = self.require(state, request, "org:read", "org:write", "org:admin")
            return self.paginated(
                request, [model.org_json(o) for o in model.user_orgs(state, who.user)]
            )
        who = self.require(state, request, "org:write", "org:admin")
        payload = self.body(request)
        if not isinstance(payload.get("name"), str) or not payload["name"].strip():
            return missing_field("name")
        allowed = (
            self.config.enable_organization_creation
            or who.user["is_superuser"]
            or not state["orgs"]
        )
        if not allowed:
            raise fail(403, "Organization creation is not open")
        org = model.add_org(state, who.user, payload["name"].strip())
        return json_response(201, model.org_detail_json(state, org, who.user))

    def h_organization(self, state: State, request: Request, org: str) -> Response:
        scopes = {
            "GET": ("org:read", "org:write", "org:admin"),
            "PUT": ("org:write", "org:admin"),
            "DELETE": ("org:admin",),
        }[request.method]
        who = self.require(state, request, *scopes)
        record = self.org_for(state, who, org)
        if request.method == "DELETE":
            del state["orgs"][str(record["id"])]
            for table in ("teams", "projects"):
                for key, item in list(state[table].items()):
                    if item["org_id"] == record["id"]:
                        del state[table][key]
            return Response(204, [("Content-Type", "application/json; charset=utf-8")])
        if request.method == "PUT":
            payload = self.body(request)
            if not isinstance(payload.get("name"), str):
                return missing_field("name")
            if not model.role_at_least(record, who.user, "manager"):
                raise fail(403, "forbidden")  # lower case, unlike other 403s (recorded, 312)
            record["name"] = payload["name"]
        return json_response(200, model.org_detail_json(state, record, who.user))

    def h_members(self, state: State, request: Request, org: str) -> Response:
        if request.method == "POST":
            return self._invite(state, request, org)
        who = self.require(state, request, "member:read", "member:write", "member:admin")
        record = self.org_for(state, who, org)
        return self.paginated(request, model.org_members_json(state, record))

    def _invite(self, state: State, request: Request, org: str) -> Response:
        """Invite by e-mail (recorded 282-288): a pending member, 409 for a member or (with
        `reinvite: false`) an invitee, 403 for an unknown e-mail with registration closed."""
        who = self.require(state, request, "member:write", "member:admin")
        record = self.org_for(state, who, org)
        payload = self.body(request)
        errors = _role_errors(payload)
        email = payload.get("email")
        if not isinstance(email, str):
            errors.append({"type": "missing", "loc": ["body", "payload", "email"],
                           "msg": "Field required"})  # fmt: skip
        elif "@" not in email:
            reason = "An email address must have an @-sign."
            errors.append({"type": "value_error", "loc": ["body", "payload", "email"],
                           "msg": f"value is not a valid email address: {reason}",
                           "ctx": {"reason": reason}})  # fmt: skip
        if errors:
            return json_response(422, {"detail": errors})
        # The order of GlitchTip's create_organization_member (apps/organizations_ext/api.py).
        if not model.role_at_least(record, who.user, "manager"):
            raise fail(403, "forbidden")
        user = model.find_user(state, email)
        if user is None and not self.config.enable_user_registration:
            raise fail(403, "Only existing users may be invited")
        if user is not None and user["id"] in record["members"]:
            raise fail(409, f"The user {email} is already a member")
        invites = record.setdefault("invites", {})
        found = next((m for m, i in invites.items() if i["email"] == email), None)
        if found is not None and payload.get("reinvite", True) is False:
            raise fail(409, f"The user {email} is already invited")
        if found is None:
            # The org-user id: the user's own where there is one (the recorded data set's
            # ids coincide), else past every user and invitation id.
            taken = [int(u) for u in state["users"]] + [int(m) for m in invites]
            found = str(user["id"] if user is not None else max(taken, default=0) + 1)
            invites[found] = {"email": email, "role": payload["orgRole"], "teams": [],
                              "created": model.now_iso()}  # fmt: skip
        invite = invites[found]  # a re-invite keeps the role (286) but adds the teams
        for role in payload.get("teamRoles") or []:
            slug = role.get("teamSlug") if isinstance(role, dict) else None
            team = model.find_team(state, record["id"], str(slug))
            if team is not None and slug not in invite["teams"]:
                invite["teams"].append(slug)
        return json_response(201, model.pending_json(found, invite))

    def h_member(self, state: State, request: Request, org: str, member: str) -> Response:
        """One member: GET (with `teams`), PUT `orgRole` (the last owner stays, 299), DELETE
        (an owner cannot remove themself, 318); recorded 281-321."""
        scopes = {"GET": _MEMBER_ANY, "PUT": ("member:write", "member:admin"),
                  "DELETE": ("member:admin",)}[request.method]  # fmt: skip
        who = self.require(state, request, *scopes)
        record = self.org_for(state, who, org)
        invites = record.setdefault("invites", {})
        user = state["users"].get(member)
        accepted = user is not None and user["id"] in record["members"]
        if not accepted and member not in invites:
            raise fail(*NOT_FOUND)
        if request.method == "PUT":
            errors = _role_errors(self.body(request))
            if errors:
                return json_response(422, {"detail": errors})
            if not model.role_at_least(record, who.user, "manager"):
                raise fail(403, "Forbidden")
            role = self.body(request)["orgRole"]
            # Any other owner, pending ones included, keeps the org owned (the source's
            # update_organization_member; recorded 299).
            if role != "owner" and model.org_owners(record, state, besides=member) == 0:
                raise fail(422, "Organization must have at least one owner")
            if not accepted:
                invites[member]["role"] = role  # the source's PUT takes any org user
            else:
                record.setdefault("roles", {})[member] = role
        elif request.method == "DELETE":
            if not model.role_at_least(record, who.user, "manager") and user is not who.user:
                raise fail(403, "Forbidden")
            if not accepted:
                del invites[member]
            else:
                if user is who.user and model.org_role(record, user) == "owner":
                    raise fail(400, "User is organization owner. Transfer ownership first.")
                record["members"].remove(user["id"])
                for team in model.org_teams(state, record["id"]):
                    if user["id"] in team["members"]:
                        team["members"].remove(user["id"])
            return Response(204, [("Content-Type", "application/json; charset=utf-8")])
        body = (model.pending_json(member, invites[member]) if not accepted
                else model.member_json(state, record, user))  # fmt: skip
        body["teams"] = model.member_teams(state, record, member)
        return json_response(200, body)

    # --- teams ----------------------------------------------------------------------------------

    def h_org_teams(self, state: State, request: Request, org: str) -> Response:
        if request.method == "GET":
            who = self.require(state, request, "team:read", "team:write", "team:admin", *_ORG_ANY)
            record = self.org_for(state, who, org)
            # Newest first (recorded, 382); the org detail lists them oldest first.
            found = sorted(model.org_teams(state, record["id"]), key=lambda t: -t["id"])
            return self.paginated(request, [model.team_json(state, t, who.user) for t in found])
        who = self.require(state, request, "team:write", "team:admin", "org:write", "org:admin")
        record = self.org_for(state, who, org)
        if not model.role_at_least(record, who.user, "admin"):
            raise fail(*NOT_FOUND)  # the org lookup filters on role >= admin (recorded, 311)
        payload = self.body(request)
        slug = payload.get("slug")
        if not isinstance(slug, str) or not slug:
            return missing_field("slug")
        if model.find_team(state, record["id"], slug) is not None:
            # Recorded: an unhandled IntegrityError on teams_team_slug_organization_id.
            return text_response(500, _html_error("Server Error (500)"))
        team = model.add_team(state, record, slug, who.user)
        return json_response(201, model.team_json(state, team, who.user))

    def _team(self, state: State, who: Auth, org: str, team: str) -> tuple[dict, dict]:
        record = self.org_for(state, who, org)
        found = model.find_team(state, record["id"], team)
        if found is None:
            raise fail(*NOT_FOUND)
        return record, found

    def h_team(self, state: State, request: Request, org: str, team: str) -> Response:
        scopes = {
            "GET": ("team:read", "team:write", "team:admin"),
            "PUT": ("team:write", "team:admin"),
            "DELETE": ("team:admin",),
        }[request.method]
        who = self.require(state, request, *scopes)
        _, found = self._team(state, who, org, team)
        if request.method == "DELETE":
            del state["teams"][str(found["id"])]
            return Response(204, [("Content-Type", "application/json; charset=utf-8")])
        if request.method == "PUT":
            payload = self.body(request)
            if not isinstance(payload.get("slug"), str):
                return missing_field("slug")
            if not re.fullmatch(SLUG, payload["slug"]):
                return json_response(422, {"detail": [_pattern_error("slug", SLUG)]})
            other = model.find_team(state, found["org_id"], payload["slug"])
            if other is not None and other is not found:
                return text_response(500, _html_error("Server Error (500)"))  # IntegrityError
            found["slug"] = payload["slug"]
        return json_response(200, model.team_json(state, found, who.user))

    def h_team_members(self, state: State, request: Request, org: str, team: str) -> Response:
        """The team's org members, newest first (recorded 302, 308)."""
        who = self.require(state, request, *_MEMBER_ANY, "team:read", "team:write", "team:admin")
        record, found = self._team(state, who, org, team)
        users = [state["users"][str(u)] for u in found["members"] if u in record["members"]]
        users.sort(key=lambda u: -u["id"])
        return self.paginated(request, [model.member_json(state, record, u) for u in users])

    def h_member_team(
        self, state: State, request: Request, org: str, member: str, team: str
    ) -> Response:
        """Add (201) or remove (200, idempotent) an org member to a team (recorded 300-310)."""
        who = self.require(state, request, "team:write", "team:admin")
        record, found = self._team(state, who, org, team)
        user = who.user if member == "me" else state["users"].get(member)
        if (user is None or user is not who.user) and not model.role_at_least(
            record, who.user, "admin"
        ):
            raise fail(403, "Must be admin to modify teams")
        if user is None or user["id"] not in record["members"]:
            raise fail(*NOT_FOUND)
        # The answer is the team as loaded before the change: memberCount is stale (recorded).
        body = model.team_json(state, found, who.user)
        if request.method == "POST":
            if user["id"] not in found["members"]:
                found["members"].append(user["id"])
            body["isMember"] = body["isMember"] or user is who.user
            return json_response(201, body)
        if user["id"] in found["members"]:
            found["members"].remove(user["id"])
        return json_response(200, body)

    def h_team_projects(self, state: State, request: Request, org: str, team: str) -> Response:
        if request.method == "GET":
            who = self.require(state, request, *_PROJECT_READ)
            record, found = self._team(state, who, org, team)
            projects = [
                model.project_json(state, p, user=who.user)
                for p in model.org_projects(state, record["id"])
                if found["id"] in p["team_ids"]
            ]
            return self.paginated(request, projects)
        who = self.require(state, request, "project:write", "project:admin")
        record, found = self._team(state, who, org, team)
        payload = self.body(request)
        if not isinstance(payload.get("name"), str) or not payload["name"]:
            return missing_field("name")
        platform = payload.get("platform")
        slug = payload.get("slug") if isinstance(payload.get("slug"), str) else None
        project = model.add_project(state, record, found, payload["name"], platform, slug)
        return json_response(201, model.project_json(state, project, user=who.user))

    # --- projects -------------------------------------------------------------------------------

    def h_all_projects(self, state: State, request: Request) -> Response:
        who = self.require(state, request, *_PROJECT_READ)
        projects = [
            model.project_json(state, p, with_org=True, user=who.user)
            for org in model.user_orgs(state, who.user)
            for p in model.org_projects(state, org["id"])
        ]
        return self.paginated(request, projects)

    def h_org_projects(self, state: State, request: Request, org: str) -> Response:
        who = self.require(state, request, *_PROJECT_READ)
        record = self.org_for(state, who, org)
        projects = model.org_projects(state, record["id"])
        query = request.query.get("query", [""])[0]
        if query.startswith("team:"):
            team = model.find_team(state, record["id"], query[5:])
            projects = [p for p in projects if team is not None and team["id"] in p["team_ids"]]
        return self.paginated(
            request,
            [model.project_json(state, p, with_teams=True, user=who.user) for p in projects],
        )

    def h_project(self, state: State, request: Request, org: str, project: str) -> Response:
        scopes = {
            "GET": _PROJECT_READ,
            "PUT": ("project:write", "project:admin"),
            "DELETE": ("project:admin",),
        }[request.method]
        who = self.require(state, request, *scopes)
        record = self.project_for(state, who, org, project)
        if request.method == "DELETE":
            record["deleted"] = True  # soft delete, like GlitchTip
            return Response(204, [("Content-Type", "application/json; charset=utf-8")])
        if request.method == "PUT":
            payload = self.body(request)
            if not isinstance(payload.get("name"), str):
                return missing_field("name")
            slug = payload.get("slug")
            if isinstance(slug, str) and slug != record["slug"]:
                # Not validated (recorded 336); a taken slug is an IntegrityError (335).
                if model.find_project(state, record["org_id"], slug) is not None:
                    return text_response(500, _html_error("Server Error (500)"))
                record["slug"] = slug
            rate = payload.get("eventThrottleRate")
            if isinstance(rate, int) and rate < 0:
                return text_response(500, _html_error("Server Error (500)"))  # a DB check
            record["name"] = payload["name"]
            if "platform" in payload:
                record["platform"] = payload["platform"]
            if isinstance(rate, int):
                record["event_throttle_rate"] = rate  # no 0-100 check (recorded 338)
        return json_response(200, model.project_json(state, record, with_org=True, user=who.user))

    def h_project_teams(self, state: State, request: Request, org: str, project: str) -> Response:
        """The project's teams without their projects, newest first (recorded 342, 345)."""
        who = self.require(state, request, *_PROJECT_READ)
        record = self.project_for(state, who, org, project)
        teams = [state["teams"][str(t)] for t in record["team_ids"] if str(t) in state["teams"]]
        teams.sort(key=lambda t: -t["id"])
        return self.paginated(
            request,
            [
                {k: v for k, v in model.team_json(state, t, who.user).items() if k != "projects"}
                for t in teams
            ],
        )

    def h_project_team(
        self, state: State, request: Request, org: str, project: str, team: str
    ) -> Response:
        # The recorded scope list is ["project.write", "project:admin"] (a typo upstream).
        who = self.require(state, request, "project.write", "project:admin")
        record = self.project_for(state, who, org, project)
        _, found = self._team(state, who, org, team)
        if request.method == "POST":
            if found["id"] not in record["team_ids"]:
                record["team_ids"].append(found["id"])
            return json_response(
                201, model.project_json(state, record, with_teams=True, user=who.user)
            )
        if found["id"] not in record["team_ids"]:
            raise fail(*NOT_FOUND)  # removing is not idempotent (recorded 349)
        record["team_ids"].remove(found["id"])
        return json_response(200, model.project_json(state, record, with_teams=True, user=who.user))

    # --- keys -----------------------------------------------------------------------------------

    def h_keys(self, state: State, request: Request, org: str, project: str) -> Response:
        domain = self.config.glitchtip_domain
        if request.method == "GET":
            who = self.require(state, request, *_PROJECT_READ)
            record = self.org_for(state, who, org)
            found = model.find_project(state, record["id"], project)
            keys = model.project_keys(state, found["id"]) if found else []  # lists don't 404
            return self.paginated(request, [model.key_json(k, domain) for k in keys])
        who = self.require(state, request, "project:write", "project:admin")
        found = self.project_for(state, who, org, project)
        payload = self.body(request)
        rate_limit = payload.get("rateLimit")
        key = model.add_key(state, found, str(payload.get("name") or ""), rate_limit)
        return json_response(201, model.key_json(key, domain))

    def h_key(self, state: State, request: Request, org: str, project: str, key: str) -> Response:
        scopes = {
            "GET": _PROJECT_READ,
            "PUT": ("project:write", "project:admin"),
            "DELETE": ("project:admin",),
        }[request.method]
        who = self.require(state, request, *scopes)
        found = self.project_for(state, who, org, project)
        canonical = str(uuid.UUID(key))  # not a UUID: ValueError -> recorded 500
        record = state["keys"].get(canonical)
        if record is None or record["project_id"] != found["id"]:
            raise fail(*NOT_FOUND)
        if request.method == "DELETE":
            del state["keys"][canonical]
            return Response(204, [("Content-Type", "application/json; charset=utf-8")])
        if request.method == "PUT":
            # Validated, then nothing is saved (recorded bug, 358-361).
            errors = _rate_limit_errors(self.body(request).get("rateLimit"))
            if errors:
                return json_response(422, {"detail": errors})
        return json_response(200, model.key_json(record, self.config.glitchtip_domain))

    # --- alerts ---------------------------------------------------------------------------------

    def _alert_payload(self, request: Request) -> dict | Response:
        """The cleaned alert body; every field is optional (`{}` creates an alert, recorded 391)."""
        payload = self.body(request)
        recipients = payload.get("alertRecipients", [])
        cleaned = []
        for index, recipient in enumerate(recipients if isinstance(recipients, list) else []):
            kind = recipient.get("recipientType")
            url = str(recipient.get("url", "") or "")
            if kind not in RECIPIENT_TYPES:
                return json_response(422, {"detail": [_recipient_tag_error(index, kind)]})
            if kind != "email" and not re.match(r"^https?://[^\s/]+", url):
                error = "input is empty" if not url else "relative URL without a base"
                return json_response(
                    422,
                    {
                        "detail": [
                            {
                                "type": "url_parsing",
                                "loc": ["body", "payload", "alertRecipients", index, kind, "url"],
                                "msg": f"Input should be a valid URL, {error}",
                                "ctx": {"error": error},
                            }
                        ]
                    },
                )
            tags = recipient.get("tagsToAdd") or []
            cleaned.append({"recipientType": kind, "url": url, "tags": list(tags)})
        fields = {k: payload[k] for k in ("name", "timespanMinutes", "quantity") if k in payload}
        if "uptime" in payload:
            fields["uptime"] = bool(payload["uptime"])
        return {"fields": fields, "recipients": cleaned}

    def _add_recipients(self, state: State, alert: dict, cleaned: list[dict]) -> Response | None:
        """Insert recipients one by one; a duplicate is an IntegrityError after the earlier rows
        and their ids were used (recorded 394: the alert stays, without recipients)."""
        for recipient in cleaned:
            recipient_id = model.next_id(state, "rcp")
            key = (recipient["recipientType"], recipient["url"], tuple(recipient["tags"]))
            if any(_recipient_key(r) == key for r in alert["recipients"]):
                alert["recipients"] = []
                return text_response(500, _html_error("Server Error (500)"))
            alert["recipients"].append({"id": recipient_id, **recipient})
        return None

    def h_alerts(self, state: State, request: Request, org: str, project: str) -> Response:
        if request.method == "GET":
            who = self.require(state, request, *_PROJECT_READ)
            record = self.org_for(state, who, org)
            found = model.find_project(state, record["id"], project)
            alerts = [
                a for a in state["alerts"].values() if found and a["project_id"] == found["id"]
            ]
            alerts.sort(key=lambda a: a["id"], reverse=True)
            return self.paginated(request, [model.alert_json(a) for a in alerts])
        who = self.require(state, request, "project:write", "project:admin")
        found = self.project_for(state, who, org, project)
        cleaned = self._alert_payload(request)
        if isinstance(cleaned, Response):
            return cleaned
        fields = cleaned["fields"]
        if any(isinstance(fields.get(k), int) and fields[k] < 0 for k in _ALERT_NUMBERS):
            # A positive-integer column: the insert fails, no row (recorded 394b).
            return text_response(500, _html_error("Server Error (500)"))
        alert_id = model.next_id(state, "alert")
        alert = {
            "id": alert_id,
            "project_id": found["id"],
            "recipients": [],
            "name": str(fields.get("name") or ""),
            "timespanMinutes": fields.get("timespanMinutes"),
            "quantity": fields.get("quantity"),
            "uptime": fields.get("uptime", False),
        }
        state["alerts"][str(alert_id)] = alert
        failed = self._add_recipients(state, alert, cleaned["recipients"])
        if failed is not None:
            return failed  # the alert row stays, committed before the failing insert
        return json_response(201, model.alert_json(alert))

    def h_alert(self, state: State, request: Request, org: str, project: str, aid: str):
        scopes = ("project:admin",) if request.method == "DELETE" else _PROJECT_WRITE
        who = self.require(state, request, *scopes)
        found = self.project_for(state, who, org, project)
        alert = state["alerts"].get(aid)
        if alert is None or alert["project_id"] != found["id"]:
            raise fail(*NOT_FOUND)
        if request.method == "DELETE":
            org_record = state["orgs"][str(found["org_id"])]
            if not model.role_at_least(org_record, who.user, "admin"):
                raise fail(*NOT_FOUND)  # filtered on the caller's role (recorded 400)
            del state["alerts"][aid]
            return Response(204, [("Content-Type", "application/json; charset=utf-8")])
        cleaned = self._alert_payload(request)
        if isinstance(cleaned, Response):
            return cleaned
        alert.update(cleaned["fields"])  # scalar fields are partial (recorded 397)
        # Recipients are synchronised: a match on (type, url, tags) keeps its id, the rest go;
        # a PUT without alertRecipients deletes them all (recorded 396-398).
        kept = {_recipient_key(r): r for r in alert["recipients"]}
        wanted = [_recipient_key(r) for r in cleaned["recipients"]]
        alert["recipients"] = [kept[k] for k in wanted if k in kept]
        new = [r for r, k in zip(cleaned["recipients"], wanted, strict=True) if k not in kept]
        failed = self._add_recipients(state, alert, new)
        if failed is not None:
            return failed
        alert["recipients"].sort(key=lambda r: r["id"])
        return json_response(200, model.alert_json(alert))

    # --- uptime monitors (no scope check, recorded) --------------------------------------------

    def _monitor_payload(
        self, state: State, org: dict, request: Request, current: dict | None = None
    ) -> dict | Response:
        """The cleaned monitor body, or the recorded 422 (monitors 420-427 in the recordings).

        An update keeps the current type, name and interval when omitted, but needs the three
        `expected*`/`timeout` fields like a create (recorded 448).
        """
        payload = self.body(request)
        required: tuple[str, ...] = ("expectedBody", "expectedStatus", "timeout")
        if current is None:
            required = ("monitorType", "name", "interval", *required)
        else:
            for name in ("monitorType", "name", "interval", "url"):
                payload.setdefault(name, current[name])
        missing = [
            {"type": "missing", "loc": ["body", "payload", name], "msg": "Field required"}
            for name in required
            if name not in payload
        ]
        if missing:
            return json_response(422, {"detail": missing})
        timeout = payload["timeout"]
        if isinstance(timeout, int) and not 1 <= timeout <= 60:
            kind, bound = ("less_than_equal", 60) if timeout > 60 else ("greater_than_equal", 1)
            word = "less" if timeout > 60 else "greater"
            return json_response(
                422,
                {
                    "detail": [
                        {
                            "type": kind,
                            "loc": ["body", "payload", "timeout"],
                            "msg": f"Input should be {word} than or equal to {bound}",
                            "ctx": {"le" if timeout > 60 else "ge": bound},
                        }
                    ]
                },
            )
        kind = payload["monitorType"]  # not validated on input (recorded bug, 424)
        url = str(payload.get("url") or "")
        if kind in ("GET", "POST", "SSL") and not url:
            raise fail(422, f"URL is required for {kind}")
        if kind in ("GET", "POST", "Ping") and not _django_url(url):
            raise fail(422, "Invalid Url")  # Django's URLValidator: `http://web:8080` fails
        if kind in ("GET", "POST") and payload["expectedStatus"] is None:
            raise fail(422, f"Expected status is required for {kind}")
        if kind == "TCP Port":
            match = re.fullmatch(r"(?:[a-z]+://)?([^\s/:]+):(\d+)/?", url)
            if match is None:
                raise fail(422, "Invalid Port URL, expected hostname and port")
            url = f"{match.group(1)}:{match.group(2)}"  # stored without the scheme (415)
        project = state["projects"].get(str(payload.get("project")))
        # An unknown project is dropped silently (recorded 418).
        project_id = project["id"] if project and project["org_id"] == org["id"] else None
        return {
            "monitorType": kind,
            "name": str(payload["name"]),
            "url": url,
            "interval": payload["interval"],
            "expectedBody": payload["expectedBody"],
            "expectedStatus": payload["expectedStatus"],
            "timeout": timeout,
            "project_id": project_id,
        }

    def h_monitors(self, state: State, request: Request, org: str) -> Response:
        who = self.require(state, request)
        record = self.org_for(state, who, org)
        domain = self.config.glitchtip_domain
        if request.method == "GET":
            monitors = [m for m in state["monitors"].values() if m["org_id"] == record["id"]]
            if any(m["monitorType"] not in MONITOR_TYPES for m in monitors):
                return text_response(500, _html_error("Server Error (500)"))  # recorded 428
            monitors.sort(key=lambda m: m["id"], reverse=True)
            return self.paginated(request, [model.monitor_json(state, m, domain) for m in monitors])
        cleaned = self._monitor_payload(state, record, request)
        if isinstance(cleaned, Response):
            return cleaned
        if not isinstance(cleaned["interval"], int) or not 0 < cleaned["interval"] < 2**15:
            return text_response(500, _html_error("Server Error (500)"))  # no range check (427)
        monitor_id = model.next_id(state, "monitor")
        monitor = {
            "id": monitor_id,
            "org_id": record["id"],
            "endpoint_id": str(uuid.uuid4()) if cleaned["monitorType"] == "Heartbeat" else None,
            "created": model.now_iso(),
            "last_change": None,
            **cleaned,
        }
        state["monitors"][str(monitor_id)] = monitor
        if monitor["monitorType"] not in MONITOR_TYPES:
            # The row is stored, then serialising it fails (recorded 424).
            return text_response(500, _html_error("Server Error (500)"))
        return json_response(201, model.monitor_json(state, monitor, domain))

    def _monitor(self, state: State, request: Request, org: str, mid: str) -> dict:
        who = self.require(state, request)
        record = self.org_for(state, who, org)
        monitor = state["monitors"].get(mid)
        if monitor is None or monitor["org_id"] != record["id"]:
            raise fail(*NOT_FOUND)
        return monitor

    def h_monitor(self, state: State, request: Request, org: str, mid: str) -> Response:
        monitor = self._monitor(state, request, org, mid)
        if request.method == "DELETE":
            del state["monitors"][mid]
            for key, check in list(state["checks"].items()):
                if check["monitor_id"] == monitor["id"]:
                    del state["checks"][key]
            return Response(204, [("Content-Type", "application/json; charset=utf-8")])
        if request.method == "PUT":
            org_record = state["orgs"][str(monitor["org_id"])]
            cleaned = self._monitor_payload(state, org_record, request, monitor)
            if isinstance(cleaned, Response):
                return cleaned
            monitor.update(cleaned)
        if monitor["monitorType"] not in MONITOR_TYPES:
            return text_response(500, _html_error("Server Error (500)"))  # recorded 424a
        return json_response(
            200, model.monitor_json(state, monitor, self.config.glitchtip_domain, detail=True)
        )

    def h_checks(self, state: State, request: Request, org: str, mid: str) -> Response:
        monitor = self._monitor(state, request, org, mid)
        checks = [
            {k: c[k] for k in ("isUp", "startCheck", "reason", "responseTime")}
            for c in model.monitor_checks(state, monitor["id"])
        ]
        return self.paginated(request, checks)

    def h_beat(self, state: State, request: Request, org: str, eid: str) -> Response:
        try:
            uuid.UUID(eid)
        except ValueError:
            return text_response(404, HTML_PAGE)  # the URL pattern wants a UUID (recorded 443)
        for monitor in state["monitors"].values():
            owner = state["orgs"].get(str(monitor["org_id"]), {})
            if monitor["endpoint_id"] == eid and owner.get("slug") == org:
                check = model.add_check(state, monitor, True, None, None)
                return json_response(
                    200, {"is_up": True, "start_check": check["startCheck"], "reason": None}
                )
        raise fail(*NOT_FOUND)

    # --- releases (recorded 240-271; sentry-cli's releases new/list/finalize) -------------------

    def _releases(self, state: State, org: dict) -> list[dict]:
        """The org's releases, newest first (recorded 240, 270)."""
        found = [r for r in state.setdefault("releases", {}).values() if r["org_id"] == org["id"]]
        return sorted(found, key=lambda r: -r["id"])

    def _release(self, state: State, org: dict, version: str) -> dict | None:
        return next((r for r in self._releases(state, org) if r["version"] == version), None)

    def _release_json(self, state: State, release: dict) -> Response:
        return json_response(200, model.release_json(state, release))

    def _release_update(self, state: State, request: Request, release: dict) -> Response:
        """PUT is a full replace: an omitted ref becomes null, an omitted dateReleased now;
        version and projects stay (recorded 253-255, 261)."""
        payload = self.body(request)
        release["ref"] = payload.get("ref")
        release["date_released"] = payload.get("dateReleased") or model.now_iso()
        return self._release_json(state, release)

    def h_org_releases(self, state: State, request: Request, org: str) -> Response:
        who = self.require(state, request, "project:releases")  # even GET (recorded 268)
        record = self.org_for(state, who, org)
        if request.method == "GET":
            items = [model.release_json(state, r) for r in self._releases(state, record)]
            return self.paginated(request, items)
        payload = self.body(request)
        missing = [
            {"type": "missing", "loc": ["body", "payload", name], "msg": "Field required"}
            for name in ("version", "projects")
            if name not in payload
        ]
        if missing:
            return json_response(422, {"detail": missing})
        slugs = payload["projects"] if isinstance(payload["projects"], list) else []
        projects = [model.find_project(state, record["id"], str(s)) for s in slugs]
        project_ids = sorted({p["id"] for p in projects if p is not None})
        if not project_ids:
            return json_response(
                422, {"detail": [{"projects": "Require at least one valid project"}]}
            )
        if self._release(state, record, str(payload["version"])) is not None:
            # Unique (organization, version): an unhandled IntegrityError (recorded 245, 246).
            return text_response(500, _html_error("Server Error (500)"))
        release = model.add_release(state, record, str(payload["version"]), project_ids,
                                    payload.get("ref"), payload.get("dateReleased"))  # fmt: skip
        return json_response(201, model.release_json(state, release))

    def h_org_release(self, state: State, request: Request, org: str, version: str) -> Response:
        who = self.require(state, request, "project:releases")
        record = self.org_for(state, who, org)
        release = self._release(state, record, unquote(version))
        if release is None:
            raise fail(*NOT_FOUND)
        if request.method == "DELETE":
            del state["releases"][str(release["id"])]
            return Response(204, [("Content-Type", "application/json; charset=utf-8")])
        if request.method == "PUT":
            return self._release_update(state, request, release)
        return self._release_json(state, release)

    def h_project_releases(self, state: State, request: Request, org: str, project: str):
        who = self.require(state, request, "project:releases")
        record = self.org_for(state, who, org)
        found = model.find_project(state, record["id"], project)
        if request.method == "GET":
            if found is None:
                return self.paginated(request, [])  # an unknown project lists [] (recorded 271)
            mine = [r for r in self._releases(state, record) if found["id"] in r["project_ids"]]
            return self.paginated(request, [model.release_json(state, r) for r in mine])
        if found is None:
            raise fail(*NOT_FOUND)
        payload = self.body(request)
        if "version" not in payload:
            return missing_field("version")
        release = self._release(state, record, str(payload["version"]))
        if release is None:
            version = str(payload["version"])
            release = model.add_release(
                state,
                record,
                version,
                [found["id"]],
                payload.get("ref"),
                payload.get("dateReleased"),
            )
        elif found["id"] not in release["project_ids"]:
            # Get-or-create: an existing release gains the project, nothing else (257, 258).
            release["project_ids"] = sorted([*release["project_ids"], found["id"]])
        return json_response(201, model.release_json(state, release))

    def h_project_release(
        self, state: State, request: Request, org: str, project: str, version: str
    ) -> Response:
        who = self.require(state, request, "project:releases")
        record = self.project_for(state, who, org, project)
        org_record = state["orgs"][str(record["org_id"])]
        release = self._release(state, org_record, unquote(version))
        if release is None or record["id"] not in release["project_ids"]:
            raise fail(*NOT_FOUND)  # not linked to this project (recorded 260)
        if request.method == "DELETE":
            # The whole release goes, for every project (recorded 263, 264).
            del state["releases"][str(release["id"])]
            return Response(204, [("Content-Type", "application/json; charset=utf-8")])
        if request.method == "PUT":
            return self._release_update(state, request, release)
        return self._release_json(state, release)

    def h_status_pages(self, state: State, request: Request, org: str) -> Response:
        """Status pages: create (a taken name gets `-2`...), list newest first. The list holds
        the pages of all the caller's orgs, not only `{org}`'s (NOTES.md, from the source)."""
        who = self.require(state, request)
        record = self.org_for(state, who, org)
        pages = state.setdefault("status_pages", {})
        if request.method == "GET":
            mine = {o["id"] for o in model.user_orgs(state, who.user)}
            found = sorted(
                (p for p in pages.values() if p["org_id"] in mine), key=lambda p: -p["id"]
            )
            return self.paginated(request, [_status_page_json(p) for p in found])
        payload = self.body(request)
        if not isinstance(payload.get("name"), str):
            return missing_field("name")
        base = model.slugify(payload["name"]) or "status"
        taken = {p["slug"] for p in pages.values() if p["org_id"] == record["id"]}
        slug, number = base, 1
        while slug in taken:
            number += 1
            slug = f"{base}-{number}"
        page_id = model.next_id(state, "status_page")
        page = {
            "id": page_id,
            "org_id": record["id"],
            "name": payload["name"],
            "slug": slug,
            "isPublic": bool(payload.get("isPublic", False)),
        }
        pages[str(page_id)] = page
        return json_response(201, _status_page_json(page))

    # --- stats -----------------------------------------------------------------------------------

    def h_stats_v2(self, state: State, request: Request, org: str) -> Response:
        """Event counts per hour (apps/stats/api.py; see stats.py for its SQL and bugs).

        Order as in django-ninja: authentication (401), then the query schema (422, "Too many
        intervals" included), then the view's scope check (403), then the org's projects (404).
        """
        who = self.auth(state, request)
        if who.user is None:
            raise fail(*UNAUTHORIZED)
        query = request.query
        errors = stats.validate_query(query)
        if errors:
            return json_response(422, {"detail": errors})
        start = stats.parse_datetime(query["start"][0])
        end = stats.parse_datetime(query["end"][0])
        if stats.too_many_intervals(start, end, (query.get("interval") or ["1h"])[0]):
            return json_response(422, {"detail": [{"end": "Too many intervals"}]})
        if who.scopes is not None and not who.scopes.intersection(_ORG_ANY):
            raise fail(*DENIED)
        record = model.find_org(state, who.user, org)
        ids = [p["id"] for p in model.org_projects(state, record["id"])] if record else []
        status, body = stats.stats_v2_body(state, query, ids)
        return json_response(status, body)

    # --- issues and events -----------------------------------------------------------------------

    def _issues(self, state: State, project_ids: set[int]) -> list[dict]:
        issues = [i for i in state["issues"].values() if i["project_id"] in project_ids]
        return sorted(issues, key=lambda i: (i["last_seen"], i["id"]), reverse=True)

    def h_project_issues(self, state: State, request: Request, org: str, project: str):
        who = self.require(state, request, *_EVENT_ANY)
        record = self.org_for(state, who, org)
        found = model.find_project(state, record["id"], project)
        issues = self._issues(state, {found["id"]} if found else set())
        domain = self.config.glitchtip_domain
        return self.paginated(request, [model.issue_json(state, i, domain) for i in issues])

    def h_org_issues(self, state: State, request: Request, org: str) -> Response:
        who = self.require(state, request, *_EVENT_ANY)
        record = self.org_for(state, who, org)
        ids = {p["id"] for p in model.org_projects(state, record["id"])}
        domain = self.config.glitchtip_domain
        issues = [model.issue_json(state, i, domain) for i in self._issues(state, ids)]
        return self.paginated(request, issues)

    def _issue(self, state: State, request: Request, iid: str) -> dict:
        who = self.require(state, request, *_EVENT_ANY)
        issue = state["issues"].get(iid)
        if issue is None:
            raise fail(*NOT_FOUND)
        project = state["projects"][str(issue["project_id"])]
        if model.find_org(state, who.user, state["orgs"][str(project["org_id"])]["slug"]) is None:
            raise fail(*NOT_FOUND)
        return issue

    def _events(self, state: State, predicate) -> list[dict]:
        events = [e for e in state["events"].values() if predicate(e)]
        return sorted(events, key=lambda e: e["seq"], reverse=True)

    def h_issue(self, state: State, request: Request, iid: str) -> Response:
        issue = self._issue(state, request, iid)
        if request.method == "PUT":
            # Recorded 214: {"status": "resolved"} -> 200, the issue with some snake_case keys
            # (that route lacks by_alias). A later event leaves the status as it is: the
            # ingest's update_issues changes count and last_seen only (GlitchTip's source).
            self.require(state, request, "event:write", "event:admin")
            status = self.body(request).get("status")
            if status not in ("resolved", "unresolved", "ignored"):
                raise fail(422, "status must be resolved, unresolved or ignored")
            issue["status"] = status
            body = model.issue_json(state, issue, self.config.glitchtip_domain, detail=True)
            snake = {"shareId": "share_id", "statusDetails": "status_details",
                     "subscriptionDetails": "subscription_details", "userCount": "user_count",
                     "matchingEventId": "matching_event_id"}  # fmt: skip
            return json_response(200, {snake.get(key, key): value for key, value in body.items()})
        return json_response(
            200, model.issue_json(state, issue, self.config.glitchtip_domain, detail=True)
        )

    def h_issue_events(self, state: State, request: Request, iid: str) -> Response:
        issue = self._issue(state, request, iid)
        events = self._events(state, lambda e: e["issue_id"] == issue["id"])
        return self.paginated(request, [model.event_json(e, snake=True) for e in events])

    def h_issue_latest_event(self, state: State, request: Request, iid: str) -> Response:
        issue = self._issue(state, request, iid)
        events = self._events(state, lambda e: e["issue_id"] == issue["id"])
        if not events:
            raise fail(*NOT_FOUND)
        return json_response(200, model.event_json(events[0], detail=True))

    def h_project_events(self, state: State, request: Request, org: str, project: str):
        who = self.require(state, request, *_EVENT_ANY)
        record = self.org_for(state, who, org)
        found = model.find_project(state, record["id"], project)
        pid = found["id"] if found else None
        events = self._events(state, lambda e: e["project_id"] == pid)
        return self.paginated(request, [model.event_json(e) for e in events])

    # --- ingestion: validate the DSN key, queue the raw event ---------------------------------

    def _ingest_key(self, state: State, request: Request, pid: str) -> dict:
        # GlitchTip's auth_from_request: the query first (`sentry_key` or `glitchtip_key`), then
        # the X-Sentry-Auth or Authorization header.
        key = (request.query.get("sentry_key") or request.query.get("glitchtip_key") or [""])[0]
        if not key:
            header = request.headers.get("x-sentry-auth") or request.headers.get("authorization")
            match = re.search(r"(?:sentry|glitchtip)_key=([^,\s]+)", header or "")
            key = match.group(1) if match else ""
        record = model.find_key_by_public(state, key) if key else None
        if record is None:
            raise fail(403, "Denied")
        if str(record["project_id"]) != pid:
            raise fail(401, "Invalid DSN")
        return record

    def h_transaction_groups(self, state: State, request: Request, org: str) -> Response:
        """Transactions grouped by name and op, with their count (recorded 157)."""
        who = self.require(state, request, *_EVENT_ANY)
        record = self.org_for(state, who, org)
        ids = {p["id"] for p in model.org_projects(state, record["id"])}
        groups = [
            {
                "avgDuration": round(g["duration_ms"] / g["count"]) if g["count"] else 0,
                "transactionCount": g["count"],
                "project": g["project_id"],
                "id": g["id"],
                "transaction": g["transaction"],
                "op": g["op"],
                "method": "",
            }
            for g in sorted(state.get("transaction_groups", {}).values(), key=lambda g: g["id"])
            if g["project_id"] in ids
        ]
        return self.paginated(request, groups)

    @staticmethod
    def _decompressed(request: Request) -> bytes:
        """The ingest body decoded from its Content-Encoding (GlitchTip decompresses gzip and
        deflate bodies; sentry-sdk sends gzip); Django's plain 400 page when it cannot be decoded
        (as the stand-in's web layer answers)."""
        encoding = request.headers.get("content-encoding", "").strip().lower()
        try:
            if encoding in ("gzip", "x-gzip"):
                return zlib.decompress(request.body, 16 + zlib.MAX_WBITS)
            if encoding == "deflate":
                return zlib.decompress(request.body)
        except zlib.error:
            raise HttpError(text_response(400, _html_error("Bad Request (400)"))) from None
        return request.body

    def h_envelope(self, state: State, request: Request, pid: str) -> Response:
        try:
            key = self._ingest_key(state, request, pid)
        except HttpError as error:
            # The envelope view answers with a plain JsonResponse: no charset (recorded, 104).
            error.response.headers = [("Content-Type", "application/json")]
            raise
        lines = self._decompressed(request).decode("utf-8", "replace").split("\n")
        try:
            header = json.loads(lines[0]) if lines and lines[0].strip() else {}
        except ValueError:
            raise fail(400, "Invalid envelope") from None
        event_id = str(header.get("event_id") or uuid.uuid4().hex)
        index = 1
        while index + 1 < len(lines):
            try:
                item_header = json.loads(lines[index]) if lines[index].strip() else {}
            except ValueError:
                break
            payload = lines[index + 1]
            if item_header.get("type") in ("event", "transaction"):
                self.queue.push(
                    {
                        "kind": item_header["type"],
                        "project_id": key["project_id"],
                        "received": model.now_iso(),
                        "received_exact": model.now_exact(),
                        "event_id": event_id,
                        "payload": payload,
                    }
                )
            index += 2
        return Response(
            200, [("Content-Type", "application/json")], json.dumps({"id": event_id}).encode()
        )

    def h_store(self, state: State, request: Request, pid: str) -> Response:
        key = self._ingest_key(state, request, pid)
        request.body = self._decompressed(request)
        payload = self.body(request)
        event_id = str(payload.get("event_id") or uuid.uuid4().hex)
        # Recorded: a duplicate event_id is not deduplicated.
        self.queue.push(
            {
                "kind": "event",
                "project_id": key["project_id"],
                "received": model.now_iso(),
                "received_exact": model.now_exact(),
                "event_id": event_id,
                "payload": json.dumps(payload),
            }
        )
        return json_response(200, {"event_id": event_id, "task_id": None})


_ORG_ANY = ("org:read", "org:write", "org:admin")
_MEMBER_ANY = ("member:read", "member:write", "member:admin")
ORG_ROLES = ("member", "admin", "manager", "owner")


def _role_errors(payload: dict) -> list[dict]:
    """Pydantic's 422 items for `orgRole` (recorded 283, 283b, 298)."""
    loc = ["body", "payload", "orgRole"]
    if "orgRole" not in payload:
        return [{"type": "missing", "loc": loc, "msg": "Field required"}]
    if payload["orgRole"] not in ORG_ROLES:
        expected = "'member', 'admin', 'manager' or 'owner'"
        return [{"type": "literal_error", "loc": loc, "msg": f"Input should be {expected}",
                 "ctx": {"expected": expected}}]  # fmt: skip
    return []


_ALERT_NUMBERS = ("timespanMinutes", "quantity")
MONITOR_TYPES = ("GET", "POST", "Ping", "TCP Port", "SSL", "Heartbeat")
# Django's URLValidator hosts: IDN labels (non-ASCII letters) are valid, a TLD is letters or
# punycode; a single label (compose's `web`) is not (recorded 412).
_HOST = (
    r"(?:localhost|\d{1,3}(?:\.\d{1,3}){3}"
    r"|(?:[a-z0-9\u00a1-\uffff-]+\.)+(?:[a-z\u00a1-\uffff]{2,63}|xn--[a-z0-9]{1,59})\.?)"
)
# Django's URLValidator takes an optional `user:password@` before the host (its regex's
# "user:pass authentication" group).
_DJANGO_URL = re.compile(
    rf"(?:https?|ftps?)://(?:[^\s:@/]+(?::[^\s:@/]*)?@)?{_HOST}(?::\d{{1,5}})?(?:[/?#]\S*)?", re.I
)


def _django_url(url: str) -> bool:
    """Django's URLValidator, roughly: a scheme and a host that is an IP, localhost or a dotted
    name (compose's single-label `web` fails, recorded 412)."""
    return bool(_DJANGO_URL.fullmatch(url))


RECIPIENT_TYPES = ("email", "webhook", "discord", "googlechat")
_RECIPIENT_TAGS = (
    "RecipientType.EMAIL, RecipientType.DISCORD, RecipientType.GENERAL_WEBHOOK, "
    "RecipientType.GOOGLE_CHAT"
)


def _status_page_json(page: dict) -> dict:
    """StatusPageSchema (monitors cannot be attached through the API)."""
    return {
        "isPublic": page["isPublic"],
        "name": page["name"],
        "monitors": [],
        "slug": page["slug"],
    }


def _recipient_key(recipient: dict) -> tuple[str, str, tuple[str, ...]]:
    return recipient["recipientType"], recipient["url"], tuple(recipient.get("tags") or ())


def _recipient_tag_error(index: int, tag: Any) -> dict:
    """Pydantic's 422 item for an unknown `recipientType` (recorded 392)."""
    discriminator = "'recipient_type' | 'recipientType'"
    return {
        "type": "union_tag_invalid",
        "loc": ["body", "payload", "alertRecipients", index],
        "msg": f"Input tag '{tag}' found using {discriminator} does not match any of the "
        f"expected tags: {_RECIPIENT_TAGS}",
        "ctx": {"discriminator": discriminator, "tag": str(tag), "expected_tags": _RECIPIENT_TAGS},
    }


_PROJECT_READ = ("project:read", "project:write", "project:admin")
_PROJECT_WRITE = ("project:write", "project:admin")
_EVENT_ANY = ("event:read", "event:write", "event:admin")
