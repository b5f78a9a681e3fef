// Package repotest builds repositories for tests: in memory, with cheap key derivation and
// a fixed chunker seed so chunk boundaries are the same in every run.
package repotest

import (
	"context"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// Password is the password of every test repository.
const Password = "test password"

// CheapKDF keeps tests fast; real repositories use crypto.DefaultKDF.
var CheapKDF = crypto.KDFParams{N: 1 << 10, R: 8, P: 1}

// NewStore returns an empty in-memory store.
func NewStore(t testing.TB) *store.Store {
	t.Helper()
	st := store.NewFromBucket(memblob.OpenBucket(nil), "mem://test", store.Options{})
	t.Cleanup(func() { st.Close() })
	return st
}

// New returns a new repository in memory, and its store.
func New(t testing.TB, opts repo.InitOptions) (*repo.Repository, *store.Store) {
	t.Helper()
	st := NewStore(t)
	return Init(t, st, opts), st
}

// Init creates a repository in st.
func Init(t testing.TB, st repo.Backend, opts repo.InitOptions) *repo.Repository {
	t.Helper()
	if opts.KDF == (crypto.KDFParams{}) {
		opts.KDF = CheapKDF
	}
	if opts.ChunkerSeed == ([32]byte{}) {
		opts.ChunkerSeed = [32]byte{1, 2, 3}
	}
	r, err := repo.Init(context.Background(), st, []byte(Password), opts, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Reopen opens the repository in st again, with its index, as a new process would.
func Reopen(t testing.TB, st repo.Backend) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), st, []byte(Password), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}
