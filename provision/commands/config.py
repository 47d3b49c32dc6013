"""`provision config`: every setting with its value and source; secrets masked."""

from __future__ import annotations

from pathlib import Path

import click

from provision.commands.options import dir_option, echo_json, json_option, settings_options


@click.command("config")
@json_option("the settings, their sources and which secrets are set")
@dir_option
@settings_options
def config_command(as_json: bool, directory: Path, overrides: dict[str, object]) -> None:
    """Show the effective settings, where each came from, and which secrets are set.

    Sources, highest first: option, environment, file (glitchtip.yaml), .env (settings that
    may hold a secret, and choices recorded by an earlier render), default or derived. Secrets
    are never shown, only whether they are set; passwords in URLs are masked.

    The last table says where Postgres, Valkey and uploads are: bundled (a service of this
    stack) or external (database_url, valkey_url, uploads_bucket), with passwords masked.

    \b
    Examples:
      provision config
      provision config --json --set http_port=8080   # what a render with it would use
    """

    from provision.deployment import Deployment
    from provision.settings import describe

    data = describe(Deployment.load(directory, overrides).settings)
    if as_json:
        echo_json(data)
        return
    width = max(len(name) for name in [*data["settings"], *data["secrets"]])
    click.echo(f"{'setting':<{width}}  {'value':<40}  source")
    for name, entry in data["settings"].items():
        value = entry["value"]
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, dict):  # error_budgets: "default 200/1d, web 5/6h"
            shown = ", ".join(
                f"{key} {budget.get('max_errors')}/{budget.get('per')}"
                for key, budget in value.items()
            )
        click.echo(f"{name:<{width}}  {shown:<40}  {entry['source']}")
    click.echo("")
    click.echo(f"{'secret (.env)':<{width}}  value")
    for key, shown in data["secrets"].items():
        click.echo(f"{key:<{width}}  {shown}")
    click.echo("")
    click.echo(f"{'service':<{width}}  where")
    for service, where in data["services"].items():
        click.echo(f"{service:<{width}}  {where}")
