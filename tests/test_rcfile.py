"""`.glitchtiprc` / `.sentryclirc` writing and DSN output formats."""

from __future__ import annotations

import configparser
import json

from provision.rcfile import format_dsn, write_rc

DSN = "http://0123456789abcdef0123456789abcdef@127.0.0.1:8000/1"


def test_glitchtiprc_keeps_other_sections_keys_and_comments(tmp_path):
    rc = tmp_path / ".glitchtiprc"
    rc.write_text("# mine\n[defaults]\norg = old\nextra = 1\n\n[other]\nkey = value\n")
    assert write_rc(rc, "glitchtiprc", server_url="http://x", org="acme", project="web", dsn=DSN)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(rc)
    assert dict(parser["defaults"]) == {"org": "acme", "extra": "1", "project": "web", "url": DSN}
    assert parser["other"]["key"] == "value" and rc.read_text().startswith("# mine\n")
    assert rc.stat().st_mode & 0o777 == 0o600
    assert not write_rc(
        rc, "glitchtiprc", server_url="http://x", org="acme", project="web", dsn=DSN
    )


def test_sentryclirc_puts_server_in_url_and_dsn_under_auth(tmp_path):
    rc = tmp_path / ".sentryclirc"
    write_rc(rc, "sentryclirc", server_url="http://gt:8000", org="acme", project="web", dsn=DSN)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(rc)
    assert parser["defaults"]["url"] == "http://gt:8000/" and parser["auth"]["dsn"] == DSN


def test_formats():
    assert format_dsn("text", org="a", project="p", dsn=DSN) == DSN
    assert format_dsn("env", org="a", project="p", dsn=DSN).splitlines()[0] == (
        f"ERROR_TRACKING_DSN={DSN}"
    )
    assert json.loads(format_dsn("json", org="a", project="p", dsn=DSN))["dsn"] == DSN
    assert f"url = {DSN}" in format_dsn("ini", org="a", project="p", dsn=DSN)
