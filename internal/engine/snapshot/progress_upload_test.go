package snapshot_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/testutil"
)

// slowUploads delays every pack upload, as a slow link to the bucket does.
type slowUploads struct {
	store.Backend
	delay time.Duration
}

func (s slowUploads) Upload(ctx context.Context, key string, data []byte, createOnly bool) error {
	if filepath.Dir(filepath.Dir(key)) == "data" {
		time.Sleep(s.delay)
	}
	return s.Backend.Upload(ctx, key, data, createOnly)
}

type countingProgress struct {
	mu      sync.Mutex
	reports []snapshot.Status
}

func (p *countingProgress) Report(s snapshot.Status) {
	p.mu.Lock()
	p.reports = append(p.reports, s)
	p.mu.Unlock()
}
func (p *countingProgress) Done(snapshot.Status) {}

// When the files are read long before their packs are stored (a slow link), progress
// keeps being reported until the upload ends: a host that reports nothing for the length
// of the upload looks hung to whoever watches it.
func TestProgressGoesOnWhileUploading(t *testing.T) {
	st := store.NewFromBackend(slowUploads{store.BucketBackend(memblob.OpenBucket(nil)), 600 * time.Millisecond}, "mem://slow", store.Options{})
	t.Cleanup(func() { st.Close() })
	repotest.Init(t, st, repo.InitOptions{})
	r, err := repo.Open(ctx, st, []byte(repotest.Password), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.bin"), testutil.RandomBytes(1<<20, 7), 0o644)
	p := &countingProgress{}
	start := time.Now()
	if _, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h", Progress: p, Interval: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	p.mu.Lock()
	defer p.mu.Unlock()
	// the upload takes ≥ 600 ms: at one report per 20 ms, well over 10 of them
	if len(p.reports) < 10 {
		t.Fatalf("%d progress reports during a %s backup whose pack upload took 600 ms, want one every 20 ms", len(p.reports), took.Round(time.Millisecond))
	}
}
