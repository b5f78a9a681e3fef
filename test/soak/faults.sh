#!/bin/bash
# faults.sh - soak part "faults": backend faults (docs/reliability.md).
#  1. backup + restore through a store that fails 5 % of calls at random (engine, memblob), 60 rounds;
#  2. the real S3 server (VersityGW) behind a fault-injecting proxy on 127.0.0.1 at 5 %, 15 rounds;
#  3. a backend gone for the whole run: nothing listening, and a server that accepts and never answers.
# Starts the object-store servers if they are not running and stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
export STASH_SOAK=1 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
OS=test/objectstores/objectstores.sh
started=
ENV_FILE=$(bash "$OS" env)
if [ ! -f "$ENV_FILE" ]; then
  bash "$OS" up
  started=1
fi
cleanup() { if [ -n "$started" ]; then bash "$OS" down; fi; }
trap cleanup EXIT
set -a; . "$ENV_FILE"; set +a

log=$(mktemp)
trap 'cleanup; rm -f "$log"' EXIT
rc=0
echo "--- random store faults through the engine"
go test -count=1 -timeout 20m -run 'TestBackupRestoreWithRandomStoreFaults' -v ./internal/engine/snapshot/ >"$log" 2>&1 || rc=1
grep -E 'rounds at|opens failed|snapshots in the repository|^(--- |ok|FAIL)' "$log" || tail -30 "$log"
echo "--- store retries, resumed and stalled downloads, the fault proxy"
go test -count=1 -timeout 10m ./internal/store/ ./internal/store/storetest/... >"$log" 2>&1 || { rc=1; tail -30 "$log"; }
grep -E '^(ok|FAIL)' "$log" || true
echo "--- S3 (VersityGW) behind the fault proxy; backend gone; backend silent"
go test -tags objectstores -count=1 -timeout 30m -run 'TestS3ThroughFaultyProxy|TestBackupWithBackendGone|TestBackupWithSilentBackend' -v ./cmd/stash-job/ >"$log" 2>&1 || rc=1
grep -E '^FIGURE|^(--- |ok|FAIL)' "$log" || true
[ $rc = 0 ] || tail -40 "$log"
exit $rc
