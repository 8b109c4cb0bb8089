# Shared by build-test-image.sh and build-node-image.sh (sourced, POSIX sh): the pieces of a
# no-pull test rootfs built from Debian's static busybox. Callers set PROG (for messages) first.

BUSYBOX=/bin/busybox

# The images have no libc of their own (or no search path for it), so the binary must be the
# static one; Debian's `busybox` package is dynamic. Installs busybox-static when it is missing.
ensure_static_busybox() {
  is_static() { [ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1; }
  if ! is_static; then
    echo "$PROG: installing busybox-static"
    if ! out="$(DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static 2>&1)"; then
      echo "$out" >&2
      echo "$PROG: apt-get install busybox-static failed" >&2
      exit 1
    fi
  fi
  if ! is_static || ! "$BUSYBOX" --list >/dev/null; then
    echo "$PROG: no static busybox at $BUSYBOX; install busybox-static" >&2
    exit 1
  fi
}

# add_busybox ROOTFS: busybox as /bin/busybox and every applet as a symlink to it, except where
# ROOTFS already has a file of that name. Sets BUSYBOX_APPLETS to how many links it made.
add_busybox() {
  mkdir -p "$1/bin"
  cp "$BUSYBOX" "$1/bin/busybox"
  BUSYBOX_APPLETS=0
  for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] && continue
    [ -e "$1/bin/$applet" ] && continue
    ln -s busybox "$1/bin/$applet"
    BUSYBOX_APPLETS=$((BUSYBOX_APPLETS + 1))
  done
}

# add_users ROOTFS HOME: /etc/passwd and /etc/group with root, the uid 1000 user `skiff` (home
# HOME) and nobody.
add_users() {
  mkdir -p "$1/etc"
  cat >"$1/etc/passwd" <<EOT
root:x:0:0:root:/root:/bin/sh
skiff:x:1000:1000:skiff:$2:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOT
  cat >"$1/etc/group" <<'EOT'
root:x:0:
skiff:x:1000:
nogroup:x:65534:
EOT
}
