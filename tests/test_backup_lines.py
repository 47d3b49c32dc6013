"""`provision backup` read whole: its refusals and failures as complete lines, the progress it
reports, the partial file it writes beside the target, and the manifest it records.

The tests in test_ops_backup.py match parts of these (issue 20: a reworded fix, a dropped
prefix or a nameless temporary file survived them)."""

from __future__ import annotations

import datetime as dt
import os
import re

import pytest
from ops_fakes import FakeCompose, make_state
from test_ops_backup import DB, UPLOADS_TAR

import provision.ops.backup as backup
from provision import __version__
from provision.errors import KitError, UsageError
from provision.ops.manifest import human_size, read_manifest
from provision.stack.context import StackContext


@pytest.fixture
def deployment(tmp_path):
    from cli_run import run

    directory = tmp_path / "deploy"
    directory.mkdir()
    assert run(directory, "init").exit_code == 0
    state = tmp_path / "state"
    make_state(state, DB, UPLOADS_TAR)
    compose = FakeCompose(directory, state)
    ctx = StackContext(directory=directory, environ={}, compose_factory=lambda s: compose)
    return directory, compose, ctx


def line_of(error: KitError) -> str:
    return error.line()


def test_a_stopped_stack_is_refused_with_the_whole_line(deployment):
    _directory, compose, ctx = deployment
    compose.set_state(postgres="exited")
    with pytest.raises(KitError) as caught:
        backup.create_backup(ctx)
    assert line_of(caught.value) == (
        "cannot back up: the stack is not running (postgres is exited): start it with "
        "`provision up`, then back up again"
    )
    compose.set_state(postgres="absent")
    with pytest.raises(KitError) as caught:
        backup.create_backup(ctx)
    assert line_of(caught.value) == (
        "cannot back up: the stack is not running (postgres is not created): start it with "
        "`provision up`, then back up again"
    )


def test_a_keep_below_one_is_refused_before_anything(deployment):
    directory, compose, ctx = deployment
    for call in (
        lambda: backup.create_backup(ctx, keep=0),
        lambda: backup.prune_backups(directory, 0, "glitchtip"),
    ):
        with pytest.raises(UsageError) as caught:
            call()
        assert line_of(caught.value) == (
            "--keep must be at least 1: give the number of archives to keep"
        )
    assert compose.calls() == []


def test_a_failed_dump_is_one_line_with_the_tools_words(deployment):
    directory, compose, ctx = deployment
    compose.set_state(fail={"pg_dump": 1 << 20})
    with pytest.raises(KitError) as caught:
        backup.create_backup(ctx)
    assert line_of(caught.value) == (
        "backup failed, no archive written: pg_dump failed (exit 1): pg_dump: error: "
        "connection to server lost"
    )
    assert os.listdir(directory / "backups") == []


def test_progress_names_each_stream_and_its_size(deployment, monkeypatch):
    _directory, _compose, ctx = deployment
    monkeypatch.setattr(backup, "PROGRESS_EVERY", 0)  # every chunk reported
    lines: list[str] = []
    backup.create_backup(ctx, progress=lines.append)
    assert lines[-1] == f"uploads: {human_size(len(UPLOADS_TAR))}"
    done = lines.index(f"pg_dump: {human_size(len(DB))}")
    assert lines[done - 1] == f"pg_dump: {human_size(len(DB))} so far"
    assert all(re.fullmatch(r"pg_dump: [0-9.]+ [kM]?B so far", line) for line in lines[:done])
    assert all(re.fullmatch(r"uploads: [0-9.]+ kB so far", line) for line in lines[done + 1 : -1])


def test_the_partial_archive_is_hidden_and_named_for_its_target(deployment):
    """An interrupted backup (SIGKILL, power loss) leaves its partial file: a dot-file named for
    the archive it was to become, so `ls` hides it and an operator knows what it is."""
    directory, _compose, ctx = deployment
    seen: list[list[str]] = []
    result = backup.create_backup(
        ctx, progress=lambda _line: seen.append(sorted(os.listdir(directory / "backups")))
    )
    assert seen and all(len(names) == 1 for names in seen)
    name = result.path.name
    assert re.fullmatch(re.escape(f".{name}.partial-") + r"[a-z0-9_]+", seen[0][0]), seen[0]
    assert os.listdir(directory / "backups") == [name]


def test_an_archive_appearing_under_the_name_is_kept_and_the_backup_refused(deployment, tmp_path):
    _directory, _compose, ctx = deployment
    target = tmp_path / "mine.tar"

    def appear(_line: str) -> None:
        if not target.exists():
            target.write_text("someone else's")

    with pytest.raises(UsageError) as caught:
        backup.create_backup(ctx, output=target, progress=appear)
    assert line_of(caught.value) == f"{target} appeared while the backup ran: run it again"
    assert target.read_text() == "someone else's"
    assert sorted(os.listdir(tmp_path)) == ["deploy", "mine.tar", "state"]  # no partial left


def test_a_partial_file_removed_under_the_backup_is_a_write_failure(deployment, tmp_path):
    _directory, _compose, ctx = deployment
    out = tmp_path / "out"
    out.mkdir()

    def remove(_line: str) -> None:
        for name in os.listdir(out):
            os.unlink(out / name)

    with pytest.raises(KitError) as caught:
        backup.create_backup(ctx, output=out, progress=remove)
    assert line_of(caught.value) == (
        f"cannot write the backup to {out} (No such file or directory): check that {out} is "
        "writable and has free space"
    )
    assert os.listdir(out) == []


@pytest.fixture
def far_east_zone(monkeypatch):
    """The process's local zone 14 hours east of UTC (a POSIX TZ: no tzdata needed)."""
    import time

    monkeypatch.setenv("TZ", "KIT-14")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_manifest_records_the_deployment_and_the_time_of_the_name(deployment, far_east_zone):
    """The name's and the manifest's time are UTC whatever the host's zone (here UTC+14)."""
    _directory, _compose, ctx = deployment
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    result = backup.create_backup(ctx)
    manifest = read_manifest(result.path)
    assert manifest == result.manifest
    stamp = re.fullmatch(r"glitchtip-glitchtip-(\d{8}T\d{6}Z)-6\.tar", result.path.name)[1]
    taken = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert before <= taken <= dt.datetime.now(dt.UTC)
    assert manifest.created_at == taken.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (
        manifest.kit_version,
        manifest.glitchtip_image,
        manifest.postgres_image,
        manifest.compose_project_name,
    ) == (__version__, "glitchtip/glitchtip:6.2.6", "postgres:18.1", "glitchtip")
    assert sorted(manifest.members) == [
        "database.dump", "files/.env", "files/glitchtip.yaml", "uploads.tar",
    ]  # fmt: skip
    assert {name: m.name for name, m in manifest.members.items()} == {
        name: name for name in manifest.members
    }
    assert 0 < result.seconds < 60 and result.pruned == []


def test_each_output_refusal_is_one_whole_line(tmp_path):
    deployment_dir = tmp_path / "dep"
    deployment_dir.mkdir()
    (deployment_dir / "backups").write_text("a file where the directory goes")
    name = "glitchtip-glitchtip-20261206T000000Z-6.tar"

    def refused(output) -> str:
        with pytest.raises(UsageError) as caught:
            backup.resolve_output(deployment_dir, output, name)
        return caught.value.line()

    assert refused(None) == (
        f"{deployment_dir / 'backups'} is not a directory of this deployment (a symbolic link "
        "or a file): the archive holds every event and the secrets of .env: remove it, or give "
        "--output a directory of your own"
    )
    missing = tmp_path / "nowhere" / "a.tar"
    assert refused(missing) == (
        f"{missing.parent} does not exist: create it first (mkdir -p {missing.parent})"
    )
    existing = tmp_path / "old.tar"
    existing.write_text("kept")
    assert refused(existing) == (
        f"{existing} already exists; a backup never overwrites a file: choose another --output "
        "or move that file away"
    )
    assert backup.resolve_output(deployment_dir, tmp_path, name) == tmp_path / name
    (deployment_dir / "backups").unlink()
    assert backup.resolve_output(deployment_dir, None, name) == deployment_dir / "backups" / name
    assert (deployment_dir / "backups").stat().st_mode & 0o777 == 0o700


def test_the_uploads_volume_is_the_one_compose_names_else_the_project_default():
    """Which volume the backup reads: the name `compose config` gives the uploads volume (a
    compose.yml may name it), else Compose's default `<project>_uploads` when Compose fails,
    answers no JSON, another shape, or a volume without a name."""
    from test_database_lines import Answering

    named = Answering(0, '{"volumes": {"uploads": {"name": "kept_uploads"}}}')
    assert backup.uploads_volume_name(named, "gtkit") == "kept_uploads"
    [(args, timeout)] = named.calls
    assert args == ("config", "--format", "json")
    assert timeout is not None and 0 < timeout <= 120  # a hung Compose is not waited on
    for answer in (
        Answering(1, '{"volumes": {"uploads": {"name": "kept_uploads"}}}', "no such file"),
        Answering(0, "volumes:\n  uploads: {}\n"),
        Answering(0, '["uploads"]'),
        Answering(0, '{"volumes": {"postgres-data": {"name": "kept_uploads"}}}'),
        Answering(0, '{"volumes": {"uploads": {"name": ""}}}'),
        Answering(0, '{"volumes": {"uploads": null}}'),
    ):
        assert backup.uploads_volume_name(answer, "gtkit") == "gtkit_uploads", answer.result
