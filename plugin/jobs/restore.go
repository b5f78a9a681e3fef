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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// RestoreObjects make up a restore session: its own ServiceAccount, Role and RoleBinding
// (owned by the session Job, so they go with it), the session Job, and the claims a
// target that does not exist yet restores into.
type RestoreObjects struct {
	Claims         []*corev1.PersistentVolumeClaim
	ServiceAccount *corev1.ServiceAccount // nil when the user names their own
	Role           *rbacv1.Role
	RoleBinding    *rbacv1.RoleBinding
	Job            *batchv1.Job
}

// List returns the objects in the order CreateRestore creates them.
func (o RestoreObjects) List() []runtime.Object {
	var l []runtime.Object
	for _, c := range o.Claims {
		l = append(l, c)
	}
	l = append(l, o.Job)
	if o.ServiceAccount != nil {
		l = append(l, o.ServiceAccount)
	}
	return append(l, o.Role, o.RoleBinding)
}

// Manifest returns the objects as a manifest to apply (kubectl apply -f), in an order
// that works there: the ServiceAccount and Role before the Job, and the Job not suspended,
// since nobody would start it.
func (o RestoreObjects) Manifest() []runtime.Object {
	var l []runtime.Object
	if o.ServiceAccount != nil {
		l = append(l, o.ServiceAccount)
	}
	l = append(l, o.Role, o.RoleBinding)
	for _, c := range o.Claims {
		l = append(l, c)
	}
	j := o.Job.DeepCopy()
	j.Spec.Suspend = nil
	return append(l, j)
}

// RestoreServiceAccountName is the ServiceAccount (Role, RoleBinding) of a restore session.
func RestoreServiceAccountName(session string) string { return "stash-restore-" + session }

// BuildRestore returns the objects of restore session cfg in ns; claims are created first
// for a target that does not exist yet.
func BuildRestore(cfg api.RestoreConfig, ns string, claims []*corev1.PersistentVolumeClaim) (RestoreObjects, error) {
	o := RestoreObjects{Claims: claims}
	name := RestoreServiceAccountName(cfg.Name)
	createSA := cfg.Runtime.ServiceAccount == ""
	if createSA {
		cfg.Runtime.ServiceAccount = name
	}
	sa := cfg.Runtime.ServiceAccount
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return o, err
	}
	labels := map[string]string{api.LabelManagedBy: api.ManagedByValue, api.LabelRestoreSession: cfg.Name}
	meta := func(n string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: n, Namespace: ns, Labels: labels}
	}
	if createSA {
		o.ServiceAccount = &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta(name)}
		o.ServiceAccount.Annotations = cfg.Runtime.ServiceAccountAnnotations
	}
	o.Role = &rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: meta(name),
		Rules: RestoreRules(cfg.Target, cfg.ScaleDown)}
	o.RoleBinding = &rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"}, ObjectMeta: meta(name),
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}}

	sessionLabels := map[string]string{api.LabelManagedBy: api.ManagedByValue, api.LabelRestoreSession: cfg.Name,
		api.LabelComponent: api.ComponentRestoreSession, api.LabelRestoreTarget: api.TargetLabel(cfg.Target)}
	podSpec, err := sessionPodSpec(cfg.Image, cfg.Repository, cfg.Runtime, sa, "restore-session")
	if err != nil {
		return o, err
	}
	zero, truth := int32(0), true
	o.Job = &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: cfg.Name, Namespace: ns, Labels: sessionLabels,
			Annotations: map[string]string{api.AnnotationConfig: string(cfgJSON)}},
		Spec: batchv1.JobSpec{
			// created suspended: its ServiceAccount and Role are created next, owned by
			// it, and only then does it start (CreateRestore)
			Suspend:      &truth,
			BackoffLimit: &zero,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sessionLabels, Annotations: map[string]string{api.AnnotationConfig: string(cfgJSON)}},
				Spec:       podSpec,
			},
		},
	}
	if cfg.Timeout != "" {
		d, err := time.ParseDuration(cfg.Timeout)
		if err != nil {
			return o, fmt.Errorf("timeout %q: %w", cfg.Timeout, err)
		}
		deadline := int64((d + 2*time.Minute).Seconds())
		o.Job.Spec.ActiveDeadlineSeconds = &deadline
	}
	return o, nil
}

// RestoreRules are what a restore session's jobs may do, in its namespace only.
func RestoreRules(t api.Target, scaleDown bool) []rbacv1.PolicyRule {
	rules := Rules(t)
	if !scaleDown {
		return rules
	}
	// a DaemonSet has no replicas to scale
	if r, ok := targetResource[t.Kind]; ok && t.Kind != "daemonset" {
		// --scale-down: set the replicas (and the record of the count before) on this
		// target only
		r.Verbs, r.ResourceNames = []string{"patch"}, []string{t.Name}
		rules = append(rules, r)
	}
	return rules
}

// CreateRestore creates the objects: the claims, the session Job (suspended), its
// ServiceAccount, Role and RoleBinding owned by the Job, then lets the Job start. A crash
// half-way leaves a suspended Job that owns what was created: deleting it cleans up.
func CreateRestore(ctx context.Context, c kubernetes.Interface, o RestoreObjects, log func(string)) (*batchv1.Job, error) {
	ns := o.Job.Namespace
	opts := metav1.CreateOptions{FieldManager: FieldManager}
	for _, pvc := range o.Claims {
		if _, err := c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, opts); err != nil {
			return nil, fmt.Errorf("create persistentvolumeclaim %s: %w", pvc.Name, err)
		}
		log("persistentvolumeclaim/" + pvc.Name + " created")
	}
	job, err := c.BatchV1().Jobs(ns).Create(ctx, o.Job, opts)
	if apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("restore session %q already exists in namespace %s: give another --name, or delete it (kubectl delete job %s)", o.Job.Name, ns, o.Job.Name)
	}
	if apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("forbidden: you may not create jobs in namespace %s (RBAC: \"create\" on \"jobs.batch\"): %w", ns, err)
	}
	if err != nil {
		return nil, fmt.Errorf("create restore session: %w", err)
	}
	truth := true
	owner := []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, Controller: &truth, BlockOwnerDeletion: &truth}}
	if o.ServiceAccount != nil {
		sa := o.ServiceAccount.DeepCopy()
		sa.OwnerReferences = owner
		if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, sa, opts); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create serviceaccount %s: %w", sa.Name, err)
		}
	}
	role := o.Role.DeepCopy()
	role.OwnerReferences = owner
	if _, err := c.RbacV1().Roles(ns).Create(ctx, role, opts); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create role %s: %w", role.Name, err)
	}
	rb := o.RoleBinding.DeepCopy()
	rb.OwnerReferences = owner
	if _, err := c.RbacV1().RoleBindings(ns).Create(ctx, rb, opts); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create rolebinding %s: %w", rb.Name, err)
	}
	job, err = c.BatchV1().Jobs(ns).Patch(ctx, job.Name, types.MergePatchType, []byte(`{"spec":{"suspend":false}}`), metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return nil, fmt.Errorf("start restore session %s: %w", o.Job.Name, err)
	}
	return job, nil
}
