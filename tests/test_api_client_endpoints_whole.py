"""Each endpoint of the API client as GlitchTip sees it and as the user reads its failures, whole.

A scripted transport (httpx's MockTransport) records every request: method, raw path
(percent-encoded names), headers and JSON body, and answers what the test says. The paths and
bodies are those of GlitchTip's API (../shared/glitchtip-contract/openapi.json, NOTES.md); the
messages are the kit's own lines. Pagination's bounds, the answers that are not JSON, the
waits of the default retry policy and the URLs a message cannot parse are here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from provision.api.client import (
    DEFAULT_TIMEOUT,
    MAX_PAGES,
    ApiError,
    GlitchTipClient,
    RetryPolicy,
    _path_only,
    display_url,
)

ORG, TEAM, PROJECT = "a/b c", "t é", "p?x"  # names that must be percent-encoded in a path
ORG_Q, TEAM_Q, PROJECT_Q = "a%2Fb%20c", "t%20%C3%A9", "p%3Fx"

# (call, method, raw path, JSON body, action, the 404 line)
ENDPOINTS: list[tuple[Callable[[GlitchTipClient], Any], str, str, Any, str, str | None]] = [
    (lambda c: c.whoami(), "GET", "/api/0/", None, "check the API token", None),
    (lambda c: c.organizations(), "GET", "/api/0/organizations/", None, "list organizations",
     None),
    (lambda c: c.create_organization("Acme"), "POST", "/api/0/organizations/", {"name": "Acme"},
     "create an organization", None),
    (lambda c: c.teams(ORG), "GET", f"/api/0/organizations/{ORG_Q}/teams/", None, "list teams",
     f"no organization named '{ORG}'"),
    (lambda c: c.create_team(ORG, "ops"), "POST", f"/api/0/organizations/{ORG_Q}/teams/",
     {"slug": "ops"}, "create a team", f"no organization named '{ORG}'"),
    (lambda c: c.projects(ORG), "GET", f"/api/0/organizations/{ORG_Q}/projects/", None,
     "list projects", f"no organization named '{ORG}'"),
    (lambda c: c.create_project(ORG, TEAM, "Web", "python"), "POST",
     f"/api/0/teams/{ORG_Q}/{TEAM_Q}/projects/", {"name": "Web", "platform": "python"},
     "create a project", f"no team named '{TEAM}' in organization '{ORG}'"),
    (lambda c: c.create_project(ORG, TEAM, "Web", None), "POST",
     f"/api/0/teams/{ORG_Q}/{TEAM_Q}/projects/", {"name": "Web"},
     "create a project", f"no team named '{TEAM}' in organization '{ORG}'"),
    (lambda c: c.create_project(ORG, TEAM, "Web", ""), "POST",
     f"/api/0/teams/{ORG_Q}/{TEAM_Q}/projects/", {"name": "Web"},
     "create a project", f"no team named '{TEAM}' in organization '{ORG}'"),
    (lambda c: c.keys(ORG, PROJECT), "GET", f"/api/0/projects/{ORG_Q}/{PROJECT_Q}/keys/", None,
     "list client keys", f"no project named '{PROJECT}' in organization '{ORG}'"),
    (lambda c: c.create_key(ORG, PROJECT, "kit"), "POST",
     f"/api/0/projects/{ORG_Q}/{PROJECT_Q}/keys/", {"name": "kit"}, "create a client key",
     f"no project named '{PROJECT}' in organization '{ORG}'"),
]  # fmt: skip
IDS = [
    "whoami", "organizations", "create_organization", "teams", "create_team", "projects",
    "create_project", "create_project-no-platform", "create_project-empty-platform", "keys",
    "create_key",
]  # fmt: skip


def scripted(answer: Callable[[httpx.Request], httpx.Response]):
    """A client whose transport answers with `answer` and keeps what each request carried."""
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append({
            "method": request.method,
            "path": request.url.raw_path.decode("ascii"),
            "body": json.loads(request.content) if request.content else None,
            "authorization": request.headers.get("authorization"),
            "user-agent": request.headers.get("user-agent"),
            "accept": request.headers.get("accept"),
        })  # fmt: skip
        return answer(request)

    policy = RetryPolicy(attempts=2, backoff=0.0)
    client = GlitchTipClient(
        "http://gt/", "tok-1", retry=policy, sleep=lambda s: None,
        transport=httpx.MockTransport(handler),
    )  # fmt: skip
    return client, seen


@pytest.mark.parametrize(("call", "method", "path", "body", "action", "not_found"), ENDPOINTS,
                         ids=IDS)  # fmt: skip
def test_each_endpoint_sends_what_glitchtip_expects(call, method, path, body, action, not_found):
    client, seen = scripted(lambda r: httpx.Response(200, json=[] if r.method == "GET" else {}))
    with client:
        answer = call(client)
    assert answer == ([] if method == "GET" else {})
    assert seen == [{
        "method": method, "path": path, "body": body, "authorization": "Bearer tok-1",
        "user-agent": "glitchtip-kit", "accept": "application/json",
    }]  # fmt: skip
    assert (client.requests, client.posts) == (1, 1 if method == "POST" else 0)


@pytest.mark.parametrize(("call", "method", "path", "body", "action", "not_found"), ENDPOINTS,
                         ids=IDS)  # fmt: skip
def test_each_endpoints_failure_names_what_it_was_doing(call, method, path, body, action,
                                                         not_found):  # fmt: skip
    """A 500 names the action whole; GlitchTip's JSON 404 for an unknown name is the endpoint's
    own line (or, without one, the path GlitchTip had nothing at)."""
    client, _ = scripted(lambda r: httpx.Response(500, text="<h1>Server Error</h1>"))
    with client, pytest.raises(ApiError) as failed:
        call(client)
    assert (failed.value.message, failed.value.fix, failed.value.status) == (
        f"GlitchTip failed to {action}: HTTP 500: Server Error",
        "see GlitchTip's logs",
        500,
    )
    client, _ = scripted(lambda r: httpx.Response(404, json={"detail": "Not Found"}))
    with client, pytest.raises(ApiError) as missing:
        call(client)
    assert (missing.value.message, missing.value.fix) == (
        not_found or f"GlitchTip has nothing at {httpx.URL('http://gt' + path).path} (404)",
        "check the names, or let create-project create them",
    )


def test_a_client_without_a_token_sends_no_authorization() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"user": None})

    with GlitchTipClient("http://gt", None, transport=httpx.MockTransport(handler)) as client:
        assert client.whoami() == {"user": None}
        assert client.http.timeout == DEFAULT_TIMEOUT == httpx.Timeout(10.0, connect=5.0)
    assert "authorization" not in seen[0].headers
    assert str(seen[0].url) == "http://gt/api/0/"


def page(items: list, next_url: str | None, results: str = "true") -> httpx.Response:
    """A list page with GlitchTip's malformed Link header (a Python set's repr)."""
    headers = {}
    if next_url:
        headers["Link"] = (
            f'{{\'<http://gt/api/0/organizations/>; rel="previous"; results="false", '
            f'<{next_url}>; rel="next"; results="{results}"; cursor="c"\'}}'
        )
    return httpx.Response(200, json=items, headers=headers)


def test_pagination_stops_where_glitchtip_says_and_at_its_bound() -> None:
    """`next` is followed while it has results and the page was not empty; a server that
    always has a next page is read for MAX_PAGES pages and no more."""
    pages = {
        "/api/0/organizations/": page([1, 2], "http://gt/api/0/organizations/?cursor=b"),
        "/api/0/organizations/?cursor=b": page([3], "http://gt/api/0/organizations/?cursor=c"),
        "/api/0/organizations/?cursor=c": page([4], "http://gt/api/0/organizations/?cursor=d",
                                               results="false"),
    }  # fmt: skip
    client, seen = scripted(lambda r: pages[r.url.raw_path.decode()])
    with client:
        assert client.organizations() == [1, 2, 3, 4]
    assert [s["path"] for s in seen] == list(pages)

    empty = {
        "/api/0/organizations/": page([1], "http://gt/api/0/organizations/?cursor=b"),
        "/api/0/organizations/?cursor=b": page([], "http://gt/api/0/organizations/?cursor=c"),
    }  # fmt: skip
    client, seen = scripted(lambda r: empty[r.url.raw_path.decode()])
    with client:
        assert client.organizations() == [1]
    assert len(seen) == 2

    client, seen = scripted(lambda r: page([0], "http://gt/api/0/organizations/?cursor=x"))
    with client:
        assert client.organizations() == [0] * MAX_PAGES
    assert MAX_PAGES == 100 and len(seen) == 100


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(200, text="<html>Welcome to nginx</html>"),
         "GlitchTip answered list organizations with something that is not JSON"),
        (httpx.Response(200, json={"results": []}),
         "GlitchTip answered list organizations with an unexpected shape"),
    ],
)  # fmt: skip
def test_a_list_page_that_is_not_a_json_list_is_one_line(answer, message) -> None:
    client, _ = scripted(lambda r: answer)
    with client, pytest.raises(ApiError) as failed:
        client.organizations()
    assert (failed.value.message, failed.value.fix, failed.value.status) == (message, None, None)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(204), None),
        (httpx.Response(200, content=b""), None),
        (httpx.Response(201, json={"id": 1}), {"id": 1}),
        (httpx.Response(200, json=0), 0),
    ],
)
def test_an_answer_without_a_body_is_none(answer, expected) -> None:
    client, _ = scripted(lambda r: answer)
    with client:
        assert client.request("DELETE", "/api/0/x/", action="remove it") == expected


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<html>\n<body>\n\n  <h1>Bad   gateway tok-1</h1></body></html>", "Bad gateway ********"),
        ("", "(empty response)"),
        ("   \n\t\n", "(empty response)"),
        ("x" * 300, "x" * 200),
    ],
)
def test_an_answer_that_is_not_json_quotes_its_first_line(text, shown) -> None:
    """The first line with text, tags stripped, spaces collapsed, at most 200 characters, the
    token scrubbed; the same line for an error status."""
    # an empty 200 is no answer at all (None): one space is a body with no line
    client, _ = scripted(lambda r: httpx.Response(200, text=text or " "))
    with client, pytest.raises(ApiError) as failed:
        client.request("GET", "/api/0/", action="check the API token")
    assert (failed.value.message, failed.value.fix) == (
        f"GlitchTip answered check the API token with something that is not JSON ({shown})",
        "check that --url points at GlitchTip itself",
    )
    client, _ = scripted(lambda r: httpx.Response(418, text=text))
    with client, pytest.raises(ApiError) as refused:
        client.request("GET", "/api/0/", action="check the API token")
    assert refused.value.message == f"GlitchTip failed to check the API token: HTTP 418: {shown}"


def test_the_default_retry_policy_waits_doubling_up_to_five_seconds() -> None:
    policy = RetryPolicy()
    assert policy.attempts == 4
    assert [policy.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    client, seen = scripted(lambda r: httpx.Response(503))
    waits: list[float] = []
    client.retry, client._sleep = policy, waits.append
    with client:
        assert client.send("GET", "/api/0/").status_code == 503
    assert (len(seen), waits) == (4, [0.5, 1.0, 2.0])


def test_urls_a_message_cannot_parse_are_shown_safely() -> None:
    """A URL `urlsplit` refuses (an unclosed IPv6 bracket) still loses its password; a path it
    refuses is not quoted; a port that is no number is an invalid URL, not a traceback."""
    assert display_url("http://user:pw@[bad") == "[bad"
    assert display_url("http://[bad") == "http://[bad"
    assert display_url("http://user:pw@gt:8000/x") == "http://gt:8000/x"
    assert display_url("http://gt:8000/x") == "http://gt:8000/x"
    assert _path_only("http://[bad/x") == "(unparsable path)"
    assert _path_only("/api/0/x/?secret=1#f") == "/api/0/x/"
    assert _path_only("?only=query") == "?only=query"
    client, seen = scripted(lambda r: httpx.Response(200, json={}))
    with client, pytest.raises(ApiError) as failed:
        client.send("GET", "http://gt:abc/api/0/")
    assert (failed.value.message, failed.value.fix) == (
        "http://gt/api/0/ is not a valid URL",
        "check --url / GLITCHTIP_URL, e.g. http://127.0.0.1:8000",
    )
    assert seen == []


@pytest.mark.parametrize(
    ("value", "links"),
    [
        ("", {}),
        ('<http://h/x/?cursor=a>; rel="next"; results="true"',  # RFC 8288's own form
         {"next": {"url": "http://h/x/?cursor=a", "rel": "next", "results": "true"}}),
        (" {'<http://h/x/?cursor=a>; rel=\"next\"; results=\"false\"'} ",
         {"next": {"url": "http://h/x/?cursor=a", "rel": "next", "results": "false"}}),
        ("'<http://h/x/>; rel=\"next\"",  # one quote only: not a wrapper, nothing stripped
         {"next": {"url": "http://h/x/", "rel": "next"}}),
        ('{<http://h/x/?cursor=b>; rel="next"}',  # braces alone: the first link kept whole
         {"next": {"url": "http://h/x/?cursor=b", "rel": "next"}}),
        ('<http://h/a/>; results="true", <http://h/b/>; rel="prev"',  # no rel: not a link
         {"prev": {"url": "http://h/b/", "rel": "prev"}}),
    ],
)  # fmt: skip
def test_link_headers_parse_whole(value, links) -> None:
    from provision.api.client import parse_link_header

    assert parse_link_header(value) == links
