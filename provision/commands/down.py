"""`provision down`: stop the stack, keeping its data unless told otherwise."""

from __future__ import annotations

import click

from provision.commands.options import dir_option, settings_options


@click.command("down")
@dir_option
@settings_options
@click.option(
    "--volumes",
    "-v",
    is_flag=True,
    help="Also delete the volumes: the database with every event and user (asks first).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting the volumes.")
def down_command(directory, overrides, volumes, yes):
    """Stop and remove GlitchTip's containers; volumes, .env and .glitchtiprc are kept.

    `provision up` starts it again with the same data and secrets. With --volumes the
    database is deleted too (a fresh `up` then creates a new admin and a new DSN).

    \b
    Examples:
      provision down
      provision down --volumes --yes   # deletes every event and user
    """
    from provision.stack.compose import Compose
    from provision.stack.context import load_stack_settings
    from provision.stack.down import stop_stack
    from provision.stack.status import require_rendered

    settings = load_stack_settings(directory, overrides)
    require_rendered(settings)
    if volumes and not yes:
        click.confirm(
            f"Delete the volumes of '{settings.compose_project_name}' (database, all events)?",
            abort=True,
        )
    click.echo(stop_stack(Compose.for_settings(settings), volumes=volumes))
