#!/bin/bash
# scale.sh - soak part "scale": peak RSS and wall time of stash-job backing up 100,000 and
# 1,000,000 generated small files (and the million again, unchanged), and a 1 GiB and a 20 GiB
# file of random data (skipped with a message when the disk has less than 45 GiB free).
# Data goes under $STASH_SCALE_DIR (default: the temporary directory) and is removed after.
# STASH_SCALE_FILES, STASH_SCALE_SMALL_FILES and STASH_SCALE_BIG_FILE_GIB change the sizes.
set -euo pipefail
cd "$(dirname "$0")/../.."
export STASH_SOAK=1 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
df -h "${STASH_SCALE_DIR:-${TMPDIR:-/tmp}}"; df -i "${STASH_SCALE_DIR:-${TMPDIR:-/tmp}}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
go test -count=1 -timeout 90m -run 'TestScaleManyFiles|TestScaleBigFile' -v ./cmd/stash-job/ >"$log" 2>&1 || rc=1
grep -E '^FIGURE|SKIP|GiB free|^(--- |ok|FAIL)|scale_test.go:[0-9]+: (peak|the|backup)' "$log" || true
[ $rc = 0 ] || tail -40 "$log"
exit $rc
