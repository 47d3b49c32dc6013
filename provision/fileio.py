"""Atomic file writes.

A half-written `.env` would lose secrets, and a half-written compose file would break the next
`up`, so every file the kit writes goes through `write_atomic`: the content lands in a temporary
file in the same directory, is flushed to disk, given its final mode, and then renamed over the
target in one step. Either the old file or the new one exists, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from provision.errors import KitError

SECRET_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644


def write_atomic(path: Path, content: str, mode: int = PUBLIC_FILE_MODE) -> bool:
    """Write `content` to `path` atomically with `mode`; return False if it was already so.

    Skipping identical content keeps re-runs from touching mtimes, so `make` and the operator
    can tell that nothing changed. A file that cannot be written (permissions, a read-only or
    full disk) is a `KitError` naming the path, not a traceback; the old file stays as it was.
    """
    path = Path(path)
    try:
        return _write_atomic(path, content, mode)
    except OSError as exc:
        raise KitError(
            f"cannot write {path} ({exc.__class__.__name__}: {exc.strerror or 'failed'})",
            f"check that {path.parent} is writable by you and has free space",
        ) from None


def _write_atomic(path: Path, content: str, mode: int) -> bool:
    try:
        if path.read_text(encoding="utf-8") == content:
            if (path.stat().st_mode & 0o777) != mode:
                os.chmod(path, mode)
            return False
    except (FileNotFoundError, UnicodeDecodeError, IsADirectoryError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return True
