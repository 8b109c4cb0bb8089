#!/bin/sh
# Builds skiff-test-busybox:latest, the image the Docker sandbox tests run, without pulling anything:
# a rootfs of Debian's static busybox (every applet as a symlink), a uid 1000 user, /tmp and
# /workspace, imported with `docker import`. Idempotent: does nothing when the image exists.
set -eu

IMAGE="${SKIFF_TEST_IMAGE:-skiff-test-busybox:latest}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "build-test-image: $IMAGE already exists, nothing to do"
  exit 0
fi

BUSYBOX=/bin/busybox
# The image has no libc, so the binary must be the static one (Debian's `busybox` is dynamic).
is_static() { [ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1; }
if ! is_static; then
  echo "build-test-image: installing busybox-static"
  if ! out="$(DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static 2>&1)"; then
    echo "$out" >&2
    echo "build-test-image: apt-get install busybox-static failed" >&2
    exit 1
  fi
fi
if ! is_static || ! "$BUSYBOX" --list >/dev/null; then
  echo "build-test-image: no static busybox at $BUSYBOX; install busybox-static" >&2
  exit 1
fi

ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT

mkdir -p "$ROOTFS/bin" "$ROOTFS/etc" "$ROOTFS/tmp" "$ROOTFS/workspace" "$ROOTFS/proc" "$ROOTFS/sys" "$ROOTFS/dev"
chmod 1777 "$ROOTFS/tmp"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
applets=0
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] && continue
  ln -s busybox "$ROOTFS/bin/$applet"
  applets=$((applets + 1))
done
cat >"$ROOTFS/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
skiff:x:1000:1000:skiff:/workspace:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$ROOTFS/etc/group" <<'EOF'
root:x:0:
skiff:x:1000:
nogroup:x:65534:
EOF

tar -C "$ROOTFS" -cf - . | docker import \
  --change 'ENV PATH=/bin' \
  --change 'WORKDIR /workspace' \
  --change 'CMD ["/bin/sh"]' \
  - "$IMAGE" >/dev/null
echo "build-test-image: built $IMAGE from $BUSYBOX ($applets applets as symlinks in /bin, uid 1000 user 'skiff', /tmp, /workspace)"
