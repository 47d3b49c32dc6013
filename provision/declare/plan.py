"""The diff between a declaration and GlitchTip: an ordered list of changes, each with the
requests that make it.

Things are matched by name, never created blindly (GlitchTip's creates are not idempotent):
teams by slug, projects by slug, keys by name, alerts by name within their project, monitors by
name within the organization. A change is the smallest write that makes GlitchTip match: a
project's platform is one PUT; an alert's change is one PUT carrying all its recipients; a key's
rate limit cannot be changed (GlitchTip's key PUT saves nothing, recorded 358-360), so it is
replaced: a new key, then the old one deleted, DSN files rewritten. Deletes of what the file no
longer names are planned only with `prune`; without it they are listed as left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provision.declare import api
from provision.declare.dsnfiles import DsnTarget, needs_write
from provision.declare.live import Live, LiveProject
from provision.declare.model import Alert, Declaration, Key, Monitor, Project


@dataclass
class Context:
    """What apply carries from one change to the next."""

    client: Any
    org: str
    project_ids: dict[str, str] = field(default_factory=dict)


@dataclass
class Change:
    """One line of the plan: `action` (create, update, replace, delete, write) of `kind` `name`."""

    action: str
    kind: str
    name: str
    details: list[str] = field(default_factory=list)
    run: Callable[[Context], None] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "details": self.details,
        }

    def line(self) -> str:
        sign = {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "write": ">"}[
            self.action
        ]
        text = f"  {sign} {self.kind} {self.name}"
        return text + "".join(f"\n      {d}" for d in self.details)


@dataclass
class Plan:
    """The changes, and the deletes left alone because `--prune` was not given."""

    org: str
    changes: list[Change] = field(default_factory=list)
    not_pruned: list[Change] = field(default_factory=list)
    dsn_targets: list[DsnTarget] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "organization": self.org,
            "changes": [c.as_dict() for c in self.changes],
            "not_pruned": [c.as_dict() for c in self.not_pruned],
            "summary": self.summary(),
        }

    def summary(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "replace": 0, "delete": 0, "write": 0}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    def text(self) -> str:
        lines = [f"organization {self.org}:"]
        if not self.changes:
            lines.append("  no changes: GlitchTip matches the declaration")
        lines.extend(change.line() for change in self.changes)
        if self.not_pruned:
            lines.append("not in the declaration, kept (apply --prune deletes them):")
            lines.extend(change.line() for change in self.not_pruned)
        counts = self.summary()
        lines.append(", ".join(f"{n} to {a}" for a, n in counts.items() if n) or "nothing to do")
        return "\n".join(lines)


def _alert_state(alert: Alert) -> tuple:
    return (
        alert.quantity,
        alert.timespan_minutes,
        alert.uptime,
        sorted((r.type, r.url) for r in alert.recipients),
    )


def _live_alert_state(data: dict) -> tuple:
    recipients = sorted(
        (str(r.get("recipientType")), str(r.get("url") or ""))
        for r in data.get("alertRecipients") or []
    )
    return (data.get("quantity"), data.get("timespanMinutes"), bool(data.get("uptime")), recipients)


def _monitor_fields(monitor: Monitor, project_id: str | None) -> dict[str, Any]:
    return {
        "type": monitor.type,
        "url": monitor.url,
        "interval": monitor.interval,
        "timeout": monitor.timeout,
        "expected_status": monitor.expected_status,
        "expected_body": monitor.expected_body,
        "project": project_id,
    }


def _live_monitor_fields(data: dict) -> dict[str, Any]:
    project = data.get("projectID")
    return {
        "type": data.get("monitorType"),
        "url": data.get("url") or "",
        "interval": data.get("interval"),
        "timeout": data.get("timeout"),
        "expected_status": data.get("expectedStatus"),
        "expected_body": data.get("expectedBody") or "",
        "project": None if project is None else str(project),
    }


def _rate(key: Key) -> dict | None:
    return (
        None
        if key.rate_limit is None
        else {"window": key.rate_limit.window, "count": key.rate_limit.count}
    )


class Planner:
    """Builds the `Plan` of `declaration` against `live`."""

    def __init__(self, declaration: Declaration, live: Live, prune: bool, server_url: str) -> None:
        self.declaration = declaration
        self.live = live
        self.prune = prune
        self.server_url = server_url
        self.org = str(live.org["slug"]) if live.org else declaration.organization
        self.plan = Plan(self.org)

    def add(self, change: Change) -> None:
        self.plan.changes.append(change)

    def delete(self, change: Change) -> None:
        (self.plan.changes if self.prune else self.plan.not_pruned).append(change)

    def build(self) -> Plan:
        if self.live.org is None:
            name = self.declaration.organization

            def create_org(ctx: Context) -> None:
                ctx.org = str(ctx.client.create_organization(name)["slug"])

            self.add(Change("create", "organization", name, run=create_org))
        self.teams()
        self.members()
        for project in self.declaration.projects:
            self.project(project)
        self.monitors()
        self.prune_projects_and_teams()
        return self.plan

    # --- teams and projects ----------------------------------------------------------------

    def teams(self) -> None:
        for team in self.declaration.teams:
            if team not in self.live.teams:
                self.add(
                    Change(
                        "create",
                        "team",
                        team,
                        run=lambda ctx, t=team: ctx.client.create_team(ctx.org, t),
                    )
                )

    def members(self) -> None:
        """Invite who is missing; change roles and teams; with prune, remove who is not named
        (never the token's own user: an owner cannot remove themself, recorded 318). A pending
        invitation that differs is replaced (delete + invite, both recorded): GlitchTip's PUT
        ignores `teamRoles` (297b) and a re-invite leaves the role as it was (286)."""
        declared = self.declaration.members
        if declared is None:
            return
        live = {str(m.get("email", "")).lower(): m for m in self.live.members}
        owners = 0
        for member in declared:
            found = live.get(member.email.lower())
            label = member.email
            if found is None:
                details = [f"role {member.role}"] + (
                    [f"teams {', '.join(member.teams)}"] if member.teams else []
                )
                self.add(
                    Change(
                        "create",
                        "member",
                        label,
                        ["invite", *details],
                        run=lambda ctx, m=member: api.member_invite(
                            ctx.client, ctx.org, m.email, m.role, m.teams
                        ),
                    )
                )
                continue
            mid = None if found["id"] is None else str(found["id"])
            teams = list(found.get("teams") or [])
            if found.get("pending"):
                if found.get("role") != member.role or sorted(teams) != sorted(member.teams):

                    def reinvite(ctx: Context, m=member, i=mid) -> None:
                        api.member_delete(ctx.client, ctx.org, i)
                        api.member_invite(ctx.client, ctx.org, m.email, m.role, m.teams)

                    self.add(
                        Change(
                            "replace",
                            "member",
                            label,
                            [
                                f"pending invitation: role {found.get('role')} -> {member.role}, "
                                f"teams {teams} -> {list(member.teams)} (invited again)"
                            ],
                            run=reinvite,
                        )
                    )
                continue
            if member.role == "owner":
                owners += 1
            if found.get("role") != member.role:
                self.add(
                    Change(
                        "update",
                        "member",
                        label,
                        [f"role {found.get('role')} -> {member.role}"],
                        run=lambda ctx, i=mid, r=member.role, e=member.email: api.member_role(
                            ctx.client, ctx.org, member_id(ctx, i, e), r
                        ),
                    )
                )
            for team in member.teams:
                if team not in teams:
                    self.add(
                        Change(
                            "update",
                            "member",
                            label,
                            [f"add to team {team}"],
                            run=lambda ctx, i=mid, t=team, e=member.email: api.member_team_add(
                                ctx.client, ctx.org, member_id(ctx, i, e), t
                            ),
                        )
                    )
            for team in teams:
                if team not in member.teams:
                    self.add(
                        Change(
                            "update",
                            "member",
                            label,
                            [f"remove from team {team}"],
                            run=lambda ctx, i=mid, t=team, e=member.email: api.member_team_remove(
                                ctx.client, ctx.org, member_id(ctx, i, e), t
                            ),
                        )
                    )
        named = {m.email.lower() for m in declared}
        for email, found in live.items():
            if email in named:
                continue
            is_me = self.live.me is not None and email == self.live.me.lower()
            kept = is_me or not self.prune
            if kept and not found.get("pending") and found.get("role") == "owner":
                owners += 1
            if is_me:
                continue
            self.delete(
                Change(
                    "delete",
                    "member",
                    str(found.get("email")),
                    run=lambda ctx, i=str(found["id"]): api.member_delete(ctx.client, ctx.org, i),
                )
            )
        if self.live.org is not None and owners == 0:
            from provision.declare.parse import DeclarationError

            raise DeclarationError(
                "members: this would leave the organization without an owner (GlitchTip "
                "answers 422 'Organization must have at least one owner')",
                "keep at least one member who has accepted the invitation with role: owner",
            )

    def project(self, project: Project) -> None:
        live = self.live.projects.get(project.slug)
        if live is None:
            details = [f"platform {project.platform}"] if project.platform else []
            details.append(f"teams {', '.join(project.teams)}")

            def create(ctx: Context, p: Project = project) -> None:
                made = ctx.client.create_project(ctx.org, p.teams[0], p.name, p.platform)
                if made["slug"] != p.slug:
                    from provision.errors import ApiError

                    raise ApiError(
                        f"GlitchTip gave project {p.name!r} the slug {made['slug']!r}, "
                        f"not {p.slug!r}",
                        "rename the project in the declaration",
                    )
                ctx.project_ids[p.slug] = str(made["id"])
                for team in p.teams[1:]:
                    api.project_team_add(ctx.client, ctx.org, p.slug, team)

            self.add(Change("create", "project", project.slug, details, run=create))
            live = LiveProject({"slug": project.slug, "teams": [{"slug": project.teams[0]}]})
            # GlitchTip makes an unnamed default key with the project.
            live.keys = [{"name": "", "rateLimit": None, "id": None, "dsn": None}]
        else:
            self.project_fields(project, live)
        self.keys(project, live)
        self.alerts(project, live)
        self.dsn_files(project, live)

    def project_fields(self, project: Project, live: LiveProject) -> None:
        details = []
        if live.data.get("name") != project.name:
            details.append(f"name {live.data.get('name')!r} -> {project.name!r}")
        platform_changes = (
            project.platform is not None and live.data.get("platform") != project.platform
        )
        if platform_changes:
            details.append(f"platform {live.data.get('platform')} -> {project.platform}")
        if details:
            self.add(
                Change(
                    "update",
                    "project",
                    project.slug,
                    details,
                    run=lambda ctx, p=project: api.project_update(
                        ctx.client, ctx.org, p.slug, p.name, p.platform
                    ),
                )
            )
        for team in project.teams:
            if team not in live.teams:
                self.add(
                    Change(
                        "update",
                        "project",
                        project.slug,
                        [f"add team {team}"],
                        run=lambda ctx, p=project.slug, t=team: api.project_team_add(
                            ctx.client, ctx.org, p, t
                        ),
                    )
                )
        for team in live.teams:
            if team not in project.teams:
                self.add(
                    Change(
                        "update",
                        "project",
                        project.slug,
                        [f"remove team {team}"],
                        run=lambda ctx, p=project.slug, t=team: api.project_team_remove(
                            ctx.client, ctx.org, p, t
                        ),
                    )
                )

    def keys(self, project: Project, live: LiveProject) -> None:
        if project.keys is None:
            return
        matched: set[int] = set()
        for key in project.keys:
            found = next(
                (k for k in live.keys if k.get("name") == key.name and id(k) not in matched), None
            )
            label = f"{project.slug}/{key.name or '(unnamed)'}"
            if found is None:
                self.add(
                    Change(
                        "create",
                        "key",
                        label,
                        run=lambda ctx, p=project.slug, k=key: api.key_create(
                            ctx.client, ctx.org, p, k
                        ),
                    )
                )
                continue
            matched.add(id(found))
            if found.get("rateLimit") != _rate(key):

                def replace(
                    ctx: Context, p: str = project.slug, k: Key = key, old: Any = found["id"]
                ):
                    api.key_create(ctx.client, ctx.org, p, k)
                    if old is not None:
                        api.key_delete(ctx.client, ctx.org, p, str(old))

                self.add(
                    Change(
                        "replace",
                        "key",
                        label,
                        [
                            f"rate limit {found.get('rateLimit')} -> {_rate(key)}",
                            "new DSN (GlitchTip's key PUT saves nothing); DSN files rewritten",
                        ],
                        run=replace,
                    )
                )
        for old in live.keys:
            if id(old) not in matched and old.get("id") is None:
                # The unnamed key GlitchTip makes with a project this run creates.
                self.delete(
                    Change(
                        "delete",
                        "key",
                        f"{project.slug}/(unnamed)",
                        run=lambda ctx, p=project.slug: _delete_unnamed(ctx, p),
                    )
                )
            elif id(old) not in matched:
                self.delete(
                    Change(
                        "delete",
                        "key",
                        f"{project.slug}/{old.get('name') or '(unnamed)'}",
                        run=lambda ctx, p=project.slug, i=old["id"]: api.key_delete(
                            ctx.client, ctx.org, p, str(i)
                        ),
                    )
                )

    def alerts(self, project: Project, live: LiveProject) -> None:
        matched: set[Any] = set()
        for alert in project.alerts:
            found = next(
                (a for a in live.alerts if a.get("name") == alert.name and a["id"] not in matched),
                None,
            )
            label = f"{project.slug}/{alert.name}"
            if found is None:
                self.add(
                    Change(
                        "create",
                        "alert",
                        label,
                        _alert_details(alert),
                        run=lambda ctx, p=project.slug, a=alert: api.alert_create(
                            ctx.client, ctx.org, p, a
                        ),
                    )
                )
                continue
            matched.add(found["id"])
            if _live_alert_state(found) != _alert_state(alert):
                self.add(
                    Change(
                        "update",
                        "alert",
                        label,
                        _alert_diff(found, alert),
                        run=lambda ctx, p=project.slug, i=found["id"], a=alert: api.alert_update(
                            ctx.client, ctx.org, p, i, a
                        ),
                    )
                )
        for old in live.alerts:
            if old["id"] not in matched:
                self.delete(
                    Change(
                        "delete",
                        "alert",
                        f"{project.slug}/{old.get('name')}",
                        run=lambda ctx, p=project.slug, i=old["id"]: api.alert_delete(
                            ctx.client, ctx.org, p, i
                        ),
                    )
                )

    def dsn_files(self, project: Project, live: LiveProject) -> None:
        for dsn_file in project.dsn_files:
            keys = live.keys
            if project.keys is not None:
                keys = [k for k in keys if any(k.get("name") == d.name for d in project.keys)]
            if dsn_file.key is not None:
                keys = [k for k in keys if k.get("name") == dsn_file.key]
            key = keys[0] if keys else None
            dsn = (key.get("dsn") or {}).get("public") if key else None
            # The file changes when its key is the one replaced (a new DSN); a file of the
            # oldest key also when that one is replaced (the next oldest takes its place).
            replaced = {
                c.name for c in self.plan.changes if c.kind == "key" and c.action == "replace"
            }
            changing = key is not None and (
                f"{project.slug}/{key.get('name') or '(unnamed)'}" in replaced
            )
            target = DsnTarget(dsn_file, self.org, project.slug, dsn or "", self.server_url)
            self.plan.dsn_targets.append(target)
            if dsn is None or changing or needs_write(target):
                self.add(
                    Change("write", "dsn file", str(dsn_file.path), [f"format {dsn_file.format}"])
                )

    # --- monitors and deletes ---------------------------------------------------------------

    def project_id(self, name: str | None) -> str | None:
        if name is None:
            return None
        project = self.declaration.project(name)
        live = self.live.projects.get(project.slug) if project else None
        return str(live.data["id"]) if live and live.data.get("id") is not None else None

    def monitors(self) -> None:
        matched: set[Any] = set()
        for monitor in self.declaration.monitors:
            found = next(
                (
                    m
                    for m in self.live.monitors
                    if m.get("name") == monitor.name and m["id"] not in matched
                ),
                None,
            )
            project = self.declaration.project(monitor.project) if monitor.project else None
            slug = project.slug if project else None

            def pid(ctx: Context, s: str | None = slug) -> str | None:
                return None if s is None else ctx.project_ids.get(s)

            wanted = _monitor_fields(monitor, self.project_id(monitor.project))
            if found is None:
                self.add(
                    Change(
                        "create",
                        "monitor",
                        monitor.name,
                        [f"{monitor.type} {_shown_url(monitor.url, monitor.url_env)}".strip()],
                        run=lambda ctx, m=monitor, f=pid: api.monitor_create(
                            ctx.client, ctx.org, m, f(ctx)
                        ),
                    )
                )
                continue
            matched.add(found["id"])
            have = _live_monitor_fields(found)
            if have != wanted or (slug is not None and wanted["project"] is None):
                details = [
                    _field_change(k, have[k], wanted[k], monitor.url_env)
                    for k in wanted
                    if have[k] != wanted[k]
                ]
                self.add(
                    Change(
                        "update",
                        "monitor",
                        monitor.name,
                        details or ["project"],
                        run=lambda ctx, i=found["id"], m=monitor, f=pid: api.monitor_update(
                            ctx.client, ctx.org, i, m, f(ctx)
                        ),
                    )
                )
        for old in self.live.monitors:
            if old["id"] not in matched:
                self.delete(
                    Change(
                        "delete",
                        "monitor",
                        str(old.get("name")),
                        run=lambda ctx, i=old["id"]: api.monitor_delete(ctx.client, ctx.org, i),
                    )
                )

    def prune_projects_and_teams(self) -> None:
        declared = {p.slug for p in self.declaration.projects}
        for slug in self.live.projects:
            if slug not in declared:
                self.delete(
                    Change(
                        "delete",
                        "project",
                        slug,
                        run=lambda ctx, s=slug: api.project_delete(ctx.client, ctx.org, s),
                    )
                )
        for team in self.live.teams:
            if team not in self.declaration.teams:
                self.delete(
                    Change(
                        "delete",
                        "team",
                        team,
                        run=lambda ctx, t=team: api.team_delete(ctx.client, ctx.org, t),
                    )
                )


def _delete_unnamed(ctx: Context, project: str) -> None:
    for key in ctx.client.keys(ctx.org, project):
        if not key.get("name"):
            api.key_delete(ctx.client, ctx.org, project, str(key["id"]))


def member_id(ctx: Context, known: str | None, email: str) -> str:
    """A member's id: known from the plan's reads, or (the creator of an organization made by
    this apply) looked up by e-mail now."""
    if known is not None:
        return known
    for item in api.members(ctx.client, ctx.org):
        if str(item.get("email", "")).lower() == email.lower():
            return str(item["id"])
    from provision.errors import ApiError

    raise ApiError(f"GlitchTip lists no member {email} in {ctx.org}")


def _alert_details(alert: Alert) -> list[str]:
    details = []
    if alert.quantity is not None or alert.timespan_minutes is not None:
        details.append(f"{alert.quantity} events in {alert.timespan_minutes} minutes")
    if alert.uptime:
        details.append("uptime alerts")
    details.extend(_recipient_text(r.type, r.url, r.url_env) for r in alert.recipients)
    return details


def _shown_url(url: str, env: str | None = None) -> str:
    """A monitor URL as the plan prints it: its password masked (the plan is shown on terminals
    and in CI logs), and the variable it came from."""
    from provision.masking import mask_url_password

    shown = mask_url_password(url)
    return f"{shown} (${env})" if env else shown


def _field_change(name: str, have: Any, want: Any, env: str | None) -> str:
    """One changed monitor field; URLs with their passwords masked."""
    if name == "url":
        return f"url {_shown_url(str(have))!r} -> {_shown_url(str(want), env)!r}"
    return f"{name} {have!r} -> {want!r}"


def _recipient_text(kind: str, url: str, env: str | None = None) -> str:
    """A recipient for the plan: a webhook URL is a credential, so only its host is shown."""
    if kind == "email":
        return "recipient email"
    from urllib.parse import urlsplit

    where = f"${env}" if env else f"{urlsplit(url).hostname or '?'}/..."
    return f"recipient {kind} {where}"


def _alert_diff(data: dict, alert: Alert) -> list[str]:
    details = []
    for label, have, want in (
        ("quantity", data.get("quantity"), alert.quantity),
        ("timespan_minutes", data.get("timespanMinutes"), alert.timespan_minutes),
        ("uptime", bool(data.get("uptime")), alert.uptime),
    ):
        if have != want:
            details.append(f"{label} {have} -> {want}")
    have_r = {
        (str(r.get("recipientType")), str(r.get("url") or ""))
        for r in data.get("alertRecipients") or []
    }
    want_r = {(r.type, r.url) for r in alert.recipients}
    details.extend(f"+ {_recipient_text(*r)}" for r in sorted(want_r - have_r))
    details.extend(f"- {_recipient_text(*r)}" for r in sorted(have_r - want_r))
    return details


def make_plan(declaration: Declaration, live: Live, *, prune: bool, server_url: str) -> Plan:
    """The plan of `declaration` against `live`."""
    return Planner(declaration, live, prune, server_url).build()
