package repotest

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// Counting is a store.Backend that counts the reads of each kind of object (the first
// element of its key: "index", "tree", "data", "snapshots", "keys", "locks", "config")
// and the bytes they deliver. Tests use it to show what a cache saves. It is safe for
// concurrent use.
type Counting struct {
	store.Backend

	mu    sync.Mutex
	reads map[string]int
	bytes map[string]int64
}

// NewCountingStore returns an empty in-memory store whose reads are counted.
func NewCountingStore(t testing.TB) (*store.Store, *Counting) {
	t.Helper()
	c := &Counting{Backend: store.BucketBackend(memblob.OpenBucket(nil)), reads: map[string]int{}, bytes: map[string]int64{}}
	st := store.NewFromBackend(c, "mem://test", store.Options{})
	t.Cleanup(func() { st.Close() })
	return st, c
}

func kindOf(key string) string {
	kind, _, _ := strings.Cut(key, "/")
	return kind
}

// NewRangeReader implements store.Backend.
func (c *Counting) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	kind := kindOf(key)
	c.mu.Lock()
	c.reads[kind]++
	c.mu.Unlock()
	r, err := c.Backend.NewRangeReader(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	return &countingReader{ReadCloser: r, c: c, kind: kind}, nil
}

type countingReader struct {
	io.ReadCloser
	c    *Counting
	kind string
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.c.mu.Lock()
	r.c.bytes[r.kind] += int64(n)
	r.c.mu.Unlock()
	return n, err
}

// Reads returns how many reads of objects of kind were made since the last Reset.
func (c *Counting) Reads(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads[kind]
}

// Bytes returns how many bytes reads of objects of kind delivered since the last Reset.
func (c *Counting) Bytes(kind string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes[kind]
}

// Reset sets every count to zero.
func (c *Counting) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.reads)
	clear(c.bytes)
}

// OpenWith opens the repository in st with opts and loads its index, as a new process
// would.
func OpenWith(t testing.TB, st repo.Backend, opts repo.Options) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), st, []byte(Password), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}
