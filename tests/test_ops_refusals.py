"""What backup, restore, verify and upgrade must refuse, through their public functions and CLI,
with fakes that refuse what the real tools refuse (tests/ops_fake_compose.py):

- an archive changed after its manifest was checked is not fed on (SHA-256 at the end of the read);
- this host's glitchtip.yaml stays in charge when the archive's differs;
- `pg_restore` given bytes that are no custom-format dump fails the restore, in one line;
- free disk space is compared in GiB, at the threshold given;
- a DSN key GlitchTip rejects (403 Denied, 401 Invalid DSN: NOTES.md section 4) fails the event
  check, as a 5xx does;
- an unhealthy service in `compose ps` stops an upgrade before anything changes.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import tarfile

import pytest
from cli_run import run
from click.testing import CliRunner
from fakeglitchtip import create_superuser, start_fake
from ops_fakes import FakeCompose, FakeEngine, fake_compose_fixture, make_state

from provision.cli import cli
from provision.errors import KitError, UsageError
from provision.ops.backup import create_backup
from provision.ops.manifest import DATABASE, open_member, read_manifest
from provision.ops.restore import restore_backup, restore_files
from provision.ops.verify import run_verify
from provision.runtime.engine import ContainerState
from provision.stack.context import StackContext

DUMP = b"PGDMP" + bytes(range(256)) * 40  # what pg_dump -Fc starts with
ADMIN = "admin@example.com"
PASSWORD = "admin-Passw0rd-123"


@pytest.fixture
def use_fake_compose(monkeypatch):
    yield from fake_compose_fixture(monkeypatch)


def deployment(tmp_path, name, db=DUMP, **state):
    directory = tmp_path / name
    directory.mkdir()
    for command in ("init", "render"):
        result = run(directory, command)
        assert result.exit_code == 0, result.output
    state_dir = tmp_path / f"{name}-state"
    make_state(state_dir, db, b"uploads", **state)
    compose = FakeCompose(directory, state_dir)
    ctx = StackContext(directory=directory, environ={}, compose_factory=lambda s: compose)
    return directory, compose, ctx


def files_of(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# --- the archive ---------------------------------------------------------------------------


def rewrite_member(archive, name, data):
    """The archive with member `name` replaced by `data` of the same size (a tamper, or a
    disk changing bytes), everything else as it was."""
    members = []
    with tarfile.open(archive) as tar:
        for info in tar:
            content = tar.extractfile(info).read()
            members.append((info, data if info.name == name else content))
    with tarfile.open(archive, "w") as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content))


def test_an_archive_changed_after_its_check_fails_at_the_end_of_the_read(tmp_path):
    _, _, ctx = deployment(tmp_path, "old")
    archive = create_backup(ctx).path
    manifest = read_manifest(archive)  # whole and matching
    changed = bytearray(DUMP)
    changed[-1] ^= 0xFF
    rewrite_member(archive, DATABASE, bytes(changed))
    with (
        open_member(archive, DATABASE, manifest.members[DATABASE]) as chunks,
        pytest.raises(UsageError, match=r"database\.dump changed while it was being restored"),
    ):
        b"".join(chunks)
    # unchanged, the same read passes and yields the dump
    rewrite_member(archive, DATABASE, DUMP)
    with open_member(archive, DATABASE, manifest.members[DATABASE]) as chunks:
        assert b"".join(chunks) == DUMP


def test_this_hosts_glitchtip_yaml_stays_and_the_archives_is_used_on_an_empty_directory(
    tmp_path,
):
    host = tmp_path / "host"
    host.mkdir()
    (host / "glitchtip.yaml").write_text("http_port: 8001\n")
    archived = {"glitchtip.yaml": "http_port: 9000\n", ".glitchtiprc": "[defaults]\n"}
    kept = restore_files(host, archived)
    assert (host / "glitchtip.yaml").read_text() == "http_port: 8001\n"
    assert [p.name for p in kept] == []  # nothing to keep aside: the host's file was not touched
    assert (host / ".glitchtiprc").read_text() == "[defaults]\n"

    empty = tmp_path / "empty"
    empty.mkdir()
    assert restore_files(empty, archived) == []
    # The archive's file is used, its identity lines left out (issue 18: this host's identity).
    assert (empty / "glitchtip.yaml").read_text().startswith("# http_port: 9000")


def test_pg_restore_refuses_bytes_that_are_no_dump_and_the_restore_says_so(tmp_path):
    _, _, old_ctx = deployment(tmp_path, "old", db=b"-- plain SQL, not a custom-format dump\n")
    archive = create_backup(old_ctx).path  # pg_dump's output is archived as it came
    target, compose, ctx = deployment(tmp_path, "new", tables=0)
    before = files_of(target)
    with pytest.raises(KitError) as failed:
        restore_backup(ctx, archive, verify=False)
    line = failed.value.line()
    # Refused when the archive is read, before the database is dropped (manifest.DUMP_MAGIC).
    assert "is not a pg_dump custom-format dump; nothing was changed" in line
    assert "\n" not in failed.value.message
    assert (compose.state_dir / "db.bin").read_bytes() == DUMP  # the fake kept its data
    assert files_of(target) == before  # .env and .glitchtiprc were not replaced


# --- verify ----------------------------------------------------------------------------------


def healthy():
    return [
        ContainerState(s, s, "glitchtip", "running", "healthy", None, "image")
        for s in ("postgres", "valkey", "web", "worker")
    ]


@pytest.fixture
def fake():
    handle = start_fake(worker=True, worker_interval=0.1)
    create_superuser(handle.store, ADMIN, PASSWORD)
    yield handle
    handle.stop()


def verified_deployment(directory, fake):
    port = fake.url.rsplit(":", 1)[1]
    (directory / "glitchtip.yaml").write_text(f"http_port: {port}\nglitchtip_domain: {fake.url}\n")
    with contextlib.chdir(directory):
        result = CliRunner().invoke(
            cli,
            ["create-project", "--url", fake.url, "--org", "GlitchTip", "--project", "default",
             "--admin-email", ADMIN, "--admin-password", PASSWORD],
            env={"PROVISION_API_BACKOFF": "0.01"},
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    engine = FakeEngine(healthy(), directory)
    return StackContext(directory=directory, environ={}, engine_factory=lambda: engine)


def test_free_space_is_compared_in_gib(fake, tmp_path):
    ctx = verified_deployment(tmp_path, fake)
    free_gib = shutil.disk_usage(tmp_path).free / 2**30
    assert free_gib > 0.01, "the test needs some free space"
    passed = run_verify(ctx, checks=["disk"], min_free_gib=free_gib / 2)
    assert passed.ok, passed.checks[0].detail
    recorded = passed.checks[0].data["free_gib"]
    assert all(abs(value - free_gib) < max(1.0, free_gib * 0.05) for value in recorded.values())
    failed = run_verify(ctx, checks=["disk"], min_free_gib=free_gib * 2 + 1)
    assert not failed.ok and "GiB free" in failed.checks[0].detail


def test_a_dsn_key_glitchtip_does_not_know_fails_the_event_check(fake, tmp_path):
    ctx = verified_deployment(tmp_path, fake)
    with fake.store.transaction() as state:
        state["keys"].clear()  # the key was deleted in GlitchTip's UI
    report = run_verify(ctx, checks=["event"], event_timeout=1.0)
    assert not report.ok
    # verify sends its event to the kit's own project and checks .glitchtiprc's key (issue 18)
    assert report.checks[0].detail == (
        "the DSN in .glitchtiprc is not a key of glitchtip/default: run "
        "`provision create-project` to write a current one"
    )


@pytest.mark.parametrize(
    ("edit", "status"),
    [
        # A key GlitchTip does not know: 403 "Denied" (recorded); the key of another project: 401.
        (lambda dsn: re.sub(r"//[0-9a-f]{32}@", "//" + "0" * 32 + "@", dsn), 403),
        (lambda dsn: dsn.rsplit("/", 1)[0] + "/999", 401),
    ],
)  # fmt: skip
def test_a_store_endpoint_that_refuses_the_kits_key_fails_the_event_check(
    fake, tmp_path, monkeypatch, edit, status
):
    """verify's own event: any refusal of the store endpoint (not only a 5xx) fails the check."""
    import dataclasses

    from provision.ops.verify import Verifier

    ctx = verified_deployment(tmp_path, fake)
    real = Verifier._kit_project

    def refused_key(self):
        project = real(self)
        return dataclasses.replace(project, dsn=edit(project.dsn))

    monkeypatch.setattr(Verifier, "_kit_project", refused_key)
    report = run_verify(ctx, checks=["event"], event_timeout=1.0)
    assert not report.ok
    assert report.checks[0].detail == f"the DSN's store endpoint answered HTTP {status}"


def test_a_dsn_of_another_project_fails_the_event_check(fake, tmp_path):
    ctx = verified_deployment(tmp_path, fake)
    rc = tmp_path / ".glitchtiprc"
    text = rc.read_text()
    url = next(line for line in text.splitlines() if line.startswith("url = "))
    other = url.rsplit("/", 1)[0] + "/999"  # the same key with another project's ID
    rc.write_text(text.replace(url, other))
    report = run_verify(ctx, checks=["event"], event_timeout=1.0)
    assert not report.ok
    assert report.checks[0].detail == (
        "the DSN in .glitchtiprc is not a key of glitchtip/default: run "
        "`provision create-project` to write a current one"
    )


# --- upgrade ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "named"),
    [
        ({"web": {"Health": "unhealthy"}}, "web is unhealthy"),
        ({"worker": {"Health": "starting"}}, "worker is starting"),
        ({"web": {"State": "restarting"}}, "web is restarting"),
    ],
)
def test_an_unhealthy_service_stops_the_upgrade_before_anything_changes(
    tmp_path, use_fake_compose, rows, named
):
    directory = tmp_path / "dep"
    directory.mkdir()
    for command in ("init", "render"):
        assert run(directory, command).exit_code == 0
    state_dir = tmp_path / "state"
    services = {"valkey": {}, "web": {"Health": "healthy"}, "worker": {}}
    for service, row in rows.items():
        services[service] = {**services.get(service, {}), **row}
    make_state(state_dir, DUMP, b"", services=services)
    use_fake_compose(state_dir)
    before = files_of(directory)
    result = run(directory, "upgrade", "--to", "6.2.6")
    assert result.exit_code == 2, result.output
    assert named in result.output and "the stack is not running" in result.output
    assert files_of(directory) == before
    calls = (state_dir / "calls.log").read_text().splitlines()
    assert all(call.startswith(("ps", "config")) for call in calls), calls


def test_a_healthy_stack_passes_the_upgrade_preflight(tmp_path, use_fake_compose):
    """The control: the same fake with every service healthy gets past the running check."""
    from provision.ops.upgrade import check_running
    from provision.runtime.compose import Compose

    state_dir = tmp_path / "state"
    services = {"valkey": {}, "web": {"Health": "healthy"}, "worker": {"Health": ""}}
    make_state(state_dir, DUMP, b"", services=services)
    use_fake_compose(state_dir)
    check_running(Compose(tmp_path, "glitchtip"), ("postgres", "valkey", "web", "worker"))
    services["web"] = {"Health": "unhealthy"}
    make_state(state_dir, DUMP, b"", services=services)
    with pytest.raises(UsageError, match="web is unhealthy"):
        check_running(Compose(tmp_path, "glitchtip"), ("postgres", "valkey", "web", "worker"))
