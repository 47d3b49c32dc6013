"""`provision partman`: set up pg_partman advanced partitioning (GlitchTip 5)."""

from __future__ import annotations

import click

from provision.commands.options import dir_option, settings_options


@click.command("partman")
@dir_option
@settings_options
def partman_command(directory, overrides):
    """Configure pg_partman for GlitchTip 5's partitioned tables again.

    Runs ./manage.py setup_advanced_partitions in the web container (it exits 0 even when
    pg_partman refused it, and on GlitchTip v5.1.0 it cannot succeed), then the kit's own
    idempotent pg_partman 5 configuration with psql in the postgres container, which fails
    unless every table is managed. Needs advanced_partitioning: true from the first start
    (`provision up --partman`) and the pg_partman 5 Postgres image.

    \b
    Example:
      provision partman
    """
    from provision.deployment import Deployment
    from provision.errors import UsageError
    from provision.stack.partman import run_partman
    from provision.stack.status import require_rendered

    overrides = dict(overrides or {})
    dep = Deployment.load(directory, overrides)
    settings = dep.settings
    if not dep.uses_partman:
        raise UsageError(
            "advanced partitioning is off for this deployment",
            "it is GlitchTip 5 only and chosen at the first start: `provision up --partman`",
        )
    require_rendered(settings)
    from provision import secret_files

    secret_files.sync(settings)  # the files partman-setup and partman-config mount, from .env
    click.echo(run_partman(dep.compose(), click.echo))
