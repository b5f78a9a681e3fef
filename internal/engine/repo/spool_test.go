package repo_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	_ "gocloud.dev/blob/fileblob"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// newFileStore opens a store in a new directory: a file:// store spools its data packs.
func newFileStore(t testing.TB) (*store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(ctx, (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if !st.CanSpool() {
		t.Fatal("a file:// store cannot spool")
	}
	return st, dir
}

// TestSpooledPacks: data packs written piece by piece into a file:// store, by several
// goroutines at once, are the same packs as ever: every blob reads back, every pack's
// name is the hash of its bytes and its size is the one indexed, and no temporary file
// is left behind.
func TestSpooledPacks(t *testing.T) {
	st, dir := newFileStore(t)
	r := repotest.Init(t, st, repo.InitOptions{PackSize: 256 << 10})
	const workers, perWorker = 4, 60
	blobs := make([][][]byte, workers)
	ids := make([][]crypto.ID, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 9))
			for i := range perWorker {
				b := make([]byte, 1+rnd.IntN(40000))
				switch i % 3 {
				case 0: // random: stored raw
					for j := range b {
						b[j] = byte(rnd.IntN(256))
					}
				default: // compressible
					copy(b, bytes.Repeat([]byte(fmt.Sprintf("worker %d line %d compressible ", w, i)), len(b)/20+1))
				}
				id, _, err := r.SaveBlob(ctx, repo.DataBlob, b)
				if err != nil {
					errs <- err
					return
				}
				blobs[w] = append(blobs[w], b)
				ids[w] = append(ids[w], id)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, _, err := r.SaveBlob(ctx, repo.TreeBlob, []byte(`{"nodes":[]}`)); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r2 := repotest.Reopen(t, st)
	for w := range workers {
		for i, b := range blobs[w] {
			got, err := r2.LoadBlob(ctx, ids[w][i], nil)
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("blob %d of worker %d: %v", i, w, err)
			}
		}
	}
	packs := r2.IndexedPacks()
	if len(packs) < 4 {
		t.Fatalf("%d packs, want several", len(packs))
	}
	stored, err := r2.StoredPacks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(packs) {
		t.Fatalf("%d packs stored, %d indexed", len(stored), len(packs))
	}
	for _, p := range stored {
		data, err := st.Get(ctx, p.Key)
		if err != nil {
			t.Fatal(err)
		}
		if r2.Hashing().Sum(data) != p.ID {
			t.Errorf("pack %s: its bytes hash to another name", p.Key)
		}
	}
	for _, p := range packs {
		data, err := r2.ReadPack(ctx, repo.DataBlob, p.ID)
		if err != nil {
			data, err = r2.ReadPack(ctx, repo.TreeBlob, p.ID)
		}
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(data)) != p.Size {
			t.Errorf("pack %s: %d bytes, indexed as %d", p.ID.Short(), len(data), p.Size)
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, ".stash-tmp")); len(tmp) != 0 {
		t.Errorf("%d temporary files left", len(tmp))
	}
}

// BenchmarkSaveBlob: the cost of storing a blob (compress, seal, pack, upload) on top of
// computing its id, per byte, in memory and spooled to a file:// store.
func BenchmarkSaveBlob(b *testing.B) {
	text := bytes.Repeat([]byte("2026-11-21T20:48:34Z INFO  component=restore path=/data/www/a.txt bytes=12345 id=0f3a\n"), (1<<20)/80)[:1<<20]
	random := make([]byte, 1<<20)
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range random {
		random[i] = byte(rnd.IntN(256))
	}
	for _, kind := range []string{"mem", "file"} {
		for _, data := range []struct {
			name string
			b    []byte
		}{{"text", text}, {"random", random}} {
			b.Run(kind+"/"+data.name, func(b *testing.B) {
				var st *store.Store
				if kind == "mem" {
					st = repotest.NewStore(b)
				} else {
					st, _ = newFileStore(b)
				}
				r := repotest.Init(b, st, repo.InitOptions{})
				blob := bytes.Clone(data.b)
				b.SetBytes(int64(len(blob)))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					copy(blob, fmt.Sprintf("%016d", i)) // a new blob every time
					if _, err := r.SaveBlobWithID(ctx, repo.DataBlob, r.BlobID(blob), blob); err != nil {
						b.Fatal(err)
					}
				}
				if err := r.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
