"""`provision status` for a Swarm stack: each service's replicas and update, GlitchTip's answers."""

from __future__ import annotations

from typing import Any


def collect_swarm_status(settings, docker, prober=None) -> dict[str, Any]:
    """What `provision status` shows for the stack, as a JSON-ready dict."""
    from provision.stack.status import PROBES, probe
    from provision.swarm.services import stack_health

    prober = prober or probe
    stack = settings.compose_project_name
    health = stack_health(settings, docker)
    services = health.services
    rows = [state.as_dict() for state in services]
    for row in rows:
        if row["name"] in health.jobs:
            row["job"] = health.jobs[row["name"]]
    running = [state for state in services if state.running]
    base = str(settings.internal_url).rstrip("/")
    checks = [prober(base + path) for path in PROBES] if running else []
    up = health.ok and all(check["ok"] for check in checks) and bool(checks)
    return {
        "target": "swarm",
        "stack": stack,
        "url": str(settings.glitchtip_domain),
        "up": up,
        "services": rows,
        "checks": checks,
    }


def swarm_status_lines(status: dict[str, Any]) -> list[str]:
    """The status for a person."""
    lines = [f"Stack {status['stack']} ({status['url']}): {'up' if status['up'] else 'NOT up'}"]
    if not status["services"]:
        lines.append("  no services: run `provision up --target swarm`")
    for row in status["services"]:
        if "job" in row:
            state = f"job {row['job']}"
        else:
            state = f"{row['running']}/{row['desired']} running"
            if row["update"] not in (None, "completed"):
                state += f", update {row['update']}"
        ports = f"  {row['ports']}" if row["ports"] else ""
        lines.append(f"  {row['service']:<10} {state:<28} {row['image']}{ports}")
    for check in status["checks"]:
        answer = check.get("status") or check.get("error")
        ms = f" in {check['ms']} ms" if "ms" in check else ""
        lines.append(f"  GET {check['url']}: {answer}{ms}")
    return lines
