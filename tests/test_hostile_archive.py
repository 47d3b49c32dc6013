"""Issue 18, defect 4 and the compressed-archive message: a crafted archive is refused in one line,
with work bounded by the archive's own bytes, never by what it declares."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import time

import pytest
from cli_run import one_line_error, run

from provision.errors import UsageError
from provision.ops.archive import ArchiveWriter
from provision.ops.manifest import read_manifest

DUMP = b"PGDMP" + os.urandom(20_000)  # pg_dump -Fc starts with PGDMP
SHA = "0" * 64
GOOD_MANIFEST = (
    '{"format": 1, "kit_version": "0.t", "created_at": "2026-11-26T10:00:00Z", '
    '"glitchtip_major": MAJOR, "glitchtip_image": "glitchtip/glitchtip:6.2.6", '
    '"postgres_major": 17, "pg_dump_major": 17, "postgres_image": "postgres:17.7", '
    '"compose_project_name": "glitchtip", "members": MEMBERS}'
)


def archive_with_manifest(path, manifest_text: str):
    with open(path, "wb") as handle:
        writer = ArchiveWriter(handle)
        dump = writer.add_bytes("database.dump", DUMP)
        entry = f'"name": "database.dump", "size": {dump.size}, "sha256": "{dump.sha256}"'
        members = f'{{"database.dump": {{{entry}}}}}'
        writer.add_bytes("manifest.json", manifest_text.replace("MEMBERS", members).encode())
        writer.close()
    return path


@pytest.mark.parametrize(
    ("major", "needle"),
    [
        ("Infinity", "not JSON"),
        ("NaN", "not JSON"),
        ("-Infinity", "not JSON"),
        ("true", "glitchtip_major is not a version number"),
        ("6.0", "glitchtip_major is not a version number"),
        ('"6"', "glitchtip_major is not a version number"),
        ("1e400", "glitchtip_major is not a version number"),
        ("0", "glitchtip_major is not a version number"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
    ids=["inf", "nan", "-inf", "true", "float", "string", "huge", "zero", "nested"],
)
def test_a_manifest_with_values_of_the_wrong_kind_is_a_one_line_refusal(tmp_path, major, needle):
    archive = archive_with_manifest(tmp_path / "a.tar", GOOD_MANIFEST.replace("MAJOR", major))
    with pytest.raises(UsageError, match="not a valid backup manifest") as caught:
        read_manifest(archive)
    assert needle in caught.value.line()
    target = tmp_path / "target"
    target.mkdir()
    error = one_line_error(run(target, "restore", str(archive)))
    assert needle in error
    assert list(target.iterdir()) == []


def test_format_true_is_not_format_1(tmp_path):
    text = GOOD_MANIFEST.replace("MAJOR", "6").replace('"format": 1', '"format": true')
    with pytest.raises(UsageError, match=r"has format true; this kit reads format 1"):
        read_manifest(archive_with_manifest(tmp_path / "a.tar", text))


@pytest.mark.parametrize(
    ("member", "needle"),
    [
        ('"size": true, "sha256": "' + SHA + '"', "size of uploads.tar is not a whole number"),
        ('"size": 1.0, "sha256": "' + SHA + '"', "size of uploads.tar is not a whole number"),
        ('"size": 1, "sha256": 7', "sha256 of uploads.tar is not 64 hex digits"),
        ('"size": 1, "sha256": "' + SHA + '", "x": {}', None),
    ],
)
def test_a_member_entry_of_the_wrong_kind_is_refused(member, needle):
    """`true` and 1.0 read as 1 by int(): a one-byte member would have matched them."""
    from provision.ops.manifest import Manifest

    members = f'{{"uploads.tar": {{{member}}}}}'
    text = GOOD_MANIFEST.replace("MAJOR", "6").replace("MEMBERS", members)
    if needle is None:  # an extra key is ignored, like any other the kit does not read
        assert Manifest.from_json(text).members["uploads.tar"].size == 1
        return
    with pytest.raises(UsageError, match="not a valid backup manifest") as caught:
        Manifest.from_json(text)
    assert needle in caught.value.line()


def _gnu_sparse_member(name: str, real_size: int, data: bytes) -> bytes:
    """An old-style GNU sparse header (type 'S', what `tar --sparse` writes): one 512-byte
    data block stored, `real_size` bytes declared; tarfile reads the holes back as zeros."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    buf = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    buf[156:157] = b"S"
    buf[386:398] = b"%011o\0" % 0  # sparse map entry 0: offset 0 ...
    buf[398:410] = b"%011o\0" % len(data)  # ... of len(data) bytes
    buf[483:495] = b"%011o\0" % real_size  # the size it says the file has
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % sum(buf)
    return bytes(buf) + data + b"\0" * (-len(data) % 512)


def test_a_sparse_member_declaring_20_gb_is_refused_at_once(tmp_path):
    path = tmp_path / "sparse.tar"
    member = _gnu_sparse_member("database.dump", 20 * 10**9, b"x" * 512)
    path.write_bytes(member + b"\0" * 1024 + b"\0" * (10240 - (len(member) + 1024) % 10240))
    began = time.process_time()
    with pytest.raises(UsageError, match=r"'database.dump' is not a plain regular file"):
        read_manifest(path)
    assert time.process_time() - began < 2


def test_a_pax_sparse_member_is_refused_too(tmp_path):
    path = tmp_path / "pax.tar"
    info = tarfile.TarInfo("database.dump")
    info.size = 512
    info.pax_headers = {
        "GNU.sparse.size": str(20 * 10**9),
        "GNU.sparse.numblocks": "1",
        "GNU.sparse.map": "0,512",
    }
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b"y" * 512))
    began = time.process_time()
    with pytest.raises(UsageError, match=r"is not a plain regular file"):
        read_manifest(path)
    assert time.process_time() - began < 2


def test_a_declared_size_past_the_end_of_the_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "liar.tar"
    info = tarfile.TarInfo("database.dump")
    info.size = 20 * 10**9
    path.write_bytes(info.tobuf(tarfile.GNU_FORMAT) + b"z" * 4096)
    with pytest.raises(UsageError, match=r"declares 20\.0 GB, more than the archive holds"):
        read_manifest(path)


def test_a_compressed_archive_is_named_for_what_it_is(tmp_path):
    plain = archive_with_manifest(tmp_path / "a.tar", GOOD_MANIFEST.replace("MAJOR", "6"))
    read_manifest(plain)  # whole and valid
    squeezed = tmp_path / "a.tar.gz"
    squeezed.write_bytes(gzip.compress(plain.read_bytes()))
    target = tmp_path / "target"
    target.mkdir()
    error = one_line_error(run(target, "restore", str(squeezed)))
    assert "gzip-compressed" in error and "compressed archives are not supported" in error
    assert "gunzip -k" in error and "checksum" not in error
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("text", ["[]", '"manifest"', "42", "null"])
def test_a_manifest_that_is_json_but_no_object_is_refused_whole(text: str) -> None:
    from provision.ops.manifest import Manifest

    with pytest.raises(UsageError) as refused:
        Manifest.from_json(text, source="manifest.json")
    why = "not a JSON object"
    assert refused.value.message == f"manifest.json is not a valid backup manifest ({why})"
    assert refused.value.fix == "use an archive written by `provision backup`"
