"""The load test's payloads: shaped like the SDKs' and the recordings, stored as GlitchTip does.

Every kind is posted over real HTTP to the fake GlitchTip (uWSGI manners: one request per
connection), its worker runs, and the stored events are counted through the same API calls
`provision load` makes (issues' counts, transaction groups). The envelope format is checked
against sentry-sdk's own parser and the recorded ingest exchanges (fixtures 100-104).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from provision.load import payloads
from provision.load.measure import Stored, stored_counts

# The recordings: $GLITCHTIP_CONTRACT_DIR (make mutation sets it: its copy of the tree is one level
# deeper), else ../shared beside the checkout.
CONTRACT = (
    Path(
        os.environ.get("GLITCHTIP_CONTRACT_DIR", "")
        or Path(__file__).resolve().parents[2] / "shared" / "glitchtip-contract"
    )
    / "fixtures"
)
ADMIN = ("admin@example.com", "load-test-password-1")


@pytest.fixture
def fake():
    from fakeglitchtip import create_api_token, create_superuser, start_fake

    handle = start_fake(enable_user_registration=False)
    create_superuser(handle.store, *ADMIN)
    handle.token = create_api_token(
        handle.store, ADMIN[0], ["org:admin", "project:admin", "team:admin", "event:admin"]
    )
    yield handle
    handle.stop()


@pytest.fixture
def project(fake):
    """The load-test project, created through create-project's code path."""
    from provision.provisioning import ProjectRequest, provision_project

    result = provision_project(
        ProjectRequest(url=fake.url, org="Acme", project="loadtest", token=fake.token, rc_path=None)
    )
    return result


def post(fake, request: payloads.IngestRequest, host: str | None = None) -> httpx.Response:
    headers = dict(request.headers)
    if host:
        headers["Host"] = host
    limits = httpx.Limits(max_keepalive_connections=0)  # uWSGI: one request per connection
    with httpx.Client(base_url=fake.url, limits=limits) as client:
        return client.post(request.path, content=request.body, headers=headers)


def counts(fake, project) -> Stored:
    from provision.api.client import GlitchTipClient
    from provision.dsn import parse_dsn

    with GlitchTipClient(fake.url, fake.token) as client:
        return stored_counts(
            client, project.org_slug, project.project_slug, parse_dsn(project.dsn).project_id
        )


def test_every_kind_is_accepted_and_stored_as_the_recordings_say(fake, project):
    from fakeglitchtip import process_pending

    dsn = payloads.Dsn.parse(project.dsn)
    rng = random.Random(7)
    sent: list[payloads.IngestRequest] = []
    for kind in payloads.KINDS:
        for _ in range(6):
            request = payloads.build_request(kind, dsn, rng, distinct_issues=4)
            response = post(fake, request)
            assert response.status_code == 200, (kind, response.text)
            answer = response.json()
            # envelope: {"id": ...} (recorded 100); store: {"event_id", "task_id": null} (101)
            if kind == "store":
                assert answer == {"event_id": request.event_id, "task_id": None}
            else:
                assert answer == {"id": request.event_id}
            sent.append(request)
    # Nothing is visible before the worker runs (recorded: the web process only enqueues).
    assert counts(fake, project) == Stored(0, 0)
    process_pending(fake.store, fake.queue)

    events = [r for r in sent if r.item_type == "event"]
    transactions = [r for r in sent if r.item_type == "transaction"]
    assert counts(fake, project) == Stored(len(events), len(transactions))
    # Grouping: one issue per distinct title, each counting its events.
    from provision.api.client import GlitchTipClient

    with GlitchTipClient(fake.url, fake.token) as client:
        issues = client.paginate(
            f"/api/0/projects/{project.org_slug}/{project.project_slug}/issues/?limit=100",
            action="list issues",
        )
        groups = client.paginate("/api/0/organizations/acme/transaction-groups/", action="groups")
    expected = Counter(r.title for r in events)
    assert {i["title"]: int(i["count"]) for i in issues} == dict(expected)
    assert len(expected) < len(events)  # several events per issue: grouping is exercised
    names = {name for name, _op in payloads.TRANSACTIONS}
    assert {g["transaction"] for g in groups} <= names
    assert sum(g["transactionCount"] for g in groups) == len(transactions)


def test_distinct_issues_bounds_the_error_issues():
    dsn = payloads.Dsn("0" * 32, "3")
    rng = random.Random(1)
    titles = {
        payloads.build_request("error_gzip", dsn, rng, distinct_issues=5).title for _ in range(300)
    }
    assert len(titles) == 5
    wide = {
        payloads.build_request("error_gzip", dsn, rng, distinct_issues=40).title for _ in range(600)
    }
    assert len(wide) == 40


def test_wrong_key_and_wrong_project_are_refused_like_the_recordings(fake, project):
    dsn = payloads.Dsn.parse(project.dsn)
    rng = random.Random(3)
    bad = payloads.build_request("error_gzip", payloads.Dsn("0" * 32, dsn.project_id), rng, 3)
    response = post(fake, bad)
    assert (response.status_code, response.json()) == (403, {"detail": "Denied"})  # 104
    other = payloads.build_request("store", payloads.Dsn(dsn.public_key, "999"), rng, 3)
    response = post(fake, other)
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid DSN"})  # 104


def test_the_public_host_header_is_what_allowed_hosts_accepts():
    from fakeglitchtip import start_fake

    handle = start_fake(allowed_hosts=("localhost", "127.0.0.1"))
    try:
        request = payloads.build_request("store", payloads.Dsn("1" * 32, "1"), random.Random(), 2)
        assert post(handle, request, host="web:8000").status_code == 400  # the service name
        assert post(handle, request, host="localhost:8000").status_code == 403  # past the host
    finally:
        handle.stop()


@pytest.mark.parametrize("kind", ["error_gzip", "error_plain", "message", "transaction"])
def test_envelopes_parse_with_sentry_sdk_and_match_the_recorded_shape(kind):
    from sentry_sdk.envelope import Envelope

    dsn = payloads.Dsn("a" * 32, "12")
    request = payloads.build_request(kind, dsn, random.Random(5), 10, now=datetime.now(UTC))
    body = request.body
    if request.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    else:
        assert kind == "error_plain"  # browser SDKs send plain envelopes
    envelope = Envelope.deserialize(body)
    assert envelope.headers["event_id"] == request.event_id
    (item,) = envelope.items
    assert item.headers["type"] == request.item_type
    assert item.headers["length"] == len(item.get_bytes())
    event = json.loads(item.get_bytes())
    assert event["event_id"] == request.event_id
    if request.item_type == "transaction":
        assert event["type"] == "transaction" and 3 <= len(event["spans"]) <= 8
    elif kind != "message":
        frames = event["exception"]["values"][0]["stacktrace"]["frames"]
        assert len(frames) >= 3 and any(f["in_app"] for f in frames)
        if kind == "error_gzip":
            assert any(not f["in_app"] for f in frames)
            assert all("context_line" in f for f in frames)

    recorded = json.loads((CONTRACT / "100_envelope_post_worker.json").read_text())["request"]
    assert set(recorded["headers"]) <= set(request.headers)
    assert request.headers["Content-Type"] == recorded["headers"]["Content-Type"]
    assert re.fullmatch(r"/api/\d+/envelope/", request.path)
    auth = request.headers["X-Sentry-Auth"]
    assert re.fullmatch(
        r"Sentry sentry_key=[0-9a-f]{32}, sentry_version=7, sentry_client=sentry\.\S+/[\d.]+", auth
    )


def test_store_is_a_plain_json_event_like_the_recording():
    recorded = json.loads((CONTRACT / "101_store_post_worker.json").read_text())["request"]
    request = payloads.build_request("store", payloads.Dsn("b" * 32, "4"), random.Random(2), 3)
    assert request.path == "/api/4/store/"
    assert "Content-Encoding" not in request.headers
    assert set(recorded["headers"]) <= set(request.headers)
    event = json.loads(request.body)
    assert set(recorded["json"]) <= set(event)
    assert event["exception"]["values"][0]["type"] == request.title.split(":")[0]


def test_mix_round_trips_and_refuses_nonsense():
    assert payloads.parse_mix(payloads.format_mix(payloads.MIX)) == payloads.MIX
    assert payloads.parse_mix("transaction=3")["error_gzip"] == 0
    for bad in ("bogus=1", "error_gzip", "error_gzip=-1", "error_gzip=0,store=0"):
        with pytest.raises(ValueError):
            payloads.parse_mix(bad)


def test_dsn_parse():
    dsn = payloads.Dsn.parse("http://" + "c" * 32 + "@localhost:8000/17")
    assert (dsn.public_key, dsn.project_id) == ("c" * 32, "17")
    for bad in ("", "http://localhost:8000/1", "ftp://k@h/1", "http://k@h/project"):
        with pytest.raises(ValueError):
            payloads.Dsn.parse(bad)


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("[::1]:8000", 200),  # an IPv6 internal URL, as render writes it into ALLOWED_HOSTS
        ("GlitchTip.Example.com", 200),  # Django compares host names without case
        ("errors.example.com", 200),  # `.example.com` allows every subdomain
        ("example.org", 400),
    ],
)
def test_the_fake_checks_allowed_hosts_by_djangos_rules(host, status):
    """The fake's API answered 400 to hosts Django accepts, so the Docker tier would have
    shown failures a real GlitchTip does not have."""
    import httpx
    from fakeglitchtip import start_fake

    handle = start_fake(allowed_hosts=("glitchtip.example.com", "[::1]", ".example.com"))
    try:
        answer = httpx.get(handle.url + "/api/settings/", headers={"Host": host})
        assert answer.status_code == status
    finally:
        handle.stop()


@pytest.mark.parametrize(
    "where",
    ["query-glitchtip_key", "authorization-header", "query-wins-over-a-bogus-header"],
)
def test_the_fake_finds_the_ingest_key_where_glitchtip_does(fake, project, where):
    """GlitchTip reads the key from the query (sentry_key or glitchtip_key) first, then from
    X-Sentry-Auth or Authorization; the fake refused the forms it did not know."""
    dsn = payloads.Dsn.parse(project.dsn)
    url = f"{fake.url}/api/{dsn.project_id}/store/"
    headers = {"Content-Type": "application/json"}
    if where == "query-glitchtip_key":
        url += f"?glitchtip_key={dsn.public_key}"
    elif where == "authorization-header":
        headers["Authorization"] = f"Sentry sentry_key={dsn.public_key}, sentry_version=7"
    else:
        url += f"?sentry_key={dsn.public_key}"
        headers["X-Sentry-Auth"] = "Sentry sentry_key=" + "0" * 32 + ", sentry_version=7"
    answer = httpx.post(url, content=b'{"message": "hello"}', headers=headers)
    assert answer.status_code == 200, answer.text
