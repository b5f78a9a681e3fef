#!/bin/bash
# test.sh - what `make test` runs: static checks and unit tests, then the e2e tests on a
# real cluster this script starts and always stops (trap), even when a step fails.
#
# On a machine with empty caches the cluster binaries take several minutes to build: the
# build starts in the background first, and the static checks and unit tests run meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
step() { echo "==> [$(( $(date +%s) - T0 ))s] $*"; }
LOG_DIR=$(mktemp -d /tmp/kubectl-stash-test.XXXXXX)

cleanup() {
  local rc=$?
  # the background build runs in its own process group: end all of it (go build and its compilers)
  [ -n "${BUILD_PID:-}" ] && kill -0 "$BUILD_PID" 2>/dev/null && { kill -TERM -- -"$BUILD_PID" 2>/dev/null; wait "$BUILD_PID" 2>/dev/null; }
  make -s objectstores-down || rc=1
  step "stopping the test cluster"
  make -s cluster-down || rc=1
  bash test/cluster/leftovers.sh || rc=1
  step "done in $(( $(date +%s) - T0 ))s (exit $rc)"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "building the cluster binaries and the test images in the background (cached: returns at once)"
BUILD_ONLY=1 setsid bash -c 'bash test/cluster/up.sh && make -s test-images' >"$LOG_DIR/cluster-build.log" 2>&1 &
BUILD_PID=$!

step "go vet";              make -s vet
step "gofmt";               make -s fmt-check
step "dependency rules";    make -s verify
# the engine's system calls sit behind build tags: the plugin must build for every
# platform make dist ships, not only for this one
step "plugin builds for darwin and windows"
for p in darwin/arm64 darwin/amd64 windows/amd64; do
  CGO_ENABLED=0 GOOS=${p%/*} GOARCH=${p#*/} go build -o /dev/null ./cmd/kubectl-stash
done
step "unit tests";          go test -count=1 ./...
step "crash consistency (SIGKILL at the engine's kill points)"
go test -tags crashpoints -count=1 -run Crash ./cmd/stash-job/
step "object stores";       make -s objectstores-up; make -s test-objectstores

step "waiting for the cluster binaries"
if ! wait "$BUILD_PID"; then BUILD_PID=; tail -30 "$LOG_DIR/cluster-build.log"; exit 1; fi
BUILD_PID=
# reproducible make dist, the Krew manifest validated, krew install/uninstall, completion
# (uses the cluster's kubectl, built above; starts no cluster)
step "release packaging and Krew"; make -s test-krew
step "starting the test cluster"; make -s cluster-up
step "e2e tests";           make -s e2e
