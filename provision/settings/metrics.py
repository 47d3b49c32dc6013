"""Parsers of the metrics settings: Prometheus's retention and the error budgets."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from provision.settings.base import Invalid, shown
from provision.settings.parsers import int_between
from provision.slugs import slugify

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

_PROMETHEUS_DURATION = re.compile(r"(?:[0-9]{1,6}(?:ms|s|m|h|d|w|y))+", flags=re.ASCII)


def parse_retention(raw: object) -> str:
    """How long Prometheus keeps samples, in Prometheus's duration syntax (`15d`, `2w`, `1d12h`);
    at least 2 hours (one TSDB block) and at most 10 years."""
    text = str(raw).strip()
    fix = "use a Prometheus duration of 2h or more, e.g. 15d, 2w or 90d"
    if not _PROMETHEUS_DURATION.fullmatch(text):
        raise Invalid(f"{shown(raw)} is not a duration", fix)
    seconds = sum(
        int(number) * _DURATION_UNITS[unit]
        for number, unit in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", text)
    )
    if not 2 * 3600 <= seconds <= 10 * 31536000:
        raise Invalid(f"{shown(text)} is out of range", fix)
    return text


# Error budgets are counted from GlitchTip's hourly buckets (stats_v2), so a window is a whole
# number of hours. GlitchTip's stats API refuses a window of more than 1000 hourly buckets
# (recording 177, "Too many intervals"; 41 d 23 h still passes), so 41 days is the longest.
_WINDOW = re.compile(r"([0-9]{1,4})([hdw])", flags=re.ASCII)


_WINDOW_SECONDS = {"h": 3600, "d": 86400, "w": 604800}

MAX_BUDGET_WINDOW = 41 * 86400

MAX_BUDGET_ERRORS = 1_000_000_000

BUDGET_KEYS = ("max_errors", "per")

DEFAULT_BUDGET: dict[str, Any] = {"max_errors": 200, "per": "1d"}


def budget_window_seconds(per: str) -> int:
    """`per` of an error budget (`1h`, `6h`, `1d`, `7d`, `2w`) in seconds."""
    match = _WINDOW.fullmatch(per)
    if match is None:
        raise Invalid(f"{shown(per)} is not a window", "use hours, days or weeks: 1h, 6h, 1d, 7d")
    return int(match.group(1)) * _WINDOW_SECONDS[match.group(2)]


def _parse_window(raw: object, where: str) -> str:
    fix = "use whole hours, days or weeks from 1h to 41d, e.g. 1h, 6h, 1d, 7d or 30d"
    text = str(raw).strip() if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
    match = _WINDOW.fullmatch(text)
    if match is None:
        raise Invalid(f"{where}.per: {shown(raw)} is not a window", fix)
    if not 3600 <= budget_window_seconds(text) <= MAX_BUDGET_WINDOW:
        raise Invalid(f"{where}.per: {text} is out of range", fix)
    return text


def _parse_max_errors(raw: object, where: str) -> int:
    fix = f"use a whole number of errors from 1 to {MAX_BUDGET_ERRORS}, e.g. max_errors: 200"
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise Invalid(f"{where}.max_errors: {shown(raw)} is not a number of errors", fix)
    try:
        return int_between(1, MAX_BUDGET_ERRORS, "number of errors")(raw)
    except Invalid as problem:
        raise Invalid(f"{where}.max_errors: {problem.problem}", fix) from None


def _budget_slug(key: object) -> str:
    """A key of `error_budgets`: `default` or a project slug exactly as GlitchTip makes it."""
    fix = (
        "use `default` or a project's slug as GlitchTip shows it in URLs "
        "(lowercase ASCII letters, digits, '-' and '_')"
    )
    if isinstance(key, bool) or key is None or not isinstance(key, (str, int)):
        raise Invalid(f"error_budgets: the key {shown(key)} is not a project slug", fix)
    text = str(key)
    if re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,49}", text, flags=re.ASCII):
        return text
    slug = slugify(text)[:50]
    if slug and slug != text:
        fix = f"GlitchTip's slug of {shown(text)} is {slug!r}: write that ({fix})"
    raise Invalid(f"error_budgets: {shown(text)} is not a project slug", fix)


def parse_error_budgets(raw: object) -> dict[str, dict[str, Any]]:
    """`error_budgets` from glitchtip.yaml: `{slug|default: {max_errors: N, per: 1d}}`.

    Every mistake is refused with the path to it (`error_budgets.web.per`); `default` applies
    to every project not listed and is the kit's 200 errors per day when not given."""
    if raw is None or raw == {}:
        return {"default": dict(DEFAULT_BUDGET)}
    if not isinstance(raw, Mapping):
        raise Invalid(
            f"{shown(raw)} is not a mapping of projects",
            "write it in glitchtip.yaml as `error_budgets:` then `  default: {max_errors: 200, "
            "per: 1d}` (one line per project slug)",
        )
    budgets: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        slug = _budget_slug(key)
        where = f"error_budgets.{slug}"
        if not isinstance(value, Mapping):
            raise Invalid(
                f"{where}: {shown(value)} is not a budget",
                f"write `{slug}: {{max_errors: 200, per: 1d}}`",
            )
        for field_name in value:
            if field_name not in BUDGET_KEYS:
                close = difflib.get_close_matches(str(field_name), BUDGET_KEYS, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise Invalid(
                    f"{where}: unknown key {shown(field_name)}",
                    f"{hint}a budget has max_errors and per only",
                )
        missing = [name for name in BUDGET_KEYS if name not in value]
        if missing:
            raise Invalid(
                f"{where}: {' and '.join(missing)} missing",
                f"write `{slug}: {{max_errors: 200, per: 1d}}`",
            )
        budgets[slug] = {
            "max_errors": _parse_max_errors(value["max_errors"], where),
            "per": _parse_window(value["per"], where),
        }
    if "default" not in budgets:
        budgets = {"default": dict(DEFAULT_BUDGET), **budgets}
    return budgets
