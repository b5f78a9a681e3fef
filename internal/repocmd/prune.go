package repocmd

import (
	"context"
	"fmt"
	"io"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/maintenance"
)

// Prune deletes the data no snapshot references (with dryRun, only computes what it would
// delete) and prints the numbers: packs kept, repacked and deleted, and the bytes
// reclaimable before and reclaimed after.
func Prune(ctx context.Context, f RepoFlags, maxUnusedPercent float64, dryRun, asJSON bool, out io.Writer) error {
	r, closeFn, err := OpenRepository(ctx, f)
	if err != nil {
		return err
	}
	defer closeFn()
	st, err := maintenance.Prune(ctx, r, maintenance.PruneOptions{MaxUnusedPercent: maxUnusedPercent, DryRun: dryRun})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(out, st)
	}
	verb, reclaimed := "", "reclaimed"
	if dryRun {
		verb, reclaimed = "would be ", "would reclaim"
	}
	fmt.Fprintf(out, "%d snapshots, %d packs (%s), %s of it used by %d blobs\n",
		st.Snapshots, st.PacksBefore, humanBytes(st.BytesBefore), humanBytes(st.BytesUsed), st.BlobsUsed)
	fmt.Fprintf(out, "reclaimable: %s\n", humanBytes(st.BytesReclaimable))
	fmt.Fprintf(out, "packs: %d %skept, %d %srepacked into %d new, %d %sdeleted; %d blobs %sremoved\n",
		st.PacksKept, verb, st.PacksRepacked, verb, max(st.PacksWritten, st.PacksAfter-st.PacksKept), st.PacksDeleted, verb, st.BlobsRemoved, verb)
	_, err = fmt.Fprintf(out, "%s: %s; the repository %s %s in %d packs\n", reclaimed, humanBytes(st.BytesReclaimed),
		map[bool]string{true: "would take", false: "takes"}[dryRun], humanBytes(st.BytesAfter), st.PacksAfter)
	return err
}
