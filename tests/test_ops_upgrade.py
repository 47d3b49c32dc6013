"""`provision upgrade` steps and rollback over a real deployment directory and fake engines.

The files are real: glitchtip.yaml, .env and compose.yml are rendered by the kit (with a real
`docker compose config`), the settings step edits and renders them for real, and the rollback
restores them for real. What needs an engine (backup, Compose up, Postgres, verify) comes
through `UpgradeOps` fakes that record the order of events and fail on request, so every step
is made to fail once and the rollback is checked: files byte for byte and mode, the database
restored exactly when the new image's migrations may have touched it, the new Postgres volume
removed, and the one line naming the step, the rollback and the backup.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from provision.errors import KitError, UsageError
from provision.ops import upgrade
from provision.ops.upgrade_files import FILES, edit_settings_text
from provision.runtime.process import ProcessResult
from provision.stack.context import StackContext

RUNNING = [
    {"Service": name, "State": "running", "Health": "healthy"}
    for name in ("postgres", "valkey", "web", "worker")
] + [{"Service": "migrate", "State": "exited", "ExitCode": 0}]


class FakeCompose:
    """Compose that records calls and answers `ps` with the given rows."""

    def __init__(self, rows=None):
        self.rows = list(RUNNING if rows is None else rows)
        self.calls: list[tuple[str, ...]] = []

    def run(self, *args, env=None, timeout=None):
        self.calls.append(args)
        return ProcessResult(("compose", *args), 0, "", "")

    def ps(self, *services):
        return [row for row in self.rows if not services or row["Service"] in services]

    def services(self):
        return {}


class FakeOps:
    """UpgradeOps whose engine-bound pieces record what happened and fail on request."""

    def __init__(self, tmp_path: Path, fail: str | None = None, version: str = "5.1.0"):
        self.fail = fail
        self.version = version
        self.events: list[str] = []
        self.backup_path = tmp_path / "backups" / "glitchtip-glitchtip-20261126T000000Z-5.tar"
        self.verify_calls = 0
        self.existing_volumes: set[str] = set()

    def _maybe_fail(self, what: str) -> None:
        if self.fail == what:
            raise KitError(f"injected failure in {what}")

    def ops(self) -> upgrade.UpgradeOps:
        return upgrade.UpgradeOps(
            backup=self.backup,
            verify=self.verify,
            restore_database=self.restore_database,
            server_version=self.server_version,
            pull_image=self.pull_image,
            start_stack=self.start_stack,
            start_postgres=self.start_postgres,
            volume_exists=self.volume_exists,
            remove_volume=self.remove_volume,
        )

    def pull_image(self, ctx, image, note):
        self.events.append(f"pull {image}")
        self._maybe_fail("pull")

    # The real pieces work on the deployment their context (or settings) names: each fake
    # reads it as they do, so a piece handed None instead fails here as it would there.
    def server_version(self, settings):
        str(settings.internal_url)  # the real one asks GlitchTip at this URL
        return self.version

    def volume_exists(self, ctx, name):
        ctx.load_settings()  # the real one asks the deployment's engine
        return name in self.existing_volumes

    def backup(self, ctx, note):
        ctx.load_settings()  # the real backup reads the deployment's settings and Compose
        self.events.append("backup")
        self._maybe_fail("backup")
        return self.backup_path

    def start_postgres(self, ctx):
        image = ctx.load_settings().postgres_image
        self.events.append(f"start postgres {image}")
        self._maybe_fail("start_postgres")
        return int(image.rsplit(":", 1)[1].split(".")[0])

    def restore_database(self, ctx, archive, note):
        ctx.load_settings()  # the real restore streams into the deployment's postgres
        self.events.append(f"restore {Path(archive).name}")
        self._maybe_fail("restore")

    def start_stack(self, ctx):
        # What the stack would run: the image in the settings of record at this moment.
        image = ctx.load_settings().glitchtip_image
        self.events.append(f"start {image}")
        if self.fail == "start" and image.endswith(":6.2.6"):
            raise KitError("the stack did not become healthy: migrate exited 1")
        return "up"

    def remove_volume(self, ctx, name):
        ctx.load_settings()  # the real one asks the deployment's engine
        self.events.append(f"remove volume {name}")

    def verify(self, ctx, timeout):
        # The real verify checks the deployment its context names (its settings, its URL and
        # DSN): read them as it does, so a verify given no context fails as the real one would.
        ctx.load_settings()
        self.verify_calls += 1
        self.events.append("verify")
        if self.fail == "verify" and self.verify_calls == 1:
            return False, "event: not processed within 60 s"
        return True, "7 checks passed"


def deployment(tmp_path: Path, **settings) -> Path:
    """A rendered GlitchTip 5 deployment (glitchtip.yaml, .env, compose files, .glitchtiprc)."""
    from provision.render import write_rendered
    from provision.settings import load_settings

    values = {
        "glitchtip_major": 5,
        "http_port": 18000,
        "compose_project_name": "gtkit",
        **settings,
    }
    text = "# my deployment\n" + "".join(f"{k}: {v}\n" for k, v in values.items())
    (tmp_path / "glitchtip.yaml").write_text(text)
    write_rendered(load_settings(tmp_path, environ={}))
    rc = tmp_path / ".glitchtiprc"
    rc.write_text("[defaults]\nurl = http://0123456789abcdef0123456789abcdef@localhost:18000/1\n")
    rc.chmod(0o600)
    return tmp_path


def files_of(directory: Path) -> dict[str, tuple[bytes, int] | None]:
    found = {}
    for name in FILES:
        path = directory / name
        found[name] = (
            (path.read_bytes(), stat.S_IMODE(path.stat().st_mode)) if path.exists() else None
        )
    return found


def context(directory: Path, compose: FakeCompose) -> StackContext:
    return StackContext(
        directory,
        environ={},
        compose_factory=lambda settings: compose,
        engine_factory=lambda: pytest.fail("the engine is behind UpgradeOps"),
    )


def run(directory: Path, fake: FakeOps, to: str | None = "6.2.6", postgres: str | None = None):
    compose = FakeCompose()
    ctx = context(directory, compose)
    state = upgrade.prepare(ctx, to=to, postgres=postgres, ops=fake.ops())
    outcome = upgrade.run_upgrade(ctx, state, fake.ops())
    return outcome, compose


# --- success ---


def test_major_upgrade_writes_the_settings_renders_6_and_keeps_the_rest(tmp_path):
    directory = deployment(tmp_path)
    env_before = (directory / ".env").read_bytes()
    fake = FakeOps(tmp_path)
    outcome, compose = run(directory, fake)
    assert outcome.ok, outcome.report.error and outcome.report.error.line()
    assert [r.name for r in outcome.report.records] == [
        "pull", "stop", "backup", "settings", "start", "verify"
    ]  # fmt: skip
    assert fake.events == [
        "pull glitchtip/glitchtip:6.2.6",
        "backup",
        "start glitchtip/glitchtip:6.2.6",
        "verify",
    ]
    assert ("stop", "web", "worker") in compose.calls
    settings = (directory / "glitchtip.yaml").read_text()
    assert settings.startswith("# my deployment\nglitchtip_major: 6\n")
    assert "glitchtip_image: glitchtip/glitchtip:6.2.6" in settings
    assert "postgres_image: postgres:17.7" in settings  # not 6's postgres:18.1 on a 17 volume
    assert "valkey_image: valkey/valkey:8.1" in settings
    compose_yml = (directory / "compose.yml").read_text()
    assert "./bin/run-worker.sh" in compose_yml and "run-celery-with-beat" not in compose_yml
    assert "GLITCHTIP_RETENTION_DAYS" in compose_yml
    assert "postgres:17.7" in compose_yml and "/var/lib/postgresql/data" in compose_yml
    env_after = (directory / ".env").read_bytes()
    for key in (b"SECRET_KEY=", b"POSTGRES_PASSWORD=", b"DJANGO_SUPERUSER_PASSWORD="):
        line = next(li for li in env_before.splitlines() if li.startswith(key))
        assert line in env_after.splitlines()  # secrets kept byte for byte
    document = outcome.as_dict()
    assert document["ok"] and document["backup"] == str(fake.backup_path)
    assert "rollback" not in document


def test_postgres_upgrade_moves_to_a_new_volume_and_keeps_the_old_one(tmp_path):
    directory = deployment(tmp_path, glitchtip_major=6, postgres_image="postgres:17.7")
    fake = FakeOps(tmp_path, version="6.2.6")
    outcome, _ = run(directory, fake, to=None, postgres="18.1")
    assert outcome.ok, outcome.report.error and outcome.report.error.line()
    assert fake.events == [
        "pull postgres:18.1",
        "backup",
        "start postgres postgres:18.1",
        f"restore {fake.backup_path.name}",
        "start glitchtip/glitchtip:6.2.6",
        "verify",
    ]
    env = (directory / ".env").read_text()
    assert "GLITCHTIP_KIT_POSTGRES_VOLUME=gtkit_postgres-18" in env
    compose_yml = (directory / "compose.yml").read_text()
    assert "postgres-data:/var/lib/postgresql\n" in compose_yml
    document = outcome.as_dict()
    assert document["remove_old_volume"] == "docker volume rm gtkit_postgres-data"


# --- a failure at every step rolls the files back exactly ---


@pytest.mark.parametrize(
    ("fail", "step", "restored_db", "restarted"),
    [
        ("pull", "pull", False, False),  # nothing stopped yet: the stack keeps serving
        ("backup", "backup", False, True),
        ("settings", "settings", False, True),
        ("start", "start", True, True),
        ("verify", "verify", True, True),
    ],
)
def test_failure_at_each_step_restores_every_file(
    tmp_path, monkeypatch, fail, step, restored_db, restarted
):
    directory = deployment(tmp_path)
    before = files_of(directory)
    fake = FakeOps(tmp_path, fail=fail)
    if fail == "settings":
        from provision import render

        real = render.write_rendered

        def half_render(settings, check=False):
            real(settings, check)  # compose.yml and .env are rewritten for 6 ...
            raise KitError("injected failure after rendering")  # ... then the step fails

        monkeypatch.setattr(render, "write_rendered", half_render)
    outcome, compose = run(directory, fake)
    assert not outcome.ok
    assert outcome.report.error.step == step
    # Before the database is replaced, nothing may write to it: web, worker and a migrate
    # container still running are stopped (a stop Compose refused would leave them writing).
    stops = [call for call in compose.calls if call[0] == "stop"]
    assert (("stop", "web", "worker", "migrate") in stops) == restored_db, compose.calls
    assert files_of(directory) == before  # bytes and modes, every file
    assert outcome.rollback is not None and outcome.rollback.ok, outcome.rollback
    restores = [e for e in fake.events if e.startswith("restore")]
    assert restores == ([f"restore {fake.backup_path.name}"] if restored_db else [])
    starts = [e for e in fake.events if e.startswith("start ")]
    if restarted:
        assert starts[-1] == "start glitchtip/glitchtip:v5.1.0"  # back on the previous image
        assert fake.events[-1] == "verify"
    else:
        assert starts == [] and fake.verify_calls == 0
    line = upgrade.failure_error(outcome).line()
    assert line.startswith(f"upgrade to glitchtip/glitchtip:6.2.6 failed at '{step}'")
    if fail == "pull":
        assert "nothing was changed: glitchtip/glitchtip:v5.1.0 still serves" in line
    else:
        assert "rolled back to glitchtip/glitchtip:v5.1.0" in line
    if fail in ("pull", "backup"):
        assert "no backup was taken" in line or fail == "pull"
    else:
        assert f"backup: {fake.backup_path} (kept)" in line
    if restored_db:
        assert "database restored from the backup" in line


def test_failed_postgres_step_points_back_at_the_old_volume_and_removes_the_new(tmp_path):
    directory = deployment(tmp_path, glitchtip_major=6, postgres_image="postgres:17.7")
    before = files_of(directory)
    fake = FakeOps(tmp_path, fail="restore", version="6.2.6")
    outcome, _ = run(directory, fake, to=None, postgres="18.1")
    assert outcome.report.error.step == "postgres"
    assert files_of(directory) == before
    assert "GLITCHTIP_KIT_POSTGRES_VOLUME" not in (directory / ".env").read_text()
    assert outcome.rollback.ok, outcome.rollback
    # The old volume was never written after the backup: no database restore in the rollback.
    assert fake.events[fake.events.index("backup") :] == [
        "backup",
        "start postgres postgres:18.1",
        f"restore {fake.backup_path.name}",  # the failing restore into the NEW volume
        "start glitchtip/glitchtip:6.2.6",  # the rollback's start, on the old files
        "remove volume gtkit_postgres-18",
        "verify",
    ]


def test_a_failed_rollback_says_so_and_how_to_restore(tmp_path):
    directory = deployment(tmp_path)
    fake = FakeOps(tmp_path, fail="start")
    original = fake.restore_database

    def broken_restore(ctx, archive, note):
        original(ctx, archive, note)
        raise KitError("pg_restore failed (exit 1)")

    fake.restore_database = broken_restore
    outcome, _ = run(directory, fake)
    assert not outcome.rollback.ok
    error = upgrade.failure_error(outcome)
    assert error.exit_code == 1
    line = error.line()
    assert "ROLLBACK FAILED (database: pg_restore failed (exit 1))" in line
    assert f"provision restore {fake.backup_path} --replace" in line


def test_an_interrupt_mid_upgrade_rolls_back_and_exits_130(tmp_path):
    directory = deployment(tmp_path)
    before = files_of(directory)
    fake = FakeOps(tmp_path)

    def interrupted(ctx):
        fake.events.append(f"start {ctx.load_settings().glitchtip_image}")
        if ctx.load_settings().glitchtip_image.endswith(":6.2.6"):
            raise KeyboardInterrupt  # Ctrl-C, or SIGHUP/SIGTERM turned into one
        return "up"

    fake.start_stack = interrupted
    outcome, _ = run(directory, fake)
    assert outcome.report.error.step == "start" and outcome.rollback.ok
    assert files_of(directory) == before
    assert fake.events[-3:] == [
        f"restore {fake.backup_path.name}",
        "start glitchtip/glitchtip:v5.1.0",
        "verify",
    ]
    error = upgrade.failure_error(outcome)
    assert error.exit_code == 130 and "(interrupted)" in error.line()


def test_sigterm_becomes_an_interrupt_only_during_the_steps():
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), upgrade._signals(upgrade._interrupt):
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before
    with upgrade._signals(signal.SIG_IGN, also_sigint=True):
        os.kill(os.getpid(), signal.SIGTERM)  # ignored while rolling back
    assert signal.getsignal(signal.SIGTERM) == before


def test_the_upgrade_handles_sighup_and_sigterm_and_sigint_only_when_asked_then_restores():
    """Inside the block SIGHUP and SIGTERM (a closed terminal, a stop) run the handler, SIGINT
    too only with also_sigint (Python's own Ctrl-C otherwise); every handler is the one before
    afterwards. Off the main thread (where Python cannot set handlers) it is a no-op."""
    import signal
    import threading

    names = ("SIGHUP", "SIGTERM", "SIGINT")
    numbers = [getattr(signal, name) for name in names]
    before = [signal.getsignal(number) for number in numbers]

    def handler(signum, frame):  # pragma: no cover - never delivered here
        raise AssertionError(signum)

    with upgrade._signals(handler):
        assert [signal.getsignal(n) for n in numbers] == [handler, handler, before[2]]
    assert [signal.getsignal(n) for n in numbers] == before
    with upgrade._signals(handler, also_sigint=True):
        assert [signal.getsignal(n) for n in numbers] == [handler, handler, handler]
    assert [signal.getsignal(n) for n in numbers] == before
    seen = []

    def off_main() -> None:
        with upgrade._signals(handler, also_sigint=True):
            seen.append([signal.getsignal(n) for n in numbers])

    thread = threading.Thread(target=off_main)
    thread.start()
    thread.join()
    assert seen == [before]
    assert [signal.getsignal(n) for n in numbers] == before


# --- refusals: nothing changes, nothing runs ---


def test_refused_when_the_stack_is_not_running(tmp_path):
    directory = deployment(tmp_path)
    before = files_of(directory)
    rows = [dict(row) for row in RUNNING]
    rows[2] = {"Service": "web", "State": "exited", "ExitCode": 1}
    fake = FakeOps(tmp_path)
    with pytest.raises(UsageError) as caught:
        upgrade.prepare(
            context(directory, FakeCompose(rows)), to="6.2.6", postgres=None, ops=fake.ops()
        )
    assert "the stack is not running (web is exited)" in caught.value.line()
    assert "provision up" in caught.value.line()
    assert fake.events == [] and files_of(directory) == before


def test_refused_partman_and_downgrade_change_nothing(tmp_path):
    directory = deployment(tmp_path, advanced_partitioning="true")
    before = files_of(directory)
    fake = FakeOps(tmp_path)
    ctx = context(directory, FakeCompose())
    with pytest.raises(UsageError, match="pg_partman"):
        upgrade.prepare(ctx, to="6.2.6", postgres=None, ops=fake.ops())
    fake.version = "5.2.0"  # the running server migrated the database past the image setting
    with pytest.raises(UsageError, match=r"older than GlitchTip 5\.2\.0"):
        upgrade.prepare(
            context(directory, FakeCompose()), to="v5.1.1", postgres=None, ops=fake.ops()
        )
    assert fake.events == [] and files_of(directory) == before


def test_refused_when_the_new_volume_exists(tmp_path):
    directory = deployment(tmp_path, glitchtip_major=6, postgres_image="postgres:17.7")
    fake = FakeOps(tmp_path, version="6.2.6")
    fake.existing_volumes.add("gtkit_postgres-18")
    with pytest.raises(UsageError) as caught:
        upgrade.prepare(context(directory, FakeCompose()), to=None, postgres="18.1", ops=fake.ops())
    assert caught.value.line() == (
        "volume gtkit_postgres-18 already exists (left by an earlier attempt?): check it holds "
        "nothing you need, remove it (`docker volume rm gtkit_postgres-18`), and run the "
        "upgrade again"
    )
    assert fake.events == []


def test_refused_when_the_database_already_lives_in_the_new_volume(tmp_path):
    """.env names the volume the Postgres upgrade would create (a hand-made name): moving the
    database into the volume it is in is refused before anything is done."""
    directory = deployment(tmp_path, glitchtip_major=6, postgres_image="postgres:17.7")
    with (directory / ".env").open("a") as env:
        env.write("GLITCHTIP_KIT_POSTGRES_VOLUME=gtkit_postgres-18\n")
    before = files_of(directory)
    fake = FakeOps(tmp_path, version="6.2.6")
    with pytest.raises(UsageError) as caught:
        upgrade.prepare(context(directory, FakeCompose()), to=None, postgres="18.1", ops=fake.ops())
    assert caught.value.line() == (
        "the database already lives in volume gtkit_postgres-18: nothing to move; check --postgres"
    )
    assert fake.events == [] and files_of(directory) == before


# --- the settings edit ---


def test_edit_settings_text_replaces_in_place_and_appends_the_rest():
    text = "# mine\nglitchtip_major: 5  # old\n# glitchtip_image: x\nhttp_port: 9000\n"
    edited = edit_settings_text(text, {"glitchtip_major": 6, "glitchtip_image": "g/g:6.2.6"}, "T")
    assert edited == (
        "# mine\nglitchtip_major: 6\n# glitchtip_image: x\nhttp_port: 9000\n\n"
        "# set by `provision upgrade` T\nglitchtip_image: g/g:6.2.6\n"
    )


def test_an_invalid_result_is_refused_before_any_write(tmp_path):
    from provision.ops.upgrade_files import write_settings

    directory = deployment(tmp_path)
    before = files_of(directory)
    with pytest.raises(UsageError, match="postgres_data_path"):
        # Postgres 18 at the old data path: the settings refuse it, nothing is written.
        write_settings(
            directory,
            {"postgres_image": "postgres:18.1", "postgres_data_path": "/var/lib/postgresql/data"},
            {},
            "T",
        )
    assert files_of(directory) == before
    assert not [p for p in directory.iterdir() if p.name.startswith(".upgrade-check-")]


def test_the_postgres_volume_is_read_from_compose_config():
    class ConfigCompose(FakeCompose):
        def run(self, *args, env=None, timeout=None):
            if args[:1] == ("config",):
                stdout = '{"volumes": {"postgres-data": {"name": "gtkit_postgres-18"}}}'
                return ProcessResult(("compose", *args), 0, stdout, "")
            return super().run(*args, env=env, timeout=timeout)

    assert upgrade.postgres_volume_name(ConfigCompose()) == "gtkit_postgres-18"
    assert upgrade.postgres_volume_name(FakeCompose()) is None  # no JSON: the caller falls back


def test_the_postgres_volume_is_none_whenever_compose_config_cannot_name_it():
    """None (the caller falls back to .env, then `<project>_postgres-data`) for a failed
    `compose config`, another JSON shape, another volume, or a volume without a name."""
    from test_database_lines import Answering

    named = Answering(0, '{"volumes": {"postgres-data": {"name": "kept_pg"}}}')
    assert upgrade.postgres_volume_name(named) == "kept_pg"
    [(args, timeout)] = named.calls
    assert args == ("config", "--format", "json")
    assert timeout is not None and 0 < timeout <= 120  # a hung Compose is not waited on
    for answer in (
        Answering(1, '{"volumes": {"postgres-data": {"name": "kept_pg"}}}', "no such file"),
        Answering(0, '["postgres-data"]'),
        Answering(0, '{"volumes": ["postgres-data"]}'),
        Answering(0, '{"volumes": {"postgres-data": ["kept_pg"]}}'),
        Answering(0, '{"volumes": {"uploads": {"name": "kept_pg"}}}'),
        Answering(0, '{"volumes": {"postgres-data": {"name": ""}}}'),
        Answering(0, '{"volumes": {"postgres-data": null}}'),
    ):
        assert upgrade.postgres_volume_name(answer) is None, answer.result


def test_an_unexpected_rollback_error_is_one_line_without_secrets(tmp_path):
    from provision.envfile import read_env_file

    directory = deployment(tmp_path)
    password = read_env_file(directory / ".env")["POSTGRES_PASSWORD"]
    fake = FakeOps(tmp_path, fail="start")

    def crash(ctx, archive, note):
        raise RuntimeError(f"connection to postgres://glitchtip:{password}@postgres failed")

    fake.restore_database = crash
    outcome, _ = run(directory, fake)
    line = upgrade.failure_error(outcome).line()
    assert "ROLLBACK FAILED (database: RuntimeError: connection to postgres://" in line
    assert password not in line and "\n" not in line


def test_a_rollback_puts_back_every_rendered_file_metrics_and_monitoring_included(tmp_path):
    """compose.metrics.yml names the GlitchTip image and monitoring/ holds per-major scrape
    settings: after a rolled-back 5 -> 6 they must be the 5 files again, byte for byte."""
    from provision.ops.upgrade_files import restore_snapshot, take_snapshot

    (tmp_path / "compose.yml").write_text("old compose\n")
    (tmp_path / "compose.metrics.yml").write_text("image: glitchtip:5\n")
    (tmp_path / "monitoring" / "prometheus").mkdir(parents=True)
    scrape = tmp_path / "monitoring" / "prometheus" / "prometheus.yml"
    scrape.write_text("metrics_path: /api/0/observability/django/\n")
    snapshot = take_snapshot(tmp_path)
    (tmp_path / "compose.metrics.yml").write_text("image: glitchtip:6\n")
    scrape.write_text("metrics_path: /metrics\n")
    (tmp_path / "compose.part.yml").write_text("created by the upgrade\n")
    restored = restore_snapshot(snapshot)
    assert sorted(restored) == [
        "compose.metrics.yml",
        "compose.part.yml",
        "monitoring/prometheus/prometheus.yml",
    ]
    assert (tmp_path / "compose.metrics.yml").read_text() == "image: glitchtip:5\n"
    assert scrape.read_text() == "metrics_path: /api/0/observability/django/\n"
    assert not (tmp_path / "compose.part.yml").exists()


def test_pull_image_uses_a_local_image_pulls_a_missing_one_and_says_why_it_failed() -> None:
    """`upgrade`'s pull step against a stand-in engine: an image already there (loaded with
    `docker load` on an air-gapped host) is not pulled; a missing one is; a failed pull and a
    pull that leaves no image are one line each with the fix."""
    from types import SimpleNamespace

    from provision.errors import KitError
    from provision.ops.upgrade import _pull_image

    class Engine:
        """Images by reference, as the engine keeps them: a pull adds the one it names (unless
        `keeps` is False: a pull that leaves no image)."""

        def __init__(self, images: set[str], fails: bool = False, keeps: bool = True) -> None:
            self.images, self.fails, self.keeps, self.pulled = images, fails, keeps, []
            self.client = SimpleNamespace(api=SimpleNamespace(pull=self.pulled.append))

        def image_present(self, image: str) -> bool:
            return image in self.images

        def pull(self, image: str) -> None:  # as runtime.engine.Engine.pull: one KitError
            if self.fails:
                raise KitError("the Docker engine does not answer")
            self.client.api.pull(image)
            if self.keeps:
                self.images.add(image)

    def ctx_with(engine: Engine) -> SimpleNamespace:
        return SimpleNamespace(engine=lambda: engine)

    notes: list[str] = []
    here = Engine({"glitchtip:6.1"})
    _pull_image(ctx_with(here), "glitchtip:6.1", notes.append)
    assert notes == ["glitchtip:6.1 present locally"] and here.pulled == []
    notes.clear()
    missing = Engine({"glitchtip:6.0"})
    _pull_image(ctx_with(missing), "glitchtip:6.1", notes.append)
    assert notes == ["pulling glitchtip:6.1"] and missing.pulled == ["glitchtip:6.1"]
    with pytest.raises(KitError) as refused:
        _pull_image(ctx_with(Engine(set(), fails=True)), "glitchtip:6.1", notes.append)
    assert refused.value.message == (
        "cannot pull image glitchtip:6.1 (the Docker engine does not answer)"
    )
    assert refused.value.fix == (
        "load it with `docker load -i FILE`, or give --to a mirror's copy (registry/name:tag)"
    )
    with pytest.raises(KitError) as refused:
        _pull_image(ctx_with(Engine(set(), keeps=False)), "glitchtip:6.1", notes.append)
    assert refused.value.message == "image glitchtip:6.1 is not present after pulling"


def test_a_step_refused_as_bad_input_mid_upgrade_exits_1_not_2(tmp_path):
    """Exit 2 promises "bad input, every file as it was"; once the upgrade ran its steps that
    no longer holds, so a step's UsageError ends the upgrade with 1 (a backup step refusing a
    target directory, say). Other codes (130 for an interrupt) are kept."""
    directory = deployment(tmp_path)
    fake = FakeOps(tmp_path)

    def refused_backup(ctx, note):
        fake.events.append("backup")
        raise UsageError("backups/ is not a directory", "remove it")

    fake.backup = refused_backup
    outcome, _ = run(directory, fake)
    assert outcome.report.error.step == "backup" and outcome.rollback.ok
    error = upgrade.failure_error(outcome)
    assert error.exit_code == 1
    assert error.line() == (
        "upgrade to glitchtip/glitchtip:6.2.6 failed at 'backup' (backups/ is not a directory: "
        "remove it); rolled back to glitchtip/glitchtip:v5.1.0: stack up, verify passed: no "
        "backup was taken; fix the cause, then run `provision upgrade` again"
    )


def test_a_failed_pull_rolls_back_nothing_and_the_json_says_so(tmp_path):
    """A pull fails before any file or service changed: `--json` reports a rollback that had
    nothing to undo, never an empty list a reader takes for "nothing was tried"."""
    directory = deployment(tmp_path)
    before = files_of(directory)
    fake = FakeOps(tmp_path, fail="pull")
    outcome, _ = run(directory, fake)
    assert files_of(directory) == before
    document = outcome.as_dict()
    assert document["rollback"] == {"ok": True, "done": ["nothing had changed"], "problem": ""}
    assert document["error"] == {"step": "pull", "cause": "injected failure in pull"}


def test_a_rollback_puts_back_the_proxy_files_of_a_deployment_without_monitoring(tmp_path):
    """A deployment without metrics has no monitoring/ at all: the proxy's and the secrets'
    rendered files after it are still in the snapshot, and put back."""
    from provision.ops.upgrade_files import restore_snapshot, take_snapshot

    (tmp_path / "proxy").mkdir()
    caddyfile = tmp_path / "proxy" / "Caddyfile"
    caddyfile.write_text("reverse_proxy web:8080\n")
    (tmp_path / "secrets").mkdir()
    password = tmp_path / "secrets" / "postgres_password"
    password.write_text("old\n")
    password.chmod(0o600)
    snapshot = take_snapshot(tmp_path)
    caddyfile.write_text("reverse_proxy web:8000\n")
    password.write_text("new\n")
    assert restore_snapshot(snapshot) == ["proxy/Caddyfile", "secrets/postgres_password"]
    assert caddyfile.read_text() == "reverse_proxy web:8080\n"
    assert password.read_text() == "old\n" and stat.S_IMODE(password.stat().st_mode) == 0o600


def test_the_verify_step_passes_on_every_check_and_names_each_failed_one(monkeypatch):
    """What `upgrade` prints of its verify step (and decides by): the count when all passed,
    each failed check with its detail otherwise, with the event timeout given through."""
    from provision.ops import verify
    from provision.ops.verify import Check, VerifyReport

    seen = []

    def fake_verify(ctx, event_timeout):
        seen.append((ctx, event_timeout))
        return report

    monkeypatch.setattr(verify, "run_verify", fake_verify)
    report = VerifyReport([Check("health", True, "200"), Check("event", True, "stored in 1 s")])
    assert upgrade._verify("ctx", 45.0) == (True, "2 checks passed")
    report = VerifyReport(
        [
            Check("health", True, "200"),
            Check("token", False, "401 Unauthorized"),
            Check("event", False, "not processed within 45 s"),
        ]
    )
    assert upgrade._verify("ctx", 45.0) == (
        False,
        "token: 401 Unauthorized; event: not processed within 45 s",
    )
    assert seen == [("ctx", 45.0), ("ctx", 45.0)]


def test_the_snapshot_holds_each_regular_file_and_never_a_link_and_a_mode_is_put_back(tmp_path):
    """What a rollback can put back: every name of FILES (None when absent or not a regular
    file), then the regular files under monitoring/, proxy/, secrets/ and python/ in a fixed
    order; links are neither followed nor kept (a linked directory is skipped whole). A file
    whose mode alone changed is put back too."""
    import os

    from provision.ops.upgrade_files import restore_snapshot, take_snapshot

    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret").write_text("not the kit's\n")
    (outside / "dir" / "Caddyfile").write_text("not the kit's\n")
    root = tmp_path / "deployment"
    root.mkdir()
    (root / "glitchtip.yaml").write_text("http_port: 9000\n")
    (root / "glitchtip.yaml").chmod(0o644)
    (root / ".env").write_text("A=1\n")
    (root / ".env").chmod(0o600)
    (root / "compose.locust.yml").mkdir()  # not a regular file: nothing to put back
    (root / "monitoring").mkdir()
    made = ["e.yml", "b.yml", "d.yml", "c/y.yml", "a/x.yml", "f/z.yml"]
    for name in made:
        (root / "monitoring" / name).parent.mkdir(exist_ok=True)
        (root / "monitoring" / name).write_text(f"{name}\n")
        (root / "monitoring" / name).chmod(0o644)
    (root / "monitoring" / "link.yml").symlink_to(outside / "secret")
    (root / "monitoring" / "linked").symlink_to(outside / "dir", target_is_directory=True)
    os.mkfifo(root / "monitoring" / "pipe")
    (root / "proxy").symlink_to(outside / "dir", target_is_directory=True)
    (root / "secrets").mkdir()
    (root / "secrets" / "postgres_password").write_text("pw\n")
    (root / "secrets" / "postgres_password").chmod(0o600)
    snapshot = take_snapshot(root)
    assert list(snapshot.files.items()) == [
        ("glitchtip.yaml", (b"http_port: 9000\n", 0o644)),
        (".env", (b"A=1\n", 0o600)),
        ("compose.yml", None),
        ("compose.part.yml", None),
        ("compose.metrics.yml", None),
        ("compose.locust.yml", None),
        (".glitchtiprc", None),
        *[
            (f"monitoring/{name}", (f"{name}\n".encode(), 0o644))
            for name in ("b.yml", "d.yml", "e.yml", "a/x.yml", "c/y.yml", "f/z.yml")
        ],
        ("secrets/postgres_password", (b"pw\n", 0o600)),
    ]
    (root / "glitchtip.yaml").chmod(0o600)
    (root / "secrets" / "postgres_password").chmod(0o644)
    assert restore_snapshot(snapshot) == ["glitchtip.yaml", "secrets/postgres_password"]
    assert stat.S_IMODE((root / "glitchtip.yaml").stat().st_mode) == 0o644
    assert stat.S_IMODE((root / "secrets" / "postgres_password").stat().st_mode) == 0o600
    assert restore_snapshot(snapshot) == []
    assert (outside / "secret").read_text() == "not the kit's\n"


def test_a_long_cause_is_cut_to_its_first_220_characters_in_the_one_line(tmp_path):
    """The log keeps a failed step's whole cause; the one line shows its first CAUSE_CHARS
    characters and an ellipsis, so a page of Compose output cannot bury what to do next."""
    directory = deployment(tmp_path)
    fake = FakeOps(tmp_path)

    def failing(ctx):
        fake.events.append(f"start {ctx.load_settings().glitchtip_image}")
        if ctx.load_settings().glitchtip_image.endswith(":6.2.6"):
            raise KitError("web is unhealthy: " + "x" * 300)
        return "up"

    fake.start_stack = failing
    outcome, _ = run(directory, fake)
    assert outcome.report.error.step == "start" and outcome.rollback.ok
    cause = ("web is unhealthy: " + "x" * 300)[: upgrade.CAUSE_CHARS]
    assert upgrade.CAUSE_CHARS == 220
    assert (
        upgrade.failure_error(outcome)
        .line()
        .startswith(
            f"upgrade to glitchtip/glitchtip:6.2.6 failed at 'start' ({cause}...); rolled back to "
            "glitchtip/glitchtip:v5.1.0: "
        )
    )
