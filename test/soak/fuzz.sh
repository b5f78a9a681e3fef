#!/bin/bash
# fuzz.sh - the fuzz part of `make soak` (docs/reliability.md, "Hostile input"): runs every
# fuzz test of the module (every func Fuzz* that `go test -list` finds, so new ones are
# picked up) for FUZZTIME each, one at a time, and prints per fuzzer the executions, the
# new interesting inputs and the failures (which must be 0).
#
# The corpus is kept between runs outside the clone, in
# ${STASH_CACHE_DIR:-$HOME/.cache/kubectl-stash}/fuzz-corpus/<package>/<FuzzName>, and each
# run starts from it (-test.fuzzcachedir), so the runs add up. A failing input is written
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
mkdir -p "$CORPUS"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Packages with fuzz tests: those whose test files declare one; `go test -list` names them.
mapfile -t pkgs < <(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
total=0 failed=0
declare -a rows
for dir in "${pkgs[@]}"; do
  pkg=$MODULE/${dir#./}
  bin=$work/$(echo "${dir#./}" | tr / _).test
  go test -c -o "$bin" "$dir"
  mapfile -t fuzzers < <(cd "$dir" && "$bin" -test.list '^Fuzz' | grep '^Fuzz' | grep -E -- "${FUZZ:-.}" || true)
  for fz in "${fuzzers[@]}"; do
    total=$((total + 1))
    log=$work/$fz.log
    mkdir -p "$CORPUS/$pkg"
    before=$(find "$CORPUS/$pkg/$fz" -type f 2>/dev/null | wc -l)
    echo "==> $pkg $fz ($FUZZTIME, corpus $before inputs)"
    rc=0
    (cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^$fz\$" -test.fuzztime "$FUZZTIME" \
      -test.parallel "$FUZZPARALLEL" -test.fuzzcachedir "$CORPUS/$pkg" -test.timeout 0) >"$log" 2>&1 || rc=$?
    last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -1 || true)
    execs=$(sed -E 's/.*execs: ([0-9]+).*/\1/' <<<"$last")
    after=$(find "$CORPUS/$pkg/$fz" -type f 2>/dev/null | wc -l)
    res=ok
    if [ "$rc" -ne 0 ]; then
      res=FAILED
      failed=$((failed + 1))
      grep -E -A3 -- '--- FAIL|Failing input|panic:' "$log" | head -40 || true
    fi
    rows+=("$(printf '%-62s %-26s %12s %8s %6s' "${pkg#"$MODULE"/}" "$fz" "${execs:-0}" "$((after - before))" "$res")")
  done
done
echo "==> fuzz summary: $total fuzzers, $FUZZTIME each, $failed failed (corpus in $CORPUS)"
printf '%-62s %-26s %12s %8s %6s\n' package fuzzer execs new result
printf '%s\n' "${rows[@]}"
[ "$failed" -eq 0 ]
