package maintenance_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "gocloud.dev/blob/fileblob"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/check"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/maintenance"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// retryLocked runs op until it does not fail with ErrLocked: the lock protocol makes a
// backup and a prune exclude each other, and whoever loses tries again.
func retryLocked(t *testing.T, what string, op func() error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := op()
		if err == nil {
			return
		}
		if !errors.Is(err, repo.ErrLocked) || time.Now().After(deadline) {
			t.Errorf("%s: %v", what, err)
			return
		}
		time.Sleep(time.Duration(1+time.Now().UnixNano()%20) * time.Millisecond)
	}
}

// TestPruneWhileBackingUp: 20 rounds of a backup (its own handle, as another pod) racing a
// forget and prune of the same file repository: after each round a full read of the data
// finds nothing wrong, and at the end every snapshot left restores byte for byte.
func TestPruneWhileBackingUp(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(ctx, "file://"+dir, store.Options{}) // the file backend hosts use
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	repotest.Init(t, st, repo.InitOptions{})
	src := t.TempDir()
	stable := randomBytes(100, 1<<20) // in every snapshot: dedup across prunes
	os.WriteFile(filepath.Join(src, "stable.bin"), stable, 0o644)
	contents := map[string][]byte{} // snapshot id → content of round.bin
	var mu sync.Mutex
	for round := range 20 {
		cur := randomBytes(uint64(1000+round), 300<<10+round)
		if err := os.WriteFile(filepath.Join(src, "round.bin"), cur, 0o644); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			retryLocked(t, fmt.Sprintf("round %d backup", round), func() error {
				r := repotest.Reopen(t, st)
				sn, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h"})
				if err == nil {
					mu.Lock()
					contents[sn.ID.String()] = cur
					mu.Unlock()
				}
				return err
			})
		}()
		go func() {
			defer wg.Done()
			retryLocked(t, fmt.Sprintf("round %d forget", round), func() error {
				_, _, err := repotest.Reopen(t, st).Forget(ctx, repo.Filter{}, repo.RetentionPolicy{Last: 3}, false)
				return err
			})
			retryLocked(t, fmt.Sprintf("round %d prune", round), func() error {
				_, err := maintenance.Prune(ctx, repotest.Reopen(t, st), maintenance.PruneOptions{MaxUnusedPercent: 1})
				return err
			})
		}()
		wg.Wait()
		res, err := check.Run(ctx, repotest.Reopen(t, st), check.Options{ReadData: true})
		if err != nil || !res.OK() {
			t.Fatalf("round %d: check --read-data: %v %+v", round, err, res)
		}
	}
	r := repotest.Reopen(t, st)
	sns, err := r.Snapshots(ctx)
	if err != nil || len(sns) < 1 || len(sns) > 4 {
		t.Fatalf("%d snapshots left (%v), want the 3 kept and at most one newer", len(sns), err)
	}
	for _, sn := range sns {
		target := t.TempDir()
		if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target}); err != nil {
			t.Fatalf("restore %s: %v", sn.ID.Short(), err)
		}
		got, _ := os.ReadFile(filepath.Join(target, src, "round.bin"))
		stab, _ := os.ReadFile(filepath.Join(target, src, "stable.bin"))
		if !bytes.Equal(got, contents[sn.ID.String()]) || !bytes.Equal(stab, stable) {
			t.Errorf("snapshot %s restores other bytes than were backed up", sn.ID.Short())
		}
	}
}
