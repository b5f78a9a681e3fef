#!/bin/bash
# soak.sh - what `make soak` runs: the long part of the reliability suite (docs/reliability.md).
# Each test/soak/*.sh other than this one is one part; all of them run (a failed part does
# not stop the others) and the summary says which failed. SOAK_PARTS="crash fuzz" runs only
# those parts. The fast versions of the same tests run in `make test`.
set -uo pipefail
cd "$(dirname "$0")/../.."
export STASH_SOAK=1 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
T0=$(date +%s)
declare -a summary
rc=0
for part in test/soak/*.sh; do
  name=$(basename "$part" .sh)
  [ "$name" = soak ] && continue
  if [ -n "${SOAK_PARTS:-}" ] && ! grep -qw -- "$name" <<<"$SOAK_PARTS"; then continue; fi
  t=$(date +%s)
  echo "==> [$(( t - T0 ))s] soak part: $name"
  if bash "$part"; then res=ok; else res=FAILED; rc=1; fi
  summary+=("$(printf '%-12s %-7s %5ds' "$name" "$res" $(( $(date +%s) - t )))")
done
echo "==> soak summary ($(( $(date +%s) - T0 ))s)"
printf '  %s\n' "${summary[@]}"
exit $rc
