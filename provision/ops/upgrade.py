"""`provision upgrade`: a new GlitchTip image (and major) or Postgres major, or back where it was.

The steps, in order (the plan in `upgrade_plan` decides which run):

    preflight  nothing changes: the stack runs, the version it reports, the plan and its refusals
    pull       the target images, while GlitchTip still serves (no downtime yet)
    stop       web and worker stop: no event is written after the backup
    backup     `provision backup` of that quiet state (the rollback's database source)
    settings   glitchtip.yaml (and .env for a new Postgres volume) written, files rendered
    postgres   Postgres major only: the new server on a new volume, the backup's dump restored
    start      `compose up --wait`: migrations by the new image, then web and worker
    verify     `provision verify`, an event through the DSN included

On any failure after preflight the upgrade rolls back: every file back byte for byte (so the
previous images and volume), the database restored from the backup when the new image's
migrations may have touched it (a Postgres major upgrade never writes the old volume, so it
needs no restore), the stack started and verified. One line then says what failed, what was
done, and where the backup is. Pieces from other modules (backup, verify, the database restore,
the version GlitchTip reports) come through `UpgradeOps`, so tests can inject failures.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import KitError, UsageError
from provision.ops.upgrade_plan import POSTGRES_VOLUME_KEY, Current, UpgradePlan, make_plan

STATE = "upgrade"
CAUSE_CHARS = 220  # of a failed step's cause in the one line (the log has the rest)
APP_SERVICES = ("web", "worker")  # the services that write events; stopped before the backup


@dataclass
class UpgradeOps:
    """What the upgrade asks of the engine and of other modules; `default_ops()` wires the real
    ones. The files (settings, render, snapshot, rollback of files) are never behind this seam:
    tests run them for real and inject failures here."""

    backup: Callable[[Any, Callable[[str], None]], Path]
    verify: Callable[[Any, float], tuple[bool, str]]
    restore_database: Callable[[Any, Path, Callable[[str], None]], Any]
    server_version: Callable[[Any], str | None]
    pull_image: Callable[[Any, str, Callable[[str], None]], None]
    start_stack: Callable[[Any], str]  # compose up --wait, migrate exited 0
    start_postgres: Callable[[Any], int]  # postgres alone; its server major
    volume_exists: Callable[[Any, str], bool]
    remove_volume: Callable[[Any, str], None]


def _backup(ctx: Any, progress: Callable[[str], None]) -> Path:
    from provision.ops.backup import create_backup

    return create_backup(ctx, progress=progress).path


def _verify(ctx: Any, event_timeout: float) -> tuple[bool, str]:
    from provision.ops.verify import run_verify

    report = run_verify(ctx, event_timeout=event_timeout)
    if report.ok:
        return True, f"{len(report.checks)} checks passed"
    failed = "; ".join(f"{c.name}: {c.detail}" for c in report.failed())
    return False, failed


def _restore_database(ctx: Any, archive: Path, progress: Callable[[str], None]) -> int:
    from provision.ops.pg_upgrade import restore_database

    return restore_database(ctx, archive, progress)


def server_version(settings: Any) -> str | None:
    """The version the running GlitchTip reports (`GET /api/settings/`, a recorded endpoint)."""
    import httpx

    from provision.api.client import tls_context

    url = f"{str(settings.internal_url).rstrip('/')}/api/settings/"
    try:
        response = httpx.get(url, timeout=10.0, verify=tls_context())
    except httpx.HTTPError as exc:
        raise KitError(
            f"GlitchTip does not answer at {url} ({exc.__class__.__name__})",
            "see `provision status`; the upgrade needs a running, healthy stack",
        ) from None
    if response.status_code != 200:
        raise KitError(
            f"{url} answered HTTP {response.status_code}",
            "see `provision status` and `provision logs web`",
        )
    try:
        version = response.json().get("version")
    except (ValueError, AttributeError):
        return None
    return str(version) if version else None


def _pull_image(ctx: Any, image: str, note: Callable[[str], None]) -> None:
    """Pull `image` unless the engine has it (an air-gapped host loads it with docker load)."""
    engine = ctx.engine()
    if engine.image_present(image):
        note(f"{image} present locally")
        return
    note(f"pulling {image}")
    try:
        engine.pull(image)
    except KitError as error:
        raise KitError(
            f"cannot pull image {image} ({error.message})",
            "load it with `docker load -i FILE`, or give --to a mirror's copy (registry/name:tag)",
        ) from None
    if not engine.image_present(image):
        raise KitError(f"image {image} is not present after pulling", "pull it by hand")


def _start_stack(ctx: Any) -> str:
    from provision.stack.migrate import check_migrate
    from provision.stack.start import start

    outcome = start(ctx)
    migrated = check_migrate(ctx)
    return f"{migrated.detail}; {outcome.detail}"


def _start_postgres(ctx: Any) -> int:
    from provision.ops.pg_upgrade import start_postgres

    return start_postgres(ctx)


def _volume_exists(ctx: Any, name: str) -> bool:
    return ctx.engine().volume_exists(name)


def _remove_volume(ctx: Any, name: str) -> None:
    """Remove a new, unused volume of a failed upgrade; absent is fine."""
    ctx.engine().remove_volume(name)


def default_ops() -> UpgradeOps:
    """The real pieces: O1's backup and verify, the engine, Compose."""
    return UpgradeOps(
        backup=_backup,
        verify=_verify,
        restore_database=_restore_database,
        server_version=server_version,
        pull_image=_pull_image,
        start_stack=_start_stack,
        start_postgres=_start_postgres,
        volume_exists=_volume_exists,
        remove_volume=_remove_volume,
    )


@dataclass
class UpgradeState:
    """What the run has done so far: what the rollback must undo."""

    plan: UpgradePlan
    snapshot: Any  # upgrade_files.Snapshot
    event_timeout: float = 60.0
    backup: Path | None = None
    stopped: bool = False
    files_written: bool = False
    db_touched: bool = False  # the new image's migrations may have run on the current volume
    new_volume_created: bool = False


# --- preflight (nothing changes) ---


def _rows_by_service(compose: Any) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for row in compose.ps():
        rows[row.get("Service", "")] = row
    return rows


def check_running(compose: Any, needed: tuple[str, ...]) -> None:
    """Refuse unless postgres, valkey, web and worker (`needed`: without the external ones)
    run, healthy where they have a check."""
    rows = _rows_by_service(compose)
    bad = []
    for service in needed:
        row = rows.get(service)
        if row is None:
            bad.append(f"{service} has no container")
        elif row.get("State") != "running":
            bad.append(f"{service} is {row.get('State') or 'not running'}")
        elif row.get("Health") not in (None, "", "healthy"):
            bad.append(f"{service} is {row.get('Health')}")
    if bad:
        raise UsageError(
            f"the stack is not running ({', '.join(bad)}); an upgrade starts from a working one",
            "start it with `provision up` (and check `provision verify`), then upgrade",
        )


def postgres_volume_name(compose: Any) -> str | None:
    """The engine's name of the Postgres volume as Compose resolves it (interpolation
    included), or None when Compose cannot say."""
    import json

    result = compose.run("config", "--format", "json", timeout=60)
    if not result.ok:
        return None
    try:
        volume = json.loads(result.stdout).get("volumes", {}).get("postgres-data") or {}
    except (ValueError, AttributeError):
        return None
    name = volume.get("name") if isinstance(volume, dict) else None
    return str(name) if name else None


def current_state(ctx: Any, ops: UpgradeOps) -> Current:
    """What runs now: the settings of record, the Postgres server's major, GlitchTip's version."""
    from provision.deployment import uses_partman
    from provision.envfile import read_env_file
    from provision.ops import database

    settings = ctx.load_settings()
    from provision.profiles import is_minimal

    if is_minimal(settings):  # its steps and rollback stop, check and restart worker and Valkey
        raise UsageError(
            "provision upgrade runs on profile standard only, not on profile minimal",
            "switch first (profile: standard in glitchtip.yaml, or `provision up --set "
            "profile=standard`), upgrade, then switch back to minimal",
        )
    from provision.ops.bundled import require_bundled_data, running_services

    require_bundled_data(settings, "upgrade")
    compose = ctx.compose()
    check_running(compose, running_services(settings))
    version = ops.server_version(settings)
    try:
        pg_major = database.server_major(compose, database.Database.of(ctx.services()))
    except KitError:
        pg_major = int(settings.postgres_version)
    project = str(settings.compose_project_name)
    volume = postgres_volume_name(compose) or (
        read_env_file(Path(settings.directory) / ".env").get(POSTGRES_VOLUME_KEY)
        or f"{project}_postgres-data"
    )
    return Current(
        major=int(settings.glitchtip_major),
        glitchtip_image=str(settings.glitchtip_image),
        postgres_image=str(settings.postgres_image),
        postgres_major=pg_major,
        valkey_image=str(settings.valkey_image),
        partman=uses_partman(settings),
        compose_project_name=project,
        postgres_volume=volume,
        server_version=version,
        partman_image=str(settings.partman_image),
        sources=dict(settings.sources),
    )


def prepare(
    ctx: Any,
    *,
    to: str | None,
    postgres: str | None,
    ops: UpgradeOps,
    event_timeout: float = 60.0,
) -> UpgradeState:
    """Preflight: the plan and its refusals, and the files as they are. Changes nothing."""
    from provision.ops.upgrade_files import check_plan_settings, take_snapshot
    from provision.ops.upgrade_plan import check_target_values

    # Bad input is refused before the engine is asked (the settings are files only).
    check_target_values(to, postgres, ctx.load_settings().glitchtip_image)
    current = current_state(ctx, ops)
    plan = make_plan(current, to, postgres)
    # The settings the upgrade would write, loaded as the kit will: a bad result is refused now.
    check_plan_settings(ctx.directory, plan.settings, plan.env, ctx.environ)
    if plan.postgres_upgrade:
        from provision.ops.pg_upgrade import removal_command

        new = plan.new_volume
        assert new is not None
        if new == current.postgres_volume:
            raise UsageError(
                f"the database already lives in volume {new}", "nothing to move; check --postgres"
            )
        if ops.volume_exists(ctx, new):
            raise UsageError(
                f"volume {new} already exists (left by an earlier attempt?)",
                f"check it holds nothing you need, remove it (`{removal_command(new)}`), and "
                "run the upgrade again",
            )
    return UpgradeState(plan, take_snapshot(ctx.directory), event_timeout=event_timeout)


# --- the steps that change things ---


def _state(ctx: Any) -> UpgradeState:
    return ctx.results[STATE]


def _reload(ctx: Any) -> None:
    """Forget the settings and services read so far: the files just changed."""
    ctx.files_changed()


def step_pull(ctx: Any, ops: UpgradeOps) -> str:
    plan = _state(ctx).plan
    images = [plan.glitchtip_image] if plan.glitchtip_changes else []
    if plan.postgres_image != plan.current.postgres_image:
        images.append(plan.postgres_image)
    for image in images:
        ops.pull_image(ctx, image, ctx.note)
    return f"{len(images)} image(s) present: {', '.join(images)}"


def step_stop(ctx: Any) -> str:
    state = _state(ctx)
    state.stopped = True  # set first: a stop that half-happened is undone too
    result = ctx.compose().run("stop", *APP_SERVICES, timeout=180)
    if not result.ok:
        raise KitError(f"cannot stop {' and '.join(APP_SERVICES)} ({result.last_lines(2)})")
    return f"{' and '.join(APP_SERVICES)} stopped: GlitchTip is down from here to `start`"


def step_backup(ctx: Any, ops: UpgradeOps) -> str:
    state = _state(ctx)
    state.backup = ops.backup(ctx, ctx.note)
    return f"backup: {state.backup}"


def step_settings(ctx: Any) -> str:
    from provision.ops.upgrade_files import write_settings
    from provision.stack.render_step import render

    state = _state(ctx)
    plan = state.plan
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    state.files_written = True  # before: a half-done write is undone too
    write_settings(ctx.directory, plan.settings, plan.env, stamp, ctx.environ)
    _reload(ctx)
    outcome = render(ctx)
    changed = ", ".join(f"{k}: {v}" for k, v in plan.settings.items()) or "none"
    return f"glitchtip.yaml: {changed}; {outcome.detail}"


def step_postgres(ctx: Any, ops: UpgradeOps) -> str:
    state = _state(ctx)
    plan = state.plan
    assert state.backup is not None
    state.new_volume_created = True
    major = ops.start_postgres(ctx)
    if major != plan.postgres_major:
        raise KitError(
            f"the new postgres server reports Postgres {major}, not {plan.postgres_major}",
            "check postgres_image",
        )
    ops.restore_database(ctx, state.backup, ctx.note)
    return (
        f"Postgres {plan.current.postgres_major} -> {major}: dump restored into volume "
        f"{plan.new_volume}; {plan.current.postgres_volume} kept as it was"
    )


def step_start(ctx: Any, ops: UpgradeOps) -> str:
    state = _state(ctx)
    if not state.plan.postgres_upgrade:
        state.db_touched = True  # the new image's migrate runs on the only copy
    return ops.start_stack(ctx)


def step_verify(ctx: Any, ops: UpgradeOps) -> str:
    ok, detail = ops.verify(ctx, _state(ctx).event_timeout)
    if not ok:
        raise KitError(f"verify failed: {detail}")
    return detail


def steps_for(plan: UpgradePlan, ops: UpgradeOps) -> list:
    from provision.steps import Step

    table = {
        "pull": Step("pull", "target images, while GlitchTip serves", lambda c: step_pull(c, ops)),
        "stop": Step("stop", "web and worker stop (no writes after the backup)", step_stop),
        "backup": Step("backup", "database, uploads, files", lambda c: step_backup(c, ops)),
        "settings": Step("settings", "glitchtip.yaml and .env, then render", step_settings),
        "postgres": Step(
            "postgres", "new server, new volume, dump restored", lambda c: step_postgres(c, ops)
        ),
        "start": Step("start", "migrations by the new image, then web and worker",
                      lambda c: step_start(c, ops)),
        "verify": Step("verify", "provision verify (an event through the DSN)",
                       lambda c: step_verify(c, ops)),
    }  # fmt: skip
    return [table[name] for name in plan.steps() if name in table]


# --- rollback ---


@dataclass
class RollbackResult:
    ok: bool
    done: list[str]
    problem: str = ""


def rollback(ctx: Any, state: UpgradeState, ops: UpgradeOps) -> RollbackResult:
    """Back to the previous images, files and database; see the module docstring."""
    from provision.ops.pg_upgrade import removal_command
    from provision.ops.upgrade_files import restore_snapshot

    done: list[str] = []
    note = ctx.note

    def record(short: str, detail: str | None = None) -> None:
        done.append(short)
        note(f"rollback: {detail or short}")

    what = "files"
    try:
        if state.files_written:
            restored = restore_snapshot(state.snapshot)
            _reload(ctx)
            record("files restored", f"files restored ({', '.join(restored) or 'none changed'})")
        if not state.stopped:
            return RollbackResult(True, done or ["nothing had changed"])
        if state.db_touched:
            what = "database"
            if state.backup is None:
                raise KitError("no backup to restore the database from")
            ctx.compose().run("stop", *APP_SERVICES, "migrate", timeout=180)
            ops.start_postgres(ctx)
            note(f"restoring the database from {state.backup}")
            ops.restore_database(ctx, state.backup, note)
            record("database restored from the backup")
        what = "start"
        _reload(ctx)
        ops.start_stack(ctx)
        record("stack up", f"stack up on {state.plan.current.glitchtip_image}")
        if state.new_volume_created and state.plan.new_volume:
            what = "volume"
            try:
                ops.remove_volume(ctx, state.plan.new_volume)
                record(f"new volume {state.plan.new_volume} removed")
            except KitError as error:
                record(
                    f"new volume {state.plan.new_volume} left behind ({error.message}): "
                    f"`{removal_command(state.plan.new_volume)}`"
                )
        what = "verify"
        ok, detail = ops.verify(ctx, state.event_timeout)
        if not ok:
            return RollbackResult(False, done, f"verify after the rollback failed: {detail}")
        record("verify passed")
        return RollbackResult(True, done)
    except KitError as error:
        return RollbackResult(False, done, f"{what}: {error.line()}")
    except Exception as error:  # the net: the operator still gets the backup's path
        from provision.steps import cause_of  # one line, secrets of .env masked

        return RollbackResult(False, done, f"{what}: {cause_of(error, ctx)}")


# --- the whole run ---


@dataclass
class UpgradeOutcome:
    """The report of one run: the step records, and on failure the rollback."""

    state: UpgradeState
    report: Any  # runner.RunReport
    rollback: RollbackResult | None = None

    @property
    def ok(self) -> bool:
        return self.report.ok

    def as_dict(self) -> dict[str, Any]:
        from provision.ops.pg_upgrade import removal_command

        plan = self.state.plan
        document: dict[str, Any] = {
            "ok": self.ok,
            "plan": plan.as_dict(),
            "backup": str(self.state.backup) if self.state.backup else None,
            "steps": [record.as_dict() for record in self.report.records],
            "elapsed_s": round(self.report.elapsed, 2),
        }
        if self.ok and plan.postgres_upgrade:
            document["old_volume"] = plan.current.postgres_volume
            document["remove_old_volume"] = removal_command(plan.current.postgres_volume)
        if self.report.error is not None:
            document["error"] = {"step": self.report.error.step, "cause": self.report.error.cause}
        if self.rollback is not None:
            document["rollback"] = {
                "ok": self.rollback.ok,
                "done": self.rollback.done,
                "problem": self.rollback.problem,
            }
        return document


def run_upgrade(ctx: Any, state: UpgradeState, ops: UpgradeOps, progress: Any = None):
    """Run the steps of `state.plan`; on a failure roll back. Never raises a `KitError` for a
    failed step (the outcome carries it); `failure_error(outcome)` is the one line to show."""
    from provision.steps import Progress, run_steps

    progress = progress or Progress()
    ctx.results[STATE] = state
    # A closed SSH session (SIGHUP) or a `kill` (SIGTERM) mid-upgrade must roll back like
    # Ctrl-C does (the runner turns KeyboardInterrupt into a failed step), not leave the stack
    # half-upgraded; during the rollback those signals are ignored until it is done.
    with _signals(_interrupt):
        report = run_steps(steps_for(state.plan, ops), ctx, progress)
    outcome = UpgradeOutcome(state, report)
    if report.error is not None:
        progress.note(f"upgrade failed at '{report.error.step}': rolling back")
        with _signals(signal.SIG_IGN, also_sigint=True):
            outcome.rollback = rollback(ctx, state, ops)
    return outcome


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals(handler: Any, also_sigint: bool = False) -> Iterator[None]:
    """`handler` for SIGHUP and SIGTERM (and SIGINT) inside the block; a no-op off the main
    thread, where Python cannot set handlers."""
    names = ["SIGHUP", "SIGTERM"] + (["SIGINT"] if also_sigint else [])
    previous = {}
    try:
        for name in names:
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def failure_error(outcome: UpgradeOutcome) -> KitError:
    """The one line for a failed upgrade: what failed, what the rollback did, the backup."""
    state = outcome.state
    error = outcome.report.error
    assert error is not None and outcome.rollback is not None
    backup = f"backup: {state.backup}" if state.backup else "no backup was taken"
    previous = state.plan.current.glitchtip_image
    cause = error.cause if len(error.cause) <= CAUSE_CHARS else error.cause[:CAUSE_CHARS] + "..."
    head = f"upgrade to {state.plan.glitchtip_image} failed at '{error.step}' ({cause})"
    if outcome.rollback.ok and not state.stopped:
        failed = KitError(
            f"{head}; nothing was changed: {previous} still serves",
            "fix the cause, then run `provision upgrade` again",
        )
    elif outcome.rollback.ok:
        undone = ", ".join(outcome.rollback.done)
        kept = f"{backup} (kept)" if state.backup else backup
        failed = KitError(
            f"{head}; rolled back to {previous}: {undone}",
            f"{kept}; fix the cause, then run `provision upgrade` again",
        )
    else:
        manual = (
            f"restore it with `provision restore {state.backup} --replace`"
            if state.backup
            else "see `provision status`"
        )
        failed = KitError(
            f"{head}; ROLLBACK FAILED ({outcome.rollback.problem})",
            f"{backup}; {manual}",
        )
    failed.exit_code = error.exit_code if error.exit_code != 2 else 1
    return failed
