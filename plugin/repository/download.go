package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
)

// DownloadRequest says which snapshot `kubectl stash download` restores to this machine,
// and how.
type DownloadRequest struct {
	// Snapshot is "latest" or a snapshot id (a unique prefix will do).
	Snapshot string
	// Host picks the host whose latest snapshot "latest" means; with an id, the snapshot
	// must be of this host. Empty: any, when the repository holds one host only.
	Host string
	// Path restores this path of the snapshot only (recreated below To, as every path is);
	// with "latest", the latest snapshot that includes it.
	Path string
	// To is the directory restored into.
	To string
	// Includes and Excludes are glob patterns (snapshot.RestoreOptions).
	Includes, Excludes []string
	// Overwrite is the mode for existing files (default always).
	Overwrite snapshot.Overwrite
	// Delete removes files below the restored directories that the snapshot lacks.
	Delete bool
	// DryRun reports the actions and changes nothing.
	DryRun bool
	// Report receives each action and the path, relative to To, it applies to.
	Report func(action, path string)
	// Progress receives the restore's progress every ProgressInterval (default 1s).
	Progress         snapshot.Progress
	ProgressInterval time.Duration
}

// DownloadResult says what Download restored.
type DownloadResult struct {
	Snapshot Snapshot
	Stats    snapshot.RestoreStats
}

// Download restores a snapshot of the repository into a directory of this machine, reading
// the repository from here with the Secret's credentials (no pod). A pvc:// repository
// cannot be read from here: the error wraps ErrInCluster.
func (r *Repository) Download(ctx context.Context, req DownloadRequest) (DownloadResult, error) {
	if err := r.local(); err != nil {
		return DownloadResult{}, err
	}
	if req.Path != "" {
		req.Path = path.Clean("/" + req.Path)
	}
	rp, closeFn, err := r.Open(ctx)
	if err != nil {
		return DownloadResult{}, fmt.Errorf("read repository %q from this machine: %w", r.Name, err)
	}
	defer closeFn()
	all, err := rp.Snapshots(ctx)
	if err != nil {
		return DownloadResult{}, fmt.Errorf("read repository %q from this machine: %w", r.Name, err)
	}
	sn, err := r.pickSnapshot(all, req)
	if err != nil {
		return DownloadResult{}, err
	}
	res := DownloadResult{Snapshot: FromEngine(sn)}
	if err := rp.LoadIndex(ctx); err != nil {
		return res, fmt.Errorf("read repository %q from this machine: %w", r.Name, err)
	}
	// A failed download leaves no empty directory it created.
	_, statErr := os.Lstat(req.To)
	created := errors.Is(statErr, os.ErrNotExist)
	res.Stats, err = snapshot.Restore(ctx, rp, sn, snapshot.RestoreOptions{
		Target: req.To, Path: req.Path, Includes: req.Includes, Excludes: req.Excludes,
		Overwrite: req.Overwrite, Delete: req.Delete, DryRun: req.DryRun, Report: req.Report,
		Progress: req.Progress, Interval: req.ProgressInterval,
	})
	if err != nil && created && !req.DryRun {
		_ = os.Remove(req.To) // only if empty
	}
	return res, err
}

// pickSnapshot resolves req.Snapshot among all (oldest first), with errors that say what
// to do.
func (r *Repository) pickSnapshot(all []*repo.Snapshot, req DownloadRequest) (*repo.Snapshot, error) {
	seeList := fmt.Sprintf("see kubectl stash snapshots --repo %s", r.Name)
	describe := func(sn *repo.Snapshot) string {
		return fmt.Sprintf("snapshot %s (%s %s)", sn.ID.Short(), sn.Host, strings.Join(sn.Paths, ","))
	}
	if req.Snapshot == "latest" {
		f := repo.Filter{Host: req.Host, Path: req.Path}
		var hosts []string
		var latest *repo.Snapshot
		for _, sn := range all {
			if f.Match(sn) {
				latest = sn
				if !slices.Contains(hosts, sn.Host) {
					hosts = append(hosts, sn.Host)
				}
			}
		}
		if latest == nil {
			what := ""
			if req.Host != "" {
				what += " of host " + req.Host
			}
			if req.Path != "" {
				what += " that includes " + req.Path
			}
			return nil, fmt.Errorf("repository %s has no snapshot%s: %s", r.Name, what, seeList)
		}
		if len(hosts) > 1 {
			sort.Strings(hosts)
			return nil, fmt.Errorf(`"latest" is ambiguous: repository %s has snapshots of %d hosts (%s): pass --host`,
				r.Name, len(hosts), strings.Join(hosts, ", "))
		}
		return latest, nil
	}
	var found *repo.Snapshot
	for _, sn := range all {
		if strings.HasPrefix(sn.ID.String(), req.Snapshot) {
			if found != nil {
				return nil, fmt.Errorf("snapshot id %q is ambiguous in repository %s: give more characters (%s)", req.Snapshot, r.Name, seeList)
			}
			found = sn
		}
	}
	if found == nil || req.Snapshot == "" {
		return nil, fmt.Errorf("snapshot %q not found in repository %s: %s", req.Snapshot, r.Name, seeList)
	}
	if req.Host != "" && found.Host != req.Host {
		return nil, fmt.Errorf("%s is of host %s, not %s", describe(found), found.Host, req.Host)
	}
	if req.Path != "" && !(repo.Filter{Path: req.Path}).Match(found) {
		return nil, fmt.Errorf("%s has no path %s", describe(found), req.Path)
	}
	return found, nil
}
