// Package jobs builds the Kubernetes objects of a backup configuration (ServiceAccount,
// Role, RoleBinding, CronJob), creates and updates them, triggers sessions, and reads the
// sessions' status back from their Jobs' annotations.
package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// NeverSchedule is the schedule of a configuration that runs only when triggered: the CronJob
// API requires a schedule, and this one (February 31st) never comes; the CronJob is also
// suspended.
const NeverSchedule = "0 0 31 2 *"

// ServiceAccountName is the ServiceAccount (and Role, RoleBinding) the plugin creates for a
// configuration's jobs.
func ServiceAccountName(config string) string { return "stash-" + config }

// Objects are what make up a backup configuration, in creation order.
type Objects struct {
	ServiceAccount *corev1.ServiceAccount // nil when the user names their own
	Role           *rbacv1.Role
	RoleBinding    *rbacv1.RoleBinding
	CronJob        *batchv1.CronJob
}

// List returns the objects in creation order.
func (o Objects) List() []runtime.Object {
	var l []runtime.Object
	if o.ServiceAccount != nil {
		l = append(l, o.ServiceAccount)
	}
	return append(l, o.Role, o.RoleBinding, o.CronJob)
}

func labels(cfg api.BackupConfig, component string) map[string]string {
	l := map[string]string{
		api.LabelManagedBy:           api.ManagedByValue,
		api.LabelBackupConfiguration: cfg.Name,
	}
	if component != "" {
		l[api.LabelComponent] = component
	}
	return l
}

// Build returns the objects of cfg in namespace ns. cfg.Runtime.ServiceAccount empty means
// the plugin's own ServiceAccount, which Build then includes.
func Build(cfg api.BackupConfig, ns string) (Objects, error) {
	var o Objects
	name := ServiceAccountName(cfg.Name)
	createSA := cfg.Runtime.ServiceAccount == ""
	if createSA {
		// the session and its host pods both run as the configuration's own account
		cfg.Runtime.ServiceAccount = name
	}
	sa := cfg.Runtime.ServiceAccount
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return Objects{}, err
	}
	meta := func(n string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: n, Namespace: ns, Labels: labels(cfg, "")}
	}
	if createSA {
		o.ServiceAccount = &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta(name)}
		o.ServiceAccount.Annotations = cfg.Runtime.ServiceAccountAnnotations
	}
	o.Role = &rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: meta(name),
		Rules: Rules(cfg.Targets()...)}
	o.RoleBinding = &rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"}, ObjectMeta: meta(name),
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}}

	// paused: the schedule is kept and suspended, as Stash's spec.paused
	schedule, suspend := cfg.Schedule, cfg.Paused
	if schedule == "" {
		schedule, suspend = NeverSchedule, true
	}
	history := int32(cfg.HistoryLimit)
	zero := int32(0)
	sessionLabels := labels(cfg, api.ComponentSession)
	podSpec, err := sessionPodSpec(cfg.Image, cfg.Repository, cfg.Runtime, sa, "session")
	if err != nil {
		return Objects{}, err
	}
	jobSpec := batchv1.JobSpec{
		// a failed session is recorded, not retried: the next schedule is the retry
		BackoffLimit: &zero,
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: sessionLabels, Annotations: map[string]string{api.AnnotationConfig: string(cfgJSON)}},
			Spec:       podSpec,
		},
	}
	if cfg.Timeout != "" {
		d, err := time.ParseDuration(cfg.Timeout)
		if err != nil {
			return Objects{}, fmt.Errorf("timeout %q: %w", cfg.Timeout, err)
		}
		// the session enforces the timeout itself and records it; this is the backstop
		// should the session pod itself hang
		deadline := int64((d + 2*time.Minute).Seconds())
		jobSpec.ActiveDeadlineSeconds = &deadline
	}
	o.CronJob = &batchv1.CronJob{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Name: cfg.Name, Namespace: ns, Labels: labels(cfg, "backup-configuration"),
			Annotations: map[string]string{api.AnnotationConfig: string(cfgJSON)}},
		Spec: batchv1.CronJobSpec{
			Schedule: schedule,
			Suspend:  &suspend,
			// sessions of one configuration never run together: a session that finds an
			// older one still running records itself Skipped (the seed's phase), which
			// Forbid would hide
			ConcurrencyPolicy: batchv1.AllowConcurrent,
			// a schedule missed by more than this (the control plane was down) is skipped
			// rather than run late; without a bound, more than 100 missed schedules stop
			// the CronJob for good
			StartingDeadlineSeconds:    ptr(int64(300)),
			SuccessfulJobsHistoryLimit: &history,
			FailedJobsHistoryLimit:     &history,
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sessionLabels},
				Spec:       jobSpec,
			},
		},
	}
	return o, nil
}

// sessionPodSpec is the pod of a session Job (mode "session" or "restore-session").
func sessionPodSpec(image, repository string, rt api.Runtime, sa, mode string) (corev1.PodSpec, error) {
	nonRoot, readOnly, noEscalation := true, true, false
	uid := int64(65532)
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	spec := corev1.PodSpec{
		ServiceAccountName: sa,
		RestartPolicy:      corev1.RestartPolicyNever,
		NodeSelector:       rt.NodeSelector,
		Containers: []corev1.Container{{
			Name:            "session",
			Image:           image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Args:            []string{mode},
			Env: []corev1.EnvVar{
				field(api.EnvNamespace, "metadata.namespace"),
				field(api.EnvJobName, fmt.Sprintf("metadata.labels['%s']", api.JobNameLabel)),
				field(api.EnvPodName, "metadata.name"),
				field(api.EnvNodeName, "spec.nodeName"),
				field(api.EnvConfig, fmt.Sprintf("metadata.annotations['%s']", api.AnnotationConfig)),
				// the session needs the repository's URL (a pvc:// repository is mounted
				// into the host pods), never its password
				{Name: api.SecretKeyRepository, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: repository}, Key: api.SecretKeyRepository}}},
			},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
			SecurityContext: &corev1.SecurityContext{
				RunAsNonRoot: &nonRoot, RunAsUser: &uid, ReadOnlyRootFilesystem: &readOnly, AllowPrivilegeEscalation: &noEscalation,
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
	}
	// the session pod goes where the host pods may go: backup nodes are often both
	// labelled (--node-selector) and tainted (--toleration)
	if len(rt.Tolerations) > 0 {
		if err := json.Unmarshal(rt.Tolerations, &spec.Tolerations); err != nil {
			return spec, fmt.Errorf("runtime.tolerations: %w", err)
		}
	}
	return spec, applyPodRuntime(&spec, rt)
}

// applyPodRuntime sets the pod-level runtime settings a session pod shares with its
// host pods: placement, priority, image pull secrets (it runs the same image).
func applyPodRuntime(spec *corev1.PodSpec, rt api.Runtime) error {
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		into any
	}{{"affinity", rt.Affinity, &spec.Affinity}, {"imagePullSecrets", rt.ImagePullSecrets, &spec.ImagePullSecrets},
		{"topologySpreadConstraints", rt.TopologySpreadConstraints, &spec.TopologySpreadConstraints}} {
		if len(f.raw) > 0 {
			if err := json.Unmarshal(f.raw, f.into); err != nil {
				return fmt.Errorf("runtime.%s: %w", f.name, err)
			}
		}
	}
	spec.PriorityClassName = rt.PriorityClassName
	spec.SchedulerName = rt.SchedulerName
	if rt.RuntimeClassName != "" {
		spec.RuntimeClassName = &rt.RuntimeClassName
	}
	spec.EnableServiceLinks = rt.EnableServiceLinks
	return nil
}

// Rules are what a configuration's jobs may do, in its namespace only (docs/rbac.md says
// why each is needed).
func Rules(targets ...api.Target) []rbacv1.PolicyRule {
	rules := []rbacv1.PolicyRule{
		// the session reads itself, lists its sibling sessions and its host Jobs, creates
		// the host Jobs, and patches annotations (status) and suspend (timeout) on them
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "create", "patch"}},
		// the nodes of the workload's pods (ReadWriteOnce volumes, daemon pods) and why a
		// host pod ended (OOMKilled, evicted)
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
		// why the Job controller could not create a host pod (FailedCreate: Pod Security,
		// quota), so the host fails with that reason instead of waiting forever
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"list"}},
		// the access modes and phase of the volumes to mount
		{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"get"}},
	}
	workloads := false
	for _, t := range targets {
		if r, ok := targetResource[t.Kind]; ok {
			// the target's pod template: which volumes are mounted where; this target only
			r.Verbs, r.ResourceNames = []string{"get"}, []string{t.Name}
			rules = append(rules, r)
			workloads = true
		}
	}
	if workloads {
		// hooks (the configuration's, and those app owners put on their pods as
		// annotations) and database dumps run in the target's pods through the exec API;
		// a WebSocket exec is a GET, an SPDY one a POST
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"get", "create"}})
	}
	return rules
}

// targetResource is the API resource of each workload kind a target may be (a pvc
// target is covered by the persistentvolumeclaims rule).
var targetResource = map[string]rbacv1.PolicyRule{
	"deployment":            {APIGroups: []string{"apps"}, Resources: []string{"deployments"}},
	"statefulset":           {APIGroups: []string{"apps"}, Resources: []string{"statefulsets"}},
	"daemonset":             {APIGroups: []string{"apps"}, Resources: []string{"daemonsets"}},
	"replicaset":            {APIGroups: []string{"apps"}, Resources: []string{"replicasets"}},
	"replicationcontroller": {APIGroups: []string{""}, Resources: []string{"replicationcontrollers"}},
}

// TriggerJob builds a session Job from the configuration's CronJob, as the CronJob itself
// would, named <config>-<suffix> as the seed names BackupSessions.
func TriggerJob(cj *batchv1.CronJob, suffix, by string) *batchv1.Job {
	truth := true
	annotations := map[string]string{"cronjob.kubernetes.io/instantiate": "manual"}
	if by != "" {
		annotations[api.AnnotationTriggeredBy] = by
	}
	for k, v := range cj.Spec.JobTemplate.Annotations {
		annotations[k] = v
	}
	labels := map[string]string{}
	for k, v := range cj.Spec.JobTemplate.Labels {
		labels[k] = v
	}
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        cj.Name + "-" + suffix,
			Namespace:   cj.Namespace,
			Labels:      labels,
			Annotations: annotations,
			// owned by the CronJob, like its scheduled sessions, so its history limits
			// clean triggered sessions up too
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID,
				Controller: &truth, BlockOwnerDeletion: &truth}},
		},
		Spec: *cj.Spec.JobTemplate.Spec.DeepCopy(),
	}
}

// Trigger starts a session of configuration config in ns now, as `kubectl stash trigger`
// and the watch view's t key do: a Job from the CronJob's template, named
// <config>-<suffix>. by says who asked.
func Trigger(ctx context.Context, c kubernetes.Interface, ns, config, suffix, by string) (*batchv1.Job, error) {
	cj, err := c.BatchV1().CronJobs(ns).Get(ctx, config, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("backup configuration %q not found in namespace %s: see kubectl stash get backupconfigurations, or create it with kubectl stash backup", config, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("backup configuration %q: %w", config, err)
	}
	if cj.Labels[api.LabelBackupConfiguration] == "" {
		return nil, fmt.Errorf("cronjob %s/%s is not a backup configuration (no %s label)", ns, config, api.LabelBackupConfiguration)
	}
	created, err := c.BatchV1().Jobs(ns).Create(ctx, TriggerJob(cj, suffix, by), metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("forbidden: you may not create jobs in namespace %s (RBAC: \"create\" on \"jobs.batch\"): %w", ns, err)
	}
	if err != nil {
		return nil, fmt.Errorf("create backup session: %w", err)
	}
	return created, nil
}
