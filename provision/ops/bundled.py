"""The operations that work on the bundled services only, and their refusal otherwise.

`backup`, `restore` and `upgrade` read and write the bundled Postgres through `compose exec
postgres` and the uploads volume through a throw-away container. With an external database
(`database_url`) or uploads in S3 (`uploads_bucket`) the data lives where the kit cannot see it
whole, and a backup of only part of it would restore into an inconsistent deployment; so these
commands refuse, before changing anything, and name what to use instead.
"""

from __future__ import annotations

from typing import Any

from provision.errors import UsageError


def outside(settings: Any) -> list[str]:
    """What of this deployment's data the kit does not hold ([] when all is bundled)."""
    found = []
    if settings.external_database:
        found.append("the database (database_url)")
    if settings.s3_uploads:
        found.append("the uploads (uploads_bucket)")
    return found


def require_bundled_data(settings: Any, action: str) -> None:
    """Refuse `action` (e.g. "back up") unless the database and uploads are bundled."""
    missing = outside(settings)
    if not missing:
        return
    raise UsageError(
        f"cannot {action}: {' and '.join(missing)} {'lives' if len(missing) == 1 else 'live'} "
        "outside this stack; the kit backs up, "
        "restores and upgrades the bundled Postgres and uploads volume only",
        "use the provider's tools (pg_dump or snapshots for the database, bucket versioning "
        "for uploads); to upgrade GlitchTip, take such a snapshot, set glitchtip_image and run "
        "`provision up` (its migrate step migrates the database)",
    )


def running_services(settings: Any) -> tuple[str, ...]:
    """The stack's long-running services: the bundled Postgres and Valkey, web and worker (one
    all-in-one web with profile minimal)."""
    from provision.profiles import core_services

    return core_services(settings)
