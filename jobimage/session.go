package jobimage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/workload"
	"github.com/kubectl-stash/kubectl-stash/jobimage/annotate"
)

// Session runs one backup session: the pod of a session Job (created by the CronJob or by
// `kubectl stash trigger`).
type Session struct {
	Client    kubernetes.Interface
	Namespace string
	// Job is the session Job's name.
	Job    string
	Config api.BackupConfig
	// RepoURL is the repository URL from the Secret (pvc:// is mapped for host pods).
	RepoURL string
	Log     io.Writer
	Now     func() time.Time
	// Poll is how often hosts are looked at (default 2s).
	Poll time.Duration
	// Grace is how long timed-out hosts get to stop before they are recorded (default 30s).
	Grace time.Duration
	// PodCreateGrace is how long a host Job may go without a pod before the Job
	// controller's FailedCreate events are taken as final (default 15s: its first retries
	// come within seconds).
	PodCreateGrace time.Duration

	// hostLabel and hostComponent select the session's host Jobs: a backup session's by
	// default, a restore session's when it runs one.
	hostLabel, hostComponent string
	// afterHosts runs once every host is final, before the session's end is recorded:
	// the backup session's retention condition and prune.
	afterHosts func(ctx context.Context, hs []api.HostStatus, status *api.SessionStatus)
	// memberStatus fills a batch session's member sections from its hosts.
	memberStatus func(hs []api.HostStatus, status *api.SessionStatus)
}

func (s *Session) defaults() {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Log == nil {
		s.Log = io.Discard
	}
	if s.Poll <= 0 {
		s.Poll = 2 * time.Second
	}
	if s.Grace <= 0 {
		s.Grace = 30 * time.Second
	}
	if s.PodCreateGrace <= 0 {
		s.PodCreateGrace = 15 * time.Second
	}
	if s.hostLabel == "" {
		s.hostLabel, s.hostComponent = api.LabelBackupSession, api.ComponentHost
	}
}

// Run resolves the hosts, creates a host Job for each, waits for them, and writes the
// session status on the session Job. It returns the session's final phase; the error is
// set for anything but Succeeded and Skipped.
func (s *Session) Run(ctx context.Context) (api.Phase, error) {
	s.defaults()
	jobs := s.Client.BatchV1().Jobs(s.Namespace)
	self, err := jobs.Get(ctx, s.Job, metav1.GetOptions{})
	if err != nil {
		return api.PhaseFailed, fmt.Errorf("read own job %s/%s: %w", s.Namespace, s.Job, err)
	}
	ann := annotate.NewJobAnnotator(s.Client, s.Namespace, s.Job)
	start := s.Now()
	status := api.SessionStatus{SchemaVersion: api.SchemaVersion, Phase: api.PhaseRunning, StartTime: start.UTC().Format(time.RFC3339)}
	finish := func(phase api.Phase, msg string) (api.Phase, error) {
		status.Phase = phase
		if msg != "" {
			status.Error = msg
		}
		status.CompletionTime = s.Now().UTC().Format(time.RFC3339)
		within := annotate.FinalWriteWithin
		if ctx.Err() != nil {
			within = 20 * time.Second // SIGTERM: the pod's grace period is short
		}
		status.Error = api.TruncateError(status.Error)
		werr := annotate.RetryFinal(context.WithoutCancel(ctx), within, func(wctx context.Context) error {
			return ann.AnnotateJSON(wctx, api.AnnotationSessionStatus, status)
		})
		fmt.Fprintf(s.Log, "session %s: %s%s\n", s.Job, phase, prefixed(": ", status.Error))
		var err error
		if phase != api.PhaseSucceeded && phase != api.PhaseSkipped {
			err = fmt.Errorf("session %s %s: %s", s.Job, phase, status.Error)
		}
		return phase, errors.Join(err, werr)
	}

	if other, err := s.runningSibling(ctx, self); err != nil {
		return finish(api.PhaseFailed, err.Error())
	} else if other != "" {
		return finish(api.PhaseSkipped, fmt.Sprintf("session %s of backup configuration %s is still running; two sessions never write the same hosts at once", other, s.Config.Name))
	}
	if err := ann.AnnotateJSON(ctx, api.AnnotationSessionStatus, status); err != nil {
		return api.PhaseFailed, err
	}

	repoClaim, repoFileURL, _, err := api.PVCRepository(s.RepoURL)
	if err != nil {
		return finish(api.PhaseFailed, err.Error())
	}
	deadline, stopTimer, err := s.deadline(s.Config.Timeout, self.CreationTimestamp.Time)
	if err != nil {
		return finish(api.PhaseFailed, err.Error())
	}
	defer stopTimer()

	members := s.Config.MemberConfigs()
	batch := s.Config.IsBatch()
	// a member whose hosts cannot be resolved fails alone in a batch: the others still run
	memberErr := map[api.Target]string{}
	if batch {
		status.Members = make([]api.MemberStatus, len(members))
		for i, m := range members {
			status.Members[i] = api.MemberStatus{Target: m.Target, Phase: api.PhasePending}
		}
		s.memberStatus = func(hs []api.HostStatus, status *api.SessionStatus) { memberSections(hs, status, memberErr) }
	}
	startMember := func(m api.BackupConfig) (int, error) {
		hosts, err := s.resolveHosts(ctx, m)
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(s.Log, "session %s: %d host(s) of %s\n", s.Job, len(hosts), m.Target)
		for _, h := range hosts {
			job, err := HostJob(self, m, h, repoClaim, repoFileURL, s.Now().UTC().Format(time.RFC3339))
			if err != nil {
				return 0, fmt.Errorf("host %s: %v", h.Name, err)
			}
			if _, err := jobs.Create(ctx, job, metav1.CreateOptions{FieldManager: annotate.FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
				// a restarted session pod finds its host Jobs already there and adopts them
				return 0, fmt.Errorf("create host job %s: %v", job.Name, err)
			}
			if h.Err != nil {
				fmt.Fprintf(s.Log, "host %s: Failed: %v\n", h.Name, h.Err)
			} else {
				fmt.Fprintf(s.Log, "host %s: job %s created\n", h.Name, job.Name)
			}
		}
		return len(hosts), nil
	}
	sequential := s.Config.ExecutionOrder == api.OrderSequential
	nHosts := 0
	var hs []api.HostStatus
	for i, m := range members {
		n, err := startMember(m)
		if err != nil {
			if !batch {
				return finish(api.PhaseFailed, err.Error())
			}
			memberErr[m.Target] = err.Error()
			fmt.Fprintf(s.Log, "session %s: member %s: Failed: %v\n", s.Job, m.Target, err)
		}
		nHosts += n
		status.TotalHosts = nHosts
		if sequential || i == len(members)-1 {
			// Sequential: each member's hosts end before the next member starts
			var stop string
			if hs, stop = s.waitHosts(ctx, ann, &status, nHosts, deadline, s.Config.Timeout); stop != "" {
				return finish(api.PhaseFailed, stop)
			}
		}
	}

	s.retentionCondition(hs, &status)
	hookConditions(hs, &status, s.Now())
	if s.Config.Prune && status.Hosts.Failed == 0 && len(memberErr) == 0 {
		s.prune(ctx, self, repoClaim, repoFileURL, &status)
	}
	if s.memberStatus != nil {
		s.memberStatus(hs, &status)
	}
	var failed []string
	if status.Hosts.Failed > 0 {
		failed = append(failed, fmt.Sprintf("%d of %d hosts failed", status.Hosts.Failed, status.TotalHosts))
	}
	for _, m := range status.Members {
		if m.Phase == api.PhaseFailed {
			failed = append(failed, fmt.Sprintf("member %s failed", m.Target))
		}
	}
	if len(failed) > 0 {
		status.Error = strings.Join(failed, "; ")
		return finish(api.PhaseFailed, "")
	}
	return finish(api.PhaseSucceeded, "")
}

// resolveHosts finds the hosts of one member: the workload's (or volume's) hosts, or the
// one host of a database, in whose pod the dump runs.
func (s *Session) resolveHosts(ctx context.Context, m api.BackupConfig) ([]workload.Host, error) {
	if m.Dump == nil {
		return workload.ResolveHosts(ctx, s.Client, s.Namespace, m)
	}
	h := workload.Host{Name: workload.SingleHost(m.Alias)}
	pod, d, err := workload.DumpPod(ctx, s.Client, s.Namespace, m.Target, *m.Dump)
	if err != nil {
		h.Err = err
		return []workload.Host{h}, nil
	}
	resolved, err := d.Resolved()
	if err != nil {
		h.Err = err
		return []workload.Host{h}, nil
	}
	h.Pod, h.Dump = pod.Name, &resolved
	return []workload.Host{h}, nil
}

// memberSections fills a batch session's sections, one per member: its hosts, and its
// phase (Succeeded only when every host of it succeeded).
func memberSections(hs []api.HostStatus, status *api.SessionStatus, memberErr map[api.Target]string) {
	for i := range status.Members {
		m := &status.Members[i]
		var mine []api.HostStatus
		for _, h := range hs {
			if h.Target == m.Target.String() {
				mine = append(mine, h)
			}
		}
		m.Hosts, _ = summarize(mine)
		m.TotalHosts = len(mine)
		switch {
		case memberErr[m.Target] != "":
			m.Phase, m.Error = api.PhaseFailed, memberErr[m.Target]
		case len(mine) == 0:
			m.Phase = api.PhasePending
		case m.Hosts.Failed > 0 && allFinal(mine):
			m.Phase = api.PhaseFailed
			m.Error = fmt.Sprintf("%d of %d hosts failed", m.Hosts.Failed, len(mine))
		case allFinal(mine):
			m.Phase = api.PhaseSucceeded
		default:
			m.Phase = api.PhaseRunning
		}
	}
}

// hookConditions records the seeds' PreBackupHookExecutionSucceeded,
// PostBackupHookExecutionSucceeded (and their restore counterparts) from the hosts' hook
// outcomes, for the phases whose hooks ran.
func hookConditions(hs []api.HostStatus, status *api.SessionStatus, now time.Time) {
	for _, phase := range []string{api.HookPreBackup, api.HookPostBackup, api.HookPreRestore, api.HookPostRestore} {
		ran, ok := false, true
		var msgs []string
		for _, h := range hs {
			for _, r := range h.Hooks {
				if r.Phase != phase {
					continue
				}
				ran = true
				switch {
				case r.Skipped:
					msgs = append(msgs, fmt.Sprintf("%s: %s: %s", h.Hostname, r.Name, r.Message))
				case r.Succeeded:
					msgs = append(msgs, fmt.Sprintf("%s: %s: succeeded", h.Hostname, r.Name))
				default:
					ok = false
					msgs = append(msgs, fmt.Sprintf("%s: %s: %s", h.Hostname, r.Name, r.Message))
				}
			}
		}
		if !ran {
			continue
		}
		c := api.Condition{Type: api.HookCondition(phase), Status: "True", Reason: "SuccessfullyExecutedHook",
			Message: api.TruncateError(strings.Join(msgs, "; ")), LastTransitionTime: now.UTC().Format(time.RFC3339)}
		if !ok {
			c.Status, c.Reason = "False", "FailedToExecuteHook"
		}
		setCondition(status, c)
	}
}

// setCondition sets (or replaces) one condition of the session status.
func setCondition(status *api.SessionStatus, c api.Condition) {
	for i := range status.Conditions {
		if status.Conditions[i].Type == c.Type {
			status.Conditions[i] = c
			return
		}
	}
	status.Conditions = append(status.Conditions, c)
}

// retentionCondition records RetentionPolicyApplied from what each host says it removed.
func (s *Session) retentionCondition(hs []api.HostStatus, status *api.SessionStatus) {
	if s.Config.Retention.Empty() {
		return
	}
	var applied, missing []string
	for _, h := range hs {
		if h.Retention != "" {
			applied = append(applied, h.Hostname+": "+h.Retention)
		} else {
			missing = append(missing, h.Hostname)
		}
	}
	c := api.Condition{Type: api.ConditionRetentionPolicyApplied, Status: "True", Reason: "SuccessfullyAppliedRetentionPolicy",
		Message: strings.Join(applied, "; "), LastTransitionTime: s.Now().UTC().Format(time.RFC3339)}
	if len(missing) > 0 {
		c.Status, c.Reason = "False", "RetentionPolicyNotApplied"
		c.Message = prefixed("", strings.Join(applied, "; ")) + prefixed("; ", "not applied on "+strings.Join(missing, ", ")+" (the host failed before it)")
	}
	c.Message = api.TruncateError(c.Message)
	setCondition(status, c)
}

// prune runs `stash-job prune` in a Job of the session (the session pod has no password)
// and records RepositoryPruned with what it reclaimed.
func (s *Session) prune(ctx context.Context, self *batchv1.Job, repoClaim, repoFileURL string, status *api.SessionStatus) {
	cond := api.Condition{Type: api.ConditionRepositoryPruned, Status: "False", Reason: "PruneFailed", LastTransitionTime: s.Now().UTC().Format(time.RFC3339)}
	defer func() {
		cond.Message = api.TruncateError(cond.Message)
		setCondition(status, cond)
	}()
	job, err := PruneJob(self, s.Config, repoClaim, repoFileURL)
	if err != nil {
		cond.Message = err.Error()
		return
	}
	jobs := s.Client.BatchV1().Jobs(s.Namespace)
	if _, err := jobs.Create(ctx, job, metav1.CreateOptions{FieldManager: annotate.FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		cond.Message = fmt.Sprintf("create job %s: %v", job.Name, err)
		return
	}
	fmt.Fprintf(s.Log, "session %s: prune job %s created\n", s.Job, job.Name)
	for {
		j, err := jobs.Get(ctx, job.Name, metav1.GetOptions{})
		if err == nil {
			if failed, why := jobFailed(j); failed {
				cond.Message = s.podFailure(ctx, job.Name, why)
				fmt.Fprintf(s.Log, "session %s: prune failed: %s\n", s.Job, cond.Message)
				return
			}
			if jobFinished(j) {
				cond.Status, cond.Reason = "True", "SuccessfullyPrunedRepository"
				cond.Message = s.terminationMessage(ctx, job.Name)
				fmt.Fprintf(s.Log, "session %s: pruned: %s\n", s.Job, cond.Message)
				return
			}
		}
		select {
		case <-ctx.Done():
			cond.Message = "canceled before the prune ended"
			return
		case <-time.After(s.Poll):
		}
	}
}

// terminationMessage is the last line a pod of job wrote (its termination message, or
// the end of its log), for a short summary.
func (s *Session) terminationMessage(ctx context.Context, job string) string {
	pods, err := s.Client.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: api.JobNameLabel + "=" + job})
	if err != nil {
		return ""
	}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.ExitCode == 0 {
				lines := strings.Split(strings.TrimSpace(t.Message), "\n")
				return lines[len(lines)-1]
			}
		}
	}
	return ""
}

// await watches the host Jobs until all nHosts are final, the timeout (measured from
// created) passes, or ctx ends, keeping the session status current; finish records the end.
func (s *Session) await(ctx context.Context, ann *annotate.JobAnnotator, status *api.SessionStatus, nHosts int, timeout string, created time.Time,
	finish func(api.Phase, string) (api.Phase, error)) (api.Phase, error) {
	deadline, stopTimer, err := s.deadline(timeout, created)
	if err != nil {
		return finish(api.PhaseFailed, err.Error())
	}
	defer stopTimer()
	hs, stop := s.waitHosts(ctx, ann, status, nHosts, deadline, timeout)
	if stop != "" {
		return finish(api.PhaseFailed, stop)
	}
	if s.afterHosts != nil {
		s.afterHosts(ctx, hs, status)
	}
	phase := api.PhaseSucceeded
	if status.Hosts.Failed > 0 {
		phase = api.PhaseFailed
		status.Error = fmt.Sprintf("%d of %d hosts failed", status.Hosts.Failed, status.TotalHosts)
	}
	return finish(phase, "")
}

// deadline is the session's timeout as a channel (nil without one), from created.
func (s *Session) deadline(timeout string, created time.Time) (<-chan time.Time, func(), error) {
	if timeout == "" {
		return nil, func() {}, nil
	}
	d, err := time.ParseDuration(timeout)
	if err != nil {
		return nil, func() {}, fmt.Errorf("timeout %q: %v", timeout, err)
	}
	timer := time.NewTimer(d - s.Now().Sub(created))
	return timer.C, func() { timer.Stop() }, nil
}

// waitHosts watches the host Jobs until nHosts of them are final and returns their
// statuses, keeping the session status current. When ctx ends or the deadline passes it
// stops the hosts still running and returns why (stop is "" otherwise).
func (s *Session) waitHosts(ctx context.Context, ann *annotate.JobAnnotator, status *api.SessionStatus, nHosts int,
	deadline <-chan time.Time, timeout string) (hs []api.HostStatus, stop string) {
	tick := time.NewTicker(s.Poll)
	defer tick.Stop()
	last := ""
	for {
		hs, err := s.hostStates(ctx)
		if err == nil {
			status.Hosts, status.SessionDuration = summarize(hs)
			if s.memberStatus != nil {
				s.memberStatus(hs, status)
			}
			if b, _ := json.Marshal(status); string(b) != last {
				if err := ann.AnnotateJSON(ctx, api.AnnotationSessionStatus, status); err == nil {
					last = string(b)
				}
			}
			if len(hs) >= nHosts && allFinal(hs) {
				return hs, ""
			}
		}
		select {
		case <-ctx.Done():
			reason := s.cancelReason(context.WithoutCancel(ctx))
			s.stopHosts(context.WithoutCancel(ctx), reason)
			hs, _ := s.hostStates(context.WithoutCancel(ctx))
			status.Hosts, status.SessionDuration = summarize(hs)
			if s.memberStatus != nil {
				s.memberStatus(hs, status)
			}
			return hs, reason
		case <-deadline:
			msg := fmt.Sprintf("deadline exceeded: the session did not finish within its timeout of %s", timeout)
			s.stopHosts(ctx, "deadline exceeded")
			hs, _ := s.hostStates(ctx)
			status.Hosts, status.SessionDuration = summarize(hs)
			if s.memberStatus != nil {
				s.memberStatus(hs, status)
			}
			return hs, msg
		case <-tick.C:
		}
	}
}

// cancelReason says why the session is stopping: canceled by someone (kubectl stash
// cancel annotates the Job before suspending it), or stopped (its pod was deleted).
func (s *Session) cancelReason(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if j, err := s.Client.BatchV1().Jobs(s.Namespace).Get(ctx, s.Job, metav1.GetOptions{}); err == nil {
		if by := j.Annotations[api.AnnotationCanceledBy]; by != "" {
			return "canceled by " + strings.TrimPrefix(by, "kubectl stash cancel by ") + " (kubectl stash cancel)"
		}
	}
	return "canceled: the session was stopped"
}

// runningSibling returns the name of an older session of the same configuration that has
// not finished. Among sessions created together, the older (then the smaller name) runs.
func (s *Session) runningSibling(ctx context.Context, self *batchv1.Job) (string, error) {
	list, err := s.Client.BatchV1().Jobs(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: fmt.Sprintf("%s=%s,%s=%s",
		api.LabelBackupConfiguration, s.Config.Name, api.LabelComponent, api.ComponentSession)})
	if err != nil {
		return "", fmt.Errorf("list sessions of %s: %w", s.Config.Name, err)
	}
	for _, j := range list.Items {
		if j.Name == self.Name || jobFinished(&j) {
			continue
		}
		if st, ok := sessionStatusOf(&j); ok && st.Phase.Final() {
			continue
		}
		older := j.CreationTimestamp.Before(&self.CreationTimestamp) ||
			(j.CreationTimestamp.Equal(&self.CreationTimestamp) && j.Name < self.Name)
		if older {
			return j.Name, nil
		}
	}
	return "", nil
}

func sessionStatusOf(j *batchv1.Job) (api.SessionStatus, bool) {
	var st api.SessionStatus
	v, ok := j.Annotations[api.AnnotationSessionStatus]
	if !ok || api.Decode(api.AnnotationSessionStatus, v, &st) != nil {
		return st, false
	}
	return st, true
}

func jobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func jobFailed(j *batchv1.Job) (bool, string) {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return true, c.Reason + ": " + c.Message
		}
	}
	return false, ""
}

// hostStates reads every host Job of this session and settles the hosts whose pod ended
// without a final status of its own (OOM-killed, evicted, deleted): they are recorded
// Failed with the reason, on their Job, so no host stays Running forever.
func (s *Session) hostStates(ctx context.Context) ([]api.HostStatus, error) {
	list, err := s.Client.BatchV1().Jobs(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: fmt.Sprintf("%s=%s,%s=%s",
		s.hostLabel, s.Job, api.LabelComponent, s.hostComponent)})
	if err != nil {
		return nil, err
	}
	out := make([]api.HostStatus, 0, len(list.Items))
	for i := range list.Items {
		j := &list.Items[i]
		st := api.HostStatus{SchemaVersion: api.SchemaVersion, Hostname: j.Labels[api.LabelHost], Phase: api.PhasePending}
		if v, ok := j.Annotations[api.AnnotationHostStatus]; ok {
			_ = api.Decode(api.AnnotationHostStatus, v, &st)
		}
		st.Job, st.Target = j.Name, j.Annotations[api.AnnotationTarget]
		if !st.Phase.Final() {
			if failed, why := jobFailed(j); failed {
				st.Phase = api.PhaseFailed
				st.Progress = nil
				st.Error = s.podFailure(ctx, j.Name, why)
				if st.StartTime != "" {
					if t, err := time.Parse(time.RFC3339, st.StartTime); err == nil {
						st.Duration = s.Now().Sub(t).Round(time.Millisecond).String()
					}
				}
				st.UpdateTime = s.Now().UTC().Format(time.RFC3339)
				if err := annotate.NewJobAnnotator(s.Client, s.Namespace, j.Name).AnnotateJSON(ctx, api.AnnotationHostStatus, st); err != nil {
					return nil, err
				}
				fmt.Fprintf(s.Log, "host %s: Failed: %s\n", st.Hostname, st.Error)
			} else if jobFinished(j) {
				st.Phase = api.PhaseFailed
				st.Error = "the host pod exited without writing its final status"
			} else if why := s.podNotCreated(ctx, j); why != "" {
				// the Job controller cannot create the pod (Pod Security, quota, a missing
				// ServiceAccount) and would retry forever: the host fails with its reason
				_, _ = s.Client.BatchV1().Jobs(s.Namespace).Patch(ctx, j.Name, types.MergePatchType, []byte(`{"spec":{"suspend":true}}`),
					metav1.PatchOptions{FieldManager: annotate.FieldManager})
				st.Phase, st.Progress, st.Duration = api.PhaseFailed, nil, "0s"
				st.Error = "the host pod could not be created: " + why
				st.UpdateTime = s.Now().UTC().Format(time.RFC3339)
				if err := annotate.NewJobAnnotator(s.Client, s.Namespace, j.Name).AnnotateJSON(ctx, api.AnnotationHostStatus, st); err != nil {
					return nil, err
				}
				fmt.Fprintf(s.Log, "host %s: Failed: %s\n", st.Hostname, st.Error)
			}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Hostname < out[k].Hostname })
	return out, nil
}

// podNotCreated returns the reason the Job controller gives for not creating a host Job's
// pod, once the Job has had no pod for podNotCreatedAfter; "" otherwise.
func (s *Session) podNotCreated(ctx context.Context, j *batchv1.Job) string {
	if j.Status.Active > 0 || j.Status.Failed > 0 || j.Status.Succeeded > 0 || (j.Spec.Suspend != nil && *j.Spec.Suspend) ||
		s.Now().Sub(j.CreationTimestamp.Time) < s.PodCreateGrace {
		return ""
	}
	pods, err := s.Client.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: api.JobNameLabel + "=" + j.Name})
	if err != nil || len(pods.Items) > 0 {
		return ""
	}
	events, err := s.Client.CoreV1().Events(s.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Job,involvedObject.name=" + j.Name + ",reason=FailedCreate"})
	if err != nil || len(events.Items) == 0 {
		return ""
	}
	latest := events.Items[0]
	for _, e := range events.Items[1:] {
		if e.LastTimestamp.After(latest.LastTimestamp.Time) {
			latest = e
		}
	}
	return latest.Message
}

// podFailure explains why a host Job's pod ended without a status: the container's
// termination reason (OOMKilled), an eviction, or the pod's disappearance.
func (s *Session) podFailure(ctx context.Context, job, jobReason string) string {
	pods, err := s.Client.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: api.JobNameLabel + "=" + job})
	if err != nil || len(pods.Items) == 0 {
		return "the host pod vanished before it reported a result (" + jobReason + ")"
	}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.Reason == "OOMKilled" {
				return "OOMKilled: the host pod ran out of memory; raise its limit (--memory-limit)"
			}
			if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
				return fmt.Sprintf("the host container exited with code %d (%s) before it reported a result%s", t.ExitCode, t.Reason, prefixed(": ", strings.TrimSpace(t.Message)))
			}
		}
		if p.Status.Reason != "" {
			return fmt.Sprintf("the host pod was %s: %s", p.Status.Reason, p.Status.Message)
		}
	}
	return "the host pod ended before it reported a result (" + jobReason + ")"
}

// stopHosts suspends the host Jobs still running (Kubernetes deletes their pods), waits a
// grace period for them to go, and records them Failed with reason.
func (s *Session) stopHosts(ctx context.Context, reason string) {
	hs, err := s.hostStates(ctx)
	if err != nil {
		return
	}
	jobs := s.Client.BatchV1().Jobs(s.Namespace)
	var stopped []string
	for _, h := range hs {
		if h.Phase.Final() {
			continue
		}
		name := h.Job
		if _, err := jobs.Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"suspend":true}}`),
			metav1.PatchOptions{FieldManager: annotate.FieldManager}); err == nil {
			stopped = append(stopped, name)
		}
	}
	// the host pods write "canceled" when they get SIGTERM; the session's reason is the
	// one that counts, so it is written after they are gone
	end := s.Now().Add(s.Grace)
	for _, name := range stopped {
		for s.Now().Before(end) {
			pods, err := s.Client.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: api.JobNameLabel + "=" + name})
			if err != nil || len(pods.Items) == 0 {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		j, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		st := api.HostStatus{SchemaVersion: api.SchemaVersion, Hostname: j.Labels[api.LabelHost]}
		if v, ok := j.Annotations[api.AnnotationHostStatus]; ok {
			_ = api.Decode(api.AnnotationHostStatus, v, &st)
		}
		st.Phase, st.Error, st.Progress = api.PhaseFailed, reason, nil
		if t, err := time.Parse(time.RFC3339, st.StartTime); err == nil && st.StartTime != "" {
			st.Duration = s.Now().Sub(t).Round(time.Millisecond).String()
		}
		st.UpdateTime = s.Now().UTC().Format(time.RFC3339)
		_ = annotate.NewJobAnnotator(s.Client, s.Namespace, name).AnnotateJSON(ctx, api.AnnotationHostStatus, st)
		fmt.Fprintf(s.Log, "host %s: Failed: %s\n", st.Hostname, reason)
	}
}

// summarize counts hosts by phase and sums their durations (the seed's sessionDuration).
func summarize(hs []api.HostStatus) (api.HostCounts, string) {
	var c api.HostCounts
	var total time.Duration
	timed := false
	for _, h := range hs {
		switch h.Phase {
		case api.PhaseSucceeded:
			c.Succeeded++
		case api.PhaseFailed:
			c.Failed++
		case api.PhaseRunning:
			c.Running++
		case api.PhaseSkipped:
			c.Skipped++
		default:
			c.Pending++
		}
		if d, err := time.ParseDuration(h.Duration); err == nil {
			total += d
			timed = true
		}
	}
	if !timed {
		return c, "" // no host has finished: the duration is not known yet
	}
	return c, total.String()
}

func allFinal(hs []api.HostStatus) bool {
	for _, h := range hs {
		if !h.Phase.Final() {
			return false
		}
	}
	return true
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}
