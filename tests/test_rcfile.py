"""`.glitchtiprc` / `.sentryclirc` writing and DSN output formats."""

from __future__ import annotations

import configparser
import json

import pytest

from provision.errors import UsageError
from provision.rcfile import format_dsn, update_ini, write_rc

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


# --- exact texts: the file is read by people, sentry-cli and `provision dsn` alike ---


def test_update_ini_of_nothing_is_the_sections_in_order():
    values = {"defaults": {"org": "a", "url": DSN}, "auth": {"dsn": DSN}}
    assert update_ini("", values) == (f"[defaults]\norg = a\nurl = {DSN}\n\n[auth]\ndsn = {DSN}\n")


def test_update_ini_replaces_in_place_and_appends_missing_keys_to_their_section():
    text = "; a comment\n[defaults]\norg: old\n  url = stale\n\n\n[other]\norg = not ours\n"
    values = {"defaults": {"org": "new", "project": "web", "url": DSN}}
    assert update_ini(text, values) == (
        "; a comment\n"
        "[defaults]\n"
        "org = new\n"
        f"url = {DSN}\n"
        "project = web\n"
        "\n"
        "[other]\n"
        "org = not ours\n"
    )


def test_update_ini_adds_a_missing_section_after_one_blank_line():
    assert update_ini("[auth]\ntoken = t", {"defaults": {"org": "o"}}) == (
        "[auth]\ntoken = t\n\n[defaults]\norg = o\n"
    )
    # Blank lines already there are kept as they were; none is added next to them.
    assert update_ini("[auth]\ntoken = t\n\n\n", {"defaults": {"org": "o"}}) == (
        "[auth]\ntoken = t\n\n\n[defaults]\norg = o\n"
    )
    # A section header with spaces inside the brackets is the same section.
    assert update_ini("[ defaults ]\norg = x\n", {"defaults": {"org": "o"}}) == (
        "[ defaults ]\norg = o\n"
    )


def test_update_ini_keeps_keys_before_any_section_and_similar_names():
    text = "org = top\n[defaults]\norganisation = keep\norg.x = keep\n"
    assert update_ini(text, {"defaults": {"org": "o"}}) == (
        "org = top\n[defaults]\norganisation = keep\norg.x = keep\norg = o\n"
    )


def test_write_rc_refuses_an_unknown_format_and_a_directory(tmp_path):
    with pytest.raises(UsageError) as error:
        write_rc(tmp_path / "rc", "yaml", server_url="http://x", org="a", project="p", dsn=DSN)
    assert error.value.line() == "unknown rc format 'yaml': use one of glitchtiprc, sentryclirc"
    (tmp_path / "dir").mkdir()
    with pytest.raises(UsageError) as error:
        write_rc(tmp_path / "dir", "glitchtiprc", server_url="", org="a", project="p", dsn=DSN)
    assert error.value.line() == f"{tmp_path / 'dir'} is a directory: give --rc the path of a file"
    assert not (tmp_path / "rc").exists()


def test_sentryclirc_text_and_a_server_url_with_a_trailing_slash(tmp_path):
    rc = tmp_path / ".sentryclirc"
    assert write_rc(rc, "sentryclirc", server_url="http://gt:8000//", org="a", project="p", dsn=DSN)
    assert rc.read_text() == (
        f"[defaults]\nurl = http://gt:8000/\norg = a\nproject = p\n\n[auth]\ndsn = {DSN}\n"
    )


def test_only_slashes_are_trimmed_from_the_server_url(tmp_path):
    rc = tmp_path / ".sentryclirc"
    write_rc(rc, "sentryclirc", server_url="https://errors.example.comX", org="a", project="p",
             dsn=DSN)  # fmt: skip
    assert "url = https://errors.example.comX/\n" in rc.read_text()


def test_every_print_format_exactly():
    assert format_dsn("env", org="a", project="p", dsn=DSN) == (
        f"ERROR_TRACKING_DSN={DSN}\nSENTRY_DSN={DSN}"
    )
    assert format_dsn("json", org="a", project="p", dsn=DSN) == (
        '{\n  "org": "a",\n  "project": "p",\n  "dsn": "' + DSN + '"\n}'
    )
    assert format_dsn("ini", org="a", project="p", dsn=DSN) == (
        f"[defaults]\norg = a\nproject = p\nurl = {DSN}"
    )
    with pytest.raises(UsageError) as error:
        format_dsn("yaml", org="a", project="p", dsn=DSN)
    assert error.value.line() == "unknown output format 'yaml': use one of text, env, json, ini"
