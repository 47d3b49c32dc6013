"""Replay each recording in isolation: a fresh fake per recording, built from the state earlier
recordings of the same server left behind.

For each recorded server state (a "group") one chain replays the group's recordings in order,
once, on one in-process fake; before each recording it keeps a snapshot (the store's JSON state,
the event queue, the replayer's bindings and cookies). The test of a recording starts a fresh
fake from that snapshot and replays only that recording, so one replay that raises or answers
wrongly cannot make another fail. Steps that happened outside HTTP between recordings
(createsuperuser, tokens minted by hand, the worker) are written down here, keyed by the
recording they preceded.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from compare import header_errors, header_values, json_errors
from fakeglitchtip import (
    ALL_SCOPES,
    FakeConfig,
    FakeGlitchTip,
    MemoryQueue,
    MemoryStore,
    Request,
    create_api_token,
    create_superuser,
    process_pending,
    run_uptime_checks,
)
from fakeglitchtip import model as fake_model
from recordings import group_of, ordered
from replay import AppTransport, Replayer

PASSWORDS = {
    "ADMIN_PASSWORD": "admin-Passw0rd-123",
    "FIRST_USER_PASSWORD": "first-Passw0rd-123",
    "SECOND_USER_PASSWORD": "second-Passw0rd-123",
}


@dataclass(frozen=True)
class Group:
    """A recorded server: its settings, and the Host and GLITCHTIP_DOMAIN the recording saw."""

    host: str
    domain: str
    allowed_hosts: tuple[str, ...] = ("*",)
    enable_user_registration: bool = True
    enable_organization_creation: bool = False

    def config(self) -> FakeConfig:
        return FakeConfig(
            glitchtip_domain=self.domain,
            allowed_hosts=self.allowed_hosts,
            enable_user_registration=self.enable_user_registration,
            enable_organization_creation=self.enable_organization_creation,
        )


GROUPS = {
    # NOTES.md §2: ALLOWED_HOSTS=127.0.0.1,localhost and ENABLE_USER_REGISTRATION=false.
    "main": Group(
        "127.0.0.1:8000",
        "http://127.0.0.1:8000",
        ("127.0.0.1", "localhost"),
        enable_user_registration=False,
    ),
    "initial_user": Group("127.0.0.1:8001", "http://127.0.0.1:8001"),  # a second server
    "fresh": Group("127.0.0.1:8000", "http://127.0.0.1:8000", enable_user_registration=False),
    # Fixtures 150+: the Docker image published at 127.0.0.1:18000, GLITCHTIP_DOMAIN localhost.
    "contract": Group("127.0.0.1:18000", "http://localhost:18000", enable_user_registration=False),
}


@dataclass
class Fake:
    """One in-process fake: the application, its store and queue."""

    app: FakeGlitchTip
    store: MemoryStore
    queue: MemoryQueue

    @classmethod
    def build(cls, group: Group, state: dict | None = None, queued: list | None = None) -> Fake:
        store = MemoryStore(copy.deepcopy(state) if state is not None else None)
        queue = MemoryQueue()
        for item in queued or []:
            queue.push(item)
        return cls(FakeGlitchTip(store, queue, group.config()), store, queue)

    def queued(self) -> list[dict]:
        with self.queue._lock:
            return copy.deepcopy(list(self.queue._items))


Step = Callable[[Fake, Replayer], None]


def _superuser(email: str, password_name: str) -> Step:
    return lambda fake, replayer: create_superuser(
        fake.store, email, replayer.bindings[password_name]
    )


def _token(name: str, email: str, scopes, label: str) -> Step:
    def step(fake: Fake, replayer: Replayer) -> None:
        replayer.bindings[name] = create_api_token(fake.store, email, list(scopes), label)

    return step


def _user(email: str) -> Step:
    def step(fake: Fake, replayer: Replayer) -> None:
        with fake.store.transaction() as state:
            fake_model.add_user(state, email, "user-Passw0rd-123", superuser=False)

    return step


def _join(email: str, org_slug: str) -> Step:
    """The invited user accepted in the web UI (session + CSRF, recorded 294): the pending
    member becomes an accepted one with its role and teams."""

    def step(fake: Fake, replayer: Replayer) -> None:
        with fake.store.transaction() as state:
            user = fake_model.find_user(state, email)
            for org in state["orgs"].values():
                if org["slug"] == org_slug and user and user["id"] not in org["members"]:
                    invite = org.get("invites", {}).pop(str(user["id"]), None)
                    org["members"].append(user["id"])
                    org["member_since"][str(user["id"])] = (
                        invite["created"] if invite else fake_model.now_iso()
                    )
                    if invite is not None:
                        org.setdefault("roles", {})[str(user["id"])] = invite["role"]
                        for team in fake_model.org_teams(state, org["id"]):
                            if team["slug"] in invite["teams"]:
                                team["members"].append(user["id"])

    return step


def _steps(*steps: Step) -> Step:
    def run(fake: Fake, replayer: Replayer) -> None:
        for step in steps:
            step(fake, replayer)

    return run


def _logged_in(email: str) -> Step:
    """The user logged in through the web UI (GlitchTip then shows a `lastLogin`)."""

    def step(fake: Fake, replayer: Replayer) -> None:
        with fake.store.transaction() as state:
            user = fake_model.find_user(state, email)
            if user is not None:
                user["last_login"] = fake_model.now_iso()

    return step


def _skip_id(table: str) -> Step:
    def step(fake: Fake, replayer: Replayer) -> None:
        with fake.store.transaction() as state:
            fake_model.next_id(state, table)

    return step


def _repair_project(org_slug: str, old: str, slug: str, platform: str) -> Step:
    def step(fake: Fake, replayer: Replayer) -> None:
        with fake.store.transaction() as state:
            for project in state["projects"].values():
                org = state["orgs"].get(str(project["org_id"]), {})
                if org.get("slug") == org_slug and project["slug"] == old:
                    project.update(slug=slug, platform=platform)

    return step


def _delete_alert(alert_id: int) -> Step:
    def step(fake: Fake, replayer: Replayer) -> None:
        with fake.store.transaction() as state:
            state["alerts"].pop(str(alert_id), None)

    return step


def _soft_delete(org_slug: str, project_slug: str) -> Step:
    def step(fake: Fake, replayer: Replayer) -> None:
        with fake.store.transaction() as state:
            for project in state["projects"].values():
                org = state["orgs"].get(str(project["org_id"]), {})
                if org.get("slug") == org_slug and project["slug"] == project_slug:
                    project["deleted"] = True

    return step


# The SDK events of the fixtures-150+ data set (NOTES.md "Data set and how it was made"), sent
# through the fake's own ingest endpoint with each project's key and stored by the worker.
SDK_EVENTS = (
    ("PUBLIC_KEY", 1, "production", "1.0.0", [("ZeroDivisionError", "division by zero")] * 3),
    ("PUBLIC_KEY", 1, "production", "1.0.0", [("ValueError", "bad customer")]),
    ("PUBLIC_KEY", 1, "production", "1.0.0", [(None, "user signed up")]),
    ("PUBLIC_KEY", 1, "staging", "1.1.0", [("KeyError", "'cart'"), (None, "fatal message")]),
    ("PUBLIC_KEY", 1, "staging", "1.1.0", [(None, "cache miss storm")]),
    ("PUBLIC_KEY_2", 2, "production", "1.0.0", [("RuntimeError", "job failed")] * 2),
    ("PUBLIC_KEY_2", 2, "staging", "1.1.0", [(None, "queue is slow")]),
)


# When the real server received the data set (issues' firstSeen, recorded 190): stats_v2 counts
# by received hour, and its recordings ask for fixed windows around that hour.
SDK_RECEIVED = "2026-11-26T04:37:24.213Z"


def _received_at(fake: Fake, stamp: str) -> None:
    """Queued items as if received at `stamp` (the replay runs on another day)."""
    items = []
    while (item := fake.queue.pop()) is not None:
        items.append({**item, "received": stamp})
    for item in items:
        fake.queue.push(item)


# The SDK transactions recorded before 157/158: name, op, environment, duration (ms).
SDK_TRANSACTIONS = (
    ("GET /orders", "http.server", "production", 13),
    ("GET /orders", "http.server", "production", 11),
    ("POST /checkout", "http.server", "staging", 11),
)


def _send_sdk_transactions(fake: Fake, replayer: Replayer) -> None:
    """The recorder's three sentry-sdk transactions to contract-web, as envelopes (queued; the
    caller stamps and processes them with the data set's events)."""
    key = replayer.bindings["PUBLIC_KEY"].replace("-", "")
    for number, (name, op, environment, duration) in enumerate(SDK_TRANSACTIONS):
        event_id = f"{number + 1:032x}"
        event = {
            "type": "transaction",
            "event_id": event_id,
            "transaction": name,
            "start_timestamp": "2026-11-26T04:37:24.200Z",
            "timestamp": f"2026-11-26T04:37:24.{200 + duration:03d}Z",
            "contexts": {"trace": {"op": op, "trace_id": "0" * 32, "span_id": "0" * 16}},
            "environment": environment,
            "spans": [],
        }
        body = "\n".join(
            json.dumps(part) for part in ({"event_id": event_id}, {"type": "transaction"}, event)
        )
        request = Request(
            "POST",
            "/api/1/envelope/",
            {
                "host": "127.0.0.1:18000",
                "content-type": "application/x-sentry-envelope",
                "x-sentry-auth": f"Sentry sentry_key={key}, sentry_version=7",
            },
            body.encode(),
        )
        response = fake.app.handle(request)
        assert response.status == 200, response.body


def _sdk_events() -> Step:
    def step(fake: Fake, replayer: Replayer) -> None:
        _send_sdk_transactions(fake, replayer)
        for key_name, project_id, environment, release, events in SDK_EVENTS:
            key = replayer.bindings[key_name].replace("-", "")
            for kind, text in events:
                event: dict[str, Any] = {"environment": environment, "release": release}
                if kind is None:
                    event["message"] = text
                else:
                    event["exception"] = {"values": [{"type": kind, "value": text}]}
                request = Request(
                    "POST",
                    f"/api/{project_id}/store/?sentry_key={key}",
                    {"host": "127.0.0.1:18000", "content-type": "application/json"},
                    json.dumps(event).encode(),
                )
                response = fake.app.handle(request)
                assert response.status == 200, response.body
        _received_at(fake, SDK_RECEIVED)
        process_pending(fake.store, fake.queue)

    return step


READONLY = ["project:read", "org:read"]
FIRST_USER_SCOPES = [
    "project:read",
    "project:write",
    "project:admin",
    "team:read",
    "team:write",
    "team:admin",
    "event:read",
    "org:read",
    "org:write",
    "org:admin",
    "member:read",
]
# What happened outside HTTP before a recording, keyed by that recording.
SETUP: dict[str, Step] = {
    "10_allauth_session_anonymous": _superuser("admin@example.com", "ADMIN_PASSWORD"),
    "19_api_tokens_list_session": _token(
        "EVENT_READ_TOKEN", "admin@example.com", ["event:read"], "event-read-only"
    ),
    "88_monitors_list_after_worker_checks": lambda fake, _: run_uptime_checks(
        fake.store, force=True
    ),
    "110_project_issues_list": lambda fake, _: process_pending(fake.store, fake.queue),
    # The first user minted a token with the kit's bootstrap scopes of that time.
    "133_first_user_api_root": _token(
        "FIRST_USER_TOKEN", "first@example.com", FIRST_USER_SCOPES, "bootstrap"
    ),
    # Deleted without a recording: `55_projects_list_all` no longer lists it, while the org
    # detail (`65`) still shows both soft-deleted projects.
    "55_project_get": _soft_delete("acme", "web-app-2"),
    # Fixtures 150+: a new server with its admin and tokens minted before the recording, and
    # two more users made in the Django admin (NOTES.md "Data set and how it was made").
    "150_setup_org_create_contract_org_201": _steps(
        _superuser("admin@example.com", "ADMIN_PASSWORD"),
        _token("TOKEN", "admin@example.com", ALL_SCOPES, "provisioning"),
        _token("READONLY_TOKEN", "admin@example.com", READONLY, "read-only"),
        _token("EVENT_READ_TOKEN", "admin@example.com", ["event:read"], "event-read-only"),
        _token(
            "PROJECT_WRITE_TOKEN",
            "admin@example.com",
            ["project:read", "project:write"],
            "project-write",
        ),
        _logged_in("admin@example.com"),
        _user("member@example.com"),
        _user("viewer@example.com"),
        _token("MEMBER_TOKEN", "member@example.com", ALL_SCOPES, "member"),
    ),
    "157_org_transaction_groups_list": _steps(_sdk_events()),
    # `336` stored the slug "Not A Slug!", which no API route reaches; the recorder repaired it
    # through the Django admin's import (NOTES.md, Projects).
    "337_project_update_put_event_throttle_rate": _repair_project(
        "contract-org", "Not A Slug!", "contract-worker", "python-celery"
    ),
    # Deleted without a recording: `401` lists alerts 3, 2, 1; `403` deletes 3; `405` shows 1.
    "405_project_alerts_list_final": _delete_alert(2),
    # The recorded server's team sequence skipped id 4 (an insert rolled back unrecorded).
    "379b_team_create_for_delete_201": _skip_id("team"),
    "296_org_members_list_after_accept": _steps(
        _join("member@example.com", "contract-org"), _logged_in("member@example.com")
    ),
}
INITIAL_USER_TOKEN = "ab" * 32


@dataclass
class Snapshot:
    """What a fresh fake needs to answer one recording as the recorded server did."""

    state: dict
    queued: list[dict]
    replayer: Replayer


@dataclass
class Chain:
    """One group's recordings replayed once in order, keeping a snapshot before each."""

    group: str
    names: list[str]
    recordings: dict[str, dict]
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    step_errors: dict[str, str] = field(default_factory=dict)
    position: int = 0

    def __post_init__(self) -> None:
        self.fake = Fake.build(GROUPS[self.group])
        self.replayer = Replayer(
            AppTransport(self.fake.app, GROUPS[self.group].host), bindings=dict(PASSWORDS)
        )
        if self.group == "initial_user":  # INITIAL_USER_* env vars read by a migration
            create_superuser(self.fake.store, "bootstrap@example.com", "boot-Passw0rd-123")
            self.replayer.bindings["INITIAL_USER_AUTH_TOKEN"] = create_api_token(
                self.fake.store, "bootstrap@example.com", ["org:admin"], "", INITIAL_USER_TOKEN
            )

    def snapshot(self, name: str) -> Snapshot:
        """The state just before `name` (replaying the earlier recordings once, if needed)."""
        while name not in self.snapshots:
            current = self.names[self.position]
            self.position += 1
            step = SETUP.get(current)
            if step is not None:
                try:
                    step(self.fake, self.replayer)
                except Exception as error:  # that recording's test reports it
                    self.step_errors[current] = f"setup step failed: {error!r}"
            transport = self.replayer.transport
            self.replayer.transport = None
            self.snapshots[current] = Snapshot(
                self.fake.store.snapshot(), self.fake.queued(), copy.deepcopy(self.replayer)
            )
            self.replayer.transport = transport
            # A replay that raises is that recording's own failure (its test shows it); the
            # chain goes on so that later recordings still get their state.
            with contextlib.suppress(Exception):
                play(self.replayer, self.recordings[current])
        return self.snapshots[name]


@dataclass
class Outcome:
    """A fake's answer to one recording and how it differs from the recorded one."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    actual: Any
    errors: list[str]


def play(replayer: Replayer, recording: dict, *, secure: bool = False) -> Outcome:
    """Send one recording, learn placeholders from the answer, and compare it with the recording."""
    status, headers, body = replayer.send(recording)
    recorded = recording["response"]
    errors = []
    if status != recorded["status"]:
        errors.append(f"status {status}, recorded {recorded['status']}")
    actual: Any = None
    if "json" in recorded:
        try:
            actual = json.loads(body.decode())
        except ValueError:
            errors.append(f"body is not JSON: {body[:80]!r}")
        else:
            replayer.learn(recording, actual)
            if status == recorded["status"]:
                errors += json_errors(
                    recorded["json"], actual, replayer.bindings, aliases=replayer.slug_aliases
                )
    elif "text" in recorded and status == recorded["status"]:
        content_type = (recorded.get("headers") or {}).get("content-type", "")
        plain = content_type.startswith("text/plain") and "version=" not in content_type
        if plain and body.decode("utf-8", "replace") != recorded["text"]:
            errors.append(f"text {body[:60]!r}, recorded {recorded['text'][:60]!r}")
    errors += header_errors(recorded.get("headers") or {}, headers, secure=secure)
    return Outcome(status, headers, body, actual, errors)


class Replays:
    """Lazily built chains for every group; `run(name)` replays one recording on a fresh fake."""

    def __init__(self, recordings: dict[str, dict]) -> None:
        self.recordings = recordings
        self.order = {g: ordered([n for n in recordings if group_of(n) == g]) for g in GROUPS}
        self.chains: dict[str, Chain] = {}

    def chain(self, group: str) -> Chain:
        if group not in self.chains:
            self.chains[group] = Chain(group, self.order[group], self.recordings)
        return self.chains[group]

    def run(self, name: str, *, mutate: Callable[[Fake], None] | None = None) -> Outcome:
        """Replay `name` alone on a fresh fake built from the chain's snapshot."""
        group = group_of(name)
        snapshot = self.chain(group).snapshot(name)
        fake = Fake.build(GROUPS[group], snapshot.state, snapshot.queued)
        if mutate is not None:
            mutate(fake)
        replayer = copy.deepcopy(snapshot.replayer)
        replayer.transport = AppTransport(fake.app, GROUPS[group].host)
        outcome = play(replayer, self.recordings[name])
        if name in self.chain(group).step_errors:
            outcome.errors.insert(0, self.chain(group).step_errors[name])
        return outcome


__all__ = ["GROUPS", "Outcome", "Replays", "header_values", "play"]
