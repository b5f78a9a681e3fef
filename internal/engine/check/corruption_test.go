package check_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/check"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/chunker"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/testutil"
)

// The kinds of damage done to a repository.
const (
	flipPackData   = "flip bytes in a pack's blobs"
	flipPackHeader = "flip bytes in a pack's header"
	deletePack     = "delete a pack"
	truncateIndex  = "truncate an index file"
	flipSnapshot   = "flip a byte in a snapshot file"
	truncSnapshot  = "truncate a snapshot file"
)

var corruptionKinds = []string{flipPackData, flipPackHeader, deletePack, truncateIndex, flipSnapshot, truncSnapshot}

// TestCorruptionIsFoundAndContained damages a repository of three snapshots in one way
// at a time, at random (seeded) places, and requires: check finds every damage and names
// exactly what it affects (the files and directories of each snapshot that lose content,
// the damaged index file, the damaged snapshot); restoring an affected snapshot fails
// with an error naming an affected path; restoring it without the affected paths, and
// restoring every unaffected snapshot, gives back exactly what was backed up.
func TestCorruptionIsFoundAndContained(t *testing.T) {
	trials := testutil.Pick(60, 1200)
	fx := newCorruptionFixture(t)
	rnd := rand.New(rand.NewPCG(2026, 11))
	found := map[string]int{}
	tried := map[string]int{}
	trees := 0
	for i := range trials {
		kind := corruptionKinds[i%len(corruptionKinds)]
		tried[kind]++
		ok, tree := fx.trial(t, rnd, i, kind)
		if ok {
			found[kind]++
		}
		if tree {
			trees++
		}
	}
	if trees == 0 {
		t.Error("no corruption hit a directory listing (tree)")
	}
	var lines []string
	for _, k := range corruptionKinds {
		lines = append(lines, fmt.Sprintf("  %-32s %d/%d found and named (%.0f%%)", k+":", found[k], tried[k], 100*float64(found[k])/float64(tried[k])))
	}
	fmt.Printf("corruptions tried: %d, check found and named: %d (%d of them lost directory listings)\n%s\n", trials, sum(found), trees, strings.Join(lines, "\n"))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

type corruptionFixture struct {
	src     string
	objects map[string][]byte // every object of the pristine repository
	r       *repo.Repository  // over a pristine copy: the reference
	snaps   []*repo.Snapshot
	want    map[string]map[string]string // snapshot id -> manifest of the source then
}

func newCorruptionFixture(t *testing.T) *corruptionFixture {
	t.Helper()
	ctx := context.Background()
	// small packs and chunks: a few hundred KiB make many packs, so damage to one
	// affects some files and not others
	r, st := repotest.New(t, repo.InitOptions{PackSize: 64 << 10, Chunker: chunker.Params{MinSize: 4 << 10, AvgSize: 16 << 10, MaxSize: 64 << 10}})
	fx := &corruptionFixture{src: filepath.Join(t.TempDir(), "src"), objects: map[string][]byte{}, want: map[string]map[string]string{}}
	rnd := rand.New(rand.NewPCG(7, 7))
	write := func(rel string, b []byte) {
		p := filepath.Join(fx.src, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	for d := range 4 {
		for f := range 12 {
			write(fmt.Sprintf("d%d/f%02d.txt", d, f), []byte(strings.Repeat(fmt.Sprintf("file %d/%d line\n", d, f), 20+rnd.IntN(200))))
		}
	}
	for i := range 3 {
		write(fmt.Sprintf("big/b%d.bin", i), randBytes(100<<10+rnd.IntN(200<<10)))
	}
	for s := range 3 {
		if s > 0 { // each snapshot changes some files: old versions stay in the older ones
			for range 6 {
				write(fmt.Sprintf("d%d/f%02d.txt", rnd.IntN(4), rnd.IntN(12)), []byte(fmt.Sprintf("version %d %x\n", s, rnd.Uint64())))
			}
			write(fmt.Sprintf("big/b%d.bin", s), randBytes(150<<10))
			write(fmt.Sprintf("new%d/n.txt", s), randBytes(20<<10))
		}
		sn, err := snapshot.Backup(ctx, r, []string{fx.src}, snapshot.BackupOptions{Host: "h"})
		if err != nil {
			t.Fatal(err)
		}
		m, err := testutil.TreeManifest(fx.src)
		if err != nil {
			t.Fatal(err)
		}
		fx.want[sn.ID.String()] = m
	}
	err := st.List(ctx, "", func(o store.Object) error {
		b, err := st.Get(ctx, o.Key)
		fx.objects[o.Key] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	fx.r = repotest.Reopen(t, fx.copy(t))
	if fx.snaps, err = fx.r.Snapshots(ctx); err != nil || len(fx.snaps) != 3 {
		t.Fatalf("fixture: %d snapshots, %v", len(fx.snaps), err)
	}
	return fx
}

// copy returns a new in-memory store holding the pristine repository.
func (fx *corruptionFixture) copy(t *testing.T) *store.Store {
	st := repotest.NewStore(t)
	for k, b := range fx.objects {
		if err := st.PutIfAbsent(context.Background(), k, b); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func (fx *corruptionFixture) keys(prefix string) []string {
	var out []string
	for k := range fx.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// damage is what one corruption did and what it must be found to affect.
type damage struct {
	what     string
	pack     string // the damaged or deleted pack's id
	index    string // the truncated index file's key
	snapshot string // the damaged snapshot's id
	lost     map[crypto.ID]bool
	// noFiles: the damage loses no content (a pack header, which only prune reads)
	noFiles bool
}

func replace(t *testing.T, st *store.Store, key string, b []byte) {
	t.Helper()
	ctx := context.Background()
	if err := st.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if b != nil {
		if err := st.PutIfAbsent(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
}

// corrupt damages a fresh copy of the repository in one way of kind.
func (fx *corruptionFixture) corrupt(t *testing.T, rnd *rand.Rand, kind string) (*store.Store, damage) {
	st := fx.copy(t)
	d := damage{lost: map[crypto.ID]bool{}}
	pick := func(keys []string) string { return keys[rnd.IntN(len(keys))] }
	switch kind {
	case flipPackData, flipPackHeader, deletePack:
		// a third of the time a pack of directory listings (trees), else of file data
		wantType := repo.DataBlob
		if rnd.IntN(3) == 0 {
			wantType = repo.TreeBlob
		}
		var packs []repo.IndexedPack
		for _, p := range fx.r.IndexedPacks() {
			if len(p.Blobs) > 0 && p.Blobs[0].Type == wantType {
				packs = append(packs, p)
			}
		}
		p := packs[rnd.IntN(len(packs))]
		key := repo.PackKey(p.Blobs[0].Type, p.ID)
		d.pack = p.ID.String()
		b := append([]byte(nil), fx.objects[key]...)
		blobsEnd := 0
		for _, bl := range p.Blobs {
			blobsEnd = max(blobsEnd, int(bl.Offset+bl.Length))
		}
		switch kind {
		case deletePack:
			d.what = "deleted " + key
			replace(t, st, key, nil)
			for _, bl := range p.Blobs {
				d.lost[bl.ID] = true
			}
		case flipPackData:
			n := 1 + rnd.IntN(3)
			var at []int
			for range n {
				pos := rnd.IntN(blobsEnd)
				b[pos] ^= byte(1 + rnd.IntN(255))
				at = append(at, pos)
				for _, bl := range p.Blobs {
					if pos >= int(bl.Offset) && pos < int(bl.Offset+bl.Length) {
						d.lost[bl.ID] = true
					}
				}
			}
			d.what = fmt.Sprintf("flipped bytes at %v of %s (%d bytes of blobs)", at, key, blobsEnd)
			replace(t, st, key, b)
		case flipPackHeader:
			pos := blobsEnd + rnd.IntN(len(b)-blobsEnd)
			b[pos] ^= byte(1 + rnd.IntN(255))
			d.what = fmt.Sprintf("flipped the byte at %d of %s (header from %d)", pos, key, blobsEnd)
			d.noFiles = true
			replace(t, st, key, b)
		}
	case truncateIndex:
		key := pick(fx.keys("index/"))
		n := rnd.IntN(len(fx.objects[key]))
		d.what, d.index = fmt.Sprintf("truncated %s to %d of %d bytes", key, n, len(fx.objects[key])), key
		replace(t, st, key, fx.objects[key][:n])
	case flipSnapshot, truncSnapshot:
		key := pick(fx.keys("snapshots/"))
		b := append([]byte(nil), fx.objects[key]...)
		if kind == flipSnapshot {
			pos := rnd.IntN(len(b))
			b[pos] ^= byte(1 + rnd.IntN(255))
			d.what = fmt.Sprintf("flipped the byte at %d of %s", pos, key)
		} else {
			b = b[:rnd.IntN(len(b))]
			d.what = fmt.Sprintf("truncated %s to %d bytes", key, len(b))
		}
		d.snapshot = strings.TrimPrefix(key, "snapshots/")
		d.noFiles = true
		replace(t, st, key, b)
	}
	return st, d
}

// affected is what a reader of the snapshots who cannot read the lost blobs loses: the
// files with a lost blob, and the directories whose listing is lost (what is below
// them cannot even be named). It walks the pristine repository.
func (fx *corruptionFixture) affected(t *testing.T, lost map[crypto.ID]bool) map[check.FileRef]bool {
	out := map[check.FileRef]bool{}
	var walk func(snap, dir string, id crypto.ID)
	walk = func(snap, dir string, id crypto.ID) {
		if lost[id] {
			out[check.FileRef{Snapshot: snap, Path: dir}] = true
			return
		}
		raw, err := fx.r.LoadBlob(context.Background(), id, nil)
		if err != nil {
			t.Fatal(err)
		}
		var tr snapshot.Tree
		if err := json.Unmarshal(raw, &tr); err != nil {
			t.Fatal(err)
		}
		for _, n := range tr.Nodes {
			p := path.Join(dir, n.FileName())
			if n.Type == snapshot.TypeDir {
				walk(snap, p, *n.Subtree)
			}
			for _, b := range n.Content {
				if lost[b] {
					out[check.FileRef{Snapshot: snap, Path: p}] = true
				}
			}
		}
	}
	for _, sn := range fx.snaps {
		walk(sn.ID.String(), "/", sn.Tree)
	}
	return out
}

// trial does one corruption and reports whether check found it and named exactly what
// it affects, and whether a directory listing (tree) was lost; restores are checked
// too, and any failure fails the test.
func (fx *corruptionFixture) trial(t *testing.T, rnd *rand.Rand, i int, kind string) (ok, tree bool) {
	ctx := context.Background()
	st, d := fx.corrupt(t, rnd, kind)
	r, err := repo.Open(ctx, st, []byte(repotest.Password), repo.Options{})
	if err != nil {
		t.Fatalf("trial %d (%s): open: %v", i, d.what, err)
	}
	damagedIdx, err := r.LoadIndexSkipDamaged(ctx)
	if err != nil {
		t.Errorf("trial %d (%s): load the index: %v", i, d.what, err)
		return false, false
	}
	if d.index != "" {
		// the blobs only the damaged index listed are lost
		for _, p := range fx.r.IndexedPacks() {
			for _, b := range p.Blobs {
				if !r.Has(b.ID) {
					d.lost[b.ID] = true
				}
			}
		}
	}
	res, err := check.Run(ctx, r, check.Options{ReadData: true, DamagedIndex: damagedIdx})
	if err != nil {
		t.Errorf("trial %d (%s): check: %v", i, d.what, err)
		return false, false
	}
	ok = fx.judgeCheck(t, i, d, res)
	fx.judgeRestore(t, i, d, r)
	for id := range d.lost {
		if e, _ := fx.r.Lookup(id); e.Type == repo.TreeBlob {
			tree = true
		}
	}
	return ok, tree
}

func (fx *corruptionFixture) judgeCheck(t *testing.T, i int, d damage, res *check.Result) bool {
	fail := func(format string, a ...any) bool {
		t.Errorf("trial %d (%s): "+format, append([]any{i, d.what}, a...)...)
		return false
	}
	if res.OK() {
		return fail("check found nothing")
	}
	named := false
	got := map[check.FileRef]bool{}
	for _, p := range res.Problems {
		switch {
		case d.pack != "" && p.Pack == d.pack,
			d.index != "" && p.Kind == check.KindDamagedIndex && p.Index == d.index,
			d.snapshot != "" && p.Kind == check.KindSnapshotRead && len(p.Files) == 1 && p.Files[0].Snapshot == d.snapshot:
			named = true
		}
		for _, f := range p.Files {
			got[f] = true
		}
	}
	if !named {
		return fail("no problem names the damaged object; problems: %+v", res.Problems)
	}
	want := fx.affected(t, d.lost)
	if d.snapshot != "" {
		want = map[check.FileRef]bool{{Snapshot: d.snapshot, Path: "/"}: true}
	}
	if d.noFiles && d.snapshot == "" {
		want = map[check.FileRef]bool{}
	}
	if !sameRefs(want, got) {
		return fail("check names %v as affected, want %v", refList(got), refList(want))
	}
	return true
}

// judgeRestore restores each snapshot: an unaffected one whole; an affected one whole
// (it must fail naming an affected path) and then without its affected paths (the rest
// must come back exactly).
func (fx *corruptionFixture) judgeRestore(t *testing.T, i int, d damage, r *repo.Repository) {
	ctx := context.Background()
	affected := fx.affected(t, d.lost)
	for _, pristine := range fx.snaps {
		id := pristine.ID.String()
		sn, err := r.LoadSnapshot(ctx, pristine.ID)
		if id == d.snapshot {
			if err == nil {
				t.Errorf("trial %d (%s): the damaged snapshot loads", i, d.what)
			} else if !strings.Contains(err.Error(), pristine.ID.Short()) {
				t.Errorf("trial %d (%s): loading the damaged snapshot fails without naming it: %v", i, d.what, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("trial %d (%s): snapshot %s does not load: %v", i, d.what, pristine.ID.Short(), err)
			continue
		}
		var paths []string
		for ref := range affected {
			if ref.Snapshot == id {
				paths = append(paths, ref.Path)
			}
		}
		sort.Strings(paths)
		target := filepath.Join(t.TempDir(), "t")
		_, err = snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target})
		if len(paths) == 0 {
			if err != nil {
				t.Errorf("trial %d (%s): snapshot %s, unaffected, does not restore: %v", i, d.what, sn.ID.Short(), err)
			} else {
				fx.compare(t, i, d, sn, target, nil)
			}
			os.RemoveAll(target)
			continue
		}
		if os.Getenv("DEBUG_CORRUPTION") != "" {
			t.Logf("trial %d (%s): %v: %v", i, d.what, paths, err)
		}
		if err == nil {
			t.Errorf("trial %d (%s): snapshot %s restores though %v are lost", i, d.what, sn.ID.Short(), paths)
		} else if !namesOne(err.Error(), sn.ID.Short(), paths) {
			t.Errorf("trial %d (%s): restore of snapshot %s fails without naming one of %v: %v", i, d.what, sn.ID.Short(), paths, err)
		}
		os.RemoveAll(target)
		if paths[0] == "/" {
			continue // the whole snapshot is lost
		}
		if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Excludes: paths}); err != nil {
			t.Errorf("trial %d (%s): snapshot %s without %v does not restore: %v", i, d.what, sn.ID.Short(), paths, err)
		} else {
			fx.compare(t, i, d, sn, target, paths)
		}
		os.RemoveAll(target)
	}
}

// compare requires the restore in target to equal the snapshot's source, but for the
// excluded paths and what is below them.
func (fx *corruptionFixture) compare(t *testing.T, i int, d damage, sn *repo.Snapshot, target string, excluded []string) {
	got, err := testutil.TreeManifest(filepath.Join(target, fx.src))
	if errors.Is(err, fs.ErrNotExist) {
		got, err = map[string]string{}, nil // a directory above the source was excluded
	}
	if err != nil {
		t.Errorf("trial %d (%s): %v", i, d.what, err)
		return
	}
	want := map[string]string{}
	for rel, v := range fx.want[sn.ID.String()] {
		full := path.Join(fx.src, rel)
		keep := true
		for _, x := range excluded {
			if full == x || strings.HasPrefix(full, x+"/") {
				keep = false
			}
		}
		if keep {
			want[rel] = v
		}
	}
	for rel, v := range got {
		if strings.HasPrefix(v, "dir") { // directories kept to hold excluded entries
			if _, ok := want[rel]; !ok {
				delete(got, rel)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("trial %d (%s): snapshot %s restored %d entries, want %d", i, d.what, sn.ID.Short(), len(got), len(want))
		return
	}
	for rel, w := range want {
		if got[rel] != w {
			t.Errorf("trial %d (%s): snapshot %s restored %s as %q, want %q", i, d.what, sn.ID.Short(), rel, got[rel], w)
		}
	}
}

// namesOne reports whether msg names one of paths (relative to the target, as restore
// names them), or the snapshot when its root directory is what is lost.
func namesOne(msg, snap string, paths []string) bool {
	for _, p := range paths {
		if p == "/" && strings.Contains(msg, snap) || p != "/" && strings.Contains(msg, strings.TrimPrefix(p, "/")) {
			return true
		}
	}
	return false
}

func sameRefs(a, b map[check.FileRef]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func refList(m map[check.FileRef]bool) []string {
	var out []string
	for r := range m {
		out = append(out, r.Snapshot[:8]+":"+r.Path)
	}
	sort.Strings(out)
	return out
}
