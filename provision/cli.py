"""The `provision` command line: a thin Click layer over plain functions.

Commands are loaded lazily from `provision.commands.*` so that `provision --help` stays fast: a
command module imports only `click` at the top and pulls in jinja2, httpx or docker inside the
function that needs them. `KitError`s raised anywhere below become one line on stderr and the
error's exit status; a secret never reaches that line because errors carry masked values only.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from provision import __version__
from provision.errors import KitError

# name -> "module:attribute"; the order is the order `--help` lists them in.
COMMANDS: dict[str, str] = {
    "init": "provision.commands.init:init_command",
    "render": "provision.commands.render:render_command",
    "config": "provision.commands.config:config_command",
    "rotate-secret": "provision.commands.rotate_secret:rotate_secret_command",
    "up": "provision.commands.up:up_command",
    "down": "provision.commands.down:down_command",
    "status": "provision.commands.status:status_command",
    "logs": "provision.commands.logs:logs_command",
    "migrate": "provision.commands.migrate:migrate_command",
    "partman": "provision.commands.partman:partman_command",
    "create-project": "provision.commands.create_project:create_project_command",
    "dsn": "provision.commands.dsn:dsn_command",
    "plan": "provision.commands.declare:plan_command",
    "apply": "provision.commands.declare:apply_command",
    "export": "provision.commands.declare:export_command",
    "load": "provision.commands.load:load_command",
    "verify": "provision.commands.verify:verify_command",
    "backup": "provision.commands.backup:backup_command",
    "restore": "provision.commands.restore:restore_command",
    "upgrade": "provision.commands.upgrade:upgrade_command",
    "proxy-ca": "provision.commands.proxy_ca:proxy_ca_command",
    "scale": "provision.commands.scale:scale_command",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when listed or invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A command whose module is not written yet is simply absent, not a crash.
            if exc.name == module_name:
                return None
            raise
        return getattr(module, attribute)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        """Click's usage errors as one line (`error: <problem>: <fix>`) and exit status 2,
        like every other error of the kit; Click prints usage, a hint and the error on three."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx else "provision"
            message = " ".join(error.format_message().split()).rstrip(".")
            click.echo(f"error: {message}: see `{where} --help`", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            click.echo(f"error: {' '.join(error.format_message().split())}", err=True)
            sys.exit(error.exit_code)
        except click.exceptions.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        except BrokenPipeError:
            # `provision config | head`: the reader left; nothing useful to say on stderr.
            _silence_stdout()
            sys.exit(1)
        # With standalone_mode=False Click returns the exit code of ctx.exit() instead of
        # exiting; keep the exit status the command chose.
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except KitError as error:
            click.echo(f"error: {error.line()}", err=True)
            ctx.exit(error.exit_code)
        except BrokenPipeError:
            raise
        except OSError as error:
            # A file or directory the kit could not use (permissions, a full or read-only disk):
            # one line naming it, never a traceback. Modules raise KitError for the ones they
            # expect; this is the net under the rest.
            reason = error.strerror or error.__class__.__name__
            if error.filename:
                click.echo(
                    f"error: cannot use {error.filename}: {reason}: check its permissions", err=True
                )
            else:
                click.echo(f"error: {reason} ({error.__class__.__name__})", err=True)
            ctx.exit(1)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="provision")
def cli() -> None:
    """Deploy and provision a self-hosted GlitchTip.

    \b
    First start (renders, starts, migrates, creates the admin and a DSN):
      provision up
    Step by step:
      provision init            create glitchtip.yaml and the secrets in .env
      provision render --check  write compose.yml and validate it with docker compose
      provision create-project  get or create org, team, project; write the DSN to .glitchtiprc
      provision dsn             show the DSN an app would use, and where it came from

    Settings come from options, then GLITCHTIP_* environment variables, then glitchtip.yaml,
    then defaults; `provision config` shows which one won.
    """


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="provision")
