package maintenance_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/maintenance"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/store/storetest"
)

var ctx = context.Background()

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Sizes: the forgotten snapshot alone holds onlyA (3 MiB of random data, which does not
// compress); the kept one holds onlyB; both hold shared. With the default 16 MiB packs,
// backup A writes one data pack {shared, onlyA} and backup B one {onlyB}, so after
// forgetting A the first pack is 60 % unused and is repacked.
const (
	sharedSize = 2 << 20
	onlySize   = 3 << 20
)

type world struct {
	st     *store.Store
	faulty *storetest.Faulty
	srcB   string
	snapB  *repo.Snapshot
	treeA  crypto.ID // root tree of the forgotten snapshot
}

// newWorld backs up two trees that share a file into a repository whose store can be
// made to fail, and forgets the first snapshot.
func newWorld(t *testing.T) world {
	t.Helper()
	shared := randomBytes(1, sharedSize)
	srcA := writeTree(t, map[string][]byte{"shared.bin": shared, "a/onlyA.bin": randomBytes(2, onlySize), "a/small.txt": []byte("a")})
	srcB := writeTree(t, map[string][]byte{"shared.bin": shared, "b/onlyB.bin": randomBytes(3, onlySize), "b/small.txt": []byte("b")})
	faulty := storetest.NewFaulty(store.BucketBackend(memblob.OpenBucket(nil)))
	st := store.NewFromBackend(faulty, "mem://test", store.Options{})
	t.Cleanup(func() { st.Close() })
	r := repotest.Init(t, st, repo.InitOptions{})
	snapA, err := snapshot.Backup(ctx, r, []string{srcA}, snapshot.BackupOptions{Host: "a"})
	if err != nil {
		t.Fatal(err)
	}
	snapB, err := snapshot.Backup(ctx, r, []string{srcB}, snapshot.BackupOptions{Host: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveSnapshot(ctx, snapA.ID); err != nil {
		t.Fatal(err)
	}
	return world{st: st, faulty: faulty, srcB: srcB, snapB: snapB, treeA: snapA.Tree}
}

// objects returns every key in the store with its size.
func objects(t *testing.T, st *store.Store) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	if err := st.List(ctx, "", func(o store.Object) error {
		if !strings.HasPrefix(o.Key, "locks/") {
			out[o.Key] = o.Size
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func packBytes(objs map[string]int64) int64 {
	var n int64
	for k, s := range objs {
		if strings.HasPrefix(k, "data/") || strings.HasPrefix(k, "tree/") {
			n += s
		}
	}
	return n
}

func prune(t *testing.T, st *store.Store, opts maintenance.PruneOptions) (*maintenance.PruneStats, error) {
	t.Helper()
	return maintenance.Prune(ctx, repotest.Reopen(t, st), opts)
}

// checkRestore restores snapB from a fresh handle and compares it with its source byte
// for byte.
func checkRestore(t *testing.T, w world) {
	t.Helper()
	r := repotest.Reopen(t, w.st)
	sn, err := r.LoadSnapshot(ctx, w.snapB.ID)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	var names []string
	err = filepath.WalkDir(w.srcB, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, p)
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(target, p))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: restored %d bytes differ from the %d of the source", p, len(got), len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	if len(names) != 3 {
		t.Fatalf("source files %q", names)
	}
}

func TestPrune(t *testing.T) {
	w := newWorld(t)
	before := objects(t, w.st)

	// (d) a dry run changes nothing, and predicts the real run
	dry, err := prune(t, w.st, maintenance.PruneOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := objects(t, w.st); !equalMaps(got, before) {
		t.Fatalf("dry run changed the store:\nbefore %v\nafter  %v", before, got)
	}

	st, err := prune(t, w.st, maintenance.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after := objects(t, w.st)
	t.Logf("dry run: %+v", *dry)
	t.Logf("prune:   %+v", *st)
	t.Logf("pack bytes %d -> %d (shrank by %d; forgotten-only data %d)", packBytes(before), packBytes(after), packBytes(before)-packBytes(after), onlySize)

	// (a) the kept snapshot restores bit-identically
	checkRestore(t, w)

	// (b) bytes reclaimed, and the packs shrank by about the forgotten-only data
	if st.BytesReclaimed <= 0 || st.BytesReclaimable < st.BytesReclaimed {
		t.Errorf("reclaimable %d, reclaimed %d", st.BytesReclaimable, st.BytesReclaimed)
	}
	shrank := packBytes(before) - packBytes(after)
	if shrank != st.BytesReclaimed {
		t.Errorf("packs shrank by %d, prune says it reclaimed %d", shrank, st.BytesReclaimed)
	}
	if shrank < onlySize || shrank > onlySize+64<<10 {
		t.Errorf("packs shrank by %d, want about %d (onlyA)", shrank, onlySize)
	}
	if st.PacksRepacked != 1 || st.PacksWritten != 1 || st.PacksDeleted < 1 {
		t.Errorf("packs: %d repacked, %d written, %d deleted; want the pack of shared+onlyA repacked", st.PacksRepacked, st.PacksWritten, st.PacksDeleted)
	}
	if dry.BytesReclaimable != st.BytesReclaimable || dry.PacksDeleted != st.PacksDeleted || dry.PacksRepacked != st.PacksRepacked {
		t.Errorf("dry run %+v does not predict the run %+v", *dry, *st)
	}
	if d := dry.BytesReclaimed - st.BytesReclaimed; d < -1024 || d > 1024 {
		t.Errorf("dry run predicts %d reclaimed, the run reclaimed %d", dry.BytesReclaimed, st.BytesReclaimed)
	}
	var indexFiles int
	for k := range after {
		if strings.HasPrefix(k, "index/") {
			indexFiles++
			if before[k] != 0 {
				t.Errorf("old index file %s is still there", k)
			}
		}
	}
	if indexFiles != 1 {
		t.Errorf("%d index files after prune, want 1", indexFiles)
	}

	// (c) a second prune reclaims nothing and changes nothing
	again, err := prune(t, w.st, maintenance.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.BytesReclaimed != 0 || again.PacksDeleted != 0 || again.PacksRepacked != 0 {
		t.Errorf("second prune: %+v", *again)
	}
	if got := objects(t, w.st); !equalMaps(got, after) {
		t.Errorf("second prune changed the store")
	}
}

func TestPruneMaxUnused(t *testing.T) {
	w := newWorld(t)
	// 100 %: the mixed pack is kept; only the tree pack nobody uses any more goes
	st, err := prune(t, w.st, maintenance.PruneOptions{MaxUnusedPercent: 100})
	if err != nil {
		t.Fatal(err)
	}
	if st.PacksRepacked != 0 || st.PacksWritten != 0 {
		t.Errorf("--max-unused-percent 100 repacked: %+v", *st)
	}
	if st.BytesReclaimable < onlySize || st.BytesReclaimed >= onlySize {
		t.Errorf("reclaimable %d, reclaimed %d", st.BytesReclaimable, st.BytesReclaimed)
	}
	checkRestore(t, w)
}

func TestPruneLocked(t *testing.T) {
	w := newWorld(t)
	other := repotest.Reopen(t, w.st)
	lock, err := other.Lock(ctx, false) // a backup running
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release(ctx)
	before := objects(t, w.st)
	for _, dry := range []bool{false, true} {
		if _, err := prune(t, w.st, maintenance.PruneOptions{DryRun: dry}); !errors.Is(err, repo.ErrLocked) {
			t.Fatalf("prune (dry run %v) beside a shared lock: %v, want ErrLocked", dry, err)
		}
	}
	if got := objects(t, w.st); !equalMaps(got, before) {
		t.Fatalf("a prune that failed to lock changed the store")
	}
}

// TestPruneCrash kills prune (a failing store call it does not retry) at each step of its
// write order: the repository must still restore, and a second prune must finish and
// leave what an uninterrupted prune leaves.
func TestPruneCrash(t *testing.T) {
	crash := errors.New("injected crash")
	// Uploads in a prune: its lock, the new data pack, the new index file. Deletes: the
	// two old index files (one per backup), then the two packs (the repacked data pack
	// and the forgotten snapshot's tree pack).
	tests := []struct {
		name  string
		op    storetest.Op
		skip  int
		times int
	}{
		{"repacked pack upload", storetest.OpUpload, 1, 1},
		{"new index upload", storetest.OpUpload, 2, 1},
		{"first old index delete", storetest.OpDelete, 0, 1},
		{"second old index delete", storetest.OpDelete, 1, 1},
		{"first pack delete", storetest.OpDelete, 2, 1},
		{"last pack delete", storetest.OpDelete, 3, 1},
	}
	ref := newWorld(t)
	if _, err := prune(t, ref.st, maintenance.PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	want := packBytes(objects(t, ref.st))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			r := repotest.Reopen(t, w.st)
			w.faulty.Add(tt.op, storetest.Fault{Err: crash, Skip: tt.skip, Times: tt.times})
			if _, err := maintenance.Prune(ctx, r, maintenance.PruneOptions{}); !errors.Is(err, crash) {
				t.Fatalf("prune with a crash: %v", err)
			}
			checkRestore(t, w)
			st, err := prune(t, w.st, maintenance.PruneOptions{})
			if err != nil {
				t.Fatalf("prune after the crash: %v", err)
			}
			t.Logf("prune after the crash: %+v", *st)
			checkRestore(t, w)
			// Trees record times and inodes, so each world's tree packs differ by a few bytes.
			if got := packBytes(objects(t, w.st)); got < want-1024 || got > want+1024 {
				t.Errorf("after the crash and a second prune the packs take %d bytes, an uninterrupted prune leaves %d", got, want)
			}
			again, err := prune(t, w.st, maintenance.PruneOptions{})
			if err != nil || again.BytesReclaimed != 0 || again.PacksDeleted != 0 {
				t.Errorf("third prune: %+v, %v", again, err)
			}
		})
	}
}

func equalMaps(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// TestPruneCache: the cached copies of what prune deleted go with it, and a handle with
// the same cache restores from the new index and packs.
func TestPruneCache(t *testing.T) {
	w := newWorld(t)
	cacheDir := t.TempDir()
	warm := repotest.OpenWith(t, w.st, repo.Options{CacheDir: cacheDir})
	if _, err := snapshot.Restore(ctx, warm, w.snapB, snapshot.RestoreOptions{Target: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	// the forgotten snapshot's tree pack, which prune deletes, is cached too
	if _, err := warm.LoadBlob(ctx, w.treeA, nil); err != nil {
		t.Fatal(err)
	}
	e, _ := warm.Lookup(w.treeA)
	treePackA := "tree/" + e.Pack.String()
	cached := func() map[string]bool {
		out := map[string]bool{}
		filepath.WalkDir(cacheDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				out[filepath.Base(filepath.Dir(p))+"/"+d.Name()] = true
			}
			return nil
		})
		return out
	}
	before := cached()
	if !before[treePackA] {
		t.Fatalf("cache %v lacks %s", before, treePackA)
	}
	if _, err := maintenance.Prune(ctx, repotest.OpenWith(t, w.st, repo.Options{CacheDir: cacheDir}), maintenance.PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	objs := objects(t, w.st)
	for name := range cached() {
		kind, id, _ := strings.Cut(name, "/")
		key := "index/" + id
		if kind == "tree" {
			key = "tree/" + id[:2] + "/" + id
		}
		if _, ok := objs[key]; !ok {
			t.Errorf("cache holds %s, which the store no longer has", name)
		}
	}
	if cached()[treePackA] {
		t.Errorf("the deleted tree pack %s is still cached", treePackA)
	}
	t.Logf("cache before prune %d files, after %d", len(before), len(cached()))
	r := repotest.OpenWith(t, w.st, repo.Options{CacheDir: cacheDir})
	target := t.TempDir()
	if _, err := snapshot.Restore(ctx, r, w.snapB, snapshot.RestoreOptions{Target: target}); err != nil {
		t.Fatalf("restore through the cache after prune: %v", err)
	}
	checkRestore(t, w)
}
