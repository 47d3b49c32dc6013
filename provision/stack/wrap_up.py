"""Wrap-up: what the operator needs next: the URL, the admin, where the password is, the DSN."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provision.stack.admin import PASSWORD_WHERE
from provision.stack.context import StackContext
from provision.stack.project import RC_FILE
from provision.steps import StepOutcome

NEXT_COMMANDS = (
    ("provision status", "state and health of every container and of GlitchTip"),
    ("provision logs web", "the web server's log (--follow to keep watching)"),
    ("provision dsn", "the DSN an app in this directory will use"),
    ("provision down", "stop the stack; data and secrets are kept"),
)


def summary(ctx: StackContext) -> dict[str, Any]:
    """The facts the wrap-up shows, also the `result` of `provision up --json`."""
    settings = ctx.load_settings()
    project = ctx.results.get("project")
    return {
        "url": str(settings.glitchtip_domain),
        "local_url": str(settings.internal_url),
        "glitchtip_major": settings.glitchtip_major,
        "admin_email": ctx.results.get("admin_email", settings.admin_email),
        "admin_password": f"kept in {PASSWORD_WHERE}",
        "organization": getattr(project, "org_slug", None),
        "project": getattr(project, "project_slug", None),
        "dsn": getattr(project, "dsn", None),
        "dsn_file": str(Path(settings.directory) / RC_FILE),
        "next": [command for command, _ in NEXT_COMMANDS],
        "metrics": metrics_summary(settings),
    }


def metrics_summary(settings: Any) -> dict[str, str] | None:
    """Where Prometheus and Grafana answer and how to log in to Grafana; None with metrics off."""
    if not getattr(settings, "metrics", False):
        return None
    from provision.stack.metrics import urls

    where = urls(settings)
    return {
        "prometheus": where["prometheus"],
        "grafana": where["grafana"],
        "grafana_user": "admin",
        "grafana_password": "kept in .env, key GRAFANA_ADMIN_PASSWORD",
    }


def wrap_up(ctx: StackContext) -> StepOutcome:
    """The wrap-up step: collect the summary the command prints."""
    ctx.results["summary"] = summary(ctx)
    return StepOutcome("ready", changed=False)


def summary_lines(facts: dict[str, Any]) -> list[str]:
    """The wrap-up for a person."""
    local = ""
    if facts["local_url"] != facts["url"]:
        local = f"  (from this host: {facts['local_url']})"
    lines = [
        "",
        f"GlitchTip {facts['glitchtip_major']} is running.",
        f"  URL:            {facts['url']}{local}",
        f"  Admin:          {facts['admin_email']}",
        f"  Password:       {facts['admin_password']}",
        f"  Project:        {facts['organization']}/{facts['project']}",
        f"  DSN:            {facts['dsn']}",
        f"  DSN file:       {facts['dsn_file']}",
    ]
    metrics = facts.get("metrics")
    if metrics:
        lines += [
            f"  Prometheus:     {metrics['prometheus']}",
            f"  Grafana:        {metrics['grafana']} (user {metrics['grafana_user']}, password "
            f"{metrics['grafana_password']})",
        ]
    lines += [
        "Next:",
    ]
    width = max(len(command) for command, _ in NEXT_COMMANDS)
    lines += [f"  {command.ljust(width)}  {why}" for command, why in NEXT_COMMANDS]
    return lines
