package main

import (
	"encoding/json"
	"errors"
	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("correct horse\n"), 0o600)
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte(strings.Repeat("alpha ", 500)), 0o644)
	repoDir := filepath.Join(dir, "repo")
	common := []string{"--repo", "file://" + repoDir, "--password-file", pw}
	cmd := func(name string, args ...string) []string { return append(append([]string{name}, common...), args...) }
	if out, err := stashJob(t, cmd("init")...); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if out, err := stashJob(t, cmd("backup", src)...); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"structure", nil, "structure only"},
		{"read-data", []string{"--read-data"}, "read 2 of 2 packs"},
		{"subset", []string{"--read-data-subset", "50%"}, "read a random 50% of the packs, 1 of 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := stashJob(t, cmd("check", tc.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, tc.want) || !strings.Contains(out, "no problems found") {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"bad percent", []string{"--read-data-subset", "50"}},
		{"zero percent", []string{"--read-data-subset", "0%"}},
		{"both", []string{"--read-data", "--read-data-subset", "5%"}},
		{"argument", []string{"extra"}},
		{"output", []string{"-o", "yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var u usageError
			if _, err := stashJob(t, cmd("check", tc.args...)...); !errors.As(err, &u) {
				t.Errorf("want a usage error, got %v", err)
			}
		})
	}

	// a data pack deleted: the problem names the file, and the command fails
	var packs []string
	filepath.Walk(filepath.Join(repoDir, "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && !strings.HasSuffix(p, ".attrs") {
			packs = append(packs, p)
		}
		return nil
	})
	if len(packs) != 1 {
		t.Fatalf("want one data pack, got %q", packs)
	}
	os.Remove(packs[0])
	out, err := stashJob(t, cmd("check", "-o", "json")...)
	if !errors.Is(err, repocmd.ErrCheckFailed) {
		t.Fatalf("want ErrCheckFailed, got %v\n%s", err, out)
	}
	var res struct {
		Problems []struct {
			Kind  string
			Files []struct{ Snapshot, Path string }
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Problems) != 1 || res.Problems[0].Kind != "missing pack" || len(res.Problems[0].Files) != 1 ||
		res.Problems[0].Files[0].Path != filepath.Join(src, "a.txt") {
		t.Errorf("problems %+v", res.Problems)
	}
	out, _ = stashJob(t, cmd("check")...)
	for _, want := range []string{"error: missing pack", filepath.Join(src, "a.txt"), "1 problem(s) found"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}
