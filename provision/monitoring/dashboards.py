"""The kit's Grafana dashboards, built with Grafana's own `grafana-foundation-sdk`.

Generated at development time, not at render time: the JSON files under
`templates/monitoring/grafana/dashboards/` are committed (reviewable, no SDK needed to deploy)
and a fast test regenerates them and compares. After changing this file:

    python -m provision.monitoring.dashboards --write    # rewrite the JSON files
    python -m provision.monitoring.dashboards --check    # exit 1 when they are stale

Every query reads the provisioned Prometheus datasource by its uid (`prometheus`, set in
`templates/monitoring/grafana/provisioning/datasources/prometheus.yml`), and the recording rules
of `templates/monitoring/prometheus/rules/` where one exists, so a panel and the alert about it
show the same number.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATASOURCE_UID = "prometheus"
DASHBOARDS_DIR = (
    Path(__file__).resolve().parent.parent.parent / "templates" / "monitoring" / "grafana"
) / "dashboards"
# Scrape jobs of monitoring/prometheus/prometheus.yml.
JOBS = ("prometheus", "glitchtip", "project-exporter", "postgres", "valkey")
EXPORTER = 'job="project-exporter"'
PROJECT_FILTER = 'organization=~"$organization",project=~"$project"'
REF_IDS = "ABCDEFGH"
# The project exporter's counters move once a minute (one poll), so their rates use a fixed
# 5-minute window instead of Grafana's $__rate_interval (one minute at a 15 s scrape).
EXPORTER_RATE = "[5m]"


def _sdk() -> Any:
    """The SDK's modules, imported on use: it is a development dependency only."""
    from grafana_foundation_sdk.builders import (
        bargauge,
        common,
        dashboard,
        prometheus,
        stat,
        table,
        timeseries,
    )
    from grafana_foundation_sdk.models import common as enums
    from grafana_foundation_sdk.models import dashboard as model

    class Sdk:
        pass

    sdk = Sdk()
    for name, module in {
        "bargauge": bargauge,
        "common": common,
        "dashboard": dashboard,
        "prometheus": prometheus,
        "stat": stat,
        "table": table,
        "timeseries": timeseries,
        "model": model,
        "enums": enums,
    }.items():
        setattr(sdk, name, module)
    return sdk


def _datasource(sdk: Any) -> Any:
    return sdk.model.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)


def _query(sdk: Any, expr: str, legend: str = "", instant: bool = False) -> Any:
    query = sdk.prometheus.Dataquery().expr(expr).datasource(_datasource(sdk))
    if legend:
        query = query.legend_format(legend)
    return query.instant().format("table") if instant else query.range()


def _thresholds(sdk: Any, *steps: tuple[float | None, str]) -> Any:
    return (
        sdk.dashboard.ThresholdsConfig()
        .mode(sdk.model.ThresholdsMode.ABSOLUTE)
        .steps([sdk.model.Threshold(value=value, color=color) for value, color in steps])
    )


def _timeseries(
    sdk: Any, title: str, description: str, unit: str, queries: list[tuple[str, str]], **kw: Any
) -> Any:
    panel = (
        sdk.timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(_datasource(sdk))
        .unit(unit)
        .height(kw.get("height", 8))
        .span(kw.get("span", 12))
        .fill_opacity(10)
        .legend(
            sdk.common.VizLegendOptions()
            .display_mode(sdk.enums.LegendDisplayMode.LIST)
            .placement(sdk.enums.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    for ref, (expr, legend) in zip(REF_IDS, queries, strict=False):
        panel = panel.with_target(_query(sdk, expr, legend).ref_id(ref))
    if "thresholds" in kw:
        panel = panel.thresholds(_thresholds(sdk, *kw["thresholds"])).thresholds_style(
            sdk.common.GraphThresholdsStyleConfig().mode(sdk.enums.GraphTresholdsStyleMode.LINE)
        )
    if "min" in kw:
        panel = panel.min(kw["min"])
    return panel


def _stat(
    sdk: Any, title: str, description: str, unit: str, expr: str, legend: str = "", **kw: Any
) -> Any:
    panel = (
        sdk.stat.Panel()
        .title(title)
        .description(description)
        .datasource(_datasource(sdk))
        .unit(unit)
        .height(kw.get("height", 4))
        .span(kw.get("span", 6))
        .with_target(_query(sdk, expr, legend).ref_id("A"))
        .reduce_options(sdk.common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(sdk.enums.BigValueColorMode.BACKGROUND)
        .graph_mode(sdk.enums.BigValueGraphMode.NONE)
    )
    if "thresholds" in kw:
        panel = panel.thresholds(_thresholds(sdk, *kw["thresholds"]))
    if "mappings" in kw:
        panel = panel.mappings(kw["mappings"])
    return panel


def _up_down(sdk: Any) -> list[Any]:
    """Value mappings for a 0/1 health series: DOWN in red, UP in green."""
    return [
        sdk.model.ValueMap(
            options={
                "0": sdk.model.ValueMappingResult(text="DOWN", color="red", index=0),
                "1": sdk.model.ValueMappingResult(text="UP", color="green", index=1),
            }
        )
    ]


def _numbered(built: Any) -> Any:
    """Give every panel (rows included) a unique id, in layout order: Grafana keys panel
    links, `viewPanel=` URLs and library references on it."""
    number = 0
    for panel in built.panels or []:
        number += 1
        panel.id_val = number
        for inner in getattr(panel, "panels", None) or []:
            number += 1
            inner.id_val = number
    return built


def service_dashboard() -> Any:
    """ "GlitchTip service": is GlitchTip keeping up (traffic, errors, latency, ingest, queue,
    web process, database, scrape targets)."""
    sdk = _sdk()
    g = 'job="glitchtip"'
    rate = "[$__rate_interval]"
    healthy = (None, "red"), (1, "green")
    builder = (
        sdk.dashboard.Dashboard("GlitchTip service")
        .uid("glitchtip-service")
        .description("GlitchTip's traffic, errors, latency, ingest, queue and database.")
        .tags(["glitchtip", "glitchtip-kit"])
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(sdk.model.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .link(
            sdk.dashboard.DashboardLink("Projects and error budgets")
            .type(sdk.model.DashboardLinkType.DASHBOARDS)
            .tags(["glitchtip-kit"])
            .keep_time(True)
        )
        .with_row(sdk.dashboard.Row("Health"))
        .with_panel(
            _stat(
                sdk,
                "Scrape targets",
                "Prometheus's view of each scrape job (up): DOWN means its metrics are missing.",
                "none",
                f'up{{job=~"{"|".join(JOBS)}"}}',
                "{{job}}",
                span=12,
                thresholds=healthy,
                mappings=_up_down(sdk),
            )
        )
        .with_panel(
            _stat(
                sdk,
                "Database reachable",
                "postgres_exporter's connection to GlitchTip's Postgres (pg_up).",
                "none",
                'pg_up{job="postgres"}',
                span=3,
                thresholds=healthy,
                mappings=_up_down(sdk),
            )
        )
        .with_panel(
            _stat(
                sdk,
                "Valkey reachable",
                "redis_exporter's connection to Valkey, which holds the task queue (redis_up).",
                "none",
                'redis_up{job="valkey"}',
                span=3,
                thresholds=healthy,
                mappings=_up_down(sdk),
            )
        )
        .with_panel(
            _stat(
                sdk,
                "Organizations / projects",
                "GlitchTip's own gauges (glitchtip_organizations, glitchtip_projects).",
                "none",
                # max/max by: one series per web process (`pid`) in multiprocess mode.
                f"max(glitchtip_organizations{{{g}}})",
                "organizations",
                span=3,
            ).with_target(
                _query(
                    sdk, f"sum(max by (organization) (glitchtip_projects{{{g}}}))", "projects"
                ).ref_id("B")
            )
        )
        .with_panel(
            _stat(
                sdk,
                "Tasks queued",
                "Tasks waiting in Valkey for the worker (sum of the queue keys).",
                "none",
                "job:glitchtip_task_queue_length:sum",
                span=3,
                thresholds=((None, "green"), (500, "orange")),
            )
        )
        .with_row(sdk.dashboard.Row("Requests"))
        .with_panel(
            _timeseries(
                sdk,
                "Responses by status",
                "Responses per second by HTTP status (django-prometheus).",
                "reqps",
                [
                    (
                        "sum by (status) (rate("
                        f"django_http_responses_total_by_status_total{{{g}}}{rate}))",
                        "{{status}}",
                    ),
                    ("job:glitchtip_http_requests:rate5m", "all requests (5m)"),
                ],
            )
        )
        .with_panel(
            _timeseries(
                sdk,
                "5xx ratio",
                "Share of responses that are server errors; the alert fires above 5 %.",
                "percentunit",
                [("job:glitchtip_http_responses_5xx:ratio_rate5m", "5xx / all")],
                min=0,
                thresholds=((None, "green"), (0.05, "red")),
            )
        )
        .with_panel(
            _timeseries(
                sdk,
                "Latency percentiles",
                "Request duration including middlewares; the alert fires when p95 > 2 s. "
                "On recent GlitchTip 6 ingest requests bypass these metrics.",
                "s",
                [
                    ("job:glitchtip_http_request_duration_seconds:p50_5m", "p50"),
                    ("job:glitchtip_http_request_duration_seconds:p95_5m", "p95"),
                    ("job:glitchtip_http_request_duration_seconds:p99_5m", "p99"),
                ],
                thresholds=((None, "green"), (2, "red")),
            )
        )
        .with_panel(
            _timeseries(
                sdk,
                "Slowest views (p95)",
                "The five views with the highest p95 latency.",
                "s",
                [
                    (
                        "topk(5, histogram_quantile(0.95, sum by (view, le) (rate("
                        f"django_http_requests_latency_seconds_by_view_method_bucket{{{g}}}{rate}))))",
                        "{{view}}",
                    )
                ],
            )
        )
        .with_row(sdk.dashboard.Row("Ingest"))
        .with_panel(
            _timeseries(
                sdk,
                "Accepted events",
                "Events GlitchTip stored per second, by category, from the project exporter "
                "(stats_v2); works on both majors.",
                "short",
                [
                    (
                        "sum by (category) (project:glitchtip_events:rate5m)",
                        "{{category}}",
                    )
                ],
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                sdk,
                "Ingest requests",
                "Envelope and store requests per second as django-prometheus sees them "
                "(GlitchTip 5; recent GlitchTip 6 routes ingest around these metrics).",
                "reqps",
                [("job:glitchtip_ingest_requests:rate5m", "ingest requests")],
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                sdk,
                "Task queue",
                "Tasks waiting in each queue key (Celery's `celery` on 5, `{vt}:q:*` on 6).",
                "short",
                [('sum by (key) (redis_key_size{job="valkey"})', "{{key}}")],
                span=8,
                min=0,
                thresholds=((None, "green"), (500, "orange")),
            )
        )
        .with_row(sdk.dashboard.Row("Web process"))
        .with_panel(
            _timeseries(
                sdk,
                "Memory (resident)",
                "Resident memory of the process that serves GlitchTip's metrics (the web "
                "process). The worker exposes no metrics: watch it with `docker stats`.",
                "bytes",
                [(f"process_resident_memory_bytes{{{g}}}", "{{instance}}")],
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                sdk,
                "CPU",
                "CPU time used per second by the web process (1 = one core).",
                "short",
                [(f"rate(process_cpu_seconds_total{{{g}}}{rate})", "{{instance}}")],
                span=8,
                min=0,
            )
        )
        .with_panel(
            _timeseries(
                sdk,
                "Open file descriptors",
                "Open descriptors against the process limit.",
                "percentunit",
                [(f"process_open_fds{{{g}}} / process_max_fds{{{g}}}", "{{instance}}")],
                span=8,
                min=0,
            )
        )
        .with_row(sdk.dashboard.Row("Postgres"))
        .with_panel(
            _timeseries(
                sdk,
                "Database size",
                "Size of each database (pg_database_size_bytes). The exporters cannot see "
                "the disk: check its free space on the host.",
                "bytes",
                [('pg_database_size_bytes{job="postgres"}', "{{datname}}")],
            )
        )
        .with_panel(
            _timeseries(
                sdk,
                "Connections",
                "Backends in use against max_connections; the alert fires above 80 %.",
                "short",
                [
                    ('sum(pg_stat_database_numbackends{job="postgres"})', "in use"),
                    ('max(pg_settings_max_connections{job="postgres"})', "max_connections"),
                ],
                min=0,
            )
        )
    )
    return _numbered(builder.build())


def projects_dashboard() -> Any:
    """ "Projects and error budgets": events per project, each budget's remaining share and
    burn rate, the projects that send the most errors, and the exporter's own health."""
    sdk = _sdk()
    selected = f"{EXPORTER},{PROJECT_FILTER}"
    burn_lines = ((None, "green"), (3, "orange"), (14.4, "red"))
    builder = (
        sdk.dashboard.Dashboard("Projects and error budgets")
        .uid("glitchtip-projects")
        .description(
            "Events per GlitchTip project and each project's error budget (glitchtip.yaml "
            "`error_budgets`), from the kit's project exporter."
        )
        .tags(["glitchtip", "glitchtip-kit"])
        .refresh("1m")
        .time("now-24h", "now")
        .timezone("browser")
        .tooltip(sdk.model.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .link(
            sdk.dashboard.DashboardLink("GlitchTip service")
            .type(sdk.model.DashboardLinkType.DASHBOARDS)
            .tags(["glitchtip-kit"])
            .keep_time(True)
        )
        .with_variable(
            sdk.dashboard.QueryVariable("organization")
            .label("Organization")
            .datasource(_datasource(sdk))
            .query(f"label_values(glitchtip_project_events_total{{{EXPORTER}}}, organization)")
            .refresh(sdk.model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(sdk.model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
        .with_variable(
            sdk.dashboard.QueryVariable("project")
            .label("Project")
            .datasource(_datasource(sdk))
            .query(
                "label_values(glitchtip_project_events_total"
                f'{{{EXPORTER},organization=~"$organization"}}, project)'
            )
            .refresh(sdk.model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(sdk.model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
        .with_row(sdk.dashboard.Row("Events"))
        .with_panel(
            _timeseries(
                sdk,
                "Events per minute by project",
                "Events GlitchTip stored, by project and category (error, transaction). The "
                "exporter polls stats_v2 once a minute, so the curve moves in steps.",
                "short",
                [
                    (
                        "sum by (organization, project, category) "
                        f"(project:glitchtip_events:rate5m{{{PROJECT_FILTER}}}) * 60",
                        "{{organization}}/{{project}} {{category}}",
                    )
                ],
                span=16,
                min=0,
            )
        )
        .with_panel(
            sdk.bargauge.Panel()
            .title("Top projects by errors")
            .description("Error events in the dashboard's time range, ten largest.")
            .datasource(_datasource(sdk))
            .unit("short")
            .height(8)
            .span(8)
            .orientation(sdk.enums.VizOrientation.HORIZONTAL)
            .display_mode(sdk.enums.BarGaugeDisplayMode.GRADIENT)
            .reduce_options(sdk.common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .with_target(
                _query(
                    sdk,
                    "topk(10, sum by (organization, project) (increase("
                    f'glitchtip_project_events_total{{{selected},category="error"}}[$__range])))',
                    "{{organization}}/{{project}}",
                    instant=True,
                )
                .format("time_series")
                .ref_id("A")
            )
        )
        .with_row(sdk.dashboard.Row("Error budgets"))
        .with_panel(
            sdk.bargauge.Panel()
            .title("Budget remaining")
            .description(
                "Share of each project's error budget left in its rolling window (1 = "
                "untouched, 0 = spent); the alert fires at 0."
            )
            .datasource(_datasource(sdk))
            .unit("percentunit")
            .min(0)
            .max(1)
            .height(8)
            .span(8)
            .orientation(sdk.enums.VizOrientation.HORIZONTAL)
            .display_mode(sdk.enums.BarGaugeDisplayMode.LCD)
            .reduce_options(sdk.common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .thresholds(_thresholds(sdk, (None, "red"), (0.25, "orange"), (0.5, "green")))
            .with_target(
                _query(
                    sdk,
                    f"project:glitchtip_error_budget_remaining:ratio{{{PROJECT_FILTER}}}",
                    "{{organization}}/{{project}}",
                ).ref_id("A")
            )
        )
        .with_panel(
            _timeseries(
                sdk,
                "Burn rate",
                "How many times faster than its budget allows each project spends errors "
                "(1 = exactly the budget). Alerts: > 14.4 over 1h and 5m (critical), > 3 over "
                "6h and 30m (warning).",
                "short",
                [
                    (
                        f"project:glitchtip_error_budget_burn_rate:1h{{{PROJECT_FILTER}}}",
                        "{{organization}}/{{project}} 1h",
                    ),
                    (
                        f"project:glitchtip_error_budget_burn_rate:6h{{{PROJECT_FILTER}}}",
                        "{{organization}}/{{project}} 6h",
                    ),
                ],
                span=16,
                min=0,
                thresholds=burn_lines,
            )
        )
        .with_panel(
            sdk.table.Panel()
            .title("Budgets")
            .description("Each budget, and the errors counted in its window now.")
            .datasource(_datasource(sdk))
            .show_header(True)
            .height(8)
            .span(24)
            .with_target(
                _query(
                    sdk,
                    "sum by (organization, project) "
                    f"(glitchtip_project_errors_in_budget_window{{{selected}}})",
                    instant=True,
                ).ref_id("errors")
            )
            .with_target(
                _query(
                    sdk,
                    "sum by (organization, project) "
                    f"(glitchtip_project_error_budget_max_errors{{{selected}}})",
                    instant=True,
                ).ref_id("max_errors")
            )
            .with_target(
                _query(
                    sdk,
                    "sum by (organization, project) "
                    f"(glitchtip_project_error_budget_window_seconds{{{selected}}}) / 3600",
                    instant=True,
                ).ref_id("window_hours")
            )
            .with_transformation(sdk.model.DataTransformerConfig(id_val="merge", options={}))
            .with_transformation(
                sdk.model.DataTransformerConfig(
                    id_val="organize",
                    options={
                        "excludeByName": {"Time": True},
                        "renameByName": {
                            "Value #errors": "errors in window",
                            "Value #max_errors": "max errors",
                            "Value #window_hours": "window (hours)",
                        },
                    },
                )
            )
        )
        .with_row(sdk.dashboard.Row("Project exporter"))
        .with_panel(
            _stat(
                sdk,
                "Last poll",
                "Whether the exporter's last poll of GlitchTip's API succeeded.",
                "none",
                f"glitchtip_project_exporter_up{{{EXPORTER}}}",
                thresholds=((None, "red"), (1, "green")),
                mappings=_up_down(sdk),
            )
        )
        .with_panel(
            _stat(
                sdk,
                "Since last success",
                "Age of the last successful poll; the alert fires after 15 minutes.",
                "s",
                f"time() - glitchtip_project_exporter_last_success_timestamp_seconds{{{EXPORTER}}}",
                thresholds=((None, "green"), (180, "orange"), (900, "red")),
            )
        )
        .with_panel(
            _stat(
                sdk,
                "Poll duration",
                "How long the last poll took (bounded calls per poll).",
                "s",
                f"glitchtip_project_exporter_poll_duration_seconds{{{EXPORTER}}}",
            )
        )
        .with_panel(
            _timeseries(
                sdk,
                "API answers",
                "The exporter's calls to GlitchTip's API per minute by status (error = no answer).",
                "short",
                [
                    (
                        "sum by (code) (rate("
                        f"glitchtip_project_exporter_api_requests_total{{{EXPORTER}}}{EXPORTER_RATE}))"
                        " * 60",
                        "{{code}}",
                    )
                ],
                height=4,
                span=6,
                min=0,
            )
        )
    )
    return _numbered(builder.build())


DASHBOARDS: dict[str, Callable[[], Any]] = {
    "glitchtip-service.json": service_dashboard,
    "glitchtip-projects.json": projects_dashboard,
}


def to_json(built: Any) -> str:
    """The dashboard as Grafana's JSON model: stable key order, two-space indent, final newline
    (so the committed file diffs cleanly)."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    return json.dumps(built, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def generate() -> dict[str, str]:
    """{file name: JSON text} of every dashboard."""
    return {name: to_json(build()) for name, build in DASHBOARDS.items()}


def stale(directory: Path = DASHBOARDS_DIR) -> list[str]:
    """Names of the dashboard files in `directory` that differ from a fresh generation."""
    return [
        name
        for name, text in generate().items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    """`--write` rewrites the dashboards, `--check` exits 1 when one is stale."""
    from provision.fileio import write_atomic

    args = sys.argv[1:] if argv is None else argv
    if args == ["--write"]:
        DASHBOARDS_DIR.mkdir(parents=True, exist_ok=True)
        for name, text in generate().items():
            changed = write_atomic(DASHBOARDS_DIR / name, text)
            print(f"{'wrote' if changed else 'unchanged'} {DASHBOARDS_DIR / name}")
        return 0
    if args == ["--check"]:
        outdated = stale()
        for name in outdated:
            print(f"stale: {DASHBOARDS_DIR / name} (run python -m {__spec__.name} --write)")
        return 1 if outdated else 0
    print("usage: python -m provision.monitoring.dashboards --write | --check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
