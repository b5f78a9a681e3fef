#!/bin/bash
# scale.sh - soak part "scale": peak RSS and wall time of stash-job backing up 100,000 and
# 1,000,000 generated small files (and the million again, unchanged), and a 1 GiB and a 20 GiB
# file of generated data. The big file is random data when the disk has room for it and a
# repository as large (the file's size x 2 1/16, 41.25 GiB for 20 GiB), else pseudo-random
# hexadecimal text, which compresses to about two thirds (x 1 11/16 with the repository and
# spare room, 34.25 GiB); with less than that free the test skips with a message.
# Data goes under $STASH_SCALE_DIR (default: the temporary directory) and is removed after.
# STASH_SCALE_FILES, STASH_SCALE_SMALL_FILES and STASH_SCALE_BIG_FILE_GIB change the sizes;
# STASH_SCALE_BIG_FILE_DATA=random|hex chooses the big file's data instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
export STASH_SOAK=1 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
dir=${STASH_SCALE_DIR:-${TMPDIR:-/tmp}}
df -h "$dir"; df -i "$dir"
if [ -z "${STASH_SCALE_BIG_FILE_DATA:-}" ]; then
	# the free space TestScaleBigFile needs (bigFileKind.need): the file, its expected
	# repository (100% of the file for random data, 65% for hex) and a sixteenth to spare
	gib=${STASH_SCALE_BIG_FILE_GIB:-20}
	free_mib=$(($(df -B1 --output=avail "$dir" | tail -1) >> 20))
	need_mib() { echo $((gib * 1024 + gib * 1024 * $1 / 100 + gib * 64)); }
	gibs() { printf '%d.%02d GiB' $(($1 >> 10)) $((($1 & 1023) * 100 >> 10)); }
	if [ "$free_mib" -lt "$(need_mib 100)" ] && [ "$free_mib" -ge "$(need_mib 65)" ]; then
		export STASH_SCALE_BIG_FILE_DATA=hex
		echo "big file: $(gibs "$free_mib") free; a $gib GiB file of random data and its repository" \
			"need $(gibs "$(need_mib 100)"), of hexadecimal text $(gibs "$(need_mib 65)"):" \
			"using hexadecimal text (STASH_SCALE_BIG_FILE_DATA=hex)"
	fi
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
go test -count=1 -timeout 90m -run 'TestScaleManyFiles|TestScaleBigFile' -v ./cmd/stash-job/ >"$log" 2>&1 || rc=1
grep -E '^FIGURE|SKIP|GiB free|^(--- |ok|FAIL)|scale_test.go:[0-9]+: (peak|the|backup)' "$log" || true
[ $rc = 0 ] || tail -40 "$log"
exit $rc
