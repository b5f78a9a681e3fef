package jobimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/jobimage/annotate"
)

// ProgressInterval bounds how often a host patches its progress onto its Job: the API
// server sees at most one write per host every ProgressInterval.
const ProgressInterval = 2 * time.Second

// HostRun is one host's backup: the spec the session gave it, where the repository is,
// and where status goes.
type HostRun struct {
	Spec     api.HostSpec
	RepoURL  string
	Password []byte
	// Status receives the host's status; in a pod it annotates the host Job.
	Status Annotator
	// Log receives one line per step, for `kubectl logs`.
	Log io.Writer
	Now func() time.Time
	// Exec runs hooks and dumps in the target's pod; Kube reads that pod (its IP, its
	// hook annotations) in Namespace.
	Exec      PodExec
	Kube      kubernetes.Interface
	Namespace string
	// HTTP sends HTTP hooks (default http.DefaultClient).
	HTTP *http.Client
}

// RunHost backs up each path of the spec as its own snapshot (the seed's one snapshot per
// directory), the previous snapshot of the same host and path as parent, then applies the
// retention policy. It writes the host's status before it starts, while it runs (at most
// every ProgressInterval) and when it ends; it returns an error if the host failed. When
// ctx is canceled (SIGTERM) the host records Failed ("stopped: the pod received SIGTERM …") before it returns.
func RunHost(ctx context.Context, h HostRun) error {
	spec := h.Spec
	return runHostWork(ctx, h, spec.Hostname, func(s *hostState, ctx context.Context) error {
		return s.withHooks(ctx, spec.Hooks, true, spec.Pod, spec.Session, spec.Target, (*hostState).backupAll)
	})
}

// withHooks runs work between the host's pre and post hooks (of a backup, or of a
// restore): a failed pre hook fails the host before work starts; post hooks run by their
// policy and see work's outcome; a failed one fails the host.
func (s *hostState) withHooks(ctx context.Context, configured *api.Hooks, backup bool, pod, session string, target api.Target,
	work func(*hostState, context.Context) error) error {
	hr := &hookRunner{exec: s.run.Exec, kube: s.run.Kube, namespace: s.run.Namespace, pod: pod, log: s.run.Log, now: s.run.Now, http: s.run.HTTP,
		env: []envVar{{api.HookEnvHost, s.status.Hostname}, {api.HookEnvSession, session}, {api.HookEnvTarget, target.String()}},
		record: func(r api.HookResult) {
			s.mu.Lock()
			s.status.Hooks = append(s.status.Hooks, r)
			s.mu.Unlock()
			_ = s.write(ctx)
		}}
	var hooks api.Hooks
	if configured != nil {
		hooks = *configured
	}
	hooks, err := hr.withPodAnnotations(ctx, hooks, backup)
	if err != nil {
		return err
	}
	preName, postName, pre, post := api.HookPreBackup, api.HookPostBackup, hooks.PreBackup, hooks.PostBackup
	what := "backed up"
	if !backup {
		preName, postName, pre, post = api.HookPreRestore, api.HookPostRestore, hooks.PreRestore, hooks.PostRestore
		what = "restored"
	}
	werr := hr.pre(ctx, preName, pre)
	if werr != nil {
		werr = fmt.Errorf("%w; nothing was %s", werr, what)
	} else {
		werr = work(s, ctx)
	}
	// post hooks run after a failed pre hook too: an OnFailure alert, or an Always hook
	// that undoes what an earlier pre hook did (a freeze)
	return errors.Join(werr, hr.post(context.WithoutCancel(ctx), postName, post, werr))
}

// runHostWork runs the work of one host (a backup, a restore) between its status writes:
// Running before it starts, Succeeded or Failed with its duration when it ends.
func runHostWork(ctx context.Context, h HostRun, hostname string, work func(*hostState, context.Context) error) error {
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.Log == nil {
		h.Log = io.Discard
	}
	start := h.Now()
	st := &hostState{run: h, status: api.HostStatus{SchemaVersion: api.SchemaVersion, Hostname: hostname,
		Phase: api.PhaseRunning, StartTime: start.UTC().Format(time.RFC3339)}}
	if err := st.write(ctx); err != nil {
		return err
	}
	err := work(st, ctx)
	st.mu.Lock()
	st.status.Progress = nil
	st.status.Duration = h.Now().Sub(start).String()
	if err != nil {
		st.status.Phase = api.PhaseFailed
		st.status.Error = err.Error()
		if ctx.Err() != nil {
			st.status.Error = stopReason(ctx) + ": " + err.Error()
		}
	} else {
		st.status.Phase = api.PhaseSucceeded
	}
	st.mu.Unlock()
	// The final status must land even when ctx was canceled by SIGTERM (the pod has its
	// termination grace period left for it), and when the API server is away for a while.
	within := annotate.FinalWriteWithin
	if ctx.Err() != nil {
		within = 20 * time.Second
	}
	if werr := annotate.RetryFinal(context.WithoutCancel(ctx), within, st.write); werr != nil {
		return errors.Join(err, werr)
	}
	if err != nil {
		fmt.Fprintf(h.Log, "host %s: Failed: %v\n", hostname, err)
		return err
	}
	fmt.Fprintf(h.Log, "host %s: Succeeded in %s\n", hostname, st.status.Duration)
	return nil
}

// stopReason says why a host's context ended before its work did. SIGTERM is what a
// pod gets when it is deleted, evicted or its node drained; the user sees that rather
// than a bare "context canceled".
func stopReason(ctx context.Context) string {
	cause := context.Cause(ctx)
	if cause == nil || errors.Is(cause, context.Canceled) || strings.Contains(cause.Error(), "terminated") {
		return "stopped: the pod received SIGTERM (deleted, evicted, or its node drained)"
	}
	return "stopped: " + cause.Error()
}

type hostState struct {
	run    HostRun
	mu     sync.Mutex
	status api.HostStatus
	// writeMu orders the status writes: a late progress patch never lands after the final one.
	writeMu sync.Mutex
}

func (s *hostState) write(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	s.status.UpdateTime = s.run.Now().UTC().Format(time.RFC3339)
	v := s.status
	v.Error = api.TruncateError(v.Error)
	v.Snapshots = append([]api.SnapshotStats(nil), s.status.Snapshots...)
	if p := s.status.Progress; p != nil {
		pc := *p
		v.Progress = &pc
	}
	s.mu.Unlock()
	return s.run.Status.AnnotateJSON(ctx, api.AnnotationHostStatus, v)
}

func (s *hostState) backupAll(ctx context.Context) error {
	spec := s.run.Spec
	if len(spec.Paths) == 0 && spec.Dump == nil {
		return errors.New("host spec has no paths")
	}
	if s.run.RepoURL == "" {
		return fmt.Errorf("no repository URL: the repository Secret has no %s key", api.SecretKeyRepository)
	}
	st, err := store.Open(ctx, s.run.RepoURL, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := repo.Open(ctx, st, s.run.Password, repocmd.HostRepoOptions(os.Getenv, s.run.Log))
	if err != nil {
		return err
	}
	if err := r.LoadIndex(ctx); err != nil {
		return err
	}
	// Hosts are named host-0, host-1… in every configuration, so two configurations that
	// back up the same path into one repository share host and path: the configuration tag
	// keeps each one's parents and retention to its own snapshots.
	configTag := api.TagConfig + spec.Config
	all, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	if spec.Dump != nil {
		if err := s.backupDump(ctx, r, all, configTag); err != nil {
			return err
		}
		return s.applyRetention(ctx, r, []string{spec.Dump.Path()}, configTag)
	}
	for _, dir := range spec.Paths {
		if err := checkDirectory(dir); err != nil {
			return err
		}
		parent := parentOf(all, spec.Hostname, dir, configTag)
		fmt.Fprintf(s.run.Log, "host %s: backing up %s\n", spec.Hostname, dir)
		var sn *repo.Snapshot
		err := whenUnlocked(ctx, s.run.Log, "backup of "+dir, func() error {
			var err error
			opts := s.backupOptions(ctx, parent, configTag, dir)
			opts.Excludes = spec.Excludes
			sn, err = snapshot.Backup(ctx, r, []string{dir}, opts)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		if sn.Stats.TotalFiles == 0 && sn.Stats.Size == 0 {
			if nonEmpty, _ := hasEntries(dir); nonEmpty {
				return fmt.Errorf("%s: the snapshot is empty but the directory is not: no entry could be recorded", dir)
			}
		}
		if err := s.recordSnapshot(ctx, sn, dir); err != nil {
			return err
		}
	}
	if opts := r.CacheStats(); opts.Dir != "" {
		repocmd.PrintCacheStats(s.run.Log, repocmd.RepoFlags{CacheDir: opts.Dir}, r)
	}
	return s.applyRetention(ctx, r, spec.Paths, configTag)
}

// applyRetention forgets this host's snapshots of each path the policy does not keep.
func (s *hostState) applyRetention(ctx context.Context, r *repo.Repository, paths []string, configTag string) error {
	spec := s.run.Spec
	if p := retentionPolicy(spec.Retention); !p.Empty() {
		var summary []string
		for _, dir := range paths {
			kept, removed, err := forgetWhenUnlocked(ctx, r, repo.Filter{Host: spec.Hostname, Path: dir, Tags: []string{configTag}}, p, s.run.Log)
			if err != nil {
				return fmt.Errorf("retention policy on %s: %w", dir, err)
			}
			summary = append(summary, fmt.Sprintf("%s: kept %d, removed %d", dir, len(kept), len(removed)))
		}
		s.mu.Lock()
		s.status.Retention = strings.Join(summary, "; ")
		s.mu.Unlock()
		fmt.Fprintf(s.run.Log, "host %s: retention policy: %s\n", spec.Hostname, s.status.Retention)
	}
	return nil
}

// backupOptions are what every snapshot of this host records: host, session, target and
// configuration tag, its parent, and progress into the host's status under dir.
func (s *hostState) backupOptions(ctx context.Context, parent *repo.Snapshot, configTag, dir string) snapshot.BackupOptions {
	spec := s.run.Spec
	return snapshot.BackupOptions{
		Host:     spec.Hostname,
		Session:  spec.Session,
		Target:   &repo.Target{Kind: spec.Target.Kind, Name: spec.Target.Name},
		Tags:     []string{configTag},
		Parent:   parent,
		NoParent: parent == nil,
		Program:  "stash-job",
		Progress: &annotationProgress{state: s, ctx: ctx, dir: dir, now: s.run.Now},
		Interval: ProgressInterval,
		Now:      s.run.Now,
	}
}

// recordSnapshot adds a snapshot to the host's status (the seed's snapshots[]).
func (s *hostState) recordSnapshot(ctx context.Context, sn *repo.Snapshot, dir string) error {
	ss := api.SnapshotStats{
		Name:           sn.ID.Short(),
		Directory:      dir,
		Size:           api.FormatBytes(sn.Stats.Size),
		Uploaded:       api.FormatBytes(sn.Stats.Uploaded),
		ProcessingTime: processingTime(sn.Stats.ProcessingTime),
		FileStats: api.FileStats{TotalFiles: sn.Stats.TotalFiles, NewFiles: sn.Stats.NewFiles,
			ModifiedFiles: sn.Stats.ModifiedFiles, UnmodifiedFiles: sn.Stats.UnmodifiedFiles},
	}
	fmt.Fprintf(s.run.Log, "host %s: snapshot %s of %s: %d files (%d new, %d modified, %d unmodified), size %s, uploaded %s\n",
		s.run.Spec.Hostname, ss.Name, dir, ss.FileStats.TotalFiles, ss.FileStats.NewFiles, ss.FileStats.ModifiedFiles,
		ss.FileStats.UnmodifiedFiles, ss.Size, ss.Uploaded)
	s.mu.Lock()
	s.status.Snapshots = append(s.status.Snapshots, ss)
	s.status.Progress = nil
	s.mu.Unlock()
	// The final status carries the snapshot too: an API server away at this moment must
	// not fail a host whose snapshot is stored.
	_ = s.write(ctx)
	return nil
}

func retentionPolicy(r api.Retention) repo.RetentionPolicy {
	return repo.RetentionPolicy{Last: r.KeepLast, Hourly: r.KeepHourly, Daily: r.KeepDaily, Weekly: r.KeepWeekly,
		Monthly: r.KeepMonthly, Yearly: r.KeepYearly, Tags: repocmd.TagLists(r.KeepTags)}
}

// checkDirectory fails early, with the path, when a configured directory is not there:
// the volume is mounted elsewhere than the configuration says.
func checkDirectory(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s: %w (is the volume mounted at this path in the workload?)", dir, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	return nil
}

func hasEntries(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	return len(names) > 0, err
}

// processingTime turns the engine's Go duration string into the seed's "0m0s" form.
func processingTime(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return s
	}
	return api.FormatProcessingTime(d)
}

// annotationProgress puts the engine's progress reports into the host status. The engine
// calls Report every ProgressInterval; a write still in flight makes the next report skip,
// so a slow API server never slows the backup down.
type annotationProgress struct {
	state    *hostState
	ctx      context.Context
	dir      string
	now      func() time.Time
	inflight sync.Mutex
}

func (p *annotationProgress) Report(s snapshot.Status) {
	p.state.mu.Lock()
	p.state.status.Progress = &api.Progress{Directory: p.dir, FilesDone: s.FilesDone, FilesTotal: s.FilesTotal,
		BytesDone: s.BytesDone, BytesTotal: s.BytesTotal, BytesPerS: s.Rate(), Scanning: !s.ScanDone}
	p.state.mu.Unlock()
	if !p.inflight.TryLock() {
		return
	}
	go func() {
		defer p.inflight.Unlock()
		// A lost progress patch is not worth failing a backup for; the next one follows.
		_ = p.state.write(p.ctx)
	}()
}

func (p *annotationProgress) Done(snapshot.Status) {
	// Wait for a progress write still in flight, so it cannot land after the final status.
	p.inflight.Lock()
	p.inflight.Unlock() //nolint:staticcheck // an empty critical section is the point
}

// FailHost records the host Failed with err before any backup starts (no password, a
// priority that cannot be set): the session sees why instead of a bare exit code.
func FailHost(ctx context.Context, h HostRun, err error) error {
	if h.Now == nil {
		h.Now = time.Now
	}
	st := api.HostStatus{SchemaVersion: api.SchemaVersion, Hostname: h.Spec.Hostname, Phase: api.PhaseFailed,
		Error: err.Error(), Duration: "0s", UpdateTime: h.Now().UTC().Format(time.RFC3339)}
	return errors.Join(err, h.Status.AnnotateJSON(context.WithoutCancel(ctx), api.AnnotationHostStatus, st))
}

// forgetWhenUnlocked applies the policy, waiting while other hosts of the session still
// back up: forget needs the repository's exclusive lock, and the hosts of a StatefulSet or
// DaemonSet run together. The session's timeout bounds the wait.
func forgetWhenUnlocked(ctx context.Context, r *repo.Repository, f repo.Filter, p repo.RetentionPolicy, log io.Writer) (kept, removed []*repo.Snapshot, err error) {
	err = whenUnlocked(ctx, log, "retention policy", func() error {
		var e error
		kept, removed, e = r.Forget(ctx, f, p, false)
		return e
	})
	return kept, removed, err
}

// whenUnlocked runs op, and again while it fails because another operation holds a
// conflicting lock: the hosts of one session share a repository, and one host's
// retention (exclusive, seconds long) must not fail another host's backup or restore.
// The session's timeout bounds the wait; the pauses are jittered so that two waiting
// hosts do not keep colliding.
func whenUnlocked(ctx context.Context, log io.Writer, what string, op func() error) error {
	wait := time.Second
	for {
		err := op()
		if !errors.Is(err, repo.ErrLocked) {
			return err
		}
		pause := wait/2 + time.Duration(rand.Int64N(int64(wait)))
		fmt.Fprintf(log, "%s: repository busy (%v), retrying in %s\n", what, err, pause.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waited for the lock until canceled)", err)
		case <-time.After(pause):
		}
		wait = min(2*wait, 15*time.Second)
	}
}

// parentOf is the newest snapshot of this host and directory made by this configuration.
func parentOf(all []*repo.Snapshot, host, dir, tag string) *repo.Snapshot {
	for i := len(all) - 1; i >= 0; i-- {
		sn := all[i]
		if sn.Host == host && len(sn.Paths) == 1 && sn.Paths[0] == dir && slices.Contains(sn.Tags, tag) {
			return sn
		}
	}
	return nil
}
