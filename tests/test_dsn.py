"""DSN resolution for apps and `provision dsn`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from provision.cli import cli
from provision.dsn import DsnError, parse_dsn, resolve_dsn

KEY = "0123456789abcdef0123456789abcdef"
DSN = f"https://{KEY}@glitchtip.example.com/7"


def test_order_env_then_sentry_then_rc_upwards(tmp_path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (tmp_path / ".glitchtiprc").write_text(f"[defaults]\nurl = {DSN}\n")
    found = resolve_dsn({}, nested)
    assert found.dsn == DSN and found.source == str(tmp_path / ".glitchtiprc")
    other = f"http://{KEY}@localhost:8000/1"
    assert resolve_dsn({"SENTRY_DSN": other}, nested).source == "SENTRY_DSN"
    both = {"SENTRY_DSN": other, "ERROR_TRACKING_DSN": DSN}
    assert resolve_dsn(both, nested).source == "ERROR_TRACKING_DSN"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (f"ftp://{KEY}@h/1", "scheme"),
        ("http://h/1", "no public key"),
        (f"http://{KEY}@h/abc", "project id"),
        ("http://short@h/1", "32 hex"),
        (f"http://{KEY}@h:port/1", "port"),
    ],
)
def test_malformed_dsn_names_the_problem_not_the_key(value, reason):
    with pytest.raises(DsnError) as err:
        parse_dsn(value, "SENTRY_DSN")
    assert reason in str(err.value) and KEY not in str(err.value)


def test_dsn_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    monkeypatch.setenv("ERROR_TRACKING_DSN", DSN)
    result = CliRunner().invoke(cli, ["dsn"])
    assert result.exit_code == 0 and result.stdout.strip() == DSN
    assert "source: ERROR_TRACKING_DSN" in result.stderr
    result = CliRunner().invoke(cli, ["dsn", "--json"])
    assert json.loads(result.stdout) == {"dsn": DSN, "source": "ERROR_TRACKING_DSN"}
    monkeypatch.setenv("ERROR_TRACKING_DSN", "http://nokey/1")
    result = CliRunner().invoke(cli, ["dsn"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    monkeypatch.delenv("ERROR_TRACKING_DSN")
    result = CliRunner().invoke(cli, ["dsn"])
    assert result.exit_code == 2 and "no DSN found" in result.stderr
