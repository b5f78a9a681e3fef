package jobimage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
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

// RestoreSession runs one restore session: the pod of a restore session Job created by
// `kubectl stash restore`.
type RestoreSession struct {
	Client    kubernetes.Interface
	Namespace string
	Job       string
	Config    api.RestoreConfig
	RepoURL   string
	Log       io.Writer
	Now       func() time.Time
	// Poll, Grace and PodCreateGrace are as for a backup Session.
	Poll, Grace, PodCreateGrace time.Duration
	// ScaleTimeout bounds the wait for a scaled-down workload's pods to go (default 5m).
	ScaleTimeout time.Duration
}

// Run scales the target down if asked, resolves its hosts, applies the rules, creates a
// restore Job per host that gets data (and a record for each host that gets none), waits,
// scales the target back up, and writes the session status. It returns the final phase;
// the error is set unless Succeeded.
func (rs *RestoreSession) Run(ctx context.Context) (api.Phase, error) {
	s := &Session{Client: rs.Client, Namespace: rs.Namespace, Job: rs.Job, Log: rs.Log, Now: rs.Now, Poll: rs.Poll,
		Grace: rs.Grace, PodCreateGrace: rs.PodCreateGrace, hostLabel: api.LabelRestoreSession, hostComponent: api.ComponentRestoreHost}
	s.defaults()
	if rs.ScaleTimeout <= 0 {
		rs.ScaleTimeout = 5 * time.Minute
	}
	cfg := rs.Config
	jobs := rs.Client.BatchV1().Jobs(rs.Namespace)
	self, err := jobs.Get(ctx, rs.Job, metav1.GetOptions{})
	if err != nil {
		return api.PhaseFailed, fmt.Errorf("read own job %s/%s: %w", rs.Namespace, rs.Job, err)
	}
	ann := annotate.NewJobAnnotator(rs.Client, rs.Namespace, rs.Job)
	start := s.Now()
	status := api.SessionStatus{SchemaVersion: api.SchemaVersion, Phase: api.PhaseRunning, StartTime: start.UTC().Format(time.RFC3339)}
	scaledDown := false
	finish := func(phase api.Phase, msg string) (api.Phase, error) {
		if scaledDown {
			// the workload comes back whatever the outcome: a failed restore must not
			// leave the application down; the data it finds is the user's to judge
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			if err := rs.scaleUp(wctx); err != nil {
				msg = joinMsg(msg, err.Error())
				phase = api.PhaseFailed
			}
			cancel()
		}
		status.Phase = phase
		if msg != "" {
			status.Error = joinMsg(status.Error, msg)
		}
		status.CompletionTime = s.Now().UTC().Format(time.RFC3339)
		status.Error = api.TruncateError(status.Error)
		within := annotate.FinalWriteWithin
		if ctx.Err() != nil {
			within = 20 * time.Second // SIGTERM: the pod's grace period is short
		}
		werr := annotate.RetryFinal(context.WithoutCancel(ctx), within, func(wctx context.Context) error {
			return ann.AnnotateJSON(wctx, api.AnnotationSessionStatus, status)
		})
		fmt.Fprintf(s.Log, "restore session %s: %s%s\n", rs.Job, phase, prefixed(": ", status.Error))
		var err error
		if phase != api.PhaseSucceeded {
			err = fmt.Errorf("restore session %s %s: %s", rs.Job, phase, status.Error)
		}
		return phase, errors.Join(err, werr)
	}
	if other, err := rs.runningSibling(ctx, self); err != nil {
		return finish(api.PhaseFailed, err.Error())
	} else if other != "" {
		return finish(api.PhaseFailed, fmt.Sprintf("restore session %s into %s is still running: two restores never write one target at once", other, cfg.Target))
	}
	if err := ann.AnnotateJSON(ctx, api.AnnotationSessionStatus, status); err != nil {
		return api.PhaseFailed, err
	}
	if err := api.ValidateRules(cfg.Rules); err != nil {
		return finish(api.PhaseFailed, err.Error())
	}
	repoClaim, repoFileURL, _, err := api.PVCRepository(rs.RepoURL)
	if err != nil {
		return finish(api.PhaseFailed, err.Error())
	}
	if cfg.ScaleDown {
		scaledDown = true // from here on, finish scales it back whatever happens
		if err := rs.scaleDown(ctx); err != nil {
			return finish(api.PhaseFailed, err.Error())
		}
	}
	var hosts []workload.Host
	if cfg.Dump != nil {
		// a database is one host, restored through its pod
		h := workload.Host{Name: workload.SingleHost(cfg.Alias)}
		pod, d, err := workload.DumpPod(ctx, rs.Client, rs.Namespace, cfg.Target, *cfg.Dump)
		if err == nil {
			d, err = d.Resolved()
		}
		if err == nil && d.RestoreCommand == "" {
			err = fmt.Errorf("the dump of %s has no restore command: give --restore-command", cfg.Target)
		}
		if err != nil {
			h.Err = err
		} else {
			h.Pod, h.Dump = pod.Name, &d
		}
		hosts = []workload.Host{h}
	} else if hosts, err = workload.ResolveRestoreHosts(ctx, rs.Client, rs.Namespace, cfg); err != nil {
		return finish(api.PhaseFailed, err.Error())
	}
	status.TotalHosts = len(hosts)
	fmt.Fprintf(s.Log, "restore session %s: %d host(s) of %s, snapshots of %s\n", rs.Job, len(hosts), cfg.Target, cfg.Source())
	now := s.Now().UTC().Format(time.RFC3339)
	for _, h := range hosts {
		job, err := RestoreHostJob(self, cfg, h, repoClaim, repoFileURL, now)
		if err != nil {
			return finish(api.PhaseFailed, fmt.Sprintf("host %s: %v", h.Name, err))
		}
		if _, err := jobs.Create(ctx, job, metav1.CreateOptions{FieldManager: annotate.FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
			return finish(api.PhaseFailed, fmt.Sprintf("create host job %s: %v", job.Name, err))
		}
		switch {
		case job.Spec.Suspend != nil && *job.Spec.Suspend:
			var st api.HostStatus
			_ = json.Unmarshal([]byte(job.Annotations[api.AnnotationHostStatus]), &st)
			fmt.Fprintf(s.Log, "host %s: %s: %s%s\n", h.Name, st.Phase, st.Error, st.Message)
		default:
			fmt.Fprintf(s.Log, "host %s: job %s created\n", h.Name, job.Name)
		}
	}
	s.afterHosts = func(_ context.Context, hs []api.HostStatus, status *api.SessionStatus) {
		hookConditions(hs, status, s.Now())
	}
	return s.await(ctx, ann, &status, len(hosts), cfg.Timeout, self.CreationTimestamp.Time, finish)
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "; " + b
}

// runningSibling returns an older restore session into the same target that has not
// finished.
func (rs *RestoreSession) runningSibling(ctx context.Context, self *batchv1.Job) (string, error) {
	list, err := rs.Client.BatchV1().Jobs(rs.Namespace).List(ctx, metav1.ListOptions{LabelSelector: fmt.Sprintf("%s=%s,%s=%s",
		api.LabelRestoreTarget, api.TargetLabel(rs.Config.Target), api.LabelComponent, api.ComponentRestoreSession)})
	if err != nil {
		return "", fmt.Errorf("list restore sessions of %s: %w", rs.Config.Target, err)
	}
	for _, j := range list.Items {
		if j.Name == self.Name || jobFinished(&j) {
			continue
		}
		if st, ok := sessionStatusOf(&j); ok && st.Phase.Final() {
			continue
		}
		if j.CreationTimestamp.Before(&self.CreationTimestamp) ||
			(j.CreationTimestamp.Equal(&self.CreationTimestamp) && j.Name < self.Name) {
			return j.Name, nil
		}
	}
	return "", nil
}

// scaleDown sets the target's replicas to 0, recording the count before in an annotation
// in the same patch, then waits for its pods to go (their volumes must be free). A count
// already recorded (by an earlier restore that crashed) is kept: it is the real one.
func (rs *RestoreSession) scaleDown(ctx context.Context) error {
	t := rs.Config.Target
	obj, replicas, annotations, sel, err := rs.scalable(ctx)
	if err != nil {
		return err
	}
	if _, recorded := annotations[api.AnnotationScaledDownFrom]; !recorded {
		patch := map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{
				api.AnnotationScaledDownFrom: strconv.Itoa(int(replicas)), api.AnnotationScaledDownBy: rs.Job}},
			"spec": map[string]any{"replicas": 0},
		}
		if err := rs.patchTarget(ctx, obj, patch); err != nil {
			return fmt.Errorf("scale %s down: %w", t, err)
		}
		fmt.Fprintf(rs.logOr(), "restore session %s: scaled %s down from %d to 0 replicas\n", rs.Job, t, replicas)
	} else {
		fmt.Fprintf(rs.logOr(), "restore session %s: %s was already scaled down from %s replicas (%s)\n", rs.Job, t,
			annotations[api.AnnotationScaledDownFrom], api.AnnotationScaledDownFrom)
		if replicas != 0 {
			if err := rs.patchTarget(ctx, obj, map[string]any{"spec": map[string]any{"replicas": 0}}); err != nil {
				return fmt.Errorf("scale %s down: %w", t, err)
			}
		}
	}
	end := time.Now().Add(rs.ScaleTimeout)
	for {
		pods, err := rs.Client.CoreV1().Pods(rs.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return fmt.Errorf("pods of %s: %w", t, err)
		}
		if len(pods.Items) == 0 {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s was scaled to 0 but %d pod(s) still run after %s (first: %s)", t, len(pods.Items), rs.ScaleTimeout, pods.Items[0].Name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// scaleUp puts the recorded replica count back and removes the record, in one patch.
func (rs *RestoreSession) scaleUp(ctx context.Context) error {
	t := rs.Config.Target
	obj, _, annotations, _, err := rs.scalable(ctx)
	if err != nil {
		return fmt.Errorf("scale %s back up: %w", t, err)
	}
	v, ok := annotations[api.AnnotationScaledDownFrom]
	if !ok {
		return nil // someone scaled it up already
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("scale %s back up: annotation %s=%q is not a number; set the replicas by hand", t, api.AnnotationScaledDownFrom, v)
	}
	patch := map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{api.AnnotationScaledDownFrom: nil, api.AnnotationScaledDownBy: nil}},
		"spec":     map[string]any{"replicas": n},
	}
	if err := rs.patchTarget(ctx, obj, patch); err != nil {
		return fmt.Errorf("scale %s back up to %d: %w", t, n, err)
	}
	fmt.Fprintf(rs.logOr(), "restore session %s: scaled %s back up to %d replicas\n", rs.Job, t, n)
	return nil
}

func (rs *RestoreSession) logOr() io.Writer {
	if rs.Log == nil {
		return io.Discard
	}
	return rs.Log
}

// scalable reads the target's replicas, annotations and pod selector.
func (rs *RestoreSession) scalable(ctx context.Context) (kind string, replicas int32, annotations map[string]string, selector string, err error) {
	t := rs.Config.Target
	apps := rs.Client.AppsV1()
	sel := func(ls *metav1.LabelSelector) (string, error) {
		s, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			return "", err
		}
		return s.String(), nil
	}
	one := func(p *int32) int32 {
		if p == nil {
			return 1
		}
		return *p
	}
	switch t.Kind {
	case "deployment":
		d, err := apps.Deployments(rs.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return "", 0, nil, "", err
		}
		s, err := sel(d.Spec.Selector)
		return t.Kind, one(d.Spec.Replicas), d.Annotations, s, err
	case "statefulset":
		d, err := apps.StatefulSets(rs.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return "", 0, nil, "", err
		}
		s, err := sel(d.Spec.Selector)
		return t.Kind, one(d.Spec.Replicas), d.Annotations, s, err
	case "replicaset":
		d, err := apps.ReplicaSets(rs.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return "", 0, nil, "", err
		}
		s, err := sel(d.Spec.Selector)
		return t.Kind, one(d.Spec.Replicas), d.Annotations, s, err
	case "replicationcontroller":
		d, err := rs.Client.CoreV1().ReplicationControllers(rs.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return "", 0, nil, "", err
		}
		s, err := sel(&metav1.LabelSelector{MatchLabels: d.Spec.Selector})
		return t.Kind, one(d.Spec.Replicas), d.Annotations, s, err
	}
	return "", 0, nil, "", fmt.Errorf("%s cannot be scaled down: --scale-down is for deployments, statefulsets, replicasets and replicationcontrollers", t)
}

func (rs *RestoreSession) patchTarget(ctx context.Context, kind string, patch map[string]any) error {
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	name, opts := rs.Config.Target.Name, metav1.PatchOptions{FieldManager: annotate.FieldManager}
	apps := rs.Client.AppsV1()
	switch kind {
	case "deployment":
		_, err = apps.Deployments(rs.Namespace).Patch(ctx, name, types.MergePatchType, b, opts)
	case "statefulset":
		_, err = apps.StatefulSets(rs.Namespace).Patch(ctx, name, types.MergePatchType, b, opts)
	case "replicaset":
		_, err = apps.ReplicaSets(rs.Namespace).Patch(ctx, name, types.MergePatchType, b, opts)
	case "replicationcontroller":
		_, err = rs.Client.CoreV1().ReplicationControllers(rs.Namespace).Patch(ctx, name, types.MergePatchType, b, opts)
	}
	return err
}

// RestoreHostJob builds the Job that restores one host. A host that no rule matches gets a
// suspended Job recording it Skipped, with why; a host that cannot be restored into, one
// recording it Failed: every host has its record in the same place.
func RestoreHostJob(session *batchv1.Job, cfg api.RestoreConfig, h workload.Host, repoClaim, repoFileURL, now string) (*batchv1.Job, error) {
	name := api.HostJobName(session.Name, h.Name)
	labels := map[string]string{
		api.LabelManagedBy:      api.ManagedByValue,
		api.LabelRestoreSession: session.Name,
		api.LabelHost:           labelValue(h.Name),
		api.LabelComponent:      api.ComponentRestoreHost,
	}
	truth, zero := true, int32(0)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: session.Namespace, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: session.Name,
				UID: session.UID, Controller: &truth, BlockOwnerDeletion: &truth}},
		},
		Spec: batchv1.JobSpec{
			// a failed restore is reported, not retried: a retry with overwrite never
			// would hide what the first attempt half wrote
			BackoffLimit: &zero,
			Template:     corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}},
		},
	}
	record := func(st api.HostStatus) (*batchv1.Job, error) {
		job.Spec.Suspend = &truth
		st.SchemaVersion, st.Hostname, st.Duration, st.UpdateTime = api.SchemaVersion, h.Name, "0s", now
		b, _ := json.Marshal(st)
		job.Annotations = map[string]string{api.AnnotationHostStatus: string(b)}
		job.Spec.Template.Spec = corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "restore", Image: cfg.Image}}}
		return job, nil
	}
	rule := api.MatchRule(cfg.Rules, h.Name)
	if len(cfg.Rules) == 0 {
		rule = -1 // no rules: every host restores its own latest snapshots
	} else if rule < 0 {
		return record(api.HostStatus{Phase: api.PhaseSkipped, Message: api.NoRuleMessage(h.Name)})
	}
	if h.Err != nil {
		return record(api.HostStatus{Phase: api.PhaseFailed, Error: h.Err.Error()})
	}
	spec := api.RestoreHostSpec{SchemaVersion: api.SchemaVersion, Session: session.Name, Hostname: h.Name,
		SourceHost: h.Name, FromConfig: cfg.FromConfig, SourceTarget: cfg.SourceTarget, Rule: rule, Paths: cfg.Paths,
		Includes: cfg.Includes, Excludes: cfg.Excludes, Overwrite: cfg.Overwrite, Delete: cfg.Delete,
		Nice: cfg.Runtime.Nice, IONiceClass: cfg.Runtime.IONiceClass, IONiceData: cfg.Runtime.IONiceData,
		Target: cfg.Target, Pod: h.Pod, Dump: h.Dump, Hooks: cfg.Hooks}
	if rule >= 0 {
		r := cfg.Rules[rule]
		if r.SourceHost != "" {
			spec.SourceHost = r.SourceHost
		}
		if len(r.Paths) > 0 || len(r.Snapshots) > 0 {
			spec.Paths, spec.Snapshots = r.Paths, r.Snapshots
		}
	}
	for _, m := range h.Mounts {
		spec.Mounts = append(spec.Mounts, m.MountPath)
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	job.Spec.Template.Annotations = map[string]string{api.AnnotationRestoreHostSpec: string(specJSON)}
	pod, err := hostPodSpec(podParams{Image: cfg.Image, Repository: cfg.Repository, Runtime: cfg.Runtime, Container: "restore",
		Args: []string{"restore-host"}, SpecEnv: api.EnvRestoreHostSpec, SpecAnnotation: api.AnnotationRestoreHostSpec, Write: true},
		h, repoClaim, repoFileURL)
	if err != nil {
		return nil, err
	}
	job.Spec.Template.Spec = pod
	return job, nil
}
