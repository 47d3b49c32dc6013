"""`provision restore` read whole: its progress lines, each refusal and each failure as the
complete line with the stage it failed in and the safety backup, the size bound of a file
member, and the migrations and start it hands the restored deployment to.

test_ops_restore.py checks what restore does (bytes, order, files) and matches its messages in
part (issue 20: `restore_backup`, `_replace`, `_prepare_database`, `_archive_files` and
`_migrate_and_start` kept surviving mutants)."""

from __future__ import annotations

import re

import pytest
from test_ops_restore import OLD_DB, OLD_UPLOADS, deployment

from provision.errors import KitError, UsageError
from provision.fileio import MAX_FILE_BYTES
from provision.ops import restore as restore_module
from provision.ops.archive import ArchiveWriter
from provision.ops.backup import create_backup
from provision.ops.manifest import Manifest, Member, read_manifest

STAMP = re.compile(r"\d{8}T\d{6}Z|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture
def archive(tmp_path):
    _directory, _, ctx = deployment(tmp_path, "old", OLD_DB, OLD_UPLOADS)
    return create_backup(ctx).path


def shown(text: str, tmp_path) -> str:
    return STAMP.sub("T", text.replace(str(tmp_path), "TMP"))


def test_a_replacing_restore_reports_each_stage(tmp_path, archive, monkeypatch):
    monkeypatch.setattr(restore_module, "_migrate_and_start", lambda ctx, say: say("(started)"))
    _target, _compose, ctx = deployment(tmp_path, "new", b"new database", b"new uploads", tables=9)
    lines: list[str] = []
    restore_module.restore_backup(ctx, archive, replace=True, verify=False, progress=lines.append)
    progress = re.compile(r"pg_restore: [0-9.]+ [kM]?B of 2\.1 MB")
    assert [shown(line, tmp_path) for line in lines if not progress.fullmatch(line)] == [
        "archive checked: GlitchTip 6 (glitchtip/glitchtip:6.2.6), Postgres 17, taken T, 2.1 MB",
        "backing up the current state first",
        "pg_dump: 12 B",
        "uploads: 11 B",
        "current state saved to TMP/new/backups/glitchtip-glitchtip-T-6.tar",
        "pg_restore: 2.1 MB restored",
        "uploads restored",
        "kept the previous .env as TMP/new/.env.before-restore-T",
        "kept the previous .glitchtiprc as TMP/new/.glitchtiprc.before-restore-T",
        "(started)",
    ]


def test_a_used_database_is_refused_whole_without_replace(tmp_path, archive):
    _target, _compose, ctx = deployment(tmp_path, "new", b"new database", b"", tables=9)
    with pytest.raises(UsageError) as caught:
        restore_module.restore_backup(ctx, archive, verify=False)
    assert caught.value.line() == (
        "the database already holds 9 tables; nothing was changed: restore into an empty "
        "deployment, or give --replace (the current state is backed up first)"
    )


def test_a_failure_names_its_stage_and_the_state_saved_before(tmp_path, archive, monkeypatch):
    _target, compose, ctx = deployment(tmp_path, "new", b"new database", b"", tables=9)
    compose.set_state(fail={"pg_restore": True})
    with pytest.raises(KitError) as caught:
        restore_module.restore_backup(ctx, archive, replace=True, verify=False)
    again = f"fix the cause, then run `provision restore {archive} --replace`"
    saved = "the state before the restore is in TMP/new/backups/glitchtip-glitchtip-T-6.tar"
    assert shown(caught.value.line(), tmp_path) == shown(
        "restore failed: pg_restore failed (exit 1): pg_restore: error: could not execute query; "
        f"the database may be partly restored; {saved}: {again}",
        tmp_path,
    )
    assert caught.value.exit_code == 1

    def no_start(ctx, say):
        raise KitError("migrate exited 1")

    monkeypatch.setattr(restore_module, "_migrate_and_start", no_start)
    _other, compose, ctx = deployment(tmp_path, "other", b"", b"", tables=0)
    with pytest.raises(KitError) as caught:
        restore_module.restore_backup(ctx, archive, verify=False)
    assert caught.value.line() == (
        "restore failed: migrate exited 1; the data and files are restored, the stack may not "
        f"be running: {again}"
    )


def test_a_failed_uploads_restore_names_its_stage_and_the_state_saved_before(tmp_path, archive):
    """The database went in, the uploads' untar failed: the one line names the uploads
    restore, its exit and tar's last lines, and where the state before the restore is."""
    _target, compose, ctx = deployment(tmp_path, "new", b"new database", b"new uploads", tables=9)
    compose.set_state(fail={"uploads_restore": True})
    with pytest.raises(KitError) as caught:
        restore_module.restore_backup(ctx, archive, replace=True, verify=False)
    assert shown(caught.value.line(), tmp_path) == shown(
        "restore failed: uploads restore failed (exit 2): tar: ./a/b.png: Cannot write: No space "
        "left on device | tar: Exiting with failure status due to previous errors; the database "
        "may be partly restored; the state before the restore is in "
        "TMP/new/backups/glitchtip-glitchtip-T-6.tar: fix the cause, then run `provision "
        f"restore {archive} --replace`",
        tmp_path,
    )


def test_a_newer_backup_is_refused_with_the_setting_to_change():
    manifest = Manifest("0.t", "2026-11-26T10:00:00Z", 6, "g:6.2.6", 17, 18, "postgres:18.1", "g")
    with pytest.raises(UsageError) as caught:
        restore_module.check_compatible(manifest, 5, None)
    assert caught.value.line() == (
        "the backup is from GlitchTip 6, this deployment runs GlitchTip 5: a newer GlitchTip's "
        "database cannot go back; nothing was changed: restore it into a GlitchTip 6 deployment "
        "(glitchtip_major: 6 in glitchtip.yaml)"
    )
    with pytest.raises(UsageError) as caught:
        restore_module.check_compatible(manifest, 6, 17)
    assert caught.value.line() == (
        "the dump is from Postgres 18, the target server is Postgres 17, whose pg_restore cannot "
        "read it; nothing was changed: set postgres_image to a Postgres 18 or newer image (the "
        "backup used postgres:18.1)"
    )
    restore_module.check_compatible(manifest, 6, 18)  # as new as the dump: fine
    restore_module.check_compatible(manifest, "6", None)  # no server yet: the settings' major


def _archive_with_file(path, size: int):
    with open(path, "wb") as handle:
        writer = ArchiveWriter(handle)
        writer.add_bytes("database.dump", OLD_DB)
        writer.add_bytes("files/glitchtip.yaml", b"#" * (size - 1) + b"\n")
        members = {m.name: Member(m.name, m.size, m.sha256) for m in writer.members}
        manifest = Manifest("0.t", "2026-11-26T10:00:00Z", 6, "g:6.2.6", 17, 17, "p:17", "g")
        manifest.members = members
        writer.add_bytes("manifest.json", manifest.to_json().encode())
        writer.close()
    return path


def test_a_file_member_may_be_as_large_as_any_file_the_kit_reads_and_no_larger(tmp_path):
    exact = _archive_with_file(tmp_path / "exact.tar", MAX_FILE_BYTES)
    files = restore_module._archive_files(exact, read_manifest(exact))
    assert len(files["glitchtip.yaml"]) == MAX_FILE_BYTES
    over = _archive_with_file(tmp_path / "over.tar", MAX_FILE_BYTES + 1)
    with pytest.raises(UsageError) as caught:
        restore_module._archive_files(over, read_manifest(over))
    assert caught.value.line() == (
        f"{over} is not a usable backup: files/glitchtip.yaml has 1.0 MB, more than any "
        "deployment file (at most 1.0 MB); nothing was changed: use another archive (or take "
        "a new one with `provision backup`)"
    )


def test_the_restored_deployment_is_migrated_and_started_through_its_own_compose(
    tmp_path, monkeypatch
):
    """`_migrate_and_start`: the settings reloaded (the restored .env), the migrations run by
    this deployment's Compose, then the stack started, each said."""
    import provision.stack.migrate
    import provision.stack.start

    _target, compose, ctx = deployment(tmp_path, "new", b"", b"", tables=0)
    done: list[object] = []
    monkeypatch.setattr(
        provision.stack.migrate, "run_migrations", lambda c, on_line: done.append(c)
    )
    monkeypatch.setattr(
        provision.stack.start,
        "start",
        lambda c: done.append(c) or type("Outcome", (), {"detail": "4 services up"})(),
    )
    lines: list[str] = []
    restore_module._migrate_and_start(ctx, lines.append)
    assert done == [compose, ctx]  # the deployment's own start, given this deployment
    assert lines == ["migrations ran", "started: 4 services up"]


def test_a_new_directory_whose_compose_project_has_containers_is_refused(tmp_path, archive):
    """Restoring into an empty directory renders a deployment named like another one on this
    engine: refused before postgres is touched, the directory left empty, nothing stopped."""
    from ops_fakes import FakeCompose, make_state

    from provision.stack.context import StackContext

    target = tmp_path / "empty"
    target.mkdir()
    make_state(tmp_path / "other-state", b"PGDMP other", b"", tables=7)  # postgres running
    compose = FakeCompose(target, tmp_path / "other-state")
    ctx = StackContext(directory=target, environ={}, compose_factory=lambda s: compose)
    with pytest.raises(UsageError) as caught:
        restore_module.restore_backup(ctx, archive, verify=False)
    assert caught.value.line() == (
        "Compose project glitchtip already has containers on this engine (another "
        "deployment?); nothing was changed: restore into that deployment's directory (with "
        "--replace), or give this one its own name: GLITCHTIP_KIT_COMPOSE_PROJECT_NAME=<name> "
        "provision restore ..."
    )
    assert list(target.iterdir()) == []
    assert [call.split()[0] for call in compose.calls()] == ["ps"]
    assert (compose.state_dir / "db.bin").read_bytes() == b"PGDMP other"


def test_a_backup_restored_on_a_new_host_keeps_its_own_major(tmp_path, monkeypatch):
    """A GlitchTip 5 backup whose major is recorded in its .env alone (a glitchtip.yaml written
    by hand, without `glitchtip_major`), restored into an empty directory (a new host), comes
    back as GlitchTip 5: the archive's major is the data's; only an existing deployment's
    major wins over it. Never a silent upgrade to the kit's default major."""
    from ops_fakes import FakeCompose, make_state

    from provision.settings import load_settings
    from provision.stack.context import StackContext

    monkeypatch.setattr(restore_module, "_migrate_and_start", lambda ctx, say: None)
    old, _, old_ctx = deployment(tmp_path, "old5", OLD_DB, OLD_UPLOADS, major="5")
    yaml_file = old / "glitchtip.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("\nglitchtip_major: 5\n", "\n"))
    assert load_settings(old, {}, environ={}).glitchtip_major == 5  # from its .env
    archive = create_backup(old_ctx).path
    target = tmp_path / "empty"
    target.mkdir()
    make_state(tmp_path / "engine", b"", b"", postgres="absent", tables=0)
    compose = FakeCompose(target, tmp_path / "engine")
    ctx = StackContext(directory=target, environ={}, compose_factory=lambda s: compose)
    restore_module.restore_backup(ctx, archive, verify=False)
    assert load_settings(target, {}, environ={}).glitchtip_major == 5
