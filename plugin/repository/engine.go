package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// This file opens a repository from the user's machine, with the Secret's credentials, as
// a job does in the cluster. The storage drivers must be linked into the program
// (cmd/kubectl-stash/drivers.go).

// ErrInCluster is wrapped by the errors of the methods below for a pvc:// repository: its
// data is on a volume only pods can mount.
var ErrInCluster = errors.New("the repository is on a PersistentVolumeClaim, which only pods in the cluster can mount")

func (r *Repository) local() error {
	if r.Claim != "" {
		return fmt.Errorf("repository %q (%s): %w", r.Name, r.URL, ErrInCluster)
	}
	return nil
}

// ApplyEnv sets the Secret's backend credentials as environment variables of this process,
// where the storage drivers read them when a bucket is opened, and returns a function that
// puts the previous environment back. A GOOGLE_APPLICATION_CREDENTIALS holding the key
// itself (JSON) rather than a path is written to a private temporary file, which restore
// removes. The environment is the process's: do not use two repositories at once.
func (r *Repository) ApplyEnv() (restore func(), err error) {
	type saved struct {
		val string
		set bool
	}
	prev := map[string]saved{}
	inlineCleanup := func() {}
	restore = func() {
		inlineCleanup()
		for k, s := range prev {
			if s.set {
				os.Setenv(k, s.val)
			} else {
				os.Unsetenv(k)
			}
		}
	}
	for _, k := range r.CredentialKeys() {
		old, set := os.LookupEnv(k)
		prev[k] = saved{old, set}
		if err := os.Setenv(k, r.Env[k]); err != nil {
			restore()
			return nil, fmt.Errorf("set %s from repository %q: %w", k, r.Name, err)
		}
	}
	if inlineCleanup, err = store.InlineGCPCredentials(); err != nil {
		inlineCleanup = func() {}
		restore()
		return nil, fmt.Errorf("repository %q: %w", r.Name, err)
	}
	return restore, nil
}

// OpenStore opens the repository's bucket with the Secret's credentials. close releases
// the bucket and restores the environment.
func (r *Repository) OpenStore(ctx context.Context) (st *store.Store, close func(), err error) {
	if err := r.local(); err != nil {
		return nil, nil, err
	}
	restore, err := r.ApplyEnv()
	if err != nil {
		return nil, nil, err
	}
	st, err = store.Open(ctx, r.URL, store.Options{})
	if err != nil {
		restore()
		return nil, nil, err
	}
	return st, func() { st.Close(); restore() }, nil
}

// Open opens the repository (its index is not loaded: listing snapshots does not need it).
func (r *Repository) Open(ctx context.Context) (*repo.Repository, func(), error) {
	st, closeFn, err := r.OpenStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	rp, err := repo.Open(ctx, st, []byte(r.Password), repo.Options{})
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	return rp, closeFn, nil
}

// InitResult says what Init did.
type InitResult struct {
	// Created is false when a repository was there already (and the password opens it).
	Created bool
	// URL is the repository's display URL.
	URL string
	// ID is the repository's id.
	ID string
}

// Init creates the repository. If one exists already it is left as it is, provided the
// Secret's password opens it: a Secret whose password does not is an error.
func (r *Repository) Init(ctx context.Context, opts repo.InitOptions) (InitResult, error) {
	st, closeFn, err := r.OpenStore(ctx)
	if err != nil {
		return InitResult{}, err
	}
	defer closeFn()
	if err := st.Check(ctx); err != nil {
		return InitResult{}, err
	}
	rp, err := repo.Init(ctx, st, []byte(r.Password), opts, repo.Options{})
	if errors.Is(err, repo.ErrExists) {
		rp, err = repo.Open(ctx, st, []byte(r.Password), repo.Options{})
		if errors.Is(err, repo.ErrWrongPassword) {
			return InitResult{}, fmt.Errorf("%s already holds a repository and this password does not open it: give its password (--password-file), or choose another URL", st.URL())
		}
		if err != nil {
			return InitResult{}, err
		}
		return InitResult{Created: false, URL: st.URL(), ID: rp.Config().ID}, nil
	}
	if err != nil {
		return InitResult{}, err
	}
	return InitResult{Created: true, URL: st.URL(), ID: rp.Config().ID}, nil
}

// repositoryPrefixes are the key prefixes of the repository layout
// (docs/repository-format.md), plus the temporary files of file:// stores.
var repositoryPrefixes = []string{"data/", "tree/", "index/", "snapshots/", "locks/", "keys/", ".stash-tmp/"}

// WipeResult says what Wipe did.
type WipeResult struct {
	// Deleted counts the objects deleted.
	Deleted int
	// Kept counts objects under the URL that are not part of the repository, left in place.
	Kept int
}

// Wipe deletes the repository's objects: it opens the repository (so the Secret's password
// must open it), takes an exclusive lock (so no backup is running), deletes snapshots,
// indexes and packs, then the locks, the key files, and the config last, so that an
// interrupted wipe leaves something Wipe can open and finish. Objects under the URL that
// are not part of the repository layout are kept and counted. With no repository at the
// URL it returns an error wrapping repo.ErrNoRepository and deletes nothing.
func (r *Repository) Wipe(ctx context.Context) (WipeResult, error) {
	st, closeFn, err := r.OpenStore(ctx)
	if err != nil {
		return WipeResult{}, err
	}
	defer closeFn()
	rp, err := repo.Open(ctx, st, []byte(r.Password), repo.Options{})
	if err != nil {
		return WipeResult{}, err
	}
	lock, err := rp.Lock(ctx, true)
	if err != nil {
		return WipeResult{}, err
	}
	released := false
	release := func() {
		if !released {
			released = true
			_ = lock.Release(context.WithoutCancel(ctx))
		}
	}
	defer release()

	var res WipeResult
	var data, locks, keys []string
	hasConfig := false
	err = st.List(ctx, "", func(o store.Object) error {
		switch {
		case o.Key == "config":
			hasConfig = true
		case strings.HasPrefix(o.Key, "keys/"):
			keys = append(keys, o.Key)
		case strings.HasPrefix(o.Key, "locks/"):
			locks = append(locks, o.Key)
		case hasAnyPrefix(o.Key, repositoryPrefixes):
			data = append(data, o.Key)
		default:
			res.Kept++
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	var deleted atomic.Int64
	del := func(keys []string) error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(16)
		for _, k := range keys {
			g.Go(func() error {
				err := st.Delete(gctx, k)
				if errors.Is(err, store.ErrNotFound) {
					return nil // gone meanwhile: a lock refreshed or released
				}
				if err == nil {
					deleted.Add(1)
				}
				return err
			})
		}
		return g.Wait()
	}
	err = del(data)
	if err == nil {
		release() // our lock goes with the others; stale ones too
		err = del(locks)
	}
	if err == nil {
		err = del(keys)
	}
	if err == nil && hasConfig {
		err = del([]string{"config"})
	}
	res.Deleted = int(deleted.Load())
	return res, err
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
