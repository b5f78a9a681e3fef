#!/bin/bash
# bench.sh - what `make bench` runs: stash-job against restic on the same generated data, in
# the same run, on the same machine. It is a benchmark, not a test: it prints a table of
# medians and ratios and the targets with PASS/MISS, and exits 0 unless something broke
# (a command failed, or a restore did not give back the data). STRICT=1 also fails on a MISS.
#
# Per round and per tool (alternated: A B A B ...; ROUNDS rounds, medians over the rounds):
#   the data set is regenerated from the same seed (test/bench/gen), so every run starts from
#   a byte-identical tree; a fresh repository is created on local disk; then the measured steps:
#     initial    backup of the data directory into the empty repository
#     unchanged  the same backup again, nothing changed
#     change     `gen -change` (about 5 % of the files, not measured), then the backup again
#     restore    restore of the latest snapshot into an empty directory, then (not measured)
#                a check that the restored tree has the same contents as the source
#
# Fairness, decided once and applied to both tools:
#   - Each tool runs with its default settings. restic: compression "auto" (its default),
#     default pack size, its local cache enabled (its default) but placed under BENCH_DIR
#     (RESTIC_CACHE_DIR) so it is fresh per repository and removed afterwards; a cache on the
#     same local disk is what a default `restic` uses too. The cache is not counted in the
#     repository size. stash-job: its defaults.
#   - Both use all CPUs (no GOMAXPROCS limit) and the same repository disk.
#   - The data is written by the generator and flushed (`sync`) before the first step, so both
#     tools read it from a warm page cache, as when backing up recently written data.
#     DROP_CACHES=1 drops the page cache before every measured step instead (needs root).
#   - `sync` runs (not timed) before every step. With SYNC_IN_WALL=1 (the default) a step's
#     wall time includes a `sync` right after the tool exits: a backup is done when it is on
#     disk, and this way a tool that fsyncs its files (restic's local backend does) and one
#     that leaves them in the page cache pay the same. The raw results keep the tool's own
#     time and the sync time apart.
#   - CPU time (user+sys) and peak RSS are the tool process's own, from /usr/bin/time -v.
#   - Both run from ordinary files: stash-job from a copy in BENCH_DIR (written with cat).
#     The file the Go linker has just written sits in the page cache in large folios, and
#     the kernel maps those 2 MiB at a time: up to 12 MiB more resident text
#     (FilePmdMapped in /proc/PID/smaps) than the same binary installed any other way, as
#     restic's is, or as stash-job's is when a container image is unpacked.
#   - Repository size is `du -sb` of the repository directory after each step; "added" is the
#     growth during the step.
#   - A restore starts no sooner than RESTORE_AFTER (61) seconds after the round's deletions
#     (the previous data, repository and restore). ext4 without a journal (as here) will not
#     reuse an inode freed in the last 60 seconds and scans past every such inode each time
#     it creates a file: a tool that reached its restore sooner after the deletions would
#     pay seconds of kernel time more for the same 20,000 files. The wait is not measured.
#
# Environment:
#   ROUNDS=3            rounds (each tool once per round)
#   SCALE=1             data set scale (1: about 1.4 GB; 0.05 for a quick run)
#   SEED=1              data set seed
#   BENCH_DIR=/tmp/stash-bench   data, repositories and restores live in BENCH_DIR/work
#                       (removed at the end), results in BENCH_DIR/results (kept)
#   RESULTS=DIR         where this run's results go (default BENCH_DIR/results/<timestamp>):
#                       raw.tsv (every measurement), table.txt (what is printed), logs/
#   TOOLS="restic stash-job"   which tools, in this order within a round; stash-job-s2 is
#                       stash-job with a repository compressed with s2 instead of zstd
#                       (`init --compression s2`), to show the codec's trade-off
#   KEEP=1              keep BENCH_DIR/work (data, repositories, restores)
#   STASH_JOB=bin/stash-job    the stash-job binary; RESTIC=restic the restic binary
#   SYNC_IN_WALL=1, DROP_CACHES=0, STRICT=0, RESTORE_AFTER=61   see above
#   STASH_RESTORED, RESTIC_RESTORED   where the restored data directory appears under the
#                       restore target (see below)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-1}
SEED=${SEED:-1}
BENCH_DIR=${BENCH_DIR:-/tmp/stash-bench}
TOOLS=${TOOLS:-restic stash-job}
KEEP=${KEEP:-0}
STASH_JOB=${STASH_JOB:-$ROOT/bin/stash-job}
RESTIC=${RESTIC:-restic}
SYNC_IN_WALL=${SYNC_IN_WALL:-1}
DROP_CACHES=${DROP_CACHES:-0}
STRICT=${STRICT:-0}
RESTORE_AFTER=${RESTORE_AFTER:-61}

# Where the restored copy of the backed-up directory $DATA appears under the restore target
# $T. restic recreates the absolute path under the target. stash-job is assumed to do the
# same; if it does not, set e.g. STASH_RESTORED='$T' (contents directly under the target) or
# STASH_RESTORED='$T/data' (only the last path element). Expanded after T and DATA are set.
RESTIC_RESTORED=${RESTIC_RESTORED:-'$T$DATA'}
STASH_RESTORED=${STASH_RESTORED:-'$T$DATA'}

export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=${GOFLAGS:--buildvcs=false}
STEPS=(initial unchanged change restore)
INVOCATION="ROUNDS=$ROUNDS SCALE=$SCALE SEED=$SEED TOOLS='$TOOLS' BENCH_DIR=$BENCH_DIR SYNC_IN_WALL=$SYNC_IN_WALL DROP_CACHES=$DROP_CACHES RESTORE_AFTER=$RESTORE_AFTER bash test/bench/bench.sh"

die() { echo "bench: $*" >&2; exit 1; }
say() { echo "==> $*"; }

# ---- options ----------------------------------------------------------------------------
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$ROUNDS'"
awk -v s="$SCALE" 'BEGIN { exit !(s + 0 > 0) }' || die "SCALE must be a positive number, not '$SCALE'"
[[ $SEED =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer, not '$SEED'"
[[ $RESTORE_AFTER =~ ^[0-9]+$ ]] || die "RESTORE_AFTER must be a number of seconds, not '$RESTORE_AFTER'"
read -r -a TOOL_LIST <<<"$TOOLS"
[ ${#TOOL_LIST[@]} -gt 0 ] || die "TOOLS is empty"
for t in "${TOOL_LIST[@]}"; do
  case $t in restic|stash-job|stash-job-s2) ;; *) die "TOOLS: unknown tool '$t' (want restic, stash-job and/or stash-job-s2)";; esac
done
has_tool() { [[ " ${TOOL_LIST[*]} " == *" $1 "* ]]; }
has_stash_job() { has_tool stash-job || has_tool stash-job-s2; }
BENCH_DIR=$(realpath -m "$BENCH_DIR")
[ "$BENCH_DIR" != / ] || die "BENCH_DIR must not be /"
W=$BENCH_DIR/work
RESULTS=$(realpath -m "${RESULTS:-$BENCH_DIR/results/$(date +%Y%m%d-%H%M%S)}")

# ---- stash-job: are the commands there? ------------------------------------------------
# The commands and flags the benchmark uses (flags may come after the positional arguments:
# `restore ... latest --target T`).
declare -A STASH_FLAGS=(
  [init]="repo password-file"
  [backup]="repo password-file host"
  [restore]="repo password-file target"
)
check_stash_job() {
  [ -x "$STASH_JOB" ] || die "stash-job binary not found at $STASH_JOB (run 'make build', or set STASH_JOB)"
  local cmd out flag missing=() absent=() said=""
  for cmd in init backup restore; do
    out=$("$STASH_JOB" "$cmd" -h 2>&1) || true
    if grep -qiE 'unknown (command|subcommand)' <<<"$out"; then
      absent+=("$cmd")
      [ -n "$said" ] || said=$(grep -iE -m 1 'unknown (command|subcommand)' <<<"$out")
      continue
    fi
    for flag in ${STASH_FLAGS[$cmd]}; do
      grep -qE -- "(^|[[:space:],])--?$flag([[:space:]=,]|$)" <<<"$out" || missing+=("stash-job $cmd --$flag")
    done
  done
  if [ ${#absent[@]} -gt 0 ]; then
    die "stash-job ($STASH_JOB) lacks the command(s) the benchmark needs: ${absent[*]}
  ('$STASH_JOB ${absent[0]} -h' says: $said)
  The benchmark runs:
    stash-job init --repo file:///DIR --password-file F
    stash-job backup --repo file:///DIR --password-file F --host bench DIR
    stash-job restore --repo file:///DIR --password-file F latest --target T"
  fi
  [ ${#missing[@]} -eq 0 ] || die "stash-job lacks flags the benchmark uses (not listed by 'COMMAND -h'): ${missing[*]}"
}
has_stash_job && check_stash_job

# ---- tools: restic, /usr/bin/time, go ---------------------------------------------------
APT_UPDATED=0
apt_install() {
  [ "$(id -u)" = 0 ] || die "$1 is missing; install the Debian package '$2' (needs root)"
  command -v apt-get >/dev/null || die "$1 is missing and there is no apt-get; install '$2'"
  if [ $APT_UPDATED = 0 ]; then
    say "apt-get update"
    apt-get update -qq
    APT_UPDATED=1
  fi
  say "installing the Debian package $2"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
[ -x /usr/bin/time ] || apt_install /usr/bin/time time
if has_tool restic && ! command -v "$RESTIC" >/dev/null; then
  apt_install restic restic
fi
command -v go >/dev/null || die "go is needed to build the data generator"

# ---- work area, results, cleanup --------------------------------------------------------
cleanup() {
  local rc=$?
  if [ "$KEEP" = 1 ]; then
    [ -d "$W" ] && echo "bench: kept the data, repositories and restores in $W"
  else
    rm -rf "$W"
    rmdir "$BENCH_DIR" 2>/dev/null || true # when RESULTS is elsewhere and nothing is left
  fi
  [ -d "$RESULTS" ] && echo "bench: results in $RESULTS"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$W"
mkdir -p "$W/bin" "$RESULTS/logs"
STASH_JOB_SRC=$STASH_JOB
if has_stash_job; then
  cat "$STASH_JOB" >"$W/bin/stash-job"
  chmod 755 "$W/bin/stash-job"
  STASH_JOB=$W/bin/stash-job
fi
LOGS=$RESULTS/logs
RAW=$RESULTS/raw.tsv
TABLE=$RESULTS/table.txt
DATA=$W/data
REPO=$W/repo
T=$W/restore
PW=$W/password
CACHE=$W/restic-cache
TIMEF=$W/time.txt
printf 'stash-bench-password\n' >"$PW"
chmod 600 "$PW"
printf 'round\ttool\tstep\twall_s\ttool_wall_s\tsync_s\tcpu_s\tuser_s\tsys_s\tmaxrss_kb\trepo_bytes\tadded_bytes\n' >"$RAW"

say "building the data generator"
go build -o "$W/bin/gen" ./test/bench/gen
GEN=$W/bin/gen

# ---- the tools' commands ----------------------------------------------------------------
# cmd_for TOOL STEP sets CMD to the command of that step, one word per element.
restic_env=(env RESTIC_REPOSITORY="$REPO" RESTIC_PASSWORD_FILE="$PW" RESTIC_CACHE_DIR="$CACHE")
cmd_for() { # tool step -> CMD array
  local tool=$1 step=$2
  case $tool:$step in
    restic:init)    CMD=("${restic_env[@]}" "$RESTIC" init) ;;
    restic:restore) CMD=("${restic_env[@]}" "$RESTIC" restore latest --target "$T") ;;
    restic:*)       CMD=("${restic_env[@]}" "$RESTIC" backup --host bench "$DATA") ;;
    stash-job:init)    CMD=("$STASH_JOB" init --repo "file://$REPO" --password-file "$PW") ;;
    stash-job-s2:init) CMD=("$STASH_JOB" init --repo "file://$REPO" --password-file "$PW" --compression s2) ;;
    stash-job*:restore) CMD=("$STASH_JOB" restore --repo "file://$REPO" --password-file "$PW" latest --target "$T") ;;
    stash-job*:*)       CMD=("$STASH_JOB" backup --repo "file://$REPO" --password-file "$PW" --host bench "$DATA") ;;
  esac
}
restored_dir() { # tool -> the path under $T that must equal $DATA
  local tmpl=$RESTIC_RESTORED
  [[ $1 == stash-job* ]] && tmpl=$STASH_RESTORED
  eval "echo \"$tmpl\""
}

# ---- measuring --------------------------------------------------------------------------
prev_repo=0
measure() { # round tool step
  local round=$1 tool=$2 step=$3 log=$LOGS/r$1-$2-$3.log t0 t1 t2
  cmd_for "$tool" "$step"
  sync
  if [ "$DROP_CACHES" = 1 ]; then echo 3 >/proc/sys/vm/drop_caches; fi
  { printf '$'; printf ' %q' "${CMD[@]}"; echo; } >"$log"
  t0=$EPOCHREALTIME
  if ! /usr/bin/time -v -o "$TIMEF" "${CMD[@]}" >>"$log" 2>&1; then
    echo "bench: round $round, $tool, step $step failed; the end of $log:" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
  t1=$EPOCHREALTIME
  sync
  t2=$EPOCHREALTIME
  cat "$TIMEF" >>"$log"
  local user sys rss repo
  user=$(awk -F': ' '/User time \(seconds\)/ {print $2}' "$TIMEF")
  sys=$(awk -F': ' '/System time \(seconds\)/ {print $2}' "$TIMEF")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TIMEF")
  repo=0
  [ -d "$REPO" ] && repo=$(du -sb "$REPO" | cut -f1)
  awk -v OFS='\t' -v r="$round" -v tool="$tool" -v step="$step" -v t0="$t0" -v t1="$t1" -v t2="$t2" \
      -v siw="$SYNC_IN_WALL" -v u="$user" -v s="$sys" -v rss="$rss" -v repo="$repo" -v prev="$prev_repo" 'BEGIN {
    tw = t1 - t0; sw = t2 - t1; w = (siw == 1) ? tw + sw : tw
    printf "%s\t%s\t%s\t%.3f\t%.3f\t%.3f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\n", r, tool, step, w, tw, sw, u + s, u, s, rss, repo, repo - prev
  }' >>"$RAW"
  prev_repo=$repo
  tail -n 1 "$RAW" | awk -F'\t' '{ printf "    %-9s %8.2fs wall (%.2fs sync)  %8.2fs cpu  %7.1f MiB rss  repo %9.1f MiB (+%.1f)\n", $3, $4, $6, $7, $10/1024, $11/1048576, $12/1048576 }'
}

verify_restore() { # round tool
  local src=$DATA dst out
  dst=$(restored_dir "$2")
  [ -d "$dst" ] || die "round $1, $2: the restored data directory $dst does not exist (under $T: $(cd "$T" && find . -maxdepth 4 -type d | head -n 8 | tr '\n' ' ')); adjust $( [[ $2 == stash-job* ]] && echo STASH_RESTORED || echo RESTIC_RESTORED)"
  if ! out=$(diff -r -q "$src" "$dst" 2>&1); then
    echo "$out" >"$LOGS/r$1-$2-restore-diff.txt"
    die "round $1, $2: the restored tree differs from the source ($(wc -l <<<"$out") differences, first: $(head -n 1 <<<"$out")); see $LOGS/r$1-$2-restore-diff.txt"
  fi
  # Metadata (mode, size, mtime) is reported, not required.
  local meta
  meta=$(diff <(cd "$src" && find . -printf '%P %y %m %s %T@\n' | sort) <(cd "$dst" && find . -printf '%P %y %m %s %T@\n' | sort) | grep -c '^>' || true)
  if [ "$meta" = 0 ]; then
    echo "    restore verified: contents equal, modes and mtimes equal"
  else
    echo "    restore verified: contents equal; $meta entries differ in mode or mtime (not required)"
  fi
}

# ---- environment, printed with the results ----------------------------------------------
RESTIC_VERSION=n/a
has_tool restic && RESTIC_VERSION=$("$RESTIC" version 2>&1 | head -n 1)
STASH_VERSION=n/a
has_stash_job && STASH_VERSION=$("$STASH_JOB" version 2>&1 | head -n 1 | sed 's/^Version: *//')
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
MEM_GIB=$(awk '/^MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo)
FS_INFO=$(df -PT "$BENCH_DIR" | awk 'NR==2 {print $2 " on " $1}')

# ---- the runs ---------------------------------------------------------------------------
DATA_FILES=0
DATA_BYTES=0
for ((round = 1; round <= ROUNDS; round++)); do
  for tool in "${TOOL_LIST[@]}"; do
    say "round $round/$ROUNDS: $tool"
    rm -rf "$DATA" "$REPO" "$T" "$CACHE"
    deleted=$EPOCHREALTIME
    "$GEN" -dir "$DATA" -seed "$SEED" -scale "$SCALE" | sed 's/^/    /'
    if [ "$DATA_FILES" = 0 ]; then
      DATA_FILES=$(find "$DATA" -type f | wc -l)
      DATA_BYTES=$(find "$DATA" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s }')
    fi
    cmd_for "$tool" init
    sync
    "${CMD[@]}" >"$LOGS/r$round-$tool-init.log" 2>&1 || { tail -n 25 "$LOGS/r$round-$tool-init.log" >&2; die "round $round, $tool: init failed (log: $LOGS/r$round-$tool-init.log)"; }
    prev_repo=$(du -sb "$REPO" | cut -f1)
    measure "$round" "$tool" initial
    measure "$round" "$tool" unchanged
    "$GEN" -dir "$DATA" -seed "$SEED" -change >"$LOGS/r$round-$tool-gen-change.log"
    measure "$round" "$tool" change
    mkdir -p "$T"
    wait_s=$(awk -v d="$deleted" -v now="$EPOCHREALTIME" -v after="$RESTORE_AFTER" 'BEGIN { w = d + after - now; printf "%.1f", (w > 0) ? w : 0 }')
    echo "    (restore in ${wait_s}s: $RESTORE_AFTER s after the round's deletions)"
    sleep "$wait_s"
    measure "$round" "$tool" restore
    verify_restore "$round" "$tool"
    rm -rf "$REPO" "$T" "$CACHE"
  done
done

# ---- the table --------------------------------------------------------------------------
# median TOOL STEP COLUMN: median over the rounds of one raw.tsv column (1-based).
median() {
  awk -F'\t' -v tool="$1" -v step="$2" -v col="$3" 'NR > 1 && $2 == tool && $3 == step { print $col }' "$RAW" |
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a + 0 <= b + 0) }'; }
mib() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else printf "%.1f", v / 1048576 }'; }

declare -A M # M[tool:step:metric] medians: wall cpu rss(KiB) repo added
for tool in "${TOOL_LIST[@]}"; do
  for step in "${STEPS[@]}"; do
    M[$tool:$step:wall]=$(median "$tool" "$step" 4)
    M[$tool:$step:cpu]=$(median "$tool" "$step" 7)
    M[$tool:$step:rss]=$(median "$tool" "$step" 10)
    M[$tool:$step:repo]=$(median "$tool" "$step" 11)
    M[$tool:$step:added]=$(median "$tool" "$step" 12)
  done
done

BOTH=0
has_tool restic && has_tool stash-job && BOTH=1
MISSES=0
target() { # name ok(0/1) detail
  local verdict=MISS
  [ "$2" = 1 ] && verdict=PASS
  [ "$2" = 1 ] || MISSES=$((MISSES + 1))
  printf '  %-4s  %-50s %s\n' "$verdict" "$1" "$3"
}

report() {
  echo
  echo "Benchmark: stash-job vs restic, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "  command    $INVOCATION"
  echo "  data       $DATA_FILES files, $DATA_BYTES bytes ($(mib "$DATA_BYTES") MiB), seed $SEED, scale $SCALE; regenerated before every run"
  echo "  machine    $(nproc) CPUs ($CPU_MODEL), $MEM_GIB GiB memory, $(uname -sr), repositories and data on $FS_INFO"
  echo "  restic     $RESTIC_VERSION (defaults: compression auto, local cache under BENCH_DIR)"
  echo "  stash-job  $STASH_VERSION ($STASH_JOB_SRC, run from a copy: $STASH_JOB)"
  echo "  rounds     $ROUNDS, tools alternated in the order: $TOOLS; values are medians over the rounds"
  echo "  wall       $([ "$SYNC_IN_WALL" = 1 ] && echo "includes a sync after the tool exits" || echo "the tool's own time, no sync")$([ "$DROP_CACHES" = 1 ] && echo "; page cache dropped before every step" || echo "; warm page cache")"
  echo "  commands   (RESTIC_REPOSITORY=REPO RESTIC_PASSWORD_FILE=F RESTIC_CACHE_DIR=C)"
  for tool in "${TOOL_LIST[@]}"; do
    for step in init initial restore; do
      cmd_for "$tool" "$step"
      c=$(printf '%q ' "${CMD[@]}")
      c=${c#env RESTIC_REPOSITORY=* RESTIC_PASSWORD_FILE=* RESTIC_CACHE_DIR=* }
      label=$step
      [ "$step" = initial ] && label="backup (initial, unchanged, change)"
      printf '    %-12s %-36s %s\n' "$tool" "$label" "${c% }"
    done
  done
  echo
  printf '%-10s %-12s %9s %9s %9s %10s %10s\n' step tool "wall s" "cpu s" "rss MiB" "repo MiB" "added MiB"
  for step in "${STEPS[@]}"; do
    first=$step
    for tool in "${TOOL_LIST[@]}"; do
      printf '%-10s %-12s %9.2f %9.2f %9.1f %10s %10s\n' "$first" "$tool" "${M[$tool:$step:wall]}" "${M[$tool:$step:cpu]}" \
        "$(awk -v k="${M[$tool:$step:rss]}" 'BEGIN { print k / 1024 }')" "$(mib "${M[$tool:$step:repo]}")" "$(mib "${M[$tool:$step:added]}")"
      first=""
    done
    # One row of ratios against restic per stash-job variant: "s/r" for stash-job, "s2/r"
    # for stash-job-s2.
    for tool in stash-job stash-job-s2; do
      has_tool restic && has_tool "$tool" || continue
      label="ratio s/r"
      [ "$tool" = stash-job-s2 ] && label="ratio s2/r"
      printf '%-10s %-12s %9s %9s %9s %10s %10s\n' "" "$label" \
        "$(ratio "${M[$tool:$step:wall]}" "${M[restic:$step:wall]}")" "$(ratio "${M[$tool:$step:cpu]}" "${M[restic:$step:cpu]}")" \
        "$(ratio "${M[$tool:$step:rss]}" "${M[restic:$step:rss]}")" "$(ratio "${M[$tool:$step:repo]}" "${M[restic:$step:repo]}")" \
        "$(ratio "${M[$tool:$step:added]}" "${M[restic:$step:added]}")"
    done
  done
  echo
  for tool in "${TOOL_LIST[@]}"; do
    printf '  initial backup throughput %-12s %8.1f MiB/s\n' "$tool" "$(awk -v b="$DATA_BYTES" -v w="${M[$tool:initial:wall]}" 'BEGIN { print (w > 0) ? b / 1048576 / w : 0 }')"
  done
  echo
  echo "Targets (ratio = stash-job / restic, medians):"
  if [ $BOTH = 1 ]; then
    rw=$(ratio "${M[stash-job:initial:wall]}" "${M[restic:initial:wall]}")
    rr=$(ratio "${M[stash-job:initial:repo]}" "${M[restic:initial:repo]}")
    ok=0; le "$rw" 0.40 && le "$rr" 1.15 && ok=1
    target "initial backup: >= 2.5x restic's throughput" "$ok" "wall ratio $rw (<= 0.40), repo size ratio $rr (<= 1.15)"
    r=$(ratio "${M[stash-job:unchanged:wall]}" "${M[restic:unchanged:wall]}")
    ok=0; le "$r" 0.40 && ok=1
    target "unchanged re-backup time <= 0.4x restic's" "$ok" "wall ratio $r"
    ok=0; le "${M[stash-job:change:added]}" "${M[restic:change:added]}" && ok=1
    target "bytes added by the change step <= restic's" "$ok" "$(mib "${M[stash-job:change:added]}") MiB vs $(mib "${M[restic:change:added]}") MiB"
    r=$(ratio "${M[stash-job:restore:wall]}" "${M[restic:restore:wall]}")
    ok=0; le "$r" 0.50 && ok=1
    target "full restore time <= 0.5x restic's" "$ok" "wall ratio $r"
    for step in "${STEPS[@]}"; do
      r=$(ratio "${M[stash-job:$step:rss]}" "${M[restic:$step:rss]}")
      ok=0; le "$r" 1.00 && ok=1
      target "peak RSS <= restic's: $step" "$ok" "ratio $r ($(awk -v a="${M[stash-job:$step:rss]}" -v b="${M[restic:$step:rss]}" 'BEGIN { printf "%.1f vs %.1f MiB", a / 1024, b / 1024 }'))"
    done
  else
    echo "  n/a: the targets compare stash-job with restic; this run measured only: $TOOLS"
  fi
  if has_tool restic && has_tool stash-job-s2; then
    echo
    echo "The same targets for a repository compressed with s2 (stash-job-s2; not the default):"
    rw=$(ratio "${M[stash-job-s2:initial:wall]}" "${M[restic:initial:wall]}")
    rr=$(ratio "${M[stash-job-s2:initial:repo]}" "${M[restic:initial:repo]}")
    printf '  %-4s  %-50s %s\n' "$(le "$rw" 0.40 && echo pass || echo miss)" "initial backup: >= 2.5x restic's throughput" "wall ratio $rw (<= 0.40)"
    printf '  %-4s  %-50s %s\n' "$(le "$rr" 1.15 && echo pass || echo miss)" "  ... with the repository <= 1.15x restic's size" "repo size ratio $rr (<= 1.15)"
    r=$(ratio "${M[stash-job-s2:restore:wall]}" "${M[restic:restore:wall]}")
    printf '  %-4s  %-50s %s\n' "$(le "$r" 0.50 && echo pass || echo miss)" "full restore time <= 0.5x restic's" "wall ratio $r"
  fi
  echo
  echo "raw measurements: $RAW"
}
report >"$TABLE" # not in a pipe: MISSES must survive
cat "$TABLE"

if [ "$STRICT" = 1 ] && [ "$MISSES" -gt 0 ]; then
  die "$MISSES target(s) missed (STRICT=1)"
fi
