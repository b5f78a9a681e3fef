package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestBackupWithCacheFlags(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("correct horse\n"), 0o600)
	src := filepath.Join(dir, "src")
	for _, d := range []string{"a", "b", "c/d"} {
		os.MkdirAll(filepath.Join(src, d), 0o755)
		os.WriteFile(filepath.Join(src, d, "f.txt"), []byte(d), 0o644)
	}
	cache := filepath.Join(dir, "cache")
	repoURL := "file://" + filepath.Join(dir, "repo")
	common := []string{"--repo", repoURL, "--password-file", pw}
	if out, err := stashJob(t, append([]string{"init"}, common...)...); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	t.Setenv("STASH_CACHE_DIR", "")
	t.Setenv("STASH_CACHE_SIZE", "")
	cacheLine := regexp.MustCompile(`(?m)^cache: (\d+) hits \(.*\), (\d+) misses \(.* downloaded\), 0 evicted; holds (\d+) files, .* of 8\.0 MiB in (.*)$`)

	tests := []struct {
		name string
		args []string
		env  map[string]string
		// wantHits: the parent's trees and the index come from the cache, none from the
		// store; noLine: no cache line is printed; wantOut: this is printed instead.
		wantHits bool
		noLine   bool
		wantErr  string
		wantOut  string
	}{
		// Every backup writes trees (directory access times change): the cases that
		// want no misses follow only backups that wrote through the same cache.
		{name: "first, fills the cache", args: []string{"--cache-dir", cache, "--cache-size", "8Mi"}},
		{name: "second, reads the parent's trees from the cache", args: []string{"--cache-dir", cache, "--cache-size", "8Mi"}, wantHits: true},
		{name: "directory and size from the environment", env: map[string]string{"STASH_CACHE_DIR": cache, "STASH_CACHE_SIZE": "8388608"}, wantHits: true},
		{name: "bad size in the environment, replaced by the flag", args: []string{"--cache-size", "8Mi"}, env: map[string]string{"STASH_CACHE_DIR": cache, "STASH_CACHE_SIZE": "lots"}, wantHits: true},
		{name: "bad size in the environment", env: map[string]string{"STASH_CACHE_DIR": cache, "STASH_CACHE_SIZE": "lots"}, wantErr: "STASH_CACHE_SIZE"},
		{name: "bad --cache-size", args: []string{"--cache-dir", cache, "--cache-size", "1.5Gi"}, wantErr: "1.5Gi"},
		{name: "--no-cache wins over the environment", args: []string{"--no-cache"}, env: map[string]string{"STASH_CACHE_DIR": cache, "STASH_CACHE_SIZE": "lots"}, noLine: true},
		{name: "no cache", noLine: true},
		{name: "unusable directory", args: []string{"--cache-dir", pw}, wantOut: "cache: not used: mkdir " + pw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := append(append(append([]string{"backup"}, common...), tt.args...), "--host", "h", src)
			out, err := stashJob(t, args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %q\n%s", err, tt.wantErr, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("backup: %v\n%s", err, out)
			}
			m := cacheLine.FindStringSubmatch(out)
			switch {
			case tt.wantOut != "":
				if !strings.Contains(out, tt.wantOut) {
					t.Errorf("output lacks %q:\n%s", tt.wantOut, out)
				}
			case tt.noLine:
				if strings.Contains(out, "cache:") {
					t.Errorf("a cache line without a cache:\n%s", out)
				}
			case m == nil:
				t.Errorf("no cache line:\n%s", out)
			case m[4] != cache || m[3] == "0":
				t.Errorf("cache line names %s with %s files, want %s with some:\n%s", m[4], m[3], cache, out)
			case tt.wantHits && (m[1] == "0" || m[2] != "0"):
				t.Errorf("want hits and no misses:\n%s", out)
			}
		})
	}
	// ls, restore, snapshots and forget take the flags too.
	for _, cmd := range [][]string{
		{"snapshots"}, {"ls", "latest"}, {"restore", "latest", "--target", filepath.Join(dir, "restore")},
		{"forget", "--keep-last", "100"},
	} {
		args := append(append([]string{cmd[0]}, common...), append([]string{"--cache-dir", cache, "--cache-size", "8Mi"}, cmd[1:]...)...)
		if out, err := stashJob(t, args...); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(cmd, " "), err, out)
		}
	}
	if out, err := stashJob(t, append([]string{"init", "--cache-dir", cache}, common...)...); err == nil || !strings.Contains(out, "flag provided but not defined: -cache-dir") {
		t.Errorf("init --cache-dir: %v\n%s", err, out)
	}
}
