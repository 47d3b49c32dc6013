"""Prometheus's view of its scrape targets, for `provision status`.

Prometheus answers `GET /api/v1/targets?state=active` with
`{"status": "success", "data": {"activeTargets": [{"labels": {"job", "instance"}, "health",
"lastError", "lastScrape", ...}]}}` (Prometheus HTTP API). Anything else (no answer, another
status, another shape) becomes an `error` string instead of targets: status must show that
Prometheus cannot be asked, never crash on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TARGETS_PATH = "/api/v1/targets?state=active"


def _get_json(url: str) -> tuple[int, Any]:
    import httpx

    try:
        response = httpx.get(url, timeout=5.0)
    except httpx.HTTPError as exc:
        raise OSError(exc.__class__.__name__) from None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def parse_targets(body: Any) -> list[dict[str, Any]]:
    """The active targets of a `/api/v1/targets` answer, sorted by job; ValueError if the
    answer is not one."""
    if not isinstance(body, dict) or body.get("status") != "success":
        raise ValueError("not a successful Prometheus API answer")
    data = body.get("data")
    active = data.get("activeTargets") if isinstance(data, dict) else None
    if not isinstance(active, list):
        raise ValueError("no activeTargets in the answer")
    targets = []
    for item in active:
        if not isinstance(item, dict):
            raise ValueError("a target is not an object")
        labels = item.get("labels") if isinstance(item.get("labels"), dict) else {}
        targets.append(
            {
                "job": str(labels.get("job") or item.get("scrapePool") or "?"),
                "instance": str(labels.get("instance") or item.get("scrapeUrl") or "?"),
                "health": str(item.get("health") or "unknown"),
                "last_error": str(item.get("lastError") or ""),
            }
        )
    return sorted(targets, key=lambda t: (t["job"], t["instance"]))


def prometheus_targets(
    base_url: str, get: Callable[[str], tuple[int, Any]] | None = None
) -> dict[str, Any]:
    """`{"url", "targets": [...], "error": None}`, or targets [] and an `error` saying why."""
    get = get or _get_json
    url = base_url.rstrip("/") + TARGETS_PATH
    result: dict[str, Any] = {"url": url, "targets": [], "error": None}
    try:
        status, body = get(url)
    except OSError as exc:
        result["error"] = f"no answer ({exc})"
        return result
    if status != 200:
        result["error"] = f"HTTP {status}"
        return result
    try:
        result["targets"] = parse_targets(body)
    except ValueError as problem:
        result["error"] = str(problem)
    return result


def all_up(targets: dict[str, Any]) -> bool:
    """Whether Prometheus answered and every target it scrapes is up."""
    found = targets.get("targets") or []
    return targets.get("error") is None and bool(found) and all(t["health"] == "up" for t in found)
