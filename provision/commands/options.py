"""Options shared by commands: `--dir` and the settings overrides.

Only click is imported here, so any command can use these decorators without slowing down
`provision --help`. The overrides are passed on as plain strings keyed by setting name;
`provision.settings.load_settings` validates them like every other source.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

# option name -> setting name, for the settings used often enough to deserve their own option.
NAMED_OVERRIDES: dict[str, str] = {
    "major": "glitchtip_major",
    "domain": "glitchtip_domain",
    "bind_address": "bind_address",
    "http_port": "http_port",
}


class FiniteNumber(click.ParamType):
    """A finite number within [low, high]: click's FloatRange lets nan through (every
    comparison with nan is false), so a nan threshold makes a check pass that cannot pass, and
    nan or a negative timeout ends in a traceback."""

    name = "number"
    unit = "number"

    def __init__(self, low: float, high: float) -> None:
        self.low = low
        self.high = high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        import math

        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{str(value)[:40]!r} is not a {self.unit}", param, ctx)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            self.fail(f"{str(value)[:40]!r} is not between {self.low} and {self.high}", param, ctx)
        return number


class Seconds(FiniteNumber):
    """A finite number of seconds within [low, high]; 0 only when `allow_zero`."""

    name = "seconds"
    unit = "number of seconds"

    def __init__(self, low: float, high: float, allow_zero: bool = False) -> None:
        super().__init__(low, high)
        self.allow_zero = allow_zero

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        number = super().convert(value, param, ctx)
        if number == 0 and not self.allow_zero:
            self.fail("0 seconds leaves no time to answer", param, ctx)
        return number


def _existing_directory(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """Refuse a --dir that does not exist: a typo must not start a second, empty deployment
    (`render`, `init`) or show defaults as if they were the deployment's (`config`)."""
    if value is not None and not value.is_dir():
        if value.exists() or value.is_symlink():
            raise click.BadParameter(f"{value} is not a directory", ctx, param)
        raise click.BadParameter(
            f"{value} does not exist: create it first (mkdir -p {value}) or point --dir at the "
            "deployment directory",
            ctx,
            param,
        )
    return value


def dir_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add `--dir PATH` (env GLITCHTIP_KIT_DIR, default: the current directory) as `directory`."""
    return click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        callback=_existing_directory,
        default=".",
        show_default=True,
        envvar="GLITCHTIP_KIT_DIR",
        show_envvar=True,
        help="Deployment directory holding glitchtip.yaml, .env and the compose files.",
    )(command)


def _parse_set(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict:
    parsed: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE, e.g. --set http_port=8080")
        parsed[name.strip()] = value
    return parsed


def settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add setting overrides (highest precedence) and pass them as `overrides: dict[str, str]`."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        overrides: dict[str, object] = dict(kwargs.pop("set_values") or {})
        for option, setting in NAMED_OVERRIDES.items():
            value = kwargs.pop(option)
            if value is not None:
                overrides[setting] = value
        return command(*args, overrides=overrides, **kwargs)

    decorated = wrapper
    decorated = click.option(
        "--set",
        "set_values",
        multiple=True,
        metavar="NAME=VALUE",
        callback=_parse_set,
        help="Override any setting for this run (repeatable); see `provision config`.",
    )(decorated)
    decorated = click.option(
        "--http-port", default=None, metavar="PORT", help="Host port of the web service."
    )(decorated)
    decorated = click.option(
        "--bind-address", default=None, metavar="IP", help="Host address of the web service."
    )(decorated)
    decorated = click.option(
        "--domain", default=None, metavar="URL", help="Public URL (GLITCHTIP_DOMAIN)."
    )(decorated)
    decorated = click.option(
        "--major", default=None, metavar="5|6", help="GlitchTip major version."
    )(decorated)
    return decorated


# Options several commands share, word for word.
target_option = click.option(
    "--target",
    type=click.Choice(("compose", "swarm")),
    default=None,
    help="compose (one host) or swarm (a Docker Swarm stack); recorded in .env by render, so "
    "later commands need it only to switch.",
)
wait_timeout_option = click.option(
    "--wait-timeout",
    type=click.IntRange(30, 3600),
    default=300,
    show_default=True,
    help="Seconds to wait for every container to be healthy.",
)


def refuse_kubernetes(target: str, command: str) -> None:
    """UsageError for a Kubernetes deployment: the kit renders Helm values for it and does not
    run the cluster; `kubectl` and `helm` answer what `status` or `down` would."""
    from provision.errors import UsageError

    if target == "kubernetes":
        raise UsageError(
            f"`provision {command}` does not act on Kubernetes (target kubernetes in .env)",
            "use `kubectl get pods` / `helm status`, or `provision verify --url` for GlitchTip",
        )


def json_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--json` (parameter `as_json`): print `what` as one JSON document instead of lines for a
    person. One declaration, so every command words it the same way."""
    return click.option(
        "--json", "as_json", is_flag=True, help=f"Print {what} as one JSON document (for scripts)."
    )


def echo_json(document: Any) -> None:
    """Print `document` as the command's JSON result: the one way every command does it."""
    import json

    click.echo(json.dumps(document, indent=2))
