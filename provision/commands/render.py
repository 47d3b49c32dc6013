"""`provision render`: write the compose files, monitoring/ and .env from the settings."""

from __future__ import annotations

from pathlib import Path

import click

from provision.commands.options import dir_option, echo_json, json_option, settings_options


@click.command("render")
@click.option(
    "--check",
    is_flag=True,
    help="Validate every file combination with `docker compose config` before writing; with "
    "--target kubernetes, the Namespace and Secret against the pinned Kubernetes version's "
    "schemas (kubernetes-validate, the dev extra).",
)
@click.option(
    "--target",
    type=click.Choice(("compose", "swarm", "kubernetes")),
    default=None,
    help="Where GlitchTip runs (the `target` setting; recorded in .env when given here). "
    "kubernetes: write kubernetes/values.yaml for GlitchTip's Helm chart and "
    "kubernetes/secrets.yaml (0600), and print the helm commands.",
)
@json_option("the result (kubernetes)")
@dir_option
@settings_options
def render_command(
    check: bool, target: str | None, as_json: bool, directory: Path, overrides: dict[str, object]
) -> None:
    """Render compose.yml, compose.part.yml, compose.metrics.yml, monitoring/ and .env (secrets
    kept, other .env keys kept).

    compose.metrics.yml and monitoring/ (Prometheus, Grafana, the exporters) are rendered
    whether or not `metrics` is on, so they are always checked; `up --metrics` uses them.
    Nothing is written when a setting, .env or (with --check) docker compose refuses.

    \b
    Examples:
      provision render --check
      provision render --major 5 --http-port 8080
      provision render --target kubernetes --check --domain https://glitchtip.example.com
    """
    from provision.deployment import Deployment
    from provision.render import COMBINATIONS, write_rendered

    if target is not None:
        overrides = {**overrides, "target": target}
    settings = Deployment.load(directory, overrides).settings
    if getattr(settings, "target", "compose") == "kubernetes":
        _render_kubernetes(settings, check, as_json)
        return
    if settings.target == "swarm":
        _render_swarm(settings, check)
        return
    changed = write_rendered(settings, check=check)
    for name in (".env", "compose.yml", "compose.part.yml", "compose.metrics.yml"):
        state = "written" if settings.directory / name in changed else "unchanged"
        click.echo(f"{name}: {state}")
    inside = [path for path in changed if path.parent != settings.directory]
    click.echo(f"monitoring/: {len(inside)} file{'s' if len(inside) != 1 else ''} written")
    if check:
        for combination in COMBINATIONS:
            click.echo(f"docker compose config: {' + '.join(combination)} valid")


def _render_kubernetes(settings, check: bool, as_json: bool) -> None:
    """Write kubernetes/ and print what was written and the commands to run (no secret)."""

    from provision.kubernetes.render import write_kubernetes

    result = write_kubernetes(settings, check=check)
    if as_json:
        echo_json(result.as_dict())
        return
    for name, state in result.as_dict()["files"].items():
        click.echo(f"{name}: {state}")
    if check:
        from provision.kubernetes.chart import KUBERNETES_VERSION

        click.echo(f"kubernetes/secrets.yaml: valid for Kubernetes {KUBERNETES_VERSION}")
    click.echo("Install or upgrade (the same commands for both):")
    for command in result.commands:
        click.echo(f"  {command}")
    for note in result.notes:
        click.echo(f"note: {note}")


def _render_swarm(settings, check: bool) -> None:
    """Write stack.swarm.yml (and .env, the Compose files) and say what changed."""
    from provision.swarm.render import STACK_FILE, write_stack

    written = write_stack(settings, check=check)
    for name in (".env", STACK_FILE):
        state = "written" if settings.directory / name in written else "unchanged"
        click.echo(f"{name}: {state}")
    if check:
        from provision.swarm.validate import validate_stack

        click.echo(f"{STACK_FILE}: {validate_stack(settings)}")
    click.echo("Deploy it with `provision up --target swarm` (it creates the Swarm secrets).")
