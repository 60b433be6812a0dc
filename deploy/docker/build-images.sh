#!/bin/sh
# Builds driftwatch-collector:TAG and driftwatch-agent:TAG from this
# workspace's own binaries, with nothing pulled from a registry: each image
# is FROM scratch plus the binary, exactly the shared libraries `ldd` lists
# for it and the dynamic loader.
#
#   deploy/docker/build-images.sh                    # cargo build --release, tag dev
#   deploy/docker/build-images.sh --bin-dir target/debug --tag dev   # reuse built binaries
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=""
tag=dev
while [ $# -gt 0 ]; do
    case "$1" in
        --bin-dir) bin_dir=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$bin_dir" ]; then
    (cd "$repo" && cargo build --release --bins --locked)
    bin_dir="${CARGO_TARGET_DIR:-$repo/target}/release"
fi

# copy_with_libs ROOTFS BINARY...: the binaries into ROOTFS/usr/local/bin and
# every library ldd resolves (plus the loader) at the same path inside.
copy_with_libs() {
    rootfs=$1; shift
    mkdir -p "$rootfs/usr/local/bin" "$rootfs/tmp" "$rootfs/etc" "$rootfs/var/lib/driftwatch"
    chmod 1777 "$rootfs/tmp"
    for b in "$@"; do
        [ -x "$bin_dir/$b" ] || { echo "$bin_dir/$b is not built" >&2; exit 1; }
        cp "$bin_dir/$b" "$rootfs/usr/local/bin/$b"
        # Lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
        # or "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
        ldd "$bin_dir/$b" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' |
            while read -r lib; do
                mkdir -p "$rootfs$(dirname "$lib")"
                cp -L "$lib" "$rootfs$lib"
            done
    done
    # A root user so tools that look one up (and the agent's passwd read)
    # find something sensible.
    echo "root:x:0:0:root:/root:/bin/sh" > "$rootfs/etc/passwd"
    printf 'ID=driftwatch\nPRETTY_NAME="driftwatch demo container"\n' > "$rootfs/etc/os-release"
}

# build IMAGE ENTRYPOINT BINARY...
build() {
    image=$1; entry=$2; shift 2
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    copy_with_libs "$ctx/rootfs" "$@"
    cat > "$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
ENTRYPOINT ["/usr/local/bin/$entry"]
DOCKERFILE
    # The legacy builder needs no buildx plugin; its deprecation notice is noise.
    if ! DOCKER_BUILDKIT=0 docker build --quiet -t "$image:$tag" "$ctx" >"$ctx/build.log" 2>&1; then
        cat "$ctx/build.log" >&2; exit 1
    fi
    rm -rf "$ctx"
    trap - EXIT
    echo "built $image:$tag"
}

build driftwatch-collector driftwatch-collector driftwatch-collector driftwatch
build driftwatch-agent driftwatch-agent driftwatch-agent
