"""Atomic writes: a file that cannot be written is one `KitError` line, and nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli import cli
from provision.errors import KitError
from provision.fileio import SECRET_FILE_MODE, write_atomic


def test_unwritable_target_is_a_kit_error_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    with pytest.raises(KitError) as caught:
        write_atomic(blocker / ".env", "SECRET_KEY=abc\n", mode=SECRET_FILE_MODE)
    assert str(blocker / ".env") in caught.value.line()
    assert "SECRET_KEY" not in caught.value.line()
    assert blocker.read_text() == "x"


def test_render_onto_a_directory_fails_in_one_line(tmp_path: Path, kit_environ) -> None:
    (tmp_path / "compose.yml").mkdir()
    result = CliRunner().invoke(cli, ["render", "--dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write"), result.stderr
    assert "compose.yml" in lines[0]
    assert list((tmp_path / "compose.yml").iterdir()) == []


def test_any_other_os_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import provision.dsn

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/srv/app/.glitchtiprc")

    monkeypatch.setattr(provision.dsn, "resolve_dsn", unreadable)
    result = CliRunner().invoke(cli, ["dsn"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stderr.strip() == (
        "error: cannot use /srv/app/.glitchtiprc: Permission denied: check its permissions"
    )


def test_an_os_error_without_a_file_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import provision.dsn

    def reset(*args, **kwargs):
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(provision.dsn, "resolve_dsn", reset)
    result = CliRunner().invoke(cli, ["dsn"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: Connection reset by peer (ConnectionResetError)"
