#!/usr/bin/env bash
# The official postgres:18 image's layout rule, then its usual entrypoint: data of an older
# major mounted at /var/lib/postgresql/data (the pre-18 layout) is refused instead of being
# hidden under a fresh cluster; an upgrade needs a dump and restore (or pg_upgrade) first.
set -Eeo pipefail
if [[ "${1:-postgres}" == postgres || "${1:0:1}" == '-' ]]; then
    old=/var/lib/postgresql/data
    if [[ -s "$old/PG_VERSION" || ( -d "$old" && "$PGDATA" != "$old"* && -n "$(ls -A "$old" 2>/dev/null)" ) ]]; then
        cat >&2 <<EOM
Error: in 18+, these Docker images are configured to store database data in a
       format which is compatible with "pg_ctlcluster" (specifically, using
       major-version-specific directory names).  This better reflects how
       PostgreSQL itself works, and how upgrades are to be performed.

       Counter to that, there appears to be PostgreSQL data in:
         $old (unused mount/volume)

       This is usually the result of upgrading the Docker image without
       upgrading the underlying database using "pg_upgrade" (which requires both
       versions).
EOM
        exit 1
    fi
fi
exec /usr/local/bin/postgres-entrypoint.sh "$@"
