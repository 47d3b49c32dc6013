#!/usr/bin/env bash
# Builds glitchtip-kit-test/debian:trixie without any registry:
#   debootstrap --variant=minbase trixie DIR <mirror>  ->  tar  ->  docker import
# The rootfs tarball is cached under /var/cache/glitchtip-kit/ (GLITCHTIP_KIT_CACHE_DIR);
# the image is skipped when it already exists. FORCE=1 rebuilds both.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

[[ $(id -u) -eq 0 ]] || die "build-base.sh needs root (debootstrap): run it with sudo"

if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$GTK_BASE_TAG" >/dev/null 2>&1; then
    log "$GTK_BASE_TAG exists: skipped"
    exit 0
fi

mkdir -p "$GTK_CACHE_DIR"
tarball="$GTK_CACHE_DIR/debian-$GTK_SUITE-minbase.tar"
mirror="$(debian_mirror)"

if [[ "${FORCE:-0}" == 1 || ! -s "$tarball" ]]; then
    command -v debootstrap >/dev/null || die "debootstrap is missing: run tests/stack/engine/ensure-engine.sh"
    rootfs="$(mktemp -d "$GTK_CACHE_DIR/rootfs.XXXXXX")"
    trap 'rm -rf --one-file-system "$rootfs"' EXIT
    log "debootstrap --variant=minbase $GTK_SUITE from $mirror (a few minutes) ..."
    start=$SECONDS
    if ! debootstrap --variant=minbase --include=ca-certificates \
        "$GTK_SUITE" "$rootfs" "$mirror" >"$GTK_CACHE_DIR/debootstrap.log" 2>&1; then
        tail -n 30 "$GTK_CACHE_DIR/debootstrap.log" >&2
        die "debootstrap of $GTK_SUITE from $mirror failed (log: $GTK_CACHE_DIR/debootstrap.log)"
    fi
    log "debootstrap done in $((SECONDS - start)) s"
    # Image hygiene: apt lists, caches and logs go; apt inside the image uses plain http.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
    printf 'deb %s %s main\n' "$mirror" "$GTK_SUITE" >"$rootfs/etc/apt/sources.list"
    rm -f "$rootfs"/etc/apt/sources.list.d/*
    # No recommends, no docs: keeps the derived images small and the apt steps fast.
    cat >"$rootfs/etc/apt/apt.conf.d/90glitchtip-kit" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "3";
EOF
    tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf --one-file-system "$rootfs"
    trap - EXIT
    log "cached rootfs: $tarball ($(du -h "$tarball" | cut -f1))"
else
    log "using cached rootfs $tarball"
fi

docker import \
    --change 'CMD ["/bin/bash"]' \
    --change 'ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive' \
    --message "debootstrap --variant=minbase $GTK_SUITE $mirror" \
    "$tarball" "$GTK_BASE_TAG" >/dev/null
log "imported $GTK_BASE_TAG"
