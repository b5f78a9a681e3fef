package repo_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// An index file is written once its packs hold IndexMaxBlobs blobs, not only every
// IndexEvery packs: packs of small files hold thousands of blobs each, and a backup
// of a million files kept (and encoded) the index of every one of them in memory to
// write a single file at the end.
func TestIndexFilesAreBoundedByBlobs(t *testing.T) {
	ctx := context.Background()
	st := repotest.NewStore(t)
	repotest.Init(t, st, repo.InitOptions{PackSize: 4 << 10})
	const maxBlobs, blobs = 100, 1000
	r := repotest.OpenWith(t, st, repo.Options{IndexMaxBlobs: maxBlobs})
	for i := range blobs {
		if _, _, err := r.SaveBlob(ctx, repo.DataBlob, fmt.Appendf(nil, "blob %d of a small file %0100d", i, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var files int
	if err := st.List(ctx, "index/", func(store.Object) error { files++; return nil }); err != nil {
		t.Fatal(err)
	}
	// each file may exceed the bound by the blobs of its last pack (4 KiB: < 40)
	if min := blobs / (maxBlobs + 40); files < min {
		t.Errorf("%d index files for %d blobs, want at least %d (at most about %d blobs each)", files, blobs, min, maxBlobs)
	}
	r2 := repotest.Reopen(t, st)
	var indexed int
	for _, p := range r2.IndexedPacks() {
		indexed += len(p.Blobs)
	}
	if indexed != blobs {
		t.Errorf("the index files list %d blobs, want %d", indexed, blobs)
	}
}
