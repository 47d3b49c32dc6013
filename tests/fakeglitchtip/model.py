"""State operations and JSON shapes of the fake GlitchTip, as recorded from the real one.

Functions here take the state dict of one `Store.transaction()` and never do I/O, so the same
code serves the in-memory fake and the Postgres-backed stand-in image.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
import secrets
import unicodedata
import uuid
from typing import Any

from .store import State, Store

ALL_SCOPES = (
    "project:read",
    "project:write",
    "project:admin",
    "project:releases",
    "team:read",
    "team:write",
    "team:admin",
    "event:read",
    "event:write",
    "event:admin",
    "org:read",
    "org:write",
    "org:admin",
    "member:read",
    "member:write",
    "member:admin",
)
ORG_ACCESS = [
    "member:write",
    "team:write",
    "project:read",
    "org:write",
    "member:read",
    "event:write",
    "project:admin",
    "project:releases",
    "team:read",
    "team:admin",
    "org:integrations",
    "event:read",
    "event:admin",
    "org:admin",
    "org:read",
    "member:admin",
    "project:write",
]
# `access[]` of an org for a user whose role is member (recorded, 467).
MEMBER_ACCESS = [
    "project:read",
    "member:read",
    "event:admin",
    "team:read",
    "event:read",
    "project:releases",
    "event:write",
    "org:read",
]
ROLE_RANK = {"member": 0, "admin": 1, "manager": 2, "owner": 3}


def now_exact() -> str:
    """The current UTC time to the microsecond: GlitchTip's `received` (timezone.now(), set
    when the web queues an event and carried in the task), part of an event row's key."""
    return _dt.datetime.now(_dt.UTC).isoformat()


def now_iso() -> str:
    """The current UTC time the way GlitchTip's API writes it (milliseconds, Z)."""
    stamp = _dt.datetime.now(_dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def next_id(state: State, table: str) -> int:
    """The next value of a per-table sequence, like Django's autoincrement ids."""
    counters = state.setdefault("counters", {})
    counters[table] = counters.get(table, 0) + 1
    return counters[table]


def slugify(value: str) -> str:
    """Django's slugify: ASCII, lower case, runs of spaces/hyphens to one hyphen."""
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value.lower())
    return re.sub(r"[-\s]+", "-", value).strip("-_")


# --- users and tokens --------------------------------------------------------------------------


def _hash_password(password: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10_000).hex()
    return f"pbkdf2_sha256${salt}${digest}"


def check_password(user: dict, password: str) -> bool:
    """Whether `password` is the user's password."""
    _, salt, _ = user["password"].split("$")
    return hmac.compare_digest(_hash_password(password, salt), user["password"])


def find_user(state: State, email: str) -> dict | None:
    """The user with this e-mail (case-insensitive), or None."""
    for user in state["users"].values():
        if user["email"].lower() == email.lower():
            return user
    return None


def add_user(state: State, email: str, password: str, *, superuser: bool) -> dict:
    """Create a user (a superuser is also staff) and return it."""
    user_id = next_id(state, "user")
    user = {
        "id": user_id,
        "email": email,
        "password": _hash_password(password),
        "is_superuser": superuser,
        "is_staff": superuser,
        "date_joined": now_iso(),
        "last_login": None,
    }
    state["users"][str(user_id)] = user
    return user


def create_superuser(store: Store, email: str, password: str) -> bool:
    """`manage.py createsuperuser --noinput`: False when the e-mail is already taken."""
    with store.transaction() as state:
        if find_user(state, email) is not None:
            return False
        add_user(state, email, password, superuser=True)
        return True


def add_token(
    state: State, user: dict, scopes: list[str], label: str, token: str | None = None
) -> dict:
    """Create an API token for `user` and return its record."""
    record = {
        "id": next_id(state, "token"),
        "user_id": user["id"],
        "label": label,
        "scopes": list(scopes),
        "token": token or secrets.token_hex(32),
        "created": now_iso(),
    }
    state["tokens"][record["token"]] = record
    return record


def create_api_token(
    store: Store, email: str, scopes: list[str], label: str = "token", token: str | None = None
) -> str:
    """Mint a token for an existing user outside HTTP (like INITIAL_USER_AUTH_TOKEN); returns it."""
    with store.transaction() as state:
        user = find_user(state, email)
        if user is None:
            raise KeyError(email)
        return add_token(state, user, scopes, label, token)["token"]


def token_json(record: dict) -> dict:
    """APITokenSchema."""
    return {k: record[k] for k in ("id", "label", "scopes", "token", "created")}


def user_json(user: dict) -> dict:
    """UserSchema as `GET /api/0/` and the members list show it."""
    return {
        "id": str(user["id"]),
        "options": {
            "timezone": None,
            "stacktraceOrder": None,
            "language": None,
            "clock24Hours": None,
            "preferredTheme": None,
        },
        "username": user["email"],
        "dateJoined": user["date_joined"],
        "email": user["email"],
        "hasPasswordAuth": True,
        "identities": [],
        "lastLogin": user["last_login"],
        "isSuperuser": user["is_superuser"],
        "isActive": True,
        "name": "",
    }


def allauth_user_json(user: dict) -> dict:
    """The allauth headless `user` object."""
    return {
        "id": user["id"],
        "display": user["email"],
        "email": user["email"],
        "has_usable_password": True,
    }


# --- organizations, teams, projects, keys ---------------------------------------------------


def org_json(org: dict) -> dict:
    """OrganizationSchema (list items, nested in a project)."""
    return {
        "name": org["name"],
        "id": str(org["id"]),
        "dateCreated": org["created"],
        "status": {"id": "active", "name": "active"},
        "avatar": {"avatarType": "", "avatarUuid": None},
        "isEarlyAdopter": False,
        "require2fa": False,
        "slug": org["slug"],
        "isAcceptingEvents": True,
        "eventThrottleRate": 0,
    }


def org_detail_json(state: State, org: dict, user: dict | None = None) -> dict:
    """OrganizationDetailSchema: adds projects (with teams), teams and the caller's access.

    Soft-deleted projects still show here until the worker purges them (recorded, 65).
    """
    body = org_json(org)
    body["projects"] = [
        project_json(state, p, with_teams=True)
        for p in state["projects"].values()
        if p["org_id"] == org["id"]
    ]
    body["teams"] = [
        {k: v for k, v in team_json(state, t, user).items() if k != "projects"}
        for t in org_teams(state, org["id"])
    ]
    role = org_role(org, user) if user is not None else "owner"
    body["access"] = list(MEMBER_ACCESS if role == "member" else ORG_ACCESS)
    body["openMembership"] = True
    return body


def user_orgs(state: State, user: dict) -> list[dict]:
    """The organizations `user` belongs to, oldest first."""
    return [o for o in state["orgs"].values() if user["id"] in o["members"]]


def find_org(state: State, user: dict, slug: str) -> dict | None:
    """The org with this slug if `user` is a member of it."""
    for org in user_orgs(state, user):
        if org["slug"] == slug:
            return org
    return None


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def add_org(state: State, user: dict, name: str) -> dict:
    """Create an org; a taken slug gets a random two-character suffix, like GlitchTip."""
    base = slugify(name) or "org"
    taken = {o["slug"] for o in state["orgs"].values()}
    slug = base
    while slug in taken:
        suffix = secrets.choice(_LETTERS) + secrets.choice(_LETTERS + "0123456789")
        slug = f"{base}-{suffix}"
    org_id = next_id(state, "org")
    org = {
        "id": org_id,
        "name": name,
        "slug": slug,
        "created": now_iso(),
        "members": [user["id"]],
        "member_since": {str(user["id"]): now_iso()},
    }
    state["orgs"][str(org_id)] = org
    return org


def org_role(org: dict, user: dict) -> str:
    """The user's org role: as set in `roles`, else owner for the creator, member for others."""
    role = org.get("roles", {}).get(str(user["id"]))
    if role is not None:
        return str(role)
    if org["members"] and org["members"][0] == user["id"]:
        return "owner"
    return "member"


def org_owners(org: dict, state: State, besides: str = "") -> int:
    """How many org users other than `besides` own the organization, pending ones included."""
    accepted = [
        uid
        for uid in org["members"]
        if str(uid) != besides and org_role(org, state["users"][str(uid)]) == "owner"
    ]
    pending = [
        m for m, i in org.get("invites", {}).items() if m != besides and i["role"] == "owner"
    ]
    return len(accepted) + len(pending)


def pending_json(member_id: str, invite: dict) -> dict:
    """OrganizationUserSchema of an invitation not accepted yet: no user, `pending` (284)."""
    return {
        "id": member_id,
        "role": invite["role"],
        "roleName": invite["role"].capitalize(),
        "dateCreated": invite["created"],
        "email": invite["email"],
        "user": None,
        "pending": True,
        "isOwner": invite["role"] == "owner",
    }


def org_members_json(state: State, org: dict) -> list[dict]:
    """Accepted and pending members, newest first (recorded 289, 320)."""
    items = [
        (int(uid), member_json(state, org, state["users"][str(uid)])) for uid in org["members"]
    ]
    items += [(int(mid), pending_json(mid, inv)) for mid, inv in org.get("invites", {}).items()]
    return [item for _, item in sorted(items, key=lambda pair: -pair[0])]


def member_teams(state: State, org: dict, member_id: str) -> list[str]:
    """Slugs of the teams a member (accepted or pending) belongs to, oldest first (281, 290)."""
    invite = org.get("invites", {}).get(member_id)
    if invite is not None:
        return list(invite["teams"])
    return [t["slug"] for t in org_teams(state, org["id"]) if int(member_id) in t["members"]]


def role_at_least(org: dict, user: dict, role: str) -> bool:
    """Whether the user's org role ranks at least `role` (member < admin < manager < owner)."""
    return ROLE_RANK[org_role(org, user)] >= ROLE_RANK[role]


def member_json(state: State, org: dict, user: dict) -> dict:
    """OrganizationUserSchema."""
    role = org_role(org, user)
    owner = role == "owner"
    return {
        "id": str(user["id"]),
        "role": role,
        "roleName": role.capitalize(),
        "dateCreated": org["member_since"].get(str(user["id"]), org["created"]),
        "email": user["email"],
        "user": user_json(user),
        "pending": False,
        "isOwner": bool(owner),
    }


def org_teams(state: State, org_id: int) -> list[dict]:
    """Teams of an org, oldest first."""
    return [t for t in state["teams"].values() if t["org_id"] == org_id]


def find_team(state: State, org_id: int, slug: str) -> dict | None:
    """The team with this slug in the org, or None."""
    for team in org_teams(state, org_id):
        if team["slug"] == slug:
            return team
    return None


def add_team(state: State, org: dict, slug: str, user: dict) -> dict:
    """Create a team (the caller has checked that the slug is free)."""
    team_id = next_id(state, "team")
    team = {
        "id": team_id,
        "org_id": org["id"],
        "slug": slug,
        "created": now_iso(),
        "members": [user["id"]],
    }
    state["teams"][str(team_id)] = team
    return team


def team_json(state: State, team: dict, user: dict | None = None) -> dict:
    """TeamProjectSchema; `isMember` is the caller's membership (None: the creator's view)."""
    return {
        "id": str(team["id"]),
        "slug": team["slug"],
        "dateCreated": team["created"],
        "isMember": user is None or user["id"] in team["members"],
        "memberCount": len(team["members"]),
        "projects": [
            project_json(state, p, user=user)
            for p in state["projects"].values()
            if team["id"] in p["team_ids"] and not p["deleted"]
        ],
    }


def org_projects(state: State, org_id: int) -> list[dict]:
    """Live (not deleted) projects of an org, oldest first."""
    return [p for p in state["projects"].values() if p["org_id"] == org_id and not p["deleted"]]


def find_project(state: State, org_id: int, slug: str) -> dict | None:
    """The live project with this slug in the org, or None."""
    for project in org_projects(state, org_id):
        if project["slug"] == slug:
            return project
    return None


def add_project(
    state: State, org: dict, team: dict, name: str, platform: str | None, slug: str | None
) -> dict:
    """Create a project under a team; a taken slug gets -2, -3..., and a default key is made."""
    base = slugify(slug or name) or "project"
    taken = {p["slug"] for p in state["projects"].values() if p["org_id"] == org["id"]}
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    project_id = next_id(state, "project")
    project = {
        "id": project_id,
        "org_id": org["id"],
        "name": name,
        "slug": candidate,
        "platform": platform,
        "team_ids": [team["id"]],
        "created": now_iso(),
        "first_event": None,
        "deleted": False,
    }
    state["projects"][str(project_id)] = project
    add_key(state, project, "", None)
    return project


def project_json(
    state: State,
    project: dict,
    *,
    with_teams: bool = False,
    with_org: bool = False,
    user: dict | None = None,
) -> dict:
    """ProjectSchema, optionally with `teams` (org lists) or `organization` (detail).

    `isMember`: the caller is in one of the project's teams (False once its last team is
    removed, recorded 350); without a caller, whether any team holds it.
    """
    teams = [state["teams"][str(t)] for t in project["team_ids"] if str(t) in state["teams"]]
    member = any(user["id"] in t["members"] for t in teams) if user else bool(teams)
    body: dict[str, Any] = {
        "name": project["name"],
        "slug": project["slug"],
        "id": str(project["id"]),
        "avatar": {"avatarType": "", "avatarUuid": None},
        "color": "",
        "features": [],
        "hasAccess": True,
        "isBookmarked": False,
        "isInternal": False,
        "isMember": member,
        "isPublic": False,
        "scrubIPAddresses": True,
        "dateCreated": project["created"],
        "platform": project["platform"],
        "firstEvent": project["first_event"],
        "eventThrottleRate": project.get("event_throttle_rate", 0),
    }
    if with_teams:
        body["teams"] = [
            {"id": str(t), "slug": state["teams"][str(t)]["slug"]}
            for t in project["team_ids"]
            if str(t) in state["teams"]
        ]
    if with_org:
        body["organization"] = org_json(state["orgs"][str(project["org_id"])])
    return body


def add_key(state: State, project: dict, name: str, rate_limit: dict | None) -> dict:
    """Create a client key (DSN) for a project."""
    key = {
        "uuid": str(uuid.uuid4()),
        "project_id": project["id"],
        "name": name,
        "rate_limit": rate_limit,
        "created": now_iso(),
    }
    state["keys"][key["uuid"]] = key
    return key


def project_keys(state: State, project_id: int) -> list[dict]:
    """Keys of a project, newest first (as GlitchTip lists them)."""
    keys = [k for k in state["keys"].values() if k["project_id"] == project_id]
    return sorted(keys, key=lambda k: k["created"], reverse=True)


def find_key_by_public(state: State, public: str) -> dict | None:
    """The key whose public key is `public` (dashed UUID or 32 hex), or None."""
    try:
        canonical = str(uuid.UUID(public))
    except ValueError:
        return None
    return state["keys"].get(canonical)


def key_json(key: dict, domain: str) -> dict:
    """ProjectKeySchema; the DSN's scheme and host come from GLITCHTIP_DOMAIN."""
    scheme, _, host = domain.rstrip("/").partition("://")
    hexkey = uuid.UUID(key["uuid"]).hex
    dsn = f"{scheme}://{hexkey}@{host}/{key['project_id']}"
    return {
        "name": key["name"],
        "rateLimit": key["rate_limit"],
        "dateCreated": key["created"],
        "id": key["uuid"],
        "dsn": {
            "public": dsn,
            "secret": dsn,
            "security": f"{scheme}://{host}/api/{key['project_id']}/security/?glitchtip_key={hexkey}",
        },
        "label": key["name"],
        "public": key["uuid"],
        "projectID": key["project_id"],
    }


# --- alerts and monitors -----------------------------------------------------------------------


def alert_json(alert: dict) -> dict:
    """ProjectAlertSchema."""
    return {
        "alertRecipients": [
            {k: r[k] for k in ("id", "recipientType", "url")} for r in alert["recipients"]
        ],
        "id": alert["id"],
        "name": alert["name"],
        "timespanMinutes": alert["timespanMinutes"],
        "quantity": alert["quantity"],
        "uptime": alert["uptime"],
    }


def monitor_json(
    state: State, monitor: dict, domain: str, *, checks_limit: int = 60, detail: bool = False
) -> dict:
    """MonitorSchema with the latest checks embedded (the detail view adds `responseTime`)."""
    project = state["projects"].get(str(monitor["project_id"])) if monitor["project_id"] else None
    org = state["orgs"][str(monitor["org_id"])]
    checks = monitor_checks(state, monitor["id"])[:checks_limit]
    endpoint = monitor["endpoint_id"]
    return {
        "projectID": str(monitor["project_id"]) if monitor["project_id"] else None,
        "environmentID": None,
        "isUp": checks[0]["isUp"] if checks else None,
        "lastChange": monitor.get("last_change"),
        "heartbeatEndpoint": (
            f"{domain.rstrip('/')}/api/0/organizations/{org['slug']}/heartbeat_check/{endpoint}/"
            if endpoint
            else None
        ),
        "projectName": project["name"] if project else None,
        "envName": None,
        "checks": [
            {
                k: c[k]
                for k in ("isUp", "startCheck", "reason", "responseTime")[: 4 if detail else 3]
            }
            for c in checks
        ],
        "organizationID": monitor["org_id"],
        "monitorType": monitor["monitorType"],
        "id": monitor["id"],
        "endpointID": endpoint,
        "created": monitor["created"],
        "name": monitor["name"],
        "url": monitor["url"],
        "expectedStatus": monitor["expectedStatus"],
        "expectedBody": monitor["expectedBody"],
        "interval": monitor["interval"],
        "timeout": monitor["timeout"],
    }


def monitor_checks(state: State, monitor_id: int) -> list[dict]:
    """Checks of a monitor, newest first."""
    checks = [c for c in state["checks"].values() if c["monitor_id"] == monitor_id]
    return sorted(checks, key=lambda c: c["seq"], reverse=True)


def add_check(
    state: State, monitor: dict, is_up: bool, reason: str | None, response_time: int | None
) -> dict:
    """Record one uptime check result; keeps `lastChange` up to date."""
    previous = monitor_checks(state, monitor["id"])
    seq = next_id(state, "check")
    check = {
        "seq": seq,
        "monitor_id": monitor["id"],
        "isUp": is_up,
        "startCheck": now_iso(),
        "reason": reason,
        "responseTime": response_time,
    }
    state["checks"][str(seq)] = check
    if not previous or previous[0]["isUp"] != is_up:
        state["monitors"][str(monitor["id"])]["last_change"] = now_iso()[:-1] + "000Z"
    return check


# --- issues and events ----------------------------------------------------------------------


def issue_json(state: State, issue: dict, domain: str, *, detail: bool = False) -> dict:
    """IssueSchema (the detail view adds `userReportCount`)."""
    project = state["projects"][str(issue["project_id"])]
    body = {
        "id": str(issue["id"]),
        "count": str(issue["count"]),
        "type": "error",
        "level": issue["level"],
        "status": issue.get("status", "unresolved"),
        "project": {
            "id": str(project["id"]),
            "platform": project["platform"],
            "slug": project["slug"],
            "name": project["name"],
        },
        "shortId": f"{project['slug'].upper()}-{issue['short_id']}",
        "numComments": 0,
        "stats": {"24h": []},
        "shareId": None,
        "logger": None,
        "permalink": f"{domain.rstrip('/')}/{project['slug']}/issues/{issue['id']}",
        "statusDetails": {},
        "subscriptionDetails": None,
        "userCount": 0,
        "matchingEventId": None,
        "firstSeen": issue["first_seen"],
        "lastSeen": issue["last_seen"],
        "title": issue["title"],
        "metadata": dict(issue["metadata"]),
        "culprit": issue["culprit"],
    }
    if detail:
        body["userReportCount"] = 0
    return body


def event_json(event: dict, *, snake: bool = False, detail: bool = False) -> dict:
    """EventSchema; the issue-events list uses snake_case ids, the latest-event view adds links."""
    ids = (
        {
            "event_id": event["event_id"],
            "project_id": event["project_id"],
            "group_id": str(event["issue_id"]),
            "date_created": event["date_created"],
            "date_received": event["date_received"],
        }
        if snake
        else {
            "eventID": event["event_id"],
            "projectID": event["project_id"],
            "groupID": str(event["issue_id"]),
            "dateCreated": event["date_created"],
            "dateReceived": event["date_received"],
        }
    )
    body: dict[str, Any] = {"platform": event["platform"], "errors": None, "id": event["event_id"]}
    body.update(ids)
    body.update(
        {
            "dist": None,
            "culprit": event["culprit"],
            "packages": None,
            "type": "error",
            "message": event["title"],
            "metadata": dict(event["metadata"]),
            "tags": [],
            "entries": [dict(e) for e in event["entries"]],
            "contexts": None,
            "context": None,
            "user": None,
            "sdk": None,
            "title": event["title"],
        }
    )
    if detail:
        body.update({"userReport": None, "nextEventID": None, "previousEventID": None})
    return body


def add_release(
    state: State,
    org: dict,
    version: str,
    project_ids: list[int],
    ref: str | None = None,
    date_released: str | None = None,
) -> dict:
    """A release of the org; `dateReleased` defaults to now (recorded 242)."""
    release_id = next_id(state, "release")
    created = now_iso()
    release = {
        "id": release_id,
        "org_id": org["id"],
        "version": version,
        "ref": ref,
        "date_released": date_released or created,
        "created": created,
        "project_ids": sorted(project_ids),
    }
    state.setdefault("releases", {})[str(release_id)] = release
    return release


def release_json(state: State, release: dict) -> dict:
    """ReleaseSchema (recorded 242): projects by name and slug, no deploys, no URL."""
    projects = [state["projects"][str(pid)] for pid in release["project_ids"]
                if str(pid) in state["projects"]]  # fmt: skip
    return {
        "ref": release["ref"],
        "dateReleased": release["date_released"],
        "version": release["version"],
        "dateCreated": release["created"],
        "shortVersion": release["version"],
        "projects": [{"name": p["name"], "slug": p["slug"]} for p in projects],
        "url": None,
        "data": {},
        "deployCount": 0,
    }
