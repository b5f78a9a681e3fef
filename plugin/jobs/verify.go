package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/verifyjob"
)

// VerifyObjects make up a backup verification: its ServiceAccount, Role and RoleBinding,
// and a CronJob whose runs start verification sessions (suspended when it has no
// schedule: `kubectl stash verify` then starts the one session itself).
type VerifyObjects struct {
	ServiceAccount *corev1.ServiceAccount
	Role           *rbacv1.Role
	RoleBinding    *rbacv1.RoleBinding
	CronJob        *batchv1.CronJob
}

// List returns the objects in creation order.
func (o VerifyObjects) List() []runtime.Object {
	var l []runtime.Object
	if o.ServiceAccount != nil {
		l = append(l, o.ServiceAccount)
	}
	return append(l, o.Role, o.RoleBinding, o.CronJob)
}

// BuildVerify returns the objects of verification cfg in ns.
func BuildVerify(cfg api.VerifyConfig, ns string) (VerifyObjects, error) {
	var o VerifyObjects
	name := verifyjob.ServiceAccountName(cfg)
	createSA := cfg.Runtime.ServiceAccount == ""
	if createSA {
		cfg.Runtime.ServiceAccount = name
	}
	labels := verifyjob.Labels(cfg, "")
	meta := func(n string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: n, Namespace: ns, Labels: labels} }
	if createSA {
		o.ServiceAccount = &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta(name)}
	}
	o.Role = &rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: meta(name),
		Rules: []rbacv1.PolicyRule{
			// the session reads itself and its earlier sessions (already verified? history),
			// patches its status, creates its retry, deletes sessions past the history limit;
			// the launcher creates the sessions of a schedule
			{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "create", "patch", "delete"}},
		}}
	o.RoleBinding = &rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"}, ObjectMeta: meta(name),
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: cfg.Runtime.ServiceAccount, Namespace: ns}}}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return o, err
	}
	schedule, suspend := cfg.Schedule, false
	if schedule == "" {
		schedule, suspend = NeverSchedule, true
	}
	one, zero := int32(1), int32(0)
	launcherLabels := verifyjob.Labels(cfg, "verify-launcher")
	noEscalation, nonRoot, readOnly := false, true, true
	uid := int64(65532)
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	o.CronJob = &batchv1.CronJob{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Name: cfg.Name, Namespace: ns, Labels: verifyjob.Labels(cfg, api.ComponentVerifyConfiguration),
			Annotations: map[string]string{api.AnnotationConfig: string(cfgJSON)}},
		Spec: batchv1.CronJobSpec{
			Schedule: schedule, Suspend: &suspend, ConcurrencyPolicy: batchv1.ForbidConcurrent,
			StartingDeadlineSeconds: ptr(int64(300)), SuccessfulJobsHistoryLimit: &one, FailedJobsHistoryLimit: &one,
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: launcherLabels},
				Spec: batchv1.JobSpec{BackoffLimit: &zero, Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: launcherLabels, Annotations: map[string]string{api.AnnotationConfig: string(cfgJSON)}},
					Spec: corev1.PodSpec{
						ServiceAccountName: cfg.Runtime.ServiceAccount, RestartPolicy: corev1.RestartPolicyNever, NodeSelector: cfg.Runtime.NodeSelector,
						Containers: []corev1.Container{{
							Name: "launch", Image: cfg.Image, ImagePullPolicy: corev1.PullIfNotPresent, Args: []string{"verify-launch"},
							Env: []corev1.EnvVar{
								field(api.EnvNamespace, "metadata.namespace"),
								field(api.EnvJobName, fmt.Sprintf("metadata.labels['%s']", api.JobNameLabel)),
								field(api.EnvPodName, "metadata.name"),
								field(api.EnvConfig, fmt.Sprintf("metadata.annotations['%s']", api.AnnotationConfig)),
								{Name: api.SecretKeyRepository, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
									LocalObjectReference: corev1.LocalObjectReference{Name: cfg.Repository}, Key: api.SecretKeyRepository}}},
							},
							Resources: corev1.ResourceRequirements{
								Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
								Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
							},
							SecurityContext: &corev1.SecurityContext{RunAsNonRoot: &nonRoot, RunAsUser: &uid, ReadOnlyRootFilesystem: &readOnly,
								AllowPrivilegeEscalation: &noEscalation, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
						}},
					},
				}},
			},
		},
	}
	if len(cfg.Runtime.Tolerations) > 0 {
		if err := json.Unmarshal(cfg.Runtime.Tolerations, &o.CronJob.Spec.JobTemplate.Spec.Template.Spec.Tolerations); err != nil {
			return o, fmt.Errorf("runtime.tolerations: %w", err)
		}
	}
	return o, nil
}

// StartVerification creates a verification session now, owned by the verification's
// CronJob cj (which carries the configuration as applied).
func StartVerification(ctx context.Context, c kubernetes.Interface, cj *batchv1.CronJob, repoURL string, now time.Time) (*batchv1.Job, error) {
	var cfg api.VerifyConfig
	if err := api.Decode(api.AnnotationConfig, cj.Annotations[api.AnnotationConfig], &cfg); err != nil {
		return nil, fmt.Errorf("verification %s: %w", cj.Name, err)
	}
	truth := true
	owner := &metav1.OwnerReference{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID, Controller: &truth, BlockOwnerDeletion: &truth}
	job, err := verifyjob.SessionJob(cfg, cj.Namespace, verifyjob.SessionName(cfg, now), repoURL, owner, cfg.Retries)
	if err != nil {
		return nil, err
	}
	return c.BatchV1().Jobs(cj.Namespace).Create(ctx, job, metav1.CreateOptions{FieldManager: FieldManager})
}

// BackupVerificationSession is a verification session in the seed's shape
// (seeds/kubestash-backupverificationsession.md).
type BackupVerificationSession struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   BVSMeta       `json:"metadata"`
	Spec       BVSSpec       `json:"spec"`
	Status     BVSStatusView `json:"status"`
}

// BVSMeta is the seed's metadata.
type BVSMeta struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace"`
	CreationTimestamp string            `json:"creationTimestamp"`
	Labels            map[string]string `json:"labels,omitempty"`
}

// BVSSpec is the seed's spec.
type BVSSpec struct {
	Invoker *struct {
		APIGroup string `json:"apiGroup"`
		Kind     string `json:"kind"`
		Name     string `json:"name"`
	} `json:"invoker,omitempty"`
	Repository string `json:"repository"`
	Session    string `json:"session"`
	Snapshot   string `json:"snapshot"`
	RetryLeft  int    `json:"retryLeft,omitempty"`
}

// BVSStatusView is the seed's status.
type BVSStatusView struct {
	Conditions []api.Condition `json:"conditions,omitempty"`
	Duration   string          `json:"duration,omitempty"`
	Phase      api.Phase       `json:"phase"`
	Retried    *bool           `json:"retried,omitempty"`
}

// VerifySession is a verification session Job with its status.
type VerifySession struct {
	Job    *batchv1.Job
	Config api.VerifyConfig
	Status api.VerifyStatus
	// DecodeErr is set when an annotation could not be read.
	DecodeErr error
}

// Phase is Pending before the pod writes, Failed when the Job failed without a final status.
func (s VerifySession) Phase() api.Phase {
	if s.Status.Phase != "" && (s.Status.Phase.Final() || !jobFailed(s.Job)) {
		return s.Status.Phase
	}
	if jobFailed(s.Job) {
		return api.PhaseFailed
	}
	if s.Status.Phase != "" {
		return s.Status.Phase
	}
	return api.PhasePending
}

// View is the seed-shaped BackupVerificationSession.
func (s VerifySession) View() BackupVerificationSession {
	v := BackupVerificationSession{APIVersion: "core.kubestash.com/v1alpha1", Kind: "BackupVerificationSession",
		Metadata: BVSMeta{Name: s.Job.Name, Namespace: s.Job.Namespace, CreationTimestamp: s.Job.CreationTimestamp.UTC().Format(time.RFC3339)}}
	if s.Config.Invoker != "" {
		v.Metadata.Labels = map[string]string{"kubestash.com/invoker-name": s.Config.Invoker}
		v.Spec.Invoker = &struct {
			APIGroup string `json:"apiGroup"`
			Kind     string `json:"kind"`
			Name     string `json:"name"`
		}{"core.kubestash.com", "BackupConfiguration", s.Config.Invoker}
	}
	v.Spec.Repository, v.Spec.Session, v.Spec.Snapshot = s.Config.Repository, s.Config.Session, s.Config.Snapshot
	if len(s.Status.Snapshots) > 0 {
		var ids []string
		for _, sn := range s.Status.Snapshots {
			ids = append(ids, sn.Snapshot)
		}
		sort.Strings(ids)
		v.Spec.Snapshot = ids[0]
		for _, id := range ids[1:] {
			v.Spec.Snapshot += "," + id
		}
	}
	v.Spec.RetryLeft, _ = strconv.Atoi(s.Job.Annotations[verifyjob.AnnotationRetryLeft])
	v.Status = BVSStatusView{Conditions: s.Status.Conditions, Duration: s.Status.Duration, Phase: s.Phase()}
	if s.Config.Retries > 0 {
		r := s.Status.Retried
		v.Status.Retried = &r
	}
	return v
}

// ListVerifySessions returns the verification sessions of ns (of one verification if name
// is set), newest first.
func ListVerifySessions(ctx context.Context, c kubernetes.Interface, ns, verification string) ([]VerifySession, error) {
	sel := fmt.Sprintf("%s=%s", api.LabelComponent, api.ComponentVerifySession)
	if verification != "" {
		sel += fmt.Sprintf(",%s=%s", api.LabelVerification, verification)
	}
	list, err := c.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list verification sessions in namespace %s: %w", ns, err)
	}
	out := make([]VerifySession, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, verifySessionOf(&list.Items[i]))
	}
	sort.SliceStable(out, func(i, j int) bool {
		ti, tj := out[i].Job.CreationTimestamp, out[j].Job.CreationTimestamp
		if ti.Equal(&tj) {
			return out[i].Job.Name > out[j].Job.Name
		}
		return tj.Before(&ti)
	})
	return out, nil
}

// GetVerifySession returns one verification session.
func GetVerifySession(ctx context.Context, c kubernetes.Interface, ns, name string) (VerifySession, error) {
	j, err := c.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return VerifySession{}, fmt.Errorf("backupverificationsession %q in namespace %s: %w", name, ns, err)
	}
	if j.Labels[api.LabelComponent] != api.ComponentVerifySession {
		return VerifySession{}, fmt.Errorf("job %s/%s is not a backup verification session (it has no %s=%s label)", ns, name, api.LabelComponent, api.ComponentVerifySession)
	}
	return verifySessionOf(j), nil
}

func verifySessionOf(j *batchv1.Job) VerifySession {
	s := VerifySession{Job: j}
	if raw, ok := j.Spec.Template.Annotations[api.AnnotationConfig]; ok {
		s.DecodeErr = api.Decode(api.AnnotationConfig, raw, &s.Config)
	}
	if raw, ok := j.Annotations[api.AnnotationVerifyStatus]; ok {
		if err := api.Decode(api.AnnotationVerifyStatus, raw, &s.Status); err != nil {
			s.DecodeErr = err
		}
	}
	return s
}
