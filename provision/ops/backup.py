"""`provision backup`: one archive holding everything needed to bring a deployment back.

The database is dumped with `pg_dump -Fc` inside the postgres container (a consistent snapshot
while GlitchTip keeps writing), the uploads volume is tarred by a throw-away container of the
web service's image that mounts it read-only, and `glitchtip.yaml`, `.env` and `.glitchtiprc`
are added as they are. Every byte is streamed into a temporary file beside the target and
hashed on the way; the manifest goes last, then the file is fsynced and linked into place, so an
archive under its final name is always whole, and a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import KitError, UsageError
from provision.ops.archive import ArchiveWriter
from provision.ops.manifest import (
    DATABASE,
    DEPLOYMENT_FILES,
    FILES_DIR,
    MANIFEST,
    UPLOADS,
    Manifest,
    Member,
    human_size,
)

BACKUP_DIR = "backups"
# glitchtip-<compose project>-<UTC time>-<major>.tar: the project in the name, so `--keep` in a
# directory several deployments back up to prunes only this deployment's archives.
NAME_PATTERN = re.compile(
    r"^glitchtip-(?P<project>[a-z0-9][a-z0-9_-]*)-(?P<time>\d{8}T\d{6}Z)-\d+\.tar$"
)
UPLOADS_VOLUME = "uploads"  # the volume's key in compose.yml
UPLOADS_MOUNT = "/kit-backup/uploads"
ARCHIVE_MODE = 0o600
PROGRESS_EVERY = 1.0  # seconds between progress lines


@dataclass
class BackupResult:
    """Where the archive is and what it holds."""

    path: Path
    manifest: Manifest
    seconds: float
    pruned: list[Path]


def backup_name(project: str, now: dt.datetime, major: int) -> str:
    """`glitchtip-<project>-<UTC time>-<major>.tar`: whose, when, and which GlitchTip."""
    return f"glitchtip-{project}-{now.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{major}.tar"


def resolve_output(directory: Path, output: Path | None, name: str) -> Path:
    """The archive's path: `output` (a file, or a directory to put `name` in) or backups/NAME.

    Refused before anything is written: an existing file (a backup is never overwritten), a
    symbolic link, a missing parent directory of an explicit `--output`.
    """
    from provision.fileio import check_writable_target

    if output is None:
        target = Path(directory) / BACKUP_DIR / name
        if target.parent.is_symlink() or (target.parent.exists() and not target.parent.is_dir()):
            raise UsageError(
                f"{target.parent} is not a directory of this deployment (a symbolic link or a "
                "file): the archive holds every event and the secrets of .env",
                "remove it, or give --output a directory of your own",
            )
        target.parent.mkdir(mode=0o700, exist_ok=True)
    elif Path(output).is_dir() and not Path(output).is_symlink():
        target = Path(output) / name
    else:
        target = Path(output)
        if not target.parent.is_dir():
            raise UsageError(
                f"{target.parent} does not exist", f"create it first (mkdir -p {target.parent})"
            )
    check_writable_target(target)
    if target.exists() or target.is_symlink():
        raise UsageError(
            f"{target} already exists; a backup never overwrites a file",
            "choose another --output or move that file away",
        )
    return target


def prune_backups(directory: Path, keep: int, project: str) -> list[Path]:
    """Delete all but the `keep` newest archives of compose project `project` in `directory`;
    return what was deleted.

    Only regular files named like the kit's archives of that project are considered: other
    deployments' archives, other files, directories and symbolic links (even to an archive) are
    never touched, and nothing outside `directory`.
    """
    if keep < 1:
        raise UsageError("--keep must be at least 1", "give the number of archives to keep")
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = []
        for name in os.listdir(fd):
            match = NAME_PATTERN.match(name)
            if match is None or match["project"] != project:
                continue
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISREG(info.st_mode):
                names.append((match["time"], name))
        names = [name for _time, name in sorted(names, reverse=True)]  # newest first
        deleted = []
        for name in names[keep:]:
            os.unlink(name, dir_fd=fd)
            deleted.append(Path(directory) / name)
        return deleted
    finally:
        os.close(fd)


class _Progress:
    """Bytes so far, at most once a second, to a callable (stderr in the CLI)."""

    def __init__(self, report: Callable[[str], None] | None, what: str) -> None:
        self.report = report
        self.what = what
        self.total = 0
        self.last = time.monotonic()

    def add(self, count: int) -> None:
        self.total += count
        now = time.monotonic()
        if self.report is not None and now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.report(f"{self.what}: {human_size(self.total)} so far")

    def done(self) -> None:
        if self.report is not None:
            self.report(f"{self.what}: {human_size(self.total)}")


def uploads_volume_name(compose: Any, project: str) -> str:
    """The engine's name of the uploads volume (`<project>_uploads` unless compose.yml names it)."""
    import json

    result = compose.run("config", "--format", "json", timeout=60)
    if result.ok:
        with contextlib.suppress(ValueError, AttributeError):
            volume = json.loads(result.stdout).get("volumes", {}).get(UPLOADS_VOLUME) or {}
            if volume.get("name"):
                return str(volume["name"])
    return f"{project}_{UPLOADS_VOLUME}"


def uploads_args(volume: str) -> list[str]:
    """A throw-away container of the web image with the uploads volume mounted read-only."""
    return [
        "run", "--rm", "--no-deps", "-T", "--entrypoint", "tar",
        "-v", f"{volume}:{UPLOADS_MOUNT}:ro",
        "web", "--numeric-owner", "-C", UPLOADS_MOUNT, "-cf", "-", ".",
    ]  # fmt: skip


def _read_deployment_files(directory: Path) -> dict[str, bytes]:
    from provision.fileio import read_text_file
    from provision.locking import locked

    found = {}
    with locked(directory):  # one consistent set, not a .env caught mid-update
        for name in DEPLOYMENT_FILES:
            text = read_text_file(Path(directory) / name)
            if text is not None:
                found[name] = text.encode("utf-8")
    return found


def create_backup(
    ctx: Any,
    *,
    output: Path | None = None,
    keep: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> BackupResult:
    """Write a backup archive of the deployment `ctx` describes; see the module docstring."""
    from provision import __version__
    from provision.ops import database
    from provision.runtime.streams import stream_out

    began = time.monotonic()
    if keep is not None and keep < 1:
        raise UsageError("--keep must be at least 1", "give the number of archives to keep")
    settings = ctx.load_settings()
    from provision.ops.bundled import require_bundled_data

    require_bundled_data(settings, "back up")
    directory = Path(settings.directory)
    compose = ctx.compose()
    database.require_running(compose, "back up")
    now = dt.datetime.now(dt.UTC)
    target = resolve_output(
        directory, output, backup_name(settings.compose_project_name, now, settings.glitchtip_major)
    )
    db = database.Database.of(ctx.services())
    server = database.server_major(compose, db)
    dumper = database.tool_major(compose, "pg_dump")
    files = _read_deployment_files(directory)
    volume = uploads_volume_name(compose, settings.compose_project_name)

    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.partial-", dir=target.parent)
    temp = Path(temp_name)
    try:
        os.fchmod(fd, ARCHIVE_MODE)
        with os.fdopen(fd, "wb") as handle:
            writer = ArchiveWriter(handle)
            for name, what, args in (
                (DATABASE, "pg_dump", database.dump_args(db)),
                (UPLOADS, "uploads", uploads_args(volume)),
            ):
                meter = _Progress(progress, what)

                def produce(write, args=args, what=what, meter=meter) -> None:
                    def sink(chunk: bytes) -> None:
                        write(chunk)
                        meter.add(len(chunk))

                    stream_out(compose, args, sink, what=what)

                writer.add_stream(name, produce)
                meter.done()
            for name, data in files.items():
                writer.add_bytes(FILES_DIR + name, data)
            manifest = Manifest(
                kit_version=__version__,
                created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                glitchtip_major=int(settings.glitchtip_major),
                glitchtip_image=str(settings.glitchtip_image),
                postgres_major=server,
                pg_dump_major=dumper,
                postgres_image=str(settings.postgres_image),
                compose_project_name=str(settings.compose_project_name),
                members={m.name: Member(m.name, m.size, m.sha256) for m in writer.members},
            )
            writer.add_bytes(MANIFEST, manifest.to_json().encode("utf-8"))
            writer.close()
            os.fsync(handle.fileno())
        os.link(temp, target)  # never replaces: a file that appeared meanwhile is kept
    except KitError as error:
        if isinstance(error, UsageError):
            raise
        raise KitError(f"backup failed, no archive written: {error.message}", error.fix) from None
    except FileExistsError:
        raise UsageError(f"{target} appeared while the backup ran", "run it again") from None
    except OSError as exc:
        raise KitError(
            f"cannot write the backup to {target.parent} ({exc.strerror or exc})",
            f"check that {target.parent} is writable and has free space",
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    _fsync_directory(target.parent)
    pruned = (
        prune_backups(target.parent, keep, settings.compose_project_name)
        if keep is not None
        else []
    )
    return BackupResult(target, manifest, time.monotonic() - began, pruned)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
