"""Which recorded endpoints the kit calls, and which ones the fake does not implement.

An endpoint is named by its method and path template (`GET /api/0/organizations/{org}/teams/`).
The fake's routes come from its own route table, so a route added to the fake is replayed
against its recordings from then on without an edit here.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fakeglitchtip.app import _COMPILED

# Every endpoint the kit's code calls: provision/api/client.py (the provisioning API),
# provision/api/bootstrap.py (the allauth login and the token), provision/stack/start.py and
# status.py (readiness probes), and the ingest endpoints its DSN is used with.
KIT_ENDPOINTS = frozenset(
    {
        ("GET", "/api/0/"),
        ("GET", "/api/0/organizations/"),
        ("POST", "/api/0/organizations/"),
        ("GET", "/api/0/organizations/{org}/teams/"),
        ("POST", "/api/0/organizations/{org}/teams/"),
        ("GET", "/api/0/organizations/{org}/projects/"),
        ("POST", "/api/0/teams/{org}/{team}/projects/"),
        ("GET", "/api/0/projects/{org}/{project}/keys/"),
        ("POST", "/api/0/projects/{org}/{project}/keys/"),
        # provision/declare/api.py (plan, apply, export)
        ("DELETE", "/api/0/teams/{org}/{team}/"),
        ("PUT", "/api/0/projects/{org}/{project}/"),
        ("DELETE", "/api/0/projects/{org}/{project}/"),
        ("POST", "/api/0/projects/{org}/{project}/teams/{team}/"),
        ("DELETE", "/api/0/projects/{org}/{project}/teams/{team}/"),
        ("DELETE", "/api/0/projects/{org}/{project}/keys/{key_id}/"),
        ("GET", "/api/0/projects/{org}/{project}/alerts/"),
        ("POST", "/api/0/projects/{org}/{project}/alerts/"),
        ("PUT", "/api/0/projects/{org}/{project}/alerts/{alert_id}/"),
        ("DELETE", "/api/0/projects/{org}/{project}/alerts/{alert_id}/"),
        ("GET", "/api/0/organizations/{org}/monitors/"),
        ("POST", "/api/0/organizations/{org}/monitors/"),
        ("PUT", "/api/0/organizations/{org}/monitors/{monitor_id}/"),
        ("DELETE", "/api/0/organizations/{org}/monitors/{monitor_id}/"),
        ("GET", "/api/0/organizations/{org}/members/"),
        ("POST", "/api/0/organizations/{org}/members/"),
        ("GET", "/api/0/organizations/{org}/members/{member_id}/"),
        ("PUT", "/api/0/organizations/{org}/members/{member_id}/"),
        ("DELETE", "/api/0/organizations/{org}/members/{member_id}/"),
        ("POST", "/api/0/organizations/{org}/members/{member_id}/teams/{team}/"),
        ("DELETE", "/api/0/organizations/{org}/members/{member_id}/teams/{team}/"),
        ("GET", "/_allauth/browser/v1/config"),
        ("POST", "/_allauth/browser/v1/auth/login"),
        ("DELETE", "/_allauth/browser/v1/auth/session"),
        ("POST", "/api/0/api-tokens/"),
        ("GET", "/_health/"),
        ("GET", "/api/settings/"),
        ("POST", "/api/{project_id}/envelope/"),
        ("POST", "/api/{project_id}/store/"),
    }
)

# (position after which a segment is a variable, its name) for path templates.
_NAMED = (
    (("api", "0", "organizations"), "{org}"),
    (("api", "0", "teams"), "{org}"),
    (("api", "0", "projects"), "{org}"),
    (("api", "0", "issues"), "{issue_id}"),
    (("api", "0", "accept"), "{member_id}"),
)
_AFTER = {
    "teams": "{team}",
    "members": "{member_id}",
    "keys": "{key_id}",
    "alerts": "{alert_id}",
    "monitors": "{monitor_id}",
    "releases": "{version}",
    "environments": "{name}",
    "heartbeat_check": "{endpoint_id}",
    "api-tokens": "{token_id}",
}


def template(path: str) -> str:
    """The path template of a recorded request path (`/api/0/projects/{org}/{project}/keys/`)."""
    segments = urlsplit(path).path.split("/")
    out = list(segments)
    for index, segment in enumerate(segments):
        if not segment:
            continue
        before = tuple(segments[1:index])
        if index == 2 and segments[1] == "api" and segment.isdigit() and segment != "0":
            out[index] = "{project_id}"
            continue
        for prefix, name in _NAMED:
            if before == prefix:
                out[index] = name
        if before[:3] in (("api", "0", "teams"), ("api", "0", "projects")) and len(before) == 4:
            out[index] = "{team}" if before[2] == "teams" else "{project}"
        if before[:2] == ("api", "0") and len(before) > 4 and before[-1] in _AFTER:
            out[index] = _AFTER[before[-1]]
        if before[:3] == ("api", "0", "accept") and len(before) == 4:
            out[index] = "{token}"
    return "/".join(out)


def endpoint(recording: dict) -> tuple[str, str]:
    """(method, path template) of a recording."""
    request = recording["request"]
    return request["method"], template(request["path"])


def fake_route(recording: dict) -> str | None:
    """The fake's handler for the recorded method and path, or None (no route, or not the
    method: the fake then answers its generic 404/405 page)."""
    request = recording["request"]
    path = urlsplit(request["path"].replace("<", "x").replace(">", "x")).path
    for methods, pattern, name in _COMPILED:
        if pattern.match(path):
            return name if request["method"] in methods else None
    return None


def is_generic_html(recording: dict) -> bool:
    """A recorded GlitchTip HTML 404/405 page for an unmatched path or method (the fake answers
    those generically: no route is needed)."""
    response = recording["response"]
    content_type = (response.get("headers") or {}).get("content-type", "")
    return response["status"] in (404, 405) and content_type.startswith("text/html")


def values_the_kit_ignores(name: str) -> bool:
    """A recording of an endpoint the kit calls whose only differences are values the kit never
    reads: the real worker's uptime check results (isUp, checks[], lastChange), or the
    `projects[].isMember` of a member-team answer that differs between identical requests."""
    return unreproduced(name) is not None


def unreproduced(name: str) -> str | None:
    """The named feature behind `values_the_kit_ignores`, or None."""
    for pattern, feature in KIT_UNREPRODUCED:
        if re.fullmatch(pattern, name):
            return feature
    return None


def not_implemented_reason(name: str, recording: dict) -> str | None:
    """Why the fake cannot answer this recording, naming the endpoint; None if it should."""
    method, path = endpoint(recording)
    if (method, path) in KIT_ENDPOINTS:
        feature = unreproduced(name)
        if feature is not None:
            return f"fake does not implement {feature} ({method} {path})"
        return None  # every recording of an endpoint the kit calls must match
    for pattern, feature in NOT_IMPLEMENTED_FEATURES:
        if re.fullmatch(pattern, name):
            return f"fake does not implement {feature} ({method} {path}): the kit never calls it"
    if fake_route(recording) is None and not is_generic_html(recording):
        return f"fake does not implement {method} {path}: the kit never calls it"
    return None


WORKER_CHECKS = r"(8[89]|428b|43\d|44[4-7]|457)[a-z]?_monitor.*"
WORKER_FEATURE = (
    "uptime check results of the real worker (minutes of checks, reason codes, first-beat down)"
)
IS_MEMBER = r"(300|307)_team_member_.*"
IS_MEMBER_FEATURE = (
    "projects[].isMember inside a member-team answer (differs between the identical requests "
    "300 and 301)"
)
# Recordings of endpoints the kit calls that differ only in values the kit never reads.
KIT_UNREPRODUCED = ((WORKER_CHECKS, WORKER_FEATURE), (IS_MEMBER, IS_MEMBER_FEATURE))

# Recordings on routes the fake has, of behaviour it does not reproduce: (recording names as a
# regex, the behaviour). A named recording that starts matching fails until taken out here.
NOT_IMPLEMENTED_FEATURES: tuple[tuple[str, str], ...] = (
    (
        r"11[0-5]_(?!org_issues_list_missing_scope).*",
        "the recorded server's issues and events (22 issues of earlier runs, ids and counts)",
    ),
    (
        r"214_issue_resolve_put",
        "the recorded server's issue ids (earlier runs) and a message issue's empty metadata "
        "(the fake keeps its title); the status change itself is reproduced",
    ),
    (
        r"(19[89]|20\d|21[0-7])[a-z]?_(org|project)_issues_list_.*",
        "issue search (query=, environment=, project=, start=, sort=) over the SDK data set",
    ),
    (WORKER_CHECKS, WORKER_FEATURE),
    (IS_MEMBER, IS_MEMBER_FEATURE),
    (
        r"(240|241|246|262|269|270)_.*",
        "releases the worker creates from the release tag of SDK events (1.0.0, 1.1.0); "
        "releases made through the API are reproduced",
    ),
    (
        r"336b_.*",
        "the SPA catch-all's HTML 500 for a path no API route matches (a stored invalid slug)",
    ),
)
