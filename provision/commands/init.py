"""`provision init`: write glitchtip.yaml (if missing) and the secrets in .env (if missing)."""

from __future__ import annotations

from pathlib import Path

import click

from provision.commands.options import dir_option, settings_options


@click.command("init")
@dir_option
@settings_options
def init_command(directory: Path, overrides: dict[str, object]) -> None:
    """Create glitchtip.yaml and generate the secrets in .env.

    Idempotent: an existing glitchtip.yaml is left as it is and a secret that exists is never
    regenerated. Settings given as options are written into a new glitchtip.yaml.

    \b
    Examples:
      provision init
      provision init --domain https://errors.example.com --set retention_days=30
    """
    from provision.deployment import Deployment
    from provision.envfile import update_env_file
    from provision.fileio import check_writable_target
    from provision.locking import locked
    from provision.masking import mask
    from provision.secrets import SECRETS, generate_missing_secrets, read_secrets
    from provision.settings import (
        SOURCE_ENVIRONMENT,
        SOURCE_OPTION,
        write_initial_settings,
    )

    settings = Deployment.load(directory, overrides).settings  # validates every source first
    for path in (settings.settings_path, settings.env_path):
        check_writable_target(path)  # a symlink or FIFO is refused before any write
    with locked(settings.directory):  # two concurrent inits: one generates, the other keeps
        read_secrets(settings.env_path)  # refuses an invalid .env before writing
        created = write_initial_settings(settings)
        values, generated = generate_missing_secrets(settings.env_path)
        if settings.sources["email_url"] in (SOURCE_OPTION, SOURCE_ENVIRONMENT):
            # It may hold a password, which glitchtip.yaml must not: .env keeps it (as render does).
            update_env_file(settings.env_path, {"EMAIL_URL": settings.email_url})
    click.echo(f"glitchtip.yaml: {'created' if created else 'kept'}")
    if not created and overrides:
        names = ", ".join(sorted(overrides))
        click.echo(f"glitchtip.yaml: not changed for {names} (edit it, or pass them to render)")
    for spec in SECRETS:
        state = "generated" if spec.key in generated else "kept"
        click.echo(f".env {spec.key}: {mask(values[spec.key])} ({state})")
    if settings.sources["email_url"] in (SOURCE_OPTION, SOURCE_ENVIRONMENT):
        click.echo(f".env EMAIL_URL: {settings.display_value('email_url')} (kept in .env)")
    click.echo("next: `provision render --check` (or `provision up`)")
