package jobimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/check"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/verifyjob"
	"github.com/kubectl-stash/kubectl-stash/jobimage/annotate"
)

// Verification is one backup verification session: the pod of a verification Job. It
// restores the snapshots into scratch space, compares every file with the snapshot, reads
// a share of the repository's data if asked, and records the seed's conditions. With a
// user command, Stage "restore" stops after the restore and check; Command finishes.
type Verification struct {
	Client    kubernetes.Interface
	Namespace string
	Job       string
	Config    api.VerifyConfig
	RepoURL   string
	Password  []byte
	// Scratch is the directory restored into (verifyjob.ScratchPath in a pod).
	Scratch string
	Log     io.Writer
	Now     func() time.Time

	status api.VerifyStatus
	ann    *annotate.JobAnnotator
	self   *batchv1.Job
	start  time.Time
}

func (v *Verification) init(ctx context.Context) error {
	if v.Now == nil {
		v.Now = time.Now
	}
	if v.Log == nil {
		v.Log = io.Discard
	}
	self, err := v.Client.BatchV1().Jobs(v.Namespace).Get(ctx, v.Job, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read own job %s/%s: %w", v.Namespace, v.Job, err)
	}
	v.self = self
	v.ann = annotate.NewJobAnnotator(v.Client, v.Namespace, v.Job)
	v.status = api.VerifyStatus{SchemaVersion: api.SchemaVersion, Phase: api.PhaseRunning}
	if raw, ok := self.Annotations[api.AnnotationVerifyStatus]; ok {
		_ = api.Decode(api.AnnotationVerifyStatus, raw, &v.status) // the restore stage's, for the command stage
	}
	v.status.RetryLeft, _ = strconv.Atoi(self.Annotations[verifyjob.AnnotationRetryLeft])
	v.start = self.CreationTimestamp.Time
	if v.status.StartTime == "" {
		v.status.StartTime = v.Now().UTC().Format(time.RFC3339)
	}
	if t, err := time.Parse(time.RFC3339, v.status.StartTime); err == nil {
		v.start = t
	}
	return nil
}

func (v *Verification) condition(typ string, ok bool, reason, msg string) {
	status := "False"
	if ok {
		status = "True"
	}
	c := api.Condition{Type: typ, Status: status, Reason: reason, Message: api.TruncateError(msg), LastTransitionTime: v.Now().UTC().Format(time.RFC3339)}
	for i := range v.status.Conditions {
		if v.status.Conditions[i].Type == typ {
			v.status.Conditions[i] = c
			return
		}
	}
	v.status.Conditions = append(v.status.Conditions, c)
}

func (v *Verification) write(ctx context.Context) error {
	return v.ann.AnnotateJSON(ctx, api.AnnotationVerifyStatus, v.status)
}

// Run restores and verifies. With restoreOnly (a command follows), a successful run
// leaves the session Running for the command; anything else finishes it. It returns the
// phase, and an error unless the session Succeeded, was Skipped, or waits for its command.
func (v *Verification) Run(ctx context.Context, restoreOnly bool) (api.Phase, error) {
	if err := v.init(ctx); err != nil {
		return api.PhaseFailed, err
	}
	if err := v.write(ctx); err != nil {
		return api.PhaseFailed, err
	}
	sns, r, closeFn, err := v.snapshots(ctx)
	if err != nil {
		v.condition(api.ConditionRestoreSucceeded, false, "SnapshotNotFound", err.Error())
		return v.finish(ctx, api.PhaseFailed, err.Error())
	}
	defer closeFn()
	if by := v.verifiedBefore(ctx, sns); by != "" {
		v.condition(api.ConditionBackupVerificationSkipped, true, "SnapshotAlreadyVerified",
			fmt.Sprintf("%s verified by session %s", shortIDs(sns), by))
		for _, sn := range sns {
			v.status.Snapshots = append(v.status.Snapshots, api.VerifiedSnapshot{Snapshot: sn.ID.Short(), Host: sn.Host, Path: strings.Join(sn.Paths, ",")})
		}
		return v.finish(ctx, api.PhaseSkipped, "")
	}
	var problems []string
	for _, sn := range sns {
		target := filepath.Join(v.Scratch, sanitize(sn.Host))
		fmt.Fprintf(v.Log, "verify: restoring snapshot %s (%s %s) into %s\n", sn.ID.Short(), sn.Host, strings.Join(sn.Paths, ", "), target)
		var rst snapshot.RestoreStats
		err := whenUnlocked(ctx, v.Log, "verify", func() error {
			var err error
			rst, err = snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Progress: &verifyProgress{v: v, ctx: ctx, dir: sn.Host}, Interval: ProgressInterval})
			return err
		})
		if err != nil {
			v.condition(api.ConditionRestoreSucceeded, false, "RestoreFailed", fmt.Sprintf("snapshot %s: %v", sn.ID.Short(), err))
			if ctx.Err() == nil {
				// name what is damaged: read every pack this repository has and report
				// the files of these snapshots that lose content
				if damaged := v.damagedFiles(ctx, r, sns); damaged != "" {
					v.condition(api.ConditionBackupVerified, false, "DamagedData", damaged)
					return v.finish(ctx, api.PhaseFailed, damaged)
				}
			}
			return v.finish(ctx, api.PhaseFailed, fmt.Sprintf("restore of snapshot %s failed: %v", sn.ID.Short(), err))
		}
		vst, err := snapshot.VerifyRestored(ctx, r, sn, snapshot.VerifyOptions{Target: target, Owners: os.Geteuid() == 0})
		if err != nil {
			v.condition(api.ConditionRestoreSucceeded, false, "VerifyFailed", err.Error())
			return v.finish(ctx, api.PhaseFailed, err.Error())
		}
		vs := api.VerifiedSnapshot{Snapshot: sn.ID.Short(), Host: sn.Host, Path: strings.Join(sn.Paths, ","), Files: vst.Files, Size: api.FormatBytes(rst.Bytes)}
		for _, m := range vst.Mismatches {
			vs.Problems = append(vs.Problems, m.String())
		}
		if vst.MismatchCount > 0 {
			problems = append(problems, fmt.Sprintf("snapshot %s: %d entries differ from the snapshot (first: %s)", sn.ID.Short(), vst.MismatchCount, vst.Mismatches[0]))
		}
		fmt.Fprintf(v.Log, "verify: snapshot %s: %d files, %d dirs, %d links compared, %d differ\n", sn.ID.Short(), vst.Files, vst.Dirs, vst.Links, vst.MismatchCount)
		v.status.Snapshots = append(v.status.Snapshots, vs)
	}
	v.status.Progress = nil
	v.condition(api.ConditionRestoreSucceeded, true, "SuccessfullySucceedRestore", fmt.Sprintf("restored %s", shortIDs(sns)))
	if pct, ok := percent(v.Config.CheckData); ok && pct > 0 {
		res, err := check.Run(ctx, r, check.Options{ReadDataPercent: pct})
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("check --read-data-subset %s: %v", v.Config.CheckData, err))
		case !res.OK():
			for _, p := range res.Problems {
				problems = append(problems, fmt.Sprintf("repository: %v", p))
			}
		default:
			fmt.Fprintf(v.Log, "verify: read %s of the repository's data: no problem\n", v.Config.CheckData)
		}
	}
	if len(problems) > 0 {
		v.condition(api.ConditionBackupVerified, false, "VerificationFailed", strings.Join(problems, "; "))
		return v.finish(ctx, api.PhaseFailed, strings.Join(problems, "; "))
	}
	if restoreOnly {
		// the command container runs next and finishes the session
		if err := annotate.RetryFinal(ctx, annotate.FinalWriteWithin, v.write); err != nil {
			return api.PhaseFailed, err
		}
		return api.PhaseRunning, nil
	}
	v.condition(api.ConditionBackupVerified, true, "SuccessfullyVerifyBackup", fmt.Sprintf("every file of %s matches the snapshot", shortIDs(sns)))
	return v.finish(ctx, api.PhaseSucceeded, "")
}

// Command runs the user's command against the restored tree (the command container of a
// session whose restore stage succeeded) and finishes the session with its outcome.
func (v *Verification) Command(ctx context.Context, command string, out io.Writer) (api.Phase, error) {
	if err := v.init(ctx); err != nil {
		return api.PhaseFailed, err
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		msg := "the command image has no /bin/sh to run the command with: use an image with a shell (--image)"
		v.condition(api.ConditionBackupVerified, false, "CommandFailed", msg)
		return v.finish(ctx, api.PhaseFailed, msg)
	}
	tail := newTail(2048)
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Dir = v.Scratch
	cmd.Env = append(os.Environ(), "STASH_VERIFY_DIR="+v.Scratch)
	cmd.Stdout = io.MultiWriter(out, tail)
	cmd.Stderr = io.MultiWriter(out, tail)
	fmt.Fprintf(v.Log, "verify: running %q in %s\n", command, v.Scratch)
	err := cmd.Run()
	if err != nil {
		msg := fmt.Sprintf("command %q failed: %v; output: %s", command, err, strings.TrimSpace(tail.String()))
		v.condition(api.ConditionBackupVerified, false, "CommandFailed", msg)
		return v.finish(ctx, api.PhaseFailed, msg)
	}
	v.condition(api.ConditionBackupVerified, true, "SuccessfullyVerifyBackup",
		fmt.Sprintf("every file matches the snapshot, and %q succeeded", command))
	return v.finish(ctx, api.PhaseSucceeded, "")
}

// damagedFiles runs a full data check and describes the problems that touch sns: each
// damaged file with its snapshot, then the packs.
func (v *Verification) damagedFiles(ctx context.Context, r *repo.Repository, sns []*repo.Snapshot) string {
	fmt.Fprintf(v.Log, "verify: the restore failed; reading every pack to find the damaged files\n")
	res, err := check.Run(ctx, r, check.Options{ReadData: true})
	if err != nil || res.OK() {
		return ""
	}
	mine := map[string]bool{}
	for _, sn := range sns {
		mine[sn.ID.Short()] = true
		mine[sn.ID.String()] = true
	}
	var files, packs []string
	seen := map[string]bool{}
	for _, p := range res.Problems {
		touched := false
		for _, f := range p.Files {
			if !mine[f.Snapshot] && !mine[shortID(f.Snapshot)] {
				continue
			}
			touched = true
			if k := shortID(f.Snapshot) + " " + f.Path; !seen[k] {
				seen[k] = true
				files = append(files, f.Path+" (snapshot "+shortID(f.Snapshot)+")")
			}
		}
		if touched {
			packs = append(packs, fmt.Sprintf("%s %s", p.Kind, shortID(p.Pack)))
		}
	}
	if len(files) == 0 {
		return ""
	}
	sort.Strings(files)
	const show = 20
	more := ""
	if len(files) > show {
		more = fmt.Sprintf(" and %d more", len(files)-show)
		files = files[:show]
	}
	return fmt.Sprintf("damaged files: %s%s (%s)", strings.Join(files, ", "), more, strings.Join(packs, "; "))
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// finish records the end: the phase and duration, the history cleaned to its limit
// (VerificationSessionHistoryCleaned), and for a failure with retries left, a new session.
func (v *Verification) finish(parent context.Context, phase api.Phase, msg string) (api.Phase, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 30*time.Second)
	defer cancel()
	v.status.Phase = phase
	v.status.Progress = nil
	v.status.Error = api.TruncateError(msg)
	v.status.Duration = v.Now().Sub(v.start).Round(time.Second).String()
	if phase == api.PhaseFailed && v.status.RetryLeft > 0 {
		if name, err := v.retry(ctx); err != nil {
			fmt.Fprintf(v.Log, "verify: could not start a retry: %v\n", err)
		} else {
			v.status.Retried = true
			fmt.Fprintf(v.Log, "verify: retry session %s started (%d retries left after it)\n", name, v.status.RetryLeft-1)
		}
	}
	if removed, err := v.cleanHistory(ctx); err != nil {
		v.condition(api.ConditionVerificationSessionHistoryCleaned, false, "CleanupFailed", err.Error())
	} else {
		v.condition(api.ConditionVerificationSessionHistoryCleaned, true, "SuccessfullyCleanedVerificationSessionHistory",
			fmt.Sprintf("%d older session(s) removed", removed))
	}
	within := annotate.FinalWriteWithin
	if parent.Err() != nil {
		within = 20 * time.Second // SIGTERM: the pod's grace period is short
	}
	werr := annotate.RetryFinal(context.WithoutCancel(parent), within, v.write)
	fmt.Fprintf(v.Log, "verify: session %s %s%s\n", v.Job, phase, prefixed(": ", msg))
	if phase == api.PhaseSucceeded || phase == api.PhaseSkipped {
		return phase, werr
	}
	return phase, errors.Join(fmt.Errorf("verification session %s %s: %s", v.Job, phase, msg), werr)
}

// retry creates the next session, with one retry less.
func (v *Verification) retry(ctx context.Context) (string, error) {
	var owner *metav1.OwnerReference
	if len(v.self.OwnerReferences) > 0 {
		o := v.self.OwnerReferences[0]
		owner = &o
	}
	name := verifyjob.SessionName(v.Config, v.Now())
	if name == v.Job {
		name = verifyjob.SessionName(v.Config, v.Now().Add(time.Second))
	}
	job, err := verifyjob.SessionJob(v.Config, v.Namespace, name, v.RepoURL, owner, v.status.RetryLeft-1)
	if err != nil {
		return "", err
	}
	job.Labels[api.LabelRetryOf] = v.Job
	_, err = v.Client.BatchV1().Jobs(v.Namespace).Create(ctx, job, metav1.CreateOptions{FieldManager: annotate.FieldManager})
	return name, err
}

// cleanHistory deletes the oldest finished sessions of this verification beyond its
// history limit (this one counts as kept).
func (v *Verification) cleanHistory(ctx context.Context) (int, error) {
	limit := v.Config.HistoryLimit
	if limit <= 0 {
		return 0, nil
	}
	list, err := v.Client.BatchV1().Jobs(v.Namespace).List(ctx, metav1.ListOptions{LabelSelector: fmt.Sprintf("%s=%s,%s=%s",
		api.LabelVerification, v.Config.Name, api.LabelComponent, api.ComponentVerifySession)})
	if err != nil {
		return 0, err
	}
	jobs := list.Items
	sort.Slice(jobs, func(i, j int) bool { return jobs[j].CreationTimestamp.Before(&jobs[i].CreationTimestamp) })
	removed, kept := 0, 0
	background := metav1.DeletePropagationBackground
	for _, j := range jobs {
		if j.Name == v.Job {
			kept++
			continue
		}
		var st api.VerifyStatus
		finished := jobFinished(&j)
		if raw, ok := j.Annotations[api.AnnotationVerifyStatus]; ok && api.Decode(api.AnnotationVerifyStatus, raw, &st) == nil && st.Phase.Final() {
			finished = true
		}
		if kept < limit || !finished {
			kept++
			continue
		}
		err := v.Client.BatchV1().Jobs(v.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &background})
		if err != nil && !apierrors.IsNotFound(err) {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

// verifiedBefore returns a Succeeded session of this verification that verified exactly
// these snapshots, for a session verifying "latest" (a schedule that finds no new backup).
func (v *Verification) verifiedBefore(ctx context.Context, sns []*repo.Snapshot) string {
	if v.Config.Snapshot != "" && v.Config.Snapshot != "latest" {
		return ""
	}
	list, err := v.Client.BatchV1().Jobs(v.Namespace).List(ctx, metav1.ListOptions{LabelSelector: fmt.Sprintf("%s=%s,%s=%s",
		api.LabelVerification, v.Config.Name, api.LabelComponent, api.ComponentVerifySession)})
	if err != nil {
		return ""
	}
	want := shortIDs(sns)
	for _, j := range list.Items {
		var st api.VerifyStatus
		raw, ok := j.Annotations[api.AnnotationVerifyStatus]
		if j.Name == v.Job || !ok || api.Decode(api.AnnotationVerifyStatus, raw, &st) != nil || st.Phase != api.PhaseSucceeded {
			continue
		}
		var ids []string
		for _, s := range st.Snapshots {
			ids = append(ids, s.Snapshot)
		}
		sort.Strings(ids)
		if strings.Join(ids, ", ") == want {
			return j.Name
		}
	}
	return ""
}

// snapshots resolves what to verify: the snapshot named, or the latest of each host and
// path (of the configuration, the host and the paths given).
func (v *Verification) snapshots(ctx context.Context) ([]*repo.Snapshot, *repo.Repository, func(), error) {
	if v.RepoURL == "" {
		return nil, nil, nil, fmt.Errorf("no repository URL: the repository Secret has no %s key", api.SecretKeyRepository)
	}
	st, err := store.Open(ctx, v.RepoURL, store.Options{})
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := repo.Open(ctx, st, v.Password, repocmd.HostRepoOptions(os.Getenv, v.Log))
	if err == nil {
		err = r.LoadIndex(ctx)
	}
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	all, err := r.Snapshots(ctx)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	sns, err := verifyjob.SelectSnapshots(all, v.Config)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return sns, r, func() { st.Close() }, nil
}

func shortIDs(sns []*repo.Snapshot) string {
	ids := make([]string, 0, len(sns))
	for _, sn := range sns {
		ids = append(ids, sn.ID.Short())
	}
	sort.Strings(ids)
	return strings.Join(ids, ", ")
}

func percent(s string) (float64, bool) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "%")
	if s == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// sanitize makes a host name a directory name.
func sanitize(host string) string {
	return strings.NewReplacer("/", "_", "\x00", "_").Replace(host)
}

type verifyProgress struct {
	v   *Verification
	ctx context.Context
	dir string
}

func (p *verifyProgress) Report(s snapshot.Status) {
	p.v.status.Progress = &api.Progress{Directory: p.dir, FilesDone: s.FilesDone, FilesTotal: s.FilesTotal,
		BytesDone: s.BytesDone, BytesTotal: s.BytesTotal, BytesPerS: s.Rate()}
	_ = p.v.write(p.ctx)
}

func (p *verifyProgress) Done(snapshot.Status) {}

// InstallSelf copies this program to dir, for a user's image to run it.
func InstallSelf(dir string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	in, err := os.Open(exe)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(filepath.Join(dir, "stash-job"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// LaunchVerification creates a verification session from the launcher Job launcher (a
// scheduled run of the verification's CronJob), owned by that CronJob.
func LaunchVerification(ctx context.Context, c kubernetes.Interface, ns, launcher string, cfg api.VerifyConfig, repoURL string, now time.Time) (string, error) {
	self, err := c.BatchV1().Jobs(ns).Get(ctx, launcher, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read own job %s/%s: %w", ns, launcher, err)
	}
	var owner *metav1.OwnerReference
	if len(self.OwnerReferences) > 0 {
		o := self.OwnerReferences[0]
		owner = &o
	}
	name := verifyjob.SessionName(cfg, now)
	job, err := verifyjob.SessionJob(cfg, ns, name, repoURL, owner, cfg.Retries)
	if err != nil {
		return "", err
	}
	if _, err := c.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{FieldManager: annotate.FieldManager}); err != nil {
		return "", fmt.Errorf("create verification session %s: %w", name, err)
	}
	return name, nil
}
