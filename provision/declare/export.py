"""The declaration of a live GlitchTip organization, as YAML that `apply` reads back as "no
changes".

No secret goes into it: no DSN, no token, no webhook URL (a Slack or Discord webhook URL is
a credential) and no monitor URL carrying a password: each is written as
`url_env: <VARIABLE>`, and with `secrets_out` the variables' values go to a separate dotenv
file (0600) to load before `plan`/`apply`.
Keys are exported by name and rate limit; DSN files are local and not exported. Members are
exported with their role and teams, pending invitations too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from provision.declare import api
from provision.declare.live import find_org, oldest
from provision.errors import UsageError
from provision.masking import url_passwords


def _env_name(*parts: str) -> str:
    text = "_".join(parts).upper()
    return re.sub(r"[^A-Z0-9_]", "_", text)[:120]


def export_org(
    client: Any, organization: str, *, include_urls: bool = False
) -> tuple[dict, dict[str, str]]:
    """(the declaration as data, {variable: webhook URL}) of `organization`."""
    org = find_org(client.organizations(), organization)
    if org is None:
        raise UsageError(
            f"GlitchTip has no organization {organization!r}",
            "give --org the name or slug of an existing organization",
        )
    slug = str(org["slug"])
    secrets: dict[str, str] = {}
    teams = sorted(str(t["slug"]) for t in client.teams(slug))
    projects: list[dict] = []
    names: dict[str, str] = {}
    for item in sorted(client.projects(slug), key=lambda p: str(p["slug"])):
        project_slug = str(item["slug"])
        names[str(item["id"])] = str(item["name"])
        entry: dict[str, Any] = {"name": item["name"]}
        if item.get("platform"):
            entry["platform"] = item["platform"]
        entry["teams"] = sorted(str(t["slug"]) for t in item.get("teams") or [])
        entry["keys"] = []
        for key in oldest(client.keys(slug, project_slug)):
            key_entry: dict[str, Any] = {"name": key.get("name") or ""}
            if key.get("rateLimit"):
                key_entry["rate_limit"] = {
                    "window": key["rateLimit"]["window"],
                    "count": key["rateLimit"]["count"],
                }
            entry["keys"].append(key_entry)
        alerts = []
        for index, alert in enumerate(
            sorted(api.alerts(client, slug, project_slug), key=lambda a: int(a["id"]))
        ):
            alert_entry: dict[str, Any] = {"name": alert.get("name") or ""}
            for field, name in (("quantity", "quantity"), ("timespanMinutes", "timespan_minutes")):
                if alert.get(field) is not None:
                    alert_entry[name] = alert[field]
            if alert.get("uptime"):
                alert_entry["uptime"] = True
            recipients = []
            for rindex, recipient in enumerate(alert.get("alertRecipients") or []):
                kind = recipient.get("recipientType")
                if kind == "email":
                    recipients.append({"type": "email"})
                elif include_urls:
                    recipients.append({"type": kind, "url": recipient.get("url")})
                else:
                    variable = _env_name("GLITCHTIP_HOOK", project_slug, str(index), str(rindex))
                    secrets[variable] = str(recipient.get("url") or "")
                    recipients.append({"type": kind, "url_env": variable})
            if recipients:
                alert_entry["recipients"] = recipients
            alerts.append(alert_entry)
        if alerts:
            entry["alerts"] = alerts
        projects.append(entry)
    monitors = []
    for monitor in sorted(api.monitors(client, slug), key=lambda m: int(m["id"])):
        entry = {"name": monitor.get("name"), "type": monitor.get("monitorType")}
        url = str(monitor.get("url") or "")
        if url and url_passwords(url):
            # a URL with a user and password is a credential: always a variable (the parser
            # refuses it written in the file, even with --include-urls)
            variable = _env_name("GLITCHTIP_MONITOR", str(monitor.get("id")), "URL")
            secrets[variable] = url
            entry["url_env"] = variable
        elif url:
            entry["url"] = url
        entry["interval"] = monitor.get("interval")
        for field, name in (("timeout", "timeout"), ("expectedStatus", "expected_status")):
            if monitor.get(field) is not None:
                entry[name] = monitor[field]
        if monitor.get("expectedBody"):
            entry["expected_body"] = monitor["expectedBody"]
        if monitor.get("projectID") is not None and str(monitor["projectID"]) in names:
            entry["project"] = names[str(monitor["projectID"])]
        monitors.append(entry)
    members = []
    for item in sorted(api.members(client, slug), key=lambda m: int(m["id"])):
        detail = api.member(client, slug, str(item["id"]))
        entry = {"email": item.get("email"), "role": item.get("role")}
        if detail.get("teams"):
            entry["teams"] = sorted(detail["teams"])
        members.append(entry)
    data: dict[str, Any] = {"organization": slug, "teams": teams, "members": members}
    data["projects"] = projects
    if monitors:
        data["monitors"] = monitors
    return data, secrets


def to_yaml(data: dict) -> str:
    import yaml

    header = "# Exported by `provision export`; apply it with `provision apply`.\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def write_secrets(path: Path, secrets: dict[str, str]) -> bool:
    from provision.envfile import update_env_file

    header = "# URLs kept out of the exported declaration (webhooks, monitors with a password)\n"
    return update_env_file(path, secrets, header=header)
