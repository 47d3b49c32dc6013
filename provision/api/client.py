"""An httpx client for the parts of GlitchTip's API the kit uses.

Explicit about the network: every request has a timeout; connection failures and 502/503/504
(GlitchTip restarting behind its proxy) are retried a bounded number of times with exponential
backoff; list endpoints are followed through GlitchTip's malformed `Link` header (a Python set
repr, `{'<...>; rel="next"; results="true"; ...'}`); and every failure becomes an `ApiError` with
one line that names what was missing or refused. The token never appears in a message.

Connections are never reused: GlitchTip 5's uWSGI answers one request per connection and closes
it without saying so (NOTES.md), so a pooled connection fails the next request. A new connection
per request costs well under a millisecond on the kit's own host. A request that may have reached
GlitchTip is repeated only when repeating it changes nothing (not a POST): GlitchTip's create
calls are not idempotent, and a duplicate organization or project is worse than an error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from provision.errors import ApiError, UsageError
from provision.masking import redact

RETRY_STATUSES = frozenset({502, 503, 504})
# Methods whose repetition has no further effect (RFC 9110 9.2.2), so any transport error may be
# retried; a POST only after errors raised before the request left the client.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# One connection per request (see the module docstring); the pool may still open many.
NO_REUSE = httpx.Limits(max_keepalive_connections=0)
_TLS: list[Any] = []  # one TLS context per process (see tls_context)
MAX_PAGES = 100
USER_AGENT = "glitchtip-kit"


# GlitchTip's tokens are hex; an HTTP header value must be visible ASCII anyway (httpx refuses
# anything else with a UnicodeEncodeError, and a newline in it is a protocol error that looked
# like a connection failure and was retried).
_TOKEN = re.compile(r"[\x21-\x7e]{1,1000}")


def check_token(token: str | None, where: str = "--token / GLITCHTIP_API_TOKEN") -> None:
    """Refuse a token that cannot go into an Authorization header, in one line (exit 2) and
    before any request; the token itself is never shown. None or "" means no token."""
    if token and not _TOKEN.fullmatch(token):
        raise UsageError(
            f"the API token ({where}) has spaces, control or non-ASCII characters, or is too "
            "long; GlitchTip's tokens are letters and digits",
            "copy the token again (Profile > Auth Tokens in GlitchTip)",
        )


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry: `attempts` in all, backoff doubling from `backoff`."""

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return min(self.backoff * (2 ** (attempt - 1)), self.max_backoff)


DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def tls_context() -> Any:
    """The TLS context every client of this process shares.

    Building one loads the CA bundle (about 45 ms); `provision up` opens several clients.
    """
    if not _TLS:
        _TLS.append(httpx.create_ssl_context())
    return _TLS[0]


def tls_context_for(base_url: str) -> Any:
    """The TLS context of a client of `base_url`: the shared one with the CA bundle for https;
    for http a context that trusts no CA, since such a client is never meant to speak TLS (a
    redirect or a Link to https then fails closed) and loading the bundle would cost a
    `create-project` re-run about 40 ms of its 0.3 s."""
    if urlsplit(base_url).scheme.lower() == "https":
        return tls_context()
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates, trusts none


def parse_link_header(value: str) -> dict[str, dict[str, str]]:
    """Parse a Link header, tolerating GlitchTip's set-repr wrapper; rel -> {url, params...}."""
    text = value.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    links: dict[str, dict[str, str]] = {}
    for match in re.finditer(r"<([^>]*)>((?:\s*;\s*[\w-]+=\"[^\"]*\")*)", text):
        params = dict(re.findall(r'([\w-]+)="([^"]*)"', match.group(2)))
        params["url"] = match.group(1)
        if "rel" in params:
            links[params["rel"]] = params
    return links


def _first_line(text: str) -> str:
    """The first meaningful line of a response body (HTML tags stripped), for error messages."""
    plain = re.sub(r"<[^>]+>", "\n", text)
    for line in plain.splitlines():
        line = " ".join(line.split())
        if line:
            return line[:200]
    return "(empty response)"


def display_url(url: str) -> str:
    """`url` for messages: any user and password before the host are dropped."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.rpartition("@")[2] if "@" in url else url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _field_errors(body: Any) -> str:
    """GlitchTip's 422 body as `field: message` pairs."""
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, str):
        return detail
    parts = []
    for item in detail if isinstance(detail, list) else []:
        if isinstance(item, dict) and "msg" in item:
            loc = [str(p) for p in item.get("loc", []) if p not in ("body", "payload")]
            parts.append(f"{'.'.join(loc) or 'body'}: {item['msg']}")
        elif isinstance(item, dict):
            parts.extend(f"{k}: {v}" for k, v in item.items())
    return "; ".join(parts) or "invalid input"


class GlitchTipClient:
    """GlitchTip's API with a Bearer token; use as a context manager or call `close()`."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        secrets: Iterable[str | None] = (),
    ) -> None:
        check_token(token)
        self.base_url = base_url.rstrip("/")
        self.display_url = display_url(self.base_url)
        self._token = token
        # Scrubbed from every message built from GlitchTip's answers (token, admin password).
        self._secrets = [token, *secrets]
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            limits=NO_REUSE,
            verify=tls_context_for(self.base_url),
        )
        self.posts = 0
        self.requests = 0

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> GlitchTipClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport -------------------------------------------------------------------------

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request with retries on transport errors and 502/503/504; no status mapping.

        Idempotent methods are retried after any transport error; a POST only when it cannot
        have reached GlitchTip (the connection was never made, or 503), since GlitchTip's
        create calls are not idempotent: a POST whose answer was lost is reported instead.
        """
        method = method.upper()
        for attempt in range(1, self.retry.attempts + 1):
            try:
                self.requests += 1
                if method == "POST":
                    self.posts += 1
                response = self.http.request(method, path, **kwargs)
            except NOT_SENT_ERRORS as exc:
                if attempt == self.retry.attempts:
                    raise self._unreachable(exc, attempt) from None
            except httpx.UnsupportedProtocol:
                raise self._invalid_url(path) from None
            except httpx.TransportError as exc:
                if method not in IDEMPOTENT_METHODS:
                    raise self._lost_answer(method, path, exc) from None
                if attempt == self.retry.attempts:
                    raise self._no_answer(method, path, exc, attempt) from None
            except httpx.HTTPError as exc:
                raise self._no_answer(method, path, exc, attempt) from None
            except httpx.InvalidURL:
                raise self._invalid_url(path) from None
            else:
                retryable = response.status_code in RETRY_STATUSES and (
                    method != "POST" or response.status_code == 503
                )
                if not retryable or attempt == self.retry.attempts:
                    return response
            self._sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _invalid_url(self, path: str) -> ApiError:
        return ApiError(
            f"{self.display_url}{_path_only(path)} is not a valid URL",
            "check --url / GLITCHTIP_URL, e.g. http://127.0.0.1:8000",
        )

    def _unreachable(self, exc: Exception, attempts: int) -> ApiError:
        return ApiError(
            f"cannot reach GlitchTip at {self.display_url} ({exc.__class__.__name__}, "
            f"{_attempts(attempts)})",
            "check --url / GLITCHTIP_URL and that GlitchTip is running",
        )

    def _no_answer(self, method: str, path: str, exc: Exception, attempts: int) -> ApiError:
        return ApiError(
            f"GlitchTip at {self.display_url} did not answer {method} {_path_only(path)} "
            f"({exc.__class__.__name__}, {_attempts(attempts)})",
            "check that --url / GLITCHTIP_URL points at GlitchTip itself and see its logs",
        )

    def _lost_answer(self, method: str, path: str, exc: Exception) -> ApiError:
        return ApiError(
            f"GlitchTip at {self.display_url} dropped the connection before answering "
            f"{method} {_path_only(path)} ({exc.__class__.__name__}); not repeated because "
            "GlitchTip may have executed it",
            "run the same command again: it creates only what is still missing",
        )

    def request(
        self, method: str, path: str, *, action: str, not_found: str | None = None, **kwargs: Any
    ) -> Any:
        """Send, map every error status to an `ApiError`, and return the decoded JSON body."""
        response = self.send(method, path, **kwargs)
        self.raise_for_status(response, action=action, not_found=not_found)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                f"GlitchTip answered {action} with something that is not JSON "
                f"({self._redact(_first_line(response.text))})",
                "check that --url points at GlitchTip itself",
            ) from None

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def raise_for_status(
        self, response: httpx.Response, *, action: str, not_found: str | None = None
    ) -> None:
        """Map a non-2xx response to one clear `ApiError` line (secrets scrubbed)."""
        status = response.status_code
        if status < 400:
            return
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if status == 401:
            raise ApiError(
                "token rejected by GlitchTip (401)",
                "give a valid API token (--token / GLITCHTIP_API_TOKEN) or the admin's "
                "e-mail and password",
                status=status,
            )
        if status == 403:
            why = body.get("detail") if isinstance(body, dict) else None
            if why and why != "Permission denied":
                raise ApiError(f"GlitchTip refused to {action}: {self._redact(why)}", status=status)
            raise ApiError(
                f"token lacks scope to {action} (403)",
                "use a token with the scopes org:write, team:write, project:write and "
                "project:admin, or let the kit create one from the admin's e-mail and password",
                status=status,
            )
        if status == 404 and not (isinstance(body, dict) and "detail" in body):
            # GlitchTip's API answers an unknown name with JSON {"detail": "Not Found"}; an HTML
            # or empty 404 means no API route matched: another server, or a path prefix.
            where = _path_only(str(response.request.url.path))
            raise ApiError(
                f"{self.display_url} has no GlitchTip API at {where} "
                f"(404 without GlitchTip's JSON answer) while trying to {action}",
                "check that --url / GLITCHTIP_URL is GlitchTip's own address (scheme, host, port, "
                "no path)",
                status=status,
            )
        if status == 404:
            raise ApiError(
                not_found or f"GlitchTip has nothing at {response.request.url.path} (404)",
                "check the names, or let create-project create them",
                status=status,
            )
        if status == 422:
            raise ApiError(
                f"GlitchTip rejected the request to {action}: {self._redact(_field_errors(body))}",
                status=status,
            )
        text = _first_line(response.text)
        raise ApiError(
            f"GlitchTip failed to {action}: HTTP {status}: {self._redact(text)}",
            "see GlitchTip's logs" if status >= 500 else None,
            status=status,
        )

    def paginate(self, path: str, *, action: str, not_found: str | None = None) -> list[Any]:
        """Every item of a list endpoint, following `rel="next"` while it has results."""
        items: list[Any] = []
        url: str | None = path
        for _ in range(MAX_PAGES):
            if url is None:
                break
            response = self.send("GET", url)
            self.raise_for_status(response, action=action, not_found=not_found)
            try:
                page = response.json()
            except ValueError:
                raise ApiError(
                    f"GlitchTip answered {action} with something that is not JSON", None
                ) from None
            if not isinstance(page, list):
                raise ApiError(f"GlitchTip answered {action} with an unexpected shape")
            items.extend(page)
            link = parse_link_header(response.headers.get("link", "")).get("next")
            url = link["url"] if link and link.get("results") == "true" and page else None
        return items

    # --- endpoints ---------------------------------------------------------------------------

    def whoami(self) -> dict:
        """`GET /api/0/`: the token's user and scopes (`user` is None when not authenticated)."""
        return self.request("GET", "/api/0/", action="check the API token")

    def organizations(self) -> list[dict]:
        """All organizations the token's user belongs to."""
        return self.paginate("/api/0/organizations/", action="list organizations")

    def create_organization(self, name: str) -> dict:
        """Create an organization (GlitchTip derives the slug; a taken one gets a suffix)."""
        return self.request(
            "POST", "/api/0/organizations/", json={"name": name}, action="create an organization"
        )

    def teams(self, org: str) -> list[dict]:
        """Teams of an organization."""
        return self.paginate(
            f"/api/0/organizations/{q(org)}/teams/",
            action="list teams",
            not_found=f"no organization named '{org}'",
        )

    def create_team(self, org: str, slug: str) -> dict:
        """Create a team (a duplicate slug is a 500 in GlitchTip: check first)."""
        return self.request(
            "POST",
            f"/api/0/organizations/{q(org)}/teams/",
            json={"slug": slug},
            action="create a team",
            not_found=f"no organization named '{org}'",
        )

    def projects(self, org: str) -> list[dict]:
        """Projects of an organization (each with its teams)."""
        return self.paginate(
            f"/api/0/organizations/{q(org)}/projects/",
            action="list projects",
            not_found=f"no organization named '{org}'",
        )

    def create_project(self, org: str, team: str, name: str, platform: str | None) -> dict:
        """Create a project under a team; GlitchTip adds a default client key."""
        body: dict[str, Any] = {"name": name}
        if platform:
            body["platform"] = platform
        return self.request(
            "POST",
            f"/api/0/teams/{q(org)}/{q(team)}/projects/",
            json=body,
            action="create a project",
            not_found=f"no team named '{team}' in organization '{org}'",
        )

    def keys(self, org: str, project: str) -> list[dict]:
        """Client keys (DSNs) of a project; an unknown project gives [] (recorded)."""
        return self.paginate(
            f"/api/0/projects/{q(org)}/{q(project)}/keys/",
            action="list client keys",
            not_found=f"no project named '{project}' in organization '{org}'",
        )

    def create_key(self, org: str, project: str, name: str) -> dict:
        """Create a named client key."""
        return self.request(
            "POST",
            f"/api/0/projects/{q(org)}/{q(project)}/keys/",
            json={"name": name},
            action="create a client key",
            not_found=f"no project named '{project}' in organization '{org}'",
        )


def _path_only(path: str) -> str:
    """The path of `path` (a path or a full URL) without query or fragment, for messages."""
    try:
        return urlsplit(path).path or path
    except ValueError:
        return "(unparsable path)"


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


def q(segment: str) -> str:
    """A path segment, percent-encoded."""
    return quote(segment, safe="")
