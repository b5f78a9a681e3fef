package maintenance_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/maintenance"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// TestBackupAfterPruneOnAnOpenHandle: a backup handle opened (index loaded) before a
// prune, backing up after it, must not deduplicate against the packs the prune deleted:
// it stores onlyA's data again, and the snapshot restores.
func TestBackupAfterPruneOnAnOpenHandle(t *testing.T) {
	w := newWorld(t)
	early := repotest.Reopen(t, w.st) // its index still lists onlyA's blobs
	if _, err := prune(t, w.st, maintenance.PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	onlyA := randomBytes(2, onlySize)
	src := writeTree(t, map[string][]byte{"again/onlyA.bin": onlyA})
	sn, err := snapshot.Backup(ctx, early, []string{src}, snapshot.BackupOptions{Host: "a", NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	if sn.Stats.Uploaded < onlySize {
		t.Errorf("uploaded %d bytes: the data the prune deleted was deduplicated against, not stored again", sn.Stats.Uploaded)
	}
	r := repotest.Reopen(t, w.st)
	got, err := r.LoadSnapshot(ctx, sn.ID)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if _, err := snapshot.Restore(ctx, r, got, snapshot.RestoreOptions{Target: target}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(target, src, "again/onlyA.bin"))
	if err != nil || !bytes.Equal(b, onlyA) {
		t.Fatalf("restored onlyA: %d bytes, %v", len(b), err)
	}
}

// pruneOnFirstIndexRead is a Backend whose first read of an index file is preceded by a
// whole prune of the same store: the reader listed index files the prune then replaces.
type pruneOnFirstIndexRead struct {
	*store.Store
	t      *testing.T
	pruned bool
}

func (b *pruneOnFirstIndexRead) Get(ctx context.Context, key string) ([]byte, error) {
	if strings.HasPrefix(key, "index/") && !b.pruned {
		b.pruned = true
		if _, err := prune(b.t, b.Store, maintenance.PruneOptions{}); err != nil {
			b.t.Fatal(err)
		}
	}
	return b.Store.Get(ctx, key)
}

// TestLoadIndexDuringPrune: a host loads the index before taking its lock, so a prune
// can delete the index files it has just listed. Loading lists again (the prune wrote
// its new index first) instead of failing with "object not found", and the handle finds
// every blob of the surviving snapshot.
func TestLoadIndexDuringPrune(t *testing.T) {
	w := newWorld(t)
	before := objects(t, w.st)
	be := &pruneOnFirstIndexRead{Store: w.st, t: t}
	r, err := repo.Open(ctx, be, []byte(repotest.Password), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatalf("LoadIndex while a prune replaced the index: %v", err)
	}
	if !be.pruned {
		t.Fatal("no index file was read: the race was not staged")
	}
	replaced := false
	after := objects(t, w.st)
	for k := range before {
		if _, ok := after[k]; !ok && strings.HasPrefix(k, "index/") {
			replaced = true
		}
	}
	if !replaced {
		t.Fatal("the prune replaced no index file: the race was not staged")
	}
	sn, err := r.LoadSnapshot(ctx, w.snapB.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: t.TempDir()}); err != nil {
		t.Fatalf("restore with the reloaded index: %v", err)
	}
}
