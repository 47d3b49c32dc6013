"""`provision restore FILE`: put a backup back, after proving it is whole and fits this host.

Nothing is touched until the archive has been read end to end against its manifest and its
GlitchTip and Postgres majors are known to fit: a backup from a newer GlitchTip, or a dump from
a newer Postgres than the target server (whose `pg_restore` cannot read it), is refused. A
database that already holds tables is refused too unless `replace` is given, and then it is
backed up first. The restore then stops web and worker, recreates the database and feeds the
dump to `pg_restore` as a stream, refills the uploads volume, puts the deployment's files back,
runs the migrations, starts the stack and verifies it.

Which files come back: `.env` and `.glitchtiprc` belong to the data (the admin's password, the
API token and the DSN keys live in the restored database), so they come from the archive, and
the current ones are kept aside as `<name>.before-restore-<UTC time>` (0600), never lost. Two
things belong to this host instead and are kept: `POSTGRES_PASSWORD` (the password of the
Postgres volume, which a dump does not carry) and `glitchtip.yaml` (images, port, domain) when
the directory has one; on an empty directory the archive's copy is used.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import KitError, UsageError
from provision.ops.manifest import DATABASE, FILES_DIR, UPLOADS, Manifest, open_member

HOST_KEYS = ("POSTGRES_PASSWORD",)  # .env keys that belong to the volume, not the data
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


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


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
    files = {}
    for name, member in manifest.members.items():
        if name.startswith(FILES_DIR):
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


def restore_files(directory: Path, files: dict[str, str]) -> list[Path]:
    """Write the archive's deployment files (see the module docstring); return what was kept
    aside. Holds the deployment lock; every write is atomic, 0600 for secrets."""
    from provision.envfile import parse_env, read_env_file, set_env_values
    from provision.fileio import check_writable_target, read_text_file, write_atomic
    from provision.locking import locked

    directory = Path(directory)
    stamp = _stamp()
    kept: list[Path] = []
    with locked(directory):
        for name in files:
            check_writable_target(directory / name)
        env_text = files.get(".env")
        if env_text is not None:
            parse_env(env_text, "the backup's .env")
            current = read_env_file(directory / ".env")
            # This host's keys win wherever the archive has them (`export KEY=` too) and are
            # added where it has not: a POSTGRES_PASSWORD lost here locks GlitchTip out of
            # the volume, whose password a dump does not carry.
            host = {key: current[key] for key in HOST_KEYS if current.get(key)}
            files = {**files, ".env": set_env_values(env_text, host)}
        for name, content in files.items():
            path = directory / name
            existing = read_text_file(path)
            if name == "glitchtip.yaml" and existing is not None:
                continue  # this host's configuration stays in charge
            if existing is not None and existing != content:
                aside = directory / f"{name}.before-restore-{stamp}"
                write_atomic(aside, existing, mode=0o600)
                kept.append(aside)
            mode = 0o600 if name in (".env", ".glitchtiprc") else 0o644
            write_atomic(path, content, mode=mode)
    return kept


def restore_backup(
    ctx: Any,
    archive: Path,
    *,
    replace: bool = False,
    progress: Callable[[str], None] | None = None,
    verify: bool = True,
    event_timeout: float = 30.0,
) -> RestoreResult:
    """Restore `archive` into the deployment `ctx` describes; see the module docstring."""
    from provision.ops import database
    from provision.ops.backup import _Progress, create_backup
    from provision.ops.manifest import read_manifest
    from provision.ops.streams import stream_in

    began = time.monotonic()
    say = progress or (lambda _text: None)
    archive = Path(archive)
    manifest = read_manifest(archive)  # refuses a bad archive before anything else
    directory = Path(ctx.directory)
    files = _archive_files(archive, manifest)
    new_host = not (directory / "glitchtip.yaml").exists() and not (directory / ".env").exists()
    if not new_host:
        from provision.ops.bundled import require_bundled_data

        require_bundled_data(ctx.load_settings(), "restore")
        check_compatible(manifest, ctx.load_settings().glitchtip_major, None)
    result = RestoreResult(manifest)
    if new_host:  # nothing to lose: the archive's files make this directory the deployment
        result.kept_aside = restore_files(directory, files)
        check_compatible(manifest, ctx.load_settings().glitchtip_major, None)
        from provision.ops.bundled import require_bundled_data

        require_bundled_data(ctx.load_settings(), "restore")

    if not (directory / "compose.yml").exists():  # a new host: render before starting postgres
        from provision.stack import render_step

        render_step.render(ctx)
    from provision import secret_files

    secret_files.sync(ctx.load_settings())  # postgres mounts its password file
    compose = ctx.compose()
    up = compose.run("up", "--detach", "--wait", "--pull", "never", "postgres", timeout=600)
    if not up.ok:
        raise KitError(f"postgres did not start ({up.last_lines(2)})", "see `provision logs`")
    db = database.Database.of(ctx.services())
    server = database.server_major(compose, db)
    check_compatible(manifest, ctx.load_settings().glitchtip_major, server)
    tables = database.table_count(compose, db)
    if tables and not replace:
        raise UsageError(
            f"the database already holds {tables} tables; nothing was changed",
            "restore into an empty deployment, or give --replace (the current state is backed "
            "up first)",
        )
    say(f"archive checked: {manifest.summary()}")
    if tables:
        say("backing up the current state first")
        result.pre_restore_backup = create_backup(ctx, progress=progress).path
        say(f"current state saved to {result.pre_restore_backup}")

    # No writes while the data is replaced (profile minimal has no worker service).
    writers = [name for name in ("web", "worker") if name in ctx.services()]
    compose.run("stop", *writers, timeout=300)
    try:
        database.recreate(compose, db)
        meter = _Progress(progress, "pg_restore")
        with open_member(archive, DATABASE, manifest.members[DATABASE]) as chunks:
            stream_in(
                compose,
                database.restore_args(db),
                chunks,
                what="pg_restore",
                progress=lambda total: meter.add(total - meter.total),
            )
        meter.done()
        if UPLOADS in manifest.members:
            target = _uploads_target(ctx.services())
            with open_member(archive, UPLOADS, manifest.members[UPLOADS]) as chunks:
                stream_in(compose, uploads_restore_args(target), chunks, what="uploads restore")
            say("uploads restored")
    except KitError as error:
        again = f"provision restore {archive} --replace"
        saved = f" (the state before is in {result.pre_restore_backup})" if tables else ""
        raise KitError(
            f"restore failed: {error.message}; the database may be partly restored{saved}",
            f"fix the cause, then run `{again}`",
        ) from None
    if not new_host:
        result.kept_aside = restore_files(directory, files)
    for path in result.kept_aside:
        say(f"kept the previous {path.name.split('.before-restore-')[0]} as {path}")
    _migrate_and_start(ctx, say)
    if verify:
        from provision.ops.verify import run_verify

        result.verify = run_verify(ctx, event_timeout=event_timeout)
    result.seconds = time.monotonic() - began
    return result


def _migrate_and_start(ctx: Any, say: Callable[[str], None]) -> None:
    """The migrations (a fresh migrate container: the restored data may be older), then the
    stack, through the same code as `provision migrate` and `provision up`'s start step."""
    from provision import secret_files
    from provision.stack.migrate import run_migrations
    from provision.stack.start import start

    ctx.settings = None  # the restored .env may record other choices
    ctx._services = None
    secret_files.sync(ctx.load_settings())  # the secret files of the restored .env
    run_migrations(ctx.compose(), on_line=lambda _line: None)
    say("migrations ran")
    outcome = start(ctx)
    say(f"started: {outcome.detail}")
