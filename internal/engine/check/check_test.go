package check_test

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/check"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// fixture is a repository with two snapshots: the first of a.txt, the second of a.txt
// and sub/c.txt, whose content is new and so goes into a data pack of its own.
type fixture struct {
	st      *store.Store
	snap1   string
	snap2   string
	packA   crypto.ID // holds a.txt's content
	packC   crypto.ID // holds c.txt's content
	blobA   repo.Entry
	blobAID crypto.ID
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	r, st := repotest.New(t, repo.InitOptions{})
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte(strings.Repeat("alpha ", 1000)), 0o644)
	sn1, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "c.txt"), []byte(strings.Repeat("gamma ", 1000)), 0o644)
	sn2, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{st: st, snap1: sn1.ID.String(), snap2: sn2.ID.String()}
	r = repotest.Reopen(t, st)
	err = snapshot.Walk(ctx, r, sn2.Tree, func(p string, n *snapshot.Node) error {
		if len(n.Content) == 0 {
			return nil
		}
		e, _ := r.Lookup(n.Content[0])
		switch n.Name {
		case "a.txt":
			f.packA, f.blobA, f.blobAID = e.Pack, e, n.Content[0]
		case "c.txt":
			f.packC = e.Pack
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.packA == f.packC || f.packA.IsNull() || f.packC.IsNull() {
		t.Fatalf("fixture: want a.txt and c.txt in different packs, got %s and %s", f.packA.Short(), f.packC.Short())
	}
	return f
}

func runCheck(t *testing.T, st *store.Store, opts check.Options) *check.Result {
	t.Helper()
	res, err := check.Run(context.Background(), repotest.Reopen(t, st), opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// files renders a problem's files as "snapshot-prefix:path-suffix" for comparison.
func files(f fixture, p check.Problem) map[string]bool {
	out := map[string]bool{}
	for _, r := range p.Files {
		name := "snap1"
		if r.Snapshot == f.snap2 {
			name = "snap2"
		}
		out[name+":"+filepath.Base(r.Path)] = true
	}
	return out
}

func TestCheckSoundRepository(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		opts check.Options
	}{
		{"structure", check.Options{}},
		{"read-data", check.Options{ReadData: true}},
		{"subset 50%", check.Options{ReadDataPercent: 50, Rand: rand.New(rand.NewPCG(1, 2))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCheck(t, f.st, tc.opts)
			if !res.OK() {
				t.Fatalf("problems in a sound repository: %+v", res.Problems)
			}
			if res.Snapshots != 2 || res.Packs < 3 || len(res.Unreferenced) != 0 {
				t.Errorf("result %+v", res)
			}
			if tc.opts.ReadData && res.PacksRead != res.Packs {
				t.Errorf("read-data read %d of %d packs", res.PacksRead, res.Packs)
			}
			if tc.opts.ReadDataPercent == 50 && res.PacksRead != (res.Packs+1)/2 {
				t.Errorf("50%% read %d of %d packs", res.PacksRead, res.Packs)
			}
		})
	}
}

func TestCheckMissingPack(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.st.Delete(ctx, repo.PackKey(repo.DataBlob, f.packC)); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []check.Options{{}, {ReadData: true}} {
		res := runCheck(t, f.st, opts)
		if len(res.Problems) != 1 {
			t.Fatalf("read-data=%v: want one problem, got %+v", opts.ReadData, res.Problems)
		}
		p := res.Problems[0]
		if p.Kind != check.KindMissingPack || p.Pack != f.packC.String() {
			t.Errorf("problem %+v", p)
		}
		if got := files(f, p); len(got) != 1 || !got["snap2:c.txt"] {
			t.Errorf("affected files %v, want snap2:c.txt only", got)
		}
	}
}

func TestCheckDamagedBlob(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	key := repo.PackKey(repo.DataBlob, f.packA)
	data, err := f.st.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	data[f.blobA.Offset+f.blobA.Length/2] ^= 0x40
	if err := f.st.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := f.st.PutIfAbsent(ctx, key, data); err != nil {
		t.Fatal(err)
	}
	if res := runCheck(t, f.st, check.Options{}); !res.OK() {
		t.Fatalf("the structure check reads no data, yet found %+v", res.Problems)
	}
	readData := runCheck(t, f.st, check.Options{ReadData: true})
	subset := runCheck(t, f.st, check.Options{ReadDataPercent: 100})
	for name, res := range map[string]*check.Result{"read-data": readData, "subset 100%": subset} {
		if len(res.Problems) != 1 {
			t.Fatalf("%s: want one problem, got %+v", name, res.Problems)
		}
		p := res.Problems[0]
		if p.Kind != check.KindDamagedBlob || p.Blob != f.blobAID.String() || p.Pack != f.packA.String() {
			t.Errorf("%s: problem %+v", name, p)
		}
		if got := files(f, p); len(got) != 2 || !got["snap1:a.txt"] || !got["snap2:a.txt"] {
			t.Errorf("%s: affected files %v, want a.txt in both snapshots", name, got)
		}
		if res.PacksRead != res.Packs {
			t.Errorf("%s: read %d of %d packs", name, res.PacksRead, res.Packs)
		}
	}
}

func TestCheckUnreferencedPackIsNoProblem(t *testing.T) {
	f := newFixture(t)
	key := repo.PackKey(repo.DataBlob, crypto.ID(sha256.Sum256([]byte("stray"))))
	if err := f.st.PutIfAbsent(context.Background(), key, []byte("stray")); err != nil {
		t.Fatal(err)
	}
	res := runCheck(t, f.st, check.Options{ReadData: true})
	if !res.OK() || len(res.Unreferenced) != 1 || res.Unreferenced[0] != key {
		t.Errorf("problems %+v, unreferenced %q", res.Problems, res.Unreferenced)
	}
}
