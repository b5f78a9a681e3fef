//go:build crashpoints

package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/check"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/chunker"
	cp "github.com/kubectl-stash/kubectl-stash/internal/engine/crashpoint"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/testutil"
)

// crashKill is one kill: the operation run in a child stash-job, and the hit of the
// crash point it dies at.
type crashKill struct {
	op    string // backup, forget or prune
	point string
	n     int
}

func (k crashKill) String() string { return fmt.Sprintf("%s at %s#%d", k.op, k.point, k.n) }

// crashKills are the kills of `make test`: every crash point at least once, over the
// phases of backup, forget (retention) and prune, and the lock of each. A point that the
// operation never reaches fails the test (the child exits instead of dying), so the list
// stays true to the code.
var crashKills = []crashKill{
	{"backup", cp.LockWritten, 1},
	{"backup", cp.BackupChunk, 1},
	{"backup", cp.BackupChunk, 12},
	{"backup", cp.BackupPackPartial, 1},
	{"backup", cp.BackupPackPartial, 20},
	{"backup", cp.BackupPackStored, 1},
	{"backup", cp.BackupPackStored, 3},
	{"backup", cp.BackupPacksFlushed, 1},
	{"backup", cp.BackupIndexWritten, 1},
	{"backup", cp.BackupSnapshotSaved, 1},
	{"forget", cp.LockWritten, 1},
	{"forget", cp.ForgetSnapshotRemoved, 1},
	{"forget", cp.ForgetSnapshotRemoved, 2},
	{"prune", cp.LockWritten, 1},
	{"prune", cp.PrunePlanned, 1},
	{"prune", cp.PrunePackRepacked, 1},
	{"prune", cp.PrunePackRepacked, 2},
	{"prune", cp.PruneIndexWritten, 1},
	{"prune", cp.PruneIndexDeleted, 1},
	{"prune", cp.PruneIndexDeleted, 2},
	{"prune", cp.PrunePackDeleted, 1},
	{"prune", cp.PrunePackDeleted, 3},
	{"prune", cp.PruneDone, 1},
}

// crashKillsSoak are added in `make soak`: later hits of the points that recur, then
// the whole list again on the data as it has changed by then, for 50 kills.
var crashKillsSoak = []crashKill{
	{"backup", cp.BackupChunk, 5},
	{"backup", cp.BackupChunk, 20},
	{"backup", cp.BackupPackPartial, 8},
	{"backup", cp.BackupPackPartial, 25},
	{"backup", cp.BackupPackStored, 2},
	{"forget", cp.ForgetSnapshotRemoved, 3},
	{"prune", cp.PrunePackDeleted, 2},
}

// TestCrashConsistency kills stash-job with SIGKILL at each crash point of backup,
// forget and prune, in a file:// repository with earlier snapshots, and after each kill
// requires, with no manual step (no unlock): the repository checks clean with every pack
// read (packs the killed run stored but never indexed are allowed: prune removes them);
// every snapshot restores bit-identically (bytes, modes, link targets) to the source as
// it was when the snapshot was taken, and every snapshot the killed operation was not
// meant to remove is still there; the next backup, forget and prune succeed, the lock of
// the dead process notwithstanding.
func TestCrashConsistency(t *testing.T) {
	kills := crashKills
	if testutil.Soak() {
		kills = append(append(append([]crashKill(nil), crashKills...), crashKillsSoak...), crashKills...)
		kills = kills[:50]
	}
	ctx := context.Background()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(repotest.Password), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "file://" + filepath.Join(dir, "repo")
	st, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Small packs and chunks: a few MiB of changes make many packs and chunks, so each
	// kill lands among many objects rather than before the first.
	if _, err := repo.Init(ctx, st, []byte(repotest.Password), repo.InitOptions{KDF: repotest.CheapKDF, PackSize: 256 << 10,
		Chunker: chunker.Params{MinSize: 16 << 10, AvgSize: 64 << 10, MaxSize: 256 << 10}}, repo.Options{}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	h := &crashHarness{t: t, url: url, pw: pw, dir: dir, src: filepath.Join(dir, "src"), want: map[string]map[string]string{}}
	if err := os.MkdirAll(h.src, 0o755); err != nil {
		t.Fatal(err)
	}
	h.tree = newCrashTree(t, h.src, 11)
	for range 3 { // earlier snapshots
		h.backup()
		h.tree.change(t)
	}

	start := time.Now()
	failures := 0
	for i, k := range kills {
		before := h.failed
		h.kill(i, k)
		if h.failed != before {
			failures++
		}
	}
	h.verify("the end")
	fmt.Printf("crash points tried: %d, failures: %d (%d distinct points, %s)\n", len(kills), failures, distinctPoints(kills), time.Since(start).Round(time.Second))
	fmt.Printf("left by the killed runs: %d locks (each cleared by the next run, no unlock), %d unreferenced packs (removed by the next prune), %d temporary files (removed by the next prune once stale)\n",
		h.locksLeft, h.unreferenced, h.tempLeft)
	if failures > 0 {
		t.Fatalf("%d of %d kills failed (a point not reached, or a repository not usable after the kill)", failures, len(kills))
	}
}

func distinctPoints(kills []crashKill) int {
	seen := map[string]bool{}
	for _, k := range kills {
		seen[k.point] = true
	}
	return len(seen)
}

type crashHarness struct {
	t                 *testing.T
	url, pw, dir, src string
	tree              *crashTree
	// want maps a snapshot's tag to the manifest of the source when it was taken.
	want   map[string]map[string]string
	tags   int
	failed int
	// what the kills left behind, for the summary
	locksLeft, unreferenced, tempLeft int
}

const crashHost = "crash-host"

func (h *crashHarness) cmd(name string, args ...string) []string {
	return append([]string{name, "--repo", h.url, "--password-file", h.pw, "--no-cache"}, args...)
}

func (h *crashHarness) fail(format string, a ...any) {
	h.t.Helper()
	h.failed++
	h.t.Errorf(format, a...)
}

// nextTag records the source's manifest under a new tag for the backup about to run.
func (h *crashHarness) nextTag() string {
	h.t.Helper()
	m, err := testutil.TreeManifest(h.src)
	if err != nil {
		h.t.Fatal(err)
	}
	h.tags++
	tag := fmt.Sprintf("t%03d", h.tags)
	h.want[tag] = m
	return tag
}

// backup runs a backup in this process, as the next scheduled one would run.
func (h *crashHarness) backup() {
	h.t.Helper()
	tag := h.nextTag()
	if out, err := stashJob(h.t, h.cmd("backup", "--host", crashHost, "--tag", tag, h.src)...); err != nil {
		h.fail("backup %s: %v\n%s", tag, err, out)
	}
}

func (h *crashHarness) run(args ...string) {
	h.t.Helper()
	if out, err := stashJob(h.t, h.cmd(args[0], args[1:]...)...); err != nil {
		h.fail("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// snapshots lists the repository's snapshots, newest first.
func (h *crashHarness) snapshots(ctx context.Context, r *repo.Repository) []*repo.Snapshot {
	sns, err := r.Snapshots(ctx)
	if err != nil {
		h.t.Fatalf("list snapshots: %v", err)
	}
	sort.Slice(sns, func(i, j int) bool { return sns[i].Time.After(sns[j].Time) })
	return sns
}

func (h *crashHarness) open(ctx context.Context) (*repo.Repository, func()) {
	h.t.Helper()
	st, err := store.Open(ctx, h.url, store.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	r, err := repo.Open(ctx, st, []byte(repotest.Password), repo.Options{})
	if err == nil {
		err = r.LoadIndex(ctx)
	}
	if err != nil {
		st.Close()
		h.t.Fatalf("open the repository: %v", err)
	}
	return r, func() { st.Close() }
}

func (h *crashHarness) kill(i int, k crashKill) {
	t := h.t
	ctx := context.Background()
	var args []string
	var mustKeep []string // tags of snapshots the killed operation does not remove
	switch k.op {
	case "backup":
		h.tree.change(t)
		args = h.cmd("backup", "--host", crashHost, "--tag", h.nextTag(), h.src)
	case "forget":
		// at least five snapshots, of which forget keeps the newest two
		r, closeFn := h.open(ctx)
		n := len(h.snapshots(ctx, r))
		closeFn()
		for ; n < 5; n++ {
			h.tree.change(t)
			h.backup()
		}
		args = h.cmd("forget", "--host", crashHost, "--keep-last", "2")
	case "prune":
		// garbage to collect: a new snapshot, and the older ones (whose files it
		// changed) forgotten, so packs are wholly or partly unused
		h.tree.change(t)
		h.backup()
		h.run("forget", "--host", crashHost, "--keep-last", "1")
		args = h.cmd("prune", "--max-unused-percent", "1")
	}
	{
		r, closeFn := h.open(ctx)
		sns := h.snapshots(ctx, r)
		closeFn()
		keep := len(sns)
		if k.op == "forget" {
			keep = 2
		}
		for _, sn := range sns[:keep] {
			mustKeep = append(mustKeep, sn.Tags[0])
		}
	}

	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), "STASH_JOB_AS_MAIN="+strings.Join(args, "\x1f"), cp.EnvVar+"="+fmt.Sprintf("%s#%d", k.point, k.n))
	out, err := child.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		h.fail("kill %d (%s): the child was not killed at the point (never reached?): %v\n%s", i, k, err, out)
		return
	}

	repoDir := strings.TrimPrefix(h.url, "file://")
	h.locksLeft += countFiles(filepath.Join(repoDir, "locks"))
	h.tempLeft += countFiles(filepath.Join(repoDir, ".stash-tmp"))
	h.unreferenced += h.verify(fmt.Sprintf("kill %d (%s)", i, k), mustKeep...)

	// The killed run's temporary files, dated as if the next prune ran as long after
	// the kill as a lock takes to go stale: that prune removes them.
	tmpDir := filepath.Join(repoDir, ".stash-tmp")
	entries, _ := os.ReadDir(tmpDir)
	for _, e := range entries {
		old := time.Now().Add(-repo.LockStale - time.Minute)
		os.Chtimes(filepath.Join(tmpDir, e.Name()), old, old)
	}

	// the next operations, as a schedule would run them: no unlock, no repair
	begin := time.Now()
	h.tree.change(t)
	h.backup()
	h.run("forget", "--host", crashHost, "--keep-last", "3")
	h.run("prune")
	if d := time.Since(begin); d > 30*time.Second {
		h.fail("kill %d (%s): the next backup, forget and prune took %s: waiting out the dead process's lock?", i, k, d)
	}
	if n := countFiles(filepath.Join(repoDir, "locks")); n != 0 {
		h.fail("kill %d (%s): %d locks left after the next operations", i, k, n)
	}
	if n := countFiles(tmpDir); n != 0 {
		h.fail("kill %d (%s): %d temporary files of the killed run left after the next prune", i, k, n)
	}
}

// countFiles counts the regular files below dir (0 if it does not exist).
func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// verify checks the whole repository with every pack read, and restores every snapshot,
// comparing it with the source as it was when the snapshot was taken. mustKeep are the
// tags of snapshots that have to be there. It returns how many unreferenced packs check
// found.
func (h *crashHarness) verify(when string, mustKeep ...string) int {
	t := h.t
	ctx := context.Background()
	r, closeFn := h.open(ctx)
	defer closeFn()
	res, err := check.Run(ctx, r, check.Options{ReadData: true})
	if err != nil {
		h.fail("%s: check: %v", when, err)
		return 0
	}
	if !res.OK() {
		h.fail("%s: check found %d problems, the first: %+v", when, len(res.Problems), res.Problems[0])
	}
	sns := h.snapshots(ctx, r)
	present := map[string]bool{}
	for _, sn := range sns {
		if len(sn.Tags) != 1 || h.want[sn.Tags[0]] == nil {
			h.fail("%s: snapshot %s has tags %v: not one this test took", when, sn.ID.Short(), sn.Tags)
			continue
		}
		tag := sn.Tags[0]
		present[tag] = true
		target := filepath.Join(t.TempDir(), "restore")
		if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target}); err != nil {
			h.fail("%s: restore snapshot %s (%s): %v", when, sn.ID.Short(), tag, err)
			continue
		}
		got, err := testutil.TreeManifest(filepath.Join(target, h.src))
		if err != nil {
			h.fail("%s: restored snapshot %s (%s): %v", when, sn.ID.Short(), tag, err)
			continue
		}
		if d := testutil.DiffTrees(h.want[tag], got); d != "" {
			h.fail("%s: snapshot %s (%s) does not restore what was backed up: %s", when, sn.ID.Short(), tag, d)
		}
		os.RemoveAll(target)
	}
	for _, tag := range mustKeep {
		if !present[tag] {
			h.fail("%s: snapshot %s, which the killed operation was not to remove, is gone", when, tag)
		}
	}
	return len(res.Unreferenced)
}
