#!/bin/bash
# verify-imports.sh - enforce the dependency direction of STYLE (a): fails naming the package
# and the import that breaks a rule.
#   1. cmd -> {plugin, jobimage} -> internal; internal imports neither; plugin and jobimage
#      never import each other.
#   2. internal/engine/** and internal/store never import k8s.io, cobra or charm (transitively).
#   3. only cmd/* (and tests) import gocloud drivers and client-go auth plugins.
#   4. plugin/tui imports no client-go; plugin/jobs imports no charm.
#   5. jobimage imports no cli-runtime, cobra or charm (transitively).
#   6. test-helper packages (…test, internal/testutil) are never linked into a binary or
#      library package.
set -euo pipefail
cd "$(dirname "$0")/.."
M=github.com/kubectl-stash/kubectl-stash
fail=0
bad() { echo "verify-imports: $1 imports $2 ($3)"; fail=1; }

# direct imports (non-test)
while read -r pkg imports; do
  for imp in $imports; do
    case "$pkg" in
      $M/internal/*) case "$imp" in $M/plugin*|$M/jobimage*) bad "$pkg" "$imp" "internal never imports plugin/ or jobimage/";; esac ;;
      $M/plugin/*) case "$imp" in $M/jobimage*) bad "$pkg" "$imp" "plugin never imports jobimage";; esac ;;
      $M/jobimage*) case "$imp" in $M/plugin*) bad "$pkg" "$imp" "jobimage never imports plugin";; esac ;;
    esac
    case "$pkg" in
      $M/cmd/*) ;;
      # test-helper packages (repotest, storetest) serve tests only; rule 6 keeps them out of binaries
      $M/*test) ;;
      *) case "$imp" in gocloud.dev/blob/*blob|k8s.io/client-go/plugin/pkg/client/auth*) bad "$pkg" "$imp" "only cmd/ imports drivers and auth plugins";; esac ;;
    esac
  done
done < <(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./...)

# transitive dependencies
while read -r pkg deps; do
  for dep in $deps; do
    case "$pkg" in
      $M/internal/engine*|$M/internal/store|$M/internal/store/*)
        case "$dep" in k8s.io/*|github.com/spf13/cobra|charm.land/*|github.com/charmbracelet/*) bad "$pkg" "$dep" "the engine imports no Kubernetes, cobra or charm";; esac ;;
      $M/jobimage*)
        case "$dep" in k8s.io/cli-runtime*|github.com/spf13/cobra|charm.land/*|github.com/charmbracelet/*) bad "$pkg" "$dep" "the job image imports no cli-runtime, cobra or charm";; esac ;;
      $M/plugin/tui*)
        case "$dep" in k8s.io/client-go*) bad "$pkg" "$dep" "the TUI imports no client-go";; esac ;;
      $M/plugin/jobs*)
        case "$dep" in charm.land/*|github.com/charmbracelet/*) bad "$pkg" "$dep" "plugin/jobs imports no charm";; esac ;;
    esac
    case "$pkg" in
      $M/*test|$M/test/*|$M/internal/testutil) ;;
      *) case "$dep" in $M/*test|$M/internal/testutil) bad "$pkg" "$dep" "test helpers never reach a binary";; esac ;;
    esac
  done
done < <(go list -f '{{.ImportPath}} {{join .Deps " "}}' ./...)

[ $fail = 0 ] && echo "verify-imports: dependency rules hold"
exit $fail
