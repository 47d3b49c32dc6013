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
    from provision.masking import mask
    from provision.secrets import SECRETS, ensure_secrets, read_secrets
    from provision.settings import load_settings, write_initial_settings

    settings = load_settings(directory, overrides)  # validates every source first
    before = read_secrets(settings.env_path)  # refuses an invalid .env before writing
    created = write_initial_settings(settings)
    click.echo(f"glitchtip.yaml: {'created' if created else 'kept'}")
    values = ensure_secrets(settings.env_path)
    for spec in SECRETS:
        state = "kept" if spec.key in before else "generated"
        click.echo(f".env {spec.key}: {mask(values[spec.key])} ({state})")
    click.echo("next: `provision render --check` (or `provision up`)")
