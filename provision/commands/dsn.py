"""`provision dsn`: the DSN an app would use, and where it came from."""

from __future__ import annotations

import click

from provision.commands.options import echo_json, json_option


@click.command("dsn")
@json_option("{dsn, source}")
@click.option("--quiet", "-q", is_flag=True, help="print only the DSN")
def dsn_command(as_json: bool, quiet: bool) -> None:
    """Show the DSN an app would use, and where it came from.

    \b
    Order: ERROR_TRACKING_DSN, then SENTRY_DSN, then .glitchtiprc ([defaults] url) in the
    working directory, then in each parent directory. The DSN's form is validated.

    \b
    Examples:
      provision dsn
      export SENTRY_DSN="$(provision dsn --quiet)"
    """

    from provision.dsn import resolve_dsn

    resolved = resolve_dsn()
    if as_json:
        echo_json({"dsn": resolved.dsn, "source": resolved.source})
        return
    click.echo(resolved.dsn)
    if not quiet:
        click.echo(f"source: {resolved.source}", err=True)
