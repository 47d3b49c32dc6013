"""Event statistics of the fake GlitchTip: the hourly counters the worker keeps, and stats_v2.

GlitchTip's worker adds every stored event to a per project-hour counter
(`projects_issueeventprojecthourlystatistic` for errors, every non-transaction event, and
`projects_transactioneventprojecthourlystatistic` for transactions), keyed by the hour the event
was *received*. `GET /api/0/organizations/{org}/stats_v2/` (apps/stats/api.py) reads them with
one raw SQL query per call:

    SELECT gs.ts, sum(stat.count) FROM generate_series(start, end, interval) gs (ts)
    LEFT JOIN <hourly table> stat ON stat.date >= gs.ts AND stat.date < gs.ts + interval '1 hour'
    WHERE stat.project_id = ANY(<project ids>) OR stat IS NULL
    GROUP BY gs.ts ORDER BY gs.ts

`hourly_series` evaluates exactly that, so the fake has the recorded bugs for free (NOTES.md
"stats_v2"): a `1d` bucket holds only its first hour; a `1m` bucket holds the hour that starts
at it (so each hourly count repeats in the 60 minutes before the hour); an hour in which only
projects outside the filter have rows disappears from `intervals` instead of being null.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from .store import State

CATEGORIES = ("error", "transaction")
FIELDS = ("sum(quantity)", "sum(times_seen)")
INTERVALS = {
    "1d": _dt.timedelta(days=1),
    "1h": _dt.timedelta(hours=1),
    "1m": _dt.timedelta(minutes=1),
}
# `(end - start).days` times this must not exceed 1000 ("Too many intervals", recorded 177).
# 1h and 1m are recorded; 1d's factor is what "days" means (read from the schema's check).
INTERVAL_LIMIT_FACTOR = {"1h": 24, "1m": 1440, "1d": 1}
MAX_INTERVALS = 1000
HOUR = _dt.timedelta(hours=1)


def hour_of(received: str) -> _dt.datetime:
    """The UTC hour a received time (`...Z` or with an offset) falls in."""
    stamp = parse_datetime(received)
    return stamp.replace(minute=0, second=0, microsecond=0)


def parse_datetime(value: str) -> _dt.datetime:
    """An ISO datetime as pydantic accepts it; naive values are UTC (recorded 175)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    stamp = _dt.datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.UTC)
    return stamp.astimezone(_dt.UTC)


def _key(project_id: int, hour: _dt.datetime) -> str:
    return f"{project_id}|{hour.isoformat()}"


def count_event(state: State, category: str, project_id: int, received: str) -> None:
    """Add one stored event to its project-hour counter (what the worker does on save)."""
    table = state.setdefault("hourly_stats", {}).setdefault(category, {})
    key = _key(project_id, hour_of(received))
    table[key] = table.get(key, 0) + 1


def hourly_rows(state: State, category: str) -> list[tuple[int, _dt.datetime, int]]:
    """Every (project id, hour, count) row of a category."""
    rows = []
    for key, count in state.get("hourly_stats", {}).get(category, {}).items():
        project_id, _, hour = key.partition("|")
        rows.append((int(project_id), _dt.datetime.fromisoformat(hour), int(count)))
    return rows


def hourly_series(
    state: State,
    category: str,
    start: _dt.datetime,
    end: _dt.datetime,
    step: _dt.timedelta,
    project_ids: set[int],
) -> list[tuple[_dt.datetime, int | None]]:
    """The rows of GlitchTip's stats query (see the module docstring), bugs included."""
    rows = hourly_rows(state, category)
    series: list[tuple[_dt.datetime, int | None]] = []
    ts = start
    while ts <= end:  # generate_series includes both bounds
        joined = [(pid, count) for pid, hour, count in rows if ts <= hour < ts + HOUR]
        if not joined:
            series.append((ts, None))  # LEFT JOIN found nothing: `stat IS NULL` keeps it
        else:
            kept = [count for pid, count in joined if pid in project_ids]
            if kept:
                series.append((ts, sum(kept)))
            # else: the WHERE drops every joined row, and the bucket with them (recorded 170)
        ts += step
    return series


def validate_query(query: dict[str, list[str]]) -> list[dict[str, Any]] | None:
    """Pydantic's 422 items for the query of StatsV2Schema, or None when it is valid."""
    errors: list[dict[str, Any]] = []

    def literal(name: str, allowed: tuple[str, ...], default: str | None = None) -> None:
        values = query.get(name)
        if not values:
            if default is None:
                errors.append({"type": "missing", "loc": ["query", name], "msg": "Field required"})
            return
        if values[0] not in allowed:
            quoted = [f"'{a}'" for a in allowed]
            expected = (
                " or ".join(quoted)
                if len(quoted) == 2
                else (", ".join(quoted[:-1]) + " or " + quoted[-1])
            )
            errors.append(
                {
                    "type": "literal_error",
                    "loc": ["query", name],
                    "msg": f"Input should be {expected}",
                    "ctx": {"expected": expected},
                }
            )

    literal("category", CATEGORIES)
    literal("interval", ("1d", "1h", "1m"), default="1h")
    literal("field", FIELDS)
    for name in ("start", "end"):
        values = query.get(name)
        if not values:
            errors.append({"type": "missing", "loc": ["query", name], "msg": "Field required"})
            continue
        try:
            parse_datetime(values[0])
        except ValueError:
            errors.append(
                {
                    "type": "datetime_from_date_parsing",
                    "loc": ["query", name],
                    "msg": "Input should be a valid datetime or date, invalid character in year",
                }
            )
    for index, raw in enumerate(query.get("project", [])):
        try:
            value = int(raw)
        except ValueError:
            errors.append(
                {
                    "type": "int_parsing",
                    "loc": ["query", "filters", "project", index],
                    "msg": "Input should be a valid integer, unable to parse string as an integer",
                }
            )
            continue
        if value < -1:  # `project: list[conint(ge=-1)]`: -1 passes (recorded 182)
            errors.append(
                {
                    "type": "greater_than_equal",
                    "loc": ["query", "filters", "project", index],
                    "msg": "Input should be greater than or equal to -1",
                    "ctx": {"ge": -1},
                }
            )
    return errors or None


def too_many_intervals(start: _dt.datetime, end: _dt.datetime, interval: str) -> bool:
    """The schema's window check: whole days times buckets per day must be <= 1000."""
    return (end - start).days * INTERVAL_LIMIT_FACTOR[interval] > MAX_INTERVALS


def stats_v2_body(
    state: State,
    query: dict[str, list[str]],
    org_project_ids: list[int],
) -> tuple[int, Any]:
    """(status, JSON) of stats_v2 for a valid query (window checked) over the caller's org
    projects (none, for an unknown org: 404 like GlitchTip's empty project list)."""
    category = query["category"][0]
    interval = (query.get("interval") or ["1h"])[0]
    field = query["field"][0]
    start = parse_datetime(query["start"][0])
    end = parse_datetime(query["end"][0])
    wanted = {int(p) for p in query.get("project", [])}
    ids = [p for p in org_project_ids if not wanted or p in wanted]
    if not ids:
        return 404, {"detail": "Not Found"}
    first = start.replace(minute=0, second=0, microsecond=0)
    last = (end + HOUR).replace(minute=0, second=0, microsecond=0)
    series = hourly_series(state, category, first, last, INTERVALS[interval], set(ids))
    return 200, {
        "intervals": [ts.isoformat() for ts, _ in series],
        "groups": [{"series": {field: [value for _, value in series]}}],
    }
