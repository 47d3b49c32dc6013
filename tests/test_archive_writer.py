"""The backup archive as tar(1) and tarfile see it: each member a regular 0600 file with its
size, the time it was written and its SHA-256, data padded to 512-byte blocks, the archive
closed by two zero blocks and padded to whole 10240-byte records (issue 20: `add_stream` and
`close` kept surviving mutants; a wrong pad is an archive tar(1) reads as truncated)."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
import time

import pytest

from provision.ops.archive import ArchiveWriter, Written


def test_members_are_regular_0600_files_with_their_size_time_and_checksum(tmp_path):
    path = tmp_path / "a.tar"
    before = int(time.time())
    with open(path, "wb") as handle:
        writer = ArchiveWriter(handle)
        streamed = writer.add_stream(
            "database.dump", lambda write: [write(b"a" * 700), write(b""), write(b"b" * 5)]
        )
        small = writer.add_bytes("files/.env", b"K=v\n")
        empty = writer.add_bytes("uploads.tar", b"")
        writer.close()
    after = int(time.time())
    data = path.read_bytes()
    # three headers, data padded to blocks (705 -> 1024, 4 -> 512, 0), two end blocks, records
    assert len(data) == 10240 and len(data) % 10240 == 0
    assert data[512 * 6 : 512 * 8] == b"\0" * 1024
    assert streamed == Written(
        "database.dump", 705, hashlib.sha256(b"a" * 700 + b"b" * 5).hexdigest()
    )
    assert small == Written("files/.env", 4, hashlib.sha256(b"K=v\n").hexdigest())
    assert empty == Written("uploads.tar", 0, hashlib.sha256(b"").hexdigest())
    assert writer.members == [streamed, small, empty]
    with tarfile.open(path) as tar:
        infos = tar.getmembers()
        assert [(i.name, i.size, i.mode, i.type) for i in infos] == [
            ("database.dump", 705, 0o600, tarfile.REGTYPE),
            ("files/.env", 4, 0o600, tarfile.REGTYPE),
            ("uploads.tar", 0, 0o600, tarfile.REGTYPE),
        ]
        assert all(before <= i.mtime <= after for i in infos)
        assert tar.extractfile("database.dump").read() == b"a" * 700 + b"b" * 5


def test_an_archive_past_one_record_is_padded_to_whole_records():
    buffer = io.BytesIO()
    writer = ArchiveWriter(buffer)
    writer.add_bytes("database.dump", b"x" * 20000)
    writer.close()
    size = len(buffer.getvalue())
    assert size == 30720  # 512 header + 20480 data + 1024 end = 22016, up to 3 records
    exact = io.BytesIO()
    writer = ArchiveWriter(exact)
    writer.add_bytes("database.dump", b"x" * 8704)  # 512 + 8704 + two end blocks = 10240
    writer.close()
    assert len(exact.getvalue()) == 10240  # the end blocks fill the record: no padding


@pytest.mark.skipif(shutil.which("tar") is None, reason="no tar(1) on this host")
def test_tar_lists_and_extracts_what_the_writer_wrote(tmp_path):
    path = tmp_path / "a.tar"
    with open(path, "wb") as handle:
        writer = ArchiveWriter(handle)
        writer.add_stream("database.dump", lambda write: [write(b"PGDMP"), write(b"z" * 9999)])
        writer.add_bytes("files/.env", b"K=v\n")
        writer.close()
    listed = subprocess.run(["tar", "-tf", str(path)], capture_output=True, text=True, check=True)
    assert listed.stdout.splitlines() == ["database.dump", "files/.env"]
    assert listed.stderr == ""
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(path), "-C", str(out)], check=True)
    assert (out / "database.dump").read_bytes() == b"PGDMP" + b"z" * 9999
