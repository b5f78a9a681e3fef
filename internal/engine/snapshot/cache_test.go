package snapshot_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
)

// manyDirs makes a tree of 8 × 8 × 4 directories with a small file in each, so a backup
// with a parent reads hundreds of parent trees.
func manyDirs(t *testing.T) (src string, dirs int) {
	t.Helper()
	src = filepath.Join(t.TempDir(), "src")
	for a := 0; a < 8; a++ {
		for b := 0; b < 8; b++ {
			for c := 0; c < 4; c++ {
				writeFile(t, filepath.Join(src, fmt.Sprintf("a%d/b%d/c%d/f.txt", a, b, c)), []byte(fmt.Sprintf("%d %d %d", a, b, c)), 0o644)
			}
		}
	}
	// src, 8 a, 64 b, 256 c, and the root tree holding the path down to src
	return src, 1 + 8 + 64 + 256
}

func TestBackupWithParentReadsEachTreePackOnceWithCache(t *testing.T) {
	src, dirs := manyDirs(t)
	st, count := repotest.NewCountingStore(t)
	// Small packs, so the parent's trees span several.
	r0 := repotest.Init(t, st, repo.InitOptions{PackSize: 16 << 10})
	first, err := snapshot.Backup(ctx, r0, []string{src}, snapshot.BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	objects := func(kind string) (n int) {
		st.List(ctx, kind+"/", func(storeObject) error { n++; return nil })
		return n
	}
	treePacks := objects("tree") // all of them hold trees of first
	trees := 1                   // the root, and one per directory below it
	if err := snapshot.Walk(ctx, r0, first.Tree, func(_ string, n *snapshot.Node) error {
		if n.Type == snapshot.TypeDir {
			trees++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	type reads struct {
		indexFiles, index, tree, data, all int
		treeBytes                          int64
	}
	run := func(opts repo.Options) (reads, *repo.Repository) {
		t.Helper()
		indexFiles := objects("index")
		count.Reset()
		r := repotest.OpenWith(t, st, opts)
		sn, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h", Parent: first})
		if err != nil {
			t.Fatal(err)
		}
		if sn.Stats.UnmodifiedFiles != sn.Stats.TotalFiles {
			t.Fatalf("stats %+v: every file is unmodified", sn.Stats)
		}
		all := 0
		for _, k := range []string{"config", "keys", "index", "snapshots", "locks", "tree", "data"} {
			all += count.Reads(k)
		}
		return reads{indexFiles, count.Reads("index"), count.Reads("tree"), count.Reads("data"), all, count.Bytes("tree")}, r
	}

	uncached, _ := run(repo.Options{})
	dir := t.TempDir()
	cold, r := run(repo.Options{CacheDir: dir})
	coldStats := r.CacheStats()
	warm, r := run(repo.Options{CacheDir: dir})
	warmStats := r.CacheStats()
	t.Logf("%d trees (%d directories made by the test) in %d tree packs", trees, dirs, treePacks)
	t.Logf("store reads: uncached %+v, cold cache %+v, warm cache %+v", uncached, cold, warm)
	t.Logf("cache stats: cold %+v, warm %+v", coldStats, warmStats)

	if uncached.tree != trees {
		t.Errorf("uncached: %d tree reads, want one per tree (%d)", uncached.tree, trees)
	}
	if cold.tree != treePacks || cold.index != cold.indexFiles {
		t.Errorf("cold cache: %d tree and %d index reads, want one per tree pack (%d) and index file (%d)", cold.tree, cold.index, treePacks, cold.indexFiles)
	}
	// The second cached run finds the first one's index file and tree packs (written
	// through) and every pack of the parent in the cache.
	if warm.tree != 0 || warm.index != 0 {
		t.Errorf("warm cache: %d tree and %d index reads, want none", warm.tree, warm.index)
	}
	if uncached.data+cold.data+warm.data != 0 {
		t.Errorf("a backup of unchanged files read data packs")
	}
	if uncached.all < 10*cold.all {
		t.Errorf("the cache saves too little: %d reads uncached, %d cached", uncached.all, cold.all)
	}
}

func TestBackupAndRestoreWithDamagedOrUnusableCache(t *testing.T) {
	tests := []struct {
		name string
		// cacheDir returns the cache directory for the test.
		cacheDir func(t *testing.T) string
		// damage runs between the first (cached) backup and the second.
		damage func(t *testing.T, dir, repoID string)
	}{
		{name: "every cached file damaged", cacheDir: func(t *testing.T) string { return t.TempDir() },
			damage: func(t *testing.T, dir, repoID string) {
				files, _ := filepath.Glob(filepath.Join(dir, repoID, "*", "*"))
				if len(files) == 0 {
					t.Fatal("nothing cached")
				}
				for _, p := range files {
					b, err := os.ReadFile(p)
					if err != nil {
						t.Fatal(err)
					}
					b[len(b)/2] ^= 1
					os.WriteFile(p, b, 0o600)
				}
			}},
		{name: "cache directory is a file", cacheDir: func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "cache")
			os.WriteFile(p, []byte("not a directory"), 0o600)
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, _ := manyDirs(t)
			writeFile(t, filepath.Join(src, "big.bin"), randomBytes(7, 3<<20), 0o600)
			want := describe(t, src)
			st, _ := repotest.NewCountingStore(t)
			dir := tt.cacheDir(t)
			opts := repo.Options{CacheDir: dir, CacheSize: 1 << 20}
			r, err := repo.Init(ctx, st, []byte(repotest.Password), repo.InitOptions{KDF: repotest.CheapKDF, PackSize: 16 << 10}, opts)
			if err != nil {
				t.Fatal(err)
			}
			first, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h"})
			if err != nil {
				t.Fatal(err)
			}
			if tt.damage != nil {
				tt.damage(t, dir, r.Config().ID)
			}
			r = repotest.OpenWith(t, st, opts)
			writeFile(t, filepath.Join(src, "a1/b1/c1/f.txt"), []byte("changed"), 0o644)
			want = describe(t, src)
			second, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h"})
			if err != nil {
				t.Fatal(err)
			}
			if *second.Parent != first.ID || second.Stats.ModifiedFiles != 1 || second.Stats.UnmodifiedFiles != second.Stats.TotalFiles-1 {
				t.Errorf("second backup: parent %v, stats %+v; want 1 modified, the rest unmodified", second.Parent, second.Stats)
			}
			target := t.TempDir()
			if _, err := snapshot.Restore(ctx, r, second, snapshot.RestoreOptions{Target: target}); err != nil {
				t.Fatal(err)
			}
			compareTrees(t, want, describe(t, filepath.Join(target, src)))
			// What the cache holds now is intact.
			files, _ := filepath.Glob(filepath.Join(dir, r.Config().ID, "*", "*"))
			for _, p := range files {
				b, _ := os.ReadFile(p)
				if r.Hashing().Sum(b).String() != filepath.Base(p) {
					t.Errorf("%s: damaged file still cached", p)
				}
			}
			if tt.damage != nil && r.CacheStats().Misses == 0 {
				t.Errorf("damaged cache files were not fetched again: %+v", r.CacheStats())
			}
			t.Logf("cache: %+v (error: %v)", r.CacheStats(), r.CacheError())
		})
	}
}
