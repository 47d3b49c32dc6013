"""`provision status` for a Swarm stack: each service's replicas and update, GlitchTip's answers."""

from __future__ import annotations

from typing import Any


def collect_swarm_status(settings, docker, prober=None) -> dict[str, Any]:
    """What `provision status` shows for the stack, as a JSON-ready dict."""
    from provision.profiles import core_services
    from provision.stack.status import PROBES, probe
    from provision.swarm.services import job_state, stack_services

    prober = prober or probe
    stack = settings.compose_project_name
    services = stack_services(docker, stack)
    rows = [state.as_dict() for state in services]
    job_ok = True
    for row in rows:
        if row["service"] == "migrate":
            row["job"], _error = job_state(docker, row["name"])
            job_ok = row["job"] == "complete"
    running = [state for state in services if state.running]
    base = str(settings.internal_url).rstrip("/")
    checks = [prober(base + path) for path in PROBES] if running else []
    names = {state.service for state in services}
    up = (
        set(core_services(settings)) <= names  # no postgres with an external database
        and all(state.converged for state in services)
        and job_ok
        and all(check["ok"] for check in checks)
        and bool(checks)
    )
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
