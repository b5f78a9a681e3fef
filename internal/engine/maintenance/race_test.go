package maintenance_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/maintenance"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
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
