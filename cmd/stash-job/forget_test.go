package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestForgetCommand(t *testing.T) {
	tr := newTestRepo(t)
	dir, src, cmd := tr.dir, tr.src, tr.cmd
	backup := func(host, content string) string {
		t.Helper()
		os.WriteFile(filepath.Join(src, "a.txt"), []byte(content), 0o644)
		out, err := stashJob(t, cmd("backup", "--host", host, "--json", src)...)
		if err != nil {
			t.Fatalf("backup: %v\n%s", err, out)
		}
		var sn struct{ ID string }
		if err := json.Unmarshal([]byte(out), &sn); err != nil {
			t.Fatalf("backup --json: %v\n%s", err, out)
		}
		return sn.ID
	}
	h0 := []string{backup("host-0", "one"), backup("host-0", "two"), backup("host-0", "three")}
	h1 := backup("host-1", "other")
	ids := func() []string {
		t.Helper()
		out, err := stashJob(t, cmd("snapshots", "-o", "json")...)
		if err != nil {
			t.Fatal(err)
		}
		var list []struct{ ID string }
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("snapshots -o json: %v\n%s", err, out)
		}
		var out2 []string
		for _, s := range list {
			out2 = append(out2, s.ID)
		}
		slices.Sort(out2)
		return out2
	}
	sorted := func(s ...string) []string { s = slices.Clone(s); slices.Sort(s); return s }

	// flags after other flags and in any order, as the other commands take them
	out, err := stashJob(t, cmd("forget", "--host", "host-0", "--keep-last", "2", "--dry-run")...)
	if err != nil {
		t.Fatalf("forget --dry-run: %v\n%s", err, out)
	}
	for _, want := range []string{h0[2][:8], h0[1][:8], h0[0][:8], "keep", "last", "would remove", "would remove 1 of 3 snapshots (keep-last 2)"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("line with trailing blanks: %q", line)
		}
	}
	if strings.Contains(out, h1[:8]) {
		t.Errorf("dry-run output lists host-1's snapshot:\n%s", out)
	}
	if got, want := ids(), sorted(append(h0, h1)...); !slices.Equal(got, want) {
		t.Fatalf("after a dry run: %q, want %q", got, want)
	}

	out, err = stashJob(t, cmd("forget", "--host", "host-0", "--keep-last", "2", "-o", "json")...)
	if err != nil {
		t.Fatalf("forget: %v\n%s", err, out)
	}
	var res struct {
		DryRun bool `json:"dry_run"`
		Groups []struct {
			Host string
			Keep []struct {
				ID      string
				Reasons []string
			}
			Remove []struct{ ID string }
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("forget -o json: %v\n%s", err, out)
	}
	if res.DryRun || len(res.Groups) != 1 || res.Groups[0].Host != "host-0" || len(res.Groups[0].Keep) != 2 ||
		res.Groups[0].Keep[0].ID != h0[2] || !slices.Equal(res.Groups[0].Keep[0].Reasons, []string{"last"}) ||
		len(res.Groups[0].Remove) != 1 || res.Groups[0].Remove[0].ID != h0[0] {
		t.Fatalf("forget -o json = %s", out)
	}
	if got, want := ids(), sorted(h0[1], h0[2], h1); !slices.Equal(got, want) {
		t.Fatalf("after forget: %q, want %q", got, want)
	}
	// The kept snapshots still restore.
	target := filepath.Join(dir, "target")
	if out, err := stashJob(t, cmd("restore", "latest", "--host", "host-0", "--target", target)...); err != nil {
		t.Fatalf("restore after forget: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(target, src, "a.txt")); err != nil || string(b) != "three" {
		t.Fatalf("restored a.txt: %q, %v", b, err)
	}

	out, err = stashJob(t, cmd("forget", "--host", "host-9", "--keep-last", "1")...)
	if err != nil || !strings.Contains(out, "no snapshots match") {
		t.Fatalf("forget of an unknown host: %v\n%s", err, out)
	}
}

func TestForgetCommandErrors(t *testing.T) {
	tr := newTestRepo(t)
	tests := []struct {
		name      string
		args      []string
		want      []string
		wantUsage bool
	}{
		{"empty policy", []string{"--keep-last", "0"}, []string{"no --keep-* flag given", "--keep-daily"}, false},
		{"bad output", []string{"--keep-last", "1", "-o", "yaml"}, []string{"yaml"}, true},
		{"argument", []string{"--keep-last", "1", "latest"}, []string{"no arguments"}, true},
		{"not a number", []string{"--keep-daily", "seven"}, []string{"seven"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := stashJob(t, tr.cmd("forget", tt.args...)...)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error()+out, w) {
					t.Errorf("error %q (output %q) does not mention %q", err, out, w)
				}
			}
			if _, ok := err.(usageError); ok != tt.wantUsage {
				t.Errorf("usage error = %v, want %v: %v", ok, tt.wantUsage, err)
			}
		})
	}
}

func TestForgetKeepTag(t *testing.T) {
	tr := newTestRepo(t)
	src, cmd := tr.src, tr.cmd
	// --keep-tag keeps what carries all its tags; the other snapshots follow --keep-last
	if _, err := stashJob(t, cmd("backup", "--host", "host-9", "--tag", "release", "--tag", "v1", src)...); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("later"), 0o644)
	if _, err := stashJob(t, cmd("backup", "--host", "host-9", src)...); err != nil {
		t.Fatal(err)
	}
	out, err := stashJob(t, cmd("forget", "--host", "host-9", "--keep-last", "1", "--keep-tag", "release,v1", "--dry-run")...)
	if err != nil || !strings.Contains(out, "would remove 0 of 2 snapshots (keep-last 1, keep-tag release,v1)") || !strings.Contains(out, "tags") {
		t.Errorf("forget --keep-tag: %v\n%s", err, out)
	}
	out, err = stashJob(t, cmd("forget", "--host", "host-9", "--keep-last", "1", "--keep-tag", "release,v2", "--dry-run")...)
	if err != nil || !strings.Contains(out, "would remove 1 of 2 snapshots") {
		t.Errorf("forget --keep-tag with a tag the snapshot lacks: %v\n%s", err, out)
	}

}
