package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stashJob runs the program's command line in-process.
func stashJob(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, &out, &out)
	return out.String(), err
}

func TestLocalCommandsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("correct horse\n"), 0o600)
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "b.txt"), []byte("beta"), 0o644)
	repoURL := "file://" + filepath.Join(dir, "repo")
	common := []string{"--repo", repoURL, "--password-file", pw}

	if out, err := stashJob(t, append([]string{"init"}, common...)...); err != nil || !strings.Contains(out, "created repository") || !strings.Contains(out, "(compression zstd, hash blake3)") {
		t.Fatalf("init: %v\n%s", err, out)
	}
	out, err := stashJob(t, append(append([]string{"backup"}, common...), "--host", "host-0", "--tag", "daily", src)...)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	for _, want := range []string{"2 new, 0 modified, 0 unmodified (2 total)", "uploaded:"} {
		if !strings.Contains(out, want) {
			t.Errorf("backup output lacks %q:\n%s", want, out)
		}
	}
	out, err = stashJob(t, append(append([]string{"snapshots"}, common...), "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var snaps []struct {
		Host  string   `json:"host"`
		Tags  []string `json:"tags"`
		Paths []string `json:"paths"`
	}
	if err := json.Unmarshal([]byte(out), &snaps); err != nil || len(snaps) != 1 || snaps[0].Host != "host-0" || snaps[0].Tags[0] != "daily" || snaps[0].Paths[0] != src {
		t.Fatalf("snapshots -o json = %s (%v)", out, err)
	}
	out, err = stashJob(t, append(append([]string{"ls"}, common...), "latest", src+"/sub")...)
	if err != nil || strings.TrimSpace(out) != src+"/sub\n"+src+"/sub/b.txt" && !strings.Contains(out, src+"/sub/b.txt") {
		t.Fatalf("ls: %v\n%s", err, out)
	}
	if strings.Contains(out, "a.txt") {
		t.Errorf("ls of sub lists a file outside it:\n%s", out)
	}
	target := filepath.Join(dir, "target")
	// flags after the snapshot argument, as in `restore latest --target DIR`
	out, err = stashJob(t, append(append([]string{"restore"}, common...), "latest", "--target", target, "--path", src+"/sub")...)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(target, src, "sub", "b.txt")); err != nil || string(b) != "beta" {
		t.Fatalf("restored b.txt: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(target, src, "a.txt")); err == nil {
		t.Error("restore --path restored a file outside the path")
	}
}

func TestLocalCommandErrors(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("right"), 0o600)
	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("wrong"), 0o600)
	repoURL := "file://" + filepath.Join(dir, "repo")
	if _, err := stashJob(t, "init", "--repo", repoURL, "--password-file", pw); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
	tests := []struct {
		name    string
		args    []string
		want    []string
		notWant string
	}{
		{"wrong password", []string{"snapshots", "--repo", repoURL, "--password-file", wrong}, []string{repoURL, "wrong password"}, ""},
		{"no repository", []string{"snapshots", "--repo", "file://" + filepath.Join(dir, "none"), "--password-file", pw}, []string{"no repository", "stash-job init"}, ""},
		{"unreachable bucket", []string{"snapshots", "--repo", "s3://bucket/prefix?endpoint=http://127.0.0.1:1&region=us-east-1&use_path_style=true", "--password-file", pw},
			[]string{"s3://bucket/prefix"}, "very-secret-value"},
		{"unknown scheme", []string{"snapshots", "--repo", "ftp://host/x", "--password-file", pw}, []string{"ftp"}, ""},
		{"no password", []string{"snapshots", "--repo", repoURL}, []string{"--password-file", "STASH_PASSWORD"}, ""},
		{"init twice", []string{"init", "--repo", repoURL, "--password-file", pw}, []string{"already exists"}, ""},
		{"unknown hash", []string{"init", "--repo", "file://" + filepath.Join(dir, "other"), "--password-file", pw, "--hash", "md5"}, []string{`"md5"`, "blake3", "sha256"}, ""},
		{"restore without target", []string{"restore", "--repo", repoURL, "--password-file", pw, "latest"}, []string{"--target"}, ""},
		{"bad overwrite mode", []string{"restore", "--repo", repoURL, "--password-file", pw, "latest", "--target", dir, "--overwrite", "sometimes"}, []string{"sometimes", "if-newer"}, ""},
		{"backup of a missing path", []string{"backup", "--repo", repoURL, "--password-file", pw, filepath.Join(dir, "missing")}, []string{filepath.Join(dir, "missing")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("STASH_PASSWORD", "")
			out, err := stashJob(t, tt.args...)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tt.notWant != "" && strings.Contains(err.Error()+out, tt.notWant) {
				t.Errorf("error leaks %q: %v", tt.notWant, err)
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

// testRepo is an initialized file:// repository in a temporary directory, its password
// file and an empty source directory beside it.
type testRepo struct {
	dir, pw, url, src string
}

func newTestRepo(t *testing.T) testRepo {
	t.Helper()
	dir := t.TempDir()
	r := testRepo{dir: dir, pw: filepath.Join(dir, "pw"), url: "file://" + filepath.Join(dir, "repo"), src: filepath.Join(dir, "src")}
	if err := os.WriteFile(r.pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(r.src, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := stashJob(t, r.cmd("init")...); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	return r
}

// cmd is the command line of command name on this repository.
func (r testRepo) cmd(name string, args ...string) []string {
	return append([]string{name, "--repo", r.url, "--password-file", r.pw}, args...)
}

func TestRestoreIncludeExcludeFlags(t *testing.T) {
	r := newTestRepo(t)
	for name, content := range map[string]string{"app.log": "log", "keep.txt": "keep", "skip.txt": "skip", "sub/deep.txt": "deep", "sub/deep.log": "deep log"} {
		p := filepath.Join(r.src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := stashJob(t, r.cmd("backup", "--host", "host-0", r.src)...); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	target := filepath.Join(r.dir, "target")
	exists := func(name string) bool {
		_, err := os.Lstat(filepath.Join(target, r.src, name))
		return err == nil
	}
	// both flags repeat; a pattern with a '/' matches the path in the snapshot
	out, err := stashJob(t, r.cmd("restore", "latest", "--target", target, "--include", "*.txt", "--include", r.src+"/*.log", "--exclude", "skip*")...)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	for name, want := range map[string]bool{"app.log": true, "keep.txt": true, "skip.txt": false, "sub/deep.txt": true, "sub/deep.log": false} {
		if exists(name) != want {
			t.Errorf("%s restored = %v, want %v", name, !want, want)
		}
	}
	if !strings.Contains(out, ": 3 files") {
		t.Errorf("summary does not count 3 files:\n%s", out)
	}

	// --delete leaves what the patterns do not select
	os.WriteFile(filepath.Join(target, r.src, "extra.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(target, r.src, "extra.bin"), []byte("x"), 0o644)
	out, err = stashJob(t, r.cmd("restore", "latest", "--target", target, "--include", "*.txt", "--delete")...)
	if err != nil {
		t.Fatalf("restore --delete: %v\n%s", err, out)
	}
	if exists("extra.txt") || !exists("extra.bin") || !exists("app.log") {
		t.Errorf("after --delete with --include '*.txt': extra.txt %v (want gone), extra.bin %v, app.log %v (want kept)",
			exists("extra.txt"), exists("extra.bin"), exists("app.log"))
	}

	fresh := filepath.Join(r.dir, "fresh")
	for _, flag := range []string{"--include", "--exclude"} {
		_, err := stashJob(t, r.cmd("restore", "latest", "--target", fresh, flag, "[oops")...)
		if err == nil || !strings.Contains(err.Error(), "invalid "+flag+` pattern "[oops"`) {
			t.Errorf("%s '[oops': err = %v, want one naming the pattern", flag, err)
		}
	}
	if _, err := os.Stat(fresh); err == nil {
		t.Error("a restore with a bad pattern created its target")
	}
}
