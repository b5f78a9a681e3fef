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
