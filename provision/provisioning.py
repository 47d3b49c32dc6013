"""Get-or-create an organization, team, project and client key in GlitchTip; write the DSN.

GlitchTip's create calls are not idempotent (a second org or project gets a suffixed slug, a
duplicate team slug is a 500, keys duplicate), so every step lists first and POSTs only what is
missing: a second run makes no POST and yields the same DSN. The token is resolved first: the one
given, else the one stored in `.env` while GlitchTip still accepts it, else a new one minted from
the admin's e-mail and password and stored in `.env` (0600).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import ApiError, UsageError
from provision.slugs import slugify

TOKEN_KEY = "GLITCHTIP_API_TOKEN"
Progress = Callable[[str], None]


@dataclass
class ProjectRequest:
    """What to provision, and how to authenticate."""

    url: str
    org: str
    project: str
    token: str | None = None
    admin_email: str | None = None
    admin_password: str | None = None
    env_path: Path | None = None
    team: str | None = None
    platform: str | None = "python"
    key_name: str | None = None
    rc_path: Path | None = Path(".glitchtiprc")
    rc_format: str = "glitchtiprc"
    client_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProjectResult:
    """What exists now, what this run created, and where the token came from."""

    org_slug: str
    team_slug: str
    project_slug: str
    dsn: str
    created: list[str]
    posts: int
    token_source: str
    rc_path: Path | None = None
    rc_changed: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (no token)."""
        return {
            "org": self.org_slug,
            "team": self.team_slug,
            "project": self.project_slug,
            "dsn": self.dsn,
            "created": self.created,
            "posts": self.posts,
            "token_source": self.token_source,
            "rc_path": str(self.rc_path) if self.rc_path else None,
            "rc_changed": self.rc_changed,
        }


def _validate(request: ProjectRequest) -> None:
    from urllib.parse import urlsplit

    from provision.api.client import check_token

    check_token(request.token)  # before any request: no traceback, no retries
    check_rc_parent(request.rc_path)
    example = "e.g. --url http://127.0.0.1:8000"
    try:
        parts = urlsplit(request.url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise UsageError("the GlitchTip URL is malformed (host or port)", example) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            "the GlitchTip URL must start with http:// or https:// and name a host", example
        )
    if "@" in parts.netloc:
        # The kit authenticates with a token; a user:password here would only end up in messages.
        raise UsageError(
            "the GlitchTip URL must not contain a user or password",
            f"drop the part before '@' ({example}); the kit logs in with a token",
        )
    for label, option, value in (
        ("organization", "--org", request.org),
        ("project", "--project", request.project),
    ):
        if value is None or not value.strip():
            # An empty --org must not quietly fall back to (and create) the default org.
            raise UsageError(f"the {label} name is empty", f"give {option} a name, e.g. Acme")
        if len(value) > 64 or not value.isprintable():
            raise UsageError(
                f"the {label} name is not 1-64 printable characters",
                f"give {option} a shorter name, e.g. Acme",
            )
        if not slugify(value):
            raise UsageError(
                f"the {label} name {value.strip()[:20]!r} has no letter or digit GlitchTip can "
                "make a slug (its URL name) from",
                f"give {option} a name with ASCII letters or digits, e.g. {option} Acme",
            )
    if request.key_name is not None and not (
        request.key_name.strip() and len(request.key_name) <= 64 and request.key_name.isprintable()
    ):
        # An empty --key-name would silently fall back to the project's default key.
        raise UsageError(
            "the key name must be 1-64 printable characters", "e.g. --key-name ci, or omit it"
        )
    if request.platform is not None and not re.fullmatch(
        r"[a-z0-9][a-z0-9_.-]{0,63}", request.platform, flags=re.ASCII
    ):
        raise UsageError(
            f"the platform {request.platform[:20]!r} is not a platform name",
            "e.g. --platform python, javascript or node",
        )
    if request.team is not None and not re.fullmatch(r"[-a-zA-Z0-9_]+", request.team):
        raise UsageError(
            "the team slug may contain only letters, digits, '-' and '_'", "e.g. --team backend"
        )
    if request.rc_format not in ("glitchtiprc", "sentryclirc"):
        raise UsageError(
            f"unknown rc format '{request.rc_format}'", "use glitchtiprc or sentryclirc"
        )
    _validate_client_options(request.client_options)
    # Files are checked before the first request: a POST must never precede a refusal to write
    # its result (the org would exist, and the rc file would not say so).
    from provision.fileio import check_writable_target
    from provision.rcfile import check_rc_file

    if request.rc_path is not None:
        check_rc_file(request.rc_path)
    if request.env_path is not None:
        check_writable_target(request.env_path)


def check_rc_parent(rc_path: Path | None) -> None:
    """Refuse an rc file whose directory does not exist, like `backup --output`: a typo in
    --rc must not create a tree of directories (and write the DSN somewhere unexpected)."""
    if rc_path is None:
        return
    parent = Path(rc_path).parent
    if not parent.is_dir():
        raise UsageError(f"{parent} does not exist", f"create it first (mkdir -p {parent})")


def _validate_client_options(options: dict[str, Any]) -> None:
    """A timeout must be a finite, positive number of seconds (nan and -1 reach httpx as
    tracebacks)."""
    import math

    timeout = options.get("timeout")
    if timeout is not None and (
        not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0
    ):
        raise UsageError(
            f"the timeout {timeout!r} is not a positive number of seconds", "e.g. --timeout 10"
        )


def _token_accepted(client: Any) -> bool:
    try:
        body = client.whoami()
    except ApiError as error:
        if error.status == 401:
            return False
        raise
    return bool(isinstance(body, dict) and body.get("user"))


def resolve_token(request: ProjectRequest, progress: Progress) -> tuple[str, str]:
    """(token, source): given > stored in .env and still accepted > minted from the admin login."""
    from provision.api.bootstrap import bootstrap_token
    from provision.api.client import GlitchTipClient
    from provision.envfile import read_env_file, update_env_file

    options = request.client_options
    if request.token:
        with GlitchTipClient(request.url, request.token, **options) as client:
            if not _token_accepted(client):
                raise ApiError(
                    "token rejected by GlitchTip (401)",
                    "give a valid API token (--token / GLITCHTIP_API_TOKEN) or omit it to create "
                    "one from the admin's e-mail and password",
                    status=401,
                )
        return request.token, "given"
    stored = read_env_file(request.env_path).get(TOKEN_KEY) if request.env_path else None
    if stored:
        with GlitchTipClient(request.url, stored, **options) as client:
            if _token_accepted(client):
                return stored, "stored"
        progress(f"the token stored in {request.env_path} was rejected; creating a new one")
    if not (request.admin_email and request.admin_password):
        raise UsageError(
            "no API token and no admin credentials to create one",
            "give --token (GLITCHTIP_API_TOKEN) or --admin-email and --admin-password",
        )
    progress(f"logging in as {request.admin_email} to create an API token")
    token = bootstrap_token(request.url, request.admin_email, request.admin_password, **options)
    if request.env_path is not None:
        update_env_file(request.env_path, {TOKEN_KEY: token})
    return token, "created"


def _pick(items: list[dict], *, slug: str | None = None, name: str | None = None) -> dict | None:
    for item in items:
        if slug is not None and item.get("slug") == slug:
            return item
    for item in items:
        if name is not None and item.get("name") == name:
            return item
    return None


def provision_project(request: ProjectRequest, progress: Progress | None = None) -> ProjectResult:
    """Resolve the token, get-or-create org, team, project and key, and write the rc file."""
    from provision.api.client import GlitchTipClient
    from provision.rcfile import write_rc

    say = progress or (lambda message: None)
    _validate(request)
    token, source = resolve_token(request, say)
    created: list[str] = []
    with GlitchTipClient(request.url, token, **request.client_options) as client:
        wanted = request.org.strip()
        orgs = client.organizations()
        org = _pick(orgs, slug=wanted, name=wanted) or _pick(orgs, slug=slugify(wanted))
        if org is None:
            say(f"creating organization '{wanted}'")
            org = client.create_organization(wanted)
            created.append(f"organization {org['slug']}")
        org_slug = org["slug"]

        team_slug = request.team or org_slug
        team = _pick(client.teams(org_slug), slug=team_slug)
        if team is None:
            say(f"creating team '{team_slug}'")
            team = client.create_team(org_slug, team_slug)
            created.append(f"team {team['slug']}")

        name = request.project.strip()
        projects = client.projects(org_slug)
        project = _pick(projects, slug=name, name=name) or _pick(projects, slug=slugify(name))
        if project is None:
            say(f"creating project '{name}' in team '{team['slug']}'")
            project = client.create_project(org_slug, team["slug"], name, request.platform)
            created.append(f"project {project['slug']}")
        project_slug = project["slug"]

        keys = client.keys(org_slug, project_slug)
        if request.key_name:
            key = next((k for k in keys if k.get("name") == request.key_name), None)
        else:
            # The oldest key is the default one GlitchTip made with the project: stable DSN.
            key = min(keys, key=lambda k: str(k.get("dateCreated", ""))) if keys else None
        if key is None:
            key_name = request.key_name or "default"
            say(f"creating client key '{key_name}'")
            key = client.create_key(org_slug, project_slug, key_name)
            created.append(f"key {key_name}")
        try:
            dsn = key["dsn"]["public"]
        except (KeyError, TypeError):
            raise ApiError("GlitchTip's client key has no dsn.public") from None
        posts = client.posts

    from provision.dsn import parse_dsn

    parse_dsn(dsn, "the DSN GlitchTip returned")
    changed = False
    if request.rc_path is not None:
        changed = write_rc(
            request.rc_path,
            request.rc_format,
            server_url=request.url,
            org=org_slug,
            project=project_slug,
            dsn=dsn,
        )
    return ProjectResult(
        org_slug, team["slug"], project_slug, dsn, created, posts, source, request.rc_path, changed
    )
