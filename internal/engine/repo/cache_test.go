package repo_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// treeFixture is a repository on a counting store holding n tree blobs in packs of
// packSize, saved by an uncached handle: nothing of it is in any cache yet. Every blob
// carries some incompressible bytes, so that packs fill as they would with real trees.
type treeFixture struct {
	st    *store.Store
	count *repotest.Counting
	ids   []crypto.ID
	blobs map[crypto.ID][]byte
}

func newTreeFixture(t *testing.T, n, packSize int) *treeFixture {
	t.Helper()
	st, count := repotest.NewCountingStore(t)
	r := repotest.Init(t, st, repo.InitOptions{PackSize: packSize})
	f := &treeFixture{st: st, count: count, blobs: map[crypto.ID][]byte{}}
	rnd := rand.New(rand.NewPCG(uint64(n), uint64(packSize)))
	for i := 0; i < n; i++ {
		b := []byte(fmt.Sprintf(`{"nodes":[{"name":"dir-%04d","type":"dir","size":%d,"inode":%d}]}`, i, i*7, rnd.Uint64()))
		id, _, err := r.SaveBlob(ctx, repo.TreeBlob, b)
		if err != nil {
			t.Fatal(err)
		}
		f.ids = append(f.ids, id)
		f.blobs[id] = b
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	count.Reset()
	return f
}

// objects counts the objects of kind in the store.
func (f *treeFixture) objects(t *testing.T, kind string) int {
	t.Helper()
	n := 0
	if err := f.st.List(ctx, kind+"/", func(store.Object) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// loadAll loads every blob with workers goroutines and checks its content.
func (f *treeFixture) loadAll(t *testing.T, r *repo.Repository, workers int) {
	t.Helper()
	var wg sync.WaitGroup
	ch := make(chan crypto.ID)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ch {
				got, err := r.LoadBlob(ctx, id, nil)
				if err != nil {
					t.Errorf("blob %s: %v", id.Short(), err)
				} else if !bytes.Equal(got, f.blobs[id]) {
					t.Errorf("blob %s: wrong content", id.Short())
				}
			}
		}()
	}
	for _, id := range f.ids {
		ch <- id
	}
	close(ch)
	wg.Wait()
}

// cacheFiles returns the files under dir (temporary ones included) and their total size.
// It may run while the cache works: a file removed meanwhile is not counted.
func cacheFiles(t *testing.T, dir string) (files map[string]int64, total int64) {
	t.Helper()
	files = map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = fi.Size()
		total += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, total
}

func TestCacheReadsEachTreePackOnce(t *testing.T) {
	f := newTreeFixture(t, 400, 8<<10)
	treePacks := f.objects(t, "tree")
	if treePacks < 5 {
		t.Fatalf("fixture has %d tree packs, want several", treePacks)
	}

	uncached := repotest.OpenWith(t, f.st, repo.Options{})
	f.count.Reset()
	f.loadAll(t, uncached, 16)
	if got := f.count.Reads("tree"); got != len(f.ids) {
		t.Errorf("uncached: %d tree reads, want one per blob (%d)", got, len(f.ids))
	}
	if s := uncached.CacheStats(); s != (repo.CacheStats{}) {
		t.Errorf("uncached handle has cache stats %+v", s)
	}

	dir := t.TempDir()
	cached := repotest.OpenWith(t, f.st, repo.Options{CacheDir: dir})
	opened := cached.CacheStats() // the index files
	f.count.Reset()
	// 16 goroutines asking for blobs of the same packs at once: each pack is downloaded once.
	f.loadAll(t, cached, 16)
	if got := f.count.Reads("tree"); got != treePacks {
		t.Errorf("cached: %d tree reads, want one per tree pack (%d)", got, treePacks)
	}
	s := cached.CacheStats()
	s.Misses -= opened.Misses
	if s.Misses != int64(treePacks) || s.Hits != int64(len(f.ids)-treePacks) || s.Dir != dir || s.Budget != repo.DefaultCacheSize {
		t.Errorf("stats %+v, want %d misses, %d hits, dir %s, default budget", s, treePacks, len(f.ids)-treePacks, dir)
	}
	t.Logf("%d tree blobs in %d packs: %d reads uncached, %d cached", len(f.ids), treePacks, len(f.ids), treePacks)

	// A second pass reads the files only.
	f.count.Reset()
	f.loadAll(t, cached, 4)
	if got := f.count.Reads("tree"); got != 0 {
		t.Errorf("second pass: %d tree reads, want 0", got)
	}
}

func TestCacheLayoutAndIndexReuse(t *testing.T) {
	f := newTreeFixture(t, 50, 4<<10)
	indexFiles := f.objects(t, "index")
	dir := t.TempDir()
	// Things the cache did not make are neither counted nor touched; a temporary file of
	// a killed process is removed.
	foreign := filepath.Join(dir, "notes.txt")
	os.WriteFile(foreign, []byte("mine"), 0o600)

	r := repotest.OpenWith(t, f.st, repo.Options{CacheDir: dir})
	if got := f.count.Reads("index"); got != indexFiles {
		t.Fatalf("first open: %d index reads, want %d", got, indexFiles)
	}
	id := r.Config().ID
	leftover := filepath.Join(dir, id, "tree", ".tmp-12345")
	os.WriteFile(leftover, make([]byte, 1000), 0o600)
	f.loadAll(t, r, 4)

	files, _ := cacheFiles(t, dir)
	var index, tree int
	for name, size := range files {
		switch {
		case name == "notes.txt" || name == id+"/tree/.tmp-12345":
		case strings.HasPrefix(name, id+"/index/"):
			index++
		case strings.HasPrefix(name, id+"/tree/"):
			tree++
			oid, err := crypto.ParseID(strings.TrimPrefix(name, id+"/tree/"))
			b, _ := os.ReadFile(filepath.Join(dir, name))
			if err != nil || r.Hashing().Sum(b) != oid || int64(len(b)) != size {
				t.Errorf("%s: not a whole pack named by its hash", name)
			}
		default:
			t.Errorf("unexpected file %s", name)
		}
	}
	if index != indexFiles || tree != f.objects(t, "tree") {
		t.Errorf("cache holds %d index files and %d tree packs, want %d and %d", index, tree, indexFiles, f.objects(t, "tree"))
	}

	f.count.Reset()
	r2 := repotest.OpenWith(t, f.st, repo.Options{CacheDir: dir})
	if got := f.count.Reads("index"); got != 0 {
		t.Errorf("second open: %d index reads, want 0", got)
	}
	if s := r2.CacheStats(); s.Hits != int64(indexFiles) || s.Misses != 0 {
		t.Errorf("second open: stats %+v, want %d hits", s, indexFiles)
	}
	if p, b := r2.IndexCounts(); p != f.objects(t, "tree") || b != len(f.ids) {
		t.Errorf("index from the cache knows %d packs and %d blobs, want %d and %d", p, b, f.objects(t, "tree"), len(f.ids))
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("temporary leftover still there: %v", err)
	}
	if b, err := os.ReadFile(foreign); err != nil || string(b) != "mine" {
		t.Errorf("foreign file touched: %q, %v", b, err)
	}

	// An index file gone from the store (replaced by prune) leaves the cache too.
	var gone string
	f.st.List(ctx, "index/", func(o store.Object) error { gone = o.Key; return nil })
	if err := f.st.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	repotest.OpenWith(t, f.st, repo.Options{CacheDir: dir})
	if _, err := os.Stat(filepath.Join(dir, id, gone)); !os.IsNotExist(err) {
		t.Errorf("cached copy of deleted %s still there: %v", gone, err)
	}
}

func TestCacheWriteThrough(t *testing.T) {
	st, count := repotest.NewCountingStore(t)
	dir := t.TempDir()
	r, err := repo.Init(ctx, st, []byte(repotest.Password), repo.InitOptions{KDF: repotest.CheapKDF, PackSize: 4 << 10},
		repo.Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var ids []crypto.ID
	for i := 0; i < 60; i++ {
		id, _, err := r.SaveBlob(ctx, repo.TreeBlob, []byte(fmt.Sprintf("tree %d %s", i, strings.Repeat("y", 200))))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, _, err := r.SaveBlob(ctx, repo.DataBlob, bytes.Repeat([]byte("data"), 1000)); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := cacheFiles(t, dir)
	for name := range files {
		if strings.Contains(name, "/data/") {
			t.Errorf("data pack cached: %s", name)
		}
	}
	count.Reset()
	r2 := repotest.OpenWith(t, st, repo.Options{CacheDir: dir})
	for _, id := range ids {
		if _, err := r2.LoadBlob(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if i, tr := count.Reads("index"), count.Reads("tree"); i != 0 || tr != 0 {
		t.Errorf("what this process wrote was read again from the store: %d index, %d tree reads", i, tr)
	}
}

// flipByte changes one byte of a file in place.
func flipByte(t *testing.T, p string, off int64) {
	t.Helper()
	fh, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, 1)
	if _, err := fh.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := fh.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// cachedPacks returns the paths of the cached files of kind.
func cachedPacks(t *testing.T, dir, repoID, kind string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, repoID, kind, "*"))
	if len(m) == 0 {
		t.Fatalf("no cached %s files", kind)
	}
	return m
}

func TestCacheDamagedFilesAreDroppedAndRefetched(t *testing.T) {
	tests := []struct {
		name string
		// damage changes the cache after a first handle filled it; r is that handle
		// (still open), the next one opens afterwards.
		damage func(t *testing.T, r *repo.Repository, dir string)
		// sameHandle: the damaged file is read again by r, which verified it before.
		sameHandle bool
	}{
		{name: "tree pack byte flipped", damage: func(t *testing.T, r *repo.Repository, dir string) {
			for _, p := range cachedPacks(t, dir, r.Config().ID, "tree") {
				flipByte(t, p, 10)
			}
		}},
		{name: "tree pack truncated", damage: func(t *testing.T, r *repo.Repository, dir string) {
			for _, p := range cachedPacks(t, dir, r.Config().ID, "tree") {
				os.Truncate(p, 100)
			}
		}},
		{name: "tree pack emptied", damage: func(t *testing.T, r *repo.Repository, dir string) {
			for _, p := range cachedPacks(t, dir, r.Config().ID, "tree") {
				os.Truncate(p, 0)
			}
		}},
		{name: "index file byte flipped", damage: func(t *testing.T, r *repo.Repository, dir string) {
			for _, p := range cachedPacks(t, dir, r.Config().ID, "index") {
				flipByte(t, p, 20)
			}
		}},
		{name: "tree pack changed after this handle verified it", sameHandle: true, damage: func(t *testing.T, r *repo.Repository, dir string) {
			for _, p := range cachedPacks(t, dir, r.Config().ID, "tree") {
				fi, _ := os.Stat(p)
				for off := int64(0); off < fi.Size(); off += 512 {
					flipByte(t, p, off)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTreeFixture(t, 120, 8<<10)
			dir := t.TempDir()
			r := repotest.OpenWith(t, f.st, repo.Options{CacheDir: dir})
			f.loadAll(t, r, 4)
			tt.damage(t, r, dir)
			before := r.CacheStats()
			f.count.Reset()
			if !tt.sameHandle {
				r = repotest.OpenWith(t, f.st, repo.Options{CacheDir: dir})
				before = repo.CacheStats{}
			}
			const workers = 4
			f.loadAll(t, r, workers)
			s := r.CacheStats()
			if f.count.Reads("tree")+f.count.Reads("index") == 0 || s.Misses == before.Misses {
				t.Errorf("damage not noticed: no reads from the store (stats %+v)", s)
			}
			// Each pack is downloaded once more; readers that met the damage before it
			// was dropped read their blob from the store.
			if got, packs := f.count.Reads("tree"), f.objects(t, "tree"); got > packs*(1+workers) {
				t.Errorf("%d tree reads for %d packs: damaged packs fetched again and again", got, packs)
			}
			f.count.Reset()
			f.loadAll(t, r, workers)
			if got := f.count.Reads("tree"); got != 0 {
				t.Errorf("after re-fetching: %d tree reads, want 0", got)
			}
			// Whatever is in the cache now is intact, and the packs are back in it.
			for _, kind := range []string{"index", "tree"} {
				for _, p := range cachedPacks(t, dir, r.Config().ID, kind) {
					b, _ := os.ReadFile(p)
					if r.Hashing().Sum(b).String() != filepath.Base(p) {
						t.Errorf("%s: still damaged", p)
					}
				}
			}
			if n := len(cachedPacks(t, dir, r.Config().ID, "tree")); n != f.objects(t, "tree") {
				t.Errorf("%d tree packs cached after re-fetching, want %d", n, f.objects(t, "tree"))
			}
		})
	}
}

func TestCacheStaysWithinBudget(t *testing.T) {
	f := newTreeFixture(t, 1000, 4<<10)
	treePacks := f.objects(t, "tree")
	dir := t.TempDir()
	const budget = 64 << 10
	r := repotest.OpenWith(t, f.st, repo.Options{CacheDir: dir, CacheSize: budget})
	f.loadAll(t, r, 8)
	_, total := cacheFiles(t, dir)
	s := r.CacheStats()
	if total > budget || s.Size > budget || total > s.Size {
		t.Errorf("cache holds %d bytes (%d accounted), budget %d", total, s.Size, budget)
	}
	if s.Evicted == 0 {
		t.Errorf("nothing evicted from a %d-byte budget by %d packs", budget, treePacks)
	}
	// An evicted pack is not downloaded whole again: its blobs are read as uncached, so
	// the cache never costs more requests than no cache plus one per pack.
	reads := f.count.Reads("tree")
	f.loadAll(t, r, 8)
	if reads2 := f.count.Reads("tree"); reads2 > treePacks+2*len(f.ids) {
		t.Errorf("%d tree reads for two passes over %d blobs in %d packs", reads2, len(f.ids), treePacks)
	} else {
		t.Logf("budget %d: %d packs, %d evicted, reads %d then %d", budget, treePacks, s.Evicted, reads, reads2-reads)
	}

	// A smaller budget next time evicts at open.
	const smaller = 16 << 10
	r2 := repotest.OpenWith(t, f.st, repo.Options{CacheDir: dir, CacheSize: smaller})
	f.loadAll(t, r2, 8)
	if _, total := cacheFiles(t, dir); total > smaller {
		t.Errorf("after reopening with budget %d the cache holds %d bytes", smaller, total)
	}
	// A budget smaller than any pack caches nothing and reads like no cache.
	tiny := t.TempDir()
	f.count.Reset()
	r3 := repotest.OpenWith(t, f.st, repo.Options{CacheDir: tiny, CacheSize: 100})
	f.loadAll(t, r3, 8)
	if got := f.count.Reads("tree"); got != len(f.ids) {
		t.Errorf("budget below a pack: %d tree reads, want %d", got, len(f.ids))
	}
	if files, _ := cacheFiles(t, tiny); len(files) > 0 {
		t.Errorf("budget below a pack: cached %v", files)
	}
}

func TestCacheUnusableDirectory(t *testing.T) {
	tests := []struct {
		name string
		// dir returns the cache directory; after, if set, runs once the handle is open.
		dir   func(t *testing.T) string
		after func(t *testing.T, dir string)
		// open: the handle opens with a cache, which fails later.
		open     bool
		needUser bool // permission bits do not stop root
	}{
		{name: "a regular file", dir: func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file")
			os.WriteFile(p, nil, 0o600)
			return p
		}},
		{name: "below a regular file", dir: func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file")
			os.WriteFile(p, nil, 0o600)
			return filepath.Join(p, "cache")
		}},
		{name: "read-only directory", needUser: true, dir: func(t *testing.T) string {
			p := t.TempDir()
			os.Chmod(p, 0o500)
			t.Cleanup(func() { os.Chmod(p, 0o700) })
			return p
		}},
		{name: "made read-only after open", needUser: true, open: true, dir: func(t *testing.T) string { return t.TempDir() },
			after: func(t *testing.T, dir string) {
				filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
					if err == nil && d.IsDir() {
						os.Chmod(p, 0o500)
					}
					return nil
				})
				t.Cleanup(func() {
					filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
						if d != nil && d.IsDir() {
							os.Chmod(p, 0o700)
						}
						return nil
					})
				})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needUser && os.Geteuid() == 0 {
				t.Skip("root writes to read-only directories")
			}
			f := newTreeFixture(t, 80, 4<<10)
			dir := tt.dir(t)
			r, err := repo.Open(ctx, f.st, []byte(repotest.Password), repo.Options{CacheDir: dir})
			if err != nil {
				t.Fatalf("open with an unusable cache: %v", err)
			}
			if err := r.LoadIndex(ctx); err != nil {
				t.Fatal(err)
			}
			if tt.open != (r.CacheError() == nil) {
				t.Errorf("CacheError() = %v", r.CacheError())
			}
			if tt.after != nil {
				tt.after(t, dir)
			}
			f.count.Reset()
			f.loadAll(t, r, 8)
			if got := f.count.Reads("tree"); got > len(f.ids) {
				t.Errorf("%d tree reads for %d blobs: worse than no cache", got, len(f.ids))
			}
			// Saving still works, and so does the index written at the end.
			if _, _, err := r.SaveBlob(ctx, repo.TreeBlob, []byte("new tree")); err != nil {
				t.Fatal(err)
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if !tt.open && r.CacheStats().Dir != "" {
				t.Errorf("stats of an unusable cache: %+v", r.CacheStats())
			}
		})
	}
}
