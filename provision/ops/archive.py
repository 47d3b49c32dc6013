"""The backup archive on disk: an uncompressed tar written as a stream, read back member by member.

A tar header carries its member's size before the data, and a `pg_dump` stream's size is known
only at its end. The writer therefore writes a placeholder header (tarfile's own encoding, GNU
format so sizes over 8 GiB fit the same 512 bytes), streams the data while hashing it, and then
seeks back to write the real header. Nothing is held in memory or spooled to a second file;
the result is an ordinary tar that `tar -tvf` and `tarfile` read.
"""

from __future__ import annotations

import hashlib
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

BLOCK = tarfile.BLOCKSIZE  # 512
RECORD = tarfile.RECORDSIZE  # 10240: tar pads the archive to whole records
CHUNK = 1 << 20  # bytes moved at a time: constant memory whatever the size


@dataclass(frozen=True)
class Written:
    """A member as written: its name, size and SHA-256."""

    name: str
    size: int
    sha256: str


def _header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = mtime
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


class ArchiveWriter:
    """Append members to a seekable binary file; `close()` writes the end-of-archive blocks."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self.file = fileobj
        self.members: list[Written] = []

    def add_stream(self, name: str, produce: Callable[[Callable[[bytes], None]], None]) -> Written:
        """Add member `name` whose bytes `produce(write)` hands to `write` chunk by chunk."""
        mtime = int(time.time())
        start = self.file.tell()
        placeholder = _header(name, 0, mtime)
        self.file.write(placeholder)
        digest = hashlib.sha256()
        size = 0

        def write(chunk: bytes) -> None:
            nonlocal size
            if chunk:
                digest.update(chunk)
                self.file.write(chunk)
                size += len(chunk)

        produce(write)
        padding = -size % BLOCK
        if padding:
            self.file.write(b"\0" * padding)
        end = self.file.tell()
        header = _header(name, size, mtime)
        if len(header) != len(placeholder):  # cannot happen with GNU sizes; never corrupt
            raise ValueError(f"tar header of {name} changed length")
        self.file.seek(start)
        self.file.write(header)
        self.file.seek(end)
        member = Written(name, size, digest.hexdigest())
        self.members.append(member)
        return member

    def add_bytes(self, name: str, data: bytes) -> Written:
        """Add a small member held in memory (the deployment's files, the manifest)."""
        return self.add_stream(name, lambda write: write(data))

    def close(self) -> None:
        """Two zero blocks end a tar; pad to a whole record like tar(1) does."""
        self.file.write(b"\0" * (2 * BLOCK))
        padding = -self.file.tell() % RECORD
        if padding:
            self.file.write(b"\0" * padding)
        self.file.flush()
