"""A backup archive's manifest read back whole, and every refusal of it as the whole line.

`read_manifest` and `Manifest.from_json` decide whether `provision restore` may replace a
deployment; the refusals name the archive, the reason and the fix. The older tests match a part
of each line; these compare all of it (issue 20: reworded, truncated or case-changed messages
survived there), and the manifest read back equal to the one written, member names included."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma

import pytest
from test_ops_archive import DUMP, GOOD, build, manifest_for

from provision.errors import UsageError
from provision.ops.archive import ArchiveWriter
from provision.ops.manifest import (
    Manifest,
    Member,
    as_dict,
    human_size,
    open_member,
    read_manifest,
    safe_identifier,
)

FIX = "use another archive (or take a new one with `provision backup`)"
MANIFEST_FIX = "use an archive written by `provision backup`"


def refusal(call, *args) -> str:
    with pytest.raises(UsageError) as caught:
        call(*args)
    assert caught.value.exit_code == 2
    return caught.value.line()


def test_the_manifest_read_back_is_the_one_written_member_by_member(tmp_path):
    with open(tmp_path / "a.tar", "wb") as handle:
        writer = ArchiveWriter(handle)
        for name, data in GOOD.items():
            writer.add_bytes(name, data)
        written = manifest_for(writer)
        writer.add_bytes("manifest.json", written.to_json().encode())
        writer.close()
    found = read_manifest(tmp_path / "a.tar")
    assert found == written
    assert sorted(member.name for member in found.members.values()) == sorted(GOOD)
    assert found.summary() == (
        "GlitchTip 6 (glitchtip/glitchtip:6.2.6), Postgres 17, taken 2026-11-26T10:00:00Z, "
        f"{human_size(len(DUMP) + 1000 + 13)}"
    )
    assert as_dict(found)["members"]["files/.env"] == {
        "name": "files/.env",
        "size": 13,
        "sha256": found.members["files/.env"].sha256,
    }


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (999_499, "999.5 kB"),
        (1_000_000, "1.0 MB"),
        (3_145_851, "3.1 MB"),
        (2_000_000_000, "2.0 GB"),
        (10**12, "1000.0 GB"),  # no unit past GB: disks are sized in GB
    ],
)
def test_human_size_in_powers_of_1000(count, shown):
    assert human_size(count) == shown


def _refused(archive) -> str:
    return refusal(read_manifest, archive).replace(str(archive), "ARCHIVE")


def test_each_archive_refusal_is_one_whole_line(tmp_path):
    def unlisted(members):
        del members["uploads.tar"]

    def phantom(members):
        members["files/.glitchtiprc"] = Member("files/.glitchtiprc", 3, "0" * 64)

    def resized(members):
        members["uploads.tar"] = Member("uploads.tar", 999, members["uploads.tar"].sha256)

    cases = {
        "late": (build(tmp_path / "late.tar", GOOD, after={"uploads.tar": b"x"}),
                 "'uploads.tar' follows the manifest"),
        "strange": (build(tmp_path / "strange.tar", {**GOOD, "../x": b"x"}),
                    "unexpected member '../x'"),
        "unlisted": (build(tmp_path / "unlisted.tar", GOOD, edit=unlisted),
                     "uploads.tar is not listed in the manifest"),
        "phantom": (build(tmp_path / "phantom.tar", GOOD, edit=phantom),
                    "files/.glitchtiprc is listed in the manifest but missing"),
        "resized": (build(tmp_path / "resized.tar", GOOD, edit=resized),
                    "uploads.tar has 1000 bytes, the manifest says 999"),
        "nodump": (build(tmp_path / "nodump.tar", {"uploads.tar": b"u"}),
                   "it holds no database dump"),
    }  # fmt: skip
    for name, (archive, why) in cases.items():
        assert (
            _refused(archive)
            == f"ARCHIVE is not a usable backup: {why}; nothing was changed: {FIX}"
        ), name
    flipped = build(tmp_path / "flipped.tar", GOOD)
    data = bytearray(flipped.read_bytes())
    data[512 + 200_000] ^= 0x01
    flipped.write_bytes(bytes(data))
    assert _refused(flipped) == (
        "ARCHIVE is not a usable backup: database.dump does not match its SHA-256 checksum "
        f"(corrupted); nothing was changed: {FIX}"
    )
    cut = build(tmp_path / "cut.tar", GOOD)
    cut.write_bytes(cut.read_bytes()[:150_000])
    assert _refused(cut) == (
        "ARCHIVE is not a usable backup: 'database.dump' declares 300.0 kB, more than the "
        f"archive holds (truncated?); nothing was changed: {FIX}"
    )
    header = build(tmp_path / "header.tar", GOOD)
    header.write_bytes(header.read_bytes()[:100])
    assert _refused(header) == (
        f"ARCHIVE is not a usable backup: not a tar (truncated header); nothing was changed: {FIX}"
    )


def test_an_archive_without_a_manifest_and_a_directory_are_refused_whole(tmp_path):
    with open(tmp_path / "bare.tar", "wb") as handle:
        writer = ArchiveWriter(handle)
        writer.add_bytes("database.dump", DUMP)
        writer.close()
    assert _refused(tmp_path / "bare.tar") == (
        "ARCHIVE is not a usable backup: it has no manifest.json at its end (truncated?); "
        f"nothing was changed: {FIX}"
    )
    assert refusal(read_manifest, tmp_path) == (
        f"{tmp_path} is not a file: give the path of a backup archive"
    )


def test_a_manifest_that_is_not_utf8_is_refused_whole(tmp_path):
    with open(tmp_path / "latin.tar", "wb") as handle:
        writer = ArchiveWriter(handle)
        writer.add_bytes("database.dump", DUMP)
        writer.add_bytes("manifest.json", b'{"kit_version": "\xe9"}')
        writer.close()
    assert _refused(tmp_path / "latin.tar") == (
        f"ARCHIVE is not a usable backup: its manifest is not UTF-8; nothing was changed: {FIX}"
    )


@pytest.mark.parametrize(
    ("data", "kind", "tool"),
    [
        (gzip.compress(b"x" * 100), "gzip", "gunzip"),
        (bz2.compress(b"x"), "bzip2", "bunzip2"),
        (lzma.compress(b"x"), "xz", "unxz"),
        (b"\x28\xb5\x2f\xfd" + b"0" * 10, "zstd", "unzstd"),
    ],
)
def test_a_compressed_archive_names_its_compression_and_the_tool(tmp_path, data, kind, tool):
    archive = tmp_path / "a.tar"
    archive.write_bytes(data)
    assert refusal(read_manifest, archive) == (
        f"{archive} is a {kind}-compressed file; compressed archives are not supported "
        f"(nothing was changed): decompress it first (`{tool} -k {archive}`) and restore the .tar"
    )


def _valid(**changes) -> dict:
    document = json.loads(
        Manifest(
            kit_version="0.test", created_at="2026-11-26T10:00:00Z", glitchtip_major=6,
            glitchtip_image="glitchtip/glitchtip:6.2.6", postgres_major=17, pg_dump_major=17,
            postgres_image="postgres:17.7", compose_project_name="glitchtip",
        ).to_json()
    )  # fmt: skip
    document.update(changes)
    return document


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
              "(char 1)"),
        ('{"format": 1}', "members is not an object"),
        ('{"format": 1, "members": {"x": {}}}', "member 'x' is not one a backup holds"),
        ('{"format": 1, "members": {"uploads.tar": 3}}',
         "member 'uploads.tar' is not one a backup holds"),
        ('{"format": 1, "members": {"uploads.tar": {"size": -1}}}',
         "the size of uploads.tar is not a whole number of bytes"),
        ('{"format": 1, "members": {"uploads.tar": {"size": true}}}',
         "the size of uploads.tar is not a whole number of bytes"),
        ('{"format": 1, "members": {"uploads.tar": {"size": 1, "sha256": "AB"}}}',
         "the sha256 of uploads.tar is not 64 hex digits"),
        ('{"format": 1, "members": {"uploads.tar": {"size": 0, "sha256": 5}}}',
         "the sha256 of uploads.tar is not 64 hex digits"),
    ],
)  # fmt: skip
def test_each_manifest_refusal_is_one_whole_line(text, why):
    assert refusal(Manifest.from_json, text) == (
        f"manifest.json is not a valid backup manifest ({why}): {MANIFEST_FIX}"
    )


@pytest.mark.parametrize(
    "key",
    ["kit_version", "created_at", "glitchtip_image", "postgres_image", "compose_project_name"],
)
@pytest.mark.parametrize("value", [None, 6, "a\nb", "x" * 301])
def test_every_text_field_must_be_one_printable_line(key, value):
    text = json.dumps(_valid(**{key: value}))
    assert refusal(Manifest.from_json, text, "m.json") == (
        f"m.json is not a valid backup manifest ({key} is not a line of text): {MANIFEST_FIX}"
    )
    assert Manifest.from_json(json.dumps(_valid(**{key: "x" * 300}))).__dict__[key] == "x" * 300


@pytest.mark.parametrize("key", ["glitchtip_major", "postgres_major", "pg_dump_major"])
@pytest.mark.parametrize(("value", "shown"), [(0, "0"), (1000, "1000"), ("6", "6"), (None, "None")])
def test_every_major_must_be_a_number_from_1_to_999(key, value, shown):
    text = json.dumps(_valid(**{key: value}))
    assert refusal(Manifest.from_json, text) == (
        f"manifest.json is not a valid backup manifest ({key} is not a version number "
        f"({shown})): {MANIFEST_FIX}"
    )
    for edge in (1, 999):
        assert getattr(Manifest.from_json(json.dumps(_valid(**{key: edge}))), key) == edge


@pytest.mark.parametrize(
    ("value", "shown"), [("1", '"1"'), (1.0, "1.0"), (True, "true"), (None, "null")]
)
def test_a_manifest_of_another_format_names_the_format_it_has(value, shown):
    assert refusal(Manifest.from_json, json.dumps(_valid(format=value))) == (
        f"manifest.json has format {shown}; this kit reads format 1: restore it with the kit "
        "version that wrote it (see kit_version in it)"
    )


def test_a_member_missing_or_changed_since_the_check_is_refused_whole(tmp_path):
    archive = build(tmp_path / "a.tar", GOOD)
    manifest = read_manifest(archive)
    with pytest.raises(UsageError) as caught, open_member(archive, "files/.glitchtiprc", None):
        pass
    assert caught.value.line() == (
        f"{archive} is not a usable backup: files/.glitchtiprc is missing; nothing was changed: "
        f"{FIX}"
    )
    other = Member("uploads.tar", 1000, "0" * 64)
    with open_member(archive, "uploads.tar", manifest.members["uploads.tar"]) as chunks:
        assert b"".join(chunks) == GOOD["uploads.tar"]
    with pytest.raises(UsageError) as caught, open_member(archive, "uploads.tar", other) as chunks:
        b"".join(chunks)
    assert caught.value.line() == (
        f"{archive} is not a usable backup: uploads.tar changed while it was being restored; "
        f"nothing was changed: {FIX}"
    )


def test_safe_identifier_refuses_anything_but_a_plain_sql_name():
    assert safe_identifier("glitchtip_2", "the database name") == "glitchtip_2"
    assert refusal(safe_identifier, "a-b;drop", "the database name") == (
        "the database name 'a-b;drop' is not a plain name: use letters, digits and _"
    )
    assert refusal(safe_identifier, "x" * 64, "the user") == (
        f"the user {'x' * 40!r} is not a plain name: use letters, digits and _"
    )


def test_a_manifest_of_up_to_one_mib_is_read_and_a_larger_one_refused_whole(tmp_path):
    """The manifest is the one member read into memory: at most 1 MiB (1,048,576 bytes, a
    valid manifest padded with spaces to the byte is still read), one byte more is refused."""

    def archive(name: str, size: int):
        with open(tmp_path / name, "wb") as handle:
            writer = ArchiveWriter(handle)
            for member, data in GOOD.items():
                writer.add_bytes(member, data)
            written = manifest_for(writer)
            text = written.to_json().encode()
            writer.add_bytes("manifest.json", text + b" " * (size - len(text)))
            writer.close()
        return tmp_path / name, written

    largest, written = archive("largest.tar", 1 << 20)
    assert read_manifest(largest) == written
    larger, _ = archive("larger.tar", (1 << 20) + 1)
    assert _refused(larger) == (
        f"ARCHIVE is not a usable backup: its manifest is too large; nothing was changed: {FIX}"
    )


def test_an_archive_shrinking_while_it_is_read_is_refused_as_truncated(tmp_path, monkeypatch):
    """The declared sizes are checked against the file's size first; an archive cut shorter
    after that check (another process truncating it) is met while its member is read: the
    stdlib's tarfile raises "unexpected end of data" for any short read of a member, so the
    refusal is the truncated one, with tarfile's words. (`size != info.size` after the read is
    therefore never true with CPython's tarfile: SURVIVORS.md, part j.)"""
    import os
    import tarfile

    archive = build(tmp_path / "shrinking.tar", GOOD)
    whole = archive.stat().st_size
    opened = tarfile.TarFile.extractfile

    def shrink_on_open(self, member):
        handle = opened(self, member)
        if getattr(member, "name", member) == "uploads.tar":
            os.truncate(archive, member.offset_data + 10)  # after the size check, before read
        return handle

    monkeypatch.setattr(tarfile.TarFile, "extractfile", shrink_on_open)
    assert _refused(archive) == (
        "ARCHIVE is not a usable backup: truncated (unexpected end of data); nothing was "
        f"changed: {FIX}"
    )
    assert archive.stat().st_size < whole  # it did shrink under the reader
