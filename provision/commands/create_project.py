"""`provision create-project`: get or create org, team, project and key; write the DSN."""

from __future__ import annotations

from pathlib import Path

import click

from provision.commands.options import Seconds, echo_json, json_option
from provision.errors import KitError

FORMATS = ("glitchtiprc", "sentryclirc", "text", "env", "json", "ini")


def _defaults(directory: Path) -> dict[str, str | None]:
    """Defaults from the kit's settings (option > environment > glitchtip.yaml > default)."""
    from provision.deployment import Deployment

    settings = Deployment.load(directory).settings
    return {
        "url": settings.internal_url,
        "org": settings.organization,
        "project": settings.project,
        "platform": settings.platform,
        "admin_email": settings.admin_email,
    }


@click.command("create-project")
@click.option(
    "--url",
    envvar="GLITCHTIP_URL",
    help="GlitchTip's address [env GLITCHTIP_URL; default: the kit's bind address and port]",
)
@click.option(
    "--token",
    envvar="GLITCHTIP_API_TOKEN",
    help="API token [env GLITCHTIP_API_TOKEN; default: the one in .env, else one is created]",
)
@click.option(
    "--admin-email",
    envvar="GLITCHTIP_ADMIN_EMAIL",
    help="admin e-mail used to "
    "create a token [env GLITCHTIP_ADMIN_EMAIL; default: the kit's admin]",
)
@click.option(
    "--admin-password",
    envvar="GLITCHTIP_ADMIN_PASSWORD",
    help="admin password "
    "[env GLITCHTIP_ADMIN_PASSWORD; default: DJANGO_SUPERUSER_PASSWORD in .env]",
)
@click.option("--org", "org", metavar="NAME", help="organization name or slug [default: settings]")
@click.option("--team", metavar="SLUG", help="team slug [default: the organization's slug]")
@click.option("--project", metavar="NAME", help="project name or slug [default: settings]")
@click.option("--platform", help="platform of a new project [default: python]")
@click.option(
    "--key-name",
    metavar="NAME",
    help="use a dedicated client key with this name, "
    "created if missing [default: the project's default key]",
)
@click.option(
    "--rc",
    "rc_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="file to write [default: ./.glitchtiprc, or ./.sentryclirc]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="glitchtiprc",
    show_default=True,
    help="sentryclirc: write .sentryclirc for sentry-cli and "
    "GlitchTip's CLI instead; text/env/json/ini: also print the DSN in that form",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=".env",
    show_default=True,
    help="the kit's .env (stores and reuses GLITCHTIP_API_TOKEN)",
)
@json_option("the result")
@click.option("--verbose", "-v", is_flag=True, help="say what is being created, on stderr")
@click.option(
    "--timeout",
    type=Seconds(0, 600),
    default=10.0,
    show_default=True,
    help="seconds per HTTP request (more than 0, at most 600)",
)
@click.option(
    "--retries",
    type=click.IntRange(1, 20, clamp=True),
    default=4,
    envvar="PROVISION_API_RETRIES",
    hidden=True,
)
@click.option(
    "--backoff",
    type=Seconds(0, 60, allow_zero=True),
    default=0.5,
    envvar="PROVISION_API_BACKOFF",
    hidden=True,
)
def create_project_command(url, token, admin_email, admin_password, org, team, project,
                           platform, key_name, rc_path, fmt, env_file, as_json, verbose, timeout,
                           retries, backoff) -> None:  # fmt: skip
    """Get or create an organization, team, project and client key; write the DSN.

    \b
    Only what is missing is created, so a second run makes no change and prints the same DSN.
    The token: --token, else GLITCHTIP_API_TOKEN in .env while GlitchTip accepts it, else a new
    one created from the admin's e-mail and password (stored in .env, mode 0600).
    Writes .glitchtiprc ([defaults] org, project, url=DSN; mode 0600, other keys kept).

    \b
    Examples:
      provision create-project --org Acme --project "Web App"
      provision create-project --project api --key-name ci --format env
      provision create-project --format sentryclirc   # .sentryclirc for sentry-cli
    """

    from provision.envfile import read_env_file

    defaults = _defaults(Path.cwd())
    env_values = read_env_file(env_file)
    if not admin_password:
        admin_password = env_values.get("DJANGO_SUPERUSER_PASSWORD") or None
    if not admin_email:
        admin_email = defaults["admin_email"] or env_values.get("DJANGO_SUPERUSER_EMAIL") or None
    rc_format = "sentryclirc" if fmt == "sentryclirc" else "glitchtiprc"
    if rc_path is None:
        rc_path = Path(".sentryclirc" if rc_format == "sentryclirc" else ".glitchtiprc")

    from provision.api.client import RetryPolicy
    from provision.locking import locked_for
    from provision.provisioning import ProjectRequest, check_rc_parent, provision_project
    from provision.rcfile import format_dsn

    request = ProjectRequest(
        url=url or defaults["url"],
        # An explicit empty --org/--project is refused, not replaced by the default.
        org=defaults["org"] if org is None else org,
        project=defaults["project"] if project is None else project,
        token=token or None,
        admin_email=admin_email,
        admin_password=admin_password,
        env_path=env_file,
        team=team,
        platform=defaults["platform"] if platform is None else platform,
        key_name=key_name,
        rc_path=rc_path,
        rc_format=rc_format,
        client_options={
            "timeout": timeout,
            "retry": RetryPolicy(attempts=max(1, retries), backoff=max(0.0, backoff)),
        },
    )
    check_rc_parent(rc_path)  # before the lock, which is taken in the rc file's directory
    try:
        progress = (lambda m: click.echo(m, err=True)) if verbose else None
        # GlitchTip's creates are not idempotent: two runs listing at the same time would both
        # create the organization. The deployment lock makes the second run wait and find it.
        with locked_for(rc_path):
            result = provision_project(request, progress=progress)
    except OSError as exc:
        raise KitError(
            f"cannot write {exc.filename or 'a file'} ({exc.__class__.__name__})",
            "check the directory's permissions",
        ) from None
    if as_json:
        echo_json(result.as_dict())
        return
    made = ", ".join(result.created) if result.created else "nothing (all present)"
    written = "wrote" if result.rc_changed else "unchanged:"
    click.echo(
        f"{result.org_slug}/{result.project_slug} (team {result.team_slug}): created {made}; "
        f"{written} {result.rc_path}",
        err=True,
    )
    shown = fmt if fmt in ("env", "json", "ini") else "text"
    click.echo(format_dsn(shown, org=result.org_slug, project=result.project_slug, dsn=result.dsn))
