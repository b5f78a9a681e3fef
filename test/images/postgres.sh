#!/usr/bin/env bash
# postgres.sh: build the e2e tests' PostgreSQL image from Debian's packages, the way the
# cluster's other images are built (locally, no registry): debootstrap a minimal root file
# system of this machine's Debian release with postgresql in it, and write it as a
# single-layer image tarball that `test/cluster/up.sh import` loads into containerd.
#
#   bash test/images/postgres.sh OUT.tar     (prints the tarball's path)
#
# The root file system is cached under $IMAGE_CACHE (default ~/.cache/kubectl-stash/images),
# keyed on ROOTFS_REV and the Debian release (raise ROOTFS_REV when what goes into the
# root file system changes), so a second run takes seconds. The mirror
# and release are the ones this machine's apt uses; debootstrap is installed with apt-get
# when missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: postgres.sh OUT.tar}
cache=${IMAGE_CACHE:-$HOME/.cache/kubectl-stash/images}
log() { echo "[postgres-image] $*" >&2; }
# the e2e tests run this reference (test/e2e: postgresImage)
POSTGRES_IMAGE=local.test/postgres:debian

. /etc/os-release
suite=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release: not a Debian system}
mirror=$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | head -1 || true)
if [ -z "$mirror" ]; then
  mirror=$(grep -h -m1 -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1 || true)
fi
[ -n "$mirror" ] || { log "no Debian mirror in this machine's apt sources"; exit 1; }

ROOTFS_REV=1
key=r$ROOTFS_REV-$suite
dir=$cache/postgres-$key
if [ -f "$out" ] && [ "$out" -nt "$dir/.done" ] && [ -f "$dir/.done" ]; then
  echo "$out"   # built from this root file system already
  exit 0
fi
if [ ! -f "$dir/.done" ]; then
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get install -y -qq debootstrap >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq debootstrap >/dev/null; }
  fi
  rm -rf "$dir" && mkdir -p "$cache"
  log "debootstrap $suite with postgresql into $dir (a few minutes, once)"
  debootstrap --variant=minbase --include=postgresql,procps "$suite" "$dir/rootfs" "$mirror" >"$cache/postgres-debootstrap.log" 2>&1 ||
    { tail -20 "$cache/postgres-debootstrap.log" >&2; exit 1; }
  # what the image does not need: package caches and documentation
  rm -rf "$dir/rootfs/var/cache/apt/archives/"*.deb "$dir/rootfs/var/lib/apt/lists/"* "$dir/rootfs/usr/share/doc" "$dir/rootfs/usr/share/man"
  # The server runs as postgres with its data in /var/lib/postgresql/data (a volume);
  # the entrypoint initialises an empty data directory with the password of
  # POSTGRES_PASSWORD, as the official images do, so the tests' pods need no init step.
  cat >"$dir/rootfs/usr/local/bin/postgres-entrypoint" <<'SH'
#!/bin/sh
set -e
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
export PGDATA=${PGDATA:-/var/lib/postgresql/data}
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" >/tmp/pwfile
  chown postgres /tmp/pwfile
  su postgres -s /bin/sh -c "$bin/initdb -D $PGDATA -U postgres --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256" >/dev/null
  rm -f /tmp/pwfile
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
fi
exec su postgres -s /bin/sh -c "exec $bin/postgres -D $PGDATA"
SH
  chmod 755 "$dir/rootfs/usr/local/bin/postgres-entrypoint"
  touch "$dir/.done"
fi
( cd "$root" && go run ./test/images/rootfsimage -ref "$POSTGRES_IMAGE" -out "$out" \
    -entrypoint /usr/local/bin/postgres-entrypoint -env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$dir/rootfs" )
echo "$out"
