package repo_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
)

func opens(t *testing.T, st repo.Backend, pw string) bool {
	t.Helper()
	_, err := repo.Open(ctx, st, []byte(pw), repo.Options{})
	if err != nil && !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatal(err)
	}
	return err == nil
}

func TestKeysAddRemoveChange(t *testing.T) {
	r, st := repotest.New(t, repo.InitOptions{})
	old := []byte(repotest.Password)
	keys, err := r.Keys(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !keys[0].Current || keys[0].Created.IsZero() {
		t.Fatalf("keys of a new repository: %+v", keys)
	}
	first := keys[0].ID

	// the only key, and the one in use, cannot go
	if err := r.RemoveKey(ctx, first, ""); !errors.Is(err, repo.ErrLastKey) {
		t.Errorf("removing the last key: %v, want ErrLastKey", err)
	}

	second, err := r.AddPassword(ctx, []byte("second"), repotest.CheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	if !opens(t, st, repotest.Password) || !opens(t, st, "second") {
		t.Fatal("after key add, both passwords should open the repository")
	}
	keys, err = r.Keys(ctx, []byte("second"))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys: %+v", keys)
	}
	for _, k := range keys {
		if k.Current != (k.ID == second) {
			t.Errorf("key %s current=%v, want the second key current only", k.ID, k.Current)
		}
	}

	for _, tc := range []struct {
		name    string
		id, cur string
		want    error
	}{
		{"in use", first, first, repo.ErrCurrentKey},
		{"unknown", "0123", first, repo.ErrKeyNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := r.RemoveKey(ctx, tc.id, tc.cur); !errors.Is(err, tc.want) {
				t.Errorf("RemoveKey: %v, want %v", err, tc.want)
			}
		})
	}
	if err := r.RemoveKey(ctx, second, first); err != nil {
		t.Fatal(err)
	}
	if opens(t, st, "second") || !opens(t, st, repotest.Password) {
		t.Fatal("after removing the second key, only the first password should open")
	}

	newID, err := r.ChangePassword(ctx, old, []byte("changed"))
	if err != nil {
		t.Fatal(err)
	}
	if opens(t, st, repotest.Password) || !opens(t, st, "changed") {
		t.Fatal("after passwd, the old password should no longer open and the new one should")
	}
	keys, _ = r.Keys(ctx, []byte("changed"))
	if len(keys) != 1 || keys[0].ID != newID || !keys[0].Current || keys[0].KDF != repotest.CheapKDF {
		t.Errorf("keys after passwd: %+v", keys)
	}
	if _, err := r.ChangePassword(ctx, old, []byte("again")); !errors.Is(err, repo.ErrNoCurrentKey) {
		t.Errorf("passwd with a password no key opens: %v", err)
	}
}

// putLock writes a lock object as a process refreshing it last at refreshed would have.
func putLock(t *testing.T, r *repo.Repository, name string, refreshed time.Time) {
	t.Helper()
	plain, _ := json.Marshal(repo.LockInfo{Host: "gone", PID: 7, Time: refreshed, Refreshed: refreshed})
	if err := r.Backend().PutIfAbsent(ctx, "locks/"+name, r.Key().Seal(nil, plain, []byte("lock"))); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveLocks(t *testing.T) {
	for _, tc := range []struct {
		name        string
		force       bool
		wantRemoved int
		wantLeft    int
	}{
		{"stale only", false, 1, 1},
		{"force", true, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := repotest.New(t, repo.InitOptions{})
			fresh, err := r.Lock(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Release(ctx)
			now := time.Now()
			putLock(t, r, "0000000000000000000000000000000000000000000000000000000000000001", now.Add(-repo.LockStale-time.Minute))
			removed, err := r.RemoveLocks(ctx, now, tc.force)
			if err != nil {
				t.Fatal(err)
			}
			left, _ := r.Locks(ctx)
			if len(removed) != tc.wantRemoved || len(left) != tc.wantLeft {
				t.Fatalf("removed %+v, left %+v", removed, left)
			}
			if !tc.force && (removed[0].Host != "gone" || left[0].Stale(now)) {
				t.Errorf("removed %+v, left %+v: want the stale lock gone and the fresh one kept", removed, left)
			}
		})
	}
}
