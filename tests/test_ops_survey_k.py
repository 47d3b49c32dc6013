"""Issue 20, part k: what the survey sample's survivors in ops/ showed no test looked at.

Each test reads a user-visible result whole: a refusal's line, the compose calls a refused
restore leaves, what the archive check reads, the settings a restore into an existing deployment
is checked against, where an upgrade pulls its images, the services it needs running, where its
settings check writes the `.env` copy, and the reason shown for an event verify never saw."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from cli_run import one_line_error
from cli_run import run as cli
from test_ops_pg_upgrade import deployment as pg_deployment
from test_ops_restore import OLD_DB, OLD_UPLOADS
from test_ops_restore import deployment as restore_deployment
from test_ops_upgrade import RUNNING, FakeCompose, FakeOps, context
from test_ops_upgrade import deployment as upgrade_deployment
from test_restore_new_host_volumes import _calls

from provision.errors import KitError, UsageError
from provision.ops import manifest as manifest_module
from provision.ops import restore as restore_module
from provision.ops import upgrade
from provision.ops.backup import create_backup
from provision.ops.manifest import read_manifest
from provision.ops.pg_upgrade import restore_database
from provision.ops.upgrade_files import check_plan_settings
from provision.ops.upgrade_plan import check_target_values
from provision.stack.context import StackContext

FIX = "use another archive (or take a new one with `provision backup`)"


# --- ops/manifest._refuse_compressed: an archive that cannot be read names itself ---------


def test_an_archive_that_cannot_be_read_is_refused_by_its_own_path():
    """The tests run as root, so a mode cannot make a file unreadable: /proc/self/mem is a
    regular file that opens and then fails its first read (EIO at address 0)."""
    archive = Path("/proc/self/mem")
    with pytest.raises(UsageError) as caught:
        read_manifest(archive)
    assert caught.value.exit_code == 2
    assert caught.value.line() == (
        "/proc/self/mem is not a usable backup: cannot read it (Input/output error); nothing "
        f"was changed: {FIX}"
    )


# --- ops/pg_upgrade.restore_database: a manifest the caller holds is not read again --------


def _counting_read_manifest(monkeypatch) -> list[Path]:
    """Every archive `read_manifest` checks (each check hashes the whole archive again)."""
    seen: list[Path] = []
    real = manifest_module.read_manifest

    def counting(archive):
        seen.append(Path(archive))
        return real(archive)

    monkeypatch.setattr(manifest_module, "read_manifest", counting)
    return seen


def test_restore_database_reads_the_archive_once_when_given_its_manifest(tmp_path, monkeypatch):
    """`provision restore` checks the archive whole, then hands its manifest over: hashing a
    multi-gigabyte archive a second time would double the restore's reading for nothing."""
    from test_ops_pg_upgrade import DUMP

    old, _ = pg_deployment(tmp_path, "old")
    archive = create_backup(old).path
    manifest = read_manifest(archive)
    new, compose = pg_deployment(tmp_path, "new", db=b"", tables=5)
    seen = _counting_read_manifest(monkeypatch)
    assert restore_database(new, archive, lambda line: None, manifest) == len(DUMP)
    assert seen == []
    assert (compose.state_dir / "db.bin").read_bytes() == DUMP
    # Without one, it checks the archive itself, once.
    assert restore_database(new, archive, lambda line: None) == len(DUMP)
    assert seen == [archive]


# --- ops/restore._prepare_database: a volume listing that never answered removes nothing ---


def test_a_volume_listing_that_hangs_leaves_every_volume(tmp_path):
    """Into an empty directory, restore lists the project's volumes before postgres starts, so
    that a refusal removes only the volume it made. When that listing fails (a Compose that
    hangs past its bound, or Ctrl-C), what existed is unknown: the cleanup takes the containers
    down and keeps every volume, another deployment's data included."""
    _old, _, ctx = restore_deployment(tmp_path, "old", OLD_DB, OLD_UPLOADS)
    archive = create_backup(ctx).path
    target = tmp_path / "empty"
    target.mkdir()
    from ops_fakes import FakeCompose as OpsCompose
    from ops_fakes import make_state

    make_state(
        tmp_path / "engine", b"", b"", postgres="absent", tables=0, volumes=["x_postgres-data"]
    )

    class HangingVolumes(OpsCompose):
        def run(self, *args, env=None, timeout=None):
            if args[:1] == ("volumes",):
                self.hung = args
                # What runtime/process.run raises when the child outlives its bound.
                raise KitError("compose volumes did not finish within 60 s", "check the engine")
            return super().run(*args, env=env, timeout=timeout)

    compose = HangingVolumes(target, tmp_path / "engine")
    new = StackContext(directory=target, environ={}, compose_factory=lambda s: compose)
    with pytest.raises(KitError) as caught:
        restore_module.restore_backup(new, archive, verify=False)
    assert caught.value.line() == ("compose volumes did not finish within 60 s: check the engine")
    assert compose.hung == ("volumes", "--quiet")
    assert _calls(compose) == ["down --remove-orphans"]
    state = json.loads((compose.state_dir / "state.json").read_text())
    assert state["volumes"] == ["x_postgres-data"]
    assert list(target.iterdir()) == []


# --- ops/restore_files.planned_settings: an existing deployment's glitchtip.yaml counts -----


def test_restore_into_a_deployment_checks_its_own_glitchtip_yaml(tmp_path):
    """Restore keeps an existing deployment's glitchtip.yaml (the archive's is not written
    over it): the compatibility check must read that file, here a Postgres too old for the
    dump, and refuse before anything is started."""
    _old, _, old_ctx = restore_deployment(tmp_path, "old", OLD_DB, OLD_UPLOADS)
    archive = create_backup(old_ctx).path
    target, compose, ctx = restore_deployment(
        tmp_path, "new", b"", b"", tables=0, postgres="exited"
    )
    settings = target / "glitchtip.yaml"
    settings.write_text(settings.read_text() + "postgres_image: postgres:16.6\n")
    before = {path.name: path.read_bytes() for path in target.iterdir() if path.is_file()}
    with pytest.raises(UsageError) as caught:
        restore_module.restore_backup(ctx, archive, verify=False)
    assert caught.value.line() == (
        "the dump is from Postgres 17, the target server is Postgres 16, whose pg_restore "
        "cannot read it; nothing was changed: set postgres_image to a Postgres 17 or newer "
        "image (the backup used postgres:18.1)"
    )
    assert compose.calls() == []  # refused before postgres was started
    after = {path.name: path.read_bytes() for path in target.iterdir() if path.is_file()}
    assert after == before


# --- ops/upgrade.current_state: the services needed are this deployment's -----------------


def test_an_upgrade_with_an_external_valkey_needs_no_valkey_container(tmp_path):
    """With `valkey_url` the kit runs no Valkey: the stack is running without one, and the
    upgrade goes ahead (the bundled data, Postgres and uploads, are still the kit's)."""
    external, bundled = tmp_path / "external", tmp_path / "bundled"
    external.mkdir()
    bundled.mkdir()
    directory = upgrade_deployment(external, valkey_url="redis://valkey.example.net:6379/0")
    rows = [row for row in RUNNING if row["Service"] != "valkey"]
    fake = FakeOps(tmp_path)
    state = upgrade.prepare(
        context(directory, FakeCompose(rows)), to="6.2.6", postgres=None, ops=fake.ops()
    )
    assert state.plan.glitchtip_image == "glitchtip/glitchtip:6.2.6"
    # The same stack without the Valkey the kit runs is refused, naming it.
    directory = upgrade_deployment(bundled)
    with pytest.raises(UsageError) as caught:
        upgrade.prepare(
            context(directory, FakeCompose(rows)), to="6.2.6", postgres=None, ops=fake.ops()
        )
    assert caught.value.line() == (
        "the stack is not running (valkey has no container); an upgrade starts from a working "
        "one: start it with `provision up` (and check `provision verify`), then upgrade"
    )


# --- ops/upgrade.step_pull: images are pulled through the deployment's engine ---------------


class RecordingEngine:
    """The engine's image calls: present after a pull."""

    def __init__(self):
        self.images: set[str] = set()
        self.calls: list[str] = []

    def image_present(self, image):
        self.calls.append(f"present? {image}")
        return image in self.images

    def pull(self, image):
        self.calls.append(f"pull {image}")
        self.images.add(image)


def test_the_pull_step_pulls_through_the_deployments_engine(tmp_path):
    """The real pull (`_pull_image`, what `provision upgrade` wires) asks the engine of the
    deployment being upgraded whether it has the image, pulls it, and checks it arrived."""
    directory = upgrade_deployment(tmp_path)
    engine = RecordingEngine()
    compose = FakeCompose()
    ctx = StackContext(
        directory, environ={}, compose_factory=lambda s: compose, engine_factory=lambda: engine
    )
    fake = FakeOps(tmp_path)
    ops = upgrade.UpgradeOps(**{**vars(fake.ops()), "pull_image": upgrade._pull_image})
    state = upgrade.prepare(ctx, to="6.2.6", postgres=None, ops=ops)
    outcome = upgrade.run_upgrade(ctx, state, ops)
    assert outcome.ok, outcome.report.error and outcome.report.error.line()
    pull = next(record for record in outcome.report.records if record.name == "pull")
    assert pull.detail == "1 image(s) present: glitchtip/glitchtip:6.2.6"
    assert engine.calls == [
        "present? glitchtip/glitchtip:6.2.6",
        "pull glitchtip/glitchtip:6.2.6",
        "present? glitchtip/glitchtip:6.2.6",
    ]


# --- ops/upgrade_files.check_settings_text: the .env copy stays in the deployment ----------


def test_the_upgrade_settings_check_never_writes_outside_the_deployment(tmp_path, monkeypatch):
    """The check loads the new glitchtip.yaml beside a copy of `.env` (the deployment's
    secrets) in a scratch directory inside the deployment, never in the system's temporary
    directory: here that one does not exist, and the check still works and leaves nothing."""
    (tmp_path / "dep").mkdir()
    directory = upgrade_deployment(tmp_path / "dep")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-system-tmp"))
    before = sorted(path.name for path in directory.iterdir())
    check_plan_settings(directory, {"glitchtip_major": 6}, {}, environ={})
    assert sorted(path.name for path in directory.iterdir()) == before
    assert not (tmp_path / "no-system-tmp").exists()


# --- ops/upgrade_plan.check_target_values: each refusal names its option whole --------------


@pytest.mark.parametrize(
    ("to", "postgres", "line"),
    [
        (
            "foo;rm -rf /",
            None,
            "--to 'foo;rm -rf /' is not an image reference: use name:tag, e.g. "
            "registry.local/postgres:17.7",
        ),
        ("  ", None, "--to is empty: give a version (6.2.7) or an image (name:tag)"),
        (
            "6.2.7",
            "bad image!",
            "--postgres 'postgres:bad image!' is not an image reference: use name:tag, e.g. "
            "registry.local/postgres:17.7",
        ),
        ("6.2.7", "", "--postgres is empty: give a version (6.2.7) or an image (name:tag)"),
    ],
)
def test_a_target_value_that_is_no_image_is_refused_naming_its_option(to, postgres, line):
    with pytest.raises(UsageError) as caught:
        check_target_values(to, postgres)
    assert caught.value.line() == line


def test_upgrade_to_garbage_names_the_option_on_the_command_line(tmp_path):
    assert cli(tmp_path, "render").exit_code == 0
    assert one_line_error(cli(tmp_path, "upgrade", "--to", "foo;rm -rf /")) == (
        "error: --to 'foo;rm -rf /' is not an image reference: use name:tag, e.g. "
        "registry.local/postgres:17.7"
    )


# --- ops/verify.Verifier.check_event: why the event was not seen, as the error said it ------


def _event_check(tmp_path, monkeypatch, answer) -> str:
    """The event check's detail against the fake GlitchTip, with `answer(request)` in front of
    it (a proxy): its response is sent instead of the fake's where it gives one."""
    import httpx
    from fakeglitchtip import create_superuser, start_fake
    from test_ops_verify import ADMIN, PASSWORD, by_name, deploy
    from test_ops_verify import context as verify_context

    from provision.ops import verify
    from provision.ops.verify import run_verify

    real_client = verify._client

    def proxied_client(timeout: float = verify.HTTP_TIMEOUT):
        forward = real_client(timeout)

        def handle(request: httpx.Request) -> httpx.Response:
            return answer(request) or forward.send(request)

        return httpx.Client(transport=httpx.MockTransport(handle))

    fake = start_fake(worker=True, worker_interval=0.1)
    try:
        create_superuser(fake.store, ADMIN, PASSWORD)
        ctx = verify_context(deploy(tmp_path, fake))
        monkeypatch.setattr(verify, "_client", proxied_client)
        report = run_verify(ctx, checks=["event"], event_timeout=0.2)
    finally:
        fake.stop()
    return by_name(report)["event"].detail


def _events_list(response):
    def answer(request):
        if request.method == "GET" and request.url.path.endswith("/events/"):
            return response
        return None

    return answer


def test_an_events_list_that_is_no_json_is_named_in_the_event_check(tmp_path, monkeypatch):
    """A proxy that answers the events list with a page instead of GlitchTip's JSON: the
    event check's reason is the parser's own message, whole, not only the error's class."""
    import httpx

    page = httpx.Response(200, text="<html>maintenance</html>")
    detail = _event_check(tmp_path, monkeypatch, _events_list(page))
    event_id = detail.split()[1]
    assert detail == (
        f"event {event_id} was accepted but not processed within 0.2 s (Expecting value: line "
        "1 column 1 (char 0)): is the worker running? (`provision logs worker`)"
    )


def test_an_events_list_that_fails_names_its_status_in_the_event_check(tmp_path, monkeypatch):
    import httpx

    detail = _event_check(tmp_path, monkeypatch, _events_list(httpx.Response(502)))
    event_id = detail.split()[1]
    assert detail == (
        f"event {event_id} was accepted but not processed within 0.2 s (the events list "
        "answered HTTP 502): is the worker running? (`provision logs worker`)"
    )


def test_a_store_endpoint_that_cannot_be_reached_fails_the_send(tmp_path, monkeypatch):
    import httpx

    def unreachable(request):
        if request.url.path.endswith("/store/"):
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return None

    detail = _event_check(tmp_path, monkeypatch, unreachable)
    assert detail == (
        "cannot send an event through the DSN (ConnectError: [Errno 111] Connection refused)"
    )


def test_verify_writes_no_rc_file_for_its_own_project(tmp_path, monkeypatch):
    """verify gets or creates its own project through create-project's code, which writes a
    `.glitchtiprc` by default (in the working directory): verify must write none, neither
    where it runs nor over the deployment's own (whose DSN is the user's project)."""
    from fakeglitchtip import create_superuser, start_fake
    from test_ops_verify import ADMIN, PASSWORD, by_name, deploy
    from test_ops_verify import context as verify_context

    from provision.ops.verify import run_verify

    deployment = tmp_path / "deployment"
    deployment.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fake = start_fake(worker=True, worker_interval=0.1)
    try:
        create_superuser(fake.store, ADMIN, PASSWORD)
        ctx = verify_context(deploy(deployment, fake))
        rc_before = (deployment / ".glitchtiprc").read_bytes()
        monkeypatch.chdir(elsewhere)
        report = run_verify(ctx, checks=["event"], event_timeout=10)
    finally:
        fake.stop()
    assert by_name(report)["event"].ok, by_name(report)["event"].detail
    assert list(elsewhere.iterdir()) == []
    assert (deployment / ".glitchtiprc").read_bytes() == rc_before


# --- ops/restore._migrate_and_start: the migrate container's lines are read, not shown ------


def test_restore_runs_the_migrations_through_compose_and_keeps_their_lines_quiet(
    tmp_path, monkeypatch
):
    """The real `run_migrations` streams the migrate container's output line by line to the
    callback restore gives it (Django prints its plan every time): the restore's own lines say
    only that they ran, and a callback that is no callable would fail on the first line."""
    import provision.stack.start

    _target, compose, ctx = restore_deployment(tmp_path, "new", b"", b"", tables=0)
    monkeypatch.setattr(
        provision.stack.start,
        "start",
        lambda c: type("Outcome", (), {"detail": "4 services up"})(),
    )
    lines: list[str] = []
    restore_module._migrate_and_start(ctx, lines.append)
    assert lines == ["migrations ran", "started: 4 services up"]
    assert [call for call in compose.calls() if call.startswith("run ")] == ["run --rm -T migrate"]


# --- ops/restore_files._env_without_identity: a host value the archive never recorded ------


def test_a_host_identity_the_archive_never_recorded_is_kept(tmp_path):
    """This host runs as Compose project `second`; the archive's `.env` has no project name
    (its deployment used the default). Without the host's line the restored deployment would
    be project `glitchtip`: another stack on this engine, beside the running one."""
    from provision.ops.restore_files import plan_files

    host = tmp_path / "host"
    host.mkdir()
    (host / ".env").write_text(
        "SECRET_KEY=b\nGLITCHTIP_KIT_COMPOSE_PROJECT_NAME=second\nPOSTGRES_PASSWORD=host\n"
        "GLITCHTIP_KIT_MAJOR=6\n"
    )
    archived = "SECRET_KEY=a\nPOSTGRES_PASSWORD=old\nGLITCHTIP_KIT_MAJOR=5\n"
    plan = plan_files(host, {".env": archived}, new_host=False)
    assert plan.contents == {
        ".env": "SECRET_KEY=a\nPOSTGRES_PASSWORD=host\nGLITCHTIP_KIT_MAJOR=6\n"
        "GLITCHTIP_KIT_COMPOSE_PROJECT_NAME=second\n"
    }
    assert plan.notes == [
        "kept this host's GLITCHTIP_KIT_COMPOSE_PROJECT_NAME (the archive's with "
        "--archived-identity)"
    ]


# --- ops/upgrade: the default pieces, and the default backup's progress ---------------------


def test_the_upgrades_default_pieces_are_the_real_ones():
    ops = upgrade.default_ops()
    assert vars(ops) == {
        "backup": upgrade._backup,
        "verify": upgrade._verify,
        "restore_database": upgrade._restore_database,
        "server_version": upgrade.server_version,
        "pull_image": upgrade._pull_image,
        "start_stack": upgrade._start_stack,
        "start_postgres": upgrade._start_postgres,
        "volume_exists": upgrade._volume_exists,
        "remove_volume": upgrade._remove_volume,
    }


def test_the_upgrades_backup_writes_the_archive_and_says_how_far_it_is(tmp_path):
    """The upgrade's backup step shows the dump's and the uploads' progress, as `provision
    backup` does (the archive of a large database takes minutes)."""
    from test_ops_pg_upgrade import DUMP

    ctx, _ = pg_deployment(tmp_path, "dep")
    lines: list[str] = []
    archive = upgrade._backup(ctx, lines.append)
    assert read_manifest(archive).members["database.dump"].size == len(DUMP)
    assert lines[0].startswith("pg_dump: ")
    assert lines[-2:] == ["pg_dump: 2.3 MB", "uploads: 7 B"]


def test_the_settings_check_judges_the_edited_settings_not_the_current_ones(tmp_path):
    """The preflight loads glitchtip.yaml as the upgrade would write it: values that would not
    load are refused before anything stops, and the file on disk is unchanged."""
    from provision.errors import SettingsError

    (tmp_path / "dep").mkdir()
    directory = upgrade_deployment(tmp_path / "dep")
    before = (directory / "glitchtip.yaml").read_bytes()
    check_plan_settings(directory, {}, {}, environ={})  # the current settings load
    with pytest.raises(SettingsError) as caught:
        check_plan_settings(directory, {"postgres_image": "postgres:12.1"}, {}, environ={})
    assert caught.value.line() == (
        "postgres_image (from glitchtip.yaml): Postgres 12 is older than 14, which GlitchTip "
        "requires: use Postgres 14 or newer"
    )
    assert (directory / "glitchtip.yaml").read_bytes() == before


# --- ops/verify.Verifier.check_disk: the report's free space to the hundredth of a GiB ------


def test_the_disk_checks_report_keeps_two_decimals(tmp_path, monkeypatch):
    """`verify --json` reports each place's free space in GiB rounded to two decimals (the
    line shows one): a fixed answer of the file system, so the figures are exact."""
    import shutil
    from collections import namedtuple

    from test_verify_lines import deployment as verify_deployment

    from provision.ops.verify import run_verify

    ctx = verify_deployment(tmp_path, "http://127.0.0.1:18999")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, int(12.3456 * 2**30)))
    check = run_verify(ctx, checks=["disk"], min_free_gib=0).checks[0]
    assert check.detail == (
        f"Docker data root {tmp_path}: 12.3 GiB free, deployment dir {tmp_path}: 12.3 GiB free"
    )
    assert check.data == {
        "free_gib": {f"Docker data root {tmp_path}": 12.35, f"deployment dir {tmp_path}": 12.35}
    }
