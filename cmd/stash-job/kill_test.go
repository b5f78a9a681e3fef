package main

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// In the child process of TestBackupKilledMidUpload this test binary is stash-job.
func TestMain(m *testing.M) {
	if args := os.Getenv("STASH_JOB_AS_MAIN"); args != "" {
		os.Args = append([]string{"stash-job"}, strings.Split(args, "\x1f")...)
		main()
		os.Exit(0)
	}
	// `make` exports STASH_CACHE_DIR (its cache of builds and clusters), which stash-job
	// takes as its repository cache: tests that want a cache set it themselves, so none
	// reads another test's (or an earlier run's) cached index files.
	os.Unsetenv("STASH_CACHE_DIR")
	os.Exit(m.Run())
}

// A backup killed with SIGKILL while it uploads leaves its packs and its lock behind: the
// next backup succeeds without an unlock, prune reclaims what the killed one uploaded
// (its lock, held by a dead process of this machine, does not block it), and the
// repository checks clean with every pack read.
func TestBackupKilledMidUpload(t *testing.T) {
	r := newTestRepo(t)
	buf := make([]byte, 4<<20)
	for i := range 24 { // 96 MiB of incompressible data: the upload takes a while
		rand.Read(buf)
		if err := os.WriteFile(filepath.Join(r.src, "blob-"+string(rune('a'+i))+".bin"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repoDir := strings.TrimPrefix(r.url, "file://")
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), "STASH_JOB_AS_MAIN="+strings.Join(r.cmd("backup", "--host", "host-0", r.src), "\x1f"))
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	// kill it once some packs are stored, well before it is done
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := 0
		filepath.Walk(filepath.Join(repoDir, "data"), func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				n++
			}
			return nil
		})
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			child.Process.Kill()
			t.Fatal("the backup stored no pack within 60s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	if out, _ := stashJob(t, r.cmd("snapshots")...); strings.Contains(out, "host-0") {
		t.Fatalf("the killed backup wrote a snapshot:\n%s", out)
	}
	if out, err := stashJob(t, "lock", "list", "--repo", r.url, "--password-file", r.pw); err != nil || !strings.Contains(out, "shared") {
		t.Errorf("the killed backup's lock is not listed: %v\n%s", err, out)
	}

	// a small backup of something else, no unlock: it succeeds
	other := filepath.Join(t.TempDir(), "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "a.txt"), []byte("after the kill"), 0o644)
	if out, err := stashJob(t, r.cmd("backup", "--host", "host-1", other)...); err != nil {
		t.Fatalf("backup after the kill: %v\n%s", err, out)
	}
	out, err := stashJob(t, r.cmd("prune")...)
	if err != nil {
		t.Fatalf("prune after the kill: %v\n%s", err, out)
	}
	if !strings.Contains(out, "reclaimed") || strings.Contains(out, "reclaimed 0 B") {
		t.Errorf("prune reclaimed nothing of the killed backup's packs:\n%s", out)
	}
	if out, err := stashJob(t, r.cmd("check", "--read-data")...); err != nil {
		t.Fatalf("check --read-data after the kill and prune: %v\n%s", err, out)
	}
	target := t.TempDir()
	if out, err := stashJob(t, r.cmd("restore", "latest", "--host", "host-1", "--target", target)...); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(target, other, "a.txt")); string(b) != "after the kill" {
		t.Errorf("restored %q", b)
	}
}
