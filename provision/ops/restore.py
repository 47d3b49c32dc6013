"""`provision restore FILE`: put a backup back, after proving it is whole and fits this host.

Every check that can fail runs before anything is stopped, replaced or written: the archive is
read end to end against its manifest (work bounded by its own bytes), each file member is
parsed, the paths restore writes are checked (no symbolic links), the settings the deployment
will have are loaded from the planned files (a backup pointing at an external database, or
whose glitchtip.yaml does not load, is refused), and the GlitchTip and Postgres majors must fit
them: a backup from a newer GlitchTip, or a dump from a newer Postgres than the target's
(whose `pg_restore` cannot read it), is refused. Then postgres starts for the checks that need
it (its real major; a database that already holds tables is refused unless `replace` is given,
and then it is backed up first). Only then are web and worker stopped, the database recreated
and fed to `pg_restore` as a stream, the uploads volume refilled, the deployment's files
written (in one step), the migrations run, the stack started and verified. A failure after the
safety backup names it.

Into an empty directory the planned files and the render are written before postgres starts
(Compose needs them); a refusal there removes them again and the postgres container restore
started, so the directory is left as it was found. Which files come back, and why this host's
identity (Compose project, address, port, domain, images) stays its own unless asked: see
`provision.ops.restore_files`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import KitError, UsageError
from provision.ops.manifest import FILES_DIR, UPLOADS, Manifest, open_member

UPLOADS_TARGET = "/code/uploads"


@dataclass
class RestoreResult:
    """What the restore did."""

    manifest: Manifest
    pre_restore_backup: Path | None = None
    kept_aside: list[Path] = field(default_factory=list)
    verify: Any = None
    seconds: float = 0.0


def check_compatible(manifest: Manifest, target_major: int, server_major: int | None) -> None:
    """Refuse a backup the target cannot take (exit 2, nothing changed)."""
    if manifest.glitchtip_major > int(target_major):
        raise UsageError(
            f"the backup is from GlitchTip {manifest.glitchtip_major}, this deployment runs "
            f"GlitchTip {target_major}: a newer GlitchTip's database cannot go back; nothing "
            "was changed",
            f"restore it into a GlitchTip {manifest.glitchtip_major} deployment "
            f"(glitchtip_major: {manifest.glitchtip_major} in glitchtip.yaml)",
        )
    # A dump's archive format follows pg_dump's version; its SQL follows the server it came
    # from: the target's pg_restore and server must be at least as new as both.
    needed = max(manifest.postgres_major, manifest.pg_dump_major)
    if server_major is not None and needed > server_major:
        raise UsageError(
            f"the dump is from Postgres {needed}, the target server is Postgres "
            f"{server_major}, whose pg_restore cannot read it; nothing was changed",
            f"set postgres_image to a Postgres {needed} or newer image "
            f"(the backup used {manifest.postgres_image})",
        )


def _uploads_target(services: dict[str, dict]) -> str:
    for volume in services.get("web", {}).get("volumes") or []:
        if isinstance(volume, dict) and volume.get("source") == "uploads":
            return str(volume.get("target") or UPLOADS_TARGET)
    return UPLOADS_TARGET


def uploads_restore_args(target: str) -> list[str]:
    """A throw-away web container (root, the volume as the service mounts it) that empties the
    uploads volume and untars the backup's copy into it from stdin. The service drops every
    capability (README.md, Hardening): this one container gets back what root needs to delete
    app's files and restore their owners and modes (DAC_OVERRIDE, FOWNER, CHOWN)."""
    script = 'find "$0" -mindepth 1 -delete && exec tar --numeric-owner -xpf - -C "$0"'
    return [
        "run", "--rm", "--no-deps", "-T", "--user", "0",
        "--cap-add", "CHOWN", "--cap-add", "DAC_OVERRIDE", "--cap-add", "FOWNER",
        "--entrypoint", "sh", "web", "-c", script, target,
    ]  # fmt: skip


def _archive_files(archive: Path, manifest: Manifest) -> dict[str, str]:
    """The archive's deployment files as text; each is a few KiB, so one larger than the kit
    reads any file (fileio.MAX_FILE_BYTES) is refused before it is read into memory."""
    from provision.fileio import MAX_FILE_BYTES
    from provision.ops.manifest import human_size

    files = {}
    for name, member in manifest.members.items():
        if name.startswith(FILES_DIR):
            if member.size > MAX_FILE_BYTES:
                raise UsageError(
                    f"{archive} is not a usable backup: {name} has {human_size(member.size)}, "
                    f"more than any deployment file (at most {human_size(MAX_FILE_BYTES)}); "
                    "nothing was changed",
                    "use another archive (or take a new one with `provision backup`)",
                )
            with open_member(archive, name, member) as chunks:
                data = b"".join(chunks)
            try:
                files[name[len(FILES_DIR) :]] = data.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(
                    f"{archive} is not a usable backup: {name} is not UTF-8 text; nothing was "
                    "changed",
                    "use another archive (or take a new one with `provision backup`)",
                ) from None
    return files


def restore_files(directory: Path, files: dict[str, str], archived_identity: bool = False) -> list:
    """Plan and write the archive's deployment files into `directory` (see
    `provision.ops.restore_files`); return what was kept aside."""
    from provision.ops.restore_files import apply_files, plan_files, present

    directory = Path(directory)
    new_host = not present(directory)
    plan = plan_files(directory, files, new_host=new_host, archived_identity=archived_identity)
    return apply_files(plan)


def _postgres_running(compose: Any) -> bool:
    rows = [row for row in compose.ps("postgres") if row.get("Service", "postgres") == "postgres"]
    return bool(rows) and rows[-1].get("State") == "running"


def restore_backup(
    ctx: Any,
    archive: Path,
    *,
    replace: bool = False,
    archived_identity: bool = False,
    progress: Callable[[str], None] | None = None,
    verify: bool = True,
    event_timeout: float = 30.0,
) -> RestoreResult:
    """Restore `archive` into the deployment `ctx` describes; see the module docstring."""
    from provision.ops.bundled import require_bundled_data
    from provision.ops.manifest import read_manifest
    from provision.ops.restore_files import plan_files, planned_settings, present

    began = time.monotonic()
    say = progress or (lambda _text: None)
    archive = Path(archive)
    directory = Path(ctx.directory)
    # Every check that needs nothing running, before anything is started or written: the
    # archive (bounded by its bytes), the manifest, each file member, the target paths, the
    # settings the deployment will have, compatibility with them, the identity.
    manifest = read_manifest(archive)
    files = _archive_files(archive, manifest)
    new_host = not present(directory)
    plan = plan_files(directory, files, new_host=new_host, archived_identity=archived_identity)
    settings = planned_settings(plan, getattr(ctx, "overrides", None), ctx.environ)
    require_bundled_data(settings, "restore")
    check_compatible(manifest, settings.glitchtip_major, settings.postgres_version)
    result = RestoreResult(manifest)
    for note in plan.notes:
        say(note)
    tables = _prepare_database(ctx, manifest, plan, settings, new_host=new_host, replace=replace)
    say(f"archive checked: {manifest.summary()}")
    if tables:
        from provision.ops.backup import create_backup

        say("backing up the current state first")
        result.pre_restore_backup = create_backup(ctx, progress=progress).path
        say(f"current state saved to {result.pre_restore_backup}")
    _replace(ctx, archive, manifest, plan, result, new_host=new_host, progress=progress)
    if verify:
        from provision.ops.verify import run_verify

        result.verify = run_verify(ctx, event_timeout=event_timeout)
    result.seconds = time.monotonic() - began
    return result


def _prepare_database(
    ctx: Any, manifest: Manifest, plan: Any, settings: Any, *, new_host: bool, replace: bool
) -> int:
    """Start postgres and run the checks that need it (its real major, whether it holds data);
    return its table count. Into an empty directory the planned files and the render are
    written first (Compose needs them); a refusal or failure here removes them again, and the
    postgres container restore started, so the directory is left as it was found (and the
    engine too, see `_take_down_new`). That stop is bounded by 300 s, as every stop and down
    the kit runs: a hung engine still lets the refusal be printed."""
    from provision.ops import database
    from provision.ops.pg_upgrade import start_postgres
    from provision.ops.restore_files import apply_files, remove_created

    directory = Path(ctx.directory)
    before = {path.name for path in directory.iterdir()} if new_host else set()
    compose = None
    started = False
    volumes_before: frozenset[str] | None = None
    try:
        if new_host:
            from provision.stack import render_step

            apply_files(plan)
            ctx.files_changed()
            render_step.render(ctx)
        from provision import secret_files

        secret_files.sync(ctx.load_settings())  # postgres mounts its password file
        compose = ctx.compose()
        if new_host and compose.ps():
            project = settings.compose_project_name
            raise UsageError(
                f"Compose project {project} already has containers on this engine (another "
                "deployment?); nothing was changed",
                "restore into that deployment's directory (with --replace), or give this one "
                "its own name: GLITCHTIP_KIT_COMPOSE_PROJECT_NAME=<name> provision restore ...",
            )
        started = not _postgres_running(compose)
        volumes_before = _project_volumes(compose) if new_host and started else None
        try:
            server_major = start_postgres(ctx)
        except KitError as error:
            raise KitError(f"{error.message}; nothing was changed", error.fix) from None
        db = database.Database.of(ctx.services())
        check_compatible(manifest, settings.glitchtip_major, server_major)
        tables = database.table_count(compose, db)
        if tables and not replace:
            raise UsageError(
                f"the database already holds {tables} tables; nothing was changed",
                "restore into an empty deployment, or give --replace (the current state is "
                "backed up first)",
            )
        return tables
    except BaseException:
        with contextlib.suppress(Exception):
            if compose is not None and new_host and started:
                _take_down_new(compose, volumes_before)
            elif compose is not None and started:
                compose.run("stop", "postgres", timeout=300)
        if new_host:
            remove_created(directory, before)
        raise


def _project_volumes(compose: Any) -> frozenset[str] | None:
    """This Compose project's volumes on the engine, or None when Compose cannot list them
    (`compose volumes` came with Compose 2.23; the kit accepts 2.20)."""
    result = compose.run("volumes", "--quiet", timeout=60)
    return frozenset(result.stdout.split()) if result.ok else None


def _take_down_new(compose: Any, volumes_before: frozenset[str] | None) -> None:
    """Remove what a refused restore into an empty directory started: its containers (the
    project had none, `_prepare_database` checked) and, when the project had no volume before,
    the volume postgres made. That volume was initialised with the password of the archive's
    `.env`, which the refusal removes again: left behind, it would refuse the password the
    next `provision up` in this directory generates. Volumes that were there before are
    someone's data and stay (so do all of them when Compose cannot list them)."""
    created_only = volumes_before is not None and not volumes_before
    down = (
        ("down", "--remove-orphans", "--volumes") if created_only else ("down", "--remove-orphans")
    )
    compose.run(*down, timeout=300)


def _replace(
    ctx: Any,
    archive: Path,
    manifest: Manifest,
    plan: Any,
    result: RestoreResult,
    *,
    new_host: bool,
    progress: Callable[[str], None] | None,
) -> None:
    """Stop the writers, replace the database and the uploads, write the files, migrate and
    start. Any failure from here on names the safety backup taken before (with --replace)."""
    from provision.ops.pg_upgrade import restore_database
    from provision.ops.restore_files import apply_files
    from provision.runtime.streams import stream_in

    say = progress or (lambda _text: None)
    compose = ctx.compose()
    stage = "the database may be partly restored"
    try:
        # No writes while the data is replaced (profile minimal has no worker service).
        writers = [name for name in ("web", "worker") if name in ctx.services()]
        compose.run("stop", *writers, timeout=300)
        restore_database(ctx, archive, say, manifest)
        if UPLOADS in manifest.members:
            target = _uploads_target(ctx.services())
            with open_member(archive, UPLOADS, manifest.members[UPLOADS]) as chunks:
                stream_in(compose, uploads_restore_args(target), chunks, what="uploads restore")
            say("uploads restored")
        stage = "the data is restored, the deployment's files may not be"
        if not new_host:
            result.kept_aside = apply_files(plan)
        for path in result.kept_aside:
            say(f"kept the previous {path.name.split('.before-restore-')[0]} as {path}")
        stage = "the data and files are restored, the stack may not be running"
        _migrate_and_start(ctx, say)
    except KitError as error:
        again = f"provision restore {archive} --replace"
        saved = (
            f"; the state before the restore is in {result.pre_restore_backup}"
            if result.pre_restore_backup
            else ""
        )
        raise KitError(
            f"restore failed: {error.message}; {stage}{saved}",
            f"fix the cause, then run `{again}`",
        ) from None


def _migrate_and_start(ctx: Any, say: Callable[[str], None]) -> None:
    """The migrations (a fresh migrate container: the restored data may be older), then the
    stack, through the same code as `provision migrate` and `provision up`'s start step."""
    from provision import secret_files
    from provision.stack.migrate import run_migrations
    from provision.stack.start import start

    ctx.files_changed()  # the restored .env may record other choices
    secret_files.sync(ctx.load_settings())  # the secret files of the restored .env
    run_migrations(ctx.compose(), on_line=lambda _line: None)
    say("migrations ran")
    outcome = start(ctx)
    say(f"started: {outcome.detail}")
