"""Is the worker (and its scheduler) still alive after start? For `up` and `verify`.

`docker compose up --wait` returns once every healthcheck passed: a worker that crashes a few
seconds later is restarted by the engine (`restart: unless-stopped`) and may look healthy again,
and a scheduler that died inside a living container is seen by no healthcheck at all: GlitchTip
5's Celery beat runs beside the worker (`-B`, or a thread of the all-in-one's app.py on
v5.1.0) and, when it cannot write its schedule file, dies with a traceback in the log while the
worker goes on (no retention clean-up, no uptime checks). So: every GlitchTip service must be
running, healthy where it has a healthcheck, not restarted by a crash within the last
`RECENT_RESTART_S` (a crash loop, or a crash just now), and the scheduler's log must hold none of
`Major.scheduler_failure_markers`. A container the engine restarted long ago and that has run
healthy since has recovered: the engine's restart count never goes down, so counting every
restart ever would fail each later `up` and `verify` until the container is recreated.
"""

from __future__ import annotations

from typing import Any

from provision import profiles

# Lines of the scheduler's log read: beat's failure comes at start, well within these.
LOG_TAIL = "2000"
# A restart this recent still counts as a crash (several health intervals; a crash-looping
# container restarts well within it); an unknown start time counts as recent.
RECENT_RESTART_S = 300.0


def problems(settings: Any, containers: list[Any], logs: Any) -> list[str]:
    """What is wrong with the GlitchTip services (empty: nothing).

    `containers` are the project's ContainerStates; `logs(service)` returns the service's log
    text (the current container's)."""
    found = []
    services = profiles.app_services(settings)
    by_service = {c.service: c for c in containers if not c.oneoff and c.service in services}
    for service in services:
        c = by_service.get(service)
        if c is None:
            found.append(f"{service} has no container")
        elif c.state != "running":
            code = f" (exit {c.exit_code})" if c.exit_code is not None else ""
            found.append(f"{service} is {c.state}{code}")
        elif c.health == "unhealthy":
            found.append(f"{service} is unhealthy")
        elif c.restart_count and _recent(c.started_at):
            found.append(f"{service} crashed and was restarted {c.restart_count} time(s)")
    markers = settings.major.scheduler_failure_markers
    scheduler = services[-1]  # the worker; profile minimal: the all-in-one web
    if markers and scheduler in by_service:
        text = logs(scheduler)
        for line in text.splitlines():
            if any(marker in line for marker in markers):
                found.append(f"the scheduler (Celery beat) in {scheduler} died: {line.strip()}")
                break
    return found


def _recent(started_at: float | None) -> bool:
    import time

    return started_at is None or time.time() - started_at < RECENT_RESTART_S


def compose_logs(compose: Any):
    """`logs(service)` over `docker compose logs` (no colour, no prefix, the last lines)."""

    def logs(service: str) -> str:
        result = compose.run("logs", "--no-color", "--no-log-prefix", "--tail", LOG_TAIL, service)
        return result.output if result.ok else ""

    return logs


def applies(ctx: Any) -> bool:
    """Compose deployments (Swarm and Kubernetes report their tasks and pods themselves)."""
    return getattr(ctx.load_settings(), "target", "compose") == "compose"


def check_alive(ctx: Any) -> Any:
    """The `alive` step of `up`: fail, naming the service, when a worker or its scheduler died
    after start instead of reporting success."""
    from provision.errors import KitError
    from provision.steps import StepOutcome

    settings = ctx.load_settings()
    containers = ctx.engine().containers(settings.compose_project_name)
    found = problems(settings, containers, compose_logs(ctx.compose()))
    if found:
        raise KitError(
            "; ".join(found),
            f"see `provision logs {profiles.app_services(settings)[-1]}`",
        )
    return StepOutcome(", ".join(profiles.app_services(settings)) + " running", changed=False)
