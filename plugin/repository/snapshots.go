package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
)

// Snapshot is one snapshot as `kubectl stash snapshots -o json` prints it. Its JSON is
// the same as that of `stash-job snapshots -o json` (jobimage), which --via-job reads from
// the job's log.
type Snapshot = repo.Listing

// FromEngine converts an engine snapshot.
func FromEngine(sn *repo.Snapshot) Snapshot { return sn.Listing() }

// Filter keeps the snapshots of host (if not "") that include path (if not ""), with the
// engine's rules (repo.Filter), in their order.
func Filter(list []Snapshot, host, path string) []Snapshot {
	f := repo.Filter{Host: host, Path: path}
	out := []Snapshot{}
	for _, s := range list {
		if f.Match(&repo.Snapshot{Host: s.Host, Paths: s.Paths}) {
			out = append(out, s)
		}
	}
	return out
}

// Snapshots lists the repository's snapshots, oldest first, reading the repository from
// this machine.
func (r *Repository) Snapshots(ctx context.Context) ([]Snapshot, error) {
	rp, closeFn, err := r.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	all, err := rp.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, 0, len(all))
	for _, sn := range all {
		out = append(out, FromEngine(sn))
	}
	return out, nil
}

// ParseSnapshotsJSON reads the JSON array `stash-job snapshots -o json` prints from a
// pod's log, skipping any lines before it.
func ParseSnapshotsJSON(log []byte) ([]Snapshot, error) {
	i := bytes.Index(log, []byte("["))
	for i > 0 && log[i-1] != '\n' {
		j := bytes.Index(log[i+1:], []byte("["))
		if j < 0 {
			i = -1
			break
		}
		i += 1 + j
	}
	if i < 0 {
		return nil, errors.New("no JSON list of snapshots in the output")
	}
	var list []Snapshot
	if err := json.NewDecoder(bytes.NewReader(log[i:])).Decode(&list); err != nil {
		return nil, fmt.Errorf("read the list of snapshots: %w", err)
	}
	return list, nil
}
