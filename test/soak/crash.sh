#!/bin/bash
# crash.sh - soak part "crash": crash consistency and corruption (docs/reliability.md).
#   1. stash-job, built with -tags crashpoints, is killed with SIGKILL at 50 points of
#      backup, forget and prune (internal/engine/crashpoint); after each kill the
#      repository must check clean with every pack read, every snapshot restore
#      bit-identically, and the next backup, forget and prune run with no unlock.
#   2. 1200 seeded corruptions (flipped pack bytes in blobs and headers, deleted packs,
#      truncated index files, damaged snapshot files): check must find and name each,
#      restore must fail naming the lost paths and restore the rest.
# `make test` runs the fast versions (23 kills, 60 corruptions).
set -euo pipefail
cd "$(dirname "$0")/../.."
export STASH_SOAK=1 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
rc=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "--- crash consistency (SIGKILL at crash points)"
if ! go test -tags crashpoints -count=1 -timeout 60m -run '^TestCrash' -v ./cmd/stash-job/ >"$log" 2>&1; then
  rc=1
  grep -E -- '--- FAIL|crash_test.go' "$log" | head -40 || true
fi
grep -E '^(crash points tried|left by the killed runs):' "$log" || { echo "no crash summary"; tail -20 "$log"; rc=1; }

echo "--- corruption (check finds, restore contains)"
if ! go test -count=1 -timeout 60m -run '^TestCorruption' -v ./internal/engine/check/ >"$log" 2>&1; then
  rc=1
  grep -E -- '--- FAIL|corruption_test.go' "$log" | head -40 || true
fi
grep -E -A6 '^corruptions tried:' "$log" || { echo "no corruption summary"; tail -20 "$log"; rc=1; }
exit $rc
