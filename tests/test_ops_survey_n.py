"""Issue 20, part n: what the CI-shaped run's survivors in ops/ showed no test looked at.

Each test reads a user-visible result whole: the version check backup runs in the container,
the key order of the manifest a backup writes, the refusal of data outside the stack with its
fix, the postgres a refused restore leaves running when `compose ps` lists other services too,
the progress of the database restore in an upgrade's rollback, and the environment and `.env`
an upgrade's settings check reads."""

from __future__ import annotations

import json
import re
import tarfile

import pytest
from cli_run import one_line_error
from cli_run import run as cli
from ops_fakes import FakeCompose as StreamingCompose
from ops_fakes import make_state
from test_ops_backup import DB, UPLOADS_TAR
from test_ops_restore import deployment as restore_deployment
from test_ops_upgrade import FakeCompose, FakeOps, context
from test_ops_upgrade import deployment as upgrade_deployment
from test_upgrade_transcript import BACKUP, FILES_RESTORED, HEAD_5_TO_6, transcript

from provision.errors import UsageError
from provision.ops import upgrade
from provision.ops.backup import create_backup
from provision.stack.context import StackContext

DB_URL = "postgres://gt:db-Pa55word-x7@db.example.com:5432/glitchtip"


@pytest.fixture
def backed_up(tmp_path):
    """A deployment backed up once over the fake Compose: (its Compose, the archive)."""
    directory = tmp_path / "deploy"
    directory.mkdir()
    assert cli(directory, "init").exit_code == 0
    state = tmp_path / "state"
    make_state(state, DB, UPLOADS_TAR)
    compose = StreamingCompose(directory, state)
    ctx = StackContext(directory=directory, environ={}, compose_factory=lambda s: compose)
    return compose, create_backup(ctx).path


# --- ops/backup.create_backup: the pg_dump whose version the manifest records -------------


def test_backup_asks_the_containers_pg_dump_for_its_version(backed_up):
    """The manifest's pg_dump_major is that of `pg_dump` in the postgres container (tool names
    are case-sensitive there: `PG_DUMP` is no command)."""
    compose, _archive = backed_up
    versions = [call for call in compose.calls() if call.endswith("--version")]
    assert versions == ["exec -T postgres pg_dump --version"]


# --- ops/manifest.Manifest.to_json: the manifest's keys in a stable order ------------------


def test_the_archives_manifest_lists_its_keys_in_sorted_order(backed_up):
    """manifest.json (read by `tar -xOf`, diffed between backups) and `backup --json`'s
    "manifest" list their keys sorted, the members' too."""
    _compose, archive = backed_up
    with tarfile.open(archive) as tar:
        text = tar.extractfile("manifest.json").read().decode()
    document = json.loads(text)
    assert list(document) == [
        "compose_project_name", "created_at", "format", "glitchtip_image", "glitchtip_major",
        "kit_version", "members", "pg_dump_major", "postgres_image", "postgres_major",
    ]  # fmt: skip
    assert list(document["members"]) == sorted(document["members"])
    for member in document["members"].values():
        assert list(member) == ["name", "sha256", "size"]
    assert text.endswith("}\n") and text.startswith('{\n  "compose_project_name": ')


# --- ops/bundled.require_bundled_data: the refusal's fix, whole ----------------------------


def test_backup_of_an_external_database_is_refused_with_the_whole_fix(tmp_path):
    assert cli(tmp_path, "render", env={"GLITCHTIP_KIT_DATABASE_URL": DB_URL}).exit_code == 0
    assert one_line_error(cli(tmp_path, "backup")) == (
        "error: cannot back up: the database (database_url) lives outside this stack; the kit "
        "backs up, restores and upgrades the bundled Postgres and uploads volume only: use the "
        "provider's tools (pg_dump or snapshots for the database, bucket versioning for "
        "uploads); to upgrade GlitchTip, take such a snapshot, set glitchtip_image and run "
        "`provision up` (its migrate step migrates the database)"
    )


# --- ops/restore._postgres_running: postgres's own row, not the last one `ps` prints --------


def test_a_refused_restore_leaves_a_running_postgres_running_beside_a_stopped_web(tmp_path):
    """`compose ps postgres` may list other services' rows too (the fake prints every row):
    postgres runs, web has exited; the refusal (a used database) must not stop postgres, which
    the restore did not start."""
    _source, _compose, source_ctx = restore_deployment(tmp_path, "old", b"PGDMP old", b"up")
    archive = create_backup(source_ctx).path
    _target, compose, ctx = restore_deployment(
        tmp_path, "new", b"new database", b"new uploads", tables=9,
        services={"web": {"State": "exited", "Health": ""}},
    )  # fmt: skip
    from provision.ops.restore import restore_backup

    with pytest.raises(UsageError, match="already holds 9 tables"):
        restore_backup(ctx, archive, verify=False)
    assert [call for call in compose.calls() if call.startswith(("stop", "down"))] == []


# --- ops/upgrade.rollback: the database restore's progress is shown -------------------------


class RestoreSays(FakeOps):
    """The real restore_database reports its progress through the note it is given."""

    def restore_database(self, ctx, archive, note):
        super().restore_database(ctx, archive, note)
        note("pg_restore: 4.0 MiB restored")


def test_the_rollbacks_database_restore_shows_its_progress(tmp_path):
    directory = upgrade_deployment(tmp_path)
    lines, _settings, failure, _outcome = transcript(
        tmp_path, RestoreSays(tmp_path, fail="start"), directory, to="6.2.6", postgres=None
    )
    assert lines == [
        *HEAD_5_TO_6,
        "      FAILED (T s) the stack did not become healthy: migrate exited 1",
        "      upgrade failed at 'start': rolling back",
        FILES_RESTORED,
        f"      restoring the database from {BACKUP}",
        "      pg_restore: 4.0 MiB restored",
        "      rollback: database restored from the backup",
        "      rollback: stack up on glitchtip/glitchtip:v5.1.0",
        "      rollback: verify passed",
    ]
    assert failure.startswith("upgrade to glitchtip/glitchtip:6.2.6 failed at 'start'")


# --- ops/upgrade.step_settings / upgrade_files.check_settings_text: what the check reads ----


def test_the_settings_step_checks_against_the_deployments_environment(tmp_path, monkeypatch):
    """The kit's context names the environment (`environ`); a variable of the process running
    the library, which the context leaves out, does not refuse the upgrade."""
    directory = upgrade_deployment(tmp_path)
    fake = FakeOps(tmp_path)
    ctx = context(directory, FakeCompose())
    state = upgrade.prepare(ctx, to="6.2.6", postgres=None, ops=fake.ops())
    monkeypatch.setenv("GLITCHTIP_KIT_HTTP_PORT", "not-a-port")
    outcome = upgrade.run_upgrade(ctx, state, fake.ops())
    assert outcome.ok, outcome.report.error and outcome.report.error.line()
    text = (directory / "glitchtip.yaml").read_text()
    assert "glitchtip_image: glitchtip/glitchtip:6.2.6\n" in text


def test_an_upgrade_within_a_major_recorded_in_env_is_checked_with_that_env(tmp_path):
    """GlitchTip 5 chosen by GLITCHTIP_KIT_MAJOR at the first render is recorded in `.env`, not
    glitchtip.yaml: the check of the new settings reads that `.env` (without it the major would be
    6's default, and v5.1.1 "is GlitchTip 5, but glitchtip_major is 6")."""
    from provision.render import write_rendered
    from provision.settings import load_settings

    (tmp_path / "glitchtip.yaml").write_text("http_port: 18000\ncompose_project_name: gtkit\n")
    write_rendered(load_settings(tmp_path, environ={"GLITCHTIP_KIT_MAJOR": "5"}))
    assert "GLITCHTIP_KIT_MAJOR=5\n" in (tmp_path / ".env").read_text()
    fake = FakeOps(tmp_path)
    ctx = context(tmp_path, FakeCompose())
    state = upgrade.prepare(ctx, to="v5.1.1", postgres=None, ops=fake.ops())
    outcome = upgrade.run_upgrade(ctx, state, fake.ops())
    assert outcome.ok, outcome.report.error and outcome.report.error.line()
    text = (tmp_path / "glitchtip.yaml").read_text()
    assert re.findall(r"^glitchtip_\w+: .*$", text, re.M) == [
        "glitchtip_image: glitchtip/glitchtip:v5.1.1"
    ]
