# Shared helpers for the test-image build scripts (sourced, not executed).
# No container registry is used: the base image comes from debootstrap + `docker import`.

GTK_CACHE_DIR="${GLITCHTIP_KIT_CACHE_DIR:-/var/cache/glitchtip-kit}"
# Not root and no say over /var/cache: use the user's cache (the base image still needs root).
if [[ -z "${GLITCHTIP_KIT_CACHE_DIR:-}" && $(id -u) -ne 0 ]] &&
    ! mkdir -p "$GTK_CACHE_DIR" 2>/dev/null; then
    GTK_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/glitchtip-kit"
fi
GTK_SUITE="${GLITCHTIP_KIT_DEBIAN_SUITE:-trixie}"
GTK_BASE_TAG="glitchtip-kit-test/debian:${GTK_SUITE}"
# Where the images built FROM the base are tagged (see build-images.sh).
GTK_NS="${GLITCHTIP_KIT_TEST_IMAGES:-glitchtip-kit-test}"
# The legacy builder: works with Engine 20.10 and with any docker CLI, buildx or not.
export DOCKER_BUILDKIT=0

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    printf '\n!!! images: %s\n\n' "$*" >&2
    exit 1
}

# The Debian mirror this machine's apt already uses, over plain http (no TLS needed inside
# the images, and plain http is what reaches here). Override: GLITCHTIP_KIT_DEBIAN_MIRROR.
debian_mirror() {
    if [[ -n "${GLITCHTIP_KIT_DEBIAN_MIRROR:-}" ]]; then
        echo "${GLITCHTIP_KIT_DEBIAN_MIRROR%/}"
        return
    fi
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v -- '-security' | head -n1 | tr -d ' ')
    uri="${uri:-http://deb.debian.org/debian}"
    uri="${uri%/}"
    echo "http://${uri#*://}"
}

# A hash of a build context directory (file names + contents), stored as an image label so a
# build is skipped when the image exists and its inputs did not change.
context_hash() {
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

image_label() {
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}
