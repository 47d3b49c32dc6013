"""Locust's CSV report, read back: requests, failures, latency percentiles, per kind.

Locust writes `<prefix>_stats.csv` with one row per request name (the kit names requests after
their kind: error_gzip, transaction, ...) and an `Aggregated` row; every request the load test
counts as a success was answered 200 with the id of the event it carried, so successes are the
events GlitchTip accepted.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from provision.errors import KitError

STATS_FILE = "locust_stats.csv"
HISTORY_FILE = "locust_stats_history.csv"
FAILURES_FILE = "locust_failures.csv"
EXCEPTIONS_FILE = "locust_exceptions.csv"
HTML_FILE = "report.html"
REPORT_FILES = (STATS_FILE, HISTORY_FILE, FAILURES_FILE, EXCEPTIONS_FILE, HTML_FILE)


@dataclass
class LoadStats:
    """The totals of one run, from Locust's stats CSV."""

    requests: int = 0
    failures: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        """Requests answered 200 with their event's id: events GlitchTip took."""
        return self.requests - self.failures


def _number(value: str | None) -> float | None:
    if value is None or value.strip() in ("", "N/A"):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def parse_stats(text: str) -> LoadStats:
    """Parse Locust's `*_stats.csv`; KitError when it is not one."""
    rows = list(csv.DictReader(io.StringIO(text)))
    wanted = {"Name", "Request Count", "Failure Count", "50%", "95%"}
    if not rows or not wanted <= set(rows[0]):
        raise KitError(
            "Locust's stats CSV has no rows or misses columns", "see the report's other files"
        )
    stats = LoadStats()
    for row in rows:
        requests = int(_number(row["Request Count"]) or 0)
        failures = int(_number(row["Failure Count"]) or 0)
        if row["Name"] == "Aggregated":
            stats.requests, stats.failures = requests, failures
            stats.p50_ms, stats.p95_ms = _number(row["50%"]), _number(row["95%"])
        else:
            stats.by_kind[row["Name"]] = {"requests": requests, "failures": failures}
    return stats


def parse_failures(text: str, limit: int = 5) -> list[str]:
    """The most frequent failures of `*_failures.csv`: `N x METHOD NAME: error`."""
    rows = list(csv.DictReader(io.StringIO(text)))
    rows.sort(key=lambda row: -int(_number(row.get("Occurrences")) or 0))
    return [
        f"{row.get('Occurrences')} x {row.get('Method')} {row.get('Name')}: {row.get('Error')}"
        for row in rows[:limit]
    ]
