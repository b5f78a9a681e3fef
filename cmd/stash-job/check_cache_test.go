package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// check reads what the store holds even when a local cache has a (verified) copy of every
// index file: a truncated index in the store is reported, not hidden behind the cache.
func TestCheckIgnoresTheCache(t *testing.T) {
	r := newTestRepo(t)
	t.Setenv("STASH_CACHE_DIR", t.TempDir())
	repoDir := strings.TrimPrefix(r.url, "file://")
	os.WriteFile(filepath.Join(r.src, "a.txt"), []byte("cached"), 0o644)
	if out, err := stashJob(t, r.cmd("backup", "--host", "h", r.src)...); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	// a restore fills the cache with the index file
	if out, err := stashJob(t, r.cmd("restore", "latest", "--target", t.TempDir())...); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	idx := packFiles(t, filepath.Join(repoDir, "index"))
	if len(idx) != 1 {
		t.Fatalf("index files %v, want 1", idx)
	}
	b, _ := os.ReadFile(idx[0])
	os.WriteFile(idx[0], b[:len(b)/2], 0o644)
	out, code := stashJobExit(t, r.cmd("check")...)
	if code == 0 || !strings.Contains(out, "damaged index") {
		t.Errorf("check with the index cached and truncated in the store: exit %d, want non-zero naming the damaged index:\n%s", code, out)
	}
}
