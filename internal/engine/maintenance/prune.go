package maintenance

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crashpoint"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
)

// DefaultMaxUnusedPercent: a pack whose
// unused bytes are at most this share is kept as it is, since rewriting 90 % of a pack to
// free 10 % costs more requests and upload than the space is worth.
const DefaultMaxUnusedPercent = 10

// PruneOptions tune Prune; the zero value gives the defaults.
type PruneOptions struct {
	// MaxUnusedPercent: a pack holding both used and unused blobs is repacked when its
	// unused bytes exceed this share of its size (0 takes DefaultMaxUnusedPercent; 100
	// never repacks, and a tiny value such as 0.001 repacks every such pack).
	MaxUnusedPercent float64
	// DryRun computes the plan and its numbers and changes nothing.
	DryRun bool
}

func (o *PruneOptions) applyDefaults() {
	if o.MaxUnusedPercent <= 0 {
		o.MaxUnusedPercent = DefaultMaxUnusedPercent
	}
}

// PruneStats say what a prune found and did (or, in a dry run, would do).
type PruneStats struct {
	DryRun    bool `json:"dry_run"`
	Snapshots int  `json:"snapshots"`

	PacksBefore   int `json:"packs_before"`
	PacksKept     int `json:"packs_kept"`     // left as they are
	PacksRepacked int `json:"packs_repacked"` // their used blobs copied, then deleted
	PacksDeleted  int `json:"packs_deleted"`  // no used blob (unindexed ones included)
	PacksWritten  int `json:"packs_written"`  // new packs holding the repacked blobs
	PacksAfter    int `json:"packs_after"`

	BlobsUsed    int `json:"blobs_used"`
	BlobsRemoved int `json:"blobs_removed"` // index entries of blobs not kept

	BytesBefore int64 `json:"bytes_before"` // size of all packs in the store
	BytesUsed   int64 `json:"bytes_used"`   // sealed bytes of the used blobs
	// BytesReclaimable is what deleting every unused blob would free: BytesBefore minus
	// BytesUsed (headers of kept packs included, so it is an upper bound).
	BytesReclaimable int64 `json:"bytes_reclaimable"`
	// BytesReclaimed is the bytes of packs deleted minus those of packs written; in a dry
	// run, what the plan would reclaim (the new packs' headers estimated).
	BytesReclaimed int64 `json:"bytes_reclaimed"`
	BytesAfter     int64 `json:"bytes_after"`
}

// Prune deletes the data no snapshot references (docs/repository-format.md "Prune"). It
// holds the exclusive lock throughout, so it fails with repo.ErrLocked while a backup,
// restore or check runs. The handle's index is reloaded under the lock and again at the
// end, so r remains usable.
func Prune(ctx context.Context, r *repo.Repository, opts PruneOptions) (*PruneStats, error) {
	opts.applyDefaults()
	lock, err := r.Lock(ctx, true)
	if err != nil {
		return nil, err
	}
	defer lock.Release(context.WithoutCancel(ctx))

	// A process killed while it wrote a pack (a backup's spooled pack of a file://
	// repository) leaves a temporary file that no listing shows. Under the exclusive lock
	// one that nothing wrote for as long as a lock takes to go stale has no live writer;
	// failing to remove it costs space only, so it is no reason to fail the prune.
	if tc, ok := r.Backend().(staleTempRemover); ok && !opts.DryRun {
		_, _ = tc.RemoveStaleTemp(ctx, repo.LockStale)
	}

	// A backup may have finished between this handle's open and the lock: its snapshot's
	// trees are in index files the handle has not read.
	if err := r.ReloadIndex(ctx); err != nil {
		return nil, err
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	used, err := markUsed(ctx, r, snaps)
	if err != nil {
		return nil, err
	}
	list, err := r.ListPacks(ctx)
	if err != nil {
		return nil, err
	}
	p, err := plan(list, used, opts.MaxUnusedPercent)
	if err != nil {
		return nil, fmt.Errorf("%s: prune: %w", r.URL(), err)
	}
	p.stats.Snapshots = len(snaps)
	p.stats.DryRun = opts.DryRun
	if opts.DryRun {
		// the new packs hold the repacked blobs and a header of 42 bytes per blob plus
		// the seal and length; one pack per 16 MiB is near enough for a plan
		var written int64
		for _, b := range p.repack {
			written += int64(b.Entry.Length) + 42
		}
		if written > 0 {
			written += 32
		}
		p.stats.BytesReclaimed = p.deleteBytes - written
		p.stats.BytesAfter = p.stats.BytesBefore - p.stats.BytesReclaimed
		p.stats.PacksAfter = p.stats.PacksKept + int((written+int64(r.Config().PackSize)-1)/int64(r.Config().PackSize))
		return &p.stats, nil
	}
	if len(p.delete) == 0 && len(p.dropped) == 0 {
		p.stats.BytesAfter = p.stats.BytesBefore
		p.stats.PacksAfter = p.stats.PacksBefore
		return &p.stats, nil
	}
	crashpoint.Hit(crashpoint.PrunePlanned)

	// 1. repack: the used blobs of mixed packs go into new packs, uploaded in full
	var written int64
	keep := p.keep
	for _, t := range []repo.BlobType{repo.DataBlob, repo.TreeBlob} {
		var blobs []repo.PackBlob
		for _, b := range p.repack {
			if b.Entry.Type == t {
				blobs = append(blobs, b)
			}
		}
		if len(blobs) == 0 {
			continue
		}
		newPacks, err := r.Repack(ctx, t, blobs)
		if err != nil {
			return nil, err
		}
		for _, np := range newPacks {
			written += np.Size
		}
		p.stats.PacksWritten += len(newPacks)
		keep = append(keep, newPacks...)
	}
	// 2. an index of every pack that stays; 3. then the old index files go
	if _, err := r.WriteIndexFiles(ctx, keep, list.IndexFiles); err != nil {
		return nil, err
	}
	crashpoint.Hit(crashpoint.PruneIndexWritten)
	if err := r.DeleteIndexFiles(ctx, list.IndexFiles); err != nil {
		return nil, err
	}
	// 4. only now, with no index listing them, the packs
	if err := r.DeletePacks(ctx, p.delete); err != nil {
		return nil, err
	}
	crashpoint.Hit(crashpoint.PruneDone)
	p.stats.BytesReclaimed = p.deleteBytes - written
	p.stats.BytesAfter = p.stats.BytesBefore - p.stats.BytesReclaimed
	p.stats.PacksAfter = len(keep)
	if err := r.ReloadIndex(ctx); err != nil {
		return &p.stats, err
	}
	return &p.stats, nil
}

// staleTempRemover is a Backend with temporary files of its own (*store.Store).
type staleTempRemover interface {
	RemoveStaleTemp(ctx context.Context, olderThan time.Duration) (int, error)
}

// markUsed walks the trees of every snapshot and returns the ids of every tree and data
// blob they reference. Each tree is read once: consecutive snapshots share most of
// their trees, and walking them again would cost a read per directory per snapshot.
func markUsed(ctx context.Context, r *repo.Repository, snaps []*repo.Snapshot) (map[crypto.ID]struct{}, error) {
	used := map[crypto.ID]struct{}{}
	var visit func(id crypto.ID) error
	visit = func(id crypto.ID) error {
		if _, ok := used[id]; ok {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		used[id] = struct{}{}
		b, err := r.LoadBlob(ctx, id, nil)
		if err != nil {
			return err
		}
		var t snapshot.Tree
		if err := json.Unmarshal(b, &t); err != nil {
			return fmt.Errorf("tree %s: %w", id.Short(), err)
		}
		for _, n := range t.Nodes {
			for _, c := range n.Content {
				used[c] = struct{}{}
			}
			if n.Subtree != nil {
				if err := visit(*n.Subtree); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, sn := range snaps {
		if err := visit(sn.Tree); err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
		}
	}
	return used, nil
}

type prunePlan struct {
	keep        []repo.PackInfo   // packs that stay as they are
	repack      []repo.PackBlob   // used blobs to copy out of repacked packs
	delete      []repo.PackObject // packs to delete: unused, repacked, unindexed
	dropped     []repo.PackInfo   // indexed packs the store lacks: left out of the new index
	deleteBytes int64
	stats       PruneStats
}

// plan classifies the packs (docs/repository-format.md "Prune", step 4). It is pure.
func plan(list *repo.PackListing, used map[crypto.ID]struct{}, maxUnusedPercent float64) (*prunePlan, error) {
	p := &prunePlan{}
	for _, sp := range list.Stored {
		p.stats.PacksBefore++
		p.stats.BytesBefore += sp.Size
	}
	// Packs with the fewest unused bytes claim their used blobs first, so a blob stored
	// twice (two backups racing, or a prune killed after step 2) is kept in the pack
	// that stays and its other copy counts as unused.
	type cand struct {
		info        repo.PackInfo
		usedBytes   int64
		unusedBytes int64
	}
	var cands []*cand
	indexed := map[crypto.ID]bool{}
	for _, pi := range list.Indexed {
		indexed[pi.ID] = true
		if _, ok := list.Stored[pi.ID]; !ok {
			p.dropped = append(p.dropped, pi)
			continue
		}
		c := &cand{info: pi}
		for _, b := range pi.Blobs {
			if _, ok := used[b.ID]; ok {
				c.usedBytes += int64(b.Entry.Length)
			}
		}
		c.unusedBytes = pi.Size - c.usedBytes
		cands = append(cands, c)
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].unusedBytes != cands[j].unusedBytes {
			return cands[i].unusedBytes < cands[j].unusedBytes
		}
		return cands[i].info.ID.String() < cands[j].info.ID.String()
	})
	claimed := make(map[crypto.ID]bool, len(used))
	for _, c := range cands {
		var mine []repo.PackBlob
		var mineBytes int64
		for _, b := range c.info.Blobs {
			if _, ok := used[b.ID]; ok && !claimed[b.ID] {
				claimed[b.ID] = true
				mine = append(mine, b)
				mineBytes += int64(b.Entry.Length)
			}
		}
		size := list.Stored[c.info.ID].Size
		unused := size - mineBytes
		obj := list.Stored[c.info.ID]
		switch {
		case len(mine) == 0:
			p.delete = append(p.delete, obj)
			p.deleteBytes += size
			p.stats.PacksDeleted++
			p.stats.BlobsRemoved += len(c.info.Blobs)
		case len(mine) == len(c.info.Blobs) || float64(unused)*100 <= maxUnusedPercent*float64(size):
			p.keep = append(p.keep, c.info)
			p.stats.PacksKept++
		default:
			p.repack = append(p.repack, mine...)
			p.delete = append(p.delete, obj)
			p.deleteBytes += size
			p.stats.PacksRepacked++
			p.stats.BlobsRemoved += len(c.info.Blobs) - len(mine)
		}
		p.stats.BlobsUsed += len(mine)
		p.stats.BytesUsed += mineBytes
	}
	for id := range used {
		if !claimed[id] {
			return nil, fmt.Errorf("blob %s is referenced by a snapshot but no pack in the store holds it: the repository is damaged, nothing was deleted (run check)", id.Short())
		}
	}
	for id, sp := range list.Stored {
		if !indexed[id] {
			p.delete = append(p.delete, sp)
			p.deleteBytes += sp.Size
			p.stats.PacksDeleted++
		}
	}
	p.stats.BytesReclaimable = p.stats.BytesBefore - p.stats.BytesUsed
	return p, nil
}
