"""A Postgres major upgrade by dump and restore into a new volume; the old volume is kept.

Postgres cannot read the data directory of another major, and the official image of 18 keeps
its data in a new layout (`/var/lib/postgresql/18/docker` in a volume at `/var/lib/postgresql`),
so pointing the new image at the old volume is never done. Instead the new server starts on a
new, empty volume (`<project>_postgres-<major>`, named through `GLITCHTIP_KIT_POSTGRES_VOLUME`
in `.env`, which compose.yml interpolates), and the dump of the backup taken moments before,
with GlitchTip stopped, is restored into it. The old volume is not written after that backup:
a rollback only points the files back at it. It stays until the operator removes it, with the
command printed.

The same database restore undoes a failed GlitchTip upgrade whose migrations ran on the volume.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from provision.errors import KitError

SERVICE = "postgres"


def removal_command(volume: str) -> str:
    """The command that removes a volume the upgrade kept (printed, never run by the kit)."""
    return f"docker volume rm {volume}"


def start_postgres(ctx: Any) -> int:
    """Start only the postgres service of the current files and wait for it; return its major."""
    from provision.ops import database

    compose = ctx.compose()
    timeout = int(ctx.wait_timeout)
    result = compose.run(
        "up", "--detach", "--wait", "--wait-timeout", str(timeout), "--pull", "never",
        "--no-deps", SERVICE,
        timeout=timeout + 120,
    )  # fmt: skip
    if not result.ok:
        from provision.stack.start import diagnose

        raise KitError(
            f"postgres did not become healthy: {diagnose(compose, result.last_lines(2))}"
        )
    return database.server_major(compose, database.Database.of(ctx.services()))


def restore_database(
    ctx: Any, archive: Path, progress: Callable[[str], None], manifest: Any = None
) -> int:
    """Replace the database of the running postgres service with the dump in `archive`.

    The archive is checked whole first (`read_manifest`, unless the caller already holds its
    checked `manifest`); the dump is streamed from it into `pg_restore` (constant memory), which
    stops at the first error. Returns the bytes restored. Used by upgrade's rollback and by
    `provision restore`.
    """
    from provision.ops import database
    from provision.ops.manifest import DATABASE, human_size, open_member, read_manifest
    from provision.runtime.streams import stream_in

    manifest = manifest if manifest is not None else read_manifest(archive)
    member = manifest.members[DATABASE]
    compose = ctx.compose()
    db = database.Database.of(ctx.services())
    database.recreate(compose, db)
    shown = {"next": 0.0}

    def report(total: int) -> None:
        import time

        now = time.monotonic()
        if now >= shown["next"]:
            shown["next"] = now + 1.0
            progress(f"pg_restore: {human_size(total)} of {human_size(member.size)}")

    with open_member(archive, DATABASE, member) as chunks:
        stream_in(compose, database.restore_args(db), chunks, what="pg_restore", progress=report)
    progress(f"pg_restore: {human_size(member.size)} restored")
    return member.size
