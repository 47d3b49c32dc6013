"""Settings of the metrics stack: images, ports, retention, the recorded `metrics` choice, and
`error_budgets`, the one mapping among the settings (glitchtip.yaml only, every mistake refused
with its path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import SettingsError
from provision.settings import budget_window_seconds, load_settings


def load(directory: Path, yaml_text: str | None = None, environ=None, **overrides):
    if yaml_text is not None:
        (directory / "glitchtip.yaml").write_text(yaml_text, encoding="utf-8")
    return load_settings(directory, overrides, environ=environ or {})


def refusal(directory: Path, yaml_text: str | None = None, environ=None, **overrides) -> str:
    with pytest.raises(SettingsError) as caught:
        load(directory, yaml_text, environ, **overrides)
    line = caught.value.line()
    assert "\n" not in line
    return line


def test_defaults(tmp_path):
    settings = load(tmp_path)
    assert settings.metrics is False
    assert (settings.prometheus_port, settings.grafana_port) == (9090, 3000)
    assert settings.prometheus_retention == "15d"
    assert settings.prometheus_image == "prom/prometheus:v3.13.1"
    assert settings.grafana_image == "grafana/grafana:12.4.1"
    assert settings.postgres_exporter_image == "prometheuscommunity/postgres-exporter:v0.20.1"
    assert settings.valkey_exporter_image == "oliver006/redis_exporter:v1.91.1"
    assert settings.error_budgets == {"default": {"max_errors": 200, "per": "1d"}}


def test_error_budgets_from_glitchtip_yaml(tmp_path):
    settings = load(
        tmp_path,
        "error_budgets:\n"
        "  web-app: {max_errors: 50, per: 6h}\n"
        "  default:\n"
        "    max_errors: 1000\n"
        "    per: 7d\n"
        "  '123': {max_errors: '7', per: 2w}\n",
    )
    assert settings.error_budgets == {
        "web-app": {"max_errors": 50, "per": "6h"},
        "default": {"max_errors": 1000, "per": "7d"},
        "123": {"max_errors": 7, "per": "2w"},
    }
    assert settings.sources["error_budgets"] == "file"


def test_a_missing_default_budget_is_the_kits(tmp_path):
    settings = load(tmp_path, "error_budgets:\n  api: {max_errors: 5, per: 1h}\n")
    assert settings.error_budgets == {
        "default": {"max_errors": 200, "per": "1d"},
        "api": {"max_errors": 5, "per": "1h"},
    }


@pytest.mark.parametrize(
    ("per", "seconds"),
    [("1h", 3600), ("6h", 21600), ("1d", 86400), ("7d", 604800), ("2w", 1209600)],
)
def test_budget_windows_in_seconds(per, seconds):
    assert budget_window_seconds(per) == seconds


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "error_budgets:\n  web: {max_errors: 50, per: 90m}\n",
            "error_budgets (from glitchtip.yaml): error_budgets.web.per: '90m' is not a window: "
            "use whole hours, days or weeks from 1h to 41d, e.g. 1h, 6h, 1d, 7d or 30d",
        ),
        (
            "error_budgets:\n  web: {max_errors: 50, per: 42d}\n",
            "error_budgets (from glitchtip.yaml): error_budgets.web.per: 42d is out of range: "
            "use whole hours, days or weeks from 1h to 41d, e.g. 1h, 6h, 1d, 7d or 30d",
        ),
        (
            "error_budgets:\n  web: {max_errors: 0, per: 1d}\n",
            "error_budgets (from glitchtip.yaml): error_budgets.web.max_errors: 0 is out of "
            "range: use a whole number of errors from 1 to 1000000000, e.g. max_errors: 200",
        ),
        (
            "error_budgets:\n  web: {max_errors: true, per: 1d}\n",
            "error_budgets (from glitchtip.yaml): error_budgets.web.max_errors: 'True' is not a "
            "number of errors: use a whole number of errors from 1 to 1000000000, e.g. "
            "max_errors: 200",
        ),
        (
            "error_budgets:\n  web: {max_errors: 2.5, per: 1d}\n",
            "error_budgets (from glitchtip.yaml): error_budgets.web.max_errors: '2.5' is not a "
            "number of errors: use a whole number of errors from 1 to 1000000000, e.g. "
            "max_errors: 200",
        ),
        (
            "error_budgets:\n  web: {max_error: 5, per: 1d}\n",
            "error_budgets (from glitchtip.yaml): error_budgets.web: unknown key 'max_error': "
            "did you mean max_errors? a budget has max_errors and per only",
        ),
        (
            "error_budgets:\n  web: {max_errors: 5}\n",
            "error_budgets (from glitchtip.yaml): error_budgets.web: per missing: write "
            "`web: {max_errors: 200, per: 1d}`",
        ),
        (
            "error_budgets:\n  web: 5\n",
            "error_budgets (from glitchtip.yaml): error_budgets.web: '5' is not a budget: write "
            "`web: {max_errors: 200, per: 1d}`",
        ),
        (
            "error_budgets:\n  Web App: {max_errors: 5, per: 1d}\n",
            "error_budgets (from glitchtip.yaml): error_budgets: 'Web App' is not a project "
            "slug: GlitchTip's slug of 'Web App' is 'web-app': write that (use `default` or a "
            "project's slug as GlitchTip shows it in URLs (lowercase ASCII letters, digits, '-' "
            "and '_'))",
        ),
        (
            "error_budgets:\n  café: {max_errors: 5, per: 1d}\n",
            "error_budgets (from glitchtip.yaml): error_budgets: 'café' is not a project slug: "
            "GlitchTip's slug of 'café' is 'cafe': write that (use `default` or a project's "
            "slug as GlitchTip shows it in URLs (lowercase ASCII letters, digits, '-' and '_'))",
        ),
        (
            "error_budgets:\n  日本: {max_errors: 5, per: 1d}\n",
            "error_budgets (from glitchtip.yaml): error_budgets: '日本' is not a project slug: "
            "use `default` or a project's slug as GlitchTip shows it in URLs (lowercase ASCII "
            "letters, digits, '-' and '_')",
        ),
        (
            "error_budgets:\n  null: {max_errors: 5, per: 1d}\n",
            "error_budgets (from glitchtip.yaml): error_budgets: the key 'None' is not a project "
            "slug: use `default` or a project's slug as GlitchTip shows it in URLs (lowercase "
            "ASCII letters, digits, '-' and '_')",
        ),
        (
            "error_budgets: 200\n",
            "error_budgets (from glitchtip.yaml): '200' is not a mapping of projects: write it "
            "in glitchtip.yaml as `error_budgets:` then `  default: {max_errors: 200, per: 1d}` "
            "(one line per project slug)",
        ),
    ],
)
def test_every_budget_mistake_is_one_line_naming_its_path(tmp_path, yaml_text, expected):
    assert refusal(tmp_path, yaml_text) == expected


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "error_budgets:\n  web: {max_errors: 5, per: 1d}\n  web: {max_errors: 6, per: 1d}\n",
            "glitchtip.yaml: error_budgets: 'web' is set twice (lines 2 and 3): delete one of "
            "the two lines (YAML would silently keep the last)",
        ),
        (
            "error_budgets:\n  web: {max_errors: 5, max_errors: 6, per: 1d}\n",
            "glitchtip.yaml: error_budgets: 'max_errors' is set twice (lines 2 and 2): delete "
            "one of the two lines (YAML would silently keep the last)",
        ),
        (
            "error_budgets:\n  web: {max_errors: {a: 1}, per: 1d}\n",
            "glitchtip.yaml: line 2: max_errors: its value is a list or mapping: write budgets "
            "as `error_budgets:` then `  <project>: {max_errors: 200, per: 1d}`",
        ),
        (
            "error_budgets:\n  - web\n",
            "glitchtip.yaml: line 2: error_budgets: its value is a list or mapping: write "
            "budgets as `error_budgets:` then `  <project>: {max_errors: 200, per: 1d}`",
        ),
        (
            "metrics: {on: true}\n",
            "glitchtip.yaml: line 1: metrics: its value is a list or mapping: give each setting "
            "a single value ('setting: value')",
        ),
        (
            "error_budgets: &b\n  web: {max_errors: 5, per: 1d}\n",
            "glitchtip.yaml: line 1 uses a YAML anchor or alias (& or *): write each setting's "
            "value out in full",
        ),
    ],
)
def test_the_yaml_reader_allows_budget_mappings_and_nothing_deeper(tmp_path, yaml_text, expected):
    assert refusal(tmp_path, yaml_text) == expected


def test_deep_nesting_is_refused_before_yaml_builds_it(tmp_path):
    deep = "error_budgets:\n  web: {max_errors: " + "[" * 50_000 + "]" * 50_000 + ", per: 1d}\n"
    assert "is a list or mapping" in refusal(tmp_path, deep)


def test_error_budgets_only_from_glitchtip_yaml(tmp_path):
    assert refusal(tmp_path, environ={"GLITCHTIP_KIT_ERROR_BUDGETS": "x"}) == (
        "error_budgets (from environment variable GLITCHTIP_KIT_ERROR_BUDGETS): can only be set "
        f"in glitchtip.yaml: write it in {tmp_path / 'glitchtip.yaml'} (see docs/metrics.md)"
    )
    assert refusal(tmp_path, error_budgets="default=1").startswith(
        "error_budgets (from option error_budgets): can only be set in glitchtip.yaml"
    )


@pytest.mark.parametrize("value", ["15d", "2w", "1d12h", "2h", "90d", "10y"])
def test_retention_accepts_prometheus_durations(tmp_path, value):
    assert load(tmp_path, prometheus_retention=value).prometheus_retention == value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("15", "'15' is not a duration"),
        ("15 d", "'15 d' is not a duration"),
        ("1h", "'1h' is out of range"),
        ("11y", "'11y' is out of range"),
        ("-1d", "'-1d' is not a duration"),
        ("1\u0665d", "'1\u0665d' is not a duration"),  # an Arabic-Indic digit
    ],
)
def test_retention_refuses_what_prometheus_would_not_take(tmp_path, value, problem):
    assert refusal(tmp_path, prometheus_retention=value) == (
        f"prometheus_retention (from option prometheus_retention): {problem}: use a Prometheus "
        "duration of 2h or more, e.g. 15d, 2w or 90d"
    )


def test_metrics_ports_must_differ_from_the_web_port_and_each_other(tmp_path):
    assert refusal(tmp_path, metrics="true", grafana_port="8000") == (
        "grafana_port (from option grafana_port): port 8000 is also http_port: give "
        "grafana_port a port of its own on 127.0.0.1"
    )
    assert refusal(tmp_path, metrics="true", prometheus_port="3000").startswith(
        "grafana_port (from default): port 3000 is also prometheus_port"
    )
    # With metrics off the ports are not used: nothing to refuse.
    assert load(tmp_path, grafana_port="8000").grafana_port == 8000


def test_metrics_images_must_be_pinned(tmp_path):
    assert refusal(tmp_path, grafana_image="grafana/grafana:latest") == (
        "grafana_image (from option grafana_image): 'grafana/grafana:latest' is not pinned: use "
        "a version tag instead of latest"
    )


def test_the_metrics_choice_is_read_back_from_env(tmp_path):
    (tmp_path / ".env").write_text("GLITCHTIP_KIT_METRICS=true\n")
    settings = load(tmp_path)
    assert settings.metrics is True and settings.sources["metrics"] == ".env"
    (tmp_path / ".env").write_text("GLITCHTIP_KIT_METRICS=false\n")
    assert load(tmp_path).metrics is False
    assert load(tmp_path, "metrics: true\n").metrics is True  # glitchtip.yaml wins over .env
    (tmp_path / ".env").write_text("GLITCHTIP_KIT_METRICS=maybe\n")
    assert refusal(tmp_path, "") == (
        "metrics (from .env GLITCHTIP_KIT_METRICS): 'maybe' is not a yes/no value: use true or "
        "false"
    )
