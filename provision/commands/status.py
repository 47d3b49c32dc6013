"""`provision status`: each container's state and health, and whether GlitchTip answers."""

from __future__ import annotations

import click

from provision.commands.options import dir_option, settings_options


@click.command("status")
@dir_option
@settings_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--check", is_flag=True, help="Exit 3 unless everything is up and healthy.")
def status_command(directory, overrides, as_json, check):
    """Show each container (state, health, ports) and GlitchTip's answers.

    GlitchTip is asked from this host on /_health/ (the web server) and /api/settings/
    (reads the database, so it proves the whole chain).

    \b
    Examples:
      provision status
      provision status --check --json   # exit 3 unless all is up, for monitoring
    """
    import json

    from provision.stack.context import load_stack_settings
    from provision.stack.engine import Engine
    from provision.stack.status import collect_status, status_lines

    settings = load_stack_settings(directory, overrides)
    status = collect_status(settings, Engine())
    if as_json:
        click.echo(json.dumps(status, indent=2))
    else:
        for line in status_lines(status):
            click.echo(line)
    if check and not status["up"]:
        raise click.exceptions.Exit(3)
