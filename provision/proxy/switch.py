"""Switching the TLS proxy off on a running deployment: its container goes.

`compose up` leaves the container of a service no longer in compose.yml running as an orphan:
a proxy left behind would keep 80/443 and the kit's door on 127.0.0.1:<http_port>, which web
publishes again without the proxy, and `up` would fail on the taken port. This step, between
render and start, stops and removes it. Its volumes (certificates, the internal CA) are kept,
so switching back serves the same CA root.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

STOP_TIMEOUT = 10  # seconds Caddy gets to finish requests in flight


def retire(
    containers: list[Any], stop: Callable[[str], None], remove: Callable[[str], None]
) -> list[str]:
    """Stop and remove every `proxy` container among `containers`; their names."""
    names = []
    for row in containers:
        if row.service != "proxy" or getattr(row, "oneoff", False):
            continue
        if row.state in ("running", "restarting", "paused"):
            stop(row.name)
        remove(row.name)
        names.append(row.name)
    return names


def applies(ctx: Any) -> bool:
    """Only while the settings run no proxy (a proxy container is then an orphan)."""
    return not ctx.load_settings().proxy_enabled


def retire_step(ctx: Any) -> Any:
    """The `proxy-off` step of `provision up`."""
    from provision.steps import StepOutcome

    settings = ctx.load_settings()
    engine = ctx.engine()
    names = retire(
        engine.containers(settings.compose_project_name),
        stop=lambda name: engine.client.api.stop(name, timeout=STOP_TIMEOUT),
        remove=lambda name: engine.client.api.remove_container(name),
    )
    if not names:
        return StepOutcome("no proxy container", changed=False)
    return StepOutcome(f"removed {', '.join(names)} (its volumes kept)", changed=True)
