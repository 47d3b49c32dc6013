"""plan / apply / export against a GlitchTip: the token, the live state, the writes, the files.

The token is the one `create-project` uses (`provisioning.resolve_token`: given, else stored in
`.env` while accepted, else minted from the admin's login and stored). Declaration and DSN files
are checked before the first request, so a bad file changes nothing in GlitchTip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.declare.dsnfiles import SENTRY_CLI_SCOPES, DsnTarget, check_target, write_target
from provision.declare.live import Live, read_live
from provision.declare.model import Declaration
from provision.declare.plan import Context, Plan, make_plan

Say = Callable[[str], None]


@dataclass
class Connection:
    """Where GlitchTip is and how to log in (the admin's login mints sentry-cli tokens)."""

    url: str
    token: str | None = None
    admin_email: str | None = None
    admin_password: str | None = None
    env_path: Path | None = None
    client_options: dict[str, Any] = field(default_factory=dict)


def resolve(connection: Connection, say: Say) -> str:
    """The admin API token (see `provisioning.resolve_token`)."""
    from provision.provisioning import ProjectRequest, resolve_token

    request = ProjectRequest(
        url=connection.url,
        org="-",
        project="-",
        token=connection.token,
        admin_email=connection.admin_email,
        admin_password=connection.admin_password,
        env_path=connection.env_path,
        rc_path=None,
        client_options=connection.client_options,
    )
    token, _ = resolve_token(request, say)
    return token


def check_files(declaration: Declaration) -> None:
    for project in declaration.projects:
        for dsn_file in project.dsn_files:
            check_target(dsn_file)


def build_plan(
    client: Any, declaration: Declaration, *, prune: bool, server_url: str
) -> tuple[Plan, Live]:
    live = read_live(client, declaration)
    return make_plan(declaration, live, prune=prune, server_url=server_url), live


@dataclass
class ApplyResult:
    """What apply did: the changes made, the files written, requests by method."""

    plan: Plan
    files_written: list[str]
    requests: dict[str, int]


def apply_plan(
    client: Any, plan: Plan, live: Live, declaration: Declaration, connection: Connection, say: Say
) -> list[str]:
    """Run the plan's requests in order, then write the DSN files from the keys as they are now."""
    ctx = Context(client, plan.org)
    ctx.project_ids = {
        slug: str(p.data["id"]) for slug, p in live.projects.items() if p.data.get("id")
    }
    for change in plan.changes:
        if change.run is None:
            continue
        say(change.line().strip().splitlines()[0])
        change.run(ctx)
    # Keys are read again only where this run changed them (a re-run reads nothing more).
    changed = {
        c.name.partition("/")[0]
        for c in plan.changes
        if c.run is not None and (c.kind == "key" or (c.kind == "project" and c.action == "create"))
    }
    known = {slug: p.keys for slug, p in live.projects.items() if slug not in changed}
    return write_dsn_files(client, ctx.org, declaration, connection, say, known)


def write_dsn_files(
    client: Any,
    org: str,
    declaration: Declaration,
    connection: Connection,
    say: Say,
    known: dict[str, list[dict]] | None = None,
) -> list[str]:
    """Each project's DSN files from its keys as GlitchTip has them now."""
    from provision.declare.live import oldest
    from provision.errors import ApiError

    written: list[str] = []
    for project in declaration.projects:
        if not project.dsn_files:
            continue
        cached = (known or {}).get(project.slug)
        keys = oldest(cached if cached is not None else client.keys(org, project.slug))
        if project.keys is not None:
            names = {k.name for k in project.keys}
            keys = [k for k in keys if k.get("name") in names]
        for dsn_file in project.dsn_files:
            chosen = [k for k in keys if dsn_file.key is None or k.get("name") == dsn_file.key]
            if not chosen:
                raise ApiError(f"project {project.slug} has no key for {dsn_file.path}")
            target = DsnTarget(
                dsn_file, org, project.slug, chosen[0]["dsn"]["public"], connection.url
            )
            if write_target(
                target,
                lambda t: mint_sentry_cli_token(connection, t),
                lambda token: token_accepted(connection, token),
            ):
                say(f"wrote {dsn_file.path}")
                written.append(str(dsn_file.path))
    return written


def token_accepted(connection: Connection, token: str) -> bool:
    from provision.api.client import GlitchTipClient
    from provision.provisioning import _token_accepted

    with GlitchTipClient(connection.url, token, **connection.client_options) as client:
        return _token_accepted(client)


def mint_sentry_cli_token(connection: Connection, target: DsnTarget) -> str:
    """A token for sentry-cli with only its scopes, from the admin's login (never the admin's
    token: GlitchTip makes tokens for a session only)."""
    from provision.api.bootstrap import bootstrap_token
    from provision.errors import UsageError

    if not (connection.admin_email and connection.admin_password):
        raise UsageError(
            f"{target.file.path} (sentryclirc) needs a token of its own, made from the "
            "admin's login",
            "give --admin-email and --admin-password (or DJANGO_SUPERUSER_PASSWORD in .env)",
        )
    return bootstrap_token(
        connection.url,
        connection.admin_email,
        connection.admin_password,
        scopes=SENTRY_CLI_SCOPES,
        label=f"sentry-cli {target.org}/{target.project}"[:60],
        **connection.client_options,
    )
