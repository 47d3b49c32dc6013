"""`provision logs`: the services' logs, with secrets masked."""

from __future__ import annotations

import click

from provision.commands.options import dir_option, settings_options


def _tail(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """'all' or a whole number in ASCII digits, before it reaches Compose (which would fail with
    its own multi-line message, or misread "٣" and "1e3")."""
    text = str(value).strip().lower()
    if text == "all" or (text.isascii() and text.isdigit() and len(text) <= 7):
        return text
    raise click.BadParameter(f"{str(value)[:20]!r} is not a number of lines or 'all'", ctx, param)


@click.command("logs")
@dir_option
@settings_options
@click.argument("service", required=False)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@click.option(
    "--tail",
    default="200",
    show_default=True,
    callback=lambda ctx, param, value: _tail(ctx, param, value),
    help="Lines per service, or 'all'.",
)
def logs_command(directory, overrides, service, follow, tail):
    """Print the logs of every service, or of SERVICE (web, worker, migrate, postgres, valkey;
    with metrics on also prometheus, grafana, postgres-exporter, valkey-exporter,
    project-exporter).

    Values of the secrets in .env are replaced by ******** before printing.

    \b
    Examples:
      provision logs web --follow
      provision logs --tail 50
    """
    from provision.deployment import Deployment
    from provision.stack.logs import show_logs
    from provision.stack.status import require_rendered

    dep = Deployment.load(directory, overrides)
    settings = dep.settings
    require_rendered(settings)
    show_logs(dep.compose(), click.echo, service, follow, tail)
