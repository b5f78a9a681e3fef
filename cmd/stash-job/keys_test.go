package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

func TestKeyCommands(t *testing.T) {
	dir := t.TempDir()
	write := func(name, pw string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(pw+"\n"), 0o600)
		return p
	}
	pw1, pw2, pw3 := write("pw1", "first"), write("pw2", "second"), write("pw3", "third")
	repoURL := "file://" + filepath.Join(dir, "repo")
	with := func(pw, name string, args ...string) []string {
		return append([]string{name, args[0], "--repo", repoURL, "--password-file", pw}, args[1:]...)
	}
	opens := func(pw string) bool {
		t.Helper()
		_, err := stashJob(t, "snapshots", "--repo", repoURL, "--password-file", pw)
		if err != nil && !errors.Is(err, repo.ErrWrongPassword) {
			t.Fatal(err)
		}
		return err == nil
	}
	if out, err := stashJob(t, "init", "--repo", repoURL, "--password-file", pw1); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	type key struct {
		ID      string
		Current bool
	}
	list := func(pw string) []key {
		t.Helper()
		out, err := stashJob(t, with(pw, "key", "list", "-o", "json")...)
		if err != nil {
			t.Fatalf("key list: %v\n%s", err, out)
		}
		var keys []key
		if err := json.Unmarshal([]byte(out), &keys); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return keys
	}
	first := list(pw1)
	if len(first) != 1 || !first[0].Current {
		t.Fatalf("keys after init: %+v", first)
	}
	if _, err := stashJob(t, with(pw1, "key", "remove", first[0].ID[:8])...); !errors.Is(err, repo.ErrLastKey) {
		t.Errorf("removing the last key: %v", err)
	}

	if out, err := stashJob(t, with(pw1, "key", "add", "--new-password-file", pw2)...); err != nil || !strings.Contains(out, "added key") {
		t.Fatalf("key add: %v\n%s", err, out)
	}
	if !opens(pw1) || !opens(pw2) {
		t.Fatal("after key add both passwords should open")
	}
	out, err := stashJob(t, with(pw2, "key", "list")...)
	if err != nil || strings.Count(out, "\n") != 4 || !strings.Contains(out, "* ") {
		t.Errorf("key list table: %v\n%s", err, out)
	}
	if _, err := stashJob(t, with(pw1, "key", "remove", first[0].ID)...); !errors.Is(err, repo.ErrCurrentKey) {
		t.Errorf("removing the key in use: %v", err)
	}
	// passwd through the environment: pw2's key is replaced by "third"
	t.Setenv("STASH_NEW_PASSWORD", "third")
	if out, err := stashJob(t, with(pw2, "key", "passwd")...); err != nil {
		t.Fatalf("key passwd: %v\n%s", err, out)
	}
	if opens(pw2) || !opens(pw3) || !opens(pw1) {
		t.Fatal("after passwd: want first and third to open, second not")
	}
	if out, err := stashJob(t, with(pw3, "key", "remove", first[0].ID[:8])...); err != nil {
		t.Fatalf("key remove: %v\n%s", err, out)
	}
	if opens(pw1) || len(list(pw3)) != 1 {
		t.Fatal("after removing the first key, its password should no longer open")
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no subcommand", []string{"key"}},
		{"unknown subcommand", []string{"key", "rotate"}},
		{"remove without id", with(pw3, "key", "remove")},
		{"list with argument", with(pw3, "key", "list", "x")},
		{"lock without list", []string{"lock"}},
		{"unlock with argument", []string{"unlock", "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var u usageError
			if _, err := stashJob(t, tc.args...); !errors.As(err, &u) {
				t.Errorf("want a usage error, got %v", err)
			}
		})
	}
}

func TestLockListAndUnlock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("correct horse\n"), 0o600)
	repoURL := "file://" + filepath.Join(dir, "repo")
	common := []string{"--repo", repoURL, "--password-file", pw}
	if out, err := stashJob(t, append([]string{"init"}, common...)...); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	st, err := store.Open(ctx, repoURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := repo.Open(ctx, st, []byte("correct horse"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Release(ctx)
	// a lock its holder stopped refreshing an hour ago
	old := time.Now().Add(-time.Hour).UTC()
	plain, _ := json.Marshal(repo.LockInfo{Exclusive: true, Host: "gone-host", PID: 42, Time: old, Refreshed: old})
	if err := st.PutIfAbsent(ctx, "locks/00000000000000000000000000000000", r.Key().Seal(nil, plain, []byte("lock"))); err != nil {
		t.Fatal(err)
	}

	out, err := stashJob(t, append([]string{"lock", "list"}, common...)...)
	if err != nil {
		t.Fatalf("lock list: %v\n%s", err, out)
	}
	for _, want := range []string{"exclusive  gone-host", "42", "yes", "shared", "no"} {
		if !strings.Contains(out, want) {
			t.Errorf("lock list lacks %q:\n%s", want, out)
		}
	}
	out, err = stashJob(t, append([]string{"unlock"}, common...)...)
	if err != nil || !strings.Contains(out, "removed exclusive lock of gone-host (pid 42)") || !strings.Contains(out, "removed 1 lock(s)") {
		t.Fatalf("unlock: %v\n%s", err, out)
	}
	out, err = stashJob(t, append([]string{"lock", "list", "-o", "json"}, common...)...)
	var locks []struct {
		Kind  string
		Stale bool
	}
	if err != nil || json.Unmarshal([]byte(out), &locks) != nil || len(locks) != 1 || locks[0].Kind != "shared" || locks[0].Stale {
		t.Fatalf("after unlock, want the fresh shared lock only: %v\n%s", err, out)
	}
	out, err = stashJob(t, append([]string{"unlock", "--force"}, common...)...)
	if err != nil || !strings.Contains(out, "warning: --force") || !strings.Contains(out, "removed 1 lock(s)") {
		t.Fatalf("unlock --force: %v\n%s", err, out)
	}
	if out, _ := stashJob(t, append([]string{"lock", "list"}, common...)...); !strings.Contains(out, "no locks") {
		t.Errorf("after unlock --force: %s", out)
	}
}
