package repocmd

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
)

// The environment of a pod that keeps a repository cache (docs/repository-format.md,
// "Local cache"): the plugin sets both on host pods, the directory being an emptyDir.
// The budget must stay below the emptyDir's sizeLimit (by a few MiB, or 5 %: the
// directories take blocks too); the kubelet evicts a pod whose volume exceeds it.
const (
	// EnvCacheDir is the cache directory; unset or empty: no cache.
	EnvCacheDir = "STASH_CACHE_DIR"
	// EnvCacheSize is the cache's budget in bytes, decimal (a suffix such as 512Mi is
	// accepted too); unset: repo.DefaultCacheSize.
	EnvCacheSize = "STASH_CACHE_SIZE"
)

// CacheOptionsFromEnv reads the cache directory and budget with getenv (os.Getenv in a
// pod; a map in tests). size is 0 when EnvCacheSize is unset (the engine's default).
func CacheOptionsFromEnv(getenv func(string) string) (dir string, size int64, err error) {
	dir = getenv(EnvCacheDir)
	if s := getenv(EnvCacheSize); s != "" {
		if size, err = ParseSize(s); err != nil {
			return dir, 0, fmt.Errorf("%s: %w", EnvCacheSize, err)
		}
	}
	return dir, size, nil
}

// sizeSuffixes are Kubernetes quantity suffixes (Ki, Mi… binary; k, M… decimal), the
// form an emptyDir's sizeLimit is written in; K and a trailing B (MiB, GB) are accepted
// because people write them.
var sizeSuffixes = []struct {
	suffix string
	mult   int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// ParseSize parses a positive byte count: decimal bytes, or a whole number with a
// suffix (512Mi, 2Gi, 500M, 1G; a trailing B is allowed: 512MiB).
func ParseSize(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(s)
	if len(s) > 1 && strings.HasSuffix(s, "B") {
		s = strings.TrimSuffix(s, "B")
	}
	mult := int64(1)
	for _, sf := range sizeSuffixes {
		if strings.HasSuffix(s, sf.suffix) {
			s, mult = strings.TrimSuffix(s, sf.suffix), sf.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, optionally with a suffix (512Mi, 2Gi, 500M)", orig)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q: too large", orig)
	}
	return n * mult, nil
}

// repoOptions are the options of a repository opened through the flags.
func (f RepoFlags) repoOptions() repo.Options {
	if f.NoCache || f.CacheDir == "" {
		return repo.Options{LockHolders: LockHolders}
	}
	return repo.Options{CacheDir: f.CacheDir, CacheSize: f.CacheSize, LockHolders: LockHolders}
}

// LockHolders, set by stash-job when it runs in a pod, names the locks of every
// repository opened here and removes those of pods that have ended (repo.LockHolders).
var LockHolders repo.LockHolders

// printCacheStats says what the cache did, when one was asked for.
func PrintCacheStats(w io.Writer, f RepoFlags, r *repo.Repository) {
	if f.NoCache || f.CacheDir == "" {
		return
	}
	if err := r.CacheError(); err != nil {
		fmt.Fprintf(w, "cache: not used: %v\n", err)
		return
	}
	s := r.CacheStats()
	fmt.Fprintf(w, "cache: %d hits (%s), %d misses (%s downloaded), %d evicted; holds %d files, %s of %s in %s\n",
		s.Hits, humanBytes(s.HitBytes), s.Misses, humanBytes(s.MissBytes), s.Evicted, s.Files, humanBytes(s.Size), humanBytes(s.Budget), s.Dir)
}

// hostRepoOptions are the options of a host pod's repository: the cache the plugin set up
// in its environment, if any. A bad setting costs the cache, never the backup; it is
// written to log for `kubectl logs`.
func HostRepoOptions(getenv func(string) string, log io.Writer) repo.Options {
	dir, size, err := CacheOptionsFromEnv(getenv)
	if err != nil {
		fmt.Fprintf(log, "no repository cache: %v\n", err)
		return repo.Options{LockHolders: LockHolders}
	}
	return repo.Options{CacheDir: dir, CacheSize: size, LockHolders: LockHolders}
}
