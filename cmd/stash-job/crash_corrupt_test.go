package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stashJobExit runs stash-job as a process of its own and returns its output and exit
// code: what a CronJob or a shell sees.
func stashJobExit(t *testing.T, args ...string) (string, int) {
	t.Helper()
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), "STASH_JOB_AS_MAIN="+strings.Join(args, "\x1f"))
	out, err := child.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatal(err)
	return "", 0
}

func packFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// Damage seen from the command line: check exits non-zero naming the file a deleted pack
// held and the damaged index file; restore exits non-zero naming the lost file, restores
// the rest when told to leave it out, and restores a snapshot the damage spares.
func TestCorruptRepositoryCommandLine(t *testing.T) {
	r := newTestRepo(t)
	repoDir := strings.TrimPrefix(r.url, "file://")
	os.WriteFile(filepath.Join(r.src, "a.txt"), []byte("kept safe"), 0o644)
	if out, err := stashJob(t, r.cmd("backup", "--host", "h", "--tag", "first", r.src)...); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	dataBefore := packFiles(t, filepath.Join(repoDir, "data"))
	indexBefore := packFiles(t, filepath.Join(repoDir, "index"))
	os.MkdirAll(filepath.Join(r.src, "sub"), 0o755)
	os.WriteFile(filepath.Join(r.src, "sub", "b.txt"), []byte("lost with its pack"), 0o644)
	if out, err := stashJob(t, r.cmd("backup", "--host", "h", r.src)...); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	var bPack, secondIndex string
	for _, p := range packFiles(t, filepath.Join(repoDir, "data")) {
		if !slices.Contains(dataBefore, p) {
			bPack = p
		}
	}
	for _, p := range packFiles(t, filepath.Join(repoDir, "index")) {
		if !slices.Contains(indexBefore, p) {
			secondIndex = p
		}
	}
	if bPack == "" || secondIndex == "" {
		t.Fatal("the second backup wrote no data pack or no index file")
	}
	lost := filepath.Join(r.src, "sub", "b.txt")

	t.Run("deleted pack", func(t *testing.T) {
		saved, _ := os.ReadFile(bPack)
		os.Remove(bPack)
		defer os.WriteFile(bPack, saved, 0o644)
		out, code := stashJobExit(t, r.cmd("check", "--read-data")...)
		if code == 0 || !strings.Contains(out, "missing pack") || !strings.Contains(out, lost) {
			t.Errorf("check: exit %d, want non-zero naming the missing pack and %s:\n%s", code, lost, out)
		}
		target := t.TempDir()
		out, code = stashJobExit(t, r.cmd("restore", "latest", "--target", target)...)
		if code == 0 || !strings.Contains(out, strings.TrimPrefix(lost, "/")) {
			t.Errorf("restore: exit %d, want non-zero naming %s:\n%s", code, lost, out)
		}
		target = t.TempDir()
		if out, code = stashJobExit(t, r.cmd("restore", "latest", "--target", target, "--exclude", lost)...); code != 0 {
			t.Fatalf("restore without the lost file: exit %d\n%s", code, out)
		}
		if b, err := os.ReadFile(filepath.Join(target, r.src, "a.txt")); string(b) != "kept safe" {
			t.Errorf("a.txt restored as %q, %v", b, err)
		}
	})

	t.Run("truncated index", func(t *testing.T) {
		saved, _ := os.ReadFile(secondIndex)
		os.WriteFile(secondIndex, saved[:len(saved)/2], 0o644)
		defer os.WriteFile(secondIndex, saved, 0o644)
		name := "index/" + filepath.Base(secondIndex)
		out, code := stashJobExit(t, r.cmd("check")...)
		if code == 0 || !strings.Contains(out, "damaged index") || !strings.Contains(out, name) {
			t.Errorf("check: exit %d, want non-zero naming the damaged index %s:\n%s", code, name, out)
		}
		// the first snapshot is all in the other index file: it restores, with a
		// warning naming the damaged one
		out, code = stashJobExit(t, r.cmd("snapshots", "-o", "json")...)
		var snaps []struct {
			ID   string   `json:"id"`
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal([]byte(out[max(0, strings.Index(out, "[")):]), &snaps); code != 0 || err != nil {
			t.Fatalf("snapshots: exit %d, %v\n%s", code, err, out)
		}
		first := ""
		for _, sn := range snaps {
			if slices.Contains(sn.Tags, "first") {
				first = sn.ID
			}
		}
		target := t.TempDir()
		out, code = stashJobExit(t, r.cmd("restore", first, "--target", target)...)
		if code != 0 || !strings.Contains(out, "warning") || !strings.Contains(out, name) {
			t.Errorf("restore of the first snapshot: exit %d, want 0 with a warning naming %s:\n%s", code, name, out)
		}
		if b, err := os.ReadFile(filepath.Join(target, r.src, "a.txt")); string(b) != "kept safe" {
			t.Errorf("a.txt restored as %q, %v", b, err)
		}
		// the second one's directory listings were in the damaged index file
		out, code = stashJobExit(t, r.cmd("restore", "latest", "--target", t.TempDir())...)
		if code == 0 || !strings.Contains(out, "root directory") {
			t.Errorf("restore latest: exit %d, want non-zero naming its root directory:\n%s", code, out)
		}
	})
}
