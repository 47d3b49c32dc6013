"""`provision down`: stop the stack, keeping its data unless told otherwise."""

from __future__ import annotations

import click

from provision.commands.options import (
    dir_option,
    refuse_kubernetes,
    settings_options,
    target_option,
)


@click.command("down")
@dir_option
@settings_options
@click.option(
    "--volumes",
    "-v",
    is_flag=True,
    help="Also delete the volumes: the database with every event and user (asks first).",
)
@target_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting the volumes.")
@click.option(
    "--only-metrics",
    is_flag=True,
    help="Remove only Prometheus, Grafana and the exporters and record metrics off "
    "(`make metrics-stop`); GlitchTip keeps running. With --volumes, their volumes only.",
)
def down_command(directory, overrides, volumes, target, yes, only_metrics):
    """Stop and remove GlitchTip's containers; volumes, .env and .glitchtiprc are kept.

    `provision up` starts it again with the same data and secrets. With --volumes the
    database is deleted too (a fresh `up` then creates a new admin and a new DSN). The metrics
    services go too when they are on; --only-metrics removes them alone and records metrics
    off, so the next `up` does not start them again.

    \b
    Examples:
      provision down
      provision down --only-metrics              # make metrics-stop: GlitchTip keeps running
      provision down --only-metrics --volumes    # also delete Prometheus's and Grafana's data
      provision down --volumes --yes             # deletes every event and user
    """
    from provision.deployment import Deployment
    from provision.stack.down import refuse_if_pinned_on, stop_metrics, stop_stack
    from provision.stack.status import require_rendered

    if target is not None:
        overrides = {**overrides, "target": target}
    dep = Deployment.load(directory, overrides)
    settings = dep.settings
    refuse_kubernetes(settings.target, "down")
    if settings.target == "swarm" and not only_metrics:
        from provision.swarm.down import remove_stack

        stack = settings.compose_project_name
        if volumes and not yes:
            click.confirm(f"Delete the volumes of stack '{stack}' on this node?", abort=True)
        for line in remove_stack(dep.docker(), stack, volumes=volumes):
            click.echo(line)
        return
    require_rendered(settings)
    if only_metrics:
        from provision.runtime.engine import Engine

        refuse_if_pinned_on(settings)
        if volumes and not yes:
            click.confirm(
                f"Delete Prometheus's and Grafana's volumes of '{settings.compose_project_name}'?",
                abort=True,
            )
        compose = dep.compose(metrics=True)
        click.echo(stop_metrics(settings, Engine(), compose, volumes=volumes))
        return
    if volumes and not yes:
        click.confirm(
            f"Delete the volumes of '{settings.compose_project_name}' (database, all events)?",
            abort=True,
        )
    click.echo(stop_stack(dep.compose(), volumes=volumes))
