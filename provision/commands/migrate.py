"""`provision migrate`: run GlitchTip's migrations again."""

from __future__ import annotations

import click

from provision.commands.options import dir_option, settings_options


@click.command("migrate")
@dir_option
@settings_options
def migrate_command(directory, overrides):
    """Run GlitchTip's migrations (./bin/run-migrate.sh) in a fresh migrate container.

    `provision up` already migrates; use this after restoring a database or to retry a
    failed migration. Postgres is started first if it is not running.

    \b
    Example:
      provision migrate
    """
    from provision.deployment import Deployment
    from provision.stack.migrate import run_migrations
    from provision.stack.status import require_rendered

    dep = Deployment.load(directory, overrides)
    settings = dep.settings
    require_rendered(settings)
    from provision import secret_files

    secret_files.sync(settings)  # the files migrate mounts, from .env (a kit older than them)
    run_migrations(dep.compose(), click.echo)
    click.echo("migrations done")
