"""`provision status`: each container's state and health, and whether GlitchTip answers."""

from __future__ import annotations

import click

from provision.commands.options import (
    dir_option,
    echo_json,
    json_option,
    refuse_kubernetes,
    settings_options,
    target_option,
)


@click.command("status")
@dir_option
@settings_options
@target_option
@json_option("the status")
@click.option("--check", is_flag=True, help="Exit 3 unless everything is up and healthy.")
def status_command(directory, overrides, target, as_json, check):
    """Show each container (state, health, ports) and GlitchTip's answers.

    GlitchTip is asked from this host on /_health/ (the web server) and /api/settings/
    (reads the database, so it proves the whole chain).

    \b
    Examples:
      provision status
      provision status --check --json   # exit 3 unless all is up, for monitoring
    """

    from provision.deployment import Deployment
    from provision.runtime.engine import Engine
    from provision.stack.status import collect_status, status_lines

    if target is not None:
        overrides = {**overrides, "target": target}
    dep = Deployment.load(directory, overrides)
    settings = dep.settings
    refuse_kubernetes(settings.target, "status")
    if settings.target == "swarm":
        from provision.swarm.status import collect_swarm_status, swarm_status_lines

        status = collect_swarm_status(settings, dep.docker())
        lines = swarm_status_lines
    else:
        from provision.stack.queue_health import queue_reader

        reader = queue_reader(settings, dep.compose())
        status = collect_status(settings, Engine(), read_queue=reader)
        lines = status_lines
    if as_json:
        echo_json(status)
    else:
        for line in lines(status):
            click.echo(line)
    if check and not status["up"]:
        raise click.exceptions.Exit(3)
