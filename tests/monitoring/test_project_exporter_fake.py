"""What the project exporter and the metrics stack read from the fake GlitchTip, checked for the
values (the contract replay compares shapes and types, not counts): stats_v2's numbers and bugs,
and the metrics endpoints of each major with the recorded sample's families and labels."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fakeglitchtip import Request, model, process_pending, start_fake
from project_exporter_world import ADMIN, ORG, make_world
from prometheus_client.parser import text_string_to_metric_families

# $GLITCHTIP_CONTRACT_DIR (make mutation sets it), else ../shared beside the checkout.
SAMPLE = (
    Path(
        os.environ.get("GLITCHTIP_CONTRACT_DIR", "")
        or Path(__file__).resolve().parents[3] / "shared" / "glitchtip-contract"
    )
    / "metrics-sample.txt"
)
# What the kit's dashboards and rules read from GlitchTip itself.
DASHBOARD_FAMILIES = {
    "django_http_requests_total_by_view_transport_method",
    "django_http_responses_total_by_status_view_method",
    "django_http_requests_latency_seconds_by_view_method",
    "django_http_requests_latency_including_middlewares_seconds",
    "django_http_responses_total_by_status",
    "process_resident_memory_bytes",
    "process_cpu_seconds",
    "process_start_time_seconds",
    "glitchtip_organizations",
    "glitchtip_projects",
}


@pytest.fixture
def fake():
    handle = start_fake(keep_alive=False)
    yield handle
    handle.stop()


def call(handle, target: str, token: str | None = None) -> tuple[int, object]:
    headers = {"host": "127.0.0.1"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    response = handle.app.handle(Request("GET", target, headers))
    body = response.body.decode()
    is_json = dict(response.headers).get("Content-Type", "").startswith("application/json")
    return response.status, json.loads(body) if is_json else body


def queue_at(handle, project_id: int, received: str, kind: str = "event", count: int = 1):
    for _ in range(count):
        payload = json.dumps({"message": "boom"} if kind == "event" else {"type": kind})
        handle.queue.push(
            {
                "kind": kind,
                "project_id": project_id,
                "received": received,
                "event_id": "0" * 32,
                "payload": payload,
            }
        )


@pytest.fixture
def stats_world(fake):
    """web: 3 errors at 04:37 and 2 transactions at 04:40; worker: 1 error at 02:10."""
    world = make_world(fake)
    web, worker = world.projects["web"][0], world.projects["worker"][0]
    queue_at(fake, web, "2026-11-26T04:37:24.213Z", count=3)
    queue_at(fake, web, "2026-11-26T04:40:00.000Z", kind="transaction", count=2)
    queue_at(fake, worker, "2026-11-26T02:10:00.000Z")
    assert (
        stats(fake, world.token, "error", "01:39", "04:39")["groups"][0]["series"]["sum(quantity)"]
        == [None] * 5
    )  # queued only: nothing counted before the worker stores them
    process_pending(fake.store, fake.queue)
    return world


def stats(handle, token, category, start, end, interval="1h", projects=()):
    query = f"category={category}&field=sum(quantity)&interval={interval}"
    query += f"&start=2026-11-26T{start}:00Z&end=2026-11-26T{end}:00Z"
    query += "".join(f"&project={p}" for p in projects)
    status, body = call(handle, f"/api/0/organizations/{ORG}/stats_v2/?{query}", token)
    assert status == 200, body
    return body


def series(body) -> list[tuple[str, int | None]]:
    values = body["groups"][0]["series"]["sum(quantity)"]
    return [(stamp[11:16], value) for stamp, value in zip(body["intervals"], values, strict=True)]


def test_stats_v2_counts_per_hour_and_sums_projects(fake, stats_world):
    token = stats_world.token
    web, worker = (stats_world.projects[s][0] for s in ("web", "worker"))
    everything = stats(fake, token, "error", "01:39", "04:39")
    assert series(everything) == [
        ("01:00", None),
        ("02:00", 1),
        ("03:00", None),
        ("04:00", 3),
        ("05:00", None),
    ]
    assert everything["intervals"][0] == "2026-11-26T01:00:00+00:00"
    assert series(stats(fake, token, "error", "01:39", "04:39", projects=(web, worker)))[3] == (
        "04:00",
        3,
    )
    assert series(stats(fake, token, "transaction", "03:00", "04:39")) == [
        ("03:00", None),
        ("04:00", 2),
        ("05:00", None),
    ]


def test_stats_v2_drops_an_hour_only_other_projects_have(fake, stats_world):
    token = stats_world.token
    web, worker = (stats_world.projects[s][0] for s in ("web", "worker"))
    assert series(stats(fake, token, "error", "01:39", "04:39", projects=(web,))) == [
        ("01:00", None),
        ("03:00", None),  # 02:00 is gone: only `worker` has events then (recorded 170)
        ("04:00", 3),
        ("05:00", None),
    ]
    assert [
        h
        for h, _ in series(stats(fake, token, "transaction", "03:00", "04:39", projects=(worker,)))
    ] == [
        "03:00",
        "05:00",
    ]


def test_stats_v2_daily_and_minute_buckets_have_the_recorded_bugs(fake, stats_world):
    token = stats_world.token
    daily = stats(fake, token, "error", "00:00", "04:39", interval="1d")
    assert series(daily) == [("00:00", None)]  # only 00:00-00:59 is counted (recorded 164)
    assert series(stats(fake, token, "error", "04:00", "04:39", interval="1d")) == [("04:00", 3)]
    minutes = series(stats(fake, token, "error", "03:39", "04:39", interval="1m"))
    assert len(minutes) == 121
    assert [m for m, v in minutes if v is not None] == [f"03:{n:02d}" for n in range(1, 60)] + [
        "04:00"
    ]  # the 04:xx count sits in the 60 minutes before 04:00 (recorded 173)
    assert {v for _, v in minutes if v is not None} == {3}


def test_stats_v2_refusals(fake, stats_world):
    token = stats_world.token
    base = f"/api/0/organizations/{ORG}/stats_v2/?category=error&field=sum(quantity)"
    status, body = call(fake, base, token)
    assert status == 422 and [e["loc"] for e in body["detail"]] == [
        ["query", "start"],
        ["query", "end"],
    ]
    window = "&start=2026-10-15T04:39:00Z&end=2026-11-26T04:39:00Z"
    assert call(fake, base + window, token) == (422, {"detail": [{"end": "Too many intervals"}]})
    ok = "&start=2026-11-26T01:00:00Z&end=2026-11-26T02:00:00Z"
    assert call(fake, base + ok)[0] == 401
    with fake.store.transaction() as state:
        user = model.find_user(state, ADMIN)
        event_only = model.add_token(state, user, ["event:read"], "events")["token"]
        readonly = model.add_token(state, user, ["org:read"], "org")["token"]
    assert call(fake, base + ok, event_only) == (403, {"detail": "Permission denied"})
    assert call(fake, base + ok, readonly)[0] == 200
    assert call(fake, base + ok + "&project=999", token) == (404, {"detail": "Not Found"})
    assert call(fake, base + ok + "&project=-1", token) == (404, {"detail": "Not Found"})
    assert call(fake, base.replace(ORG, "nope") + ok, token) == (404, {"detail": "Not Found"})
    status, body = call(fake, base + "&start=2026-11-26T04:00:00Z&end=2026-11-26T01:00:00Z", token)
    assert (status, body["intervals"], body["groups"][0]["series"]) == (
        200,
        [],
        {"sum(quantity)": []},
    )


# --- metrics endpoints ------------------------------------------------------------------------


def families(text: str) -> dict[str, tuple[str, set[str]]]:
    """family -> (type, label names without `le`)."""
    found = {}
    for family in text_string_to_metric_families(text):
        labels: set[str] = set()
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
        found[family.name] = (family.type, labels)
    return found


def value_of(text: str, name: str, labels: dict[str, str]) -> float | None:
    """The value of one sample of an exposition."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


@pytest.fixture(scope="module")
def sample() -> dict[str, tuple[str, set[str]]]:
    if not SAMPLE.is_file():
        pytest.fail(
            f"no metrics sample at {SAMPLE}: clone shared/glitchtip-contract beside the repository"
        )
    return families(SAMPLE.read_text())


def traffic(handle, token: str) -> None:
    """A few real requests over HTTP: the fake counts what it serves."""
    import urllib.error
    import urllib.request

    for path, auth in (
        (f"/api/0/organizations/{ORG}/projects/", True),
        (f"/api/0/organizations/{ORG}/projects/", True),
        ("/api/0/organizations/", False),
        ("/no/such/page", False),
    ):
        request = urllib.request.Request(handle.url + path)
        if auth:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            urllib.request.urlopen(request, timeout=10).read()
        except urllib.error.HTTPError as error:
            error.close()


def scrape(handle, path: str, token: str | None = None) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(handle.url + path)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"] == "text/plain; version=1.0.0; charset=utf-8"
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


@pytest.mark.parametrize("major", [5, 6])
def test_the_metrics_have_the_sample_names_labels_and_types(major, sample):
    handle = start_fake(major=major, observability_api=True)
    try:
        world = make_world(handle)
        traffic(handle, world.token)
        world.send_errors("web", 2)
        path = "/metrics" if major >= 6 else "/api/0/observability/django/"
        status, text = scrape(handle, path, world.token if major < 6 else None)
    finally:
        handle.stop()
    assert status == 200
    served = families(text)
    assert set(served) >= DASHBOARD_FAMILIES, DASHBOARD_FAMILIES - set(served)
    for name, (kind, labels) in served.items():
        assert name in sample, f"{name} is not in GlitchTip's sample"
        assert (kind, labels) == sample[name], name
    by_view = "django_http_requests_total_by_view_transport_method_total"
    projects = {"method": "GET", "transport": "http", "view": "api:list_organization_projects"}
    assert value_of(text, by_view, projects) == 2
    statuses = "django_http_responses_total_by_status_view_method_total"
    assert (
        value_of(
            text, statuses, {"method": "GET", "status": "401", "view": "api:list_organizations"}
        )
        == 1
    )
    assert (
        value_of(
            text, statuses, {"method": "GET", "status": "404", "view": "glitchtip.views.index"}
        )
        == 1
    )
    ingest = {"method": "POST", "status": "200", "view": "api:event_store"}
    # 6 routes ingest around django-prometheus (glitchtip/ingest_asgi.py): not counted there.
    assert value_of(text, statuses, ingest) == (2 if major < 6 else None)
    assert "glitchtip_organizations 1.0" in text
    assert f'glitchtip_projects{{organization="{ORG}"}} 2.0' in text


def test_latency_buckets_are_django_prometheus_defaults(sample):
    handle = start_fake(observability_api=True)
    try:
        world = make_world(handle)
        traffic(handle, world.token)
        _, text = scrape(handle, "/api/0/observability/django/", world.token)
    finally:
        handle.stop()

    def buckets(source: str) -> list[str]:
        name = "django_http_requests_latency_including_middlewares_seconds"
        for family in text_string_to_metric_families(source):
            if family.name == name:
                return [s.labels["le"] for s in family.samples if s.name.endswith("_bucket")]
        return []

    assert buckets(text) == buckets(SAMPLE.read_text()) and len(buckets(text)) == 17


def test_glitchtip_5_needs_a_staff_token_and_counts_requests_only_when_observability_is_on(fake):
    world = make_world(fake)
    traffic(fake, world.token)
    path = "/api/0/observability/django/"
    assert scrape(fake, path)[0] == 401
    with fake.store.transaction() as state:
        user = model.add_user(state, "dev@example.com", "dev-Passw0rd-123", superuser=False)
        not_staff = model.add_token(state, user, ["org:read"], "dev")["token"]
    assert scrape(fake, path, not_staff) == (403, '{"detail": "is_staff required"}')
    status, text = scrape(fake, path, world.token)
    assert status == 200 and "process_resident_memory_bytes" in text
    assert "glitchtip_projects" in text and "django_http_" not in text
    assert scrape(fake, "/metrics")[0] == 404


def test_glitchtip_6_serves_metrics_without_auth_only_when_enabled():
    off = start_fake(major=6)
    on = start_fake(major=6, observability_api=True)
    try:
        assert scrape(off, "/metrics")[0] == 404
        world = make_world(on)
        assert scrape(on, "/api/0/observability/django/", world.token)[0] == 404
        status, text = scrape(on, "/metrics")
        assert status == 200 and "glitchtip_organizations 1.0" in text
        assert 'view="apps.observability.views.prometheus_metrics_view"' not in text  # not yet
        status, text = scrape(on, "/metrics")
        assert 'view="apps.observability.views.prometheus_metrics_view"' in text
    finally:
        off.stop()
        on.stop()


def test_each_fake_counts_its_own_requests():
    first = start_fake(observability_api=True)
    second = start_fake(observability_api=True)
    try:
        world = make_world(first)
        make_world(second)
        traffic(first, world.token)
        text = scrape(first, "/api/0/observability/django/", world.token)[1]
        projects = {"method": "GET", "transport": "http", "view": "api:list_organization_projects"}
        name = "django_http_requests_total_by_view_transport_method_total"
        assert value_of(text, name, projects) == 2
        other = second.app.metrics.http
        assert other.get_sample_value("django_http_requests_before_middlewares_total") == 0
    finally:
        first.stop()
        second.stop()
