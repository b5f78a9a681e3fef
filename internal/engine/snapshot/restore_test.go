package snapshot_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
)

// BenchmarkRestore restores 2,000 small files and 16 MiB of large ones (half random,
// half text) from an in-memory repository: the restore pipeline's own cost (reading,
// decrypting, decompressing, verifying, writing) per byte, and its allocations.
func BenchmarkRestore(b *testing.B) {
	src := filepath.Join(b.TempDir(), "src")
	line := []byte("2026-11-21T20:48:34Z INFO  component=restore path=/data/www/a.txt bytes=12345\n")
	for i := range 2000 {
		data := bytes.Repeat(line, 1+i%200)
		if err := os.MkdirAll(filepath.Join(src, fmt.Sprintf("d%02d", i%20)), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("d%02d/f%04d.log", i%20, i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "random.bin"), randomBytes(5, 8<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "text.log"), bytes.Repeat(line, (8<<20)/len(line)), 0o644); err != nil {
		b.Fatal(err)
	}
	r, _ := repotest.New(b, repo.InitOptions{})
	sn, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(sn.Stats.Size))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		target := filepath.Join(b.TempDir(), "t")
		b.StartTimer()
		if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRestoreReplacesWhatIsInTheWay: a file of one blob is written with a single open;
// a symlink at its place is replaced, never written through, and so is a directory.
func TestRestoreReplacesWhatIsInTheWay(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f.txt"), []byte("file content"), 0o640)
	writeFile(t, filepath.Join(src, "g.txt"), []byte("other content"), 0o600)
	r, _ := repotest.New(t, repo.InitOptions{})
	sn, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	outside := filepath.Join(t.TempDir(), "outside")
	writeFile(t, outside, []byte("untouched"), 0o644)
	dst := filepath.Join(target, src)
	if err := os.MkdirAll(filepath.Join(dst, "g.txt", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dst, "f.txt")); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"f.txt": "file content", "g.txt": "other content"} {
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("%s: %v, %v; want a regular file", name, fi, err)
		}
		if b, _ := os.ReadFile(filepath.Join(dst, name)); string(b) != want {
			t.Fatalf("%s holds %q, want %q", name, b, want)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dst, "f.txt")); fi.Mode().Perm() != 0o640 {
		t.Fatalf("f.txt mode %v, want 0640", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(outside); string(b) != "untouched" {
		t.Fatalf("the symlink's target was written: %q", b)
	}
}
