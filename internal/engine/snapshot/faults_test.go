package snapshot_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/check"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/store/storetest"
	"github.com/kubectl-stash/kubectl-stash/internal/testutil"
)

// faultSource writes the tree a faults run backs up: many small files and a few
// MiB-sized ones; round changes some of each, so every backup uploads new packs.
func faultSource(t *testing.T, src string, round int) {
	t.Helper()
	for i := range 300 {
		if round > 0 && i%29 != round%29 {
			continue
		}
		p := filepath.Join(src, fmt.Sprintf("d%02d", i%12), fmt.Sprintf("f%03d.log", i))
		writeFile(t, p, testutil.LogText(100+i*13, uint64(i+1000*round)), 0o644)
	}
	for i := range 3 {
		if round > 0 && i != round%3 {
			continue
		}
		writeFile(t, filepath.Join(src, fmt.Sprintf("big%d.bin", i)), testutil.RandomBytes(1<<20+i*300_000, uint64(round*10+i)), 0o640)
	}
}

// clearError fails the test unless err names the store and the injected cause.
func clearError(t *testing.T, what string, err error) {
	t.Helper()
	msg := err.Error()
	if !strings.Contains(msg, "mem://faults") || !strings.Contains(msg, "injected") {
		t.Errorf("%s failed with an unclear error (want the store URL and the cause): %v", what, err)
	}
}

// With 5 % of all storage calls failing (transient errors, lost responses, delays,
// truncated reads), each backup and restore through the real engine either succeeds,
// with a bit-identical restore, or fails with an error naming the store and the
// cause. Never does a saved snapshot fail to restore: at the end, with the faults
// off, check --read-data is clean and every snapshot in the repository restores to
// exactly the tree it was taken of.
func TestBackupRestoreWithRandomStoreFaults(t *testing.T) {
	rounds := testutil.Pick(6, 60)
	const rate = 0.05
	faulty := storetest.NewRandom(store.BucketBackend(memblob.OpenBucket(nil)), storetest.RandomOptions{Seed: 11})
	// Short backoffs keep the test fast; the number of tries is the default.
	st := store.NewFromBackend(faulty, "mem://faults", store.Options{BaseBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	t.Cleanup(func() { st.Close() })
	repotest.Init(t, st, repo.InitOptions{})
	faulty.SetRate(rate)

	src := filepath.Join(t.TempDir(), "src")
	want := map[string]map[string]string{} // snapshot tag -> tree
	var backups, backupsFailed, restores, restoresFailed, opensFailed int
	for round := range rounds {
		faultSource(t, src, round)
		tag := fmt.Sprintf("round-%d", round)
		want[tag] = testutil.TreeDigest(t, src)
		r, err := repo.Open(ctx, st, []byte(repotest.Password), repo.Options{})
		if err == nil {
			err = r.LoadIndex(ctx)
		}
		if err != nil {
			opensFailed++
			clearError(t, "opening the repository", err)
			continue
		}
		sn, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h", Tags: []string{tag}})
		if err != nil {
			backupsFailed++
			t.Logf("round %d: backup failed: %v", round, err)
			clearError(t, "backup", err)
			continue
		}
		backups++
		target := t.TempDir()
		_, err = snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Path: src, StripPath: true})
		if err != nil {
			restoresFailed++
			t.Logf("round %d: restore failed: %v", round, err)
			clearError(t, "restore", err)
			continue
		}
		restores++
		if diff := testutil.DiffTrees(want[tag], testutil.TreeDigest(t, target)); diff != "" {
			t.Errorf("round %d: restore with faults succeeded but differs: %s", round, diff)
		}
	}
	t.Logf("%d rounds at %.0f %% faults: %s", rounds, rate*100, faulty)
	t.Logf("opens failed %d; backups ok %d, failed %d; restores ok %d, failed %d",
		opensFailed, backups, backupsFailed, restores, restoresFailed)
	if backups < rounds/2 {
		t.Errorf("only %d of %d backups succeeded: retries do not ride out %.0f %% faults", backups, rounds, rate*100)
	}

	faulty.SetRate(0)
	r := repotest.Reopen(t, st)
	res, err := check.Run(ctx, r, check.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("check --read-data after the faulty runs: %+v", res.Problems)
	}
	sns, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range sns {
		if len(sn.Tags) != 1 || want[sn.Tags[0]] == nil {
			t.Fatalf("snapshot %s has tags %v, none of this test's", sn.ID.Short(), sn.Tags)
		}
		target := t.TempDir()
		if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Path: src, StripPath: true}); err != nil {
			t.Errorf("snapshot %s (%s) does not restore: %v", sn.ID.Short(), sn.Tags[0], err)
			continue
		}
		if diff := testutil.DiffTrees(want[sn.Tags[0]], testutil.TreeDigest(t, target)); diff != "" {
			t.Errorf("snapshot %s (%s) restores differently: %s", sn.ID.Short(), sn.Tags[0], diff)
		}
	}
	if len(sns) < backups {
		t.Errorf("%d snapshots in the repository, %d backups succeeded", len(sns), backups)
	}
	t.Logf("%d snapshots in the repository, all restore bit-identically; check --read-data clean (%d packs)", len(sns), res.PacksRead)
}
