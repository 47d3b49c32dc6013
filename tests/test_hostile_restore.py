"""Issue 18, defects 1 to 3: `restore` never half-replaces a deployment.

Archives are crafted with valid checksums (rebuilt with the kit's own writer, so only their
content is hostile), over the fake Compose that streams real bytes (tests/ops_fake_compose.py).
Every refusal must come before anything is stopped, replaced or written, with every directory
as it was; a failure after the safety backup of --replace must name it."""

from __future__ import annotations

import os
import tarfile

import pytest
from cli_run import one_line_error, run
from ops_fakes import FakeCompose, fake_compose_fixture, make_state

from provision.envfile import read_env_file
from provision.errors import KitError, UsageError
from provision.ops import restore as restore_module
from provision.ops.archive import ArchiveWriter
from provision.ops.backup import create_backup
from provision.ops.manifest import Manifest, Member, read_manifest
from provision.ops.restore import restore_backup
from provision.stack.context import StackContext

OLD_DB = b"PGDMP" + os.urandom(300_000)  # pg_dump -Fc starts with PGDMP
OLD_UPLOADS = b"old uploads" * 300


@pytest.fixture
def use_fake_compose(monkeypatch):
    yield from fake_compose_fixture(monkeypatch)


@pytest.fixture
def started(monkeypatch):
    calls = []
    monkeypatch.setattr(restore_module, "_migrate_and_start", lambda ctx, say: calls.append(1))
    return calls


def deployment(tmp_path, name, db, uploads, *, args=(), **state):
    directory = tmp_path / name
    directory.mkdir()
    for command in ("init", "render"):
        result = run(directory, command, *args)
        assert result.exit_code == 0, result.output
    (directory / ".glitchtiprc").write_text(f"[defaults]\nurl = http://{name}@localhost:8000/1\n")
    state_dir = tmp_path / f"{name}-state"
    make_state(state_dir, db, uploads, **state)
    compose = FakeCompose(directory, state_dir)
    ctx = StackContext(directory=directory, environ={}, compose_factory=lambda s: compose)
    return directory, compose, ctx


@pytest.fixture
def good(tmp_path):
    _directory, _, ctx = deployment(tmp_path, "old", OLD_DB, OLD_UPLOADS)
    return create_backup(ctx).path


def rebuild(source, target, *, files=None, drop=(), **manifest_changes):
    """A copy of archive `source` with some file members replaced (name -> bytes) or dropped and
    manifest fields changed: checksums and sizes all valid, only the content is hostile."""
    manifest = read_manifest(source)
    with tarfile.open(source) as tar:
        members = {
            name: tar.extractfile(name).read()
            for name in manifest.members
            if name not in drop and f"files/{name}" not in drop
        }
    for name, data in (files or {}).items():
        members[f"files/{name}"] = data
    with open(target, "wb") as handle:
        writer = ArchiveWriter(handle)
        for name, data in members.items():
            writer.add_bytes(name, data)
        values = {
            key: getattr(manifest, key)
            for key in ("kit_version", "created_at", "glitchtip_major", "glitchtip_image",
                        "postgres_major", "pg_dump_major", "postgres_image",
                        "compose_project_name")
        }  # fmt: skip
        values.update(manifest_changes)
        values["members"] = {m.name: Member(m.name, m.size, m.sha256) for m in writer.members}
        writer.add_bytes("manifest.json", Manifest(**values).to_json().encode())
        writer.close()
    return target


def tree(directory):
    """Every entry under `directory` with its bytes (files) or kind: 'as it was' in full."""
    found = {}
    for path in sorted(directory.rglob("*")):
        key = str(path.relative_to(directory))
        if path.is_symlink():
            found[key] = ("link", os.readlink(path))
        elif path.is_file():
            found[key] = ("file", path.read_bytes(), path.stat().st_mode)
        else:
            found[key] = ("dir",)
    return found


def archived_env(source) -> str:
    with tarfile.open(source) as tar:
        return tar.extractfile("files/.env").read().decode()


# --- 1: into an existing deployment, nothing moves before every check passed ---


@pytest.mark.parametrize(
    ("env_text", "needle"),
    [
        ("this is not a dotenv line\n", "the backup's .env line 1 is not KEY=value"),
        ("SECRET_KEY=a\nSECRET_KEY=b\n", "SECRET_KEY is set twice in the backup's .env"),
        ("SECRET_KEY='unterminated\n", "opens a quote it does not close"),
    ],
)
def test_a_bad_env_member_is_refused_before_anything_is_stopped_or_replaced(
    tmp_path, good, started, env_text, needle
):
    hostile = rebuild(good, tmp_path / "bad-env.tar", files={".env": env_text.encode()})
    target, compose, ctx = deployment(
        tmp_path, "new", b"PGDMP new database", b"new uploads", tables=9
    )
    before = tree(target)
    with pytest.raises(UsageError, match=r"nothing was changed|KEY=value|twice|quote") as caught:
        restore_backup(ctx, hostile, replace=True, verify=False)
    assert needle in caught.value.line()
    calls = compose.calls()
    assert not any(c.startswith(("stop", "up", "exec", "run")) for c in calls), calls
    assert (compose.state_dir / "db.bin").read_bytes() == b"PGDMP new database"
    assert tree(target) == before and started == []
    assert not (target / "backups").exists()  # not even the safety backup was taken


@pytest.mark.parametrize("name", [".glitchtiprc", ".env", "glitchtip.yaml"])
def test_a_symlink_where_restore_writes_is_refused_before_anything_moves(
    tmp_path, good, started, name
):
    target, compose, ctx = deployment(
        tmp_path, "new", b"PGDMP new database", b"new uploads", tables=9
    )
    elsewhere = tmp_path / f"outside-{name.strip('.')}"
    (target / name).rename(elsewhere) if (target / name).exists() else elsewhere.write_text("")
    (target / name).symlink_to(elsewhere)
    before, outside = tree(target), elsewhere.read_bytes()
    with pytest.raises(UsageError, match="is a symbolic link"):
        restore_backup(ctx, good, replace=True, verify=False)
    assert not any(c.startswith(("stop", "up", "exec", "run")) for c in compose.calls())
    assert tree(target) == before and elsewhere.read_bytes() == outside


def test_a_bad_glitchtiprc_member_is_refused_before_anything_moves(tmp_path, good, started):
    hostile = rebuild(good, tmp_path / "bad-rc.tar", files={".glitchtiprc": b"url = no section\n"})
    target, compose, ctx = deployment(
        tmp_path, "new", b"PGDMP new database", b"new uploads", tables=9
    )
    before = tree(target)
    with pytest.raises(UsageError, match=r"\.glitchtiprc is not an INI file"):
        restore_backup(ctx, hostile, replace=True, verify=False)
    assert compose.calls() == [] and tree(target) == before


def test_a_failure_after_the_safety_backup_names_it(tmp_path, good, monkeypatch):
    def broken(ctx, say):
        raise KitError("the stack did not become healthy: migrate exited 1")

    monkeypatch.setattr(restore_module, "_migrate_and_start", broken)
    _target, _compose, ctx = deployment(tmp_path, "new", b"PGDMP new db", b"new uploads", tables=9)
    with pytest.raises(KitError) as caught:
        restore_backup(ctx, good, replace=True, verify=False)
    line = caught.value.line()
    saved = sorted((tmp_path / "new" / "backups").iterdir())
    assert len(saved) == 1 and f"the state before the restore is in {saved[0]}" in line
    assert "migrate exited 1" in line and "--replace" in line


def test_the_cli_names_the_safety_backup_when_pg_restore_fails(
    tmp_path, good, use_fake_compose, started
):
    target, compose, _ = deployment(
        tmp_path, "new", b"PGDMP new database", b"new uploads", tables=9
    )
    compose.set_state(fail={"pg_restore": True})
    use_fake_compose(compose.state_dir)
    result = run(target, "restore", str(good), "--replace", "--no-verify")
    assert result.exit_code == 1, result.output
    line = result.stderr.strip().splitlines()[-1]
    saved = sorted((target / "backups").iterdir())
    assert len(saved) == 1 and str(saved[0]) in line and "restore failed" in line


def test_a_huge_file_member_is_refused_before_it_is_read_into_memory(tmp_path, good, started):
    big = b"# padding\n" * 200_000  # 2 MB of valid dotenv comments
    hostile = rebuild(good, tmp_path / "big-env.tar", files={".env": big})
    target, compose, ctx = deployment(
        tmp_path, "new", b"PGDMP new database", b"new uploads", tables=9
    )
    before = tree(target)
    with pytest.raises(UsageError, match=r"files/\.env has 2\.0 MB, more than any deployment file"):
        restore_backup(ctx, hostile, replace=True, verify=False)
    assert compose.calls() == [] and tree(target) == before


# --- 2: into an empty directory, a refused archive leaves nothing behind ---


def _empty_target(tmp_path, use_fake_compose):
    target = tmp_path / "empty"
    target.mkdir()
    (target / "unrelated.txt").write_text("mine\n")
    state_dir = tmp_path / "empty-state"
    make_state(state_dir, b"", b"", tables=0, postgres="absent")
    use_fake_compose(state_dir)
    return target, state_dir


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"glitchtip_major": 7}, "from GlitchTip 7"),
        ({"postgres_major": 99}, "the dump is from Postgres 99"),
        ({"files": {"glitchtip.yaml": b"glitchtip_major: [6\n"}}, "glitchtip.yaml"),
        ({"files": {"glitchtip.yaml": b"enable_user_registration: maybe\n"}}, "registration"),
        (
            {"files": {".env": b"DATABASE_URL=postgres://u:p@db.example.com/g\n"}},
            "cannot restore: the database (database_url) lives outside this stack",
        ),
    ],
    ids=["glitchtip-7", "postgres-99", "bad-yaml", "bad-setting", "external-database"],
)
def test_a_refused_archive_leaves_an_empty_directory_empty_and_starts_nothing(
    tmp_path, good, use_fake_compose, started, change, needle
):
    change = dict(change)
    hostile = rebuild(good, tmp_path / "hostile.tar", files=change.pop("files", None), **change)
    target, state_dir = _empty_target(tmp_path, use_fake_compose)
    before = tree(target)
    error = one_line_error(run(target, "restore", str(hostile)))
    assert needle in error and "p@db" not in error
    assert tree(target) == before
    log = state_dir / "calls.log"
    assert not log.exists() or log.read_text() == ""  # no postgres started, nothing run


def test_a_refusal_that_needs_postgres_removes_what_restore_wrote_and_started(
    tmp_path, good, use_fake_compose, started
):
    """The new directory's Compose project already holds a database (a volume of the same
    name): refused after postgres started; restore's files and container go again."""
    import json

    target, state_dir = _empty_target(tmp_path, use_fake_compose)
    data = json.loads((state_dir / "state.json").read_text())
    data["tables"] = 4
    (state_dir / "state.json").write_text(json.dumps(data))
    before = tree(target)
    error = one_line_error(run(target, "restore", str(good)))
    assert "already holds 4 tables" in error
    assert tree(target) == before
    calls = (state_dir / "calls.log").read_text().splitlines()
    assert any(c.startswith("up") for c in calls) and calls[-1].startswith("down")
    assert not any("pg_restore" in c or "DROP" in c for c in calls)
    # the container restore started is gone (Compose's `down` refuses a name that is no
    # service, which would leave postgres running)
    assert json.loads((state_dir / "state.json").read_text())["postgres"] == "absent"


# --- 3: the archive does not change which stack this host is ---

IDENTITY = {
    "GLITCHTIP_KIT_COMPOSE_PROJECT_NAME": "archived",
    "GLITCHTIP_KIT_BIND_ADDRESS": "0.0.0.0",
    "GLITCHTIP_KIT_HTTP_PORT": "9999",
    "GLITCHTIP_DOMAIN": "https://old.example.com",
    "GLITCHTIP_KIT_POSTGRES_VOLUME": "archived_postgres-18",
}


def _with_identity(good, tmp_path):
    from provision.envfile import set_env_values

    text = set_env_values(archived_env(good), IDENTITY)
    return rebuild(good, tmp_path / "identity.tar", files={".env": text.encode()})


def test_the_hosts_identity_stays_its_own(tmp_path, good, started):
    hostile = _with_identity(good, tmp_path)
    target, _compose, ctx = deployment(
        tmp_path, "new", b"", b"", tables=0, args=("--http-port", "8123")
    )
    lines = []
    restore_backup(ctx, hostile, verify=False, progress=lines.append)
    env = read_env_file(target / ".env")
    assert env["GLITCHTIP_KIT_HTTP_PORT"] == "8123"  # recorded by this host's render
    for key in IDENTITY:
        if key != "GLITCHTIP_KIT_HTTP_PORT":
            assert env.get(key, "") == "", key
    assert env["SECRET_KEY"] == read_env_file_text(archived_env(good))["SECRET_KEY"]
    settings = StackContext(directory=target, environ={}).load_settings()
    assert (settings.compose_project_name, settings.bind_address, settings.http_port) == (
        "glitchtip",
        "127.0.0.1",
        8123,
    )
    assert any("kept this host's" in line and "--archived-identity" in line for line in lines)


def test_archived_identity_is_taken_when_asked(tmp_path, good, started):
    hostile = _with_identity(good, tmp_path)
    target, _compose, ctx = deployment(tmp_path, "new", b"", b"", tables=0)
    restore_backup(ctx, hostile, verify=False, archived_identity=True)
    env = read_env_file(target / ".env")
    assert env["GLITCHTIP_KIT_BIND_ADDRESS"] == "0.0.0.0"
    assert env["GLITCHTIP_KIT_COMPOSE_PROJECT_NAME"] == "archived"
    assert env.get("GLITCHTIP_KIT_POSTGRES_VOLUME", "") == ""  # the volume is always the host's


def test_a_new_host_leaves_out_the_archived_yaml_identity(tmp_path):
    from provision.ops.restore_files import plan_files

    yaml_text = "# mine\nbind_address: 0.0.0.0\nhttp_port: 9999\nglitchtip_major: 5\n"
    plan = plan_files(tmp_path, {"glitchtip.yaml": yaml_text}, new_host=True)
    written = plan.contents["glitchtip.yaml"]
    assert "\nglitchtip_major: 5\n" in written
    assert "\n# bind_address: 0.0.0.0" in written and "\nbind_address" not in written
    with pytest.raises(UsageError) as refused:
        plan_files(tmp_path, {"glitchtip.yaml": "{bind_address: 0.0.0.0}\n"}, new_host=True)
    assert (refused.value.message, refused.value.fix) == (
        "the backup's glitchtip.yaml sets bind_address in a form restore cannot leave out; "
        "nothing was changed",
        "restore with --archived-identity to take the archived identity as it is, or put a "
        "glitchtip.yaml of your own in the directory first",
    )
    kept = plan_files(
        tmp_path, {"glitchtip.yaml": yaml_text}, new_host=True, archived_identity=True
    )
    assert kept.contents["glitchtip.yaml"] == yaml_text


def read_env_file_text(text: str) -> dict:
    from provision.envfile import parse_env

    return parse_env(text)
