"""The file layer's refusals, word for word: `.env`, `.glitchtiprc` and every file the kit reads.

An operator sees exactly one line when a file is wrong, so the line is the interface: what is
wrong, which file, and the fix. These tests pin those lines and the small decisions behind them
(which kind of file, which line number, which fix for a file that is not a `.env` at all), so a
changed word or a lost line number fails here instead of confusing someone at 3 a.m.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from provision.envfile import format_value, parse_env, read_env_file, update_env_file
from provision.errors import SecretsError, UsageError
from provision.fileio import (
    PUBLIC_FILE_MODE,
    SECRET_FILE_MODE,
    _kind,
    check_writable_target,
    read_text_file,
)
from provision.rcfile import check_rc_file, write_rc

DSN = "http://0123456789abcdef0123456789abcdef@127.0.0.1:8000/1"


# --- fileio ---


def test_modes_are_what_the_readme_promises():
    assert (SECRET_FILE_MODE, PUBLIC_FILE_MODE) == (0o600, 0o644)


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (stat.S_IFDIR, "a directory"),
        (stat.S_IFIFO, "a named pipe (FIFO)"),
        (stat.S_IFSOCK, "a socket"),
        (stat.S_IFCHR, "a device"),
        (stat.S_IFBLK, "a device"),
        (stat.S_IFLNK, "a symbolic link"),
        (stat.S_IFREG, "not a regular file"),
    ],
)
def test_kind_names_every_file_type(mode, kind):
    assert _kind(mode | 0o644) == kind


def test_read_text_file_of_a_missing_file_is_none(tmp_path):
    assert read_text_file(tmp_path / "absent") is None
    (tmp_path / "empty").write_text("")
    assert read_text_file(tmp_path / "empty") == ""


def test_read_text_file_reads_more_than_one_chunk(tmp_path):
    text = "é" * 70_000  # 140,000 bytes: three reads
    (tmp_path / "big").write_text(text, encoding="utf-8")
    assert read_text_file(tmp_path / "big") == text


def test_read_text_file_refuses_more_than_max_bytes(tmp_path):
    (tmp_path / "f").write_text("x" * 11)
    assert read_text_file(tmp_path / "f", max_bytes=11) == "x" * 11
    with pytest.raises(SecretsError) as error:
        read_text_file(tmp_path / "f", max_bytes=10, error=SecretsError)
    line = error.value.line()
    assert line.startswith(str(tmp_path / "f")) and "11 bytes" in line and "the 10" in line


def test_read_text_file_refuses_a_directory_and_a_socket(tmp_path):
    with pytest.raises(UsageError) as error:
        read_text_file(tmp_path)
    assert error.value.line().startswith(str(tmp_path)) and "a directory" in error.value.line()
    server = socket.socket(socket.AF_UNIX)
    path = tmp_path / "sock"
    server.bind(str(path))
    try:
        with pytest.raises(UsageError) as error:
            read_text_file(path)
    finally:
        server.close()
    assert str(path) in error.value.line()  # opening a socket fails: "cannot read" it


def test_read_text_file_refuses_a_device_without_reading_it():
    with pytest.raises(UsageError) as error:
        read_text_file(Path("/dev/zero"))  # would never end if read
    assert error.value.line().startswith("/dev/zero") and "a device" in error.value.line()


def test_read_text_file_names_the_byte_that_is_not_utf8(tmp_path):
    (tmp_path / "f").write_bytes(b"ok\n\xff")
    with pytest.raises(UsageError) as error:
        read_text_file(tmp_path / "f")
    assert "UTF-8" in error.value.line() and "byte 3" in error.value.line()


def test_check_writable_target_accepts_files_and_absent_paths(tmp_path):
    check_writable_target(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    check_writable_target(tmp_path / "file")
    check_writable_target(tmp_path)  # a directory is reported by the write itself


def test_check_writable_target_refuses_a_link_naming_its_target(tmp_path):
    (tmp_path / "real").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UsageError) as error:
        check_writable_target(tmp_path / "link")
    assert error.value.line().startswith(f"{tmp_path / 'link'} is a symbolic link (to ")
    assert f"cp --remove-destination {tmp_path / 'real'} {tmp_path / 'link'}" in (
        error.value.line()
    )
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError) as error:
        check_writable_target(tmp_path / "fifo")
    assert error.value.line().startswith(
        f"{tmp_path / 'fifo'} is a named pipe (FIFO), not a regular file"
    )


# --- envfile ---


def test_parse_env_reads_exports_quotes_comments_and_blank_lines():
    text = "# comment\n\nexport A=1\nB='two words'\nC=\"double\"\nD=\nG=a=b\n  H=x  \n"
    assert parse_env(text) == {
        "A": "1",
        "B": "two words",
        "C": "double",
        "D": "",
        "G": "a=b",
        "H": "x",
    }
    with pytest.raises(SecretsError, match="line 1 is not KEY=value"):
        parse_env("E = spaced\n")  # Compose reads no spaces around '='


def test_parse_env_unquotes_and_strips_values():
    values = parse_env("A=' x '\nB=  y  \nD=\"\"\nE=''\nF=XabcX\nG='a'b'\nH=\"'x'\"\n")
    assert values == {"A": " x ", "B": "y", "D": "", "E": "", "F": "XabcX", "G": "a'b", "H": "'x'"}
    with pytest.raises(SecretsError) as error:
        parse_env("nonsense\n")
    assert error.value.line().startswith(".env line 1 is not KEY=value: ")


def test_a_malformed_line_gives_its_number_and_never_its_text(tmp_path):
    with pytest.raises(SecretsError) as error:
        parse_env("A=1\nsecret-value-here\n", source="/srv/.env")
    assert error.value.line() == (
        "/srv/.env line 2 is not KEY=value: fix or delete that line in /srv/.env "
        "(secrets on other lines are kept)"
    )
    assert error.value.exit_code == 2


def test_a_file_that_is_not_a_dotenv_gets_another_fix():
    with pytest.raises(SecretsError) as error:
        parse_env("root:x:0:0:root:/root:/bin/bash\n", source="/etc/passwd")
    assert error.value.line() == (
        "/etc/passwd line 1 is not KEY=value: /etc/passwd does not look like a .env file; point "
        "the option at the kit's .env (e.g. --env-file .env in the deployment directory)"
    )
    for name in (".env", ".env.local", "prod.env"):
        with pytest.raises(SecretsError) as error:
            parse_env("nonsense\n", source=f"/srv/{name}")
        assert error.value.line().endswith("(secrets on other lines are kept)"), name
    with pytest.raises(SecretsError) as error:
        parse_env("A=1\nnonsense\n", source="/etc/passwd")  # something parsed: a dotenv
    assert error.value.line().endswith("(secrets on other lines are kept)")


def test_a_key_set_twice_gives_both_line_numbers():
    with pytest.raises(SecretsError) as error:
        parse_env("A=1\n# c\nSECRET_KEY=x\n\nSECRET_KEY=y\n", source=".env")
    assert error.value.line().startswith("SECRET_KEY is set twice in .env (lines 3 and 5)")


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain", "plain"),
        ("", ""),
        ("A-z_0.9/:@+,=", "A-z_0.9/:@+,="),
        ("has space", "'has space'"),
        ("dollar$sign", "'dollar$sign'"),
        ('dq"', "'dq\"'"),
        ("hash#", "'hash#'"),
    ],
)
def test_format_value_quotes_only_what_needs_it(value, written):
    assert format_value(value) == written
    assert parse_env(f"K={written}\n")["K"] == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a\nb", "a value for .env contains a line break: use a single-line value"),
        ("a\rb", "a value for .env contains a line break: use a single-line value"),
        ("it's", "a value for .env contains a single quote: choose another value"),
    ],
)
def test_format_value_refuses_what_dotenv_cannot_hold(value, message):
    with pytest.raises(SecretsError) as error:
        format_value(value)
    assert error.value.line() == message


def test_update_env_file_replaces_in_place_appends_and_keeps_the_rest(tmp_path):
    env = tmp_path / ".env"
    env.write_text("# top\nexport A=1\nB=2\n\n# tail\n")
    assert update_env_file(env, {"B": "two words", "C": "3", "A": "one"}) is True
    assert env.read_text() == "# top\nA=one\nB='two words'\n\n# tail\nC=3\n"
    assert env.stat().st_mode & 0o777 == 0o600
    assert update_env_file(env, {"C": "3"}) is False


def test_update_env_file_writes_the_header_only_for_a_new_file(tmp_path):
    env = tmp_path / ".env"
    assert update_env_file(env, {"A": "1"}, header="# head\n") is True
    assert env.read_text() == "# head\nA=1\n"
    update_env_file(env, {"B": "2"}, header="# other\n")
    assert env.read_text() == "# head\nA=1\nB=2\n"
    assert update_env_file(tmp_path / "empty.env", {}) is False or (
        (tmp_path / "empty.env").read_text() == ""
    )


def test_update_env_file_refuses_a_corrupt_file_and_leaves_it(tmp_path):
    env = tmp_path / ".env"
    env.write_text("A=1\nnot a line\n")
    with pytest.raises(SecretsError, match="line 2 is not KEY=value"):
        update_env_file(env, {"B": "2"})
    assert env.read_text() == "A=1\nnot a line\n"


def test_read_env_file_of_a_missing_file_is_empty(tmp_path):
    assert read_env_file(tmp_path / ".env") == {}
    (tmp_path / ".env").write_text("A=1\n")
    assert read_env_file(tmp_path / ".env") == {"A": "1"}


# --- rcfile ---


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (f"url = {DSN}\n", " (line 1): MissingSectionHeaderError"),
        ("[defaults]\norg = a\norg = b\n", " (line 3): DuplicateOptionError"),
        ("[defaults]\nnot a key\n", ": ParsingError"),
    ],
)
def test_a_malformed_rc_is_refused_with_its_line_and_left_alone(tmp_path, text, what):
    rc = tmp_path / ".glitchtiprc"
    rc.write_text(text)
    expected = (
        f"{rc} is not a valid INI file{what}: fix that line or remove {rc} (the kit writes a new "
        "one), then run again"
    )
    with pytest.raises(UsageError) as error:
        check_rc_file(rc)
    assert error.value.line() == expected
    with pytest.raises(UsageError) as error:
        write_rc(rc, "glitchtiprc", server_url="http://x", org="a", project="p", dsn=DSN)
    assert error.value.line() == expected
    assert rc.read_text() == text


def test_check_rc_file_accepts_a_missing_or_valid_file_and_refuses_a_directory(tmp_path):
    check_rc_file(tmp_path / ".glitchtiprc")
    (tmp_path / ".glitchtiprc").write_text("[defaults]\norg = a\n")
    check_rc_file(tmp_path / ".glitchtiprc")
    with pytest.raises(UsageError) as error:
        check_rc_file(tmp_path)
    assert error.value.line() == f"{tmp_path} is a directory: give --rc the path of a file"


# --- the fix half of each refusal, and the size cap while reading ---


def test_each_read_refusal_carries_its_fix(tmp_path):
    with pytest.raises(UsageError) as error:
        read_text_file(tmp_path)
    # Linux opens a directory read-only without EISDIR: it is refused as "not a regular file".
    assert error.value.line().startswith(str(tmp_path)) and "a directory" in error.value.line()
    with pytest.raises(UsageError) as error:
        read_text_file(Path("/dev/zero"))
    assert "replace it with a regular file (or remove it and let the kit create zero)" in (
        error.value.line()
    )
    (tmp_path / "big").write_text("x" * 11)
    with pytest.raises(UsageError) as error:
        read_text_file(tmp_path / "big", max_bytes=10)
    line = error.value.line()
    assert "a kit file can be" in line and line.endswith("; trim it or remove it")
    (tmp_path / "latin1").write_bytes(b"caf\xe9")
    with pytest.raises(UsageError) as error:
        read_text_file(tmp_path / "latin1")
    assert error.value.line().endswith("; save it as UTF-8")


def test_a_file_that_grows_past_the_cap_while_read_is_refused():
    """/proc files report size 0 and arrive in ~4 KiB pieces: the cap counts every piece."""
    with pytest.raises(UsageError) as error:
        read_text_file(Path("/proc/self/maps"), max_bytes=5000)
    assert error.value.line() == ("/proc/self/maps is larger than 5000 bytes: trim /proc/self/maps")
    assert len(read_text_file(Path("/proc/self/maps"))) > 5000


def test_an_open_or_read_error_names_its_cause_and_fix(tmp_path):
    server = socket.socket(socket.AF_UNIX)
    path = tmp_path / "sock"
    server.bind(str(path))
    try:
        with pytest.raises(UsageError) as error:
            read_text_file(path)
    finally:
        server.close()
    assert error.value.line() == (
        f"cannot read {path} (No such device or address): "
        f"make {path} a regular file readable by you"
    )
    with pytest.raises(UsageError) as error:
        read_text_file(Path("/proc/self/mem"))  # a regular file whose read fails
    assert error.value.line() == (
        "cannot read /proc/self/mem (Input/output error): "
        "make /proc/self/mem a regular file readable by you"
    )


def test_link_and_fifo_refusals_carry_their_fix(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError) as error:
        check_writable_target(tmp_path / "link")
    assert "; the kit does not write or chmod a file it does not own: " in error.value.line()
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError) as error:
        check_writable_target(tmp_path / "fifo")
    assert error.value.line().endswith(": remove it; the kit writes fifo itself")


def test_env_errors_are_secrets_errors_naming_the_file(tmp_path):
    env = tmp_path / ".env"
    env.write_bytes(b"A=caf\xe9\n")
    with pytest.raises(SecretsError):
        read_env_file(env)
    with pytest.raises(SecretsError):
        update_env_file(env, {"B": "1"})
    env.write_text("A=1\nnot a line\n")
    with pytest.raises(SecretsError) as error:
        update_env_file(env, {"B": "2"})
    assert error.value.line().startswith(f"{env} line 2 is not KEY=value")


@pytest.mark.parametrize("quote", ["'", '"'])
def test_an_unclosed_quote_is_refused_with_its_line(quote):
    with pytest.raises(SecretsError) as error:
        parse_env(f"A=1\nB={quote}abc\n", source=".env")
    assert error.value.line().startswith(".env line 2")
    assert error.value.line().endswith("close the quote or remove it on line 2 of .env")


def test_a_duplicate_key_fix_says_which_line_compose_uses():
    with pytest.raises(SecretsError) as error:
        parse_env("K=1\nK=2\n", source=".env")
    assert error.value.line().endswith(
        ": delete one of the two lines; the value in use is on line 2 (Compose reads the last one)"
    )
