"""`provision partman`: set up pg_partman advanced partitioning (GlitchTip 5)."""

from __future__ import annotations

import click

from provision.commands.options import dir_option, settings_options


@click.command("partman")
@dir_option
@settings_options
def partman_command(directory, overrides):
    """Run ./manage.py setup_advanced_partitions in the web container (GlitchTip 5).

    GlitchTip exits 0 even when pg_partman refused the setup, so this command also fails when
    the output reports an error. Needs advanced_partitioning: true from the first start
    (`provision up --partman`) and a Postgres image with pg_partman >= 5.

    \b
    Example:
      provision partman
    """
    from provision.errors import UsageError
    from provision.stack.compose import Compose, uses_partman
    from provision.stack.context import load_stack_settings
    from provision.stack.partman import run_partman
    from provision.stack.status import require_rendered

    overrides = dict(overrides or {})
    settings = load_stack_settings(directory, overrides)
    if not uses_partman(settings):
        raise UsageError(
            "advanced partitioning is off for this deployment",
            "it is GlitchTip 5 only and chosen at the first start: `provision up --partman`",
        )
    require_rendered(settings)
    from provision import secret_files

    secret_files.sync(settings)  # the files partman-setup mounts, from .env
    run_partman(Compose.for_settings(settings), click.echo)
    click.echo("pg_partman setup: ok (exit 0, no error in the output)")
