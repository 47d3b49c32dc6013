"""`provision plan`, `apply` and `export`: GlitchTip's teams, projects, keys, alerts and monitors
from a declaration file (docs/declarative.md).

plan's exit status follows Terraform's `-detailed-exitcode`, shifted past the kit's own codes:
0 no changes, 1 GlitchTip failed, 2 bad input, 3 changes to make.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

from provision.commands.options import Seconds, dir_option, echo_json, json_option

CHANGES_EXIT = 3
DEFAULT_FILE = "glitchtip-resources.yaml"


def _connection_options(function):
    options = [
        click.option(
            "--file",
            "-f",
            "path",
            type=click.Path(dir_okay=False, path_type=Path),
            default=DEFAULT_FILE,
            show_default=True,
            help="the declaration",
        ),
        click.option(
            "--url",
            envvar="GLITCHTIP_URL",
            help="GlitchTip's address [env GLITCHTIP_URL; default: the kit's]",
        ),
        click.option(
            "--token",
            envvar="GLITCHTIP_API_TOKEN",
            help="API token [env GLITCHTIP_API_TOKEN; default: the one in .env]",
        ),
        click.option(
            "--admin-email",
            envvar="GLITCHTIP_ADMIN_EMAIL",
            help="admin e-mail (creates tokens) [env GLITCHTIP_ADMIN_EMAIL]",
        ),
        click.option(
            "--admin-password",
            envvar="GLITCHTIP_ADMIN_PASSWORD",
            help="admin password [env GLITCHTIP_ADMIN_PASSWORD; default: .env]",
        ),
        click.option(
            "--env-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=".env",
            show_default=True,
            help="the kit's .env (stores GLITCHTIP_API_TOKEN)",
        ),
        click.option(
            "--timeout",
            type=Seconds(0, 600),
            default=10.0,
            show_default=True,
            help="seconds per HTTP request",
        ),
        click.option("--verbose", "-v", is_flag=True, help="say each request's purpose on stderr"),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), function)


def _inside(directory: Path, path: Path) -> Path:
    """`path` relative to the deployment directory (--dir) unless absolute."""
    return path if path.is_absolute() else directory / path


def _connection(url, token, admin_email, admin_password, env_file, timeout, directory=Path(".")):
    from provision.declare.run import Connection
    from provision.envfile import read_env_file

    env_file = _inside(directory, env_file)
    defaults = _defaults(directory)
    env_values = read_env_file(env_file)
    return Connection(
        url=url or defaults["url"],
        token=token or None,
        admin_email=admin_email
        or defaults["admin_email"]
        or env_values.get("DJANGO_SUPERUSER_EMAIL"),
        admin_password=admin_password or env_values.get("DJANGO_SUPERUSER_PASSWORD") or None,
        env_path=env_file,
        client_options={"timeout": timeout},
    )


def _defaults(directory: Path) -> dict[str, str | None]:
    from provision.deployment import Deployment

    settings = Deployment.load(directory).settings
    return {"url": settings.internal_url, "admin_email": settings.admin_email}


def _say(verbose: bool):
    return (lambda m: click.echo(m, err=True)) if verbose else (lambda m: None)


def _open(directory, path, url, token, admin_email, admin_password, env_file, timeout, verbose):
    """(declaration, connection, token), everything checked before the first request."""
    from provision.api.client import check_token
    from provision.declare.parse import read_declaration
    from provision.declare.run import check_files, resolve

    declaration = read_declaration(_inside(directory, path))
    check_files(declaration)
    check_token(token)
    connection = _connection(url, token, admin_email, admin_password, env_file, timeout, directory)
    return declaration, connection, resolve(connection, _say(verbose))


@click.command("plan")
@dir_option
@_connection_options
@click.option("--prune", is_flag=True, help="also plan deleting what the file no longer names")
@json_option("the plan")
def plan_command(
    directory,
    path,
    url,
    token,
    admin_email,
    admin_password,
    env_file,
    timeout,
    verbose,
    prune,
    as_json,
) -> None:
    """Show what `apply` would create, change and delete (GET requests only).

    \b
    Exit status: 0 no changes, 3 changes to make, 2 bad input, 1 GlitchTip failed.

    \b
    Examples:
      provision plan                       # glitchtip-resources.yaml
      provision plan --prune --json -f prod.yaml
    """
    from provision.api.client import GlitchTipClient
    from provision.declare.run import build_plan

    declaration, connection, api_token = _open(
        directory, path, url, token, admin_email, admin_password, env_file, timeout, verbose
    )
    with GlitchTipClient(connection.url, api_token, **connection.client_options) as client:
        plan, _ = build_plan(client, declaration, prune=prune, server_url=connection.url)
    if as_json:
        echo_json(plan.as_dict())
    else:
        click.echo(plan.text())
    if plan.changes:
        raise SystemExit(CHANGES_EXIT)


@click.command("apply")
@dir_option
@_connection_options
@click.option("--prune", is_flag=True, help="delete what the file no longer names (asks first)")
@click.option("--yes", "-y", is_flag=True, help="do not ask before deleting")
@json_option("what was done")
def apply_command(
    directory,
    path,
    url,
    token,
    admin_email,
    admin_password,
    env_file,
    timeout,
    verbose,
    prune,
    yes,
    as_json,
) -> None:
    """Make GlitchTip match the declaration; write each project's DSN files.

    \b
    Only what differs is written: a second run sends no POST, PUT or DELETE. Deletes happen
    only with --prune, after the plan is shown and confirmed (or --yes).

    \b
    Examples:
      provision apply
      provision apply --prune --yes -f prod.yaml
    """
    import sys

    from provision.api.client import GlitchTipClient
    from provision.declare.run import apply_plan, build_plan
    from provision.errors import UsageError
    from provision.locking import locked, locked_for

    declaration, connection, api_token = _open(
        directory, path, url, token, admin_email, admin_password, env_file, timeout, verbose
    )
    say = _say(verbose)
    # GlitchTip's creates are not idempotent: two applies at once would both create. The
    # deployment's lock serializes applies of any declaration against it, the file's directory
    # lock those of one file given from elsewhere (locks nest; always taken in this order).
    with (
        locked(directory),
        locked_for(_inside(directory, path)),
        GlitchTipClient(connection.url, api_token, **connection.client_options) as client,
    ):
        plan, live = build_plan(client, declaration, prune=prune, server_url=connection.url)
        deletes = [c for c in plan.changes if c.action == "delete"]
        if not as_json:
            click.echo(plan.text(), err=True)
        if deletes and not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"the plan deletes {len(deletes)} thing(s) and there is no "
                    "terminal to confirm it",
                    "review `provision plan --prune`, then run apply --prune --yes",
                )
            click.confirm(f"delete {len(deletes)} thing(s) listed above?", abort=True, err=True)
        written = apply_plan(client, plan, live, declaration, connection, say)
        counts = {"requests": client.requests, "posts": client.posts}
    result = {**plan.as_dict(), "files_written": written, **counts}
    if as_json:
        echo_json(result)
    else:
        done = ", ".join(f"{n} {a}d" for a, n in plan.summary().items() if n and a != "write")
        click.echo(f"applied: {done or 'no changes'}; {len(written)} DSN file(s) written", err=True)


@click.command("export")
@dir_option
@click.option("--org", "org", required=True, metavar="NAME", help="organization name or slug")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the declaration here (refused if it exists) [default: stdout]",
)
@click.option(
    "--secrets-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the webhook URLs (url_env variables) to this dotenv file, 0600",
)
@click.option("--include-urls", is_flag=True, help="write webhook URLs into the file itself")
@click.option("--url", envvar="GLITCHTIP_URL", help="GlitchTip's address [env GLITCHTIP_URL]")
@click.option("--token", envvar="GLITCHTIP_API_TOKEN", help="API token [env GLITCHTIP_API_TOKEN]")
@click.option("--admin-email", envvar="GLITCHTIP_ADMIN_EMAIL", help="admin e-mail")
@click.option("--admin-password", envvar="GLITCHTIP_ADMIN_PASSWORD", help="admin password")
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=".env",
    show_default=True,
    help="the kit's .env",
)
@click.option(
    "--timeout",
    type=Seconds(0, 600),
    default=10.0,
    show_default=True,
    help="seconds per HTTP request",
)
def export_command(
    directory,
    org,
    output,
    secrets_out,
    include_urls,
    url,
    token,
    admin_email,
    admin_password,
    env_file,
    timeout,
) -> None:
    """Write the declaration of a live organization (no DSN, token or webhook URL in it).

    \b
    Examples:
      provision export --org Acme --output glitchtip-resources.yaml --secrets-out hooks.env
    """
    from provision.api.client import GlitchTipClient, check_token
    from provision.declare.export import export_org, to_yaml, write_secrets
    from provision.declare.run import resolve
    from provision.errors import UsageError
    from provision.fileio import check_writable_target, write_new_atomic

    check_token(token)
    for target in (output, secrets_out):
        if target is not None:
            check_writable_target(target)
    if output is not None and output.exists():
        raise UsageError(f"{output} exists", "give --output a new file (export never overwrites)")
    connection = _connection(url, token, admin_email, admin_password, env_file, timeout, directory)
    api_token = resolve(connection, lambda m: None)
    with GlitchTipClient(connection.url, api_token, **connection.client_options) as client:
        data, secrets = export_org(client, org, include_urls=include_urls)
    text = to_yaml(data)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_new_atomic(output, text)
        click.echo(f"wrote {output}", err=True)
    if secrets and secrets_out is not None:
        write_secrets(secrets_out, secrets)
        click.echo(f"wrote {len(secrets)} URL(s) to {secrets_out} (0600)", err=True)
    elif secrets:
        click.echo(
            f"{len(secrets)} URL(s) (webhooks, monitors with a password) left out as url_env "
            "variables; --secrets-out FILE saves their values",
            err=True,
        )
