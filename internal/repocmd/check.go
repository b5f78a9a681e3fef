package repocmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/check"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
)

// ErrCheckFailed is returned when a check ran and found problems: the command exits 1,
// as it does for any failure, so a CronJob running check shows up as failed.
var ErrCheckFailed = errors.New("check found problems in the repository")

// CheckFlags choose how much data a check reads.
type CheckFlags struct {
	ReadData bool
	// SubsetPercent reads a random subset of this percentage of the packs (0: none).
	SubsetPercent float64
}

// Check verifies the repository under a shared lock, so it can run beside backups, and
// prints each problem with the snapshots and files it affects, then a summary.
func Check(ctx context.Context, f RepoFlags, cf CheckFlags, asJSON bool, out io.Writer) error {
	// Check verifies what the store holds: a local cache would answer with its own
	// (verified) copies of index files and tree packs and hide their damage in the store.
	f.NoCache = true
	r, damaged, closeFn, err := OpenRepositorySkipDamagedIndex(ctx, f)
	if err != nil {
		return err
	}
	defer closeFn()
	lock, err := r.Lock(ctx, false)
	if err != nil {
		return err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	res, err := check.Run(ctx, r, check.Options{ReadData: cf.ReadData, ReadDataPercent: cf.SubsetPercent, DamagedIndex: damaged})
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeJSON(out, res); err != nil {
			return err
		}
	} else if err := writeCheckText(out, res, cf); err != nil {
		return err
	}
	if !res.OK() {
		return fmt.Errorf("%w (%d)", ErrCheckFailed, len(res.Problems))
	}
	return nil
}

// OpenRepositorySkipDamagedIndex is OpenRepository for a command that only reads: an
// index file whose content is damaged is left out of the index and returned, rather than
// making the repository impossible to open (repo.LoadIndexSkipDamaged).
func OpenRepositorySkipDamagedIndex(ctx context.Context, f RepoFlags) (*repo.Repository, []*repo.IndexFileError, func(), error) {
	st, pw, err := f.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := repo.Open(ctx, st, pw, f.repoOptions())
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	damaged, err := r.LoadIndexSkipDamaged(ctx)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return r, damaged, func() { st.Close() }, nil
}

func writeCheckText(out io.Writer, res *check.Result, cf CheckFlags) error {
	for _, p := range res.Problems {
		where := ""
		switch {
		case p.Index != "":
			// the error names the index file
		case p.Blob != "" && strings.Contains(p.Error, p.Blob[:8]):
			// the error names the blob and its pack already
		case p.Blob != "" && p.Pack != "":
			where = fmt.Sprintf(" blob %s in pack %s", p.Blob[:8], p.Pack[:8])
		case p.Blob != "":
			where = " blob " + p.Blob[:8]
		case p.Pack != "":
			where = " " + p.Pack[:8] // every kind without a blob names a pack
		}
		fmt.Fprintf(out, "error: %s%s: %s\n", p.Kind, where, p.Error)
		if len(p.Files) == 0 && p.Index == "" {
			fmt.Fprintln(out, "  no snapshot references it")
		}
		for _, fr := range p.Files {
			fmt.Fprintf(out, "  snapshot %s: %s\n", fr.Snapshot[:8], fr.Path)
		}
	}
	if n := len(res.Unreferenced); n > 0 {
		fmt.Fprintf(out, "%d pack(s) in no index (left by an interrupted backup or prune; prune removes them):\n", n)
		for _, k := range res.Unreferenced {
			fmt.Fprintf(out, "  %s\n", k)
		}
	}
	data := "structure only (no data read)"
	switch {
	case cf.ReadData:
		data = fmt.Sprintf("read-data: read %d of %d packs", res.PacksRead, res.Packs)
	case cf.SubsetPercent > 0:
		data = fmt.Sprintf("read-data-subset: read a random %g%% of the packs, %d of %d", cf.SubsetPercent, res.PacksRead, res.Packs)
	}
	verdict := "no problems found"
	if !res.OK() {
		verdict = fmt.Sprintf("%d problem(s) found", len(res.Problems))
	}
	_, err := fmt.Fprintf(out, "checked %d snapshots, %d packs, %d blobs; %s: %s\n", res.Snapshots, res.Packs, res.Blobs, data, verdict)
	return err
}
