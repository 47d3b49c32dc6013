"""Metrics: start (or, when turned off, remove) the services of compose.metrics.yml.

They run after the project step because two of them need the kit's API token, which the admin
and project steps put in `.env`: the project exporter polls GlitchTip's API with it, and on
GlitchTip 5 Prometheus scrapes `/api/0/observability/django/` with it. The token reaches them as
a Compose secret, so a token that changed during this run (a new one minted) does not change
their configuration hash: those two are then recreated explicitly.

Like the start step, `compose up` is skipped when every metrics service already runs what the
rendered files describe (a changed rule, dashboard or exporter file changes the digest label
in compose.metrics.yml, hence the hash). With `metrics` off, containers left by an earlier
`up --metrics` are removed; their volumes (Prometheus's samples, Grafana's state) are kept.
"""

from __future__ import annotations

from typing import Any

from provision.errors import KitError
from provision.profiles import METRICS_SERVICES, metrics_services
from provision.stack.context import StackContext
from provision.steps import StepOutcome

# The services holding the API token (a Compose secret): recreated when the token changed.
TOKEN_SERVICES = ("prometheus", "project-exporter")
TOKEN_KEY = "GLITCHTIP_API_TOKEN"
TOKEN_AT_START = "token_at_start"  # ctx.results key: the token `.env` held before the admin step
METRICS_VOLUMES = ("prometheus-data", "grafana-data")


def urls(settings: Any) -> dict[str, str]:
    """Where Prometheus and Grafana answer from this host: on bind_address (not internal_url's
    host: with the TLS proxy that is the kit's door on 127.0.0.1, whatever bind_address is)."""
    import ipaddress

    address = settings.bind_address
    if ipaddress.ip_address(address).is_unspecified:
        address = "127.0.0.1"
    elif ":" in address:
        address = f"[{address}]"
    base = f"http://{address}"
    return {
        "prometheus": f"{base}:{settings.prometheus_port}",
        "grafana": f"{base}:{settings.grafana_port}",
    }


def leftovers(ctx: StackContext) -> list[str]:
    """Names of metrics containers of this project (running or not)."""
    settings = ctx.load_settings()
    containers = ctx.engine().containers(settings.compose_project_name)
    return [c.name for c in containers if c.service in METRICS_SERVICES]


def remember_token(ctx: StackContext) -> None:
    """Note the token `.env` holds now (called by the render step, before admin/project)."""
    from provision.envfile import read_env_file

    ctx.results[TOKEN_AT_START] = read_env_file(ctx.env_path).get(TOKEN_KEY)


def remove_metrics(compose: Any, services: tuple[str, ...] = METRICS_SERVICES) -> str:
    """Stop and remove the metrics services' containers (`compose rm`); volumes are kept."""
    result = compose.run("rm", "--stop", "--force", *services, timeout=300)
    if not result.ok:
        raise KitError(
            f"`compose rm` of the metrics services failed: {result.last_lines(2)}",
            "see `provision status`",
        )
    removed = sum(1 for line in result.output.splitlines() if line.split()[-1:] == ["Removed"])
    return f"removed {removed} metrics containers; their volumes (samples, dashboards) kept"


def metrics(ctx: StackContext) -> StepOutcome:
    """The metrics step: up with `metrics` on, removal of leftovers with it off."""
    from provision.envfile import read_env_file
    from provision.stack.start import compare, diagnose

    settings = ctx.load_settings()
    if not settings.metrics:
        if not leftovers(ctx):
            return StepOutcome("metrics off (`provision up --metrics` adds them)", changed=False)

        compose = ctx.deployment().compose(metrics=True)
        return StepOutcome(remove_metrics(compose, metrics_services(settings)), changed=True)
    token = read_env_file(ctx.env_path).get(TOKEN_KEY)
    if not token:
        raise KitError(
            f"{ctx.env_path} has no {TOKEN_KEY} for the metrics services",
            "run `provision up` again: the project step stores the API token",
        )
    from provision import secret_files

    # The token reached .env after the render (the project step): derive its file now.
    secret_files.sync(settings)
    compose = ctx.compose()
    wanted = metrics_services(settings)
    services = {name: spec for name, spec in ctx.services().items() if name in wanted}
    missing = [name for name in wanted if name not in services]
    if missing:
        raise KitError(
            f"compose.metrics.yml has no {', '.join(missing)}",
            "run `provision render` to write it again",
        )
    drift = compare(ctx, compose, services)
    reasons = [reason for found in drift.values() for reason in found]
    # A container created before the token changed holds the old one (new ones get the new).
    holding = [n for n in TOKEN_SERVICES if drift.get(n) != [f"{n} has no container"]]
    token_changed = bool(holding) and ctx.results.get(TOKEN_AT_START, token) != token
    where = urls(settings)
    shown = f"Prometheus {where['prometheus']}, Grafana {where['grafana']}"
    if not reasons and not token_changed:
        return StepOutcome(
            f"all {len(services)} metrics services already up, healthy and current; {shown}",
            changed=False,
        )
    if reasons:
        more = f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else ""
        ctx.note(f"compose up because {'; '.join(reasons[:3])}{more}")
    timeout = int(ctx.wait_timeout)
    wait = ["--detach", "--wait", "--wait-timeout", str(timeout), "--pull", "never", "--no-deps"]
    runs = [[*wait, *wanted]]
    if token_changed:
        ctx.note("the API token changed: recreating " + " and ".join(holding))
        runs.append([*wait, "--force-recreate", *holding])
    for arguments in runs:
        result = compose.stream("up", *arguments, on_line=lambda line: None, timeout=timeout + 120)
        if not result.ok:
            said = result.last_lines(1) or f"compose exited {result.returncode}"
            cause = diagnose(compose, said)
            if said not in cause:
                # A container left "created" was refused by the engine: only Compose saw why.
                cause = f"{cause}; compose said: {said}"
            raise KitError(
                f"the metrics services did not become healthy: {cause}",
                "see `provision logs SERVICE` and `provision status`",
            )
    return StepOutcome(f"{len(services)} metrics services up; {shown}", changed=True)
