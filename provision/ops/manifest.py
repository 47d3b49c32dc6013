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
        """Parse and validate a manifest; `UsageError` naming what is wrong.

        Strict, since an archive may come from anyone: JSON without NaN or Infinity, nesting
        that fits (a manifest is two levels deep), and every field of its own type: a major is
        an integer (not `true`, which Python counts as 1, nor 6.0), a size a non-negative
        integer, a checksum 64 hex digits.
        """
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except RecursionError:
            raise _invalid(source, "nested too deeply") from None
        except ValueError as exc:
            raise _invalid(source, f"not JSON: {' '.join(str(exc).split())[:80]}") from None
        if not isinstance(data, dict):
            raise _invalid(source, "not a JSON object")
        if data.get("format") != FORMAT or not _is_int(data.get("format")):
            raise UsageError(
                f"{source} has format {json.dumps(data.get('format'))[:20]}; this kit reads format "
                f"{FORMAT}",
                "restore it with the kit version that wrote it (see kit_version in it)",
            )
        members_raw = data.get("members")
        if not isinstance(members_raw, dict):
            raise _invalid(source, "members is not an object")
        members = {}
        for name, item in members_raw.items():
            if name not in _ALLOWED or not isinstance(item, dict):
                raise _invalid(source, f"member {str(name)[:60]!r} is not one a backup holds")
            size, sha = item.get("size"), item.get("sha256")
            if not _is_int(size) or size < 0:
                raise _invalid(source, f"the size of {name} is not a whole number of bytes")
            if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
                raise _invalid(source, f"the sha256 of {name} is not 64 hex digits")
            members[name] = Member(name, size, sha)
        fields: dict[str, Any] = {}
        for key in _TEXT_FIELDS:
            value = data.get(key)
            if not isinstance(value, str) or not value.isprintable() or len(value) > 300:
                raise _invalid(source, f"{key} is not a line of text")
            fields[key] = value
        for key in _MAJOR_FIELDS:
            value = data.get(key)
            if not _is_int(value) or not 1 <= value <= 999:
                raise _invalid(source, f"{key} is not a version number ({str(value)[:20]})")
            fields[key] = value
        return cls(members=members, **fields)

    def summary(self) -> str:
        """One line for people: when, which GlitchTip and Postgres, how big."""
        size = sum(m.size for m in self.members.values())
        return (
            f"GlitchTip {self.glitchtip_major} ({self.glitchtip_image}), Postgres "
            f"{self.postgres_major}, taken {self.created_at}, {human_size(size)}"
        )


_TEXT_FIELDS = (
    "kit_version",
    "created_at",
    "glitchtip_image",
    "postgres_image",
    "compose_project_name",
)
_MAJOR_FIELDS = ("glitchtip_major", "postgres_major", "pg_dump_major")


def _is_int(value: object) -> bool:
    """An integer proper: JSON's `true` is a bool, which Python also counts as an int."""
    return isinstance(value, int) and not isinstance(value, bool)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _invalid(source: str, why: str) -> UsageError:
    return UsageError(
        f"{source} is not a valid backup manifest ({why})",
        "use an archive written by `provision backup`",
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
    _refuse_compressed(archive)
    total = archive.stat().st_size
    seen: dict[str, Member] = {}
    manifest_text: bytes | None = None
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for info in tar:
                if manifest_text is not None:
                    raise _refuse(archive, f"{info.name!r} follows the manifest")
                # Work is bounded by the archive's own bytes: a sparse member (GNU or PAX)
                # reads back as zeros of whatever size it declares, and a declared size past
                # the end of the file can only be a lie; both are refused before reading.
                if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or info.issparse():
                    raise _refuse(archive, f"{info.name[:80]!r} is not a plain regular file")
                if info.offset_data + info.size > total:
                    raise _refuse(
                        archive,
                        f"{info.name[:80]!r} declares {human_size(info.size)}, more than the "
                        "archive holds (truncated?)",
                    )
                if info.name not in _ALLOWED and info.name != MANIFEST:
                    raise _refuse(archive, f"unexpected member {info.name[:80]!r}")
                if info.name in seen:
                    raise _refuse(archive, f"{info.name!r} appears twice")
                if info.name == DATABASE:
                    _check_dump_header(archive, tar, info)
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


# pg_dump's custom format (-Fc, what `provision backup` writes) starts with these bytes.
DUMP_MAGIC = b"PGDMP"


def _check_dump_header(archive: Path, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
    """Refuse a database member that is no pg_dump custom-format dump before restore replaces
    anything: pg_restore would find out only after the old database was dropped."""
    handle = tar.extractfile(info)
    head = handle.read(len(DUMP_MAGIC)) if handle is not None else b""
    if head != DUMP_MAGIC:
        raise _refuse(archive, f"{DATABASE} is not a pg_dump custom-format dump")


# The magic numbers of what `tar -z/-j/-J/--zstd` write, and of a gzip'd tar renamed .tar.
_COMPRESSED = (
    (b"\x1f\x8b", "gzip", "gunzip"),
    (b"BZh", "bzip2", "bunzip2"),
    (b"\xfd7zXZ\x00", "xz", "unxz"),
    (b"\x28\xb5\x2f\xfd", "zstd", "unzstd"),
)


def _refuse_compressed(archive: Path) -> None:
    """A compressed archive is named for what it is (the dump inside is compressed already;
    `provision backup` writes a plain tar), not reported as a bad tar checksum."""
    try:
        with open(archive, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise _refuse(archive, f"cannot read it ({exc.strerror})") from None
    for magic, kind, tool in _COMPRESSED:
        if head.startswith(magic):
            raise UsageError(
                f"{archive} is a {kind}-compressed file; compressed archives are not supported "
                "(nothing was changed)",
                f"decompress it first (`{tool} -k {archive}`) and restore the .tar",
            )


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
