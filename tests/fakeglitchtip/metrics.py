"""Prometheus metrics of the fake GlitchTip, with the names and labels of the recorded sample.

GlitchTip exposes django-prometheus's families (`../shared/glitchtip-contract/metrics-sample.txt`):
process and Python collectors always; the `django_http_*` request/response families only when
`ENABLE_OBSERVABILITY_API=true` adds django-prometheus's middlewares (NOTES.md "Metrics"); and
its own `glitchtip_organizations` / `glitchtip_projects{organization}` gauges, read from the
database at scrape time. The fake counts the requests it really serves (the HTTP server calls
`RequestMetrics.observe` once per answered request), each fake on its own registry so that two
fakes in one test process never share counts.

Where it is served, per major:
- 5: `GET /api/0/observability/django/` for a staff user's token or session (401 anonymous,
  403 `is_staff required`), whatever ENABLE_OBSERVABILITY_API says; `/metrics` is the SPA's 404.
- 6: `GET /metrics`, no authentication, only with ENABLE_OBSERVABILITY_API=true (GlitchTip 6's
  urls.py appends `path("metrics", prometheus_metrics_view)` only then); else 404, and the
  observability API path is gone.
On 6, ingest requests are not counted (they bypass the middlewares, see INGEST_ROUTES).
Not copied: `django_model_*` and `django_migrations_*` (database families no dashboard of the kit
reads), and exceptions by type/view.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# The recorded answer's content type (prometheus_client's exposition 1.0.0).
CONTENT_TYPE = "text/plain; version=1.0.0; charset=utf-8"
# django-prometheus's latency buckets (PROMETHEUS_LATENCY_BUCKETS default, as in the sample).
LATENCY_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 25.0, 50.0, 75.0,
    float("inf"),
)  # fmt: skip
# Body sizes: powers of two from 0 to 2**29 bytes (as in the sample).
BODY_BUCKETS = (0.0, *(float(2**n) for n in range(30)), float("inf"))

# The Django view name django-prometheus labels a request with, per fake route (the names seen
# in the sample; the others follow django-ninja's `api:<function name>` rule).
VIEW_NAMES = {
    "health": "glitchtip.views.health",
    "internal_health": "glitchtip.views.internal_health",
    "settings": "api:get_settings",
    "api_root": "api:api_root",
    "allauth_config": "headless:browser:config",
    "allauth_login": "headless:browser:account:login",
    "allauth_signup": "headless:browser:account:signup",
    "allauth_session": "headless:browser:account:current_session",
    "api_tokens": "api:list_api_tokens",
    "api_token_delete": "api:delete_api_token",
    "organizations": "api:list_organizations",
    "organization": "api:get_organization",
    "members": "api:list_organization_members",
    "org_teams": "api:list_teams",
    "org_projects": "api:list_organization_projects",
    "org_issues": "api:list_issues",
    "stats_v2": "api:stats_v2",
    "monitors": "api:list_monitors",
    "monitor": "api:get_monitor",
    "checks": "api:list_monitor_checks",
    "beat": "api:heartbeat_check",
    "status_pages": "api:list_status_pages",
    "team": "api:get_team",
    "member_team": "api:add_member_to_team",
    "team_projects": "api:list_team_projects",
    "all_projects": "api:list_projects",
    "project": "api:get_project",
    "project_teams": "api:list_project_teams",
    "project_team": "api:add_team_to_project",
    "team_members": "api:list_team_members",
    "keys": "api:list_project_keys",
    "key": "api:get_project_key",
    "alerts": "api:list_project_alerts",
    "alert": "api:update_project_alert",
    "project_issues": "api:list_project_issues",
    "project_events": "api:list_project_issue_event",
    "issue": "api:get_issue",
    "issue_events": "api:list_issue_event",
    "issue_latest_event": "api:get_latest_issue_event",
    "metrics": "api:django_prometheus_metrics",
    "metrics_v6": "apps.observability.views.prometheus_metrics_view",
    "envelope": "apps.event_ingest.views.event_envelope_view",
    "store": "api:event_store",
}
# No route: Django's SPA catch-all (`glitchtip.views.index`) answers its 404 page.
INDEX_VIEW = "glitchtip.views.index"
# GlitchTip 6's asgi.py wraps Django in `glitchtip.ingest_asgi.IngestDispatcher`, which sends
# `/api/<id>/(envelope|store|minidump|security)/` through a minimal middleware chain (security,
# CORS) without django-prometheus's: 6 does not count ingest requests in django_http_*.
INGEST_ROUTES = frozenset({"envelope", "store"})


def counted(route: str | None, major: int) -> bool:
    """Whether django-prometheus's middlewares see a request to `route` on this major."""
    return not (major >= 6 and route in INGEST_ROUTES)


def view_name(route: str | None) -> str:
    """The `view` label of a request the fake routed to handler `route` (None: no route)."""
    if route is None:
        return INDEX_VIEW
    return VIEW_NAMES.get(route, f"api:{route}")


class RequestMetrics:
    """django-prometheus's metric families on a registry of this fake's own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.http = CollectorRegistry()  # django_http_*: exposed only with the middlewares
        r = self.http
        self.requests_before = Counter(
            "django_http_requests_before_middlewares",
            "Total count of requests before middlewares run.",
            registry=r,
        )
        self.responses_before = Counter(
            "django_http_responses_before_middlewares",
            "Total count of responses before middlewares run.",
            registry=r,
        )
        self.latency_all = Histogram(
            "django_http_requests_latency_including_middlewares_seconds",
            "Histogram of requests processing time (including middleware processing time).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "django_http_requests_latency_seconds_by_view_method",
            "Histogram of request processing time labelled by view.",
            ["view", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.by_method = Counter(
            "django_http_requests_total_by_method",
            "Count of requests by method.",
            ["method"],
            registry=r,
        )
        self.by_transport = Counter(
            "django_http_requests_total_by_transport",
            "Count of requests by transport.",
            ["transport"],
            registry=r,
        )
        self.by_view = Counter(
            "django_http_requests_total_by_view_transport_method",
            "Count of requests by view, transport, method.",
            ["view", "transport", "method"],
            registry=r,
        )
        self.request_body = Histogram(
            "django_http_requests_body_total_bytes",
            "Histogram of requests by body size.",
            buckets=BODY_BUCKETS,
            registry=r,
        )
        self.by_status = Counter(
            "django_http_responses_total_by_status",
            "Count of responses by status.",
            ["status"],
            registry=r,
        )
        self.by_status_view = Counter(
            "django_http_responses_total_by_status_view_method",
            "Count of responses by status, view, method.",
            ["status", "view", "method"],
            registry=r,
        )
        self.response_body = Histogram(
            "django_http_responses_body_total_bytes",
            "Histogram of responses by body size.",
            buckets=BODY_BUCKETS,
            registry=r,
        )
        self.by_charset = Counter(
            "django_http_responses_total_by_charset",
            "Count of responses by charset.",
            ["charset"],
            registry=r,
        )

    def observe(
        self,
        *,
        route: str | None,
        method: str,
        status: int,
        seconds: float,
        request_bytes: int,
        response_bytes: int,
        content_type: str,
    ) -> None:
        """Count one answered request as django-prometheus's middlewares would."""
        view = view_name(route)
        self.requests_before.inc()
        self.by_method.labels(method).inc()
        self.by_transport.labels("http").inc()
        self.by_view.labels(view, "http", method).inc()
        self.request_body.observe(request_bytes)
        self.responses_before.inc()
        self.by_status.labels(str(status)).inc()
        self.by_status_view.labels(str(status), view, method).inc()
        self.response_body.observe(response_bytes)
        charset = content_type.partition("charset=")[2].split(";")[0].strip()
        if charset:
            self.by_charset.labels(charset).inc()
        self.latency.labels(view, method).observe(seconds)
        self.latency_all.observe(seconds)

    def exposition(self, orgs: list[tuple[str, int]], *, http: bool) -> bytes:
        """The scrape answer: process/Python families, `django_http_*` when `http`, and the
        GlitchTip gauges for `orgs` ((slug, live project count) per organization)."""
        text = generate_latest(self.registry)
        if http:
            text += generate_latest(self.http)
        gauges = CollectorRegistry()
        gauges.register(_GlitchTipGauges(orgs))
        return text + generate_latest(gauges)


class _GlitchTipGauges:
    """`glitchtip_organizations` and `glitchtip_projects{organization}` (apps/observability)."""

    def __init__(self, orgs: list[tuple[str, int]]) -> None:
        self.orgs = orgs

    def collect(self):
        organizations = GaugeMetricFamily("glitchtip_organizations", "Number of organizations")
        organizations.add_metric([], float(len(self.orgs)))
        projects = GaugeMetricFamily(
            "glitchtip_projects", "Number of projects per organization", labels=["organization"]
        )
        for slug, count in self.orgs:
            projects.add_metric([slug], float(count))
        yield organizations
        yield projects
