"""The manifest of a backup archive, and the check that an archive is whole before it is used.

`manifest.json` is the archive's last member: it lists every other member with its size and
SHA-256, and says what the backup came from (kit version, GlitchTip major and image, the Postgres
major of the server the dump was taken from and of `pg_dump`, the time in UTC). `read_manifest`
reads the whole archive once, hashing each member as a stream, so a truncated, corrupted or
tampered archive is refused before `restore` touches anything, without extracting to disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import UsageError

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "database.dump"
UPLOADS = "uploads.tar"
FILES_DIR = "files/"
# The deployment files a backup carries (those that exist).
DEPLOYMENT_FILES = ("glitchtip.yaml", ".env", ".glitchtiprc")
_ALLOWED = {DATABASE, UPLOADS, *(FILES_DIR + name for name in DEPLOYMENT_FILES)}
_MAX_MANIFEST = 1 << 20


@dataclass(frozen=True)
class Member:
    """One member of the archive as the manifest records it."""

    name: str
    size: int
    sha256: str


@dataclass
class Manifest:
    """What a backup holds and where it came from."""

    kit_version: str
    created_at: str  # UTC, ISO 8601 with a Z
    glitchtip_major: int
    glitchtip_image: str
    postgres_major: int  # the server the dump was taken from
    pg_dump_major: int
    postgres_image: str
    compose_project_name: str
    members: dict[str, Member] = field(default_factory=dict)
    format: int = FORMAT

    def to_json(self) -> str:
        document = asdict(self)
        document["members"] = {name: asdict(m) for name, m in sorted(self.members.items())}
        return json.dumps(document, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = MANIFEST) -> Manifest:
        """Parse and validate a manifest; `UsageError` naming what is wrong."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            if data.get("format") != FORMAT:
                raise UsageError(
                    f"{source} has format {data.get('format')!r}; this kit reads format {FORMAT}",
                    "restore it with the kit version that wrote it (see kit_version in it)",
                )
            members = {
                name: Member(name, int(m["size"]), str(m["sha256"]))
                for name, m in dict(data["members"]).items()
            }
            return cls(
                kit_version=str(data["kit_version"]),
                created_at=str(data["created_at"]),
                glitchtip_major=int(data["glitchtip_major"]),
                glitchtip_image=str(data["glitchtip_image"]),
                postgres_major=int(data["postgres_major"]),
                pg_dump_major=int(data["pg_dump_major"]),
                postgres_image=str(data["postgres_image"]),
                compose_project_name=str(data["compose_project_name"]),
                members=members,
            )
        except UsageError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"{source} is not a valid backup manifest ({exc.__class__.__name__})",
                "use an archive written by `provision backup`",
            ) from None

    def summary(self) -> str:
        """One line for people: when, which GlitchTip and Postgres, how big."""
        size = sum(m.size for m in self.members.values())
        return (
            f"GlitchTip {self.glitchtip_major} ({self.glitchtip_image}), Postgres "
            f"{self.postgres_major}, taken {self.created_at}, {human_size(size)}"
        )


def human_size(count: float) -> str:
    """Bytes for people: 512 B, 3.4 kB, 1.2 GB (powers of 1000, like `df -H`)."""
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"  # pragma: no cover - unreachable


def _refuse(archive: Path, why: str) -> UsageError:
    return UsageError(
        f"{archive} is not a usable backup: {why}; nothing was changed",
        "use another archive (or take a new one with `provision backup`)",
    )


def _hash_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> tuple[int, str, bytes | None]:
    """Size and SHA-256 of a member read as a stream; the bytes too when it is the manifest."""
    handle = tar.extractfile(info)
    assert handle is not None
    digest = hashlib.sha256()
    size = 0
    keep = info.name == MANIFEST and info.size <= _MAX_MANIFEST
    kept: list[bytes] = []
    while chunk := handle.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
        if keep:
            kept.append(chunk)
    return size, digest.hexdigest(), b"".join(kept) if keep else None


def read_manifest(archive: Path) -> Manifest:
    """The manifest of `archive` after checking every member against it.

    Refused (`UsageError`, exit 2): not a tar, truncated, an unexpected or missing member, a
    size or checksum that differs, a manifest that is not last or not valid.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise UsageError(f"{archive} is not a file", "give the path of a backup archive")
    seen: dict[str, Member] = {}
    manifest_text: bytes | None = None
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for info in tar:
                if manifest_text is not None:
                    raise _refuse(archive, f"{info.name!r} follows the manifest")
                if not info.isreg():
                    raise _refuse(archive, f"{info.name!r} is not a regular file")
                if info.name not in _ALLOWED and info.name != MANIFEST:
                    raise _refuse(archive, f"unexpected member {info.name[:80]!r}")
                if info.name in seen:
                    raise _refuse(archive, f"{info.name!r} appears twice")
                size, sha, data = _hash_member(tar, info)
                if size != info.size:
                    raise _refuse(archive, f"{info.name} is truncated")
                if info.name == MANIFEST:
                    if data is None:
                        raise _refuse(archive, "its manifest is too large")
                    manifest_text = data
                else:
                    seen[info.name] = Member(info.name, size, sha)
    except (tarfile.TarError, EOFError, OSError) as exc:
        why = "truncated" if "end of" in str(exc) or isinstance(exc, EOFError) else "not a tar"
        raise _refuse(archive, f"{why} ({' '.join(str(exc).split())[:80]})") from None
    if manifest_text is None:
        raise _refuse(archive, "it has no manifest.json at its end (truncated?)")
    try:
        text = manifest_text.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(archive, "its manifest is not UTF-8") from None
    manifest = Manifest.from_json(text, f"{archive}: {MANIFEST}")
    for name, member in manifest.members.items():
        found = seen.get(name)
        if found is None:
            raise _refuse(archive, f"{name} is listed in the manifest but missing")
        if found.size != member.size:
            why = f"{name} has {found.size} bytes, the manifest says {member.size}"
            raise _refuse(archive, why)
        if found.sha256 != member.sha256:
            raise _refuse(archive, f"{name} does not match its SHA-256 checksum (corrupted)")
    extra = sorted(set(seen) - set(manifest.members))
    if extra:
        raise _refuse(archive, f"{extra[0]} is not listed in the manifest")
    if DATABASE not in manifest.members:
        raise _refuse(archive, "it holds no database dump")
    return manifest


@contextlib.contextmanager
def open_member(archive: Path, name: str, expected: Member) -> Iterator[Iterator[bytes]]:
    """Chunks of member `name`, hashed again as they are read: an archive changed since
    `read_manifest` fails at its end rather than being taken for good."""
    with tarfile.open(archive, mode="r:") as tar:
        try:
            info = tar.getmember(name)
        except KeyError:
            raise _refuse(archive, f"{name} is missing") from None
        handle = tar.extractfile(info)
        assert handle is not None

        def chunks() -> Iterator[bytes]:
            digest = hashlib.sha256()
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                yield chunk
            if digest.hexdigest() != expected.sha256:
                raise _refuse(archive, f"{name} changed while it was being restored")

        yield chunks()


def safe_identifier(value: str, what: str) -> str:
    """`value` if it is a plain SQL identifier (used unquoted in pg commands), else refuse."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", value or ""):
        raise UsageError(f"{what} {value[:40]!r} is not a plain name", "use letters, digits and _")
    return value


def as_dict(manifest: Manifest) -> dict[str, Any]:
    """The manifest as JSON-ready data (for --json)."""
    return json.loads(manifest.to_json())
