"""The kit's Locust file itself (provision/load/locustfile.py), driven in this process.

Locust is not in the kit's venv, and `import locust` would run gevent's `monkey.patch_all()`
(locust's `__init__`), turning every later test's threads and sockets into greenlets. So each
test puts a stand-in `locust` module into `sys.modules` holding only the names the file imports,
each behaving as Locust documents it:

- `events.init` / `events.test_start`: an event hook whose `add_listener` returns the handler
  (so it works as a decorator) and whose `fire(**kwargs)` calls every listener with the keyword
  arguments (Locust fires both with `environment=`);
- `task`: usable bare (`@task`, weight 1) or with a weight; it marks the function;
- `constant(wait)` / `constant_throughput(rate)`: wait-time functions (tagged here so the test
  can see which one the user class chose);
- `FastHttpUser(environment)`: the base class; its `client.post(..., catch_response=True)` is a
  context manager whose response has `status_code`, `json()` (ValueError on a body that is not
  JSON, as `json.loads`) and `failure(message)`, which marks the request failed in Locust's
  statistics; a request not marked is a success (the file's every path decides explicitly).

The file is imported fresh for each environment (it reads GLITCHTIP_LOAD_* at import) under its
real name, then removed from `sys.modules` with the `payloads` module it imports beside itself
and the `sys.path` entry it adds: nothing leaks into later tests. The answers GlitchTip gives
are the recorded ones (contract fixtures 100 and 101: an envelope answers `{"id": <hex>}`, the
store endpoint `{"event_id": <hex>, "task_id": null}`); an answer naming the id with dashes (a
UUID's usual text) is not recorded from GlitchTip: the file accepts it on purpose.
"""

from __future__ import annotations

import gzip
import importlib
import json
import random
import sys
import types
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest

import provision.load

DSN = "https://0123456789abcdef0123456789abcdef@glitchtip.example/7"
KEY = "0123456789abcdef0123456789abcdef"
MALFORMED = (
    "GLITCHTIP_LOAD_DSN is missing or malformed: "
    "a DSN looks like http://<public key>@host/<project id>"
)
NAME = "provision.load.locustfile"


class EventHook:
    """Locust's `EventHook`: listeners added (the handler returned), fired with keywords."""

    def __init__(self) -> None:
        self.listeners: list = []

    def add_listener(self, handler):
        self.listeners.append(handler)
        return handler

    def fire(self, **kwargs) -> None:
        for handler in self.listeners:
            handler(**kwargs)


def _stand_in_locust() -> types.ModuleType:
    module = types.ModuleType("locust")
    module.events = types.SimpleNamespace(init=EventHook(), test_start=EventHook())

    def task(weight=1):
        if callable(weight):  # bare @task
            weight.locust_task_weight = 1
            return weight

        def mark(function):
            function.locust_task_weight = weight
            return function

        return mark

    def constant(wait):
        def wait_time(user):
            return wait

        wait_time.kind = ("constant", wait)
        return wait_time

    def constant_throughput(rate):
        def wait_time(user):
            return 1 / rate

        wait_time.kind = ("constant_throughput", rate)
        return wait_time

    class FastHttpUser:
        def __init__(self, environment) -> None:
            self.environment = environment

    module.task = task
    module.constant = constant
    module.constant_throughput = constant_throughput
    module.FastHttpUser = FastHttpUser
    return module


@dataclass
class Response:
    """What `client.post(..., catch_response=True)` yields inside its `with` block."""

    status_code: int
    text: str
    failures: list[str] = field(default_factory=list)

    def json(self):
        return json.loads(self.text)

    def failure(self, message: str) -> None:
        self.failures.append(message)

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *_exc) -> None:
        return None


class Client:
    """Records every post; answers with `answer(path, event_id) -> (status, text)`."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.posts: list[dict] = []
        self.responses: list[Response] = []

    def post(self, path, data=None, headers=None, name=None, catch_response=False):
        assert catch_response is True  # failure() is only allowed inside a caught request
        self.posts.append({"path": path, "data": data, "headers": headers, "name": name})
        status, text = self.answer(path, sent_event_id(data, headers))
        self.responses.append(Response(status, text))
        return self.responses[-1]


def sent_event_id(body: bytes, headers: dict) -> str:
    """The event id a request carries, read as GlitchTip reads it (envelope header or JSON)."""
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return json.loads(body.split(b"\n", 1)[0])["event_id"]


def recorded_answer(path: str, event_id: str) -> tuple[int, str]:
    """GlitchTip's recorded 200 answers (fixtures 100 and 101)."""
    if path.endswith("/store/"):
        return 200, json.dumps({"event_id": event_id, "task_id": None})
    return 200, json.dumps({"id": event_id})


@pytest.fixture
def load_file(monkeypatch: pytest.MonkeyPatch):
    """Import the locustfile fresh with the given GLITCHTIP_LOAD_* environment."""
    saved = {name: sys.modules.get(name) for name in (NAME, "payloads")}

    def load(**environment: str) -> types.ModuleType:
        for name in ("DSN", "HOST_HEADER", "ISSUES", "MIX", "RATE", "SEND_FOR"):
            monkeypatch.delenv(f"GLITCHTIP_LOAD_{name}", raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(f"GLITCHTIP_LOAD_{name.upper()}", value)
        monkeypatch.setitem(sys.modules, "locust", _stand_in_locust())
        for name in saved:  # a fresh import, and the `payloads` beside the file
            sys.modules.pop(name, None)
        monkeypatch.setattr(provision.load, "locustfile", None, raising=False)
        monkeypatch.setattr(sys, "path", list(sys.path))  # the file inserts its own directory
        return importlib.import_module(NAME)

    yield load
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


def started_user(module, answer=recorded_answer, seed=7):
    """A user as Locust runs it: on_start, then tasks; its client answers with `answer`."""
    user = module.SdkUser(environment=object())
    user.on_start()
    user.rng = random.Random(seed)  # on_start's own generator is unseeded
    user.client = Client(answer)
    return user


def test_a_missing_or_malformed_dsn_stops_locust_at_init_with_one_line_without_the_dsn(
    load_file,
):
    module = load_file()
    assert module.events.init.listeners == [module._check]
    with pytest.raises(SystemExit) as missing:
        module.events.init.fire(environment=object())
    assert missing.value.code == MALFORMED

    secret = "https://s3cr3tkey@glitchtip.example/project"  # no numeric project id
    module = load_file(dsn=secret)
    with pytest.raises(SystemExit) as malformed:
        module.events.init.fire(environment=object())
    assert malformed.value.code == MALFORMED
    assert "s3cr3tkey" not in str(malformed.value.code)

    module = load_file(dsn=DSN)
    module.events.init.fire(environment=object())  # a valid DSN starts


def test_on_start_gives_each_user_the_dsn_and_a_generator_of_its_own(load_file):
    module = load_file(dsn=DSN)
    user = module.SdkUser(environment=object())
    user.on_start()
    assert user.dsn == module.payloads.Dsn(KEY, "7")
    assert isinstance(user.rng, random.Random)
    other = module.SdkUser(environment=object())
    other.on_start()
    assert other.rng is not user.rng


def test_there_is_no_think_time_unless_a_rate_is_asked_for(load_file):
    assert load_file(dsn=DSN).SdkUser.wait_time.kind == ("constant", 0)
    assert load_file(dsn=DSN, rate="2.5").SdkUser.wait_time.kind == ("constant_throughput", 2.5)
    assert load_file(dsn=DSN).SdkUser.send.locust_task_weight == 1


def test_sending_is_over_send_for_seconds_after_the_test_started_and_not_before(
    load_file, monkeypatch
):
    module = load_file(dsn=DSN, send_for="30")
    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    assert module._sending_over() is False  # the test has not started
    assert module.events.test_start.listeners == [module._started]
    module.events.test_start.fire(environment=object())
    assert module._STARTED == [1000.0]
    assert module._sending_over() is False
    now[0] = 1029.5
    assert module._sending_over() is False
    now[0] = 1030.0  # exactly SEND_FOR seconds later
    assert module._sending_over() is True
    now[0] = 5000.0
    assert module._sending_over() is True

    # A second test started (the web UI's "new test") counts from its own start.
    module.events.test_start.fire(environment=object())
    assert module._STARTED == [5000.0]
    assert module._sending_over() is False


def test_without_send_for_users_never_go_quiet(load_file, monkeypatch):
    module = load_file(dsn=DSN)
    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    module.events.test_start.fire(environment=object())
    now[0] = 1_000_000.0
    assert module._sending_over() is False


def test_a_user_whose_sending_is_over_sleeps_half_a_second_and_sends_nothing(
    load_file, monkeypatch
):
    module = load_file(dsn=DSN, send_for="10")
    now = [50.0]
    sleeps: list[float] = []
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(module.time, "sleep", sleeps.append)
    module.events.test_start.fire(environment=object())
    user = started_user(module)
    user.send()
    assert (len(user.client.posts), sleeps) == (1, [])
    now[0] = 60.0
    user.send()
    assert (len(user.client.posts), sleeps) == (1, [0.5])


def test_each_kind_is_posted_to_its_endpoint_named_after_it_and_passes_on_the_recorded_answer(
    load_file, monkeypatch
):
    module = load_file(dsn=DSN)
    user = started_user(module)
    for _ in range(200):
        user.send()
    kinds = Counter(post["name"] for post in user.client.posts)
    assert set(kinds) == {"error_gzip", "error_plain", "message", "transaction", "store"}
    for post in user.client.posts:
        endpoint = "store" if post["name"] == "store" else "envelope"
        assert post["path"] == f"/api/7/{endpoint}/"
        browser = post["name"] == "error_plain"
        client = "sentry.javascript.browser/9.40.0" if browser else "sentry.python/2.75.0"
        assert post["headers"]["X-Sentry-Auth"] == (
            f"Sentry sentry_key={KEY}, sentry_version=7, sentry_client={client}"
        )
        assert "Host" not in post["headers"]  # none asked for: the URL's host
    assert [response.failures for response in user.client.responses] == [[]] * 200


def test_the_host_header_is_sent_only_when_one_is_asked_for(load_file, monkeypatch):
    module = load_file(dsn=DSN, host_header="glitchtip.example:8443", mix="store=1")
    user = started_user(module)
    user.send()
    assert user.client.posts[0]["headers"] == {
        "Content-Type": "application/json",
        "X-Sentry-Auth": f"Sentry sentry_key={KEY}, sentry_version=7, "
        "sentry_client=sentry.python/2.75.0",
        "User-Agent": "sentry.python/2.75.0",
        "Host": "glitchtip.example:8443",
    }


def test_a_kind_weighted_zero_is_never_sent(load_file, monkeypatch):
    module = load_file(dsn=DSN, mix="error_gzip=0,error_plain=0,message=3,transaction=1,store=0")
    assert (module._KINDS, module._WEIGHTS) == (["message", "transaction"], [3, 1])
    user = started_user(module)
    for _ in range(400):
        user.send()
    kinds = Counter(post["name"] for post in user.client.posts)
    assert set(kinds) == {"message", "transaction"}
    assert 250 < kinds["message"] < 350  # about 3 in 4 (seeded: the same draw every run)


@pytest.mark.parametrize(
    ("mix", "answer", "failure"),
    [
        ("store=1", lambda path, event_id: (503, "Service Unavailable"), "HTTP 503"),
        ("message=1", lambda path, event_id: (429, '{"detail": "slow down"}'), "HTTP 429"),
        ("message=1", lambda path, event_id: (200, "<html>ok</html>"), "answer is not JSON"),
        (
            "message=1",
            lambda path, event_id: (200, json.dumps({"id": "0" * 32})),
            "answer does not name the event sent",
        ),
        ("message=1", lambda path, event_id: (200, "{}"), "answer does not name the event sent"),
        (
            "message=1",
            lambda path, event_id: (200, json.dumps({"id": None})),
            "answer does not name the event sent",
        ),
        # An envelope answered as the store endpoint answers, and the other way round.
        (
            "transaction=1",
            lambda path, event_id: (200, json.dumps({"event_id": event_id})),
            "answer does not name the event sent",
        ),
        (
            "store=1",
            lambda path, event_id: (200, json.dumps({"id": event_id})),
            "answer does not name the event sent",
        ),
    ],
)
def test_an_answer_that_does_not_take_the_event_is_a_failure_with_its_reason(
    load_file, monkeypatch, mix, answer, failure
):
    module = load_file(dsn=DSN, mix=mix)
    user = started_user(module, answer=answer)
    user.send()
    assert [response.failures for response in user.client.responses] == [[failure]]


def test_an_answer_naming_the_event_with_dashes_passes(load_file, monkeypatch):
    def dashed(path, event_id):
        text = str(uuid.UUID(event_id))  # 8-4-4-4-12 hex digits
        key = "event_id" if path.endswith("/store/") else "id"
        return 200, json.dumps({key: text})

    module = load_file(dsn=DSN, mix="store=1,error_plain=1")
    user = started_user(module, answer=dashed)
    for _ in range(20):
        user.send()
    assert {post["name"] for post in user.client.posts} == {"store", "error_plain"}
    assert [response.failures for response in user.client.responses] == [[]] * 20


def test_the_distinct_issues_bound_the_error_signatures_sent(load_file):
    """GLITCHTIP_LOAD_ISSUES=1: every error event carries the same exception (one issue)."""

    def exception_of(post) -> tuple[str, str]:
        body = post["data"]
        if post["headers"].get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        event = json.loads(body.splitlines()[-1])  # the envelope's payload line
        value = event["exception"]["values"][-1]
        return value["type"], value["value"]

    module = load_file(dsn=DSN, mix="error_gzip=1", issues="1")
    user = started_user(module)
    for _ in range(20):
        user.send()
    assert {exception_of(post) for post in user.client.posts} == {("KeyError", "'orders_0'")}
    module = load_file(dsn=DSN, mix="error_gzip=1")  # 50 by default
    user = started_user(module)
    for _ in range(40):
        user.send()
    assert len({exception_of(post) for post in user.client.posts}) > 10
