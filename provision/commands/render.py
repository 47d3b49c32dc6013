"""`provision render`: write the compose files, monitoring/ and .env from the settings."""

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
    """Render compose.yml, compose.part.yml, compose.metrics.yml, monitoring/ and .env (secrets
    kept, other .env keys kept).

    compose.metrics.yml and monitoring/ (Prometheus, Grafana, the exporters) are rendered
    whether or not `metrics` is on, so they are always checked; `up --metrics` uses them.
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
    for name in (".env", "compose.yml", "compose.part.yml", "compose.metrics.yml"):
        state = "written" if settings.directory / name in changed else "unchanged"
        click.echo(f"{name}: {state}")
    inside = [path for path in changed if path.parent != settings.directory]
    click.echo(f"monitoring/: {len(inside)} file{'s' if len(inside) != 1 else ''} written")
    if check:
        for combination in COMBINATIONS:
            click.echo(f"docker compose config: {' + '.join(combination)} valid")
