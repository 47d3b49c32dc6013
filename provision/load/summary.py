"""The human summary of a load run (`provision load` without --json)."""

from __future__ import annotations

from typing import Any


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def summary_lines(result: dict[str, Any]) -> list[str]:
    """A few aligned lines: what was sent, what GlitchTip accepted, stored and how fast."""
    sent, processed = result["events_sent"], result["events_processed"]
    share = f"{processed / sent:.0%}" if sent else "n/a"
    drain = result["drain_s"]
    drained = (
        f"{drain:.1f} s after the load"
        if drain is not None
        else f"NOT drained within {result['drain_timeout_s']:.0f} s"
    )
    lines = [
        f"Load test: {result['duration_s']} s, {result['users']} users, "
        f"{result['workers']} Locust worker(s), against {result['target']} "
        f"(project {result['project']})",
        f"  requests    {result['requests']} ({result['failures']} failed)",
        f"  accepted    {result['accepted_per_s']:.1f}/s   "
        f"p50 {_ms(result['p50_ms'])}   p95 {_ms(result['p95_ms'])}",
        f"  stored      {processed} of {sent} events ({share}; "
        f"{result['transactions_processed']} transactions)",
        f"  processed   {result['processed_per_s']:.1f}/s (stored / (load + drain))",
        f"  drain       {drained} (queue peak {result['queue_peak']} tasks)",
        f"  report      {result['report_dir']}/report.html",
    ]
    lines += [f"  failure     {line}" for line in result.get("top_failures", [])[:3]]
    return lines
