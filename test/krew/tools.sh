#!/bin/bash
# tools.sh - build krew and validate-krew-manifest (sigs.k8s.io/krew v0.4.4, the `tool`
# directives of tools/go.mod) from the Go module proxy, once, and print the directory that
# holds them.
#
# They go to $STASH_CACHE_DIR/tools/krew-<hash of tools/go.sum>/bin (outside the clone, shared
# by clones; a new go.sum builds a new directory), through a staging directory so that an
# interrupted build never looks finished. Module and build caches are the other tools' ones
# ($STASH_CACHE_DIR/tools/go). About a minute the first time, nothing afterwards.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STASH_CACHE_DIR=${STASH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-stash}
TOOLS=$STASH_CACHE_DIR/tools
key=$(sha256sum "$REPO/tools/go.sum" | cut -c1-16)
DIR=$TOOLS/krew-$key

if [ ! -x "$DIR/bin/krew" ] || [ ! -x "$DIR/bin/validate-krew-manifest" ]; then
  command -v go >/dev/null || { echo "tools.sh: go is not installed" >&2; exit 1; }
  echo "tools.sh: building krew and validate-krew-manifest (first time only: about a minute)" >&2
  t=$(date +%s)
  stage=$DIR.tmp.$$
  rm -rf "$stage"; mkdir -p "$stage/bin"
  if ! (cd "$REPO/tools" && GOBIN="$stage/bin" GOPATH="$TOOLS/go/path" GOMODCACHE="$TOOLS/go/mod" GOCACHE="$TOOLS/go/build" \
        GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off \
        go install -trimpath -ldflags='-s -w' tool) >"$stage.log" 2>&1; then
    tail -20 "$stage.log" >&2; rm -rf "$stage" "$stage.log"
    echo "tools.sh: building the krew tools failed" >&2; exit 1
  fi
  rm -rf "$DIR"; mv "$stage" "$DIR"; rm -f "$stage.log"
  echo "tools.sh: built in $(( $(date +%s) - t ))s into $DIR" >&2
fi
echo "$DIR/bin"
