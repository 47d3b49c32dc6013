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


def collect_metrics(settings: Any, containers: list[dict], read_targets=None) -> dict | None:
    """The metrics part of the status (None with metrics off): their containers and
    Prometheus's target health, asked on its published port."""
    if not getattr(settings, "metrics", False):
        return None
    from provision.monitoring.targets import all_up, prometheus_targets
    from provision.profiles import METRICS_SERVICES
    from provision.stack.metrics import urls

    read_targets = read_targets or prometheus_targets
    services = [c["service"] for c in containers if c["service"] in METRICS_SERVICES]
    base = urls(settings)["prometheus"]
    targets = (
        read_targets(base)
        if "prometheus" in services
        else {"url": base, "targets": [], "error": "no prometheus container (run `provision up`)"}
    )
    return {
        "enabled": True,
        "services": services,
        "prometheus": base,
        "grafana": urls(settings)["grafana"],
        "targets": targets["targets"],
        "targets_error": targets["error"],
        "all_targets_up": all_up(targets),
    }


def collect_certificate(settings: Any, containers: list[dict], read_certificate=None):
    """The TLS proxy's certificate (expiry, issuer, whether it verifies); None without the
    proxy or while its container is not running."""
    if not getattr(settings, "proxy_enabled", False):
        return None
    if not any(c["service"] == "proxy" and c["state"] == "running" for c in containers):
        return None
    if read_certificate is None:
        from provision.proxy.certificate import certificate_status as read_certificate
    return read_certificate(settings)


def collect_queue(containers: list[dict], read_queue=None) -> dict | None:
    """Events waiting longer than they should (provision/stack/queue_health.py); None without a
    reader (the queue is in an external service) or while the service holding the queue
    (Valkey; Postgres for GlitchTip 6's minimal profile) is not running."""
    if read_queue is None:
        return None
    service = getattr(read_queue, "service", "valkey")
    if not any(c["service"] == service and c["state"] == "running" for c in containers):
        return None
    return read_queue().as_dict()


def collect_status(
    settings: Any,
    engine: Any,
    prober=probe,
    read_targets=None,
    read_certificate=None,
    read_queue=None,
) -> dict[str, Any]:
    """Everything `provision status` shows, as a JSON-ready dict. `read_queue` reads the
    queue's health (None: not asked)."""
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
    metrics = collect_metrics(settings, containers, read_targets) if running else None
    metrics_ok = metrics is None or metrics["all_targets_up"]
    certificate = collect_certificate(settings, containers, read_certificate)
    certificate_ok = certificate is None or certificate["ok"]
    queue = collect_queue(running, read_queue) if running else None
    queue_ok = queue is None or queue["ok"]
    return {
        "project": settings.compose_project_name,
        "url": str(settings.glitchtip_domain),
        "up": healthy and one_shots_ok and metrics_ok and certificate_ok and queue_ok,
        "containers": containers,
        "checks": checks,
        "metrics": metrics,
        "certificate": certificate,
        "queue": queue,
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
    if status.get("queue"):
        from provision.stack.queue_health import QueueHealth, health_lines

        fields = {k: v for k, v in status["queue"].items() if k != "ok"}
        lines.extend(health_lines(QueueHealth(**fields)))
    if status.get("certificate"):
        from provision.proxy.certificate import certificate_line

        lines.append(certificate_line(status["certificate"]))
    metrics = status.get("metrics")
    if metrics:
        lines.append(f"  Prometheus {metrics['prometheus']}, Grafana {metrics['grafana']}")
        if metrics["targets_error"]:
            lines.append(f"  Prometheus targets: cannot tell ({metrics['targets_error']})")
        for target in metrics["targets"]:
            error = f"  {target['last_error']}" if target["last_error"] else ""
            lines.append(
                f"  target {target['job']:<17} {target['health']:<8} {target['instance']}{error}"
            )
    return lines


def require_rendered(settings: Any) -> None:
    """A `KitError` when this directory has no rendered compose.yml to act on."""
    from pathlib import Path

    if not (Path(settings.directory) / "compose.yml").exists():
        raise KitError(
            f"no compose.yml in {settings.directory}",
            "run `provision up` (or `provision render`) in the deployment's directory, or --dir",
        )
