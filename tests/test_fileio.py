"""Atomic writes: a file that cannot be written is one `KitError` line, and nothing changes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


# --- atomicity: what a crash, a failed write or a reader holding the old file sees ---


def leftovers(directory: Path, name: str) -> list[str]:
    """Temporary files `write_atomic` left next to `name` (there must be none)."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(f".{name}."))


def test_new_file_gets_content_mode_and_reports_a_change(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / ".env"
    assert write_atomic(target, "A=1\n", mode=SECRET_FILE_MODE) is True
    assert target.read_bytes() == b"A=1\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert leftovers(target.parent, ".env") == []
    public = tmp_path / "compose.yml"
    assert write_atomic(public, "services: {}\r\n") is True
    assert public.read_bytes() == b"services: {}\r\n"  # newline="" keeps line endings as given
    assert public.stat().st_mode & 0o777 == 0o644


def test_mode_does_not_depend_on_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        write_atomic(tmp_path / "secret", "x", mode=SECRET_FILE_MODE)
        write_atomic(tmp_path / "public", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "public").stat().st_mode & 0o777 == 0o644


def test_identical_content_is_not_rewritten_but_its_mode_is_fixed(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_text("A=1\n")
    target.chmod(0o644)
    inode, mtime = target.stat().st_ino, target.stat().st_mtime_ns
    assert write_atomic(target, "A=1\n", mode=SECRET_FILE_MODE) is False
    assert target.stat().st_mode & 0o777 == 0o600
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == (inode, mtime)
    assert write_atomic(target, "A=1\n", mode=SECRET_FILE_MODE) is False
    assert write_atomic(target, "A=2\n", mode=SECRET_FILE_MODE) is True
    assert target.read_text() == "A=2\n"


def test_the_old_file_is_replaced_never_rewritten_in_place(tmp_path: Path) -> None:
    """A reader that opened the old file (or a hard link to it) keeps reading the old content:
    the new content is a new inode renamed over the path, not a truncate-and-write."""
    target = tmp_path / ".env"
    target.write_text("SECRET_KEY=old\n")
    alias = tmp_path / "alias"
    os.link(target, alias)
    with target.open() as reader:
        assert write_atomic(target, "SECRET_KEY=new\n", mode=SECRET_FILE_MODE) is True
        assert reader.read() == "SECRET_KEY=old\n"
    assert alias.read_text() == "SECRET_KEY=old\n"
    assert target.read_text() == "SECRET_KEY=new\n"
    assert target.stat().st_ino != alias.stat().st_ino


def test_data_is_fsynced_before_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / ".env"
    target.write_text("old\n")
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        # What is being synced: the temporary file, already holding the full new content.
        events.append(("fsync", Path(f"/proc/self/fd/{fd}").read_text()))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_atomic(target, "new content\n", mode=SECRET_FILE_MODE)
    assert events == [("fsync", "new content\n"), ("replace", ".env")]


@pytest.mark.parametrize("failing", ["replace", "fsync", "write"])
def test_a_failure_before_the_rename_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / ".env"
    target.write_text("SECRET_KEY=old\n")
    target.chmod(0o600)

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if failing == "write":
        real_fdopen = os.fdopen

        def full_disk(fd, *args, **kwargs):
            handle = real_fdopen(fd, *args, **kwargs)
            handle.write("SECRET_KEY=ne")  # part of the content made it to the disk
            handle.flush()
            monkeypatch.setattr(handle, "write", boom, raising=False)
            return handle

        monkeypatch.setattr(os, "fdopen", full_disk)
    else:
        monkeypatch.setattr(os, failing, boom)
    with pytest.raises(KitError) as caught:
        write_atomic(target, "SECRET_KEY=new\n", mode=SECRET_FILE_MODE)
    monkeypatch.undo()
    assert caught.value.line().startswith(f"cannot write {target} (OSError: No space left")
    assert "SECRET_KEY" not in caught.value.line().replace(str(target), "")
    assert target.read_text() == "SECRET_KEY=old\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert leftovers(tmp_path, ".env") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


def test_an_interrupt_before_the_rename_removes_the_temp_and_propagates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "compose.yml"
    target.write_text("old\n")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new\n")
    monkeypatch.undo()
    assert target.read_text() == "old\n" and leftovers(tmp_path, "compose.yml") == []


def test_a_process_killed_between_temp_and_rename_leaves_the_old_file(tmp_path: Path) -> None:
    """SIGKILL right before the rename: the target still holds the old content in full; the
    new content exists only in a dot-temp file next to it (cleaned by nobody, named so)."""
    target = tmp_path / ".env"
    target.write_text("SECRET_KEY=old\n")
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from provision.fileio import write_atomic\n"
        "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        "write_atomic(Path(sys.argv[1]), 'SECRET_KEY=new\\n', mode=0o600)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(target)], timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL
    assert target.read_text() == "SECRET_KEY=old\n"
    temps = leftovers(tmp_path, ".env")
    assert len(temps) == 1 and temps[0].endswith(".tmp")
    assert (tmp_path / temps[0]).read_text() == "SECRET_KEY=new\n"
    assert (tmp_path / temps[0]).stat().st_mode & 0o777 == 0o600  # never readable by others


def test_the_temp_file_is_a_hidden_sibling_of_the_target(tmp_path: Path, monkeypatch) -> None:
    """Same directory (a rename across file systems is not atomic), hidden, named for the target."""
    target = tmp_path / "compose.yml"
    renamed: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def replace(src, dst) -> None:
        renamed.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    write_atomic(target, "x\n")
    [(src, dst)] = renamed
    assert dst == target and src.parent == tmp_path
    assert src.name.startswith(".compose.yml.") and src.name.endswith(".tmp")


def test_the_error_line_names_the_file_the_cause_and_the_fix(tmp_path: Path, monkeypatch):
    target = tmp_path / ".env"

    def no_space(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(KitError) as caught:
        write_atomic(target, "A=1\n")
    assert caught.value.line() == (
        f"cannot write {target} (OSError: No space left on device): "
        f"check that {tmp_path} is writable by you and has free space"
    )

    def bare(*args):
        raise OSError("no errno")

    monkeypatch.setattr(os, "replace", bare)
    with pytest.raises(KitError) as caught:
        write_atomic(target, "A=1\n")
    assert caught.value.line().startswith(f"cannot write {target} (OSError: failed): ")


def test_identical_content_is_recognised_at_any_size(tmp_path: Path) -> None:
    from provision.fileio import MAX_FILE_BYTES

    target = tmp_path / "big"
    big = "y" * 100_000  # more than one read
    assert write_atomic(target, big) is True
    assert write_atomic(target, big) is False
    edge = "z" * MAX_FILE_BYTES  # the largest file still compared
    assert write_atomic(target, edge) is True
    assert write_atomic(target, edge) is False
    over = "w" * (MAX_FILE_BYTES + 1)  # larger: not compared, simply rewritten
    assert write_atomic(target, over) is True
    assert write_atomic(target, over) is True
    assert target.read_text() == over


def test_same_content_never_follows_a_link_or_blocks_on_a_fifo(tmp_path: Path) -> None:
    import threading

    from provision.fileio import _same_content

    foreign = tmp_path / "foreign"
    foreign.write_text("A=1\n")
    foreign.chmod(0o644)
    (tmp_path / "link").symlink_to(foreign)
    assert _same_content(tmp_path / "link", "A=1\n", SECRET_FILE_MODE) is False
    assert foreign.stat().st_mode & 0o777 == 0o644
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    answers: list[bool] = []
    worker = threading.Thread(
        target=lambda: answers.append(_same_content(fifo, "", 0o600)), daemon=True
    )
    worker.start()
    worker.join(5)
    blocked = worker.is_alive()
    if blocked:  # release the blocked reader
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not blocked and answers == [False]


def test_write_new_atomic_creates_and_never_overwrites(tmp_path):
    """export's promise: an existing entry (a file created meanwhile, a symlink, a FIFO) is
    refused and left as it was; no temporary file is left behind either way."""
    import os

    from provision.errors import UsageError
    from provision.fileio import write_new_atomic

    target = tmp_path / "out.yaml"
    write_new_atomic(target, "a: 1\n", 0o600)
    assert target.read_text() == "a: 1\n"
    assert target.stat().st_mode & 0o777 == 0o600
    with pytest.raises(UsageError, match="exists") as refused:
        write_new_atomic(target, "b: 2\n")
    assert refused.value.fix == "give a new file name (it is never overwritten)"
    assert target.read_text() == "a: 1\n"
    link = tmp_path / "link.yaml"
    link.symlink_to(tmp_path / "elsewhere.yaml")
    with pytest.raises(UsageError):
        write_new_atomic(link, "c: 3\n")
    assert not (tmp_path / "elsewhere.yaml").exists()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError):
        write_new_atomic(fifo, "d: 4\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "link.yaml", "out.yaml"]
