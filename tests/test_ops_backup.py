"""`provision backup`: the archive, its manifest, atomicity, refusals and `--keep`, over a fake
Compose that streams real bytes through real pipes (tests/ops_fake_compose.py)."""

from __future__ import annotations

import io
import os
import tarfile

import pytest
from cli_run import one_line_error, run
from ops_fakes import FakeCompose, fake_compose_fixture, make_state

from provision.errors import KitError, UsageError
from provision.ops.backup import NAME_PATTERN, create_backup, prune_backups
from provision.ops.manifest import read_manifest
from provision.stack.context import StackContext

# A dump's header, then several 1 MiB chunks and a ragged end.
DB = b"PGDMP" + os.urandom(3 * (1 << 20) + 118)
# The volume's tar stream holds LF bytes as a real one does (file contents, names): a `run`
# through a pseudo-TTY would turn them into CR LF (tests/ops_fake_compose.py).
UPLOADS_TAR = b"uploads-volume-tar\n" * 1000


@pytest.fixture
def use_fake_compose(monkeypatch):
    yield from fake_compose_fixture(monkeypatch)


@pytest.fixture
def deployment(tmp_path):
    directory = tmp_path / "deploy"
    directory.mkdir()
    result = run(directory, "init")
    assert result.exit_code == 0, result.output
    (directory / ".glitchtiprc").write_text("[defaults]\nurl = http://k@localhost:8000/1\n")
    state = tmp_path / "state"
    make_state(state, DB, UPLOADS_TAR)
    compose = FakeCompose(directory, state)
    ctx = StackContext(directory=directory, environ={}, compose_factory=lambda s: compose)
    return directory, compose, ctx


def test_archive_holds_dump_uploads_files_and_manifest_last(deployment):
    directory, compose, ctx = deployment
    lines = []
    result = create_backup(ctx, progress=lines.append)
    assert result.path.parent == directory / "backups"
    assert NAME_PATTERN.match(result.path.name) and result.path.name.endswith("-6.tar")
    assert result.path.stat().st_mode & 0o777 == 0o600
    with tarfile.open(result.path) as tar:
        names = tar.getnames()
        assert tar.extractfile("database.dump").read() == DB
        assert tar.extractfile("uploads.tar").read() == UPLOADS_TAR
        env = tar.extractfile("files/.env").read()
    assert names == [
        "database.dump", "uploads.tar", "files/glitchtip.yaml", "files/.env",
        "files/.glitchtiprc", "manifest.json",
    ]  # fmt: skip
    assert env == (directory / ".env").read_bytes()
    manifest = read_manifest(result.path)
    assert manifest.members["database.dump"].size == len(DB)
    assert (manifest.glitchtip_major, manifest.postgres_major, manifest.pg_dump_major) == (
        6,
        17,
        17,
    )
    assert manifest.created_at.endswith("Z")
    assert any("pg_dump:" in line and "MB" in line for line in lines)
    assert sorted(os.listdir(result.path.parent)) == [result.path.name]  # no temp file left
    calls = compose.calls()
    dump = next(c for c in calls if "pg_dump" in c and "--format=custom" in c)
    assert dump.startswith("exec -T postgres")
    tar_call = next(c for c in calls if "-cf" in c)
    assert "x_uploads:/kit-backup/uploads:ro" in tar_call  # the volume, read-only


def test_refuses_when_the_stack_is_not_running(deployment):
    directory, compose, ctx = deployment
    compose.set_state(postgres="exited")
    with pytest.raises(
        KitError, match=r"the stack is not running .postgres is exited.*provision up"
    ):
        create_backup(ctx)
    assert not (directory / "backups").exists() or not os.listdir(directory / "backups")


def test_a_dump_failing_midway_leaves_no_partial_archive(deployment):
    directory, compose, ctx = deployment
    compose.set_state(fail={"pg_dump": 2 * (1 << 20)})
    why = r"backup failed, no archive written: pg_dump failed .exit 1.: pg_dump: error: conn"
    with pytest.raises(KitError, match=why):
        create_backup(ctx)
    assert os.listdir(directory / "backups") == []


def test_symlinked_or_existing_output_is_refused_and_left_alone(deployment, tmp_path):
    _directory, compose, ctx = deployment
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "out.tar"
    link.symlink_to(victim)
    with pytest.raises(UsageError, match=r"symbolic link"):
        create_backup(ctx, output=link)
    assert victim.read_text() == "keep me" and link.is_symlink()
    with pytest.raises(UsageError, match=r"already exists; a backup never overwrites"):
        create_backup(ctx, output=victim)
    assert victim.read_text() == "keep me"
    assert not any("pg_dump" in call for call in compose.calls())  # refused before dumping


def test_output_file_and_directory(deployment, tmp_path):
    _directory, _compose, ctx = deployment
    chosen = create_backup(ctx, output=tmp_path / "mine.tar")
    assert chosen.path == tmp_path / "mine.tar" and read_manifest(chosen.path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    into = create_backup(ctx, output=other)
    assert into.path.parent == other and NAME_PATTERN.match(into.path.name)


def test_keep_prunes_exactly_the_oldest_kit_archives(tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    archives = [f"glitchtip-gt-2026110{day}T030000Z-6.tar" for day in range(1, 6)]
    for name in archives:
        (backups / name).write_text(name)
    # Another deployment backing up to the same directory: never this one's to prune.
    theirs = [f"glitchtip-gt-other-2025010{day}T000000Z-6.tar" for day in range(1, 4)]
    for name in theirs:
        (backups / name).write_text(name)
    outside = tmp_path / "outside.tar"
    outside.write_text("not ours")
    (backups / "glitchtip-gt-20250101T000000Z-6.tar").symlink_to(outside)  # oldest name: a link
    (backups / "glitchtip-gt-20250102T000000Z-5.tar").mkdir()  # a directory
    (backups / "glitchtip-notes.tar").write_text("operator's")
    (backups / "glitchtip-gt-20250103T000000Z-6.tar.partial").write_text("x")
    deleted = prune_backups(backups, 2, "gt")
    assert sorted(p.name for p in deleted) == archives[:3]
    left = sorted(os.listdir(backups))
    assert left == sorted([
        *archives[3:], *theirs, "glitchtip-gt-20250101T000000Z-6.tar",
        "glitchtip-gt-20250102T000000Z-5.tar", "glitchtip-notes.tar",
        "glitchtip-gt-20250103T000000Z-6.tar.partial",
    ])  # fmt: skip
    assert outside.read_text() == "not ours"
    with pytest.raises(UsageError):
        prune_backups(backups, 0, "gt")


def test_a_symlinked_backups_directory_is_refused(tmp_path):
    """backups/ pointing elsewhere would put .env's secrets and every event there."""
    from provision.ops.backup import resolve_output

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    deployment = tmp_path / "deployment"
    deployment.mkdir()
    (deployment / "backups").symlink_to(elsewhere)
    with pytest.raises(UsageError, match="not a directory of this deployment"):
        resolve_output(deployment, None, "glitchtip-gt-20261126T000000Z-6.tar")
    assert list(elsewhere.iterdir()) == []


def test_keep_runs_after_a_successful_backup_only(deployment):
    directory, compose, ctx = deployment
    backups = directory / "backups"
    backups.mkdir()
    old = backups / "glitchtip-glitchtip-20200101T000000Z-6.tar"
    old.write_text("old")
    compose.set_state(fail={"pg_dump": 0})
    with pytest.raises(KitError):
        create_backup(ctx, keep=1)
    assert old.exists()  # a failed backup prunes nothing
    compose.set_state(fail={})
    result = create_backup(ctx, keep=1)
    assert sorted(os.listdir(backups)) == [result.path.name]


def test_cli_backup_through_the_kits_compose_prints_no_secret(deployment, use_fake_compose):
    directory, compose, _ctx = deployment
    use_fake_compose(compose.state_dir)
    result = run(directory, "backup", "--keep", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("backup written: ") and "GlitchTip 6" in result.stdout
    assert "pg_dump: " in result.stderr and "MB" in result.stderr
    env = (directory / ".env").read_text()
    secrets = [line.split("=", 1)[1] for line in env.splitlines() if "=" in line]
    assert secrets and not any(s and s in result.output for s in secrets)
    compose.set_state(postgres="exited")
    line = one_line_error(run(directory, "backup"), exit_code=1)
    assert "the stack is not running" in line and "provision up" in line


def test_cli_refuses_a_keep_of_zero(deployment):
    directory, _, _ = deployment
    line = one_line_error(run(directory, "backup", "--keep", "0"))
    assert line == (
        "error: Invalid value for '--keep': 0 is not in the range 1<=x<=100000: "
        "see `cli backup --help`"
    )


def test_pruning_to_no_archive_at_all_is_refused_and_deletes_nothing(tmp_path):
    """`prune_backups` (behind `--keep`, reached by callers that are not the CLI) never takes
    0 as "delete every archive"."""
    from provision.errors import UsageError
    from provision.ops.backup import prune_backups

    archive = tmp_path / "glitchtip-glitchtip-20261126T000000Z-6.tar"
    archive.write_bytes(b"x")
    with pytest.raises(UsageError) as refused:
        prune_backups(tmp_path, 0, "glitchtip")
    assert (refused.value.message, refused.value.fix) == (
        "--keep must be at least 1",
        "give the number of archives to keep",
    )
    assert archive.read_bytes() == b"x"


def test_streaming_writer_sizes_beyond_octal_fit_one_header():
    from provision.ops.archive import _header

    assert len(_header("database.dump", 9 * 2**30, 0)) == len(_header("database.dump", 0, 0))
    buffer = io.BytesIO()
    from provision.ops.archive import ArchiveWriter

    writer = ArchiveWriter(buffer)
    writer.add_stream("database.dump", lambda write: [write(b"a" * 700), write(b"b" * 5)])
    writer.close()
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        assert tar.extractfile("database.dump").read() == b"a" * 700 + b"b" * 5


def test_a_missing_compose_binary_is_one_line_naming_the_fix(tmp_path) -> None:
    """stream_out / stream_in when the compose binary cannot be started at all."""
    from provision.errors import KitError
    from provision.runtime.streams import stream_in, stream_out

    class NoCompose:
        directory = tmp_path

        def argv(self, *args: str) -> list[str]:
            return [str(tmp_path / "no-such-compose"), *args]

        def child_env(self, env=None) -> dict:
            return {"PATH": "/usr/bin:/bin"}

        def redact(self, text: str) -> str:
            return text

    for call in (
        lambda: stream_out(NoCompose(), ["exec", "postgres"], lambda chunk: None, what="dump"),
        lambda: stream_in(NoCompose(), ["exec", "postgres"], [b"x"], what="restore"),
    ):
        with pytest.raises(KitError) as refused:
            call()
        assert refused.value.message == "cannot run compose (No such file or directory)"
        assert refused.value.fix == "install Compose v2"


def test_a_full_disk_is_one_line_naming_the_directory_and_leaves_nothing(
    deployment, monkeypatch
) -> None:
    """The archive is written, then synced: a disk that fills up (ENOSPC at the sync) is a
    KitError naming where and why, and neither the archive nor its temporary file is left."""
    import errno

    from provision.errors import KitError
    from provision.ops import backup as backup_module

    directory, _, ctx = deployment

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(backup_module.os, "fsync", full)
    with pytest.raises(KitError) as refused:
        create_backup(ctx)
    backups = directory / "backups"
    why = "No space left on device"
    assert refused.value.message == f"cannot write the backup to {backups} ({why})"
    assert refused.value.fix == f"check that {backups} is writable and has free space"
    assert list(backups.iterdir()) == []


def test_a_stream_whose_child_fails_names_it_with_or_without_stderr(tmp_path) -> None:
    """A dump that dies says so with its exit status, and the end of what it wrote on stderr
    when there is any; never a dangling `: ` after the status when it wrote nothing. Its
    stdin is no terminal of ours: a child reading it sees the end at once, never waits."""
    from provision.errors import KitError
    from provision.runtime.streams import stream_out

    class ShellCompose:
        """`compose ARGS` is `sh -c ARGS[0]`: the child does what the test says."""

        directory = tmp_path

        def argv(self, *args: str) -> list[str]:
            return ["sh", "-c", *args]

        def child_env(self, env=None) -> dict:
            return {"PATH": "/usr/bin:/bin"}

        def redact(self, text: str) -> str:
            return text

    chunks: list[bytes] = []
    read = stream_out(ShellCompose(), ["printf abc; cat"], chunks.append, what="dump")
    assert (read, b"".join(chunks)) == (3, b"abc")
    with pytest.raises(KitError) as failed:
        stream_out(ShellCompose(), ["exit 3"], chunks.append, what="dump")
    assert failed.value.message == "dump failed (exit 3)"
    with pytest.raises(KitError) as failed:
        stream_out(ShellCompose(), ["echo 'lost' >&2; exit 1"], chunks.append, what="dump")
    assert failed.value.message == "dump failed (exit 1): lost"
