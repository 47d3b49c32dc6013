"""Every PromQL expression the kit ships, found in its rule files and dashboards.

The fast tests parse each one and check the metric names it reads; the Docker tier runs each
one against a live Prometheus. Both need the same list, and dashboards hold Grafana variables
(`$__rate_interval`, `$organization`) that Prometheus does not understand, so this module also
replaces them with values a real Grafana would send. Pure functions over file contents; the
parser (`promql-parser`, a development dependency) is imported only by `selectors`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What Grafana substitutes for its built-in interval variables when a dashboard covers an hour
# with Prometheus's 15 s scrape interval: the values only have to be valid durations.
BUILTIN_VALUES: dict[str, str] = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
}
# `$name`, `${name}`, `${name:format}` and the deprecated `[[name]]`.
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.+),)?\s*(?P<label>\w+)\s*\)\s*$")


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it lives (file, and rule or panel)."""

    source: str
    where: str
    expr: str


def expand_variables(expr: str, values: Mapping[str, str]) -> str:
    """`expr` with every Grafana variable replaced; an unknown variable raises ValueError, so a
    dashboard that names a variable it does not define fails the tests."""
    known = {**BUILTIN_VALUES, **values}

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in known:
            raise ValueError(f"unknown Grafana variable ${name} in {expr!r}")
        return known[name]

    return VARIABLE.sub(replace, expr)


def rule_expressions(path: Path) -> Iterator[Expression]:
    """Each recording and alerting rule's `expr` in a Prometheus rule file."""
    import yaml

    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for group in document.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("record") or rule.get("alert")
            yield Expression(path.name, f"{group['name']}/{name}", str(rule["expr"]))


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # collapsed rows hold their panels


def variable_values(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """A value for each of the dashboard's own variables, as Grafana would send it with "All"
    selected (a regex matching anything), or the datasource's uid for a datasource variable."""
    values: dict[str, str] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "datasource":
            values[variable["name"]] = "prometheus"
        else:
            values[variable["name"]] = ".*"
    return values


def variable_query(variable: Mapping[str, Any]) -> str | None:
    """The PromQL inside a query variable: the selector of `label_values(selector, label)`, the
    expression of `query_result(expr)`; None for other kinds of variables."""
    if variable.get("type") != "query":
        return None
    query = variable.get("query")
    if isinstance(query, Mapping):
        query = query.get("query")
    text = str(query or "")
    found = LABEL_VALUES.match(text)
    if found:
        return found.group("selector") or "up"  # label_values(label) asks every series
    wrapped = re.match(r"^\s*query_result\((?P<expr>.+)\)\s*$", text)
    if wrapped:
        return wrapped.group("expr")
    raise ValueError(f"variable {variable.get('name')!r}: query {text!r} is not label_values()")


def dashboard_expressions(path: Path) -> Iterator[Expression]:
    """Each panel target's `expr` and each query variable's PromQL in a dashboard JSON file,
    with the Grafana variables expanded."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    values = variable_values(dashboard)
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable_query(variable)
        if query is not None:
            where = f"variable {variable['name']}"
            yield Expression(path.name, where, expand_variables(query, values))
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if "expr" in target:
                where = f"panel {panel.get('title')!r} {target.get('refId', '')}".rstrip()
                yield Expression(path.name, where, expand_variables(target["expr"], values))


def all_expressions(monitoring: Path) -> list[Expression]:
    """Every expression under a `monitoring/` tree (the templates' or a deployment's):
    prometheus/rules/*.yml and grafana/dashboards/*.json."""
    found: list[Expression] = []
    for path in sorted((monitoring / "prometheus" / "rules").glob("*.yml")):
        found.extend(rule_expressions(path))
    for path in sorted((monitoring / "grafana" / "dashboards").glob("*.json")):
        found.extend(dashboard_expressions(path))
    return found


@dataclass(frozen=True)
class Selector:
    """A series selector in an expression: the metric name and its equality matchers."""

    name: str
    labels: tuple[tuple[str, str, str], ...]  # (label, operator, value)

    def label(self, name: str) -> str | None:
        """The value an `=` matcher gives `name`, else None."""
        return next((v for label, op, v in self.labels if label == name and op == "="), None)


def selectors(expr: str) -> list[Selector]:
    """The series selectors of `expr` (ValueError when it does not parse as PromQL)."""
    import promql_parser

    tree = promql_parser.parse(expr)
    found: list[Selector] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = tuple(
                (m.name, _OPERATORS[str(m.op)], m.value) for m in node.matchers.matchers
            )
            name = node.name or next((v for label, _, v in matchers if label == "__name__"), "")
            found.append(Selector(name, matchers))

    promql_parser.walk(tree, visit)
    return found


_OPERATORS = {
    "MatchOp.Equal": "=",
    "MatchOp.NotEqual": "!=",
    "MatchOp.Re": "=~",
    "MatchOp.NotRe": "!~",
}
