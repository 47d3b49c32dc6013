"""Read `glitchtip-resources.yaml` into a `Declaration`, refusing before any request what
GlitchTip would refuse or break on.

Every refusal is one line naming the path of the bad value (`projects[2].alerts[0].recipients[1]
.url: ...`) and exits 2. The file is read like glitchtip.yaml (`fileio.read_text_file`: no FIFO
wait, size cap, UTF-8), and its YAML event stream is checked before PyYAML builds anything:
anchors/aliases (alias bombs), more than one document, nesting deeper than the model needs, and
keys written twice are refused.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from provision.declare.model import (
    DSN_FORMATS,
    MONITOR_TYPES,
    ORG_ROLES,
    RECIPIENT_TYPES,
    Alert,
    Declaration,
    DsnFile,
    Key,
    Member,
    Monitor,
    Project,
    RateLimit,
    Recipient,
)
from provision.errors import UsageError
from provision.masking import url_passwords
from provision.yamlshape import Frame, check_shape

RESOURCES_FILE = "glitchtip-resources.yaml"
MAX_BYTES = 1024 * 1024
MAX_DEPTH = 8  # file > projects > [i] > alerts > [j] > recipients > [k] > url, plus slack
MAX_INT = 2**31 - 1  # PostgreSQL integer columns (alert quantity, timespan, rate limits)
# The monitor interval column is a smallint (PositiveSmallIntegerField in GlitchTip's
# apps/uptime/models.py; its 86400 validator is not run by the API): 100000 gave HTML 500 (427).
MAX_INTERVAL = 2**15 - 1
NAME_MAX = 200
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
_PLATFORM = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}", re.ASCII)
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
# Django's URLValidator host part: an IP, localhost, or a dotted name whose last label (the
# TLD) is letters or punycode; labels may hold non-ASCII letters (IDN), as Django allows.
_LETTER = "a-z\u00a1-\uffff"
_LABEL = f"[{_LETTER}0-9](?:[{_LETTER}0-9-]{{0,61}}[{_LETTER}0-9])?"
_DNS_HOST = re.compile(
    rf"{_LABEL}(?:\.{_LABEL})*\.(?:[{_LETTER}]{{2,63}}|xn--[a-z0-9]{{1,59}})\.?", re.I
)


class DeclarationError(UsageError):
    """A bad declaration: one line with the path of the bad value (exit 2)."""


def _fail(where: str, message: str, fix: str | None = None) -> DeclarationError:
    return DeclarationError(f"{where}: {message}" if where else message, fix)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:55]}...'"


# --- YAML ---------------------------------------------------------------------------------------


class _DeclarationShape:
    """glitchtip-resources.yaml's shape (`provision.yamlshape`): lists and mappings allowed,
    no deeper than `MAX_DEPTH`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def anchor(self, line: int) -> Exception:
        return _fail(
            f"{self.name}: line {line}",
            "uses a YAML anchor or alias (& or *)",
            "write each value out in full",
        )

    def second_document(self, line: int) -> Exception:
        return _fail(
            f"{self.name}: line {line}",
            "starts a second YAML document",
            "keep one organization per file, without '---'",
        )

    def duplicate(self, frame: Frame, key: str, first: int, line: int) -> Exception:
        return _fail(
            f"{self.name}: line {line}",
            f"key {_shown(key)} is written twice (first on line {first})",
            "delete one of the two (YAML would silently keep the last)",
        )

    def collection(self, parent: Frame | None, is_mapping: bool, depth: int, line: int) -> None:
        if depth >= MAX_DEPTH:
            raise _fail(
                f"{self.name}: line {line}",
                f"nests deeper than {MAX_DEPTH} levels",
                "see docs/declarative.md for the file's shape",
            )


def _check_events(text: str, name: str) -> None:
    """Refuse anchors, aliases, several documents, deep nesting and repeated keys, from the
    event stream (nothing built, no recursion: `provision.yamlshape`)."""
    check_shape(text, _DeclarationShape(name))


def load_yaml(path: Path) -> Any:
    """The YAML data of the declaration file (a missing file is an error)."""
    import yaml

    from provision.fileio import read_text_file

    text = read_text_file(path, max_bytes=MAX_BYTES, error=DeclarationError)
    if text is None:
        raise DeclarationError(
            f"{path} does not exist",
            "write it (see docs/declarative.md) or run `provision export --output "
            f"{path.name}` against a running GlitchTip",
        )
    try:
        _check_events(text, path.name)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise DeclarationError(
            f"{path.name}: not valid YAML{where}", f"fix the syntax of {path}"
        ) from None
    except (ValueError, RecursionError, OverflowError):
        raise DeclarationError(
            f"{path.name}: a value cannot be read", "use short numbers, true/false or text"
        ) from None


# --- typed getters ------------------------------------------------------------------------------


class _Node:
    """A mapping being read, with its path for messages; unknown keys are refused on `done()`."""

    def __init__(self, data: Any, where: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(data, dict):
            raise _fail(
                where or "the file",
                f"must be a mapping, not {_kind(data)}",
                "see docs/declarative.md for the file's shape",
            )
        for key in data:
            if not isinstance(key, str) or key not in allowed:
                raise _fail(
                    _join(where, str(key)[:60]), "unknown key", f"use one of: {', '.join(allowed)}"
                )
        self.data = data
        self.where = where

    def path(self, key: str) -> str:
        return _join(self.where, key)

    def has(self, key: str) -> bool:
        return key in self.data

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        default: str | None = None,
        max_len: int = NAME_MAX,
        empty: bool = False,
    ) -> str | None:
        if key not in self.data or self.data[key] is None:
            if required:
                raise _fail(self.path(key), "is required")
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise _fail(self.path(key), f"must be text, not {_kind(value)}")
        value = str(value)
        if not value.strip() and not empty:
            raise _fail(self.path(key), "is empty")
        if len(value) > max_len or not value.isprintable():
            raise _fail(self.path(key), f"must be at most {max_len} printable characters")
        return value

    def integer(
        self,
        key: str,
        low: int,
        high: int,
        *,
        default: int | None = None,
        required: bool = False,
        why: str = "",
    ) -> int | None:
        if key not in self.data or self.data[key] is None:
            if required:
                raise _fail(self.path(key), "is required")
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(self.path(key), f"must be a whole number, not {_kind(value)}")
        if not low <= value <= high:
            raise _fail(self.path(key), f"{value} is not between {low} and {high}{why}")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise _fail(self.path(key), f"must be true or false, not {_kind(value)}")
        return value

    def items(self, key: str) -> list[tuple[str, Any]]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise _fail(self.path(key), f"must be a list, not {_kind(value)}")
        return [(f"{self.path(key)}[{index}]", item) for index, item in enumerate(value)]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _unique(where: str, seen: dict[str, str], name: str, what: str) -> None:
    if name in seen:
        raise _fail(
            where,
            f"{what} {_shown(name)} is declared twice (also at {seen[name]})",
            "give each a different name, or merge them",
        )
    seen[name] = where


# --- URLs ---------------------------------------------------------------------------------------


def _host_ok(host: str) -> bool:
    if host == "localhost" or _DNS_HOST.fullmatch(host):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def check_http_url(where: str, url: str, *, monitor: bool = False) -> None:
    """A URL GlitchTip's validators accept: http(s), and a host Django's URLValidator takes (an
    IP, localhost or a dotted name; compose's `web` is refused, recorded 412)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise _fail(where, f"{_shown(url)} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail(
            where, f"{_shown(url)} is not an http(s) URL", "e.g. https://hooks.example.com/x"
        )
    if not _host_ok(parts.hostname):
        fix = "use a dotted host name or an IP address"
        if monitor and "." not in parts.hostname:
            fix = (
                f"GlitchTip refuses a host without a dot ({parts.hostname}); use a dotted name "
                f"or an IP, or monitor it as type 'TCP Port' with url {parts.hostname}:"
                f"{parts.port or (443 if parts.scheme == 'https' else 80)}"
            )
        raise _fail(where, f"{_shown(url)}: GlitchTip answers 'Invalid Url' for it", fix)


# --- the parts ----------------------------------------------------------------------------------


def _recipient(where: str, data: Any) -> Recipient:
    node = _Node(data, where, ("type", "url", "url_env"))
    kind = node.text("type", required=True)
    if kind not in RECIPIENT_TYPES:
        raise _fail(
            node.path("type"),
            f"{_shown(kind)} is not a recipient type",
            f"use one of: {', '.join(RECIPIENT_TYPES)}",
        )
    if kind == "email":
        if node.has("url") or node.has("url_env"):
            raise _fail(
                node.path("url"),
                "an email recipient has no URL (GlitchTip mails the project's members)",
                "remove the url",
            )
        return Recipient("email")
    if node.has("url") and node.has("url_env"):
        raise _fail(node.path("url"), "give url or url_env, not both")
    env_name = node.text("url_env")
    if env_name is not None:
        url = _url_from_env(node, env_name, "SLACK_HOOK_URL", "the webhook URL")
        check_http_url(node.path("url_env") + f" ({env_name})", url)
        return Recipient(kind, url, env_name)
    url = node.text("url", max_len=2000)
    if url is None:
        raise _fail(
            node.path("url"),
            f"a {kind} recipient needs a URL",
            "add url: https://... (or url_env: VARIABLE holding it)",
        )
    check_http_url(node.path("url"), url)
    return Recipient(kind, url)


def _alert(where: str, data: Any) -> Alert:
    node = _Node(data, where, ("name", "quantity", "timespan_minutes", "uptime", "recipients"))
    name = node.text("name", required=True)
    assert name is not None
    # A negative quantity gave HTML 500 (recorded 394b); 0 would alert on nothing.
    quantity = node.integer("quantity", 1, MAX_INT)
    timespan = node.integer("timespan_minutes", 1, MAX_INT)
    recipients: list[Recipient] = []
    seen: dict[tuple[str, str], str] = {}
    for rwhere, item in node.items("recipients"):
        recipient = _recipient(rwhere, item)
        key = (recipient.type, recipient.url)
        if key in seen:
            # Two identical recipients: HTML 500 with a half-created alert (recorded 394).
            raise _fail(
                rwhere,
                f"the same {recipient.type} recipient as {seen[key]}",
                "remove one of the two (GlitchTip would answer HTML 500)",
            )
        seen[key] = rwhere
        recipients.append(recipient)
    return Alert(name, quantity, timespan, node.flag("uptime"), tuple(recipients))


def _key(where: str, data: Any) -> Key:
    node = _Node(data, where, ("name", "rate_limit"))
    name = node.text("name", required=True, empty=True, max_len=64)
    assert name is not None
    limit = None
    if node.data.get("rate_limit") is not None:
        inner = _Node(node.data["rate_limit"], node.path("rate_limit"), ("window", "count"))
        window = inner.integer("window", 1, MAX_INT, required=True)
        count = inner.integer("count", 1, MAX_INT, required=True)
        assert window is not None and count is not None
        limit = RateLimit(window, count)
    return Key(name.strip(), limit)


def _dsn_file(where: str, data: Any, base: Path) -> DsnFile:
    node = _Node(data, where, ("path", "format", "key"))
    raw = node.text("path", required=True, max_len=1000)
    assert raw is not None
    fmt = node.text("format", default="glitchtiprc")
    if fmt not in DSN_FORMATS:
        raise _fail(
            node.path("format"),
            f"{_shown(fmt)} is not a DSN file format",
            f"use one of: {', '.join(DSN_FORMATS)}",
        )
    path = Path(raw)
    if not path.is_absolute():
        path = base / path
    return DsnFile(path, fmt or "glitchtiprc", node.text("key", empty=True, max_len=64))


def _project(where: str, data: Any, teams: set[str], base: Path) -> Project:
    from provision.provisioning import slugify

    node = _Node(data, where, ("name", "platform", "teams", "keys", "alerts", "dsn_files"))
    name = node.text("name", required=True, max_len=64)
    assert name is not None
    slug = slugify(name)
    if not slug:
        raise _fail(
            node.path("name"),
            f"{_shown(name)} has no letter or digit to make a slug of",
            "use ASCII letters or digits in the name",
        )
    platform = node.text("platform", max_len=64)
    if platform is not None and not _PLATFORM.fullmatch(platform):
        raise _fail(
            node.path("platform"),
            f"{_shown(platform)} is not a platform name",
            "e.g. python, javascript or node",
        )
    project_teams: list[str] = []
    for twhere, team in node.items("teams"):
        if not isinstance(team, str) or team not in teams:
            raise _fail(
                twhere,
                f"{_shown(team)} is not one of the declared teams",
                "add it to `teams:` at the top of the file",
            )
        if team in project_teams:
            raise _fail(twhere, f"team {team!r} is listed twice")
        project_teams.append(team)
    if not project_teams:
        raise _fail(
            node.path("teams"),
            "a project needs at least one team (GlitchTip creates projects under a team)",
            "e.g. teams: [backend]",
        )
    keys: list[Key] | None = None
    if node.has("keys"):
        keys = []
        seen: dict[str, str] = {}
        for kwhere, item in node.items("keys"):
            key = _key(kwhere, item)
            _unique(kwhere, seen, key.name, "key")
            keys.append(key)
    alerts: list[Alert] = []
    seen_alerts: dict[str, str] = {}
    for awhere, item in node.items("alerts"):
        alert = _alert(awhere, item)
        _unique(awhere, seen_alerts, alert.name, "alert")
        alerts.append(alert)
    files: list[DsnFile] = []
    for fwhere, item in node.items("dsn_files"):
        dsn_file = _dsn_file(fwhere, item, base)
        if (
            keys is not None
            and dsn_file.key is not None
            and dsn_file.key not in {k.name for k in keys}
        ):
            raise _fail(f"{fwhere}.key", f"{_shown(dsn_file.key)} is not one of the project's keys")
        files.append(dsn_file)
    return Project(
        name.strip(),
        slug,
        platform,
        tuple(project_teams),
        None if keys is None else tuple(keys),
        tuple(alerts),
        tuple(files),
    )


def _monitor_url(node: _Node) -> tuple[str, str | None]:
    """A monitor's URL, written out or read from the environment variable `url_env` names (a
    URL carrying a user and password, which the file must not hold); (url, variable)."""
    if node.has("url") and node.has("url_env"):
        raise _fail(node.path("url"), "give url or url_env, not both")
    env_name = node.text("url_env")
    if env_name is None:
        url = node.text("url", default="", max_len=2000) or ""
        if url_passwords(url):  # the file is committed and reviewed: no credential in it
            raise _fail(
                node.path("url"),
                "holds a password",
                "give the URL in an environment variable: url_env: VARIABLE",
            )
        return url, None
    return _url_from_env(node, env_name, "HEALTH_URL", "the monitor's URL"), env_name


def _url_from_env(node: _Node, env_name: str, example: str, what: str) -> str:
    """The URL in the environment variable `url_env` names (webhooks, monitors with a
    password): the file names the variable, never the credential."""
    if not _ENV_NAME.fullmatch(env_name):
        raise _fail(
            node.path("url_env"),
            f"{_shown(env_name)} is not a variable name",
            f"e.g. url_env: {example}",
        )
    url = os.environ.get(env_name, "")
    if not url:
        raise _fail(
            node.path("url_env"),
            f"the environment variable {env_name} is not set",
            f"export {env_name}=<{what}> first",
        )
    return url


def _monitor(where: str, data: Any, projects: dict[str, Project]) -> Monitor:
    node = _Node(
        data,
        where,
        (
            "name",
            "type",
            "url",
            "url_env",
            "interval",
            "timeout",
            "expected_status",
            "expected_body",
            "project",
        ),
    )
    name = node.text("name", required=True)
    kind = node.text("type", required=True)
    assert name is not None and kind is not None
    if kind not in MONITOR_TYPES:
        # GlitchTip stores an unknown type and then every monitors list of the org is an HTML
        # 500 until that row is deleted (recorded 424, 428).
        raise _fail(
            node.path("type"),
            f"{_shown(kind)} is not a GlitchTip monitor type",
            f"use one of: {', '.join(MONITOR_TYPES)}",
        )
    interval = node.integer(
        "interval", 1, MAX_INTERVAL, default=60, why=" seconds (GlitchTip answers HTML 500 above)"
    )
    timeout = node.integer("timeout", 1, 60, why=" seconds (GlitchTip's limit)")
    status = node.integer("expected_status", 100, 599)
    body = node.text("expected_body", default="", empty=True, max_len=2000) or ""
    url, url_env = _monitor_url(node)
    if kind in ("GET", "POST", "Ping", "SSL") and not url:
        raise _fail(node.path("url"), f"a {kind} monitor needs a URL", "e.g. https://example.com/")
    if kind in ("GET", "POST", "Ping"):
        check_http_url(node.path("url"), url, monitor=True)
    if kind == "SSL":
        check_http_url(node.path("url"), url)
    if kind in ("GET", "POST"):
        status = 200 if status is None else status
    elif node.has("expected_status") and status is not None:
        raise _fail(
            node.path("expected_status"),
            f"a {kind} monitor checks no status",
            "remove expected_status",
        )
    if kind == "TCP Port":
        match = re.fullmatch(r"(?:[a-z]+://)?([^\s/:@]+):(\d{1,5})/?", url)
        if match is None or not 0 < int(match.group(2)) < 65536:
            raise _fail(node.path("url"), f"{_shown(url)} is not host:port", "e.g. web:8080")
        url = f"{match.group(1)}:{int(match.group(2))}"  # stored without a scheme (recorded 415)
    if kind == "Heartbeat" and url:
        raise _fail(
            node.path("url"),
            "a Heartbeat monitor has no URL (the app calls GlitchTip)",
            "remove the url",
        )
    project = node.text("project", max_len=64)
    if project is not None and project not in projects:
        raise _fail(
            node.path("project"),
            f"{_shown(project)} is not a declared project",
            "name one of the file's projects (GlitchTip silently drops unknown ones)",
        )
    if project is not None:
        project = projects[project].name
    return Monitor(name, kind, url, interval or 60, timeout, status, body, project, url_env)


def _member(where: str, data: Any, teams: set[str]) -> Member:
    node = _Node(data, where, ("email", "role", "teams"))
    email = node.text("email", required=True, max_len=254)
    assert email is not None
    local, at, domain = email.strip().rpartition("@")
    if not at or not local or "." not in domain or " " in email.strip():
        raise _fail(node.path("email"), f"{_shown(email)} is not an e-mail address")
    role = node.text("role", default="member")
    if role not in ORG_ROLES:
        raise _fail(
            node.path("role"),
            f"{_shown(role)} is not an organization role",
            f"use one of: {', '.join(ORG_ROLES)}",
        )
    member_teams: list[str] = []
    for twhere, team in node.items("teams"):
        if not isinstance(team, str) or team not in teams:
            raise _fail(
                twhere,
                f"{_shown(team)} is not one of the declared teams",
                "add it to `teams:` at the top of the file",
            )
        if team in member_teams:
            raise _fail(twhere, f"team {team!r} is listed twice")
        member_teams.append(team)
    return Member(email.strip(), role or "member", tuple(member_teams))


def parse_declaration(data: Any, base: Path, source: Path | None = None) -> Declaration:
    """The validated `Declaration` of the YAML data (paths of `dsn_files` relative to `base`)."""
    node = _Node(data, "", ("organization", "teams", "members", "projects", "monitors"))
    org = node.text("organization", required=True, max_len=64)
    assert org is not None
    teams: list[str] = []
    for where, team in node.items("teams"):
        if not isinstance(team, str) or not _SLUG.fullmatch(team) or len(team) > 50:
            raise _fail(
                where,
                f"{_shown(team)} is not a team slug",
                "use letters, digits, '-' and '_' (GlitchTip's pattern)",
            )
        if team in teams:
            raise _fail(where, f"team {team!r} is declared twice", "remove one")
        teams.append(team)
    projects: list[Project] = []
    by_name: dict[str, Project] = {}
    seen: dict[str, str] = {}
    for where, item in node.items("projects"):
        project = _project(where, item, set(teams), base)
        # Two names with one slug would be one project in GlitchTip.
        _unique(f"{where}.name", seen, project.slug, "project (slug)")
        projects.append(project)
        by_name[project.name] = by_name[project.slug] = project
    monitors: list[Monitor] = []
    seen_monitors: dict[str, str] = {}
    for where, item in node.items("monitors"):
        monitor = _monitor(where, item, by_name)
        _unique(f"{where}.name", seen_monitors, monitor.name, "monitor")
        monitors.append(monitor)
    members: list[Member] | None = None
    if node.has("members"):
        members = []
        seen_emails: dict[str, str] = {}
        for where, item in node.items("members"):
            member = _member(where, item, set(teams))
            _unique(f"{where}.email", seen_emails, member.email.lower(), "member")
            members.append(member)
    files: dict[str, str] = {}
    for index, project in enumerate(projects):
        for findex, dsn_file in enumerate(project.dsn_files):
            where = f"projects[{index}].dsn_files[{findex}].path"
            _unique(where, files, str(dsn_file.path), "DSN file")
    return Declaration(
        org.strip(),
        tuple(teams),
        tuple(projects),
        tuple(monitors),
        None if members is None else tuple(members),
        source,
    )


def read_declaration(path: Path) -> Declaration:
    """Read and validate the declaration file at `path`."""
    path = Path(path)
    return parse_declaration(load_yaml(path), path.parent, path)
