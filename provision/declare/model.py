"""What a declaration says GlitchTip should hold: plain dataclasses, already validated.

The names are the declaration's (snake_case); `provision.declare.api` turns them into the
camelCase bodies GlitchTip takes. Every value here passed `parse.py`'s checks, which refuse what
GlitchTip would answer with a 422 or an HTML 500 (NOTES.md, recordings 390-457).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# GlitchTip's alert recipient types (NOTES.md: `webhook` is Slack-compatible).
RECIPIENT_TYPES = ("email", "webhook", "discord", "googlechat")
# GlitchTip's monitor types; any other `monitorType` is stored and then breaks every monitors
# list of the organization with an HTML 500 (recorded 424, 428).
MONITOR_TYPES = ("Ping", "GET", "POST", "TCP Port", "SSL", "Heartbeat")
DSN_FORMATS = ("glitchtiprc", "sentryclirc", "env")
ORG_ROLES = ("member", "admin", "manager", "owner")


@dataclass(frozen=True)
class Recipient:
    """An alert recipient: e-mail (to the project's members) or a webhook URL."""

    type: str
    url: str = ""
    url_env: str | None = None  # the URL came from this environment variable (kept out of files)


@dataclass(frozen=True)
class Alert:
    """A project alert: `quantity` events in `timespan_minutes` notify `recipients`."""

    name: str
    quantity: int | None = None
    timespan_minutes: int | None = None
    uptime: bool = False
    recipients: tuple[Recipient, ...] = ()


@dataclass(frozen=True)
class RateLimit:
    """A client key's rate limit: `count` events per `window` seconds."""

    window: int
    count: int


@dataclass(frozen=True)
class Key:
    """A client key (DSN) by name; "" is the unnamed key GlitchTip makes with a project."""

    name: str
    rate_limit: RateLimit | None = None


@dataclass(frozen=True)
class DsnFile:
    """Where an app reads its DSN: a file, its format, and the key whose DSN it holds."""

    path: Path
    format: str = "glitchtiprc"
    key: str | None = None  # None: the project's oldest key (the one GlitchTip made)


@dataclass(frozen=True)
class Project:
    """A project, found by slug (GlitchTip's slug of `name`), with what belongs to it."""

    name: str
    slug: str
    platform: str | None = None
    teams: tuple[str, ...] = ()
    keys: tuple[Key, ...] | None = None  # None: keys are not managed
    alerts: tuple[Alert, ...] = ()
    dsn_files: tuple[DsnFile, ...] = ()


@dataclass(frozen=True)
class Monitor:
    """An uptime monitor of the organization, found by name."""

    name: str
    type: str
    url: str = ""
    interval: int = 60
    timeout: int | None = None
    expected_status: int | None = None
    expected_body: str = ""
    project: str | None = None  # a declared project's name
    url_env: str | None = None  # the URL came from this environment variable (kept out of files)


@dataclass(frozen=True)
class Member:
    """An organization member by e-mail: org role and teams."""

    email: str
    role: str = "member"
    teams: tuple[str, ...] = ()


@dataclass(frozen=True)
class Declaration:
    """One organization and everything the file declares in it."""

    organization: str
    teams: tuple[str, ...] = ()
    projects: tuple[Project, ...] = ()
    monitors: tuple[Monitor, ...] = ()
    members: tuple[Member, ...] | None = None  # None: members are not managed
    source: Path | None = field(default=None, compare=False)

    def project(self, name: str) -> Project | None:
        """The declared project called `name` (or with that slug)."""
        return next((p for p in self.projects if name in (p.name, p.slug)), None)
