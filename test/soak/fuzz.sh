#!/bin/bash
# fuzz.sh - the fuzz part of `make soak` (docs/reliability.md, "Hostile input"): runs every
# fuzz test of the module (every func Fuzz* that `go test -list` finds, so new ones are
# picked up) for FUZZTIME each, one at a time, and prints per fuzzer the executions, the
# new interesting inputs and the failures (which must be 0).
#
# The corpus is kept between runs outside the clone, in
# ${STASH_CACHE_DIR:-$HOME/.cache/kubectl-stash}/fuzz-corpus/<package>/<FuzzName>: before a
# fuzzer runs, its kept inputs are copied into the Go build cache's fuzz directory (where
# `go test -fuzz` reads and writes its corpus), and after it the new ones are copied back,
# so the runs add up and survive `go clean -cache`. A failing input is written
# by the fuzzer to the package's testdata/fuzz/<FuzzName>/: commit it with the fix, and it
# runs in every `make test` from then on.
#
#   FUZZTIME=2m        how long each fuzzer runs (a Go duration, or Nx for N inputs)
#   FUZZ=Regexp        only the fuzzers whose names match
#   FUZZPARALLEL=1     fuzzing workers per fuzzer (the machine is shared: 1 by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=${GOFLAGS:--buildvcs=false}
FUZZTIME=${FUZZTIME:-2m}
FUZZPARALLEL=${FUZZPARALLEL:-1}
CORPUS=${STASH_CACHE_DIR:-$HOME/.cache/kubectl-stash}/fuzz-corpus
MODULE=$(go list -m)
GOFUZZCACHE=$(go env GOCACHE)/fuzz
mkdir -p "$CORPUS"
count() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }

# Packages with fuzz tests: those whose test files declare one; `go test -list` names them.
mapfile -t pkgs < <(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
total=0 failed=0
declare -a rows
for dir in "${pkgs[@]}"; do
  pkg=$MODULE/${dir#./}
  mapfile -t fuzzers < <(go test -list '^Fuzz' "$dir" | grep '^Fuzz' | grep -E -- "${FUZZ:-.}" || true)
  for fz in "${fuzzers[@]}"; do
    total=$((total + 1))
    kept=$CORPUS/$pkg/$fz
    cache=$GOFUZZCACHE/$pkg/$fz
    mkdir -p "$kept" "$cache"
    cp -rn "$kept"/. "$cache"/ 2>/dev/null || true
    before=$(count "$kept")
    echo "==> $pkg $fz ($FUZZTIME, corpus of $before kept inputs)"
    log=$(mktemp)
    rc=0
    go test -count=1 -run '^$' -fuzz "^$fz\$" -fuzztime "$FUZZTIME" -parallel "$FUZZPARALLEL" -timeout 0 "$dir" >"$log" 2>&1 || rc=$?
    cp -rn "$cache"/. "$kept"/ 2>/dev/null || true
    last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -1 || true)
    execs=$(sed -E 's/.*execs: ([0-9]+).*/\1/' <<<"$last")
    res=ok
    if [ "$rc" -ne 0 ]; then
      res=FAILED
      failed=$((failed + 1))
      grep -E -A3 -- '--- FAIL|Failing input|panic:' "$log" | head -40 || true
    fi
    rm -f "$log"
    rows+=("$(printf '%-32s %-24s %12s %8s %6s' "${dir#./}" "$fz" "${execs:-0}" "$(( $(count "$kept") - before ))" "$res")")
  done
done
echo "==> fuzz summary: $total fuzzers, $FUZZTIME each, $failed failed (corpus kept in $CORPUS)"
printf '%-32s %-24s %12s %8s %6s\n' package fuzzer execs new result
printf '%s\n' "${rows[@]}"
[ "$failed" -eq 0 ]
