package snapshot_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/check"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/testutil"

	_ "gocloud.dev/blob/fileblob"
)

// TestFormatVersion1Repository: testdata/format-v1/repo was written by the last program
// of format version 1 (SHA-256 ids and names; `stash-job init` and `backup --host host-0
// --tag v1` of /tmp/stash-format-v1/source, password in testdata/format-v1/password).
// This program opens it, restores it bit for bit, checks it clean, and backs up into it
// without changing its format, so a version-1 program can still read everything.
func TestFormatVersion1Repository(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/format-v1/repo")); err != nil {
		t.Fatal(err)
	}
	password, err := repo.ReadPassword("testdata/format-v1/password")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, "file://"+dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	open := func() *repo.Repository {
		t.Helper()
		r, err := repo.Open(ctx, st, password, repo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.LoadIndex(ctx); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open()
	if v, h := r.Config().Version, r.Hashing().Name(); v != 1 || h != crypto.SHA256 {
		t.Fatalf("version %d, hash %s: want 1, sha256", v, h)
	}

	want := map[string]string{
		".":         "dir 755",
		"a.txt":     "file 644 394523 43b24bd719caa0479c3a0f80bc1e604f9c34d8c4d81dd9d77e66c0085119c4bf",
		"link":      "link a.txt",
		"sub":       "dir 755",
		"sub/b.bin": "file 640 65536 1e55674b54698279f0ce55065ba67ce18bc838446c3d5e5e6e8dfe3b4af579b3",
	}
	sn, err := r.FindSnapshot(ctx, "latest", repo.Filter{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Path: sn.Paths[0], StripPath: true}); err != nil {
		t.Fatal(err)
	}
	if d := testutil.DiffTrees(want, testutil.TreeDigest(t, target)); d != "" {
		t.Fatalf("restored from the version-1 repository:\n%s", d)
	}

	// A backup into it writes version-1 objects: the config is untouched and every new
	// pack, index file and snapshot is named by the SHA-256 of its bytes (the manifest's
	// last field).
	before := testutil.TreeDigest(t, dir)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "new.txt"), []byte(strings.Repeat("written by format 2's program\n", 5000)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "host-1"}); err != nil {
		t.Fatal(err)
	}
	added := 0
	for name, entry := range testutil.TreeDigest(t, dir) {
		if _, ok := before[name]; ok || !strings.HasPrefix(entry, "file ") || strings.HasPrefix(name, "locks/") {
			continue
		}
		added++
		if fields := strings.Fields(entry); fields[len(fields)-1] != filepath.Base(name) {
			t.Errorf("%s: not named by the SHA-256 of its bytes (%s)", name, entry)
		}
	}
	if added < 4 { // a data pack, a tree pack, an index file, a snapshot
		t.Errorf("the backup added %d objects, want at least 4", added)
	}
	r = open()
	if v, h := r.Config().Version, r.Hashing().Name(); v != 1 || h != crypto.SHA256 {
		t.Fatalf("after a backup: version %d, hash %s", v, h)
	}
	res, err := check.Run(ctx, r, check.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Snapshots != 2 {
		t.Fatalf("check --read-data: %d snapshots, problems %+v", res.Snapshots, res.Problems)
	}
}
