#!/usr/bin/env bash
# Build (or confirm) the podman image of the Molecule test hosts; see docs/testing.md.
#
#   scripts/test-hosts-image.sh            build if the recipe changed, else a fast no-op
#   scripts/test-hosts-image.sh --force    rebuild the host image (the cached rootfs is reused)
#   scripts/test-hosts-image.sh --name     print the image name scenarios use, nothing else
#
# No registry is reachable on these machines, so the base image comes from Debian's archive:
#   debootstrap --variant=minbase bookworm -> rootfs tarball (cached under .cache/test-hosts/)
#   -> `podman import` as localhost/appspec-deploy-base:<hash>
#   -> tests/hosts/Containerfile FROM it -> localhost/appspec-deploy-host:<hash>, also tagged :latest.
# <hash> covers the recipe (the debootstrap settings and every file in tests/hosts/), so editing the
# recipe rebuilds and nothing else does. Needs root and podman (scripts/bootstrap.sh --hosts).
set -euo pipefail
cd "$(dirname "$0")/.."

image=localhost/appspec-deploy-host
base_image=localhost/appspec-deploy-base
recipe_dir=tests/hosts
cache_dir=${APPSPEC_TEST_HOSTS_CACHE:-$PWD/.cache/test-hosts}

suite=bookworm
variant=minbase
mirror=${APPSPEC_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "${1:-}" = "--name" ]; then
    echo "$image:latest"
    exit 0
fi
force=0
[ "${1:-}" = "--force" ] && force=1

log() { echo "test-hosts-image: $*" >&2; }

base_recipe="debootstrap --variant=$variant $suite $mirror"
base_hash=$(printf '%s\n' "$base_recipe" | sha256sum | cut -c1-12)
host_hash=$(
    {
        printf '%s\n' "$base_recipe"
        find "$recipe_dir" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-12
)
base_ref=$base_image:$suite-$base_hash
host_ref=$image:$host_hash

mkdir -p "$cache_dir"
# One build at a time on this machine (several scenarios or helpers may ask at once).
exec 9>"$cache_dir/.lock"
flock 9

if [ "$force" = 0 ] && podman image exists "$host_ref"; then
    podman tag "$host_ref" "$image:latest"
    log "$host_ref is up to date"
    echo "$host_ref"
    exit 0
fi

started=$SECONDS
if ! podman image exists "$base_ref"; then
    rootfs_tar=$cache_dir/rootfs-$suite-$variant-$base_hash.tar
    if [ ! -s "$rootfs_tar" ]; then
        log "debootstrap $variant $suite from $mirror"
        work=$(mktemp -d "$cache_dir/rootfs.XXXXXX")
        trap 'rm -rf "$work"' EXIT
        debootstrap --variant="$variant" "$suite" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 \
            || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
        rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*_Packages
        tar -C "$work/root" --numeric-owner -cf "$work/rootfs.tar" .
        mv "$work/rootfs.tar" "$rootfs_tar"
        rm -rf "$work"
        trap - EXIT
    fi
    log "importing $rootfs_tar as $base_ref"
    podman import --quiet "$rootfs_tar" "$base_ref" >/dev/null
fi

log "building $host_ref from $recipe_dir/Containerfile"
build_log=$cache_dir/build.log
podman build --layers=false --build-arg "BASE_IMAGE=$base_ref" \
    --tag "$host_ref" --tag "$image:latest" --file "$recipe_dir/Containerfile" "$recipe_dir" \
    >"$build_log" 2>&1 || { tail -n 40 "$build_log" >&2; log "build failed, log: $build_log"; exit 1; }

# Drop images of older recipes (skipped while a container still uses them).
podman images --format '{{.Repository}}:{{.Tag}}' \
    | { grep -E "^($image|$base_image):" || true; } \
    | { grep -vxF -e "$host_ref" -e "$image:latest" -e "$base_ref" || true; } \
    | while read -r old; do podman rmi "$old" >/dev/null 2>&1 || true; done

log "built $host_ref in $((SECONDS - started)) s"
echo "$host_ref"
