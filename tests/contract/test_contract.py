"""The fake GlitchTip must answer every recorded exchange with the recorded status and shape.

One test per fixture file (145), replayed in recorded order against one fake per recorded server
state. A failure names the fixture and the first differences in JSON shape.
"""

from __future__ import annotations

import json

import pytest
from fakeglitchtip import (
    ALL_SCOPES,
    create_api_token,
    create_superuser,
    process_pending,
    run_uptime_checks,
    start_fake,
)
from replay import Replayer, fixture_order, load_fixtures, shape_errors

PASSWORDS = {
    "ADMIN_PASSWORD": "admin-Passw0rd-123",
    "FIRST_USER_PASSWORD": "first-Passw0rd-123",
    "SECOND_USER_PASSWORD": "second-Passw0rd-123",
}
# The recorded run tried the weak password before the successful signup.
MOVED_BEFORE = {"131_signup_first_user_weak_password_400": "131_signup_first_user_200"}
# Which recorded server state each fixture belongs to (NOTES.md §2 B and C).
GROUPS = {
    "initial_user": range(120, 130),
    "fresh": range(130, 140),
}
GROUP_CONFIG = {
    # ALLOWED_HOSTS=127.0.0.1,localhost and ENABLE_USER_REGISTRATION=false in the main run.
    "main": {"allowed_hosts": ("127.0.0.1", "localhost"), "enable_user_registration": False},
    "initial_user": {},
    "fresh": {"enable_user_registration": False, "enable_organization_creation": False},
}


def group_of(name: str) -> str:
    number = fixture_order(name)[0]
    for group, numbers in GROUPS.items():
        if number in numbers:
            return group
    return "main"


def ordered(names: list[str]) -> list[str]:
    result = sorted(names, key=fixture_order)
    for name, before in MOVED_BEFORE.items():
        if name in result and before in result:
            result.remove(name)
            result.insert(result.index(before), name)
    return result


ALL = load_fixtures()
ORDER = {g: ordered([n for n in ALL if group_of(n) == g]) for g in GROUP_CONFIG}
IDS = [name for group in GROUP_CONFIG for name in ORDER[group]]


def _setup_steps(fake, replayer: Replayer) -> dict:
    """What happened outside HTTP before a recording, keyed by that recording."""
    store = fake.store

    def superuser(email: str, password_name: str):
        return lambda: create_superuser(store, email, replayer.bindings[password_name])

    def token(name: str, email: str, scopes, label: str):
        def step():
            replayer.bindings[name] = create_api_token(store, email, list(scopes), label)

        return step

    return {
        "10_allauth_session_anonymous": superuser("admin@example.com", "ADMIN_PASSWORD"),
        "19_api_tokens_list_session": token(
            "EVENT_READ_TOKEN", "admin@example.com", ["event:read"], "event-read-only"
        ),
        "88_monitors_list_after_worker_checks": lambda: run_uptime_checks(store, force=True),
        "110_project_issues_list": lambda: process_pending(store, fake.queue),
        "133_first_user_api_root": token(
            "FIRST_USER_TOKEN", "first@example.com", ALL_SCOPES, "first"
        ),
    }


class GroupRun:
    """One fake per recorded server state, replaying its fixtures in order."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.fake = start_fake(glitchtip_domain="http://127.0.0.1:8000", **GROUP_CONFIG[group])
        host, port = self.fake.url.removeprefix("http://").split(":")
        self.replayer = Replayer(host, int(port), bindings=dict(PASSWORDS))
        self.steps = _setup_steps(self.fake, self.replayer)
        if group == "initial_user":
            create_superuser(self.fake.store, "bootstrap@example.com", "boot-Passw0rd-123")
            self.replayer.bindings["INITIAL_USER_AUTH_TOKEN"] = create_api_token(
                self.fake.store, "bootstrap@example.com", ["org:admin"], "initial", "ab" * 32
            )
        self.done: list[str] = []

    def replay(self, name: str):
        step = self.steps.get(name)
        if step is not None:
            step()
        fixture = ALL[name]
        status, _headers, body = self.replayer.send(fixture)
        actual = None
        if "json" in fixture["response"]:
            actual = json.loads(body.decode())
            self.replayer.learn(fixture, actual)
        self.done.append(name)
        return status, actual


@pytest.fixture(scope="module")
def runs():
    started: dict[str, GroupRun] = {}
    yield started
    for run in started.values():
        run.fake.stop()


@pytest.mark.parametrize("name", IDS)
def test_fake_replays_recorded_exchange(name, runs):
    group = group_of(name)
    run = runs.get(group) or runs.setdefault(group, GroupRun(group))
    # Replay anything earlier in the group that was not run (e.g. with -k selection).
    for earlier in ORDER[group][: ORDER[group].index(name)]:
        if earlier not in run.done:
            run.replay(earlier)
    status, actual = run.replay(name)
    recorded = ALL[name]["response"]
    assert status == recorded["status"], f"{name}: status {status}, recorded {recorded['status']}"
    if "json" in recorded:
        errors = shape_errors(recorded["json"], actual)
        assert not errors, f"{name}: " + "; ".join(errors[:5])


def test_every_fixture_is_replayed():
    assert len(IDS) == len(ALL) == 145
