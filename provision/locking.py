"""One lock per deployment directory around every read-modify-write of the kit's files.

`.env`, `glitchtip.yaml` and `.glitchtiprc` are updated by reading them, computing, and writing
the result atomically. Two processes doing that at once lose an update: `rotate-secret` during a
`render` put the old SECRET_KEY back, and two concurrent `init`s both "generated" the secrets.
`locked(directory)` holds an exclusive `fcntl.flock` on the deployment directory itself for
the whole read + compute + write, so the second process waits and then sees the first one's
result. Locking the directory (Linux and the BSDs allow flock on a directory descriptor) leaves
no lock file behind: a refused command changes no file, and there is nothing to gitignore or to
delete by mistake. The lock is re-entrant within a process (a command holding it may call a
function that takes it again) and serializes threads too.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from provision.errors import KitError

_guard = threading.Lock()
# lock path -> [re-entrant thread lock, depth, fd]
_held: dict[str, list] = {}


def _entry(key: str) -> list:
    with _guard:
        return _held.setdefault(key, [threading.RLock(), 0, -1])


def _open_directory(path: Path) -> int:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags)
    except OSError as exc:
        raise KitError(
            f"cannot lock {path} ({exc.strerror or exc.__class__.__name__})",
            f"check that {path} is a directory readable by you",
        ) from None


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the deployment lock of `directory` for the `with` block."""
    path = Path(directory).resolve()
    while not path.is_dir() and path != path.parent:
        # Not created yet (write_atomic creates it): lock the nearest existing ancestor, so
        # that a refusal before the first write leaves no new directory behind.
        path = path.parent
    entry = _entry(str(path))
    with entry[0]:
        if entry[1] == 0:
            fd = _open_directory(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                # A file system without flock on directories (NFS emulates flock with POSIX
                # locks, which need a writable descriptor): the thread lock above still
                # serializes this process; refusing to work there would be worse.
                if exc.errno not in (errno.EBADF, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                    os.close(fd)
                    raise
            except BaseException:
                os.close(fd)
                raise
            entry[2] = fd
        entry[1] += 1
        try:
            yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                fd, entry[2] = entry[2], -1
                with contextlib.suppress(OSError):  # closing releases it anyway
                    fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


def locked_for(path: Path) -> contextlib.AbstractContextManager[None]:
    """The lock of the directory holding `path` (`.env`, `.glitchtiprc`, ...)."""
    return locked(Path(path).parent)
