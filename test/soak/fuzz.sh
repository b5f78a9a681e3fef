#!/bin/bash
# fuzz.sh - the fuzz part of `make soak` (docs/reliability.md, "Hostile input"): runs every
# fuzz test of the module (every func Fuzz* that the package's test binary lists, so new
# ones are picked up) for FUZZTIME each, one at a time, and ends with a table of, per
# fuzzer, the executions, the new interesting inputs and the result. It exits non-zero
# when a fuzzer failed (or its package does not build), or when it was interrupted; the
# table is printed in every case, with what ran so far.
#
# Each package's test binary is built once with fuzzing instrumentation (go test -c -fuzz;
# the first build of plugin/jobs, which links client-go, takes minutes, later ones come
# from the build cache) and run directly. Its corpus is kept between runs outside the
# clone, in ${STASH_CACHE_DIR:-$HOME/.cache/kubectl-stash}/fuzz-corpus/<package>/<FuzzName>,
# which the fuzzer reads and writes (-test.fuzzcachedir), so the runs add up and survive
# `go clean -cache`; inputs that `go test -fuzz` runs left in the build cache are merged
# into it first. A failing input is written by the fuzzer to the package's
# testdata/fuzz/<FuzzName>/: commit it with the fix, and it runs in every `make test`.
#
#   FUZZTIME=2m          how long each fuzzer runs (a Go duration, or Nx for N inputs)
#   FUZZ=Regexp          only the fuzzers whose names match
#   FUZZPARALLEL=1       fuzzing workers per fuzzer (the machine is shared: 1 by default)
#   FUZZMINIMIZETIME=0   time (or Nx runs) spent shrinking each new input. Go's default,
#                        60s, is spent on every input that finds new coverage, and
#                        shrinking a few hundred bytes of JSON tries every run of bytes to
#                        drop: a fuzzer of the annotations did 4 execs in 15s. A failing
#                        input is kept as found; set 60s to shrink it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=${GOFLAGS:--buildvcs=false}
FUZZTIME=${FUZZTIME:-2m}
FUZZPARALLEL=${FUZZPARALLEL:-1}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-0}
CORPUS=${STASH_CACHE_DIR:-$HOME/.cache/kubectl-stash}/fuzz-corpus
MODULE=$(go list -m)
GOFUZZCACHE=$(go env GOCACHE)/fuzz
mkdir -p "$CORPUS"
CORPUS=$(cd "$CORPUS" && pwd) # the fuzzers run in their package's directory
work=$(mktemp -d)
T0=$(date +%s)
total=0 failed=0 interrupted=0 finished=0 running=
declare -a rows=()
count() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }
row() { rows+=("$(printf '%-26s %-22s %10s %7s %5s %7s %6s  %s' "$@")"); echo "    ${rows[-1]}"; }

# The table is printed on the way out, however the script ends: after the last fuzzer,
# on a failed step (set -e), or on SIGINT/SIGTERM (a timeout around `make soak`), which
# stop the fuzzer running then and skip the rest.
summary() {
  local rc=$?
  trap - EXIT INT TERM
  rm -rf "$work"
  echo "==> fuzz summary: $total fuzzers, $FUZZTIME each, $failed failed, $(( $(date +%s) - T0 ))s (corpus kept in $CORPUS)"
  printf '%-26s %-22s %10s %7s %5s %7s %6s  %s\n' package fuzzer execs execs/s new corpus build result
  if [ ${#rows[@]} -gt 0 ]; then printf '%s\n' "${rows[@]}"; fi
  if [ "$interrupted" = 1 ]; then echo "==> interrupted: the fuzzers after the last row did not run"; exit 130; fi
  if [ "$finished" != 1 ]; then echo "==> fuzz.sh stopped early (exit $rc): the fuzzers after the last row did not run"; exit $(( rc == 0 ? 1 : rc )); fi
  if [ "$failed" -ne 0 ]; then exit 1; fi
  exit 0
}
stop() {
  interrupted=1
  # the fuzzer stops its workers and exits on SIGINT; bash runs this trap at once because
  # the fuzzer runs in the background and the script waits for it with `wait`
  if [ -n "$running" ]; then kill -INT "$running" 2>/dev/null || true; fi
}
trap summary EXIT
trap stop INT TERM

# Packages with fuzz tests: those whose test files declare one.
mapfile -t pkgs < <(grep -rl --include='*_test.go' --exclude-dir=testdata --exclude-dir=.git '^func Fuzz' . | xargs -r -n1 dirname | sort -u)
for dir in "${pkgs[@]}"; do
  [ "$interrupted" = 1 ] && break
  # (a package none of whose fuzzers FUZZ picks is not built)
  grep -hoE '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | cut -c6- | grep -qE -- "${FUZZ:-.}" || continue
  pkg=$MODULE/${dir#./}
  bin=$work/$(tr / _ <<<"${dir#./}").test
  echo "==> [$(( $(date +%s) - T0 ))s] build $pkg with fuzzing instrumentation"
  t=$(date +%s)
  if ! go test -c -fuzz '^Fuzz' -o "$bin" "$dir" >"$work/build.log" 2>&1; then
    total=$((total + 1)) failed=$((failed + 1))
    head -20 "$work/build.log"
    row "${dir#./}" '(all)' - - - - "$(( $(date +%s) - t ))s" 'FAILED: does not build'
    continue
  fi
  built=$(( $(date +%s) - t ))
  mapfile -t fuzzers < <(cd "$dir" && "$bin" -test.list '^Fuzz' | grep '^Fuzz' | grep -E -- "${FUZZ:-.}" || true)
  for fz in "${fuzzers[@]}"; do
    [ "$interrupted" = 1 ] && break
    total=$((total + 1))
    kept=$CORPUS/$pkg/$fz
    mkdir -p "$kept"
    if [ -d "$GOFUZZCACHE/$pkg/$fz" ]; then cp -rn "$GOFUZZCACHE/$pkg/$fz"/. "$kept"/ 2>/dev/null || true; fi
    echo "==> [$(( $(date +%s) - T0 ))s] $pkg $fz ($FUZZTIME, corpus of $(count "$kept") kept inputs)"
    log=$work/$fz.log
    t=$(date +%s)
    (cd "$dir" && exec "$bin" -test.run '^$' -test.fuzz "^$fz\$" -test.fuzztime "$FUZZTIME" \
      -test.fuzzminimizetime "$FUZZMINIMIZETIME" -test.parallel "$FUZZPARALLEL" \
      -test.fuzzcachedir "$CORPUS/$pkg" -test.timeout 0) >"$log" 2>&1 &
    running=$!
    rc=0
    wait "$running" || rc=$?
    # a signal ends `wait` early: wait again for the fuzzer to stop
    while kill -0 "$running" 2>/dev/null; do wait "$running" || rc=$?; done
    running=
    secs=$(( $(date +%s) - t ))
    # the last status line: "fuzz: elapsed: 30s, execs: 12345 (411/sec), new interesting: 7 (total: 99)"
    last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -1 || true)
    execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
    new=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
    res=ok
    if [ "$interrupted" = 1 ]; then
      res=interrupted
    elif [ "$rc" -ne 0 ]; then
      failed=$((failed + 1))
      if grep -q 'Failing input written to' "$log"; then
        res="FAILED: ${dir#./}/$(grep -m1 -oE 'testdata/fuzz/[^ ]+' "$log")"
      else
        res="FAILED (exit $rc)"
      fi
      grep -E -A3 -- '--- FAIL|Failing input|panic:' "$log" | head -40 || true
    fi
    row "${dir#./}" "$fz" "${execs:-0}" "$(( ${execs:-0} / (secs > 0 ? secs : 1) ))" "${new:-0}" "$(count "$kept")" "${built}s" "$res"
  done
done
finished=1
