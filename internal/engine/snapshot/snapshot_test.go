package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
)

var ctx = context.Background()

func writeFile(t *testing.T, p string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// fixture builds a tree with every kind of metadata the engine records.
func fixture(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "small.txt"), []byte("hello\n"), 0o644)
	writeFile(t, filepath.Join(src, "empty"), nil, 0o600)
	writeFile(t, filepath.Join(src, "big.bin"), randomBytes(1, 5<<20+123), 0o640)
	writeFile(t, filepath.Join(src, "text.log"), bytes.Repeat([]byte("2026-01-01 INFO request served in 12ms\n"), 100000), 0o644)
	writeFile(t, filepath.Join(src, "setuid"), []byte("#!/bin/sh\n"), 0o4755|os.ModeSetuid)
	os.Chmod(filepath.Join(src, "setuid"), 0o755|os.ModeSetuid)
	writeFile(t, filepath.Join(src, "dir", "sub", "deep.txt"), []byte("deep"), 0o644)
	os.MkdirAll(filepath.Join(src, "emptydir"), 0o750)
	os.MkdirAll(filepath.Join(src, "sticky"), 0o777)
	os.Chmod(filepath.Join(src, "sticky"), 0o777|os.ModeSticky)
	writeFile(t, filepath.Join(src, "ünïcødé ✓.txt"), []byte("unicode"), 0o644)
	long := strings.Repeat("L", 255)
	writeFile(t, filepath.Join(src, long), []byte("long name"), 0o644)
	os.Symlink("small.txt", filepath.Join(src, "link"))
	os.Symlink("/nonexistent/target", filepath.Join(src, "dangling"))
	os.Link(filepath.Join(src, "small.txt"), filepath.Join(src, "hardlink"))
	// sparse: 8 MiB with data only at the start and the end
	sp, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	sp.Write([]byte("start"))
	sp.WriteAt([]byte("end"), 8<<20)
	sp.Close()
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := unix.Mknod(filepath.Join(src, "chardev"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		os.Lchown(filepath.Join(src, "small.txt"), 1234, 5678)
		os.Lchown(filepath.Join(src, "link"), 4321, 8765)
	}
	// fixed times, directories last
	when := time.Date(2020, 2, 3, 4, 5, 6, 789000000, time.UTC)
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{unix.NsecToTimespec(when.UnixNano()), unix.NsecToTimespec(when.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW)
		return nil
	})
	unix.UtimesNanoAt(unix.AT_FDCWD, src, []unix.Timespec{unix.NsecToTimespec(when.UnixNano()), unix.NsecToTimespec(when.UnixNano())}, 0)
	for _, d := range []string{"dir/sub", "dir", "emptydir", "sticky"} {
		os.Chtimes(filepath.Join(src, d), when, when)
	}
	return src
}

type entry struct {
	mode      fs.FileMode
	uid, gid  uint32
	size      int64
	mtime     int64
	target    string
	rdev      uint64
	nlink     uint64
	content   string // sha of content
	blocks    int64
	linkGroup string
}

// describe captures what a round trip must preserve, keyed by path relative to root.
func describe(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, mtime: fi.ModTime().UnixNano(), nlink: uint64(st.Nlink), blocks: st.Blocks}
		switch {
		case fi.Mode().IsRegular():
			e.size = fi.Size()
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.content = fmt.Sprintf("%x", sha256.Sum256(b))
			if st.Nlink > 1 {
				if first, ok := inodes[st.Ino]; ok {
					e.linkGroup = first
				} else {
					inodes[st.Ino] = rel
					e.linkGroup = rel
				}
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			e.target, _ = os.Readlink(p)
		case fi.Mode()&fs.ModeDevice != 0:
			e.rdev = uint64(st.Rdev)
		}
		if fi.IsDir() {
			e.nlink = 0 // depends on subdirectory count only
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTrees(t *testing.T, want, got map[string]entry) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w, g := want[k], got[k]
		if _, ok := got[k]; !ok {
			t.Errorf("%s: missing after restore", k)
			continue
		}
		wb, gb := w.blocks, g.blocks
		w.blocks, g.blocks = 0, 0
		if w != g {
			t.Errorf("%s: restored as %+v, want %+v", k, g, w)
		}
		if k == "sparse" && gb > wb+16 {
			t.Errorf("sparse file restored with %d blocks, the original has %d: holes not kept", gb, wb)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: restored but not in the source", k)
		}
	}
}

func TestRoundTripEveryMetadataKind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Log("not root: owners and device nodes are not covered")
	}
	src := fixture(t)
	// a socket: skipped, counted
	l, err := (&netListenConfig{}).listen(filepath.Join(src, "sock"))
	if err == nil {
		defer l.Close()
	}
	want := describe(t, src)
	delete(want, "sock")

	r, st := repotest.New(t, repo.InitOptions{PackSize: 1 << 20})
	sn, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	if sn.Stats.Skipped != 1 {
		t.Errorf("skipped = %d, want 1 (the socket)", sn.Stats.Skipped)
	}
	wantFiles := int64(0)
	for _, e := range want {
		if e.mode.IsRegular() {
			wantFiles++
		}
	}
	if sn.Stats.TotalFiles != wantFiles || sn.Stats.NewFiles != wantFiles || sn.Stats.Uploaded == 0 || sn.Stats.Size < 5<<20 {
		t.Errorf("stats = %+v, want %d new files", sn.Stats, wantFiles)
	}

	target := t.TempDir()
	r2 := repotest.Reopen(t, st)
	if _, err := snapshot.Restore(ctx, r2, sn, snapshot.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, want, describe(t, filepath.Join(target, src)))
}

func TestParentSnapshotSkipsUnchangedFiles(t *testing.T) {
	src := t.TempDir()
	for i := 0; i < 20; i++ {
		writeFile(t, filepath.Join(src, fmt.Sprintf("f%02d", i)), randomBytes(uint64(i), 10000), 0o644)
	}
	r, st := repotest.New(t, repo.InitOptions{})
	dataPacks := func() (n int) {
		st.List(ctx, "data/", func(storeObject) error { n++; return nil })
		return n
	}
	first, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	packs := dataPacks()
	second, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	// Directory access times may change between runs (trees are small); file content must
	// not be read or stored again.
	if second.Stats.UnmodifiedFiles != 20 || second.Stats.NewFiles != 0 || dataPacks() != packs ||
		second.Stats.Uploaded > 16<<10 || second.Parent == nil || *second.Parent != first.ID {
		t.Fatalf("unchanged re-backup: stats %+v, data packs %d -> %d, parent %v", second.Stats, packs, dataPacks(), second.Parent)
	}
	writeFile(t, filepath.Join(src, "f03"), []byte("changed"), 0o644)
	writeFile(t, filepath.Join(src, "new"), []byte("new"), 0o644)
	third, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if third.Stats.ModifiedFiles != 1 || third.Stats.NewFiles != 1 || third.Stats.UnmodifiedFiles != 19 {
		t.Fatalf("after one change and one new file: %+v", third.Stats)
	}
}

// TestUnreadableFileFailsBackup runs a backup as an unprivileged user (a child process of
// this test binary) over a tree holding a file that user cannot read.
func TestUnreadableFileFailsBackup(t *testing.T) {
	if os.Getenv("STASH_TEST_UNREADABLE_CHILD") != "" {
		unreadableChild(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the child as another user")
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir's parent is private
	os.Chmod(dir, 0o777)
	src := filepath.Join(dir, "src")
	writeFile(t, filepath.Join(src, "ok.txt"), []byte("fine"), 0o644)
	writeFile(t, filepath.Join(src, "secret.txt"), []byte("nope"), 0o600)
	os.Chmod(src, 0o755)
	// The test binary's own directory is private to root: run a copy the user can reach.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "snapshot.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tolerate := range []string{"", "1"} {
		cmd := exec.Command(bin, "-test.run=^TestUnreadableFileFailsBackup$", "-test.v")
		cmd.Env = append(os.Environ(), "STASH_TEST_UNREADABLE_CHILD="+src, "STASH_TEST_TOLERATE="+tolerate, "HOME="+dir, "GOCOVERDIR="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child (tolerate=%q): %v\n%s", tolerate, err, out)
		}
		if !strings.Contains(string(out), "CHILD OK") {
			t.Fatalf("child (tolerate=%q) did not finish:\n%s", tolerate, out)
		}
	}
}

func unreadableChild(t *testing.T) {
	src := os.Getenv("STASH_TEST_UNREADABLE_CHILD")
	tolerate := os.Getenv("STASH_TEST_TOLERATE") == "1"
	r, _ := repotest.New(t, repo.InitOptions{})
	sn, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h", TolerateReadErrors: tolerate})
	if !tolerate {
		var re *snapshot.ReadError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), filepath.Join(src, "secret.txt")) {
			t.Fatalf("backup with an unreadable file: %v, want a ReadError naming it", err)
		}
		if snaps, _ := r.Snapshots(ctx); len(snaps) != 0 {
			t.Fatalf("a failed backup saved %d snapshots", len(snaps))
		}
	} else {
		if err != nil {
			t.Fatalf("tolerated backup failed: %v", err)
		}
		if sn.Stats.Errors != 1 || sn.Stats.TotalFiles != 2 {
			t.Fatalf("tolerated backup stats %+v, want 1 error", sn.Stats)
		}
	}
	fmt.Println("CHILD OK")
}

func TestRestoreModes(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), []byte("snapshot a"), 0o644)
	writeFile(t, filepath.Join(src, "b.txt"), []byte("snapshot b"), 0o644)
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "a.txt"), old, old)
	r, _ := repotest.New(t, repo.InitOptions{})
	sn, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	prepare := func(t *testing.T) string {
		target := t.TempDir()
		dst := filepath.Join(target, src)
		writeFile(t, filepath.Join(dst, "a.txt"), []byte("local a, newer"), 0o644) // newer than the snapshot's
		writeFile(t, filepath.Join(dst, "extra.txt"), []byte("not in snapshot"), 0o644)
		return target
	}
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	tests := []struct {
		mode      snapshot.Overwrite
		del       bool
		wantA     string
		wantExtra bool
	}{
		{snapshot.OverwriteNever, false, "local a, newer", true},
		{snapshot.OverwriteIfNewer, false, "local a, newer", true},
		{snapshot.OverwriteAlways, false, "snapshot a", true},
		{snapshot.OverwriteAlways, true, "snapshot a", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s delete=%v", tt.mode, tt.del), func(t *testing.T) {
			target := prepare(t)
			dst := filepath.Join(target, src)
			if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Overwrite: tt.mode, Delete: tt.del}); err != nil {
				t.Fatal(err)
			}
			if got := read(filepath.Join(dst, "a.txt")); got != tt.wantA {
				t.Errorf("a.txt = %q, want %q", got, tt.wantA)
			}
			if got := read(filepath.Join(dst, "b.txt")); got != "snapshot b" {
				t.Errorf("b.txt = %q", got)
			}
			if _, err := os.Stat(filepath.Join(dst, "extra.txt")); (err == nil) != tt.wantExtra {
				t.Errorf("extra.txt exists = %v, want %v", err == nil, tt.wantExtra)
			}
		})
	}
	t.Run("dry run changes nothing and lists actions", func(t *testing.T) {
		target := prepare(t)
		var actions []string
		_, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Delete: true, DryRun: true,
			Report: func(a, p string) { actions = append(actions, a+" "+filepath.Base(p)) }})
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(actions, ",")
		for _, want := range []string{"overwrite a.txt", "create b.txt", "delete extra.txt"} {
			if !strings.Contains(got, want) {
				t.Errorf("dry run actions %q lack %q", got, want)
			}
		}
		if read(filepath.Join(target, src, "a.txt")) != "local a, newer" {
			t.Error("dry run changed a.txt")
		}
	})
	t.Run("second restore resumes: identical files skipped", func(t *testing.T) {
		target := t.TempDir()
		if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target}); err != nil {
			t.Fatal(err)
		}
		st, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target})
		if err != nil || st.Skipped != 2 || st.Files != 0 {
			t.Fatalf("second restore: %+v, %v; want 2 skipped, 0 written", st, err)
		}
	})
}

// craft saves a snapshot whose root tree is given as raw JSON nodes.
func craft(t *testing.T, r *repo.Repository, nodes string) *repo.Snapshot {
	t.Helper()
	fileID, _, err := r.SaveBlob(ctx, repo.DataBlob, []byte("evil"))
	if err != nil {
		t.Fatal(err)
	}
	nodes = strings.ReplaceAll(nodes, "FILEID", fileID.String())
	sub, _, err := r.SaveBlob(ctx, repo.TreeBlob, []byte(`{"nodes":[{"name":"f","type":"file","mode":420,"size":4,"content":["`+fileID.String()+`"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return saveRoot(t, r, strings.ReplaceAll(nodes, "SUBID", sub.String()))
}

func TestHostileSnapshotsWriteNothingOutsideTarget(t *testing.T) {
	file := func(name string) string {
		b, _ := json.Marshal(name)
		return `{"name":` + string(b) + `,"type":"file","mode":420,"size":4,"content":["FILEID"]}`
	}
	tests := []struct {
		name    string
		nodes   string
		planted bool // a symlink to the outside directory is already in the target
	}{
		{"dot-dot", file(".."), false},
		{"path with slash", file("../outside/pwned"), false},
		{"absolute", file("/tmp/pwned"), false},
		{"empty name", file(""), false},
		{"duplicate names: symlink then dir", `{"name":"d","type":"symlink","mode":134218239,"linktarget":"OUTSIDE"},{"name":"d","type":"dir","mode":2147484141,"subtree":"SUBID"}`, false},
		{"planted symlink, dir in snapshot", `{"name":"d","type":"dir","mode":2147484141,"subtree":"SUBID"}`, true},
		{"symlink to outside, then write through it", `{"name":"d","type":"symlink","mode":134218239,"linktarget":"OUTSIDE"},{"name":"e","type":"dir","mode":2147484141,"subtree":"SUBID"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			target := filepath.Join(base, "target")
			os.MkdirAll(outside, 0o755)
			os.MkdirAll(target, 0o755)
			if tt.planted {
				os.Symlink(outside, filepath.Join(target, "d"))
			}
			r, _ := repotest.New(t, repo.InitOptions{})
			sn := craft(t, r, strings.ReplaceAll(tt.nodes, "OUTSIDE", outside))
			_, _ = snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target})
			entries, _ := os.ReadDir(outside)
			if len(entries) != 0 {
				t.Fatalf("restore wrote outside the target: %v", entries)
			}
			if _, err := os.Stat(filepath.Join(base, "pwned")); err == nil {
				t.Fatal("restore wrote next to the target")
			}
		})
	}
}

func TestDamagedBlobFailsRestoreNamingThePath(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "victim.bin"), randomBytes(9, 100000), 0o644)
	r, st := repotest.New(t, repo.InitOptions{})
	sn, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	var damaged int
	st.List(ctx, "data/", func(o storeObject) error {
		raw, _ := st.Get(ctx, o.Key)
		raw[10] ^= 0xff
		st.Put(ctx, o.Key, raw)
		damaged++
		return nil
	})
	if damaged == 0 {
		t.Fatal("no data pack to damage")
	}
	_, err = snapshot.Restore(ctx, repotest.Reopen(t, st), sn, snapshot.RestoreOptions{Target: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "victim.bin") {
		t.Fatalf("restore of a damaged blob: %v, want an error naming victim.bin", err)
	}
}

type recordingProgress struct {
	mu      sync.Mutex
	reports int
	done    *snapshot.Status
}

func (p *recordingProgress) Report(snapshot.Status) { p.mu.Lock(); p.reports++; p.mu.Unlock() }
func (p *recordingProgress) Done(s snapshot.Status) { p.mu.Lock(); p.done = &s; p.mu.Unlock() }

func TestProgressIsReported(t *testing.T) {
	src := t.TempDir()
	for i := 0; i < 10; i++ {
		writeFile(t, filepath.Join(src, fmt.Sprintf("f%d", i)), randomBytes(uint64(i), 300000), 0o644)
	}
	r, _ := repotest.New(t, repo.InitOptions{})
	p := &recordingProgress{}
	if _, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h", Progress: p, Interval: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if p.done == nil || p.done.FilesDone != 10 || p.done.BytesDone != 3000000 || p.done.BytesTotal != 3000000 || !p.done.ScanDone {
		t.Fatalf("final backup status %+v", p.done)
	}
	rp := &recordingProgress{}
	sn, _ := r.FindSnapshot(ctx, "latest", repo.Filter{})
	if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: t.TempDir(), Progress: rp, Interval: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if rp.done == nil || rp.done.FilesDone != 10 || rp.done.BytesDone != 3000000 {
		t.Fatalf("final restore status %+v", rp.done)
	}
}
