#!/bin/sh
# Builds skiff-test-busybox:3, the image the Docker sandbox tests run, without pulling anything:
# a rootfs of Debian's static busybox (every applet as a symlink), a uid 1000 user, /tmp and
# /workspace, imported with `docker import`. Idempotent: does nothing when the image exists.
set -eu

IMAGE="${SKIFF_TEST_IMAGE:-skiff-test-busybox:3}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "build-test-image: $IMAGE already exists, nothing to do"
  exit 0
fi

PROG=build-test-image
. "$(dirname "$0")/lib/busybox-rootfs.sh"
ensure_static_busybox

ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT

mkdir -p "$ROOTFS/bin" "$ROOTFS/etc" "$ROOTFS/tmp" "$ROOTFS/workspace" "$ROOTFS/proc" "$ROOTFS/sys" "$ROOTFS/dev"
chmod 1777 "$ROOTFS/tmp"
# A world-writable directory in the image: only a read-only root keeps a step from writing there.
mkdir -p "$ROOTFS/scratch"
chmod 1777 "$ROOTFS/scratch"
add_busybox "$ROOTFS"
add_users "$ROOTFS" /workspace

# WORKDIR / (not /workspace): only the driver's own WorkingDir puts a step in its workspace, and the
# tests can tell when it does not.
tar -C "$ROOTFS" -cf - . | docker import \
  --change 'ENV PATH=/bin' \
  --change 'WORKDIR /' \
  --change 'CMD ["/bin/sh"]' \
  - "$IMAGE" >/dev/null
echo "build-test-image: built $IMAGE from $BUSYBOX ($BUSYBOX_APPLETS applets as symlinks in /bin, uid 1000 user 'skiff', /tmp, /scratch, /workspace)"
