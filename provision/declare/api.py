"""The GlitchTip endpoints `plan`, `apply` and `export` call, on top of `GlitchTipClient`.

Each function is one recorded endpoint (NOTES.md, recordings 40-89 and 280-467); the bodies are
built here from the declaration's model so the quirks live in one place: a key PUT saves
nothing (so keys are never PUT), an alert PUT without `alertRecipients` deletes them (so it is
always sent), a monitor PUT without `project` unlinks it (so it is always sent).
"""

from __future__ import annotations

from typing import Any

from provision.api.client import GlitchTipClient, q
from provision.declare.model import Alert, Key, Monitor


def team_delete(client: GlitchTipClient, org: str, team: str) -> None:
    client.request("DELETE", f"/api/0/teams/{q(org)}/{q(team)}/", action=f"delete team {team}")


def project_update(
    client: GlitchTipClient, org: str, project: str, name: str, platform: str | None
) -> dict:
    """PUT needs `name` even to change only the platform (recorded 331)."""
    body: dict[str, Any] = {"name": name}
    if platform is not None:
        body["platform"] = platform
    return client.request(
        "PUT",
        f"/api/0/projects/{q(org)}/{q(project)}/",
        json=body,
        action=f"update project {project}",
    )


def project_delete(client: GlitchTipClient, org: str, project: str) -> None:
    client.request(
        "DELETE", f"/api/0/projects/{q(org)}/{q(project)}/", action=f"delete project {project}"
    )


def project_team_add(client: GlitchTipClient, org: str, project: str, team: str) -> None:
    client.request(
        "POST",
        f"/api/0/projects/{q(org)}/{q(project)}/teams/{q(team)}/",
        action=f"add team {team} to project {project}",
    )


def project_team_remove(client: GlitchTipClient, org: str, project: str, team: str) -> None:
    client.request(
        "DELETE",
        f"/api/0/projects/{q(org)}/{q(project)}/teams/{q(team)}/",
        action=f"remove team {team} from project {project}",
    )


def key_create(client: GlitchTipClient, org: str, project: str, key: Key) -> dict:
    """A new key; `rateLimit` is stored only at creation (recorded 357-360)."""
    body: dict[str, Any] = {"name": key.name}
    if key.rate_limit is not None:
        body["rateLimit"] = {"window": key.rate_limit.window, "count": key.rate_limit.count}
    return client.request(
        "POST",
        f"/api/0/projects/{q(org)}/{q(project)}/keys/",
        json=body,
        action=f"create a client key in {project}",
    )


def key_delete(client: GlitchTipClient, org: str, project: str, key_id: str) -> None:
    client.request(
        "DELETE",
        f"/api/0/projects/{q(org)}/{q(project)}/keys/{q(key_id)}/",
        action=f"delete a client key of {project}",
    )


def alerts(client: GlitchTipClient, org: str, project: str) -> list[dict]:
    return client.paginate(
        f"/api/0/projects/{q(org)}/{q(project)}/alerts/", action=f"list the alerts of {project}"
    )


def alert_body(alert: Alert) -> dict[str, Any]:
    """The full body: every field and every recipient, for create and update alike."""
    return {
        "name": alert.name,
        "timespanMinutes": alert.timespan_minutes,
        "quantity": alert.quantity,
        "uptime": alert.uptime,
        "alertRecipients": [{"recipientType": r.type, "url": r.url} for r in alert.recipients],
    }


def alert_create(client: GlitchTipClient, org: str, project: str, alert: Alert) -> dict:
    return client.request(
        "POST",
        f"/api/0/projects/{q(org)}/{q(project)}/alerts/",
        json=alert_body(alert),
        action=f"create alert {alert.name!r}",
    )


def alert_update(client: GlitchTipClient, org: str, project: str, alert_id: Any, alert: Alert):
    return client.request(
        "PUT",
        f"/api/0/projects/{q(org)}/{q(project)}/alerts/{alert_id}/",
        json=alert_body(alert),
        action=f"update alert {alert.name!r}",
    )


def alert_delete(client: GlitchTipClient, org: str, project: str, alert_id: Any) -> None:
    client.request(
        "DELETE",
        f"/api/0/projects/{q(org)}/{q(project)}/alerts/{alert_id}/",
        action=f"delete an alert of {project}",
    )


def monitors(client: GlitchTipClient, org: str) -> list[dict]:
    """The org's monitors. One of a type GlitchTip does not know makes every list an HTML 500
    until it is deleted (recorded 424, 428): say so."""
    from provision.errors import ApiError

    try:
        return client.paginate(f"/api/0/organizations/{q(org)}/monitors/", action="list monitors")
    except ApiError as error:
        if error.status == 500:
            raise ApiError(
                f"{error.message} (GlitchTip does this when a monitor of a type it does not know "
                "exists)",
                "delete that monitor in GlitchTip's web UI (Uptime Monitors), then run again",
                status=500,
            ) from None
        raise


def monitor_body(monitor: Monitor, project_id: str | None) -> dict[str, Any]:
    """The full body a create and an update both need (a PUT without the `expected*`/`timeout`
    fields is a 422, recorded 448; without `project` it unlinks it, recorded 447)."""
    body: dict[str, Any] = {
        "monitorType": monitor.type,
        "name": monitor.name,
        "url": monitor.url,
        "interval": monitor.interval,
        "expectedBody": monitor.expected_body,
        "expectedStatus": monitor.expected_status,
        "timeout": monitor.timeout,
    }
    if project_id is not None:
        body["project"] = str(project_id)
    return body


def monitor_create(client: GlitchTipClient, org: str, monitor: Monitor, project_id: str | None):
    return client.request(
        "POST",
        f"/api/0/organizations/{q(org)}/monitors/",
        json=monitor_body(monitor, project_id),
        action=f"create monitor {monitor.name!r}",
    )


def monitor_update(
    client: GlitchTipClient, org: str, monitor_id: Any, monitor: Monitor, project_id: str | None
) -> dict:
    return client.request(
        "PUT",
        f"/api/0/organizations/{q(org)}/monitors/{monitor_id}/",
        json=monitor_body(monitor, project_id),
        action=f"update monitor {monitor.name!r}",
    )


def monitor_delete(client: GlitchTipClient, org: str, monitor_id: Any) -> None:
    client.request(
        "DELETE", f"/api/0/organizations/{q(org)}/monitors/{monitor_id}/", action="delete a monitor"
    )


MEMBER_SCOPE_FIX = (
    "members need a token with member:read, member:write and member:admin, which tokens minted "
    "by an older kit lack: give --token, or delete GLITCHTIP_API_TOKEN from .env to mint a new one"
)


def members(client: GlitchTipClient, org: str) -> list[dict]:
    """Accepted and pending members (member:read)."""
    from provision.errors import ApiError

    try:
        return client.paginate(f"/api/0/organizations/{q(org)}/members/", action="list members")
    except ApiError as error:
        if error.status == 403:
            raise ApiError(f"{error.message}", MEMBER_SCOPE_FIX, status=403) from None
        raise


def member(client: GlitchTipClient, org: str, member_id: str) -> dict:
    """One member with its `teams` (the list has none, recorded 281/290)."""
    return client.request(
        "GET",
        f"/api/0/organizations/{q(org)}/members/{q(member_id)}/",
        action="read a member",
    )


def member_invite(client: GlitchTipClient, org: str, email: str, role: str, teams) -> dict:
    """Invite (201, pending). `reinvite: false`: an existing invitation is a 409 instead of a
    silently unchanged member (recorded 286, 287). With registration closed an e-mail without
    an account is a 403 (282)."""
    from provision.errors import ApiError

    body = {
        "email": email,
        "orgRole": role,
        "teamRoles": [{"teamSlug": team} for team in teams],
        "reinvite": False,
    }
    try:
        return client.request(
            "POST", f"/api/0/organizations/{q(org)}/members/", json=body, action=f"invite {email}"
        )
    except ApiError as error:
        if error.status == 403 and "existing users" in error.message:
            raise ApiError(
                f"GlitchTip invites only existing users and {email} has no account "
                "(registration is closed)",
                "let them sign up first (or open registration), then run apply again",
                status=403,
            ) from None
        raise


def member_role(client: GlitchTipClient, org: str, member_id: str, role: str) -> dict:
    return client.request(
        "PUT",
        f"/api/0/organizations/{q(org)}/members/{q(member_id)}/",
        json={"orgRole": role},
        action="change a member's role",
    )


def member_delete(client: GlitchTipClient, org: str, member_id: str) -> None:
    client.request(
        "DELETE",
        f"/api/0/organizations/{q(org)}/members/{q(member_id)}/",
        action="remove a member",
    )


def member_team_add(client: GlitchTipClient, org: str, member_id: str, team: str) -> None:
    """201, idempotent (recorded 300, 301)."""
    client.request(
        "POST",
        f"/api/0/organizations/{q(org)}/members/{q(member_id)}/teams/{q(team)}/",
        action=f"add a member to team {team}",
    )


def member_team_remove(client: GlitchTipClient, org: str, member_id: str, team: str) -> None:
    """200, idempotent (recorded 306, 307)."""
    client.request(
        "DELETE",
        f"/api/0/organizations/{q(org)}/members/{q(member_id)}/teams/{q(team)}/",
        action=f"remove a member from team {team}",
    )
