#!/bin/sh
# Builds skiff-test-node:latest, the stand-in worker image of the compose scaler test, without pulling
# anything: a rootfs holding this host's node binary and the shared libraries `ldd` lists for it,
# Debian's static busybox as /bin/sh and the usual applets (job steps run with `/bin/sh -c`),
# /etc/passwd, /etc/group and a 1777 /tmp, imported with `docker import`. The image holds no Skiff
# code: the test bind-mounts the checkout. Idempotent: does nothing when the image exists and was built
# from the same node version (its `skiff.node` label); rebuilds it when node changed.
set -eu

IMAGE="${SKIFF_NODE_IMAGE:-skiff-test-node:latest}"
NODE="$(command -v node || true)"
if [ -z "$NODE" ]; then
  echo "build-node-image: no node on PATH" >&2
  exit 1
fi
NODE="$(readlink -f "$NODE")"
VERSION="$("$NODE" --version)"

if have="$(docker image inspect --format '{{ index .Config.Labels "skiff.node" }}' "$IMAGE" 2>/dev/null)"; then
  if [ "$have" = "$VERSION" ]; then
    echo "build-node-image: $IMAGE already exists (node $VERSION), nothing to do"
    exit 0
  fi
  echo "build-node-image: $IMAGE holds node ${have:-unknown}, this host has $VERSION; rebuilding"
fi

PROG=build-node-image
. "$(dirname "$0")/lib/busybox-rootfs.sh"
ensure_static_busybox

ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT

mkdir -p "$ROOTFS/bin" "$ROOTFS/usr/bin" "$ROOTFS/etc" "$ROOTFS/tmp" "$ROOTFS/proc" "$ROOTFS/sys" "$ROOTFS/dev"
chmod 1777 "$ROOTFS/tmp"
cp "$NODE" "$ROOTFS/usr/bin/node"

# Each library at the path the dynamic loader resolved it to on this host, symlinks followed.
libs=0
for lib in $(ldd "$NODE" | awk '/=> \// { print $3 } /^[[:space:]]*\// { print $1 }'); do
  mkdir -p "$ROOTFS$(dirname "$lib")"
  cp -L "$lib" "$ROOTFS$lib"
  libs=$((libs + 1))
done
if [ "$libs" -eq 0 ]; then
  echo "build-node-image: ldd listed no libraries for $NODE" >&2
  exit 1
fi

add_busybox "$ROOTFS"
add_users "$ROOTFS" /tmp

tar -C "$ROOTFS" -cf - . | docker import \
  --change 'ENV PATH=/usr/bin:/bin' \
  --change 'WORKDIR /tmp' \
  --change "LABEL skiff.node=$VERSION" \
  --change 'CMD ["/usr/bin/node", "--version"]' \
  - "$IMAGE" >/dev/null
echo "build-node-image: built $IMAGE from $NODE ($VERSION, $libs shared libraries) and $BUSYBOX"
