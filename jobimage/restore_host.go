package jobimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
	"github.com/kubectl-stash/kubectl-stash/internal/restoreplan"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// RestoreHostRun is one host's restore: the spec the restore session gave it, where the
// repository is, and where status goes.
type RestoreHostRun struct {
	Spec     api.RestoreHostSpec
	RepoURL  string
	Password []byte
	Status   Annotator
	Log      io.Writer
	Now      func() time.Time
	// Exec, Kube and Namespace run hooks and dump restores in the target's pod.
	Exec      PodExec
	Kube      kubernetes.Interface
	Namespace string
}

// RunRestoreHost restores what the host's rule selects, each snapshot path into the same
// path of the host's volumes, verifying every chunk (the engine checks each blob's content
// id). It writes the host's status before it starts, while it runs and when it ends, and
// returns an error if the host failed.
func RunRestoreHost(ctx context.Context, h RestoreHostRun) error {
	run := HostRun{Status: h.Status, Log: h.Log, Now: h.Now, Exec: h.Exec, Kube: h.Kube, Namespace: h.Namespace}
	return runHostWork(ctx, run, h.Spec.Hostname, func(st *hostState, ctx context.Context) error {
		if h.Log == nil {
			h.Log = io.Discard
		}
		if h.Now == nil {
			h.Now = time.Now
		}
		return st.withHooks(ctx, h.Spec.Hooks, false, h.Spec.Pod, h.Spec.Session, h.Spec.Target, func(st *hostState, ctx context.Context) error {
			return restoreAll(ctx, h, st)
		})
	})
}

func restoreAll(ctx context.Context, h RestoreHostRun, s *hostState) error {
	spec := h.Spec
	overwrite, err := snapshot.ParseOverwrite(spec.Overwrite)
	if err != nil {
		return err
	}
	if h.RepoURL == "" {
		return fmt.Errorf("no repository URL: the repository Secret has no %s key", api.SecretKeyRepository)
	}
	st, err := store.Open(ctx, h.RepoURL, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := repo.Open(ctx, st, h.Password, repocmd.HostRepoOptions(os.Getenv, h.Log))
	if err != nil {
		return err
	}
	if err := r.LoadIndex(ctx); err != nil {
		return err
	}
	all, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	src := restoreplan.Source{Host: spec.SourceHost, Config: spec.FromConfig, Target: spec.SourceTarget}
	find := func(id string) (*repo.Snapshot, error) { return restoreplan.Find(all, id) }
	var defaultPaths []string
	if spec.Dump != nil {
		defaultPaths = []string{spec.Dump.Path()}
	}
	items, err := restoreplan.Plan(all, find, src, spec.Paths, spec.Snapshots, defaultPaths)
	if err != nil {
		return err
	}
	if spec.Dump != nil {
		return restoreDumps(ctx, h, s, r, items)
	}
	// every path must land on a volume: anything else would go to the pod's own
	// filesystem and vanish with it
	for _, it := range items {
		if !underAny(it.Path, spec.Mounts) {
			return fmt.Errorf("%s is not on a volume of the target (mounted here: %s): restore paths below the target's volume mounts, or give the target's mounts (--volume-mount)",
				it.Path, strings.Join(spec.Mounts, ", "))
		}
	}
	for _, it := range items {
		fmt.Fprintf(h.Log, "host %s: restoring %s of snapshot %s (host %s, %s)\n", spec.Hostname, it.Path, it.Snapshot.ID.Short(),
			it.Snapshot.Host, it.Snapshot.Time.UTC().Format(time.RFC3339))
		var stats snapshot.RestoreStats
		err := whenUnlocked(ctx, h.Log, "restore of "+it.Path, func() error {
			var err error
			stats, err = snapshot.Restore(ctx, r, it.Snapshot, snapshot.RestoreOptions{
				Target:    it.Path,
				Path:      it.Path,
				StripPath: true,
				Overwrite: overwrite,
				Delete:    spec.Delete,
				Includes:  spec.Includes,
				Excludes:  spec.Excludes,
				Progress:  &annotationProgress{state: s, ctx: ctx, dir: it.Path, now: h.Now},
				Interval:  ProgressInterval,
				Now:       h.Now,
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("%s from snapshot %s: %w", it.Path, it.Snapshot.ID.Short(), err)
		}
		rs := api.RestoredStats{Snapshot: it.Snapshot.ID.Short(), SourceHost: it.Snapshot.Host, Path: it.Path,
			Files: stats.Files, Size: api.FormatBytes(stats.Bytes), Skipped: stats.Skipped, Kept: stats.Kept, Deleted: stats.Deleted}
		fmt.Fprintf(h.Log, "host %s: %s: %d files written (%s), %d already identical, %d kept (overwrite %s), %d deleted\n",
			spec.Hostname, it.Path, rs.Files, rs.Size, rs.Skipped, rs.Kept, overwrite, rs.Deleted)
		s.mu.Lock()
		s.status.Restored = append(s.status.Restored, rs)
		s.status.Progress = nil
		s.mu.Unlock()
		_ = s.write(ctx) // the final status carries it too: an API server away now fails nothing
	}
	return nil
}

// restoreDumps feeds each selected dump file to the restore command, in order.
func restoreDumps(ctx context.Context, h RestoreHostRun, s *hostState, r *repo.Repository, items []restoreplan.Item) error {
	for _, it := range items {
		var n int64
		err := whenUnlocked(ctx, h.Log, "restore of "+it.Path, func() error {
			var err error
			n, err = restoreDump(ctx, h, s, r, it.Snapshot, it.Path)
			return err
		})
		if err != nil {
			return err
		}
		rs := api.RestoredStats{Snapshot: it.Snapshot.ID.Short(), SourceHost: it.Snapshot.Host, Path: it.Path, Files: 1, Size: api.FormatBytes(n)}
		fmt.Fprintf(h.Log, "host %s: %s: %s fed to the restore command\n", h.Spec.Hostname, it.Path, rs.Size)
		s.mu.Lock()
		s.status.Restored = append(s.status.Restored, rs)
		s.mu.Unlock()
		_ = s.write(ctx) // the final status carries it too: an API server away now fails nothing
	}
	return nil
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if restoreplan.Under(p, d) {
			return true
		}
	}
	return false
}

// FailRestoreHost records the host Failed with err before its restore starts.
func FailRestoreHost(ctx context.Context, h RestoreHostRun, err error) error {
	return FailHost(ctx, HostRun{Spec: api.HostSpec{Hostname: h.Spec.Hostname}, Status: h.Status, Now: h.Now}, err)
}
