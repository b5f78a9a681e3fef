package repo

import "context"

func (r *Repository) markIndexSeen(name string) {
	r.indexSeenMu.Lock()
	defer r.indexSeenMu.Unlock()
	if r.indexSeen == nil {
		r.indexSeen = map[string]bool{}
	}
	r.indexSeen[name] = true
}

// RefreshIndex brings the in-memory index up to date under a lock just taken: a backup
// calls it after its shared lock, because a prune that ran between opening the handle and
// taking the lock may have deleted packs the handle still believes in, and deduplicating
// against those would lose data. When every index file the handle knew is still there,
// only the new ones are read (nothing was deleted: prune always deletes the index files it
// replaces); otherwise the whole index is read again.
func (r *Repository) RefreshIndex(ctx context.Context) error {
	names, err := r.indexNames(ctx)
	if err != nil {
		return err
	}
	listed := make(map[string]bool, len(names))
	for _, n := range names {
		listed[n] = true
	}
	r.indexSeenMu.Lock()
	gone := false
	for n := range r.indexSeen {
		if !listed[n] {
			gone = true
			break
		}
	}
	var fresh []string
	for _, n := range names {
		if !r.indexSeen[n] {
			fresh = append(fresh, n)
		}
	}
	r.indexSeenMu.Unlock()
	if gone {
		return r.ReloadIndex(ctx)
	}
	return r.loadIndexFiles(ctx, fresh)
}
