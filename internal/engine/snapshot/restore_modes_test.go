//go:build linux

package snapshot_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
)

// TestRestoreWholeFileModes: a file restored in one piece is created with its permission
// bits and gets a chmod only when needed. Whatever the umask, and over an existing file
// with another mode, every mode and time comes back exactly.
func TestRestoreWholeFileModes(t *testing.T) {
	src := t.TempDir()
	modes := []os.FileMode{0o600, 0o644, 0o664, 0o666, 0o755, 0o777, 0o000, 0o755 | os.ModeSetuid, 0o755 | os.ModeSetgid}
	mtime := time.Date(2021, 3, 4, 5, 6, 7, 890123456, time.UTC)
	for i, m := range modes {
		p := filepath.Join(src, fmt.Sprintf("f%d", i))
		if err := os.WriteFile(p, []byte(fmt.Sprintf("file %d", i)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	r, _ := repotest.New(t, repo.InitOptions{})
	sn, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, dst string) {
		t.Helper()
		for i, m := range modes {
			p := filepath.Join(dst, fmt.Sprintf("f%d", i))
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != m {
				t.Errorf("f%d: mode %v, want %v", i, fi.Mode(), m)
			}
			if !fi.ModTime().Equal(mtime) {
				t.Errorf("f%d: mtime %v, want %v", i, fi.ModTime(), mtime)
			}
			if b, _ := os.ReadFile(p); string(b) != fmt.Sprintf("file %d", i) && m&0o400 != 0 {
				t.Errorf("f%d: content %q", i, b)
			}
		}
	}
	for _, umask := range []int{0o022, 0o077, 0o002, 0o000} {
		t.Run(fmt.Sprintf("umask %03o", umask), func(t *testing.T) {
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			target := t.TempDir()
			if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target}); err != nil {
				t.Fatal(err)
			}
			check(t, filepath.Join(target, src))
			// Over the restored files, made different: truncated and re-moded in place.
			for i := range modes {
				p := filepath.Join(target, src, fmt.Sprintf("f%d", i))
				os.Chmod(p, 0o640)
				os.WriteFile(p, []byte("changed"), 0o640)
			}
			if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Overwrite: snapshot.OverwriteAlways}); err != nil {
				t.Fatal(err)
			}
			check(t, filepath.Join(target, src))
		})
	}
}
