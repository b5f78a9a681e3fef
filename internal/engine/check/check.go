// Package check verifies a repository: that its index, packs and snapshot trees agree
// (structure), and optionally that the stored bytes still decrypt to what their ids say
// (data). It lives apart from repo because it walks trees, and snapshot imports repo.
package check

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path"
	"sort"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
)

// Options choose how much a check reads; the zero value checks the structure only.
type Options struct {
	// ReadData downloads every pack and verifies every blob in it.
	ReadData bool
	// ReadDataPercent, when ReadData is false and it is above 0, reads a random subset of
	// this percentage of the packs (at least one): random rather than fixed, so repeated
	// partial checks cover the whole repository over time.
	ReadDataPercent float64
	// Rand picks the subset (nil: a fresh random source); tests fix it.
	Rand *rand.Rand
	// DamagedIndex are the index files that the load of r's index left out because their
	// content is damaged (repo.LoadIndexSkipDamaged): each is a problem, and the blobs
	// only they listed show as missing, their packs as unreferenced.
	DamagedIndex []*repo.IndexFileError
}

// Problem kinds.
const (
	KindDamagedIndex = "damaged index"       // an index file does not match its name, decrypt or parse
	KindMissingPack  = "missing pack"        // an index lists a pack that storage does not have
	KindPackSize     = "pack size"           // the stored pack's size differs from its index entry
	KindDamagedPack  = "damaged pack"        // the pack's bytes do not hash to its name
	KindDamagedBlob  = "damaged blob"        // a blob does not decrypt or match its id
	KindMissingBlob  = "missing blob"        // a tree references a blob no index lists
	KindTree         = "unreadable tree"     // a tree cannot be loaded or parsed
	KindSnapshotRead = "unreadable snapshot" // a snapshot object cannot be read
)

// FileRef is a path in a snapshot that a problem affects.
type FileRef struct {
	Snapshot string `json:"snapshot"`
	Path     string `json:"path"`
}

// Problem is one fault found, with what it affects.
type Problem struct {
	Kind string `json:"kind"`
	// Index is the damaged index file's key (KindDamagedIndex).
	Index string `json:"index,omitempty"`
	Pack  string `json:"pack,omitempty"`
	Blob  string `json:"blob,omitempty"`
	Error string `json:"error"`
	// Files are the files (and, for trees, directories) of snapshots that lose content
	// because of the problem; empty when no snapshot references what is broken.
	Files []FileRef `json:"files"`
}

// Result is what a check found.
type Result struct {
	Snapshots int `json:"snapshots"`
	Packs     int `json:"packs"`
	Blobs     int `json:"blobs"`
	// PacksRead is how many packs were downloaded and verified (0 without read-data).
	PacksRead int `json:"packs_read"`
	// Unreferenced are stored packs that no index lists: left by an interrupted backup or
	// prune, harmless, and removed by prune.
	Unreferenced []string  `json:"unreferenced"`
	Problems     []Problem `json:"problems"`
}

// OK reports whether the check found no problem.
func (res *Result) OK() bool { return len(res.Problems) == 0 }

// checker gathers problems; badBlobs maps a blob to the problem its files are added to.
type checker struct {
	r        *repo.Repository
	res      *Result
	badBlobs map[crypto.ID]int // -> index in res.Problems
	// clean records trees whose whole subtree was found free of problems, so a tree that
	// many snapshots share is walked once, and again only to name a problem's files.
	clean map[crypto.ID]bool
	seen  map[int]map[FileRef]bool
}

// Run checks r, whose index must be loaded. An error means the check itself could not run
// (storage unreachable, context cancelled); faults in the repository are Result.Problems.
func Run(ctx context.Context, r *repo.Repository, opts Options) (*Result, error) {
	c := &checker{r: r, res: &Result{Unreferenced: []string{}, Problems: []Problem{}}, badBlobs: map[crypto.ID]int{},
		clean: map[crypto.ID]bool{}, seen: map[int]map[FileRef]bool{}}
	for _, d := range opts.DamagedIndex {
		c.res.Problems = append(c.res.Problems, Problem{Kind: KindDamagedIndex, Index: d.Name, Error: d.Err.Error() +
			"; left out of the index: the blobs only it listed show as missing, its packs as in no index", Files: []FileRef{}})
	}
	indexed := r.IndexedPacks()
	stored, err := r.StoredPacks(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[crypto.ID]repo.StoredPack, len(stored))
	for _, s := range stored {
		byID[s.ID] = s
	}
	c.res.Packs = len(indexed)
	var present []repo.IndexedPack
	inIndex := make(map[crypto.ID]bool, len(indexed))
	for _, p := range indexed {
		inIndex[p.ID] = true
		c.res.Blobs += len(p.Blobs)
		s, ok := byID[p.ID]
		switch {
		case !ok:
			c.packProblem(p, KindMissingPack, "the index lists it, storage does not have it")
		case s.Size != p.Size:
			c.packProblem(p, KindPackSize, fmt.Sprintf("stored size %d, the index says %d", s.Size, p.Size))
		default:
			present = append(present, p)
		}
	}
	for _, s := range stored {
		if !inIndex[s.ID] {
			c.res.Unreferenced = append(c.res.Unreferenced, s.Key)
		}
	}
	sort.Strings(c.res.Unreferenced)

	if toRead := c.pickPacks(present, len(indexed), opts); len(toRead) > 0 {
		if err := c.readData(ctx, toRead, byID); err != nil {
			return nil, err
		}
	}

	sns, err := c.snapshots(ctx)
	if err != nil {
		return nil, err
	}
	c.res.Snapshots = len(sns)
	for _, sn := range sns {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c.walk(ctx, sn.ID.String(), "/", sn.Tree)
	}
	return c.res, nil
}

// snapshots loads every snapshot one by one, so a damaged one is a problem, not the end
// of the check.
func (c *checker) snapshots(ctx context.Context) ([]*repo.Snapshot, error) {
	ids, err := c.r.SnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	var out []*repo.Snapshot
	for _, id := range ids {
		sn, err := c.r.LoadSnapshot(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c.res.Problems = append(c.res.Problems, Problem{Kind: KindSnapshotRead, Error: err.Error(),
				Files: []FileRef{{Snapshot: id.String(), Path: "/"}}})
			continue
		}
		out = append(out, sn)
	}
	return out, nil
}

func (c *checker) packProblem(p repo.IndexedPack, kind, msg string) {
	c.res.Problems = append(c.res.Problems, Problem{Kind: kind, Pack: p.ID.String(), Error: msg, Files: []FileRef{}})
	for _, b := range p.Blobs {
		c.badBlobs[b.ID] = len(c.res.Problems) - 1
	}
}

// pickPacks takes the percentage of all indexed packs (total), from those present: the
// missing ones are reported already and cannot be read.
func (c *checker) pickPacks(present []repo.IndexedPack, total int, opts Options) []repo.IndexedPack {
	if opts.ReadData {
		return present
	}
	if opts.ReadDataPercent <= 0 || len(present) == 0 {
		return nil
	}
	n := min(len(present), int(math.Ceil(float64(total)*math.Min(opts.ReadDataPercent, 100)/100)))
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	picked := append([]repo.IndexedPack(nil), present...)
	rnd.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
	return picked[:n]
}

// readData downloads each pack, checks that it hashes to its name, and decodes every blob
// the index places in it. A pack that fails the hash but whose blobs all decode is
// reported too: its header (which only prune reads) is damaged.
func (c *checker) readData(ctx context.Context, packs []repo.IndexedPack, stored map[crypto.ID]repo.StoredPack) error {
	for _, p := range packs {
		data, err := c.r.ReadPack(ctx, stored[p.ID].Type, p.ID)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.packProblem(p, KindMissingPack, err.Error())
			continue
		}
		c.res.PacksRead++
		damagedBlobs := 0
		for _, b := range p.Blobs {
			end := int64(b.Offset) + int64(b.Length)
			var derr error
			if end > int64(len(data)) {
				derr = fmt.Errorf("blob %s ends at %d, past the end of pack %s (%d bytes)", b.ID.Short(), end, p.ID.Short(), len(data))
			} else {
				_, derr = c.r.DecodeBlob(b.ID, b.Entry, data[b.Offset:end], nil)
			}
			if derr != nil {
				damagedBlobs++
				c.res.Problems = append(c.res.Problems, Problem{Kind: KindDamagedBlob, Pack: p.ID.String(), Blob: b.ID.String(),
					Error: derr.Error(), Files: []FileRef{}})
				c.badBlobs[b.ID] = len(c.res.Problems) - 1
			}
		}
		if c.r.Hashing().Sum(data) != p.ID && damagedBlobs == 0 {
			c.res.Problems = append(c.res.Problems, Problem{Kind: KindDamagedPack, Pack: p.ID.String(),
				Error: "the pack's content does not hash to its name, though every blob in it verifies: its header is damaged", Files: []FileRef{}})
		}
	}
	return nil
}

func (c *checker) affect(pi int, snap, p string) {
	ref := FileRef{Snapshot: snap, Path: p}
	if c.seen[pi] == nil {
		c.seen[pi] = map[FileRef]bool{}
	}
	if !c.seen[pi][ref] {
		c.seen[pi][ref] = true
		c.res.Problems[pi].Files = append(c.res.Problems[pi].Files, ref)
	}
}

// blobProblem returns the problem of a blob that a tree references, recording one the
// first time a blob is found missing from the index; false: the blob is sound.
func (c *checker) blobProblem(id crypto.ID, kind string) (int, bool) {
	if pi, ok := c.badBlobs[id]; ok {
		return pi, true
	}
	if c.r.Has(id) {
		return 0, false
	}
	c.res.Problems = append(c.res.Problems, Problem{Kind: KindMissingBlob, Blob: id.String(),
		Error: fmt.Sprintf("%s blob referenced by a tree, in no index", kind), Files: []FileRef{}})
	c.badBlobs[id] = len(c.res.Problems) - 1
	return len(c.res.Problems) - 1, true
}

// walk checks the tree id at dir of snapshot snap and everything below it, and reports
// whether all of it is sound. Trees are decoded here rather than with snapshot.Walk,
// which stops at the first unreadable tree: a check goes on to the rest.
func (c *checker) walk(ctx context.Context, snap, dir string, id crypto.ID) bool {
	if c.clean[id] || ctx.Err() != nil {
		return true
	}
	if pi, bad := c.blobProblem(id, "tree"); bad {
		c.affect(pi, snap, dir)
		return false
	}
	raw, err := c.r.LoadBlob(ctx, id, nil)
	var t snapshot.Tree
	if err == nil {
		err = json.Unmarshal(raw, &t)
	}
	if err != nil {
		if ctx.Err() != nil {
			return true
		}
		e, _ := c.r.Lookup(id)
		c.res.Problems = append(c.res.Problems, Problem{Kind: KindTree, Pack: e.Pack.String(), Blob: id.String(), Error: err.Error(), Files: []FileRef{}})
		c.badBlobs[id] = len(c.res.Problems) - 1
		c.affect(len(c.res.Problems)-1, snap, dir)
		return false
	}
	ok := true
	for _, n := range t.Nodes {
		p := path.Join(dir, n.FileName())
		switch {
		case n.Type == snapshot.TypeDir && n.Subtree != nil:
			if !c.walk(ctx, snap, p, *n.Subtree) {
				ok = false
			}
		case n.Type == snapshot.TypeDir:
			c.res.Problems = append(c.res.Problems, Problem{Kind: KindTree, Blob: id.String(), Error: "directory without a subtree",
				Files: []FileRef{{Snapshot: snap, Path: p}}})
			ok = false
		}
		for _, b := range n.Content {
			if pi, bad := c.blobProblem(b, "data"); bad {
				c.affect(pi, snap, p)
				ok = false
			}
		}
	}
	if ok {
		c.clean[id] = true
	}
	return ok
}
