"""What `locked` holds and when: one flock on the deployment directory (another open file
description of it cannot take the lock meanwhile), re-entrant within the process, released
when the outermost block ends; the nearest existing ancestor for a directory not created yet;
a file system without flock on directories tolerated, any other failure raised with the
descriptor closed."""

from __future__ import annotations

import errno
import fcntl
import os

import pytest

from provision import locking
from provision.locking import locked, locked_for


def _free(path) -> bool:
    """Whether another open file description of `path` can take the lock right now."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_the_lock_is_held_for_the_outermost_block_only(tmp_path):
    before = _fds()
    with locked(tmp_path):
        assert not _free(tmp_path)
        with locked(tmp_path / "."):
            assert len(_fds() - before) == 1  # one descriptor for both blocks
        assert not _free(tmp_path)  # the inner block's end does not release it
    assert _free(tmp_path)
    assert _fds() == before
    assert locking._held[str(tmp_path.resolve())][1:] == [0, -1]


def test_a_directory_not_created_yet_locks_its_nearest_ancestor_and_creates_nothing(tmp_path):
    with locked(tmp_path / "new" / "deeper"):
        assert not _free(tmp_path)
    assert list(tmp_path.iterdir()) == []
    with locked_for(tmp_path / ".env"):
        assert not _free(tmp_path)
    assert _free(tmp_path)


@pytest.mark.parametrize("code", [errno.EBADF, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL])
def test_a_file_system_without_directory_flock_still_runs_the_block(tmp_path, monkeypatch, code):
    real = fcntl.flock

    def unsupported(fd, operation):
        if operation == fcntl.LOCK_EX:
            raise OSError(code, os.strerror(code))
        return real(fd, operation)

    monkeypatch.setattr(fcntl, "flock", unsupported)
    before = _fds()
    ran = []
    with locked(tmp_path):
        ran.append(True)
    assert ran == [True] and _fds() == before


@pytest.mark.parametrize("failure", [OSError(errno.EIO, "I/O error"), KeyboardInterrupt()])
def test_any_other_flock_failure_is_raised_with_the_descriptor_closed(
    tmp_path, monkeypatch, failure
):
    def failing(fd, operation):
        raise failure

    monkeypatch.setattr(fcntl, "flock", failing)
    before = _fds()
    with pytest.raises(type(failure)), locked(tmp_path):
        raise AssertionError("the block must not run")
    assert _fds() == before
    monkeypatch.undo()
    with locked(tmp_path):  # nothing left half-held
        assert not _free(tmp_path)
    assert _free(tmp_path)


def test_a_failing_unlock_still_closes_the_descriptor(tmp_path, monkeypatch):
    real = fcntl.flock

    def no_unlock(fd, operation):
        if operation == fcntl.LOCK_UN:
            raise OSError(errno.EIO, "I/O error")
        return real(fd, operation)

    monkeypatch.setattr(fcntl, "flock", no_unlock)
    before = _fds()
    with locked(tmp_path):
        pass
    assert _fds() == before and _free(tmp_path)
