"""The state of a deployment: every container (state, health) and GlitchTip's own answers.

Containers come from the Docker SDK; GlitchTip is asked twice from the host: `/_health/` (the
web server answers) and `/api/settings/` (which reads the database, so it proves the whole chain).
"""

from __future__ import annotations

import time
from typing import Any

from provision.errors import KitError

PROBES = ("/_health/", "/api/settings/")


def probe(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """GET `url`: its status code and elapsed milliseconds, or the error class."""
    import httpx

    began = time.monotonic()
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return {"url": url, "ok": False, "status": None, "error": exc.__class__.__name__}
    return {
        "url": url,
        "ok": response.status_code == 200,
        "status": response.status_code,
        "ms": round((time.monotonic() - began) * 1000),
    }


def collect_status(settings: Any, engine: Any, prober=probe) -> dict[str, Any]:
    """Everything `provision status` shows, as a JSON-ready dict."""
    containers = [c.as_dict() for c in engine.containers(settings.compose_project_name)]
    base = str(settings.internal_url).rstrip("/")
    running = [c for c in containers if c["state"] == "running"]
    checks = [prober(base + path) for path in PROBES] if running else []
    healthy = (
        bool(running)
        and all(c["health"] in (None, "healthy") for c in running)
        and all(check["ok"] for check in checks)
    )
    one_shots_ok = all(c["exit_code"] == 0 for c in containers if c["state"] == "exited")
    return {
        "project": settings.compose_project_name,
        "url": str(settings.glitchtip_domain),
        "up": healthy and one_shots_ok,
        "containers": containers,
        "checks": checks,
    }


def status_lines(status: dict[str, Any]) -> list[str]:
    """`collect_status` for a person."""
    if not status["containers"]:
        return [f"{status['project']}: no containers (run `provision up`)"]
    lines = [f"{status['project']}: {'up' if status['up'] else 'NOT healthy'} ({status['url']})"]
    width = max(len(c["service"]) for c in status["containers"])
    for c in status["containers"]:
        state = c["state"]
        if c["exit_code"] is not None:
            state += f" ({c['exit_code']})"
        health = c["health"] or "-"
        ports = ", ".join(c["ports"])
        lines.append(f"  {c['service'].ljust(width)}  {state:<12} {health:<10} {ports}".rstrip())
    for check in status["checks"]:
        result = (
            f"HTTP {check['status']} in {check['ms']} ms"
            if check.get("status") is not None
            else check.get("error", "no answer")
        )
        lines.append(f"  GET {check['url']}: {result}")
    return lines


def require_rendered(settings: Any) -> None:
    """A `KitError` when this directory has no rendered compose.yml to act on."""
    from pathlib import Path

    if not (Path(settings.directory) / "compose.yml").exists():
        raise KitError(
            f"no compose.yml in {settings.directory}",
            "run `provision up` (or `provision render`) in the deployment's directory, or --dir",
        )
