package jobs

import (
	"context"
	"fmt"
	"sort"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// BackupSession is a session in the shape of seeds/stash-v1beta1-backupsession.md.
type BackupSession struct {
	APIVersion string              `json:"apiVersion"`
	Kind       string              `json:"kind"`
	Metadata   SessionMeta         `json:"metadata"`
	Spec       BackupSessionSpec   `json:"spec"`
	Status     BackupSessionStatus `json:"status"`
}

// SessionMeta is the seed's metadata: name, namespace and the backup-configuration label.
type SessionMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
}

// BackupSessionSpec names the configuration.
type BackupSessionSpec struct {
	BackupConfiguration struct {
		Name string `json:"name"`
	} `json:"backupConfiguration"`
}

// BackupSessionStatus is the seed's status.
type BackupSessionStatus struct {
	Phase           api.Phase   `json:"phase"`
	TotalHosts      int         `json:"totalHosts"`
	SessionDuration string      `json:"sessionDuration,omitempty"`
	Stats           []HostStats `json:"stats,omitempty"`
	// Targets are a batch session's sections, one per member (Stash's status.targets);
	// a batch has no top-level stats.
	Targets []TargetStatus `json:"targets,omitempty"`
	// Conditions are the seed's: RetentionPolicyApplied (and RepositoryPruned), and
	// PreBackupHookExecutionSucceeded / PostBackupHookExecutionSucceeded when hooks ran.
	Conditions []api.Condition `json:"conditions,omitempty"`
}

// TargetStatus is one member's section of a batch session: its target, hosts and phase
// (Succeeded only when every host of it succeeded).
type TargetStatus struct {
	Ref        TargetRef   `json:"ref"`
	TotalHosts int         `json:"totalHosts"`
	Phase      api.Phase   `json:"phase"`
	Error      string      `json:"error,omitempty"`
	Stats      []HostStats `json:"stats,omitempty"`
}

// HostStats are one host's entry of status.stats.
type HostStats struct {
	Hostname  string              `json:"hostname"`
	Phase     api.Phase           `json:"phase"`
	Duration  string              `json:"duration,omitempty"`
	Error     string              `json:"error,omitempty"`
	Snapshots []api.SnapshotStats `json:"snapshots,omitempty"`
}

// Session is a session Job with what its annotations and host Jobs say.
type Session struct {
	Job    *batchv1.Job
	Config string
	Status api.SessionStatus
	Hosts  []api.HostStatus
	// DecodeErr is set when an annotation could not be read (a newer schema).
	DecodeErr error
}

// Phase is the session's phase; a session whose pod has not written yet is Pending, and
// one whose Job failed without a final status (its pod was killed) is Failed.
func (s Session) Phase() api.Phase { return sessionPhase(s.Job, s.Status) }

// sessionPhase reads the phase of a session Job of any kind from the status its pod wrote.
func sessionPhase(j *batchv1.Job, st api.SessionStatus) api.Phase {
	if st.Phase != "" {
		if !st.Phase.Final() && jobFailed(j) {
			return api.PhaseFailed
		}
		return st.Phase
	}
	if jobFailed(j) {
		return api.PhaseFailed
	}
	return api.PhasePending
}

func jobFailed(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// View returns the seed-shaped BackupSession.
func (s Session) View() BackupSession {
	v := BackupSession{APIVersion: "stash.appscode.com/v1beta1", Kind: "BackupSession",
		Metadata: SessionMeta{Name: s.Job.Name, Namespace: s.Job.Namespace, Labels: map[string]string{"backup-configuration": s.Config}}}
	v.Spec.BackupConfiguration.Name = s.Config
	v.Status = BackupSessionStatus{Phase: s.Phase(), TotalHosts: s.Status.TotalHosts, SessionDuration: s.Status.SessionDuration,
		Conditions: s.Status.Conditions}
	stats := func(h api.HostStatus) HostStats {
		return HostStats{Hostname: h.Hostname, Phase: h.Phase, Duration: h.Duration, Error: h.Error, Snapshots: h.Snapshots}
	}
	if len(s.Status.Members) == 0 {
		for _, h := range s.Hosts {
			v.Status.Stats = append(v.Status.Stats, stats(h))
		}
		return v
	}
	for _, m := range s.Status.Members {
		ts := TargetStatus{Ref: RefOf(m.Target), TotalHosts: m.TotalHosts, Phase: m.Phase, Error: m.Error}
		for _, h := range s.Hosts {
			if h.Target == m.Target.String() {
				ts.Stats = append(ts.Stats, stats(h))
			}
		}
		v.Status.Targets = append(v.Status.Targets, ts)
	}
	return v
}

// Sessions are read with one List of session Jobs and one of host Jobs, whatever the count.
func sessionSelector(config string) string {
	sel := fmt.Sprintf("%s=%s", api.LabelComponent, api.ComponentSession)
	if config != "" {
		sel += fmt.Sprintf(",%s=%s", api.LabelBackupConfiguration, config)
	}
	return sel
}

// ListSessions returns the sessions in ns (of one configuration if config is set), newest
// first, with their hosts when withHosts.
func ListSessions(ctx context.Context, c kubernetes.Interface, ns, config string, withHosts bool) ([]Session, error) {
	list, err := c.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: sessionSelector(config)})
	if err != nil {
		return nil, fmt.Errorf("list backup sessions in %s: %w", nsName(ns), err)
	}
	var hosts map[string][]api.HostStatus
	if withHosts {
		if hosts, err = listHosts(ctx, c, ns, backupHosts, ""); err != nil {
			return nil, err
		}
	}
	out := make([]Session, 0, len(list.Items))
	for i := range list.Items {
		s := sessionOf(&list.Items[i])
		s.Hosts = hosts[hostsKey(s.Job.Namespace, s.Job.Name)]
		out = append(out, s)
	}
	newestFirst(out, func(s Session) *batchv1.Job { return s.Job })
	return out, nil
}

// newestFirst orders sessions by their Job's creation, newest first, then by name.
func newestFirst[T any](list []T, job func(T) *batchv1.Job) {
	sort.SliceStable(list, func(i, j int) bool {
		ji, jj := job(list[i]), job(list[j])
		ti, tj := ji.CreationTimestamp, jj.CreationTimestamp
		if ti.Equal(&tj) {
			return ji.Name > jj.Name
		}
		return tj.Before(&ti)
	})
}

// GetSession returns one session with its hosts.
func GetSession(ctx context.Context, c kubernetes.Interface, ns, name string) (Session, error) {
	j, err := c.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return Session{}, fmt.Errorf("backupsession %q in namespace %s: %w", name, ns, err)
	}
	if j.Labels[api.LabelComponent] != api.ComponentSession {
		return Session{}, fmt.Errorf("job %s/%s is not a backup session (it has no %s=%s label)", ns, name, api.LabelComponent, api.ComponentSession)
	}
	s := sessionOf(j)
	hosts, err := listHosts(ctx, c, ns, backupHosts, name)
	if err != nil {
		return Session{}, err
	}
	s.Hosts = hosts[hostsKey(ns, name)]
	return s, nil
}

func sessionOf(j *batchv1.Job) Session {
	s := Session{Job: j, Config: j.Labels[api.LabelBackupConfiguration]}
	if v, ok := j.Annotations[api.AnnotationSessionStatus]; ok {
		s.DecodeErr = api.Decode(api.AnnotationSessionStatus, v, &s.Status)
	}
	return s
}

// hostKind says how the host Jobs of one kind of session are found: by their component
// and the label that names their session.
type hostKind struct{ component, sessionLabel string }

var (
	backupHosts  = hostKind{api.ComponentHost, api.LabelBackupSession}
	restoreHosts = hostKind{api.ComponentRestoreHost, api.LabelRestoreSession}
)

// hostsKey keys the hosts of a session: its namespace and name, so one List across
// namespaces keeps same-named sessions apart.
func hostsKey(ns, session string) string { return ns + "/" + session }

// listHosts lists the host Jobs of kind in ns (of one session if session is set) with one
// call, and returns their statuses by hostsKey, each session's ordered by sortHosts.
func listHosts(ctx context.Context, c kubernetes.Interface, ns string, kind hostKind, session string) (map[string][]api.HostStatus, error) {
	sel := fmt.Sprintf("%s=%s", api.LabelComponent, kind.component)
	if session != "" {
		sel += fmt.Sprintf(",%s=%s", kind.sessionLabel, session)
	}
	list, err := c.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list host jobs in %s: %w", nsName(ns), err)
	}
	out := map[string][]api.HostStatus{}
	for i := range list.Items {
		j := &list.Items[i]
		key := hostsKey(j.Namespace, j.Labels[kind.sessionLabel])
		out[key] = append(out[key], hostStatusOf(j))
	}
	for _, hs := range out {
		sortHosts(hs)
	}
	return out, nil
}

// hostStatusOf is what a host Job's annotation says, Pending before its pod writes (or
// when the annotation cannot be read).
func hostStatusOf(j *batchv1.Job) api.HostStatus {
	st := api.HostStatus{Hostname: j.Labels[api.LabelHost], Phase: api.PhasePending}
	if v, ok := j.Annotations[api.AnnotationHostStatus]; ok {
		_ = api.Decode(api.AnnotationHostStatus, v, &st)
	}
	st.Job, st.Target = j.Name, j.Annotations[api.AnnotationTarget]
	return st
}

// sortHosts orders hosts host-0, host-1, … host-10, then by name.
func sortHosts(hs []api.HostStatus) {
	sort.Slice(hs, func(i, j int) bool { return hostLess(hs[i].Hostname, hs[j].Hostname) })
}

// hostLess orders host-2 before host-10.
func hostLess(a, b string) bool {
	var na, nb int
	_, ea := fmt.Sscanf(a, "host-%d", &na)
	_, eb := fmt.Sscanf(b, "host-%d", &nb)
	if ea == nil && eb == nil {
		return na < nb
	}
	return a < b
}
