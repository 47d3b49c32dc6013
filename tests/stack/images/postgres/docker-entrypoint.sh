#!/usr/bin/env bash
# An entrypoint emulating the official postgres image's docker-entrypoint.sh:
#  - POSTGRES_USER (postgres), POSTGRES_PASSWORD, POSTGRES_DB (= user), POSTGRES_INITDB_ARGS,
#    POSTGRES_HOST_AUTH_METHOD (scram-sha-256), each also as <NAME>_FILE;
#  - refuses to initialise without a password unless POSTGRES_HOST_AUTH_METHOD=trust;
#  - initdb into $PGDATA on first start, listen_addresses='*', pg_hba `host all all all <auth>`;
#  - a temporary init server on the unix socket only (a TCP pg_isready probe goes green only
#    once init is over); /docker-entrypoint-initdb.d/*.sh|*.sql run during init;
#  - `docker run IMAGE -c x=y` and `command: postgres -c ...` pass through to postgres;
#  - runs postgres as the postgres user (setpriv; no privileged operation needed).
set -Eeo pipefail

file_env() {
    local var="$1" fileVar="${1}_FILE" def="${2:-}"
    if [[ -n "${!var:-}" && -n "${!fileVar:-}" ]]; then
        echo >&2 "error: both $var and $fileVar are set (but are exclusive)"
        exit 1
    fi
    local val="$def"
    if [[ -n "${!var:-}" ]]; then
        val="${!var}"
    elif [[ -n "${!fileVar:-}" ]]; then
        val="$(<"${!fileVar}")"
    fi
    export "$var"="$val"
    unset "$fileVar"
}

if [[ "${1:0:1}" == '-' ]]; then
    set -- postgres "$@"
fi

if [[ "$1" != postgres ]]; then
    exec "$@"
fi

if [[ "$(id -u)" == 0 ]]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 00700 "$PGDATA" 2>/dev/null || true
    mkdir -p /var/run/postgresql
    chown postgres:postgres /var/run/postgresql
    chmod 2777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

# As any user (the official image's docker_create_db_directories, also run as `--user`):
# create PGDATA, and tighten the socket directory where it is allowed to.
mkdir -p "$PGDATA"
chmod 00700 "$PGDATA" 2>/dev/null || :
mkdir -p /var/run/postgresql 2>/dev/null || :
chmod 03775 /var/run/postgresql 2>/dev/null || :

file_env POSTGRES_PASSWORD
file_env POSTGRES_USER postgres
file_env POSTGRES_DB "$POSTGRES_USER"
file_env POSTGRES_INITDB_ARGS
: "${POSTGRES_HOST_AUTH_METHOD:=}"

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    if [[ -z "$POSTGRES_PASSWORD" && "$POSTGRES_HOST_AUTH_METHOD" != trust ]]; then
        cat >&2 <<'EOM'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
       connections without a password. This is *not* recommended.
EOM
        exit 1
    fi
    if [[ "$POSTGRES_HOST_AUTH_METHOD" == trust ]]; then
        echo >&2 "WARNING: POSTGRES_HOST_AUTH_METHOD has been set to \"trust\"; every connection is accepted without a password."
    fi

    echo "initdb: initialising $PGDATA for user \"$POSTGRES_USER\""
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is word-split on purpose (official image)
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --encoding=UTF8 $POSTGRES_INITDB_ARGS -D "$PGDATA"

    auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    {
        echo
        echo "# glitchtip-kit-test: every host, password authentication (official image's rule)"
        echo "host all all all $auth"
    } >>"$PGDATA/pg_hba.conf"
    {
        echo
        echo "listen_addresses = '*'"
        if [[ "$auth" == md5 ]]; then
            echo "password_encryption = md5"
        fi
    } >>"$PGDATA/postgresql.conf"

    # Temporary server: unix socket only, so TCP probes stay red until init is done.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
    export PGUSER="$POSTGRES_USER" PGPASSWORD="$POSTGRES_PASSWORD" PGHOST=/var/run/postgresql
    if [[ "$POSTGRES_DB" != postgres ]]; then
        psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
        echo "created database \"$POSTGRES_DB\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) echo "running $f"; . "$f" ;;
            *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname "$POSTGRES_DB" -f "$f" ;;
            *.sql.gz) echo "running $f"; gunzip -c "$f" | psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname "$POSTGRES_DB" ;;
            *) [[ -e "$f" ]] && echo "ignoring $f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    unset PGUSER PGPASSWORD PGHOST
    echo
    echo "PostgreSQL init process complete; ready for start up."
    echo
else
    echo "PostgreSQL Database directory appears to contain a database; Skipping initialization"
fi

exec "$@"
