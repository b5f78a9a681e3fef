#!/bin/bash
# test/krew/test.sh - the release packaging tests (`make test-krew`, part of `make test`):
#
#  1. reproducible: `make dist` twice, in two copies of the tree at different paths, gives
#     byte-identical archives, image and checksums; archive entries are the binary,
#     kubectl_complete-stash, LICENSE and README.md, owned by 0:0, with the commit's time;
#     the binary reports the version and commit; the image is one index of both platforms.
#  2. the manifest: `make krew-manifest` renders uris under the release URL with the sha256s
#     of the checksums file; validate-krew-manifest (sigs.k8s.io/krew v0.4.4, as krew-index
#     CI runs it) passes on it, and on a test rendering whose uris point at an HTTP server on
#     127.0.0.1 it also installs every platform through `kubectl krew` and finds the LICENSE.
#  3. install: the real krew installs the plugin offline from the manifest and the archive
#     into a temporary KREW_ROOT; `kubectl stash version` runs through krew's bin directory
#     by kubectl's plugin discovery (and kubectl-stash directly); krew uninstall removes it.
#  4. completion: `kubectl stash __complete ""`, kubectl's own completion through
#     kubectl_complete-stash installed as the manifest's caveats say, and the bash scripts of
#     kubectl and of the plugin run in a real bash, all offer the verbs.
#
# Nothing leaves the machine: krew and kubectl run with HOME, KREW_ROOT and KUBECONFIG in a
# temporary directory and a proxy on a closed local port for anything not on 127.0.0.1.
#
# Env: DIST_PLATFORMS   platforms to build and check (default: linux/amd64 linux/arm64, to keep
#                       CI short: every platform builds (make dist), cold cross builds cost minutes; the
#                       release builds darwin and windows too, see below)
#      KUBECTL_DIR      directory holding kubectl (default: `make kubectl-path`, built with the
#                       cluster binaries when missing)
#      KEEP=1           keep the temporary directory
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
# darwin/* and windows/amd64 are missing here until internal/engine/snapshot builds on them
# (it uses Linux-only syscall fields and golang.org/x/sys/unix calls); `make dist` builds all.
PLATFORMS=${DIST_PLATFORMS:-linux/amd64 linux/arm64}
HOST=$(go env GOOS)/$(go env GOARCH)

T0=$(date +%s)
step() { echo "==> krew [$(( $(date +%s) - T0 ))s] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
TMP=$(mktemp -d /tmp/kubectl-stash-krew.XXXXXX)
SERVER_PID=
cleanup() {
  local rc=$?
  [ -n "$SERVER_PID" ] && { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; }
  if [ "${KEEP:-0}" = 1 ] || [ $rc != 0 ]; then echo "krew test files kept in $TMP" >&2; else rm -rf "$TMP"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

case " $PLATFORMS " in *" $HOST "*) ;; *) fail "DIST_PLATFORMS ($PLATFORMS) lacks this machine's $HOST";; esac

# ---------------------------------------------------------------- tools
step "tools module: vet and unit tests of mkdist"
(cd tools && go vet ./... && go test -count=1 ./...) | sed 's/^/    /'
step "krew and validate-krew-manifest (sigs.k8s.io/krew v0.4.4)"
TOOLBIN=$(bash test/krew/tools.sh)
mkdir -p "$TMP/plugins"
ln -s "$TOOLBIN/krew" "$TMP/plugins/kubectl-krew"   # `kubectl krew`, as validate-krew-manifest calls it
KUBECTL_DIR=${KUBECTL_DIR:-$(make -s kubectl-path)}
if [ ! -x "$KUBECTL_DIR/kubectl" ]; then
  step "no kubectl in $KUBECTL_DIR: building the cluster binaries (BUILD_ONLY=1 test/cluster/up.sh)"
  BUILD_ONLY=1 bash test/cluster/up.sh >"$TMP/cluster-build.log" 2>&1 || { tail -20 "$TMP/cluster-build.log"; fail "could not build kubectl"; }
fi
# kubectl by its path: a kubectl elsewhere on PATH (a cloud SDK's wrapper) must not stand in
[ -x "$KUBECTL_DIR/kubectl" ] || fail "no kubectl in $KUBECTL_DIR (KUBECTL_DIR, or make kubectl-path)"
"$KUBECTL_DIR/kubectl" version --client >/dev/null || fail "$KUBECTL_DIR/kubectl does not run"

export KREW_ROOT=$TMP/krew-root KREW_NO_UPGRADE_CHECK=1
mkdir -p "$TMP/home"
# user runs krew and kubectl as a user would, with nothing of this machine's own setup
user() {
  env HOME="$TMP/home" KUBECONFIG="$TMP/home/no-kubeconfig" TMPDIR="$TMP" \
    HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1 \
    PATH="$KREW_ROOT/bin:$TMP/plugins:$KUBECTL_DIR:/usr/bin:/bin" "$@"
}

# ---------------------------------------------------------------- 1. reproducible dist
VERSION=$(make -s print-version)
COMMIT=$(git rev-parse HEAD)
EPOCH=$(git log -1 --format=%ct)
IMAGE=$(make -s print-image VERSION="$VERSION")
step "snapshot of the tree ($VERSION) in two places"
# tracked and new files (not ignored ones, and no stray binaries), so that edits made
# meanwhile cannot make the two builds differ
mkdir -p "$TMP/a/kubectl-stash" "$TMP/b/other/path/kubectl-stash"
git ls-files -z -c -o --exclude-standard | while IFS= read -r -d '' f; do
  [ -f "$f" ] && [ "$(stat -c %s "$f")" -lt 1048576 ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$TMP/a/kubectl-stash"
cp -a "$TMP/a/kubectl-stash/." "$TMP/b/other/path/kubectl-stash/"

dist() { # dist SRC DIST
  make -C "$1" dist DIST="$2" DIST_PLATFORMS="$PLATFORMS" VERSION="$VERSION" GIT_COMMIT="$COMMIT" \
    SOURCE_DATE_EPOCH="$EPOCH" >"$2.log" 2>&1 || { tail -30 "$2.log"; fail "make dist in $1"; }
}
A=$TMP/a/dist B=$TMP/b/dist
t=$(date +%s); step "make dist ($PLATFORMS), first run"; dist "$TMP/a/kubectl-stash" "$A"; echo "    $(( $(date +%s) - t ))s"
t=$(date +%s); step "make dist, second run"; dist "$TMP/b/other/path/kubectl-stash" "$B"; echo "    $(( $(date +%s) - t ))s"
(cd "$A" && sha256sum -- *) >"$TMP/a.sums"
(cd "$B" && sha256sum -- *) >"$TMP/b.sums"
diff -u "$TMP/a.sums" "$TMP/b.sums" || fail "two make dist runs differ"
sed 's/^/    /' "$TMP/a.sums"
SUMS=$A/kubectl-stash_${VERSION}_checksums.txt
(cd "$A" && sha256sum --quiet -c "$SUMS") || fail "the checksums file does not match the files"
want_files=$(for p in $PLATFORMS; do ext=tar.gz; [ "${p%/*}" = windows ] && ext=zip; echo "kubectl-stash_${VERSION}_${p%/*}_${p#*/}.$ext"; done
  echo "stash-job_${VERSION}_image.tar")
[ "$(awk '{print $2}' "$SUMS" | sort)" = "$(echo "$want_files" | sort)" ] || fail "checksums file lists $(awk '{print $2}' "$SUMS" | xargs), want $(echo $want_files)"

step "archive contents"
ARCHIVE=$A/kubectl-stash_${VERSION}_${HOST%/*}_${HOST#*/}.tar.gz
listing=$(TZ=UTC tar --numeric-owner -tvzf "$ARCHIVE")
echo "$listing" | sed 's/^/    /'
when=$(TZ=UTC date -d "@$EPOCH" '+%Y-%m-%d %H:%M')
[ "$(echo "$listing" | awk '{print $6}' | xargs)" = "LICENSE README.md kubectl-stash kubectl_complete-stash" ] || fail "entries of $ARCHIVE"
echo "$listing" | awk -v w="$when" '$2 != "0/0" || ($4 " " $5) != w {bad=1} END {exit bad}' || fail "entries not owned by 0/0 or not at $when"
grep -q '^-rwxr-xr-x .* kubectl-stash$' <<<"$listing" || fail "kubectl-stash is not executable"
grep -q '^-rwxr-xr-x .* kubectl_complete-stash$' <<<"$listing" || fail "kubectl_complete-stash is not executable"
mkdir -p "$TMP/unpacked" && tar -xzf "$ARCHIVE" -C "$TMP/unpacked"
cmp -s "$TMP/unpacked/LICENSE" LICENSE || fail "LICENSE differs from the repository's"
cmp -s "$TMP/unpacked/kubectl_complete-stash" krew/kubectl_complete-stash || fail "kubectl_complete-stash differs from krew/'s"
out=$(user "$TMP/unpacked/kubectl-stash" version --client)
for want in "Version:   $VERSION" "GitCommit: $COMMIT" "JobImage:  $IMAGE"; do
  grep -qF "$want" <<<"$out" || fail "kubectl-stash version lacks '$want':"$'\n'"$out"
done
index=$(tar -xOf "$A/stash-job_${VERSION}_image.tar" index.json)
grep -qF "\"org.opencontainers.image.ref.name\":\"${IMAGE##*:}\"" <<<"$index" || fail "image tag in index.json: $index"
digest=$(grep -o '"digest":"sha256:[0-9a-f]*"' <<<"$index" | sed -n 1p | cut -d: -f3 | tr -d '"')
platforms=$(tar -xOf "$A/stash-job_${VERSION}_image.tar" "blobs/sha256/$digest" | grep -o '"architecture":"[a-z0-9]*","os":"[a-z]*"' | tr -d '"' | sort | xargs)
[ "$platforms" = 'architecture:amd64,os:linux architecture:arm64,os:linux' ] || fail "image index platforms: $platforms"
echo "    image $IMAGE: index sha256:$digest, linux/amd64 and linux/arm64"

# ---------------------------------------------------------------- 2. the manifest
step "make krew-manifest"
make -s -C "$TMP/a/kubectl-stash" krew-manifest DIST="$A" DIST_PLATFORMS="$PLATFORMS" VERSION="$VERSION" >/dev/null
MANIFEST=$TMP/a/kubectl-stash/krew/stash.yaml
for p in $PLATFORMS; do
  name=$(grep -F "_${p%/*}_${p#*/}." <<<"$want_files")
  sum=$(awk -v n="$name" '$2 == n {print $1}' "$SUMS")
  grep -qF "    uri: https://github.com/kubectl-stash/kubectl-stash/releases/download/$VERSION/$name" "$MANIFEST" || fail "no uri for $name in the manifest"
  grep -qF "    sha256: $sum" <<<"$(grep -A1 -F "/$name" "$MANIFEST")" || fail "sha256 of $name in the manifest is not $sum"
done
grep -qF "  version: $VERSION" "$MANIFEST" || fail "manifest version"
user "$TOOLBIN/validate-krew-manifest" -manifest "$MANIFEST" -skip-install >"$TMP/validate-release.log" 2>&1 ||
  { cat "$TMP/validate-release.log"; fail "validate-krew-manifest -skip-install on the release manifest"; }
for want in "structural validation OK" "all spec.platform\[\] items are used" "no overlapping spec.platform\[\].selector"; do
  grep -q "$want" "$TMP/validate-release.log" || { cat "$TMP/validate-release.log"; fail "validate-krew-manifest did not say '$want'"; }
done
echo "    release manifest: structural validation OK, every platform used, no overlapping selectors"

step "validate-krew-manifest with installs, from a server on 127.0.0.1"
"$TMP/a/kubectl-stash/bin/dist/mkdist" serve -dir "$A" -url-file "$TMP/url" 2>"$TMP/serve.log" &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$TMP/url" ] && break; sleep 0.05; done
URL=$(cat "$TMP/url")
make -s -C "$TMP/a/kubectl-stash" krew-manifest DIST="$A" DIST_PLATFORMS="$PLATFORMS" VERSION="$VERSION" \
  RELEASE_URL="$URL" KREW_MANIFEST="$TMP/served/stash.yaml" >/dev/null
grep -qF "uri: $URL/kubectl-stash_${VERSION}_" "$TMP/served/stash.yaml" || fail "test rendering does not point at $URL"
user "$TOOLBIN/validate-krew-manifest" -manifest "$TMP/served/stash.yaml" >"$TMP/validate.log" 2>&1 ||
  { cat "$TMP/validate.log"; fail "validate-krew-manifest"; }
n=$(wc -w <<<"$PLATFORMS")
grep -q "all $n spec.platforms installed fine" "$TMP/validate.log" || { cat "$TMP/validate.log"; fail "validate-krew-manifest did not install $n platforms"; }
[ "$(grep -c '^serve: GET /kubectl-stash_' "$TMP/serve.log")" -ge "$n" ] || fail "the archives were not downloaded from $URL: $(cat "$TMP/serve.log")"
echo "    $(tail -1 "$TMP/validate.log" | sed 's/^[0-9/: ]*//'), downloaded from $URL"
# and it does check what it downloads: a wrong sha256 fails
wrong=$(printf '%064d' 0 | tr 0 a)  # not all digits: YAML would read a number
mkdir -p "$TMP/bad" && sed "0,/sha256: /s/sha256: [0-9a-f]*/sha256: $wrong/" "$TMP/served/stash.yaml" >"$TMP/bad/stash.yaml"
if user "$TOOLBIN/validate-krew-manifest" -manifest "$TMP/bad/stash.yaml" >"$TMP/validate-bad.log" 2>&1; then fail "validate-krew-manifest accepted a wrong sha256"; fi
grep -q "sha256 mismatch\|checksum does not match" "$TMP/validate-bad.log" || { cat "$TMP/validate-bad.log"; fail "validate-krew-manifest failed on a wrong sha256, but not for it"; }
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=

# ---------------------------------------------------------------- 3. krew install, discovery, uninstall
step "krew install --manifest --archive (offline)"
user "$KUBECTL_DIR/kubectl" krew install --manifest="$MANIFEST" --archive="$ARCHIVE" >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; fail "krew install"; }
sed 's/^/    /' "$TMP/install.log"
grep -q "Installed plugin: stash" "$TMP/install.log" || fail "krew did not say it installed stash"
STORE=$KREW_ROOT/store/stash/$VERSION
[ -L "$KREW_ROOT/bin/kubectl-stash" ] && [ "$(readlink "$KREW_ROOT/bin/kubectl-stash")" = "$STORE/kubectl-stash" ] || fail "krew did not link $KREW_ROOT/bin/kubectl-stash to $STORE"
[ "$(cd "$STORE" && ls | xargs)" = "LICENSE kubectl-stash kubectl_complete-stash" ] || fail "installed files: $(ls "$STORE" | xargs)"
# krew list, info and uninstall want an index, which `krew update` would clone over the
# network: a local git repository laid out as krew-index (plugins/stash.yaml) stands in
INDEX=$KREW_ROOT/index/default
mkdir -p "$INDEX/plugins" && cp "$MANIFEST" "$INDEX/plugins/stash.yaml"
user env GIT_AUTHOR_NAME=test GIT_AUTHOR_EMAIL=test@127.0.0.1 GIT_COMMITTER_NAME=test GIT_COMMITTER_EMAIL=test@127.0.0.1 \
  sh -c 'cd "$1" && git init -q && git add plugins && git commit -qm "stash '"$VERSION"'"' sh "$INDEX" || fail "local index"
# (outputs are captured before grep: grep -q ending a pipe early would fail it under pipefail)
out=$(user "$KUBECTL_DIR/kubectl" krew list 2>&1) || fail "kubectl krew list: $out"
grep -qxE '(detached/)?stash' <<<"$out" || fail "kubectl krew list lacks stash: $out"
out=$(user "$KUBECTL_DIR/kubectl" krew info stash 2>&1) || fail "kubectl krew info stash: $out"
grep -qx "VERSION: $VERSION" <<<"$out" || fail "kubectl krew info stash: $out"

step "kubectl stash version, through kubectl's plugin discovery and directly"
out=$(user "$KUBECTL_DIR/kubectl" plugin list 2>&1) || fail "kubectl plugin list: $out"
grep -qx "$KREW_ROOT/bin/kubectl-stash" <<<"$out" || fail "kubectl plugin list does not find $KREW_ROOT/bin/kubectl-stash: $out"
for how in "$KUBECTL_DIR/kubectl stash" "$KREW_ROOT/bin/kubectl-stash"; do
  user $how version >"$TMP/version.out" 2>"$TMP/version.err" || fail "$how version: $(cat "$TMP/version.err")"
  for want in "Version:   $VERSION" "GitCommit: $COMMIT" "JobImage:  $IMAGE"; do
    grep -qF "$want" "$TMP/version.out" || fail "$how version lacks '$want': $(cat "$TMP/version.out")"
  done
  [ ! -s "$TMP/version.err" ] || fail "$how version wrote to stderr without a cluster: $(cat "$TMP/version.err")"
done
sed 's/^/    /' "$TMP/version.out"

# ---------------------------------------------------------------- 4. completion
step "completion"
verbs="backup restore trigger watch get describe snapshots download repo version completion"
has_verbs() { # has_verbs WHAT OUTPUT
  local v; for v in $verbs; do grep -qx "$v" <<<"$2" || fail "$1 does not offer $v:"$'\n'"$2"; done
}
out=$(user "$KUBECTL_DIR/kubectl" stash __complete "" 2>/dev/null)
has_verbs 'kubectl stash __complete ""' "$(sed 's/\t.*//' <<<"$out")"
[ "$(tail -1 <<<"$out")" = ":4" ] || fail "kubectl stash __complete: directive $(tail -1 <<<"$out"), want :4 (no file completion)"
out=$(user "$KUBECTL_DIR/kubectl" stash __complete get "" 2>/dev/null)
grep -qx bc <<<"$out" && grep -qx bs <<<"$out" || fail "kubectl stash __complete get: $out"
# kubectl completes `kubectl stash <TAB>` through kubectl_complete-stash: before it is on PATH, nothing
out=$(user "$KUBECTL_DIR/kubectl" __complete stash "" 2>/dev/null)
! grep -qx backup <<<"$out" || fail "kubectl completed the plugin without kubectl_complete-stash"
# the manifest's caveats say how to put it on PATH: do exactly that
cp_line=$(grep -F 'cp "${KREW_ROOT:-$HOME/.krew}/store/stash/' "$MANIFEST") || fail "the caveats have no cp line"
user bash -c "$cp_line" || fail "the caveats' command failed: $cp_line"
[ -x "$KREW_ROOT/bin/kubectl_complete-stash" ] || fail "the caveats' command did not install kubectl_complete-stash"
out=$(user "$KUBECTL_DIR/kubectl" __complete stash "" 2>/dev/null)
has_verbs 'kubectl __complete stash ""' "$(sed 's/\t.*//' <<<"$out")"
# the bash scripts of kubectl and cobra need bash-completion (_get_comp_words_by_ref), as a user's shell has it
BASH_COMPLETION=/usr/share/bash-completion/bash_completion
if [ ! -f "$BASH_COMPLETION" ]; then
  [ "${APT:-1}" = 1 ] || fail "bash-completion is not installed (apt-get install bash-completion, or APT=1)"
  echo "    apt-get install bash-completion"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bash-completion; } >"$TMP/apt.log" 2>&1 ||
    { tail -5 "$TMP/apt.log"; fail "could not install bash-completion"; }
fi
bash_complete() { # bash_complete SCRIPT_CMD FUNCTION WORDS...: COMPREPLY of a completion function in a real bash
  local script=$1 fn=$2; shift 2
  user bash --norc --noprofile -c 'source '"$BASH_COMPLETION"' && source <('"$script"') || exit 1; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
    COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; '"$fn"' 2>/dev/null; printf "%s\n" "${COMPREPLY[@]}"' bash "$@"
}
has_verbs "kubectl's bash completion" "$(bash_complete 'kubectl completion bash' __start_kubectl kubectl stash "" | sed 's/ *(.*//; s/ *$//')"
has_verbs "kubectl-stash's bash completion" "$(bash_complete 'kubectl-stash completion bash' __start_kubectl-stash kubectl-stash "" | sed 's/ *(.*//; s/ *$//')"
[ "$(bash_complete 'kubectl completion bash' __start_kubectl kubectl stash tri | xargs)" = trigger ] || fail "bash: kubectl stash tri<TAB> is not trigger"
echo "    kubectl stash <TAB>: $(user "$KUBECTL_DIR/kubectl" __complete stash "" 2>/dev/null | grep -v '^:' | sed 's/\t.*//' | xargs)"

step "krew uninstall stash"
user "$KUBECTL_DIR/kubectl" krew uninstall stash >"$TMP/uninstall.log" 2>&1 || { cat "$TMP/uninstall.log"; fail "krew uninstall"; }
sed 's/^/    /' "$TMP/uninstall.log"
[ ! -e "$KREW_ROOT/bin/kubectl-stash" ] && [ ! -L "$KREW_ROOT/bin/kubectl-stash" ] || fail "$KREW_ROOT/bin/kubectl-stash is still there"
[ ! -e "$KREW_ROOT/store/stash" ] || fail "$KREW_ROOT/store/stash is still there"
[ ! -e "$KREW_ROOT/receipts/stash.yaml" ] || fail "the receipt of stash is still there"
out=$(user "$KUBECTL_DIR/kubectl" plugin list 2>/dev/null || true)
! grep -q "/kubectl-stash$" <<<"$out" || fail "kubectl still finds kubectl-stash: $out"
! user "$KUBECTL_DIR/kubectl" stash version >/dev/null 2>&1 || fail "kubectl stash version still runs"
# the completion script copied by hand stays, but kubectl no longer completes a plugin that is gone
out=$(user "$KUBECTL_DIR/kubectl" __complete stash "" 2>/dev/null || true)
! grep -qx backup <<<"$out" || fail "kubectl still completes the uninstalled plugin"

step "passed"
