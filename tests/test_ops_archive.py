"""The backup archive read back: `read_manifest` refuses anything but a whole, unchanged archive
written by the kit (truncated, corrupted, extra or missing members, manifest not last)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from provision.errors import UsageError
from provision.ops.archive import ArchiveWriter
from provision.ops.manifest import Manifest, Member, read_manifest

DUMP = b"PGDMP" + os.urandom(300_000)  # pg_dump -Fc starts with PGDMP


def manifest_for(writer: ArchiveWriter, edit=None, **changes) -> Manifest:
    values = dict(
        kit_version="0.test", created_at="2026-11-26T10:00:00Z", glitchtip_major=6,
        glitchtip_image="glitchtip/glitchtip:6.2.6", postgres_major=17, pg_dump_major=17,
        postgres_image="postgres:17.7", compose_project_name="glitchtip",
        members={m.name: Member(m.name, m.size, m.sha256) for m in writer.members},
    )  # fmt: skip
    values.update(changes)
    if edit is not None:
        edit(values["members"])
    return Manifest(**values)


def build(path: Path, content: dict[str, bytes], after: dict[str, bytes] | None = None, **changes):
    with open(path, "wb") as handle:
        writer = ArchiveWriter(handle)
        for name, data in content.items():
            writer.add_bytes(name, data)
        writer.add_bytes("manifest.json", manifest_for(writer, **changes).to_json().encode())
        for name, data in (after or {}).items():
            writer.add_bytes(name, data)
        writer.close()
    return path


GOOD = {"database.dump": DUMP, "uploads.tar": b"u" * 1000, "files/.env": b"SECRET_KEY=x\n"}


def test_a_whole_archive_reads_back(tmp_path):
    archive = build(tmp_path / "a.tar", GOOD)
    manifest = read_manifest(archive)
    assert set(manifest.members) == set(GOOD)
    assert manifest.members["database.dump"].size == len(DUMP)
    with tarfile.open(archive) as tar:  # an ordinary tar for tar(1) and tarfile
        assert tar.extractfile("database.dump").read() == DUMP
        assert tar.getmember("files/.env").mode == 0o600


@pytest.mark.parametrize("cut", [100, 512 + 1000, 150_000, -20_000])
def test_a_truncated_archive_is_refused(tmp_path, cut):
    archive = build(tmp_path / "a.tar", GOOD)
    data = archive.read_bytes()
    archive.write_bytes(data[:cut])
    with pytest.raises(UsageError, match=r"is not a usable backup.*nothing was changed"):
        read_manifest(archive)


def test_one_flipped_byte_in_the_dump_is_refused(tmp_path):
    archive = build(tmp_path / "a.tar", GOOD)
    data = bytearray(archive.read_bytes())
    data[512 + 200_000] ^= 0x01  # inside database.dump's data
    archive.write_bytes(bytes(data))
    with pytest.raises(UsageError, match=r"database.dump does not match its SHA-256"):
        read_manifest(archive)


def test_a_member_after_the_manifest_or_unlisted_is_refused(tmp_path):
    late = build(tmp_path / "late.tar", GOOD, after={"uploads.tar": b"x"})
    with pytest.raises(UsageError, match=r"follows the manifest"):
        read_manifest(late)
    strange = build(tmp_path / "strange.tar", {**GOOD, "../../etc/passwd": b"x"})
    with pytest.raises(UsageError, match=r"unexpected member"):
        read_manifest(strange)


def test_a_manifest_that_disagrees_with_the_members_is_refused(tmp_path):
    def unlisted(members):
        del members["uploads.tar"]

    def phantom(members):
        members["files/.glitchtiprc"] = Member("files/.glitchtiprc", 3, "0" * 64)

    def resized(members):
        members["uploads.tar"] = Member("uploads.tar", 999, members["uploads.tar"].sha256)

    for edit, why in (
        (unlisted, "uploads.tar is not listed in the manifest"),
        (phantom, "files/.glitchtiprc is listed in the manifest but missing"),
        (resized, "uploads.tar has 1000 bytes, the manifest says 999"),
    ):
        archive = build(tmp_path / f"{edit.__name__}.tar", GOOD, edit=edit)
        with pytest.raises(UsageError, match=why):
            read_manifest(archive)
    nodump = build(tmp_path / "nodump.tar", {"uploads.tar": b"u"})
    with pytest.raises(UsageError, match=r"holds no database dump"):
        read_manifest(nodump)


def test_a_database_member_that_is_no_custom_format_dump_is_refused(tmp_path):
    """Before anything is replaced: pg_restore would see it only after the database is dropped."""
    plain = build(tmp_path / "plain.tar", {**GOOD, "database.dump": b"-- plain SQL\nSELECT 1;\n"})
    with pytest.raises(UsageError) as refused:
        read_manifest(plain)
    assert refused.value.message == (
        f"{plain} is not a usable backup: database.dump is not a pg_dump custom-format dump; "
        "nothing was changed"
    )


def test_no_manifest_not_a_tar_and_a_directory_are_refused(tmp_path):
    bare = tmp_path / "bare.tar"
    with tarfile.open(bare, "w") as tar:
        info = tarfile.TarInfo("database.dump")
        info.size = 8
        tar.addfile(info, io.BytesIO(b"PGDMPabc"))
    with pytest.raises(UsageError, match=r"no manifest.json"):
        read_manifest(bare)
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"PGDMP" + os.urandom(5000))
    with pytest.raises(UsageError, match=r"not a usable backup"):
        read_manifest(junk)
    with pytest.raises(UsageError, match=r"is not a file"):
        read_manifest(tmp_path)


def test_a_newer_manifest_format_says_which_kit_to_use(tmp_path):
    archive = build(tmp_path / "a.tar", GOOD, format=2)
    with pytest.raises(UsageError, match=r"format 2; this kit reads format 1"):
        read_manifest(archive)


def test_a_member_archived_twice_is_refused_naming_the_archive(tmp_path):
    """tar(1) appends a member of the same name; extracting would keep the last copy, which the
    manifest's first check never saw."""
    archive = tmp_path / "twice.tar"
    with open(archive, "wb") as handle:
        writer = ArchiveWriter(handle)
        for name, data in GOOD.items():
            writer.add_bytes(name, data)
        writer.add_bytes("uploads.tar", b"v" * 10)
        writer.add_bytes("manifest.json", manifest_for(writer).to_json().encode())
        writer.close()
    with pytest.raises(UsageError) as refused:
        read_manifest(archive)
    assert (refused.value.message, refused.value.fix) == (
        f"{archive} is not a usable backup: 'uploads.tar' appears twice; nothing was changed",
        "use another archive (or take a new one with `provision backup`)",
    )
