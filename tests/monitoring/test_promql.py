"""Every PromQL expression of the kit's rules and dashboards parses and reads only real metrics.

The table below is what the metrics stack really exposes, per scrape job: GlitchTip's own
families (checked against the recorded `metrics-sample.txt` when the shared contract directory
is there), the project exporter's (checked against its source), and the names postgres_exporter
and redis_exporter document. A typo'd metric name, a wrong job, a label the metric does not
carry or a recording rule nobody defines fails here, without Prometheus.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from provision.monitoring import promql

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "templates" / "monitoring"
RULES = MONITORING / "prometheus" / "rules"
EXPORTER_SOURCE = REPO / "provision" / "monitoring" / "project_exporter.py"
# Read at import: the autouse hermetic fixture removes GLITCHTIP_* variables from the tests.
CONTRACT = Path(
    os.environ.get("GLITCHTIP_CONTRACT_DIR", "") or REPO.parent / "shared" / "glitchtip-contract"
)

TARGET = {"job", "instance"}
# metric -> (scrape job, the labels it carries besides job and instance)
METRICS: dict[str, tuple[str | None, set[str]]] = {
    # Prometheus itself, one series per target.
    "up": (None, set()),
    # GlitchTip (django-prometheus and its own gauges), metrics-sample.txt.
    "django_http_requests_before_middlewares_total": ("glitchtip", set()),
    "django_http_responses_total_by_status_total": ("glitchtip", {"status"}),
    "django_http_requests_latency_including_middlewares_seconds_bucket": ("glitchtip", {"le"}),
    "django_http_requests_total_by_view_transport_method_total": (
        "glitchtip",
        {"view", "transport", "method"},
    ),
    "django_http_requests_latency_seconds_by_view_method_bucket": (
        "glitchtip",
        {"le", "view", "method"},
    ),
    "process_resident_memory_bytes": ("glitchtip", set()),
    "process_cpu_seconds_total": ("glitchtip", set()),
    "process_open_fds": ("glitchtip", set()),
    "process_max_fds": ("glitchtip", set()),
    "glitchtip_organizations": ("glitchtip", set()),
    "glitchtip_projects": ("glitchtip", {"organization"}),
    # The kit's project exporter (provision/monitoring/project_exporter.py).
    "glitchtip_project_events_total": ("project-exporter", {"organization", "project", "category"}),
    "glitchtip_project_errors_in_budget_window": ("project-exporter", {"organization", "project"}),
    "glitchtip_project_error_budget_max_errors": ("project-exporter", {"organization", "project"}),
    "glitchtip_project_error_budget_window_seconds": (
        "project-exporter",
        {"organization", "project"},
    ),
    "glitchtip_project_exporter_up": ("project-exporter", set()),
    "glitchtip_project_exporter_last_success_timestamp_seconds": ("project-exporter", set()),
    "glitchtip_project_exporter_poll_duration_seconds": ("project-exporter", set()),
    "glitchtip_project_exporter_api_requests_total": ("project-exporter", {"code"}),
    # postgres_exporter (default collectors).
    "pg_up": ("postgres", set()),
    "pg_database_size_bytes": ("postgres", {"datname"}),
    "pg_stat_database_numbackends": ("postgres", {"datid", "datname"}),
    "pg_settings_max_connections": ("postgres", {"server"}),
    # redis_exporter (redis_key_size from --check-single-keys).
    "redis_up": ("valkey", set()),
    "redis_key_size": ("valkey", {"db", "key"}),
}
JOBS = {"prometheus", "glitchtip", "project-exporter", "postgres", "valkey"}


def recorded_names() -> set[str]:
    """The series the kit's recording rules define."""
    import yaml

    names = set()
    for path in RULES.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return names


def problems(expression: promql.Expression, recorded: set[str]) -> list[str]:
    """What is wrong with one expression: unknown metrics, wrong jobs, unknown labels."""
    found = []
    try:
        selectors = promql.selectors(expression.expr)
    except ValueError as exc:
        return [f"does not parse: {exc}"]
    for selector in selectors:
        if ":" in selector.name:
            if selector.name not in recorded:
                found.append(f"{selector.name} is no recording rule of the kit")
            continue
        if selector.name not in METRICS:
            found.append(f"{selector.name} is no metric the stack exposes")
            continue
        job, labels = METRICS[selector.name]
        matched_job = selector.label("job")
        if job is not None and matched_job != job:
            found.append(f'{selector.name} needs job="{job}" (has {matched_job!r})')
        for label, operator, value in selector.labels:
            if label == "job" and operator in ("=", "=~"):
                jobs = set(value.split("|")) if operator == "=~" else {value}
                if not jobs <= JOBS:
                    found.append(f"{selector.name}: unknown job(s) {sorted(jobs - JOBS)}")
            elif label not in labels | TARGET:
                found.append(f"{selector.name} has no label {label!r}")
    return found


EXPRESSIONS = promql.all_expressions(MONITORING)


def test_the_kit_has_expressions_to_check():
    sources = {expression.source for expression in EXPRESSIONS}
    assert {
        "glitchtip.yml",
        "error-budgets.yml",
        "glitchtip-service.json",
        "glitchtip-projects.json",
    } <= sources
    assert len(EXPRESSIONS) >= 60


@pytest.mark.parametrize(
    "expression", EXPRESSIONS, ids=[f"{e.source}:{e.where}" for e in EXPRESSIONS]
)
def test_every_expression_parses_and_reads_real_metrics(expression):
    assert problems(expression, recorded_names()) == [], expression.expr


def test_every_recording_rule_is_used_by_an_alert_or_a_dashboard():
    used = {s.name for e in EXPRESSIONS for s in promql.selectors(e.expr) if ":" in s.name}
    assert recorded_names() - used == set()


@pytest.mark.parametrize(
    ("expr", "complaint"),
    [
        ('rate(django_http_requests_before_middlewares_totl{job="glitchtip"}[5m])', "no metric"),
        ('pg_up{job="postgresql"}', 'needs job="postgres"'),
        ("pg_up", 'needs job="postgres"'),
        ('redis_key_size{job="valkey",queue="celery"}', "no label 'queue'"),
        ('up{job=~"glitchtip|grafana"}', "unknown job(s) ['grafana']"),
        ("job:glitchtip_http_requests:rate1m", "no recording rule"),
        ('sum(rate(pg_up{job="postgres"}[5m])', "does not parse"),
    ],
)
def test_the_checker_catches_each_kind_of_mistake(expr, complaint):
    found = problems(promql.Expression("test", "case", expr), recorded_names())
    assert any(complaint in line for line in found), found


def test_grafana_variables_are_expanded_and_unknown_ones_refused():
    values = {"organization": ".*"}
    assert (
        promql.expand_variables('x{o=~"$organization"}[$__rate_interval]', values)
        == 'x{o=~".*"}[5m]'
    )
    assert promql.expand_variables("x[${__range}]", values) == "x[1h]"
    with pytest.raises(ValueError, match=r"unknown Grafana variable \$projekt"):
        promql.expand_variables('x{p=~"$projekt"}', values)


def test_a_variable_query_must_be_label_values():
    variable = {"name": "v", "type": "query", "query": "up"}
    with pytest.raises(ValueError, match="is not label_values"):
        promql.variable_query(variable)
    variable["query"] = {"query": 'label_values(up{job="valkey"}, instance)'}
    assert promql.variable_query(variable) == 'up{job="valkey"}'


def sample_names() -> set[str]:
    text = (CONTRACT / "metrics-sample.txt").read_text()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1].isalpha()}


@pytest.mark.skipif(
    not (CONTRACT / "metrics-sample.txt").is_file(),
    reason=f"no recorded metrics sample at {CONTRACT} (set GLITCHTIP_CONTRACT_DIR)",
)
def test_glitchtip_metric_names_are_in_the_recorded_sample():
    glitchtip = {name for name, (job, _) in METRICS.items() if job == "glitchtip"}
    assert glitchtip - sample_names() == set()


def test_project_exporter_metric_names_are_in_its_source():
    source = EXPORTER_SOURCE.read_text()
    declared = set(re.findall(r'"(glitchtip_project_[a-z_]+)"', source))
    exporter = {name for name, (job, _) in METRICS.items() if job == "project-exporter"}
    # prometheus_client adds _total to a Counter's name.
    assert {name.removesuffix("_total") for name in exporter} <= declared
