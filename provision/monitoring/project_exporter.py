"""GlitchTip project exporter: per-project event counts and error budgets for Prometheus.

GlitchTip exposes no per-project event metrics, only its API. This exporter polls
`GET /api/0/organizations/{org}/stats_v2/` (hourly event counts by received time) for every
project of one organization and serves, on `listen_port`:

- `glitchtip_project_events_total{organization,project,category}` (counter; category `error`,
  every non-transaction event, or `transaction`);
- `glitchtip_project_errors_in_budget_window{organization,project}`,
  `glitchtip_project_error_budget_max_errors{...}`, `glitchtip_project_error_budget_window_seconds`
  (gauges; only for projects with a budget: `error_budgets[slug]`, else `error_budgets["default"]`);
- its own health: `glitchtip_project_exporter_up`, `..._last_success_timestamp_seconds`,
  `..._poll_duration_seconds`, `..._api_requests_total{code}` (`code="error"`: no HTTP answer).

It is one self-contained file that imports only the standard library and `prometheus_client`,
because it runs inside the GlitchTip image (which ships prometheus_client as a dependency of
django-prometheus) as `python exporter.py --config config.json`.

How stats_v2 is used (NOTES.md "stats_v2"): always `interval=1h` with an explicit `start` and
`end` (`1d` counts only each day's first hour, `1m` smears hourly counts), one project per call
(several are summed together), and a bucket missing from `intervals` (GlitchTip drops an hour in
which only other projects have data) counts as 0. Calls per poll are bounded: the project list
(ceil(max_projects / 100) pages at most) plus two per project; they are spread over a moment, each
on a new connection (GlitchTip 5's uWSGI closes every connection after one answer) with a
timeout, and a poll stops at the first failure instead of hammering a struggling server.

Counters from buckets: each poll asks for the last few hours (and the whole budget window for
errors). A bucket seen before contributes its growth since the previous poll (events are counted
when the worker stores them, so an hour can still grow after it ends); a bucket seen for the first
time contributes its whole count. The exporter's own first poll only records what is there: a
restarted exporter starts its counters at 0 instead of adding every event of the window again
(Prometheus sees a counter reset, not a spike); a project that appears after that first poll
counts from its first events. A bucket that shrinks (GlitchTip's retention deleted rows)
contributes nothing. When a poll fails, every series keeps its last value and
`glitchtip_project_exporter_up` is 0; polls are retried with exponential back-off (up to 15 min).
The error budget window is whole hourly buckets covering `per_seconds`: the current hour and the
ceil(per_seconds / 3600) hours before it (so it spans between per_seconds and one hour more).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import http.client
import json
import logging
import math
import random
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server
from prometheus_client.process_collector import ProcessCollector

LOG = logging.getLogger("project-exporter")

MIN_POLL_SECONDS = 60  # the "a poll a minute at most"
MAX_BACKOFF_SECONDS = 900
MAX_PROJECTS_LIMIT = 1000
PAGE_SIZE = 100  # GlitchTip's largest page
HOUR = 3600
# Buckets asked for besides the budget window: an event is counted by its received hour when the
# worker stores it, so the last hours can still grow (a worker backlog, a restart).
COUNTER_LOOKBACK_HOURS = 3
# stats_v2 refuses windows of more than 1000 hourly buckets (whole days x 24, recorded 177).
MAX_WINDOW_SECONDS = 1000 * HOUR
REQUEST_TIMEOUT_SECONDS = 10.0
MAX_BODY_BYTES = 8 * 1024 * 1024
CATEGORIES = ("error", "transaction")
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
DEFAULTS: dict[str, Any] = {
    "host_header": None,
    "poll_seconds": 60,
    "max_projects": 50,
    "listen_port": 9808,
    "listen_address": "0.0.0.0",
    "token_file": "/run/secrets/glitchtip_api_token",
    "error_budgets": {},
}
REQUIRED = ("api_url", "organization")


class ConfigError(Exception):
    """A configuration problem, said in one line that names the fix."""


class ApiFailure(Exception):
    """GlitchTip did not answer a call usefully; `code` is the HTTP status or "error"."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """An error budget: at most `max_errors` error events per `per_seconds`."""

    max_errors: int
    per_seconds: int

    @property
    def hours(self) -> int:
        """Whole hourly buckets needed to cover the window."""
        return math.ceil(self.per_seconds / HOUR)


@dataclass(frozen=True)
class Config:
    """The validated content of config.json (no secret in it: the token is in `token_file`)."""

    api_url: str
    organization: str
    host_header: str | None = None
    poll_seconds: int = 60
    max_projects: int = 50
    listen_port: int = 9808
    listen_address: str = "0.0.0.0"
    token_file: str = "/run/secrets/glitchtip_api_token"
    error_budgets: dict[str, Budget] = field(default_factory=dict)

    def budget_for(self, project: str) -> Budget | None:
        """The project's own budget, else the default one, else None (no budget series)."""
        return self.error_budgets.get(project) or self.error_budgets.get("default")


def _int(data: dict, key: str, low: int, high: int, where: str = "") -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"{where}{key} must be an integer from {low} to {high}, not {json.dumps(value)}"
        )
    return value


def _budget(name: str, raw: Any) -> Budget:
    where = f"error_budgets.{name}."
    if not isinstance(raw, dict):
        raise ConfigError(f"error_budgets.{name} must be an object with max_errors, per_seconds")
    unknown = sorted(set(raw) - {"max_errors", "per_seconds"})
    if unknown:
        raise ConfigError(f"{where}{unknown[0]} is not a budget key (max_errors, per_seconds)")
    for key in ("max_errors", "per_seconds"):
        if key not in raw:
            raise ConfigError(f"{where}{key} is missing")
    return Budget(
        max_errors=_int(raw, "max_errors", 0, 10**12, where),
        per_seconds=_int(raw, "per_seconds", HOUR, MAX_WINDOW_SECONDS, where),
    )


def parse_config(data: Any) -> Config:
    """Validate config.json's content; raises ConfigError naming the key to fix."""
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a JSON object")
    unknown = sorted(set(data) - set(DEFAULTS) - set(REQUIRED))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(DEFAULTS))})")
    for key in REQUIRED:
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ConfigError(f"{key} must be a non-empty string")
    merged = {**DEFAULTS, **data}
    api_url = merged["api_url"].strip().rstrip("/")
    parts = urllib.parse.urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(
            f"api_url must be an http(s) URL such as http://web:8000, not {api_url!r}"
        )
    if parts.username or parts.password:
        raise ConfigError("api_url must not carry credentials: the token comes from token_file")
    if not SLUG.match(merged["organization"]):
        raise ConfigError(
            f"organization must be an organization slug, not {merged['organization']!r}"
        )
    host = merged["host_header"]
    if host is not None and (not isinstance(host, str) or not re.fullmatch(r"[^\s/@]+", host)):
        raise ConfigError(
            "host_header must be a host name (and port) such as glitchtip.example.com"
        )
    poll = merged["poll_seconds"]
    if isinstance(poll, int) and not isinstance(poll, bool) and poll < MIN_POLL_SECONDS:
        raise ConfigError(
            f"poll_seconds is {poll}: at least {MIN_POLL_SECONDS} (one poll a minute at most)"
        )
    token_file = merged["token_file"]
    if not isinstance(token_file, str) or not token_file.startswith("/"):
        raise ConfigError("token_file must be an absolute path such as /run/secrets/...")
    address = merged["listen_address"]
    if not isinstance(address, str) or not address:
        raise ConfigError("listen_address must be an address such as 0.0.0.0")
    budgets = merged["error_budgets"]
    if not isinstance(budgets, dict):
        raise ConfigError('error_budgets must be an object: {"default": {...}, "<slug>": {...}}')
    for name in budgets:
        if name != "default" and not SLUG.match(name):
            raise ConfigError(f"error_budgets: {name!r} is neither 'default' nor a project slug")
    return Config(
        api_url=api_url,
        organization=merged["organization"],
        host_header=host,
        poll_seconds=_int(merged, "poll_seconds", MIN_POLL_SECONDS, 86400),
        max_projects=_int(merged, "max_projects", 1, MAX_PROJECTS_LIMIT),
        listen_port=_int(merged, "listen_port", 1, 65535),
        listen_address=address,
        token_file=token_file,
        error_budgets={name: _budget(name, raw) for name, raw in budgets.items()},
    )


def load_config(path: str) -> Config:
    """Read and validate config.json."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(1024 * 1024)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:  # JSON is UTF-8 (RFC 8259); an edit in another encoding
        raise ConfigError(f"{path} is not valid JSON: it is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None
    try:
        return parse_config(data)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def read_token(path: str) -> str:
    """The API token from `path` (a Compose secret); errors never quote the file's content."""
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read(4096).strip()
    except OSError as error:
        raise ConfigError(
            f"cannot read the API token file {path}: {error.strerror or error} "
            "(give the service the glitchtip_api_token secret)"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"the API token file {path} is not text") from None
    if not token:
        raise ConfigError(f"the API token file {path} is empty (run provision up to create it)")
    if not re.fullmatch(r"[!-~]+", token):
        raise ConfigError(f"the API token file {path} holds more than one token-like word")
    return token


# --- HTTP -------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: following it could carry the token to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def default_opener() -> urllib.request.OpenerDirector:
    """urllib without proxies from the environment and without redirects.

    urllib opens one connection per request and sends `Connection: close`: no keep-alive reuse,
    which GlitchTip 5's uWSGI would break (NOTES.md).
    """
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


# What an operator does about an answer the exporter cannot use.
HINTS = {
    400: "GlitchTip refused the Host header: set host_header to a host in its ALLOWED_HOSTS",
    401: "the API token is not valid (any more): run provision up to mint one, then recreate "
    "the project-exporter container",
    403: "the API token lacks scope org:read or project:read",
    404: "no such organization for this token: check organization",
}


class Api:
    """The few GlitchTip calls the exporter makes, counted by status code."""

    def __init__(
        self,
        config: Config,
        token: str,
        requests_total: Counter,
        opener: urllib.request.OpenerDirector | None = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.config = config
        self._token = token
        self._requests = requests_total
        self._opener = opener or default_opener()
        self._timeout = timeout
        self.calls = 0

    def __repr__(self) -> str:  # never show the token
        return f"Api({self.config.api_url!r})"

    def get(self, path_or_url: str) -> tuple[dict[str, str], Any]:
        """GET a path (or a Link URL on the same server) and decode its JSON."""
        url = self._url(path_or_url)
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if self.config.host_header:
            headers["Host"] = self.config.host_header
        request = urllib.request.Request(url, headers=headers, method="GET")
        self.calls += 1
        shown = _path(url)
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                status = response.status
                body = response.read(MAX_BODY_BYTES + 1)
                answer_headers = {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as error:
            self._requests.labels(str(error.code)).inc()
            error.close()
            hint = HINTS.get(error.code) if "/stats_v2/" not in shown or error.code != 404 else None
            message = f"GET {shown} answered {error.code}" + (f": {hint}" if hint else "")
            raise ApiFailure(message, str(error.code)) from None
        except (OSError, ValueError, http.client.HTTPException) as error:  # refused, reset,
            # timeout, DNS, a bad status line, a body cut short
            self._requests.labels("error").inc()
            reason = getattr(error, "reason", None) or error.__class__.__name__
            raise ApiFailure(f"GET {shown} got no answer ({reason})", "error") from None
        self._requests.labels(str(status)).inc()
        if len(body) > MAX_BODY_BYTES:
            raise ApiFailure(f"GET {shown} answered more than {MAX_BODY_BYTES} bytes", str(status))
        try:
            return answer_headers, json.loads(body)
        except ValueError:
            raise ApiFailure(
                f"GET {shown} answered something that is not JSON", str(status)
            ) from None

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith("/"):
            return self.config.api_url + path_or_url
        # A Link header's URL names the public host; keep its path and query on api_url.
        parts = urllib.parse.urlsplit(path_or_url)
        return self.config.api_url + parts.path + (f"?{parts.query}" if parts.query else "")


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def parse_link_header(value: str) -> dict[str, dict[str, str]]:
    """rel -> {url, params}: GlitchTip wraps its Link header in a Python set repr `{'...'}`."""
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


# --- stats_v2 ---------------------------------------------------------------------------------


def floor_hour(timestamp: float) -> int:
    """The start of the UTC hour holding `timestamp` (epoch seconds)."""
    return int(timestamp // HOUR) * HOUR


def iso(timestamp: int) -> str:
    """Epoch seconds as the `...Z` UTC time stats_v2 accepts."""
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_buckets(body: Any) -> dict[int, int]:
    """{hour start: count} from a stats_v2 answer; null buckets are 0 (absent ones, too)."""
    if not isinstance(body, dict) or not isinstance(body.get("intervals"), list):
        raise ValueError("no intervals")
    groups = body.get("groups")
    if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], dict):
        raise ValueError("not exactly one group")
    series = groups[0].get("series")
    if not isinstance(series, dict) or len(series) != 1:
        raise ValueError("not exactly one series")
    values = next(iter(series.values()))
    if not isinstance(values, list) or len(values) != len(body["intervals"]):
        raise ValueError("intervals and values differ in length")
    buckets: dict[int, int] = {}
    for stamp, value in zip(body["intervals"], values, strict=True):
        when = _dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"count {value!r} is not a number")
        buckets[floor_hour(when.timestamp())] = int(value or 0)
    return buckets


@dataclass
class Tracker:
    """The buckets of one (project, category) as last seen, turning their growth into a counter.

    `seen` is None until a first poll that only records (the exporter's own first poll); a
    project that appears later starts from `{}`, so its first buckets count whole. An hour not
    seen before held 0 events: windows only move forward, and an hour missing from an answer is
    one without events of this project (GlitchTip's dropped-bucket bug).
    """

    seen: dict[int, int] | None = None

    def update(self, buckets: dict[int, int], since: int) -> int:
        """Record `buckets` (hours >= `since`); return the events to add to the counter."""
        added = 0
        if self.seen is not None:
            for hour, count in buckets.items():
                added += max(0, count - self.seen.get(hour, 0))
        self.seen = {hour: count for hour, count in buckets.items() if hour >= since}
        return added


# --- the exporter -----------------------------------------------------------------------------


@dataclass
class PollResult:
    """What one poll did: whether it succeeded, how many calls and projects, and why not."""

    ok: bool
    calls: int
    projects: int
    error: str | None = None


class Exporter:
    """Polls GlitchTip and keeps the metrics in its own registry."""

    def __init__(
        self,
        config: Config,
        token: str,
        *,
        opener: urllib.request.OpenerDirector | None = None,
        clock: Callable[[], float] = time.time,
        spread_seconds: float = 0.2,
        sleep: Callable[[float], Any] = time.sleep,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.spread_seconds = spread_seconds
        self.sleep = sleep
        self.registry = registry or CollectorRegistry()
        labels = ["organization", "project"]
        r = self.registry
        self.events = Counter(
            "glitchtip_project_events",
            "Events GlitchTip stored for the project (by received hour, from stats_v2).",
            [*labels, "category"],
            registry=r,
        )
        self.in_window = Gauge(
            "glitchtip_project_errors_in_budget_window",
            "Error events in the budget window (whole hourly buckets covering it).",
            labels,
            registry=r,
        )
        self.max_errors = Gauge(
            "glitchtip_project_error_budget_max_errors",
            "Error events the project's budget allows per window.",
            labels,
            registry=r,
        )
        self.window = Gauge(
            "glitchtip_project_error_budget_window_seconds",
            "Length of the project's error budget window.",
            labels,
            registry=r,
        )
        self.up = Gauge(
            "glitchtip_project_exporter_up",
            "1 when the last poll of GlitchTip succeeded.",
            registry=r,
        )
        self.last_success = Gauge(
            "glitchtip_project_exporter_last_success_timestamp_seconds",
            "When the last successful poll ended (Unix time).",
            registry=r,
        )
        self.duration = Gauge(
            "glitchtip_project_exporter_poll_duration_seconds",
            "How long the last poll took.",
            registry=r,
        )
        self.requests = Counter(
            "glitchtip_project_exporter_api_requests",
            'Calls to GlitchTip\'s API by HTTP status ("error": no answer).',
            ["code"],
            registry=r,
        )
        self.api = Api(config, token, self.requests, opener)
        self.trackers: dict[tuple[str, str], Tracker] = {}
        self.projects: dict[str, str] = {}  # slug -> id of the projects exported
        self.failures = 0
        self.succeeded = False  # a first poll has completed: later projects count from 0

    # -- one poll --------------------------------------------------------------------------

    def poll(self) -> PollResult:
        """Poll every project once; on failure keep the last values and set `up` to 0."""
        started = time.monotonic()
        calls_before = self.api.calls
        try:
            projects = self._list_projects()
            # Spread the calls a little, within half the poll interval whatever the project count.
            calls = max(1, len(projects) * len(CATEGORIES))
            pause = min(self.spread_seconds, 0.5 * self.config.poll_seconds / calls)
            for slug, project_id in projects:
                for category in CATEGORIES:
                    self.sleep(pause)
                    self._poll_project(slug, project_id, category)
            self._forget_gone(dict(projects))
        except ApiFailure as failure:
            self.up.set(0)
            self.failures += 1
            self.duration.set(time.monotonic() - started)
            return PollResult(
                False, self.api.calls - calls_before, len(self.projects), str(failure)
            )
        self.up.set(1)
        self.failures = 0
        self.succeeded = True
        self.last_success.set(self.clock())
        self.duration.set(time.monotonic() - started)
        return PollResult(True, self.api.calls - calls_before, len(projects))

    def _list_projects(self) -> list[tuple[str, str]]:
        org = urllib.parse.quote(self.config.organization, safe="")
        limit = min(self.config.max_projects, PAGE_SIZE)
        url: str | None = f"/api/0/organizations/{org}/projects/?limit={limit}"
        found: list[tuple[str, str]] = []
        pages = math.ceil(self.config.max_projects / limit)
        for _ in range(pages):
            if url is None:
                break
            headers, page = self.api.get(url)
            if not isinstance(page, list):
                raise ApiFailure("the project list is not a JSON list", "200")
            for item in page:
                if isinstance(item, dict) and SLUG.match(str(item.get("slug", ""))):
                    found.append((str(item["slug"]), str(item.get("id"))))
            link = parse_link_header(headers.get("link", "")).get("next")
            url = link["url"] if link and link.get("results") == "true" and page else None
        unique = dict(found)
        if len(unique) > self.config.max_projects:
            LOG.warning(
                "organization %s has more than %d projects: exporting the first %d (max_projects)",
                self.config.organization,
                self.config.max_projects,
                self.config.max_projects,
            )
        return sorted(unique.items())[: self.config.max_projects]

    def _poll_project(self, slug: str, project_id: str, category: str) -> None:
        now = self.clock()
        budget = self.config.budget_for(slug) if category == "error" else None
        hours = max(COUNTER_LOOKBACK_HOURS, budget.hours if budget else 0)
        start = floor_hour(now) - hours * HOUR
        query = urllib.parse.urlencode(
            {
                "category": category,
                "field": "sum(quantity)",
                "interval": "1h",
                "start": iso(start),
                "end": iso(int(now)),
                "project": project_id,
            }
        )
        org = urllib.parse.quote(self.config.organization, safe="")
        try:
            _headers, body = self.api.get(f"/api/0/organizations/{org}/stats_v2/?{query}")
        except ApiFailure as failure:
            if failure.code == "404":  # deleted since the list: gone next poll
                return
            raise
        try:
            buckets = parse_buckets(body)
        except ValueError as error:
            raise ApiFailure(f"stats_v2 answered an unexpected shape ({error})", "200") from None
        labels = (self.config.organization, slug)
        tracker = self.trackers.setdefault(
            (slug, category), Tracker(seen={} if self.succeeded else None)
        )
        # The counters follow the short lookback only: older hours no longer change.
        counter_since = floor_hour(now) - COUNTER_LOOKBACK_HOURS * HOUR
        recent = {h: c for h, c in buckets.items() if h >= counter_since}
        self.events.labels(*labels, category).inc(tracker.update(recent, counter_since))
        self.projects[slug] = project_id
        if category != "error":
            return
        if budget is None:
            self._remove_budget(labels)
            return
        window_start = floor_hour(now) - budget.hours * HOUR
        self.in_window.labels(*labels).set(
            sum(c for h, c in buckets.items() if window_start <= h <= now)
        )
        self.max_errors.labels(*labels).set(budget.max_errors)
        self.window.labels(*labels).set(budget.per_seconds)

    def _remove_budget(self, labels: tuple[str, str]) -> None:
        for gauge in (self.in_window, self.max_errors, self.window):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)

    def _forget_gone(self, listed: dict[str, str]) -> None:
        """Drop the series of projects GlitchTip no longer lists (deleted, or beyond max)."""
        for slug in [s for s in self.projects if s not in listed]:
            labels = (self.config.organization, slug)
            for category in CATEGORIES:
                self.trackers.pop((slug, category), None)
                with contextlib.suppress(KeyError):
                    self.events.remove(*labels, category)
            self._remove_budget(labels)
            del self.projects[slug]

    # -- the loop ------------------------------------------------------------------------------

    def next_delay(self) -> float:
        """Seconds to the next poll: poll_seconds; after failures in a row, doubled from the
        second one on (a GlitchTip restart is retried a poll later), capped, with jitter."""
        if not self.failures:
            return float(self.config.poll_seconds)
        cap = max(self.config.poll_seconds, MAX_BACKOFF_SECONDS)
        delay = min(self.config.poll_seconds * 2 ** min(self.failures - 1, 10), cap)
        return delay * random.uniform(0.9, 1.1)

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set, logging failures and recoveries (never the token)."""
        failing = False
        while not stop.is_set():
            result = self.poll()
            if not result.ok:
                LOG.warning("poll failed (%d in a row): %s", self.failures, result.error)
                failing = True
            elif failing:
                LOG.info("poll succeeded again: %d projects", result.projects)
                failing = False
            stop.wait(self.next_delay())

    def exposition(self) -> bytes:
        """The metrics as Prometheus scrapes them."""
        return generate_latest(self.registry)


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python exporter.py --config config.json [--once]` (or the path without --config)."""
    parser = argparse.ArgumentParser(
        prog="exporter.py",
        description="Export GlitchTip's per-project event counts and error budgets to Prometheus.",
    )
    parser.add_argument("--config", dest="config", help="path of config.json")
    parser.add_argument("config_path", nargs="?", help="path of config.json (same as --config)")
    parser.add_argument(
        "--once",
        action="store_true",
        help="poll once, print the metrics and exit (0 when the poll succeeded, 1 when not)",
    )
    args = parser.parse_args(argv)
    if bool(args.config) == bool(args.config_path):
        parser.error("give the path of config.json once: --config PATH (or PATH)")
    args.config = args.config or args.config_path
    try:
        config = load_config(args.config)
        token = read_token(config.token_file)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    exporter = Exporter(config, token)
    if args.once:
        result = exporter.poll()
        sys.stdout.write(exporter.exposition().decode())
        if not result.ok:
            print(f"error: {result.error}", file=sys.stderr)
        return 0 if result.ok else 1
    ProcessCollector(registry=exporter.registry)
    try:
        start_http_server(config.listen_port, config.listen_address, registry=exporter.registry)
    except OSError as error:
        print(
            f"error: cannot listen on {config.listen_address}:{config.listen_port}: "
            f"{error.strerror or error} (change listen_port)",
            file=sys.stderr,
        )
        return 2
    LOG.info(
        "serving on %s:%d; polling %s for organization %s every %ds",
        config.listen_address,
        config.listen_port,
        config.api_url,
        config.organization,
        config.poll_seconds,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    exporter.run(stop)
    return 0


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s project-exporter %(levelname)s %(message)s"
    )
    sys.exit(main())
