package repo_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

var ctx = context.Background()

func TestOpenErrors(t *testing.T) {
	st := repotest.NewStore(t)
	if _, err := repo.Open(ctx, st, []byte("x"), repo.Options{}); !errors.Is(err, repo.ErrNoRepository) || !strings.Contains(err.Error(), "mem://test") {
		t.Fatalf("open of an empty store: %v, want ErrNoRepository naming the URL", err)
	}
	repotest.Init(t, st, repo.InitOptions{})
	_, err := repo.Open(ctx, st, []byte("wrong"), repo.Options{})
	if !errors.Is(err, repo.ErrWrongPassword) || !strings.Contains(err.Error(), "mem://test") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := repo.Init(ctx, st, []byte("x"), repo.InitOptions{KDF: repotest.CheapKDF}, repo.Options{}); !errors.Is(err, repo.ErrExists) {
		t.Fatalf("second init: %v, want ErrExists", err)
	}
}

// TestInitHash: a new repository is format 2 with BLAKE3 unless SHA-256 is asked for,
// which writes format 1 exactly (no hash in the config), so older programs read it.
func TestInitHash(t *testing.T) {
	tests := []struct {
		hash        string
		wantVersion int
		wantHash    string // in the config
		wantName    string // what ids are computed with
	}{
		{"", 2, crypto.BLAKE3, crypto.BLAKE3},
		{crypto.BLAKE3, 2, crypto.BLAKE3, crypto.BLAKE3},
		{crypto.SHA256, 1, "", crypto.SHA256},
	}
	for _, tt := range tests {
		t.Run(tt.wantName+"/"+tt.hash, func(t *testing.T) {
			st := repotest.NewStore(t)
			repotest.Init(t, st, repo.InitOptions{Hash: tt.hash})
			r := repotest.Reopen(t, st)
			c := r.Config()
			if c.Version != tt.wantVersion || c.Hash != tt.wantHash || r.Hashing().Name() != tt.wantName {
				t.Fatalf("version %d, config hash %q, ids %s; want %d, %q, %s", c.Version, c.Hash, r.Hashing().Name(), tt.wantVersion, tt.wantHash, tt.wantName)
			}
			id, _, err := r.SaveBlob(ctx, repo.DataBlob, []byte("some data"))
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := crypto.NewHashing(tt.wantName, r.Key().MAC); id != want.BlobID([]byte("some data")) {
				t.Errorf("blob id %s is not the %s of the data", id.Short(), tt.wantName)
			}
		})
	}
	st := repotest.NewStore(t)
	if _, err := repo.Init(ctx, st, []byte("x"), repo.InitOptions{KDF: repotest.CheapKDF, Hash: "md5"}, repo.Options{}); err == nil || !strings.Contains(err.Error(), `"md5"`) {
		t.Errorf("init with an unknown hash: %v", err)
	}
	if _, err := st.Get(ctx, "config"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("init with an unknown hash wrote a config: %v", err)
	}
}

func TestSecondKeyOpensRepository(t *testing.T) {
	r, st := repotest.New(t, repo.InitOptions{})
	if _, err := repo.AddKey(ctx, st, r.Key(), []byte("second"), repotest.CheapKDF); err != nil {
		t.Fatal(err)
	}
	r2, err := repo.Open(ctx, st, []byte("second"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Config().ID != r.Config().ID {
		t.Fatal("second key opened another repository")
	}
}

func TestBlobsRoundTripAndDedup(t *testing.T) {
	r, st := repotest.New(t, repo.InitOptions{PackSize: 64 << 10})
	rnd := rand.New(rand.NewPCG(1, 2))
	var blobs [][]byte
	for i := 0; i < 50; i++ {
		b := make([]byte, 1+rnd.IntN(20000))
		if i%2 == 0 {
			for j := range b {
				b[j] = byte(rnd.IntN(256))
			}
		} else {
			copy(b, bytes.Repeat([]byte("log line compressible "), len(b)/22+1))
		}
		blobs = append(blobs, b)
	}
	ids := map[int][32]byte{}
	for i, b := range blobs {
		id, saved, err := r.SaveBlob(ctx, repo.DataBlob, b)
		if err != nil || !saved {
			t.Fatalf("save %d: saved=%v err=%v", i, saved, err)
		}
		ids[i] = id
		if _, saved, _ := r.SaveBlob(ctx, repo.DataBlob, b); saved {
			t.Fatalf("blob %d saved twice", i)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	packs, n := r.IndexCounts()
	if n != len(blobs) || packs < 2 {
		t.Fatalf("index has %d blobs in %d packs, want %d blobs in several packs", n, packs, len(blobs))
	}
	r2 := repotest.Reopen(t, st)
	for i, b := range blobs {
		got, err := r2.LoadBlob(ctx, ids[i], nil)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("load %d: %v", i, err)
		}
	}
	if r.Uploaded() == 0 {
		t.Error("Uploaded() = 0 after saving blobs")
	}
}

func TestDamagedPackIsDetected(t *testing.T) {
	r, st := repotest.New(t, repo.InitOptions{})
	id, _, err := r.SaveBlob(ctx, repo.DataBlob, bytes.Repeat([]byte("data"), 1000))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e, _ := r.Lookup(id)
	key := repo.PackKey(e.Type, e.Pack)
	raw, err := st.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	raw[e.Offset+20] ^= 0xff
	if err := st.Put(ctx, key, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadBlob(ctx, id, nil); err == nil || !strings.Contains(err.Error(), e.Pack.Short()) {
		t.Fatalf("load of a damaged blob: %v, want an error naming the pack", err)
	}
}

func TestSnapshotsFindLatest(t *testing.T) {
	r, _ := repotest.New(t, repo.InitOptions{})
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, s := range []struct{ host, path string }{{"host-0", "/data"}, {"host-1", "/data"}, {"host-0", "/data"}, {"host-0", "/other"}} {
		sn := &repo.Snapshot{Time: base.Add(time.Duration(i) * time.Hour), Host: s.host, Paths: []string{s.path}, Tags: []string{"n" + string(rune('0'+i))}}
		if err := r.SaveSnapshot(ctx, sn); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		filter  repo.Filter
		wantTag string
		wantErr bool
	}{
		{"any", repo.Filter{}, "n3", false},
		{"host", repo.Filter{Host: "host-1"}, "n1", false},
		{"host and path", repo.Filter{Host: "host-0", Path: "/data"}, "n2", false},
		{"sub-path", repo.Filter{Host: "host-0", Path: "/data/www"}, "n2", false},
		{"none", repo.Filter{Host: "host-9"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sn, err := r.FindSnapshot(ctx, "latest", tt.filter)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("found %v", sn.Tags)
				}
				return
			}
			if err != nil || sn.Tags[0] != tt.wantTag {
				t.Fatalf("got %v, %v; want %s", sn, err, tt.wantTag)
			}
		})
	}
}

func TestLocks(t *testing.T) {
	r, st := repotest.New(t, repo.InitOptions{})
	shared, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	shared2, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatalf("two shared locks conflict: %v", err)
	}
	if _, err := r.Lock(ctx, true); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("exclusive lock over shared ones: %v, want ErrLocked", err)
	}
	shared.Release(ctx)
	shared2.Release(ctx)
	ex, err := r.Lock(ctx, true)
	if err != nil {
		t.Fatalf("exclusive lock on a free repository: %v", err)
	}
	if _, err := r.Lock(ctx, false); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("shared lock under an exclusive one: %v", err)
	}
	ex.Release(ctx)
	var left int
	st.List(ctx, "locks/", func(store.Object) error { left++; return nil })
	if left != 0 {
		t.Fatalf("%d lock objects left after release", left)
	}
}

func TestStaleLock(t *testing.T) {
	l := repo.LockInfo{Refreshed: time.Now().Add(-repo.LockStale - time.Minute)}
	if !l.Stale(time.Now()) {
		t.Fatal("a lock not refreshed for longer than LockStale is not stale")
	}
	l.Refreshed = time.Now()
	if l.Stale(time.Now()) {
		t.Fatal("a fresh lock is stale")
	}
}

// forgetOnRead deletes a snapshot just before the first read of it: another host's
// retention policy forgetting it between this host's listing and its read.
type forgetOnRead struct {
	*store.Store
	gone string
}

func (f *forgetOnRead) Get(ctx context.Context, key string) ([]byte, error) {
	if strings.HasPrefix(key, "snapshots/") && f.gone == "" {
		f.gone = key
		if err := f.Store.Delete(ctx, key); err != nil {
			return nil, err
		}
	}
	return f.Store.Get(ctx, key)
}

// TestSnapshotsWhileForgotten: a snapshot forgotten while the list is read is left out,
// not an error that fails the host reading it.
func TestSnapshotsWhileForgotten(t *testing.T) {
	r, st := repotest.New(t, repo.InitOptions{})
	for i := range 3 {
		if err := r.SaveSnapshot(ctx, &repo.Snapshot{Time: time.Unix(int64(i), 0), Host: "h", Paths: []string{"/p"}}); err != nil {
			t.Fatal(err)
		}
	}
	be := &forgetOnRead{Store: st}
	r2, err := repo.Open(ctx, be, []byte(repotest.Password), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sns, err := r2.Snapshots(ctx)
	if err != nil {
		t.Fatalf("Snapshots while one is forgotten: %v", err)
	}
	if be.gone == "" || len(sns) != 2 {
		t.Fatalf("%d snapshots (forgotten: %q), want the 2 left", len(sns), be.gone)
	}
	for _, sn := range sns {
		if "snapshots/"+sn.ID.String() == be.gone {
			t.Errorf("the forgotten snapshot %s is listed", sn.ID.Short())
		}
	}
}
