#!/bin/sh
# Like the official valkey image's entrypoint: `-flag ...` or `x.conf ...` get valkey-server put
# in front; valkey-server/redis-server run as the valkey user with the kit's config file first
# (unless a config file is given), so `command: valkey-server --appendonly yes` keeps bind/dir.
set -e
case "$1" in
    -*|*.conf) set -- valkey-server "$@" ;;
esac
if [ "$1" = valkey-server ] || [ "$1" = redis-server ]; then
    shift
    if [ -f "${1:-}" ]; then
        set -- valkey-server "$@"
    else
        set -- valkey-server /etc/valkey/kit.conf "$@"
    fi
    if [ "$(id -u)" = 0 ]; then
        find /data \! -user valkey -exec chown valkey:valkey '{}' + 2>/dev/null || true
        exec setpriv --reuid=valkey --regid=valkey --init-groups "$@"
    fi
fi
exec "$@"
