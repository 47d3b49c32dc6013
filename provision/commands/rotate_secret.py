"""`provision rotate-secret`: replace one secret, only when asked explicitly."""

from __future__ import annotations

from pathlib import Path

import click

from provision.commands.options import dir_option
from provision.errors import UsageError


@click.command("rotate-secret")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: rotate even though it breaks what is shown.")
@dir_option
def rotate_secret_command(name: str, yes: bool, directory: Path) -> None:
    """Generate a new value for the secret NAME in .env (SECRET_KEY).

    Without --yes only explains what rotating NAME breaks. POSTGRES_PASSWORD and
    DJANGO_SUPERUSER_PASSWORD are refused with the manual steps, because the database and the
    admin account keep their old passwords.

    \b
    Examples:
      provision rotate-secret SECRET_KEY          # explains what it breaks, changes nothing
      provision rotate-secret SECRET_KEY --yes    # then restart: provision up
    """
    from provision.secrets import rotate_secret, rotation_notice

    notice = rotation_notice(name)
    if not yes:
        raise UsageError(
            f"rotating {name} needs --yes: {notice}", f"run `provision rotate-secret {name} --yes`"
        )
    rotate_secret(directory / ".env", name)
    click.echo(f"{name}: rotated ({notice})")
