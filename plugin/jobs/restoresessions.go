package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// RestoreSession is a restore session in the shape of seeds/stash-v1beta1-restoresession.md,
// with one field the seed does not have: status.stats[].message, which says why a host
// ended as it did when that is no error (a host no rule matches is Skipped).
type RestoreSession struct {
	APIVersion string               `json:"apiVersion"`
	Kind       string               `json:"kind"`
	Metadata   RestoreSessionMeta   `json:"metadata"`
	Spec       RestoreSessionSpec   `json:"spec"`
	Status     RestoreSessionStatus `json:"status"`
}

// RestoreSessionMeta is the seed's metadata.
type RestoreSessionMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// RestoreSessionSpec is the seed's spec: repository, target and rules.
type RestoreSessionSpec struct {
	Repository struct {
		Name string `json:"name"`
	} `json:"repository"`
	Target RestoreTarget     `json:"target"`
	Rules  []api.RestoreRule `json:"rules,omitempty"`
}

// RestoreTarget is the seed's spec.target.
type RestoreTarget struct {
	Ref          TargetRef         `json:"ref"`
	VolumeMounts []api.VolumeMount `json:"volumeMounts,omitempty"`
}

// TargetRef is the seed's spec.target.ref.
type TargetRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
}

// RestoreSessionStatus is the seed's status.
type RestoreSessionStatus struct {
	Phase           api.Phase          `json:"phase"`
	TotalHosts      int                `json:"totalHosts"`
	SessionDuration string             `json:"sessionDuration,omitempty"`
	Stats           []RestoreHostStats `json:"stats,omitempty"`
	// Conditions are the seed's PreRestoreHookExecutionSucceeded and
	// PostRestoreHookExecutionSucceeded, when hooks ran.
	Conditions []api.Condition `json:"conditions,omitempty"`
}

// RestoreHostStats are one host's entry of status.stats: the seed's fields, then Message.
type RestoreHostStats struct {
	Hostname string    `json:"hostname"`
	Phase    api.Phase `json:"phase"`
	Duration string    `json:"duration,omitempty"`
	Error    string    `json:"error,omitempty"`
	// Message is not in the seed: why a host ended as it did when that is no error,
	// "no restore rule matches host-3: nothing was restored on it" for a Skipped host.
	Message string `json:"message,omitempty"`
}

// targetRefs are the apiVersion and kind of each target kind.
var targetRefs = map[string]TargetRef{
	"deployment":            {APIVersion: "apps/v1", Kind: "Deployment"},
	"statefulset":           {APIVersion: "apps/v1", Kind: "StatefulSet"},
	"daemonset":             {APIVersion: "apps/v1", Kind: "DaemonSet"},
	"replicaset":            {APIVersion: "apps/v1", Kind: "ReplicaSet"},
	"replicationcontroller": {APIVersion: "v1", Kind: "ReplicationController"},
	"pvc":                   {APIVersion: "v1", Kind: "PersistentVolumeClaim"},
}

// RefOf is the seed's target.ref of t; a kind this program does not know is kept as is.
func RefOf(t api.Target) TargetRef {
	r, ok := targetRefs[t.Kind]
	if !ok {
		r = TargetRef{Kind: t.Kind}
	}
	r.Name = t.Name
	return r
}

// Restore is a restore session Job with what its annotations and host Jobs say.
type Restore struct {
	Job *batchv1.Job
	// Config is what the session restores, from the Job's AnnotationConfig.
	Config api.RestoreConfig
	Status api.SessionStatus
	Hosts  []api.HostStatus
	// DecodeErr is set when an annotation could not be read (a newer schema).
	DecodeErr error
}

// Phase is the session's phase, read as a backup session's: Pending before the session pod
// writes, Failed when the Job failed without a final status.
func (r Restore) Phase() api.Phase { return sessionPhase(r.Job, r.Status) }

// Target is the restore target: from the configuration, else from the Job's restore-target
// label (kind.name) when the configuration cannot be read.
func (r Restore) Target() api.Target {
	if r.Config.Target.Kind != "" {
		return r.Config.Target
	}
	kind, name, _ := strings.Cut(r.Job.Labels[api.LabelRestoreTarget], ".")
	return api.Target{Kind: kind, Name: name}
}

// Ended counts the hosts that ended without failing (Succeeded or Skipped), as the
// session's status counts them: a session succeeds when this is every host.
func (r Restore) Ended() int { return r.Status.Hosts.Succeeded + r.Status.Hosts.Skipped }

// SourceHost is the backed-up host whose data h received: the source hosts of what it
// restored, else the one its rule names (its own name when the rule names none), else ""
// when no rule matches it.
func (r Restore) SourceHost(h api.HostStatus) string {
	var seen []string
	for _, rs := range h.Restored {
		if rs.SourceHost != "" && !slices.Contains(seen, rs.SourceHost) {
			seen = append(seen, rs.SourceHost)
		}
	}
	if len(seen) > 0 {
		return strings.Join(seen, ",")
	}
	i := api.MatchRule(r.Config.Rules, h.Hostname)
	switch {
	case i < 0:
		return ""
	case r.Config.Rules[i].SourceHost != "":
		return r.Config.Rules[i].SourceHost
	}
	return h.Hostname
}

// Message is why h ended as it did when that is no error: what its pod wrote, or, for a
// Skipped host that did not say, the seed's reason when no rule matches it.
func (r Restore) Message(h api.HostStatus) string {
	if h.Message != "" || h.Phase != api.PhaseSkipped || len(r.Config.Rules) == 0 {
		return h.Message
	}
	if api.MatchRule(r.Config.Rules, h.Hostname) < 0 {
		return api.NoRuleMessage(h.Hostname)
	}
	return ""
}

// View returns the seed-shaped RestoreSession.
func (r Restore) View() RestoreSession {
	v := RestoreSession{APIVersion: "stash.appscode.com/v1beta1", Kind: "RestoreSession",
		Metadata: RestoreSessionMeta{Name: r.Job.Name, Namespace: r.Job.Namespace}}
	v.Spec.Repository.Name = r.Config.Repository
	v.Spec.Target = RestoreTarget{Ref: RefOf(r.Target()), VolumeMounts: r.Config.VolumeMounts}
	for _, rule := range r.Config.Rules {
		if rule.TargetHosts == nil {
			rule.TargetHosts = []string{} // the seed writes targetHosts: [] for "every other host"
		}
		v.Spec.Rules = append(v.Spec.Rules, rule)
	}
	v.Status = RestoreSessionStatus{Phase: r.Phase(), TotalHosts: r.Status.TotalHosts, SessionDuration: r.Status.SessionDuration,
		Conditions: r.Status.Conditions}
	for _, h := range r.Hosts {
		v.Status.Stats = append(v.Status.Stats, RestoreHostStats{Hostname: h.Hostname, Phase: h.Phase, Duration: h.Duration,
			Error: h.Error, Message: r.Message(h)})
	}
	return v
}

// restoreSessionSelector selects the session Jobs of restore sessions.
var restoreSessionSelector = fmt.Sprintf("%s=%s", api.LabelComponent, api.ComponentRestoreSession)

// ListRestoreSessions returns the restore sessions in ns ("" is every namespace), newest
// first, with their hosts when withHosts: one List of session Jobs and one of host Jobs,
// whatever the count.
func ListRestoreSessions(ctx context.Context, c kubernetes.Interface, ns string, withHosts bool) ([]Restore, error) {
	list, err := c.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: restoreSessionSelector})
	if err != nil {
		return nil, fmt.Errorf("list restore sessions in %s: %w", nsName(ns), err)
	}
	var hosts map[string][]api.HostStatus
	if withHosts {
		if hosts, err = listHosts(ctx, c, ns, restoreHosts, ""); err != nil {
			return nil, err
		}
	}
	out := make([]Restore, 0, len(list.Items))
	for i := range list.Items {
		r := restoreOf(&list.Items[i])
		r.Hosts = hosts[hostsKey(r.Job.Namespace, r.Job.Name)]
		out = append(out, r)
	}
	newestFirst(out, func(r Restore) *batchv1.Job { return r.Job })
	return out, nil
}

// GetRestoreSession returns one restore session with its hosts. A missing Job is returned
// as the API server's NotFound error (wrapped).
func GetRestoreSession(ctx context.Context, c kubernetes.Interface, ns, name string) (Restore, error) {
	j, err := c.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return Restore{}, fmt.Errorf("restoresession %q in namespace %s: %w", name, ns, err)
	}
	if j.Labels[api.LabelComponent] != api.ComponentRestoreSession {
		return Restore{}, fmt.Errorf("job %s/%s is not a restore session (it has no %s=%s label)", ns, name, api.LabelComponent, api.ComponentRestoreSession)
	}
	r := restoreOf(j)
	hosts, err := listHosts(ctx, c, ns, restoreHosts, name)
	if err != nil {
		return Restore{}, err
	}
	r.Hosts = hosts[hostsKey(ns, name)]
	return r, nil
}

func restoreOf(j *batchv1.Job) Restore {
	r := Restore{Job: j}
	var errs []error
	if v, ok := j.Annotations[api.AnnotationConfig]; ok {
		errs = append(errs, api.Decode(api.AnnotationConfig, v, &r.Config))
	}
	if v, ok := j.Annotations[api.AnnotationSessionStatus]; ok {
		errs = append(errs, api.Decode(api.AnnotationSessionStatus, v, &r.Status))
	}
	r.DecodeErr = errors.Join(errs...)
	return r
}
