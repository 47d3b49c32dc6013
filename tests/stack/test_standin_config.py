"""Fast tests (no engine) of the stand-in image's settings parsing: ALLOWED_HOSTS, URLs, ports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

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


def test_file_variant(monkeypatch, tmp_path):
    secret = tmp_path / "url"
    secret.write_text("postgres://a:b@h:1/d\n")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL_FILE", str(secret))
    assert config.database_dsn()["port"] == 1


@pytest.mark.parametrize(
    ("major", "env", "port"),
    [
        ("6", {}, 8000),
        ("6", {"PORT": "8080"}, 8000),
        ("5", {}, 8080),
        ("5", {"PORT": "9000"}, 9000),
        ("5", {"USE_GRANIAN": "true"}, 8000),
    ],
)
def test_web_port_per_major(monkeypatch, major, env, port):
    for name in ("PORT", "USE_GRANIAN", "USE_ASYNC_SERVER", "GRANIAN_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GLITCHTIP_STANDIN_MAJOR", major)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert config.web_port() == port
