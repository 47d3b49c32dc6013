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


# --- which source wins, and where the upward search stops ---


def write_rc(directory, dsn: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".glitchtiprc").write_text(f"[defaults]\norg = o\nurl = {dsn}\n")


def test_the_nearest_glitchtiprc_wins(tmp_path):
    near = f"http://{KEY}@near.example.com/2"
    write_rc(tmp_path, DSN)
    write_rc(tmp_path / "app", near)
    (tmp_path / "app" / "src" / "pkg").mkdir(parents=True)
    found = resolve_dsn({}, tmp_path / "app" / "src" / "pkg")
    assert found.dsn == near and found.source == str(tmp_path / "app" / ".glitchtiprc")
    assert resolve_dsn({}, tmp_path / "app").dsn == near
    assert resolve_dsn({}, tmp_path).dsn == DSN


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_blank_variable_is_skipped(tmp_path, blank):
    write_rc(tmp_path, DSN)
    other = f"http://{KEY}@localhost:8000/1"
    found = resolve_dsn({"ERROR_TRACKING_DSN": blank, "SENTRY_DSN": other}, tmp_path)
    assert (found.source, found.dsn) == ("SENTRY_DSN", other)
    found = resolve_dsn({"ERROR_TRACKING_DSN": blank, "SENTRY_DSN": blank}, tmp_path)
    assert found.source == str(tmp_path / ".glitchtiprc")


def test_a_variable_is_stripped_before_use(tmp_path):
    found = resolve_dsn({"SENTRY_DSN": f"  {DSN}\n"}, tmp_path)
    assert found.dsn == DSN and found.parsed.project_id == 7


def test_a_glitchtiprc_without_url_stops_the_search(tmp_path):
    write_rc(tmp_path, DSN)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / ".glitchtiprc").write_text("[defaults]\norg = o\nurl =  \n")
    with pytest.raises(DsnError, match="no DSN found"):
        resolve_dsn({}, tmp_path / "app")


def test_a_malformed_rc_names_the_file_never_the_key(tmp_path):
    (tmp_path / ".glitchtiprc").write_text(f"url = {DSN}\n")  # no section header
    with pytest.raises(DsnError) as error:
        resolve_dsn({}, tmp_path)
    assert f"cannot read {tmp_path / '.glitchtiprc'}" in error.value.line()
    assert KEY not in error.value.line()
    write_rc(tmp_path, f"http://{KEY}@h/x")
    with pytest.raises(DsnError, match=r"\[defaults\] url is not a valid DSN: the project id"):
        resolve_dsn({}, tmp_path)


def test_the_search_stops_at_the_ceiling(tmp_path, monkeypatch):
    from provision.dsn import RC_CEILING_ENV, find_rc

    write_rc(tmp_path, DSN)
    inner = tmp_path / "ceiling" / "app"
    inner.mkdir(parents=True)
    assert find_rc(inner, ceiling=tmp_path / "ceiling") is None
    assert find_rc(inner, ceiling=tmp_path) == tmp_path / ".glitchtiprc"  # the ceiling is searched
    assert find_rc(inner, ceiling=tmp_path / "elsewhere") == tmp_path / ".glitchtiprc"
    monkeypatch.setenv(RC_CEILING_ENV, str(tmp_path / "ceiling"))
    assert find_rc(inner) is None
    with pytest.raises(DsnError, match="no DSN found"):
        resolve_dsn({}, inner)
    monkeypatch.setenv(RC_CEILING_ENV, str(tmp_path))
    assert resolve_dsn({}, inner).source == str(tmp_path / ".glitchtiprc")


def test_the_suite_never_sees_a_glitchtiprc_above_its_tmp(tmp_path, tmp_path_factory):
    """The autouse fixture in conftest.py stops the search at pytest's base temp directory."""
    from provision.dsn import find_rc

    assert find_rc(tmp_path) is None
    assert find_rc(tmp_path_factory.getbasetemp()) is None


def test_parse_dsn_names_the_dsn_when_no_source_is_given():
    with pytest.raises(DsnError) as error:
        parse_dsn("nonsense")
    assert error.value.line().startswith("the DSN is not a valid DSN: the scheme must be")


def test_parse_dsn_fields():
    parsed = parse_dsn(f"https://{KEY}@errors.example.com:8443/sub/path/42/")
    assert (parsed.scheme, parsed.public_key, parsed.host, parsed.port) == (
        "https",
        KEY,
        "errors.example.com",
        8443,
    )
    assert parsed.path == "/sub/path" and parsed.project_id == 42
    assert parsed.server_url == "https://errors.example.com:8443/sub/path"
    plain = parse_dsn(f"http://{KEY.upper()}@localhost/1")
    assert plain.port is None and plain.server_url == "http://localhost" and plain.path == ""
    uuid_key = "01234567-89ab-cdef-0123-456789abcdef"
    assert parse_dsn(f"http://{uuid_key}@h/3").public_key == uuid_key


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (f"http://{KEY}@h/1?x=1", "query or fragment"),
        (f"http://{KEY}@h/1#frag", "query or fragment"),
        (f"http://{KEY}@/1", "no host"),
        (f"http://{KEY}@h", "project id"),
        (f"http://{KEY}@h/", "project id"),
        (f"http://{KEY}0@h/1", "32 hex"),
        (f"http://{KEY[:-1]}g@h/1", "32 hex"),
        (f"{KEY}@h/1", "scheme"),
        (f"https://{KEY}@h:99999/1", "port"),
    ],
)
def test_more_malformed_dsns(value, reason):
    with pytest.raises(DsnError) as err:
        parse_dsn(value, "ERROR_TRACKING_DSN")
    line = err.value.line()
    assert line.startswith("ERROR_TRACKING_DSN is not a valid DSN: ") and reason in line
    assert "expected http(s)://KEY@HOST[:PORT]/PROJECT_ID" in line
    assert KEY not in line


# --- exact messages: the line an operator reads names the file and the fix ---

RC_FIX = "fix the file or run `provision create-project` to rewrite it"


def test_no_dsn_anywhere_names_the_directory_searched(tmp_path):
    with pytest.raises(DsnError) as error:
        resolve_dsn({"ERROR_TRACKING_DSN": " "}, tmp_path)
    assert error.value.line() == (
        "no DSN found: ERROR_TRACKING_DSN and SENTRY_DSN are unset and there is no .glitchtiprc "
        f"in {tmp_path.resolve()} or a parent directory: run `provision create-project` there, "
        "or set ERROR_TRACKING_DSN"
    )


def test_an_rc_without_url_names_the_file_and_where_to_run_create_project(tmp_path):
    rc = tmp_path / ".glitchtiprc"
    rc.write_text("[defaults]\norg = o\n")
    with pytest.raises(DsnError) as error:
        resolve_dsn({}, tmp_path)
    assert error.value.line() == (
        f"no DSN found: ERROR_TRACKING_DSN and SENTRY_DSN are unset and {rc} has no "
        f"[defaults] url: run `provision create-project` in {tmp_path}, or set ERROR_TRACKING_DSN"
    )


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (f"url = {DSN}\n", "MissingSectionHeaderError, line 1"),
        ("[defaults]\nurl = a\nurl = b\n", "DuplicateOptionError, line 3"),
        ("[defaults]\n[defaults]\n", "DuplicateSectionError, line 2"),
        ("[defaults]\nnot a key line\n", "ParsingError"),
    ],
)
def test_a_malformed_rc_names_the_parser_error_and_line(tmp_path, text, what):
    from provision.dsn import read_rc_dsn

    rc = tmp_path / ".glitchtiprc"
    rc.write_text(text)
    with pytest.raises(DsnError) as error:
        read_rc_dsn(rc)
    assert error.value.line() == f"cannot read {rc} ({what}): {RC_FIX}"


def test_an_unreadable_rc_says_why_and_how_to_fix(tmp_path):
    from provision.dsn import read_rc_dsn

    rc = tmp_path / ".glitchtiprc"
    rc.write_bytes(b"[defaults]\nurl = \xff\n")
    with pytest.raises(DsnError) as error:
        read_rc_dsn(rc)
    line = error.value.line()
    assert line.startswith(f"cannot read {rc}: ") and line.endswith(RC_FIX) and "UTF-8" in line
    assert read_rc_dsn(tmp_path / "absent") is None  # a missing file has no url
    rc.write_text("[defaults]\nURL = x\n")  # option names are case-insensitive in INI
    assert read_rc_dsn(rc) == "x"
    rc.write_text("[other]\nurl = x\n")
    assert read_rc_dsn(rc) is None


def test_a_bad_dsn_names_where_it_came_from(tmp_path):
    with pytest.raises(DsnError) as error:
        resolve_dsn({"SENTRY_DSN": "http://h/1"}, tmp_path)
    assert error.value.line() == (
        "SENTRY_DSN is not a valid DSN: it has no public key before '@': "
        "expected http(s)://KEY@HOST[:PORT]/PROJECT_ID"
    )
    rc = tmp_path / ".glitchtiprc"
    rc.write_text("[defaults]\nurl = http://h/1\n")
    with pytest.raises(DsnError) as error:
        resolve_dsn({}, tmp_path)
    assert error.value.line().startswith(f"{rc} [defaults] url is not a valid DSN: it has no")


@pytest.mark.parametrize("path", ["/1X", "/1/X", "/X", "/1a", "/ 1", "/-1", "/+1"])
def test_only_ascii_digits_make_a_project_id(path):
    with pytest.raises(DsnError, match="the project id must be a number"):
        parse_dsn(f"http://{KEY}@h{path}")


def test_the_search_without_a_ceiling_goes_to_the_root(tmp_path, monkeypatch):
    from provision.dsn import RC_CEILING_ENV, find_rc

    monkeypatch.delenv(RC_CEILING_ENV)
    write_rc(tmp_path, DSN)
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_rc(tmp_path / "a" / "b") == tmp_path / ".glitchtiprc"
    monkeypatch.setenv(RC_CEILING_ENV, "")  # empty: no ceiling either
    assert find_rc(tmp_path / "a" / "b") == tmp_path / ".glitchtiprc"
