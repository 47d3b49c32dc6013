"""GlitchTip's 422 answers (NOTES.md section 2: django-ninja's list of field errors, a plain
string, a dict per field) turned into the one line the user reads."""

from __future__ import annotations

import socket

import httpx
import pytest

from provision.api.client import ApiError, GlitchTipClient, RetryPolicy


def rejected(body) -> str:
    response = httpx.Response(422, json=body, request=httpx.Request("POST", "http://gt/api/0/x/"))
    with GlitchTipClient("http://gt", "tok") as client, pytest.raises(ApiError) as error:
        client.raise_for_status(response, action="create the project")
    assert error.value.status == 422
    return error.value.message


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (  # recorded: a missing field (NOTES.md, validation error)
            {"detail": [{"type": "missing", "loc": ["body", "payload", "name"],
                         "msg": "Field required"}]},
            "name: Field required",
        ),
        (
            {"detail": [{"loc": ["body", "payload", "team", "slug"], "msg": "too long"},
                        {"loc": ["query", "limit"], "msg": "not an int"}]},
            "team.slug: too long; query.limit: not an int",
        ),
        ({"detail": [{"loc": ["body"], "msg": "JSON decode error"}]}, "body: JSON decode error"),
        ({"detail": [{"scopes": "Invalid scope"}]}, "scopes: Invalid scope"),  # recorded
        ({"detail": "Invalid Url"}, "Invalid Url"),  # recorded
        ({"detail": []}, "invalid input"),
        ({"detail": [42, "x"]}, "invalid input"),
        ({"other": 1}, "invalid input"),
        ([{"msg": "top-level list", "loc": ["name"]}], "name: top-level list"),
    ],
)  # fmt: skip
def test_a_422_names_each_field_and_its_message(body, why):
    assert rejected(body) == f"GlitchTip rejected the request to create the project: {why}"


def test_no_answer_names_the_url_the_call_and_the_fix():
    """A server that takes the connection and never answers (the kernel accepts it; nobody
    reads): a timeout on every attempt, the call named without its query."""
    waits: list[float] = []
    policy = RetryPolicy(attempts=2, backoff=0.25)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with (
            GlitchTipClient(url, "tok", retry=policy, sleep=waits.append, timeout=0.2) as client,
            pytest.raises(ApiError) as error,
        ):
            client.send("GET", "/api/0/organizations/?secret=1")
    message = error.value.message
    start = f"GlitchTip at {url} did not answer GET /api/0/organizations/ ("
    assert message.startswith(start) and "secret" not in message
    assert message.endswith("Timeout, 2 attempts)")
    assert waits == [0.25]  # one wait between the two attempts
    assert error.value.fix == (
        "check that --url / GLITCHTIP_URL points at GlitchTip itself and see its logs"
    )


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"detail": "Invalid token."}),
        (403, {"detail": "Permission denied"}),  # a token without the scope
        (403, {"detail": "some other reason"}),  # any other detail is shown as is
        (404, None),  # an HTML 404: no GlitchTip API there
        (404, {"detail": "Not Found"}),  # an unknown name (see raise_for_status)
        (422, {"detail": "Invalid Url"}),
        (429, None),
        (502, None),
    ],
)
def test_every_refusal_keeps_its_http_status(status, body) -> None:
    """Callers decide by `ApiError.status` (an existing name, a retry, a missing team), so each
    branch of `raise_for_status` must carry the answer's status, not only its message."""
    request = httpx.Request("POST", "http://gt/api/0/x/")
    response = (
        httpx.Response(status, json=body, request=request)
        if body is not None
        else httpx.Response(status, text="<html>nope</html>", request=request)
    )
    with GlitchTipClient("http://gt", "tok") as client, pytest.raises(ApiError) as error:
        client.raise_for_status(response, action="create the project")
    assert error.value.status == status


def test_a_token_that_cannot_be_a_header_is_refused_in_one_exact_line() -> None:
    """The refusal names where the token came from and the fix, never the token itself."""
    from provision.api.client import check_token
    from provision.errors import UsageError

    bad = "tok en-with-a-space-0123456789"
    with pytest.raises(UsageError) as refused:
        check_token(bad, where="--token")
    assert refused.value.message == (
        "the API token (--token) has spaces, control or non-ASCII characters, or is too long; "
        "GlitchTip's tokens are letters and digits"
    )
    assert refused.value.fix == "copy the token again (Profile > Auth Tokens in GlitchTip)"
    assert bad not in str(refused.value)
    check_token(None)
    check_token("")


def test_a_token_without_the_scope_to_list_teams_is_told_so_whole():
    """The fake GlitchTip refuses `teams` to a token with project:read only, as GlitchTip's
    scope rules do: the refusal names what was being done, in full."""
    from fakeglitchtip import create_api_token, create_superuser, start_fake

    handle = start_fake()
    try:
        create_superuser(handle.store, "a@example.com", "pw-123456789")
        full = create_api_token(
            handle.store, "a@example.com", ["org:admin", "project:admin", "team:admin"]
        )
        with GlitchTipClient(handle.url, full) as client:
            client.create_organization("Acme")
        narrow = create_api_token(handle.store, "a@example.com", ["project:read"])
        with GlitchTipClient(handle.url, narrow) as client, pytest.raises(ApiError) as refused:
            client.teams("acme")
    finally:
        handle.stop()
    assert (refused.value.message, refused.value.status) == (
        "token lacks scope to list teams (403)",
        403,
    )


_NO_API_FIX = (
    "check that --url / GLITCHTIP_URL is GlitchTip's own address (scheme, host, port, no path)"
)


@pytest.mark.parametrize(
    ("status", "body", "message", "fix"),
    [
        (400, None, "GlitchTip failed to create the project: HTTP 400: nope", None),
        (
            401, {"detail": "Invalid token."}, "token rejected by GlitchTip (401)",
            "give a valid API token (--token / GLITCHTIP_API_TOKEN) or the admin's e-mail and "
            "password",
        ),
        (
            403, {"detail": "Permission denied"}, "token lacks scope to create the project (403)",
            "use a token with the scopes org:write, team:write, project:write and project:admin, "
            "or let the kit create one from the admin's e-mail and password",
        ),
        (
            403, None, "token lacks scope to create the project (403)",
            "use a token with the scopes org:write, team:write, project:write and project:admin, "
            "or let the kit create one from the admin's e-mail and password",
        ),
        (
            403, {"detail": "Organization is disabled"},
            "GlitchTip refused to create the project: Organization is disabled", None,
        ),
        (
            404, None,
            "http://gt has no GlitchTip API at /api/0/x/ (404 without GlitchTip's JSON answer) "
            "while trying to create the project",
            _NO_API_FIX,
        ),
        (
            404, {"detail": "Not Found"}, "GlitchTip has nothing at /api/0/x/ (404)",
            "check the names, or let create-project create them",
        ),
        (
            422, {"detail": "Invalid Url"},
            "GlitchTip rejected the request to create the project: Invalid Url", None,
        ),
        (499, None, "GlitchTip failed to create the project: HTTP 499: nope", None),
        (
            500, None, "GlitchTip failed to create the project: HTTP 500: nope",
            "see GlitchTip's logs",
        ),
        (
            502, None, "GlitchTip failed to create the project: HTTP 502: nope",
            "see GlitchTip's logs",
        ),
    ],
)  # fmt: skip
def test_every_refusal_is_one_whole_line(status, body, message, fix) -> None:
    """What the user reads for each answer: the message and the fix compared whole (a word
    dropped from either is a different line)."""
    request = httpx.Request("POST", "http://gt/api/0/x/?limit=1")
    response = (
        httpx.Response(status, json=body, request=request)
        if body is not None
        else httpx.Response(status, text="<html><b>nope</b></html>", request=request)
    )
    with GlitchTipClient("http://gt", "tok") as client, pytest.raises(ApiError) as error:
        client.raise_for_status(response, action="create the project")
    assert (error.value.message, error.value.fix, error.value.status) == (message, fix, status)


def test_a_404_names_the_callers_own_message_for_an_unknown_name() -> None:
    request = httpx.Request("GET", "http://gt/api/0/organizations/acme/")
    response = httpx.Response(404, json={"detail": "Not Found"}, request=request)
    with GlitchTipClient("http://gt", "tok") as client, pytest.raises(ApiError) as error:
        client.raise_for_status(response, action="read", not_found="no organization acme")
    assert (error.value.message, error.value.fix) == (
        "no organization acme",
        "check the names, or let create-project create them",
    )


@pytest.mark.parametrize("status", [200, 201, 204, 302, 399])
def test_an_answer_below_400_is_no_refusal(status) -> None:
    request = httpx.Request("GET", "http://gt/api/0/x/")
    with GlitchTipClient("http://gt", "tok") as client:
        assert client.raise_for_status(httpx.Response(status, request=request), action="x") is None


def _scripted(answers):
    """A transport answering each request with the next of `answers`: a status code, or an
    exception class raised as httpx raises it; the requests it saw are kept."""
    seen: list[str] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        answer = queue.pop(0)
        if isinstance(answer, int):
            return httpx.Response(answer, json={})
        raise answer("scripted", request=request)

    return httpx.MockTransport(handler), seen


@pytest.mark.parametrize(
    ("method", "answers", "tries", "status"),
    [
        ("GET", [502, 503, 504, 200], 4, 200),  # every gateway error is retried
        ("GET", [502, 502, 502, 502], 4, 502),  # the last answer after the last attempt
        ("POST", [503, 201], 2, 201),  # 503: GlitchTip did not take it
        ("POST", [502], 1, 502),  # 502/504: it may have run; not repeated
        ("POST", [504], 1, 504),
        ("GET", [500], 1, 500),  # a server error is no gateway error: not retried
        ("DELETE", [httpx.ReadError, 204], 2, 204),
    ],
)
def test_which_answers_are_tried_again_and_how_long_it_waits(method, answers, tries, status):
    transport, seen = _scripted(answers)
    waits: list[float] = []
    policy = RetryPolicy(attempts=4, backoff=0.5, max_backoff=1.5)
    with GlitchTipClient("http://gt", "tok", retry=policy, sleep=waits.append,
                         transport=transport) as client:  # fmt: skip
        response = client.send(method.lower(), "/api/0/x/")
    assert response.status_code == status
    assert seen == [f"{method} /api/0/x/"] * tries
    assert waits == [0.5, 1.0, 1.5][: tries - 1]  # doubling, capped at max_backoff
    assert client.requests == tries and client.posts == (tries if method == "POST" else 0)


@pytest.mark.parametrize(
    ("method", "answers", "message", "fix"),
    [
        (
            "POST", [httpx.ConnectError] * 3,
            "cannot reach GlitchTip at http://gt (ConnectError, 3 attempts)",
            "check --url / GLITCHTIP_URL and that GlitchTip is running",
        ),
        (
            "GET", [httpx.ReadTimeout] * 3,
            "GlitchTip at http://gt did not answer GET /api/0/x/ (ReadTimeout, 3 attempts)",
            "check that --url / GLITCHTIP_URL points at GlitchTip itself and see its logs",
        ),
        (
            "POST", [httpx.RemoteProtocolError],
            "GlitchTip at http://gt dropped the connection before answering POST /api/0/x/ "
            "(RemoteProtocolError); not repeated because GlitchTip may have executed it",
            "run the same command again: it creates only what is still missing",
        ),
        (
            "GET", [httpx.UnsupportedProtocol],
            "http://gt/api/0/x/ is not a valid URL",
            "check --url / GLITCHTIP_URL, e.g. http://127.0.0.1:8000",
        ),
        (
            "GET", [httpx.TooManyRedirects],
            "GlitchTip at http://gt did not answer GET /api/0/x/ (TooManyRedirects, 1 attempt)",
            "check that --url / GLITCHTIP_URL points at GlitchTip itself and see its logs",
        ),
    ],
)  # fmt: skip
def test_a_request_that_gets_no_answer_is_one_whole_line(method, answers, message, fix):
    transport, seen = _scripted(answers)
    policy = RetryPolicy(attempts=3, backoff=0.0)
    with (
        GlitchTipClient("http://gt", "tok", retry=policy, sleep=lambda s: None,
                        transport=transport) as client,
        pytest.raises(ApiError) as failed,
    ):  # fmt: skip
        client.send(method, "/api/0/x/?secret=1")
    assert (failed.value.message, failed.value.fix) == (message, fix)
    assert len(seen) == len(answers)
