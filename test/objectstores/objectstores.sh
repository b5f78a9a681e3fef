#!/bin/bash
# objectstores.sh - install, start and stop real object-store servers on 127.0.0.1 for the
# store conformance suite (go test -tags objectstores ./internal/store/...):
#
#   S3     VersityGW         go install github.com/versity/versitygw/cmd/versitygw
#   GCS    fake-gcs-server   go install github.com/fsouza/fake-gcs-server
#   Azure  Azurite           npm install azurite (needs node and npm)
#
# Usage: objectstores.sh install   install what is missing (cached, keyed on version)
#        objectstores.sh up        install, start what is not running, create the test
#                                  bucket/container on each, write the env file
#        objectstores.sh down      stop the servers this script started, remove their data
#        objectstores.sh env       print the path of the env file
#        objectstores.sh path NAME print the path of an installed server binary
#
# Tools are installed into $STASH_CACHE_DIR/tools/<name>-<version>/ (default
# ${XDG_CACHE_HOME:-~/.cache}/kubectl-stash), outside the clone, so a fresh clone reuses them.
# The Go installs use their own module and build caches under $STASH_CACHE_DIR/tools/go; the
# user's Go and npm caches are only ever added to, never removed.
#
# Run state (PIDs, ports, logs, the env file) lives in $RUN_DIR (default
# $STASH_CACHE_DIR/objectstores); object data lives in a fresh temporary directory that
# `down` removes. Every server listens on 127.0.0.1 only. Both `up` and `down` may be run
# any number of times: `up` leaves running servers alone, `down` with nothing running is a
# no-op, and `down` only ever signals the PIDs recorded by `up` (after checking that each
# still runs the binary that was started).
#
# The env file exports STASH_TEST_S3_URL, STASH_TEST_GCS_URL, STASH_TEST_AZBLOB_URL and the
# credentials the drivers read (AWS_*, STORAGE_EMULATOR_HOST, AZURE_STORAGE_CONNECTION_STRING).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STASH_CACHE_DIR=${STASH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-stash}
TOOLS=$STASH_CACHE_DIR/tools
RUN_DIR=${RUN_DIR:-$STASH_CACHE_DIR/objectstores}
ENV_FILE=$RUN_DIR/objectstores.env

VERSITYGW_VERSION=v1.8.0      # github.com/versity/versitygw (the only version the proxy serves)
FAKEGCS_VERSION=v1.56.1       # github.com/fsouza/fake-gcs-server
AZURITE_VERSION=3.35.0        # npm azurite

VERSITYGW_DIR=$TOOLS/versitygw-$VERSITYGW_VERSION
FAKEGCS_DIR=$TOOLS/fake-gcs-server-$FAKEGCS_VERSION
AZURITE_DIR=$TOOLS/azurite-$AZURITE_VERSION
VERSITYGW_BIN=$VERSITYGW_DIR/bin/versitygw
FAKEGCS_BIN=$FAKEGCS_DIR/bin/fake-gcs-server
AZURITE_BIN=$AZURITE_DIR/node_modules/azurite/dist/src/blob/main.js

# Preferred ports; the next free one is used when a port is taken.
S3_PORT=${S3_PORT:-7070}
GCS_PORT=${GCS_PORT:-4443}
AZURE_PORT=${AZURE_PORT:-10000}

BUCKET=stash-test
# Local-only credentials for the S3 server this script starts.
S3_ACCESS_KEY=stash-test-access
S3_SECRET_KEY=stash-test-secret-key
# Azurite's fixed development account, published in Azurite's documentation.
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

T0=$(date +%s%N)
ts() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '%4d.%ds' $((ms / 1000)) $((ms % 1000 / 100)); }
log() { echo "[$(ts)] objectstores: $*" >&2; }
die() { echo "objectstores: $*" >&2; exit 1; }

# ---------------------------------------------------------------- install (cached)

# go_install DIR PKG@VERSION: build into DIR/bin through a staging directory, so an
# interrupted install never looks finished.
go_install() {
  local dir=$1 pkg=$2 name; name=$(basename "${pkg%@*}")
  [ -x "$dir/bin/$name" ] && return 0
  command -v go >/dev/null || die "go is not installed (needed to install $name)"
  log "installing $pkg (first time only: several minutes)"
  local stage="$dir.tmp.$$" t; t=$(date +%s)
  rm -rf "$stage"; mkdir -p "$stage/bin"
  if ! GOBIN="$stage/bin" GOPATH="$TOOLS/go/path" GOMODCACHE="$TOOLS/go/mod" GOCACHE="$TOOLS/go/build" \
       GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off \
       go install -trimpath -ldflags='-s -w' "$pkg" >"$stage.log" 2>&1; then
    tail -20 "$stage.log" >&2; rm -rf "$stage" "$stage.log"; die "go install $pkg failed"
  fi
  rm -rf "$dir"; mv "$stage" "$dir"; rm -f "$stage.log"
  log "installed $pkg in $(( $(date +%s) - t ))s"
}

npm_install_azurite() {
  [ -f "$AZURITE_BIN" ] && return 0
  local missing=()
  command -v node >/dev/null || missing+=(node)
  command -v npm >/dev/null || missing+=(npm)
  [ ${#missing[@]} = 0 ] || die "cannot install Azurite: missing ${missing[*]} (apt-get install nodejs npm)"
  log "installing azurite@$AZURITE_VERSION from npm (first time only)"
  local stage="$AZURITE_DIR.tmp.$$" t; t=$(date +%s)
  rm -rf "$stage"; mkdir -p "$stage"
  if ! npm install --prefix "$stage" --no-audit --no-fund --no-save --loglevel=error \
       "azurite@$AZURITE_VERSION" >"$stage.log" 2>&1; then
    tail -20 "$stage.log" >&2; rm -rf "$stage" "$stage.log"; die "npm install azurite@$AZURITE_VERSION failed"
  fi
  [ -f "$stage/node_modules/azurite/dist/src/blob/main.js" ] || { rm -rf "$stage" "$stage.log"; die "azurite@$AZURITE_VERSION has no blob server entry point"; }
  rm -rf "$AZURITE_DIR"; mv "$stage" "$AZURITE_DIR"; rm -f "$stage.log"
  log "installed azurite@$AZURITE_VERSION in $(( $(date +%s) - t ))s"
}

install_all() {
  mkdir -p "$TOOLS"
  command -v curl >/dev/null || die "curl is not installed (apt-get install curl)"
  go_install "$VERSITYGW_DIR" "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
  go_install "$FAKEGCS_DIR" "github.com/fsouza/fake-gcs-server@$FAKEGCS_VERSION"
  npm_install_azurite
}

# ---------------------------------------------------------------- processes

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p=$1
  while ! port_free "$p"; do p=$((p + 1)); [ $p -lt $(( $1 + 100 )) ] || die "no free port near $1"; done
  echo "$p"
}

# running NAME: true when the PID recorded for NAME is alive and still runs what we started.
running() {
  local pidf=$RUN_DIR/$1.pid pid exe
  [ -f "$pidf" ] || return 1
  read -r pid exe <"$pidf" || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  grep -qF -- "$exe" <<<"$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")"
}

# start NAME EXE ARGS...: start in its own session (it outlives this script), record PID + EXE.
start() {
  local name=$1 exe=$2 pid i; shift 2
  setsid "$@" </dev/null >"$RUN_DIR/$name.log" 2>&1 &
  pid=$!
  echo "$pid $exe" >"$RUN_DIR/$name.pid"
  # until setsid has executed the server, the child is a copy of this shell and its command
  # line is ours: on a busy machine `running` would take it for a server that died
  for i in $(seq 1 100); do
    grep -qF -- "$exe" <<<"$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" && break
    [ -r "/proc/$pid/cmdline" ] || break
    sleep 0.05
  done
}

# wait_ready NAME URL: poll until URL answers with any HTTP status (or the server dies).
wait_ready() {
  local name=$1 url=$2 i code
  for i in $(seq 1 300); do
    running "$name" || { tail -20 "$RUN_DIR/$name.log" >&2; die "$name exited during start-up (log: $RUN_DIR/$name.log)"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
    [ "$code" != 000 ] && return 0
    sleep 0.1
  done
  die "$name did not answer on $url within 30s (log: $RUN_DIR/$name.log)"
}

stop() {
  local name=$1 pid exe i
  [ -f "$RUN_DIR/$name.pid" ] || return 0
  if running "$name"; then
    read -r pid exe <"$RUN_DIR/$name.pid"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do running "$name" || break; sleep 0.1; done
    running "$name" && kill -KILL "$pid" 2>/dev/null || true
    log "stopped $name (pid $pid)"
  fi
  rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.port"
}

port_of() { cat "$RUN_DIR/$1.port"; }

up() {
  install_all
  mkdir -p "$RUN_DIR"
  local data
  if [ -f "$RUN_DIR/datadir" ] && [ -d "$(cat "$RUN_DIR/datadir")" ]; then data=$(cat "$RUN_DIR/datadir")
  else data=$(mktemp -d "${TMPDIR:-/tmp}/kubectl-stash-objectstores.XXXXXX"); echo "$data" >"$RUN_DIR/datadir"; fi

  if ! running versitygw; then
    local p; p=$(free_port "$S3_PORT"); mkdir -p "$data/s3"
    ROOT_ACCESS_KEY=$S3_ACCESS_KEY ROOT_SECRET_KEY=$S3_SECRET_KEY \
      start versitygw "$VERSITYGW_BIN" "$VERSITYGW_BIN" --port "127.0.0.1:$p" posix "$data/s3"
    echo "$p" >"$RUN_DIR/versitygw.port"
  fi
  if ! running fake-gcs-server; then
    local p; p=$(free_port "$GCS_PORT"); mkdir -p "$data/gcs"
    start fake-gcs-server "$FAKEGCS_BIN" "$FAKEGCS_BIN" -scheme http -host 127.0.0.1 -port "$p" \
      -backend filesystem -filesystem-root "$data/gcs" -external-url "http://127.0.0.1:$p" \
      -public-host "127.0.0.1:$p" -log-level warn
    echo "$p" >"$RUN_DIR/fake-gcs-server.port"
  fi
  if ! running azurite; then
    command -v node >/dev/null || die "cannot start Azurite: node is missing (apt-get install nodejs)"
    local p; p=$(free_port "$AZURE_PORT"); mkdir -p "$data/azure"
    start azurite "$AZURITE_BIN" node "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$p" \
      --location "$data/azure" --skipApiVersionCheck --disableTelemetry
    echo "$p" >"$RUN_DIR/azurite.port"
  fi

  local s3=http://127.0.0.1:$(port_of versitygw) gcs=127.0.0.1:$(port_of fake-gcs-server)
  local az=http://127.0.0.1:$(port_of azurite)/$AZURITE_ACCOUNT
  wait_ready versitygw "$s3/"
  wait_ready fake-gcs-server "http://$gcs/storage/v1/b"
  wait_ready azurite "$az?comp=list"

  local tmp="$ENV_FILE.tmp"
  cat >"$tmp" <<EOF
# written by test/objectstores/objectstores.sh up; servers on 127.0.0.1, data in $data
export STASH_TEST_S3_URL='s3://$BUCKET?endpoint=$s3&use_path_style=true&region=us-east-1&request_checksum_calculation=when_required&response_checksum_validation=when_required'
export AWS_ACCESS_KEY_ID='$S3_ACCESS_KEY'
export AWS_SECRET_ACCESS_KEY='$S3_SECRET_KEY'
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
export STASH_TEST_GCS_URL='gs://$BUCKET'
export STORAGE_EMULATOR_HOST='$gcs'
export STASH_TEST_AZBLOB_URL='azblob://$BUCKET'
export AZURE_STORAGE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=$AZURITE_ACCOUNT;AccountKey=$AZURITE_KEY;BlobEndpoint=$az;'
EOF

  # The bucket/container on each server (already there on a second `up`: fine); the
  # env file appears only once they exist.
  ( set -a; . "$tmp"; cd "$REPO"
    GOFLAGS=-buildvcs=false GOTOOLCHAIN=local go run ./test/objectstores/mkbucket \
      -s3-endpoint "$s3" -gcs-endpoint "http://$gcs" -bucket "$BUCKET" ) \
    || die "creating the test buckets failed (logs in $RUN_DIR)"
  mv "$tmp" "$ENV_FILE"
  log "up: S3 $s3, GCS http://$gcs, Azure $az; env: $ENV_FILE"
}

down() {
  [ -d "$RUN_DIR" ] || return 0
  stop versitygw; stop fake-gcs-server; stop azurite
  if [ -f "$RUN_DIR/datadir" ]; then
    local data; data=$(cat "$RUN_DIR/datadir")
    case "$data" in "${TMPDIR:-/tmp}"/kubectl-stash-objectstores.*) rm -rf "$data";; esac
    rm -f "$RUN_DIR/datadir"
  fi
  rm -f "$ENV_FILE"
}

case "${1:-}" in
  install) install_all ;;
  up) up ;;
  down) down ;;
  env) echo "$ENV_FILE" ;;
  path) # path NAME: the installed server binary (the e2e tests start their own S3 server)
    case "${2:-}" in
      versitygw) echo "$VERSITYGW_BIN" ;;
      fake-gcs-server) echo "$FAKEGCS_BIN" ;;
      *) echo "objectstores.sh path: want versitygw or fake-gcs-server" >&2; exit 2 ;;
    esac ;;
  *) echo "usage: $0 install|up|down|env" >&2; exit 2 ;;
esac
