#!/bin/sh
# Builds stand-ins for the three images `pnpm local:up` pulls, from what this machine has installed,
# for machines that cannot pull (CI here). Nothing is downloaded:
#
#   skiff-local-base:latest      the skiff image's base: this host's node, bubblewrap, slirp4netns, and
#                                the compose CLI (docker-compose with its python) for the controller
#   skiff-local-postgres:latest  this host's PostgreSQL server; honours POSTGRES_USER, POSTGRES_PASSWORD
#                                and POSTGRES_DB on an empty data directory, as the official image does
#   skiff-local-redis:latest     this host's redis-server and redis-cli
#
# Each binary is copied with the shared libraries `ldd` lists for it, at the paths the loader found
# them; Debian's static busybox provides /bin/sh and the usual tools. Use them with
#
#   SKIFF_BASE_IMAGE=skiff-local-base:latest SKIFF_POSTGRES_IMAGE=skiff-local-postgres:latest \
#   SKIFF_REDIS_IMAGE=skiff-local-redis:latest SKIFF_IMAGE_DEPS=context pnpm local:up
#
# Idempotent: an image is rebuilt only when its `skiff.standin` label differs from what this script
# would build (the script's revision and the host's versions).
set -eu

PROG=build-local-images
. "$(dirname "$0")/lib/busybox-rootfs.sh"
REVISION=1

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "$PROG: \`$1\` is not installed here: $2" >&2
    exit 1
  fi
}

# add_binary ROOTFS FILE...: each file at its own path, and every library ldd lists for it.
add_binary() {
  root=$1
  shift
  for file in "$@"; do
    mkdir -p "$root$(dirname "$file")"
    cp -L "$file" "$root$file"
    add_libraries "$root" "$file"
  done
}

# add_libraries ROOTFS FILE: the shared libraries FILE needs, symlinks followed, at their host paths.
add_libraries() {
  for lib in $(ldd "$2" 2>/dev/null | awk '/=> \// { print $3 } /^[[:space:]]*\// { print $1 }'); do
    [ -e "$1$lib" ] && continue
    mkdir -p "$1$(dirname "$lib")"
    cp -L "$lib" "$1$lib"
  done
}

new_rootfs() {
  ROOTFS="$(mktemp -d)"
  mkdir -p "$ROOTFS/bin" "$ROOTFS/usr/bin" "$ROOTFS/etc" "$ROOTFS/tmp" "$ROOTFS/proc" "$ROOTFS/sys" "$ROOTFS/dev"
  chmod 1777 "$ROOTFS/tmp"
}

# import NAME LABEL CHANGE...: the rootfs as image NAME, labelled, then the rootfs removed.
import_rootfs() {
  name=$1
  label=$2
  shift 2
  set -- --change "LABEL skiff.standin=\"$label\"" "$@"
  tar -C "$ROOTFS" --numeric-owner -cf - . | docker import "$@" - "$name" >/dev/null
  rm -rf "$ROOTFS"
  echo "$PROG: built $name ($label)"
}

# current NAME LABEL: true when NAME exists with that label.
current() {
  have="$(docker image inspect --format '{{ index .Config.Labels "skiff.standin" }}' "$1" 2>/dev/null || true)"
  if [ "$have" = "$2" ]; then
    echo "$PROG: $1 is up to date ($2)"
    return 0
  fi
  return 1
}

ensure_static_busybox
need docker "apt-get install docker.io"

base() {
  need node "install Node 20"
  need bwrap "apt-get install bubblewrap"
  need docker-compose "apt-get install docker-compose"
  node="$(readlink -f "$(command -v node)")"
  python="$(readlink -f /usr/bin/python3)"
  label="r$REVISION node $("$node" --version) bwrap $(bwrap --version | awk '{ print $2 }') compose $(docker-compose version --short 2>/dev/null)"
  current skiff-local-base:latest "$label" && return 0
  new_rootfs
  add_binary "$ROOTFS" "$node" "$(command -v bwrap)"
  [ "$node" = /usr/bin/node ] || ln -s "$node" "$ROOTFS/usr/bin/node"
  if command -v slirp4netns >/dev/null 2>&1; then add_binary "$ROOTFS" "$(command -v slirp4netns)"; fi
  # The compose CLI: Debian's docker-compose is python; its interpreter, standard library and
  # packages, and the libraries their extension modules load.
  add_binary "$ROOTFS" "$python"
  ln -sf "$(basename "$python")" "$ROOTFS/usr/bin/python3"
  stdlib="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
  mkdir -p "$ROOTFS/usr/lib/python3"
  cp -a "$stdlib" "$ROOTFS$stdlib"
  rm -rf "$ROOTFS$stdlib/test" "$ROOTFS$stdlib/idlelib" "$ROOTFS$stdlib/tkinter"
  cp -a /usr/lib/python3/dist-packages "$ROOTFS/usr/lib/python3/"
  find "$ROOTFS$stdlib" "$ROOTFS/usr/lib/python3/dist-packages" -name '*.so' | while read -r so; do
    add_libraries "$ROOTFS" "${so#"$ROOTFS"}"
  done
  cp /usr/bin/docker-compose "$ROOTFS/usr/bin/docker-compose"
  mkdir -p "$ROOTFS/etc/ssl"
  [ -d /etc/ssl/certs ] && cp -aL /etc/ssl/certs "$ROOTFS/etc/ssl/"
  add_busybox "$ROOTFS"
  add_users "$ROOTFS" /tmp
  import_rootfs skiff-local-base:latest "$label" --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'CMD ["/usr/bin/node", "--version"]'
}

postgres() {
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -z "$bin" ]; then
    echo "$PROG: no PostgreSQL server here: apt-get install postgresql" >&2
    exit 1
  fi
  dir="$(dirname "$bin")"
  version="$(basename "$dir")"
  label="r$REVISION $("$bin/postgres" --version)"
  current skiff-local-postgres:latest "$label" && return 0
  new_rootfs
  mkdir -p "$ROOTFS$dir"
  cp -a "$dir/lib" "$ROOTFS$dir/"
  for tool in postgres initdb pg_ctl pg_isready psql; do add_binary "$ROOTFS" "$bin/$tool"; done
  for so in "$dir"/lib/*.so; do add_libraries "$ROOTFS" "$so"; done
  mkdir -p "$ROOTFS/usr/share/postgresql"
  cp -a "/usr/share/postgresql/$version" "$ROOTFS/usr/share/postgresql/"
  [ -d /usr/share/zoneinfo ] && mkdir -p "$ROOTFS/usr/share" && cp -a /usr/share/zoneinfo "$ROOTFS/usr/share/"
  add_busybox "$ROOTFS"
  add_users "$ROOTFS" /tmp
  echo "postgres:x:999:999:postgres:/var/lib/postgresql:/bin/sh" >>"$ROOTFS/etc/passwd"
  echo "postgres:x:999:" >>"$ROOTFS/etc/group"
  # Owned by the server's user in the image, so a fresh named volume mounted there is too.
  mkdir -p "$ROOTFS/var/lib/postgresql/data" "$ROOTFS/var/run/postgresql"
  chown -R 999:999 "$ROOTFS/var/lib/postgresql" "$ROOTFS/var/run/postgresql"
  chmod 0700 "$ROOTFS/var/lib/postgresql/data"
  mkdir -p "$ROOTFS/usr/local/bin"
  cat >"$ROOTFS/usr/local/bin/docker-entrypoint.sh" <<'EOT'
#!/bin/sh
# The official image's contract, in short: on an empty PGDATA, create the cluster with POSTGRES_USER
# (password POSTGRES_PASSWORD, required from other hosts) and the database POSTGRES_DB; then run the
# command (`postgres ...`).
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres stand-in: POSTGRES_PASSWORD is not set" >&2
    exit 1
  fi
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \"$db\" OWNER \"$user\";" | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "postgres stand-in: initialised $PGDATA (user $user, database $db)"
fi
exec "$@"
EOT
  chmod 0755 "$ROOTFS/usr/local/bin/docker-entrypoint.sh"
  import_rootfs skiff-local-postgres:latest "$label" \
    --change "ENV PATH=/usr/local/bin:$bin:/usr/bin:/bin PGDATA=/var/lib/postgresql/data" \
    --change 'USER 999:999' \
    --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    --change 'CMD ["postgres", "-c", "listen_addresses=*"]'
}

redis() {
  need redis-server "apt-get install redis-server"
  label="r$REVISION $(redis-server --version | awk '{ print $3 }')"
  current skiff-local-redis:latest "$label" && return 0
  new_rootfs
  add_binary "$ROOTFS" "$(readlink -f "$(command -v redis-server)")" "$(readlink -f "$(command -v redis-cli)")"
  server="$(readlink -f "$(command -v redis-server)")"
  [ "$server" = /usr/bin/redis-server ] || ln -s "$server" "$ROOTFS/usr/bin/redis-server"
  cli="$(readlink -f "$(command -v redis-cli)")"
  [ "$cli" = /usr/bin/redis-cli ] || ln -s "$cli" "$ROOTFS/usr/bin/redis-cli"
  add_busybox "$ROOTFS"
  add_users "$ROOTFS" /tmp
  import_rootfs skiff-local-redis:latest "$label" --change 'ENV PATH=/usr/bin:/bin' \
    --change 'USER 65534:65534' --change 'WORKDIR /tmp' --change 'CMD ["redis-server"]'
}

for image in ${*:-base postgres redis}; do
  case "$image" in
    base | postgres | redis) "$image" ;;
    *)
      echo "$PROG: unknown image '$image' (base, postgres or redis)" >&2
      exit 2
      ;;
  esac
done
