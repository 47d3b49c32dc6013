"""The fake GlitchTip must answer every recorded exchange as the real server did.

One test per recording in the shared contract directory (new recordings join by themselves),
each replayed alone on a fresh fake built from the state the earlier recordings of its server
left (runner.py). A recording compares status, JSON keys, value types, the values the kit reads,
content types, and the `Link`, `X-Hits` and `Set-Cookie` headers (compare.py). A recording of an
endpoint the fake does not implement is skipped with the endpoint's name (endpoints.py); every
recording of an endpoint the kit calls must match, also over a real socket.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from compare import json_errors, parse_cookie
from endpoints import (
    KIT_ENDPOINTS,
    endpoint,
    fake_route,
    not_implemented_reason,
    values_the_kit_ignores,
)
from fakeglitchtip import MemoryQueue, MemoryStore, model, start_fake
from recordings import REPO, load_recordings, missing_message, recordings_dir
from replay import AppTransport, HttpTransport
from runner import GROUPS, Fake, Replays, play

RECORDINGS_DIR = recordings_dir()
RECORDINGS = load_recordings(RECORDINGS_DIR)
REPLAYS = Replays(RECORDINGS)
IDS = [name for group in GROUPS for name in REPLAYS.order[group]]
KIT_IDS = [
    name
    for name in IDS
    if endpoint(RECORDINGS[name]) in KIT_ENDPOINTS and not values_the_kit_ignores(name)
]


@pytest.fixture
def recorded():
    """The recordings, or one line saying where they were looked for and how to fix it."""
    if not RECORDINGS:
        pytest.fail(missing_message(RECORDINGS_DIR), pytrace=False)
    return RECORDINGS


def test_recordings_are_present():
    if not RECORDINGS:
        pytest.fail(missing_message(RECORDINGS_DIR), pytrace=False)
    assert sorted(IDS) == sorted(RECORDINGS)  # every recording belongs to a replayed group


@pytest.mark.parametrize("name", IDS)
def test_fake_answers_like_the_recording(name):
    recording = RECORDINGS[name]
    reason = not_implemented_reason(name, recording)
    if reason is not None and fake_route(recording) is None:
        pytest.skip(reason)
    outcome = REPLAYS.run(name)
    if reason is not None:
        if not outcome.errors:
            pytest.fail(f"{name} now matches: take it out of NOT_IMPLEMENTED_FEATURES")
        pytest.xfail(reason)
    if outcome.errors:
        pytest.fail(f"{name}: " + "; ".join(outcome.errors[:8]), pytrace=False)


# --- the endpoints the kit calls ------------------------------------------------------------------

KIT_SOURCES = ("provision/api/client.py", "provision/api/bootstrap.py", "provision/declare/api.py")
PATH_LITERAL = re.compile(r"""f?["'](/(?:api|_allauth)/[^"']*)["']""")


def kit_paths() -> set[str]:
    """API paths written in the kit's client and bootstrap code, as templates."""
    paths = set()
    for source in KIT_SOURCES:
        for literal in PATH_LITERAL.findall((REPO / source).read_text()):
            paths.add(re.sub(r"\{q\((\w+)\)\}", r"{\1}", literal))
    return paths


def test_kit_endpoint_list_matches_the_kit_code(recorded):
    listed = {path for _, path in KIT_ENDPOINTS}
    assert kit_paths() <= listed, "add the new endpoint to endpoints.KIT_ENDPOINTS"
    probes = {"/_health/", "/api/settings/", "/api/{project_id}/envelope/"}
    probes.add("/api/{project_id}/store/")
    assert listed - kit_paths() <= probes


def test_every_kit_endpoint_is_recorded_and_covered(recorded):
    recorded = {endpoint(RECORDINGS[name]) for name in KIT_IDS}
    assert not KIT_ENDPOINTS - recorded, sorted(KIT_ENDPOINTS - recorded)
    named = [name for name in KIT_IDS if not_implemented_reason(name, RECORDINGS[name])]
    assert not named


@pytest.fixture(scope="module")
def servers():
    """One real fake server per recorded server state; each replay swaps in a fresh state."""
    started = {}
    yield started
    for handle in started.values():
        handle.stop()


def test_every_kit_endpoint_recording_matches_over_http(recorded, servers):
    failures = []
    for name in KIT_IDS:
        group = next(g for g, names in REPLAYS.order.items() if name in names)
        settings = GROUPS[group]
        if group not in servers:
            servers[group] = start_fake(
                glitchtip_domain=settings.domain,
                allowed_hosts=settings.allowed_hosts,
                enable_user_registration=settings.enable_user_registration,
                enable_organization_creation=settings.enable_organization_creation,
            )
        handle = servers[group]
        snapshot = REPLAYS.chain(group).snapshot(name)
        handle.app.store = MemoryStore(snapshot.state)
        handle.app.queue = MemoryQueue()
        replayer = copy.deepcopy(snapshot.replayer)
        host, port = handle.url.removeprefix("http://").split(":")
        replayer.transport = HttpTransport(host, int(port), settings.host)
        try:
            errors = play(replayer, RECORDINGS[name]).errors
        except Exception as error:  # one broken replay must not hide the others
            errors = [f"raised {error!r}"]
        if errors:
            failures.append(f"{name}: {'; '.join(errors[:3])}")
    assert len(KIT_IDS) >= 30
    assert not failures, "\n".join(failures)


def test_session_cookies_are_secure_when_the_domain_is_https(recorded):
    """Recorded over http; with an https GLITCHTIP_DOMAIN Django adds Secure (NOTES.md)."""
    name = "13_allauth_login_ok"
    snapshot = REPLAYS.chain("main").snapshot(name)
    group = GROUPS["main"]
    https = group.__class__(**{**vars(group), "domain": "https://127.0.0.1:8000"})
    fake = Fake.build(https, snapshot.state)
    replayer = copy.deepcopy(snapshot.replayer)
    replayer.transport = AppTransport(fake.app, group.host)
    outcome = play(replayer, RECORDINGS[name], secure=True)
    assert not outcome.errors
    cookies = [parse_cookie(v) for k, v in outcome.headers if k.lower() == "set-cookie"]
    assert {name for name, _, attributes in cookies if "secure" in attributes} == {
        "csrftoken",
        "sessionid",
    }


# --- the comparison can fail ----------------------------------------------------------------------

KEYS_LIST = "60_project_keys_list"


@pytest.fixture
def warm(recorded):
    """Build the chain first: a mutation below breaks only the fresh fake of one replay."""
    REPLAYS.chain("main").snapshot(KEYS_LIST)


def test_a_malformed_dsn_fails_the_replay(warm, monkeypatch):
    real = model.key_json

    def broken(key, domain):
        body = real(key, domain)
        body["dsn"]["public"] = "not-a-dsn"
        return body

    assert not REPLAYS.run(KEYS_LIST).errors
    monkeypatch.setattr(model, "key_json", broken)
    errors = REPLAYS.run(KEYS_LIST).errors
    assert errors == [
        "$[0].dsn.public: 'not-a-dsn' does not have the recorded form "
        "'http://<PUBLIC_KEY>@127.0.0.1:8000/1'"
    ]


def test_a_dsn_of_another_host_or_project_fails():
    bindings = {"PUBLIC_KEY": "0123456789abcdef0123456789abcdef"}
    recorded = {"public": "http://<PUBLIC_KEY>@127.0.0.1:8000/1"}
    good = {"public": "http://0123456789abcdef0123456789abcdef@127.0.0.1:8000/1"}
    assert json_errors(recorded, good, bindings) == []
    for bad in ("http://0123456789abcdef0123456789abcdef@127.0.0.1:8000/2", "https://x@y/1"):
        assert json_errors(recorded, {"public": bad}, bindings)


def test_missing_link_and_wrong_hits_fail(warm, monkeypatch):
    from fakeglitchtip.app import FakeGlitchTip

    real = FakeGlitchTip.paginated

    def no_link(self, request, items):
        response = real(self, request, items)
        response.headers = [
            (k, str(len(items) + 1) if k == "X-Hits" else v)
            for k, v in response.headers
            if k != "Link"
        ]
        return response

    monkeypatch.setattr(FakeGlitchTip, "paginated", no_link)
    errors = REPLAYS.run(KEYS_LIST).errors
    assert any(e.startswith("Link: missing") for e in errors)
    assert "x-hits: ['2'], recorded '1'" in errors


def test_a_scalar_type_difference_fails(warm, monkeypatch):
    real = model.key_json

    def int_project(key, domain):
        body = real(key, domain)
        body["projectID"] = str(body["projectID"])
        return body

    monkeypatch.setattr(model, "key_json", int_project)
    assert REPLAYS.run(KEYS_LIST).errors == ["$[0].projectID: type string ('1'), recorded int (1)"]


def test_a_cookie_attribute_difference_fails(warm, monkeypatch):
    from fakeglitchtip.app import FakeGlitchTip

    real = FakeGlitchTip._allauth

    def no_httponly(self, *args, **kwargs):
        response = real(self, *args, **kwargs)
        response.headers = [(k, v.replace("; HttpOnly", "")) for k, v in response.headers]
        return response

    monkeypatch.setattr(FakeGlitchTip, "_allauth", no_httponly)
    assert REPLAYS.run("13_allauth_login_ok").errors == ["Set-Cookie sessionid: httponly missing"]


def test_recordings_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GLITCHTIP_CONTRACT_DIR", str(tmp_path))
    assert recordings_dir() == tmp_path
    (tmp_path / "fixtures").mkdir()
    assert recordings_dir() == tmp_path / "fixtures"
    monkeypatch.delenv("GLITCHTIP_CONTRACT_DIR")
    assert recordings_dir() == REPO.parent / "shared" / "glitchtip-contract" / "fixtures"
    missing = Path(tmp_path / "nowhere")
    assert load_recordings(missing) == {}
    assert "GLITCHTIP_CONTRACT_DIR" in missing_message(missing)
