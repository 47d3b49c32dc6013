"""`write_files_atomic` (`.env` and the Compose files as one change) and the unchanged-file check
every write makes, read whole: which paths changed, the bytes and modes on disk, each refusal's
line and fix, and that a failure at any point leaves every target as it was and no temporary
file behind.
"""

from __future__ import annotations

import errno
import os
import stat

import pytest

from provision import fileio
from provision.errors import KitError
from provision.fileio import MAX_FILE_BYTES, write_atomic, write_files_atomic


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_several_files_change_as_one_and_only_the_changed_ones_are_named(tmp_path):
    same, other, new = tmp_path / "same.yml", tmp_path / "other.yml", tmp_path / ".env"
    same.write_text("kept\n")
    os.chmod(same, 0o600)
    other.write_text("old\n")
    content = "KEY=välue\r\nNEXT=1\n"  # non-ASCII and a CR LF kept as given
    changed = write_files_atomic(
        [(same, "kept\n", 0o644), (new, content, 0o600), (other, "new\n", 0o644)]
    )
    assert changed == [new, other]
    assert new.read_bytes() == content.encode("utf-8")
    assert other.read_bytes() == b"new\n"
    assert (_mode(same), _mode(new), _mode(other)) == (0o644, 0o600, 0o644)
    assert _leftovers(tmp_path) == []
    assert write_files_atomic([(new, content, 0o600), (other, "new\n", 0o644)]) == []


def test_a_directory_in_a_targets_place_is_refused_before_anything_is_written(tmp_path):
    first, blocked = tmp_path / ".env", tmp_path / "compose.yml"
    blocked.mkdir()
    with pytest.raises(KitError) as refused:
        write_files_atomic([(first, "A=1\n", 0o600), (blocked, "services: {}\n", 0o644)])
    assert (refused.value.message, refused.value.fix) == (
        f"cannot write {blocked} (IsADirectoryError: a directory is in its place); no file "
        "was changed",
        f"move the directory {blocked} away",
    )
    assert not first.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("failing", [0, 1, 2])
def test_a_full_disk_while_staging_changes_no_file_and_names_the_file_being_written(
    tmp_path, monkeypatch, failing
):
    targets = [tmp_path / ".env", tmp_path / "compose.yml", tmp_path / "compose.part.yml"]
    for index, path in enumerate(targets):
        path.write_text(f"old {index}\n")
    real = os.fdopen
    calls = []

    def full(fd, *args, **kwargs):
        calls.append(fd)
        if len(calls) == failing + 1:
            os.close(fd)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", full)
    with pytest.raises(KitError) as refused:
        write_files_atomic([(path, "new\n", 0o644) for path in targets])
    assert (refused.value.message, refused.value.fix) == (
        f"cannot write {targets[failing]} (OSError: No space left on device); no file was changed",
        f"check that {tmp_path} is writable by you and has free space",
    )
    assert [path.read_text() for path in targets] == ["old 0\n", "old 1\n", "old 2\n"]
    assert _leftovers(tmp_path) == []


def test_a_failure_naming_its_file_is_reported_with_that_file(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "compose.yml"
    target.parent.mkdir()

    def refused_dir(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(target.parent))

    monkeypatch.setattr(fileio.tempfile, "mkstemp", refused_dir)
    with pytest.raises(KitError) as refused:
        write_files_atomic([(target, "x\n", 0o644)])
    assert (refused.value.message, refused.value.fix) == (
        f"cannot write {target.parent} (PermissionError: Permission denied); no file was changed",
        f"check that {tmp_path} is writable by you and has free space",
    )

    def nameless(*args, **kwargs):
        raise OSError("no errno")

    monkeypatch.setattr(fileio.tempfile, "mkstemp", nameless)
    with pytest.raises(KitError) as refused:
        write_files_atomic([(target, "x\n", 0o644)])
    assert (refused.value.message, refused.value.fix) == (
        "cannot write . (OSError: failed); no file was changed",
        "check that . is writable by you and has free space",
    )


def test_a_target_that_changes_under_the_renames_stops_them_and_removes_the_rest(
    tmp_path, monkeypatch
):
    first, second, third = (tmp_path / name for name in (".env", "compose.yml", "part.yml"))
    real = os.replace
    renamed = []

    def swapped(source, destination):
        if destination == second:
            raise IsADirectoryError(errno.EISDIR, "Is a directory")
        renamed.append(destination)
        return real(source, destination)

    monkeypatch.setattr(os, "replace", swapped)
    with pytest.raises(KitError) as refused:
        write_files_atomic([(first, "1\n", 0o600), (second, "2\n", 0o644), (third, "3\n", 0o644)])
    assert (refused.value.message, refused.value.fix) == (
        f"cannot write {second} (IsADirectoryError: Is a directory)",
        f"check {second} and {tmp_path}",
    )
    assert renamed == [first] and first.read_text() == "1\n"
    assert not second.exists() and not third.exists()
    assert _leftovers(tmp_path) == []


def test_unchanged_content_keeps_the_file_and_fixes_only_its_mode(tmp_path):
    path = tmp_path / ".env"
    path.write_text("A=1\n")
    os.chmod(path, 0o644)
    before = os.stat(path).st_ino
    assert write_atomic(path, "A=1\n", 0o600) is False
    assert (_mode(path), os.stat(path).st_ino) == (0o600, before)
    assert write_atomic(path, "A=2\n", 0o600) is True
    assert os.stat(path).st_ino != before


def test_a_file_of_exactly_the_cap_is_compared_and_one_byte_more_is_rewritten(tmp_path):
    path = tmp_path / "big.txt"
    content = "x" * MAX_FILE_BYTES
    path.write_text(content)
    before = os.stat(path).st_ino
    assert write_atomic(path, content) is False and os.stat(path).st_ino == before
    path.write_text(content + "x")
    before = os.stat(path).st_ino
    assert write_atomic(path, content + "x") is True and os.stat(path).st_ino != before


def test_a_write_that_fails_is_one_line_naming_the_file_and_its_directory(tmp_path, monkeypatch):
    path = tmp_path / ".env"

    def failing(fd, mode):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "fchmod", failing)
    with pytest.raises(KitError) as refused:
        write_atomic(path, "A=1\n", 0o600)
    assert (refused.value.message, refused.value.fix) == (
        f"cannot write {path} (OSError: Read-only file system)",
        f"check that {tmp_path} is writable by you and has free space",
    )
    assert not path.exists() and _leftovers(tmp_path) == []


def test_each_new_content_is_staged_in_a_hidden_sibling_with_its_final_mode(tmp_path, monkeypatch):
    """As `write_atomic`'s: the same directory (a rename across file systems is not atomic),
    hidden and named for its target, so a process killed before the renames leaves
    `.NAME.*.tmp` beside NAME; a secret's temp file is never readable by others."""
    real = os.replace
    staged = []

    def replace(source, destination):
        staged.append((os.path.dirname(source), os.path.basename(source), _mode(source)))
        return real(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    (tmp_path / "sub").mkdir()
    targets = [
        (tmp_path / ".env", "A=1\n", 0o600),
        (tmp_path / "sub" / "compose.yml", "x\n", 0o644),
    ]
    write_files_atomic(targets)
    assert [(d, mode) for d, _name, mode in staged] == [
        (str(tmp_path), 0o600),
        (str(tmp_path / "sub"), 0o644),
    ]
    names = [name for _d, name, _mode in staged]
    assert names[0].startswith("..env.") and names[0].endswith(".tmp")
    assert names[1].startswith(".compose.yml.") and names[1].endswith(".tmp")
