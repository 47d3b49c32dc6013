"""What GlitchTip holds now, read with GET requests only, in the shape the diff compares.

Only what the declaration can touch is read: the organization, its teams, projects and monitors,
and the keys and alerts of the declared projects (undeclared projects are only deleted, with
`--prune`, never looked into).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provision.api.client import GlitchTipClient
from provision.declare import api
from provision.declare.model import Declaration


@dataclass
class LiveProject:
    """A project as listed, with its keys and alerts (read for declared projects only)."""

    data: dict
    keys: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return str(self.data["slug"])

    @property
    def teams(self) -> list[str]:
        return [str(t.get("slug")) for t in self.data.get("teams") or []]


@dataclass
class Live:
    """The organization's state; `org` None: it does not exist yet (everything is created)."""

    org: dict | None
    teams: list[str] = field(default_factory=list)
    projects: dict[str, LiveProject] = field(default_factory=dict)
    monitors: list[dict] = field(default_factory=list)
    members: list[dict] = field(default_factory=list)  # each with its `teams` (detail)
    me: str | None = None  # the token's user's e-mail

    def project_by_id(self, project_id: Any) -> LiveProject | None:
        return next(
            (p for p in self.projects.values() if str(p.data.get("id")) == str(project_id)), None
        )


def find_org(orgs: list[dict], wanted: str) -> dict | None:
    """The organization named or slugged `wanted` (its slug may differ from the name)."""
    from provision.provisioning import slugify

    for test in (
        lambda o: o.get("slug") == wanted,
        lambda o: o.get("name") == wanted,
        lambda o: o.get("slug") == slugify(wanted),
    ):
        match = next((o for o in orgs if test(o)), None)
        if match is not None:
            return match
    return None


def oldest(items: list[dict]) -> list[dict]:
    """`items` oldest first (GlitchTip's lists are newest first or unordered)."""
    return sorted(items, key=lambda item: (str(item.get("dateCreated", "")), str(item.get("id"))))


def read_live(client: GlitchTipClient, declaration: Declaration) -> Live:
    """GET what the declaration is compared with."""
    org = find_org(client.organizations(), declaration.organization)
    if org is None:
        live = Live(None)
        if declaration.members is not None:
            # The creator of the organization will be its owner and a member of every team
            # it creates (recorded 42: isMember true); its member id is looked up when needed.
            me = str((client.whoami().get("user") or {}).get("email") or "") or None
            live.me = me
            if me is not None:
                teams = list(declaration.teams)
                live.members = [{"id": None, "email": me, "role": "owner", "teams": teams}]
        return live
    slug = str(org["slug"])
    live = Live(org)
    live.teams = [str(t["slug"]) for t in client.teams(slug)]
    for item in client.projects(slug):
        live.projects[str(item["slug"])] = LiveProject(item)
    for project in declaration.projects:
        found = live.projects.get(project.slug)
        if found is None:
            continue
        found.keys = oldest(client.keys(slug, project.slug))
        found.alerts = sorted(api.alerts(client, slug, project.slug), key=lambda a: int(a["id"]))
    live.monitors = sorted(api.monitors(client, slug), key=lambda m: int(m["id"]))
    if declaration.members is not None:
        me = client.whoami().get("user") or {}
        live.me = str(me.get("email") or "") or None
        live.members = [
            api.member(client, slug, str(m["id"]))
            for m in sorted(api.members(client, slug), key=lambda m: int(m["id"]))
        ]
    return live
