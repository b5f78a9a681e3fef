package repo_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
)

// fakeHolders names this process self and deems the holders in gone ended.
type fakeHolders struct {
	self  string
	mu    sync.Mutex
	gone  map[string]bool
	asked []string
}

func (f *fakeHolders) Self() string { return f.self }
func (f *fakeHolders) Gone(_ context.Context, h string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, h)
	return f.gone[h]
}

// A lock whose holder LockHolders deems gone (a pod killed with SIGKILL) does not block
// a conflicting lock: it is removed. One whose holder may still run does block, and a
// lock without a holder is left to the staleness rule. Shared locks never ask.
func TestLockOfAGoneHolder(t *testing.T) {
	_, st := repotest.New(t, repo.InitOptions{})
	open := func(h *fakeHolders) *repo.Repository {
		t.Helper()
		return repotest.OpenWith(t, st, repo.Options{LockHolders: h})
	}
	killed := &fakeHolders{self: "pod-a"}
	backup, err := open(killed).Lock(ctx, false) // never released: its pod was killed
	if err != nil {
		t.Fatal(err)
	}
	_ = backup
	locks, _ := open(killed).Locks(ctx)
	if len(locks) != 1 || locks[0].Holder != "pod-a" {
		t.Fatalf("locks %+v, want one held by pod-a", locks)
	}

	other := &fakeHolders{self: "pod-b", gone: map[string]bool{}}
	shared, err := open(other).Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	shared.Release(ctx)
	if len(other.asked) != 0 {
		t.Errorf("a shared lock asked about %v: only conflicting locks are worth an API call", other.asked)
	}
	if _, err := open(other).Lock(ctx, true); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("prune over the lock of a holder that may still run: %v, want ErrLocked", err)
	}
	other.gone["pod-a"] = true
	prune, err := open(other).Lock(ctx, true)
	if err != nil {
		t.Fatalf("prune over the lock of a gone holder: %v", err)
	}
	prune.Release(ctx)
	if locks, _ := open(other).Locks(ctx); len(locks) != 0 {
		t.Errorf("locks left: %+v, want the gone holder's removed", locks)
	}

	// without a holder (written by a process that knew no LockHolders) only staleness frees it
	if _, err := repotest.OpenWith(t, st, repo.Options{}).Lock(ctx, false); err != nil {
		t.Fatal(err)
	}
	all := &fakeHolders{self: "pod-c", gone: map[string]bool{"": true}}
	if _, err := open(all).Lock(ctx, true); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("prune over a lock with no holder: %v, want ErrLocked", err)
	}
}
