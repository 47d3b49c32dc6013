"""Atomic file writes, and reads that cannot hang, exhaust memory or follow a trap.

A half-written `.env` would lose secrets, and a half-written compose file would break the next
`up`, so every file the kit writes goes through `write_atomic`: the content lands in a temporary
file in the same directory, is flushed to disk, given its final mode, and then renamed over the
target in one step. Either the old file or the new one exists, never a mix.

The kit only ever writes and chmods regular files it owns. A symlink at a target path points at a
file someone else owns (`.env -> /srv/secrets/env`, `.glitchtiprc -> /etc/passwd`): writing
"through" it would chmod the foreign file, and the rename would replace the link with a copy of
the foreign file's text. Such targets are refused with what to do instead. Reads go through
`read_text_file`, which opens without blocking (a FIFO would otherwise hang forever), refuses
anything but a regular file, and caps the size (a huge file would exhaust memory).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from provision.errors import KitError, UsageError

SECRET_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644
# The kit's files are a few KiB; anything near this is not one of them.
MAX_FILE_BYTES = 1024 * 1024


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def read_text_file(
    path: Path, *, max_bytes: int = MAX_FILE_BYTES, error: type[UsageError] = UsageError
) -> str | None:
    """The UTF-8 text of the regular file `path`, or None when it does not exist.

    Opened with O_NONBLOCK so a FIFO or device is seen (and refused) instead of blocking
    forever; a symlink is followed for reading (the kit never writes through one). A file over
    `max_bytes`, not regular, unreadable or not UTF-8 is an `error` (exit 2) naming the fix.
    """
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise error(
            f"{path} cannot be read: it is a directory", f"move it away; {path.name} is a file"
        ) from None
    except OSError as exc:
        raise error(
            f"cannot read {path} ({exc.strerror or exc.__class__.__name__})",
            f"make {path} a regular file readable by you",
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(
                f"{path} cannot be read: it is {_kind(info.st_mode)}, not a regular file",
                f"replace it with a regular file (or remove it and let the kit create {path.name})",
            )
        if info.st_size > max_bytes:
            raise error(
                f"{path} cannot be read: {info.st_size} bytes is more than the {max_bytes} a "
                "kit file can be",
                f"check that {path} is the right file; trim it or remove it",
            )
        chunks = []
        total = 0
        while chunk := os.read(fd, 65536):
            total += len(chunk)
            if total > max_bytes:  # it grew while being read
                raise error(f"{path} is larger than {max_bytes} bytes", f"trim {path}")
            chunks.append(chunk)
    except OSError as exc:
        raise error(
            f"cannot read {path} ({exc.strerror or exc.__class__.__name__})",
            f"make {path} a regular file readable by you",
        ) from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path} cannot be read: it is not UTF-8 text (byte {exc.start})",
            f"check that {path} is the right file; save it as UTF-8",
        ) from None


def check_writable_target(path: Path) -> None:
    """Refuse (exit 2) to write `path` when it is a symlink or another non-regular file.

    Called before a command's first write, so a refusal leaves every file as it was.
    """
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError:
        return  # write_atomic reports it with the path
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path)
        raise UsageError(
            f"{path} is a symbolic link (to {target}); the kit does not write or chmod a file "
            "it does not own",
            f"remove the link (the kit then writes its own {path.name}), or, if {target} is "
            f"meant to be this file, put a copy in its place: `cp --remove-destination {target} "
            f"{path}`",
        )
    if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
        # Directories are reported by the write itself ("cannot write ...").
        raise UsageError(
            f"{path} is {_kind(info.st_mode)}, not a regular file",
            f"remove it; the kit writes {path.name} itself",
        )


def write_atomic(path: Path, content: str, mode: int = PUBLIC_FILE_MODE) -> bool:
    """Write `content` to `path` atomically with `mode`; return False if it was already so.

    Skipping identical content keeps re-runs from touching mtimes, so `make` and the operator
    can tell that nothing changed. A file that cannot be written (permissions, a read-only or
    full disk) is a `KitError` naming the path, not a traceback; the old file stays as it was.
    A symlink or other non-regular file at `path` is refused (`UsageError`) and left alone.
    """
    path = Path(path)
    check_writable_target(path)
    try:
        return _write_atomic(path, content, mode)
    except OSError as exc:
        raise KitError(
            f"cannot write {path} ({exc.__class__.__name__}: {exc.strerror or 'failed'})",
            f"check that {path.parent} is writable by you and has free space",
        ) from None


def write_new_atomic(path: Path, content: str, mode: int = PUBLIC_FILE_MODE) -> None:
    """Create `path` holding `content`, refusing (`UsageError`) when it already exists.

    For a command promising never to overwrite (`export --output`): a check for existence
    followed by a write would lose a file created in between. The content is written to a
    temporary file first and then hard-linked to `path`, which the kernel refuses when any
    entry (a file, a symlink, a FIFO) holds the name: all or nothing, never half a file.
    """
    path = Path(path)
    try:
        _write_through_temp(path, content, mode, os.link)
    except FileExistsError:
        raise UsageError(
            f"{path} exists", "give a new file name (it is never overwritten)"
        ) from None
    except OSError as exc:
        raise KitError(
            f"cannot write {path} ({exc.__class__.__name__}: {exc.strerror or 'failed'})",
            f"check that {path.parent} is writable by you and has free space",
        ) from None


def _write_through_temp(path: Path, content: str, mode: int, publish) -> None:
    """Write `content` (synced, with `mode`) to a temporary file beside `path`, then
    `publish(temp, path)`: `os.replace` swaps it in, `os.link` creates `path` only if absent.
    The temporary file never outlives the call."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        publish(tmp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


def _same_content(path: Path, content: str, mode: int) -> bool:
    """True when `path` already holds `content`; its mode is then set to `mode` through the
    open descriptor (O_NOFOLLOW: never the target of a link swapped in meanwhile)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.EISDIR, errno.ENOTDIR):
            return False
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return False
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
        if data != content.encode("utf-8"):
            return False
        if (info.st_mode & 0o777) != mode:
            os.fchmod(fd, mode)
        return True
    finally:
        os.close(fd)


def _write_atomic(path: Path, content: str, mode: int) -> bool:
    if _same_content(path, content, mode):
        return False
    _write_through_temp(path, content, mode, os.replace)
    return True


def write_files_atomic(files: list[tuple[Path, str, int]]) -> list[Path]:
    """Write several files as one change: every new content is first written to a temporary
    file beside its target and synced, and only when all of them are on disk are they renamed
    into place. A full disk, a quota or a permission error while writing therefore leaves every
    target as it was (a `.env` and a `compose.yml` that disagree would address another port or
    project); the renames need no free space. (path, content, mode) items; returns the paths
    that changed. Symlinks and other non-regular targets are refused before anything is written.
    """
    for path, _content, _mode in files:
        check_writable_target(Path(path))
        if Path(path).is_dir():
            raise KitError(
                f"cannot write {path} (IsADirectoryError: a directory is in its place); no file "
                "was changed",
                f"move the directory {path} away",
            )
    staged: list[tuple[str, Path]] = []
    try:
        for path, content, mode in files:
            path = Path(path)
            if _same_content(path, content, mode):
                continue
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((tmp_name, path))
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
    except OSError as exc:
        for tmp_name, _path in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        where = Path(getattr(exc, "filename", None) or (staged[-1][1] if staged else "."))
        raise KitError(
            f"cannot write {where} ({exc.__class__.__name__}: {exc.strerror or 'failed'}); "
            "no file was changed",
            f"check that {where.parent} is writable by you and has free space",
        ) from None
    for index, (tmp_name, path) in enumerate(staged):
        try:
            os.replace(tmp_name, path)
        except OSError as exc:  # the target changed under us since the checks above
            for later, _path in staged[index:]:
                with contextlib.suppress(OSError):
                    os.unlink(later)
            raise KitError(
                f"cannot write {path} ({exc.__class__.__name__}: {exc.strerror or 'failed'})",
                f"check {path} and {path.parent}",
            ) from None
    return [path for _tmp, path in staged]
