"""`provision render`: write compose.yml, compose.part.yml and .env from the settings."""

from __future__ import annotations

from pathlib import Path

import click

from provision.commands.options import dir_option, settings_options


@click.command("render")
@click.option(
    "--check",
    is_flag=True,
    help="Validate every file combination with `docker compose config` before writing.",
)
@dir_option
@settings_options
def render_command(check: bool, directory: Path, overrides: dict[str, object]) -> None:
    """Render compose.yml, compose.part.yml and .env (secrets kept, other .env keys kept).

    Nothing is written when a setting, .env or (with --check) docker compose refuses.

    \b
    Examples:
      provision render --check
      provision render --major 5 --http-port 8080
    """
    from provision.render import COMBINATIONS, write_rendered
    from provision.settings import load_settings

    settings = load_settings(directory, overrides)
    changed = write_rendered(settings, check=check)
    for name in (".env", "compose.yml", "compose.part.yml"):
        state = "written" if settings.directory / name in changed else "unchanged"
        click.echo(f"{name}: {state}")
    if check:
        for combination in COMBINATIONS:
            click.echo(f"docker compose config: {' + '.join(combination)} valid")
