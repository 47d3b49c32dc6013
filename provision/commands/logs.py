"""`provision logs`: the services' logs, with secrets masked."""

from __future__ import annotations

import click

from provision.commands.options import dir_option, settings_options


@click.command("logs")
@dir_option
@settings_options
@click.argument("service", required=False)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@click.option("--tail", default="200", show_default=True, help="Lines per service, or 'all'.")
def logs_command(directory, overrides, service, follow, tail):
    """Print the logs of every service, or of SERVICE (web, worker, migrate, postgres, valkey).

    Values of the secrets in .env are replaced by ******** before printing.

    \b
    Examples:
      provision logs web --follow
      provision logs --tail 50
    """
    from provision.stack.compose import Compose
    from provision.stack.context import load_stack_settings
    from provision.stack.logs import show_logs
    from provision.stack.status import require_rendered

    settings = load_stack_settings(directory, overrides)
    require_rendered(settings)
    show_logs(Compose.for_settings(settings), click.echo, service, follow, tail)
