package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPruneCommand(t *testing.T) {
	tr := newTestRepo(t)
	dir, src, cmd := tr.dir, tr.src, tr.cmd
	// 1 MiB of random data per backup: it does not compress, so the numbers are plain
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, content := range []string{"one", "two"} {
		data := make([]byte, 1<<20)
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		os.WriteFile(filepath.Join(src, "a.bin"), data, 0o644)
		os.WriteFile(filepath.Join(src, "name.txt"), []byte(content), 0o644)
		if out, err := stashJob(t, cmd("backup", "--host", "h", src)...); err != nil {
			t.Fatalf("backup: %v\n%s", err, out)
		}
	}
	if out, err := stashJob(t, cmd("forget", "--keep-last", "1")...); err != nil {
		t.Fatalf("forget: %v\n%s", err, out)
	}

	type stats struct {
		DryRun           bool  `json:"dry_run"`
		PacksDeleted     int   `json:"packs_deleted"`
		BytesReclaimable int64 `json:"bytes_reclaimable"`
		BytesReclaimed   int64 `json:"bytes_reclaimed"`
	}
	prune := func(args ...string) stats {
		t.Helper()
		out, err := stashJob(t, cmd("prune", append(args, "-o", "json")...)...)
		if err != nil {
			t.Fatalf("prune %q: %v\n%s", args, err, out)
		}
		var s stats
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("prune -o json: %v\n%s", err, out)
		}
		return s
	}
	dry := prune("--dry-run")
	if !dry.DryRun || dry.BytesReclaimable < 1<<20 || dry.PacksDeleted == 0 {
		t.Fatalf("dry run: %+v", dry)
	}
	out, err := stashJob(t, cmd("prune", "--dry-run")...)
	if err != nil || !strings.Contains(out, "would reclaim: 1.0 MiB") || !strings.Contains(out, "reclaimable: 1.0 MiB") {
		t.Fatalf("prune --dry-run: %v\n%s", err, out)
	}
	out, err = stashJob(t, cmd("prune")...)
	if err != nil || !strings.Contains(out, "reclaimed: 1.0 MiB") {
		t.Fatalf("prune: %v\n%s", err, out)
	}
	t.Logf("prune:\n%s", out)
	if again := prune(); again.BytesReclaimed != 0 || again.PacksDeleted != 0 {
		t.Fatalf("second prune: %+v", again)
	}
	target := filepath.Join(dir, "target")
	if out, err := stashJob(t, cmd("restore", "latest", "--target", target)...); err != nil {
		t.Fatalf("restore after prune: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(target, src, "name.txt")); err != nil || string(b) != "two" {
		t.Fatalf("restored name.txt: %q, %v", b, err)
	}
}

func TestPruneCommandErrors(t *testing.T) {
	tr := newTestRepo(t)
	tests := []struct {
		name      string
		args      []string
		want      string
		wantUsage bool
	}{
		{"bad output", []string{"-o", "yaml"}, "yaml", true},
		{"argument", []string{"latest"}, "no arguments", true},
		{"zero percent", []string{"--max-unused-percent", "0"}, "above 0", true},
		{"over 100", []string{"--max-unused-percent", "101"}, "at most 100", true},
		{"not a number", []string{"--max-unused-percent", "ten"}, "ten", false},
		{"no repository", []string{"--repo", ""}, "no repository", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := stashJob(t, tr.cmd("prune", tt.args...)...)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out)
			}
			if !strings.Contains(err.Error()+out, tt.want) {
				t.Errorf("error %q (output %q) does not mention %q", err, out, tt.want)
			}
			if _, ok := err.(usageError); ok != tt.wantUsage {
				t.Errorf("usage error = %v, want %v: %v", ok, tt.wantUsage, err)
			}
		})
	}
}
