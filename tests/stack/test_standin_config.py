"""Fast tests (no engine) of the stand-in image's settings parsing: ALLOWED_HOSTS, URLs, ports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from provision.majors import RELEASES_5

_PATH = Path(__file__).parent / "images" / "glitchtip" / "standin" / "config.py"
_spec = importlib.util.spec_from_file_location("standin_config", _PATH)
config = importlib.util.module_from_spec(_spec)
sys.modules["standin_config"] = config  # dataclasses look their module up
_spec.loader.exec_module(config)


@pytest.mark.parametrize(
    ("host", "allowed", "ok"),
    [
        ("anything:8000", ["*"], True),
        ("localhost:8000", ["localhost", "127.0.0.1"], True),
        ("127.0.0.1:8123", ["localhost", "127.0.0.1"], True),
        ("evil.example", ["localhost", "127.0.0.1"], False),
        ("errors.example.com", [".example.com"], True),
        ("example.com", [".example.com"], True),
        ("example.org", [".example.com"], False),
        (None, ["localhost"], False),
        ("[::1]:8000", ["[::1]"], True),
    ],
)
def test_allowed_hosts_follow_django(host, allowed, ok):
    assert config.host_allowed(host, allowed) is ok


def test_redact_url_hides_the_password_only():
    assert config.redact_url("postgres://u:s3cret@db:5432/x") == "postgres://u:***@db:5432/x"
    assert config.redact_url("redis://valkey:6379/0") == "redis://valkey:6379/0"


def test_database_url_and_valkey_url(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres:p%40ss@postgres:5432/postgres")
    dsn = config.database_dsn()
    assert (dsn["host"], dsn["password"], dsn["dbname"]) == ("postgres", "p@ss", "postgres")
    monkeypatch.setenv("VALKEY_URL", "")
    assert config.valkey_url() is None  # GlitchTip 6: run without Valkey
    monkeypatch.delenv("VALKEY_URL")
    monkeypatch.setenv("REDIS_URL", "redis://valkey:6379/1")
    assert config.valkey_url() == "redis://valkey:6379/1"


_VALKEY_VARS = ("VALKEY_URL", "REDIS_URL", "VALKEY_HOST", "REDIS_HOST", "VALKEY_PORT",
                "REDIS_PORT", "VALKEY_PASSWORD", "REDIS_PASSWORD")  # fmt: skip


def as_standin(monkeypatch, major: str) -> None:
    """GLITCHTIP_STANDIN_MAJOR (and _RELEASE): "5" is v5.1.0 (the image's default),
    "5-snapshot" the later 5.x code, "6" GlitchTip 6."""
    number, _, release = major.partition("-")
    monkeypatch.setenv("GLITCHTIP_STANDIN_MAJOR", number)
    if release:
        monkeypatch.setenv("GLITCHTIP_STANDIN_RELEASE", release)
    else:
        monkeypatch.delenv("GLITCHTIP_STANDIN_RELEASE", raising=False)


@pytest.mark.parametrize(
    ("major", "env", "url"),
    [
        # v5.1.0 reads REDIS_* only (contract NOTES.md): VALKEY_URL alone leaves the default.
        ("5", {"VALKEY_URL": "redis://valkey:6379/0"}, "redis://redis:6379/0"),
        ("5", {"VALKEY_URL": "redis://a:6379/0", "REDIS_URL": "redis://b:6379/0"},
         "redis://b:6379/0"),
        ("5", {"VALKEY_HOST": "valkey"}, "redis://redis:6379/0"),
        ("5", {"REDIS_HOST": "valkey", "REDIS_PASSWORD": "p"}, "redis://:p@valkey:6379/0"),
        # later 5.x and 6: VALKEY_URL first, REDIS_URL as the fallback.
        ("5-snapshot", {"VALKEY_URL": "redis://valkey:6379/0"}, "redis://valkey:6379/0"),
        ("5-snapshot", {"VALKEY_URL": "redis://a:6379/0", "REDIS_URL": "redis://b:6379/0"},
         "redis://a:6379/0"),
        ("5-snapshot", {"VALKEY_HOST": "valkey"}, "redis://valkey:6379/0"),
        ("6", {"VALKEY_URL": "redis://valkey:6379/0"}, "redis://valkey:6379/0"),
    ],
)  # fmt: skip
def test_valkey_url_under_the_names_each_release_reads(monkeypatch, major, env, url):
    for name in _VALKEY_VARS:
        monkeypatch.delenv(name, raising=False)
    as_standin(monkeypatch, major)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert config.valkey_url() == url


@pytest.mark.parametrize("release", RELEASES_5)
def test_each_release_of_the_kits_table_is_copied_by_the_standin(monkeypatch, release):
    """provision/majors.py's RELEASES_5 and the stand-in agree; the kit's rendered environment
    (VALKEY_URL and REDIS_URL, all server variables) gives a keep-alive ASGI server on 8000."""
    for name in (*_VALKEY_VARS, *_SERVER_VARS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GLITCHTIP_STANDIN_MAJOR", "5")
    monkeypatch.setenv("GLITCHTIP_STANDIN_RELEASE", release.name)
    monkeypatch.setenv("VALKEY_URL", "redis://valkey:6379/0")
    assert (config.valkey_url() == "redis://valkey:6379/0") is release.reads_valkey_url
    monkeypatch.setenv("USE_GRANIAN", "true")
    assert (config.web_server().name == "granian-wsgi") is release.has_granian
    from provision import majors

    for name, value in majors.MAJORS[5].web_server_env:
        monkeypatch.setenv(name, value)
    for name in majors.MAJORS[5].valkey_url_envs:
        monkeypatch.setenv(name, "redis://valkey:6379/0")
    server = config.web_server()
    assert config.valkey_url() == "redis://valkey:6379/0"
    assert (server.port, server.keep_alive, server.truncates_plain_bodies) == (8000, True, False)
    assert server.name == ("granian-asgi" if release.has_granian else "uvicorn")


def test_file_variant(monkeypatch, tmp_path):
    secret = tmp_path / "url"
    secret.write_text("postgres://a:b@h:1/d\n")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL_FILE", str(secret))
    assert config.database_dsn()["port"] == 1


def test_file_wins_and_is_taken_as_it_is(monkeypatch, tmp_path):
    """django-environ's FileAwareMapping (GlitchTip's FileAwareEnv): NAME_FILE wins over NAME
    (the kit sets EMAIL_URL to a placeholder beside EMAIL_URL_FILE), and the file's text is the
    value, trailing newline included."""
    secret = tmp_path / "email_url"
    secret.write_text("smtp://u:p@mail:25\n")
    monkeypatch.setenv("EMAIL_URL", "see EMAIL_URL_FILE")
    monkeypatch.setenv("EMAIL_URL_FILE", str(secret))
    assert config.env("EMAIL_URL") == "smtp://u:p@mail:25\n"
    monkeypatch.setenv("EMAIL_URL_FILE", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError):  # FileAwareMapping raises for a named, missing file
        config.env("EMAIL_URL")


@pytest.mark.parametrize(
    ("major", "env", "port"),
    [
        ("6", {}, 8000),
        ("6", {"PORT": "8080"}, 8000),
        ("5", {}, 8080),
        ("5", {"PORT": "9000"}, 9000),
        ("5", {"USE_GRANIAN": "true"}, 8080),  # v5.1.0 knows no granian: uWSGI
        ("5", {"USE_ASYNC_SERVER": "true"}, 8000),
        ("5-snapshot", {"USE_GRANIAN": "true"}, 8000),
    ],
)
def test_web_port_per_major(monkeypatch, major, env, port):
    for name in ("PORT", "USE_GRANIAN", "USE_ASYNC_SERVER", "GRANIAN_PORT"):
        monkeypatch.delenv(name, raising=False)
    as_standin(monkeypatch, major)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert config.web_port() == port


# -- the web server bin/start.sh would start, and its manners ---------------------------------
_SERVER_VARS = ("PORT", "USE_GRANIAN", "USE_ASYNC_SERVER", "GRANIAN_PORT", "UVICORN_PORT")


ASGI = ("granian-asgi", 8000, True, False)


@pytest.mark.parametrize(
    ("major", "env", "expected"),
    [
        # GlitchTip 5's run-web.sh: uWSGI unless USE_GRANIAN / USE_ASYNC_SERVER are "true".
        ("5-snapshot", {}, ("uwsgi", 8080, False, False)),
        ("5-snapshot", {"USE_GRANIAN": "True"}, ("uwsgi", 8080, False, False)),  # `= "true"`
        ("5-snapshot", {"USE_GRANIAN": "true"}, ("granian-wsgi", 8000, True, True)),
        ("5-snapshot", {"USE_GRANIAN": "true", "USE_ASYNC_SERVER": "true"}, ASGI),
        (
            "5-snapshot",
            {"USE_GRANIAN": "true", "GRANIAN_PORT": "9001"},
            ("granian-wsgi", 9001, True, True),
        ),
        ("5-snapshot", {"USE_ASYNC_SERVER": "true"}, ("uvicorn", 8000, True, False)),
        # v5.1.0's run-web.sh has no granian: USE_ASYNC_SERVER -> uvicorn, else uWSGI.
        ("5", {}, ("uwsgi", 8080, False, False)),
        ("5", {"USE_GRANIAN": "true"}, ("uwsgi", 8080, False, False)),
        ("5", {"USE_ASYNC_SERVER": "true"}, ("uvicorn", 8000, True, False)),
        # The kit's rendering: uvicorn on v5.1.0, granian ASGI on later code, both on 8000.
        (
            "5",
            {"USE_GRANIAN": "true", "USE_ASYNC_SERVER": "true", "UVICORN_PORT": "8000"},
            ("uvicorn", 8000, True, False),
        ),
        (
            "5-snapshot",
            {"USE_GRANIAN": "true", "USE_ASYNC_SERVER": "true", "UVICORN_PORT": "8000"},
            ASGI,
        ),
        ("6", {}, ASGI),
        ("6", {"USE_GRANIAN": "false", "USE_ASYNC_SERVER": "false"}, ASGI),
    ],
)
def test_web_server_follows_run_web_sh(monkeypatch, major, env, expected):
    for name in _SERVER_VARS:
        monkeypatch.delenv(name, raising=False)
    as_standin(monkeypatch, major)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server = config.web_server()
    assert (server.name, server.port, server.keep_alive, server.truncates_plain_bodies) == expected


def _standin_web():
    """The stand-in's web module (a package-relative import of config)."""
    sys.path.insert(0, str(_PATH.parent.parent))
    try:
        from standin import web
    finally:
        sys.path.pop(0)
    return web


ENVELOPE = b'{"event_id":"ab"}\n{"type":"event"}\n{"message":"hello"}\n'


def _request(body: bytes, encoding: str | None = None):
    from fakeglitchtip.app import Request

    headers = {"content-type": "application/x-sentry-envelope"}
    if encoding:
        headers["content-encoding"] = encoding
    return Request("POST", "/api/1/envelope/", headers, body)


def test_granian_wsgi_cuts_plain_bodies_to_the_first_line():
    web = _standin_web()
    wsgi = web.config.WebServer("granian-wsgi", 8000, True, True)
    request = web.prepare_body(_request(ENVELOPE), wsgi)
    assert request.body == b'{"event_id":"ab"}\n'  # the items are gone, as recorded


def test_gzip_bodies_pass_whole_and_decoded_on_every_server():
    import gzip
    import zlib

    web = _standin_web()
    for server in (
        web.config.WebServer("granian-wsgi", 8000, True, True),
        web.config.WebServer("granian-asgi", 8000, True, False),
    ):
        request = web.prepare_body(_request(gzip.compress(ENVELOPE), "gzip"), server)
        assert request.body == ENVELOPE and "content-encoding" not in request.headers
    deflated = web.prepare_body(_request(zlib.compress(ENVELOPE), "deflate"), server)
    assert deflated.body == ENVELOPE
    assert web.prepare_body(_request(b"not gzip", "gzip"), server) is None  # -> 400


def test_asgi_keeps_plain_bodies_whole():
    web = _standin_web()
    asgi = web.config.WebServer("granian-asgi", 8000, True, False)
    assert web.prepare_body(_request(ENVELOPE), asgi).body == ENVELOPE


def test_truncated_envelope_is_answered_200_and_stores_nothing():
    """The recorded granian WSGI outcome end to end in the fake: 200 with an id, empty queue."""
    from fakeglitchtip import FakeConfig, FakeGlitchTip, MemoryQueue, MemoryStore, model

    store, queue = MemoryStore(), MemoryQueue()
    with store.transaction() as state:
        user = model.add_user(state, "admin@example.com", "pw-123456789", superuser=True)
        org = model.add_org(state, user, "Acme")
        team = model.add_team(state, org, "ops", user)
        project = model.add_project(state, org, team, "Web", "python", None)
        key = next(iter(state["keys"].values()))["uuid"].replace("-", "")
    app = FakeGlitchTip(store, queue, FakeConfig(glitchtip_domain="http://localhost:8000"))
    web = _standin_web()
    servers = {
        "wsgi": web.config.WebServer("granian-wsgi", 8000, True, True),
        "asgi": web.config.WebServer("granian-asgi", 8000, True, False),
    }
    queued = {}
    for name, server in servers.items():
        request = _request(ENVELOPE)
        request.target = f"/api/{project['id']}/envelope/?sentry_key={key}"
        response = app.handle(web.prepare_body(request, server))
        assert response.status == 200 and b'"id": "ab"' in response.body, response.body
        queued[name] = len(queue)
    assert queued == {"wsgi": 0, "asgi": 1}
