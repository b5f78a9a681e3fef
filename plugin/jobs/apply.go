package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

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

// FieldManager names the plugin in managedFields.
const FieldManager = "kubectl-stash"

// Result says what Apply did to one object, in kubectl's words.
type Result struct {
	Kind, Name string
	// Action is created, configured or unchanged.
	Action string
}

func (r Result) String() string { return fmt.Sprintf("%s/%s %s", r.Kind, r.Name, r.Action) }

// Apply creates or updates the objects with server-side apply, so running the same
// command twice changes nothing and a changed flag changes only what it owns. An existing
// object of the same name that the plugin does not manage is never taken over, nor is
// another configuration's CronJob.
func Apply(ctx context.Context, c kubernetes.Interface, objs []runtime.Object, serverDryRun bool) ([]Result, error) {
	var out []Result
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: ptr(true)}
	if serverDryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, o := range objs {
		acc, err := metaOf(o)
		if err != nil {
			return out, err
		}
		kind := strings.ToLower(o.GetObjectKind().GroupVersionKind().Kind)
		body, err := json.Marshal(o)
		if err != nil {
			return out, err
		}
		get, patch := clientFor(c, kind, acc.GetNamespace())
		before, err := get(ctx, acc.GetName())
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return out, fmt.Errorf("%s %q in namespace %s: %w", kind, acc.GetName(), acc.GetNamespace(), explain(err, "get", kind))
		}
		if exists {
			if before.GetLabels()[api.LabelManagedBy] != api.ManagedByValue {
				return out, fmt.Errorf("%s %q already exists in namespace %s and is not managed by kubectl-stash: choose another configuration name (--name), or delete it", kind, acc.GetName(), acc.GetNamespace())
			}
			if err := sameTarget(before, acc); err != nil {
				return out, err
			}
		}
		after, err := patch(ctx, acc.GetName(), body, opts)
		if err != nil {
			verb := "patch"
			if !exists {
				verb = "create"
			}
			return out, fmt.Errorf("%s %q in namespace %s: %w", kind, acc.GetName(), acc.GetNamespace(), explain(err, verb, kind))
		}
		r := Result{Kind: kindPath(kind), Name: acc.GetName(), Action: "configured"}
		switch {
		case !exists:
			r.Action = "created"
		case sameContent(before, after):
			r.Action = "unchanged"
		}
		if serverDryRun {
			r.Action += " (server dry run)"
		}
		out = append(out, r)
	}
	return out, nil
}

// sameTarget refuses to turn one configuration's CronJob into another target's: the
// default name (<name>-backup) of a deployment and a pvc of the same name coincide.
func sameTarget(existing, wanted metav1.Object) error {
	var have, want api.BackupConfig
	hv, wv := existing.GetAnnotations()[api.AnnotationConfig], wanted.GetAnnotations()[api.AnnotationConfig]
	if hv == "" || wv == "" || json.Unmarshal([]byte(hv), &have) != nil || json.Unmarshal([]byte(wv), &want) != nil {
		return nil
	}
	if have.Target != want.Target {
		return fmt.Errorf("backup configuration %q in namespace %s backs up %s, not %s: give this one another name (--name), or delete that one first", existing.GetName(), existing.GetNamespace(), have.Target, want.Target)
	}
	return nil
}

// sameContent compares two versions of an object, leaving out what the server changes on
// every write (resourceVersion, managedFields…): with a server dry run the resourceVersion
// never moves, so it cannot tell a change.
func sameContent(a, b metav1.Object) bool {
	norm := func(o metav1.Object) map[string]any {
		raw, _ := json.Marshal(o)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		if md, ok := m["metadata"].(map[string]any); ok {
			for _, k := range []string{"resourceVersion", "managedFields", "generation", "uid", "creationTimestamp"} {
				delete(md, k)
			}
		}
		delete(m, "status")
		return m
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

type (
	getFunc   func(context.Context, string) (metav1.Object, error)
	patchFunc func(context.Context, string, []byte, metav1.PatchOptions) (metav1.Object, error)
)

func wrap[T metav1.Object](fn func() (T, error)) (metav1.Object, error) {
	o, err := fn()
	if err != nil {
		return nil, err
	}
	return o, nil
}

func clientFor(c kubernetes.Interface, kind, ns string) (getFunc, patchFunc) {
	switch kind {
	case "serviceaccount":
		x := c.CoreV1().ServiceAccounts(ns)
		return func(ctx context.Context, n string) (metav1.Object, error) {
				return wrap(func() (*corev1.ServiceAccount, error) { return x.Get(ctx, n, metav1.GetOptions{}) })
			}, func(ctx context.Context, n string, b []byte, o metav1.PatchOptions) (metav1.Object, error) {
				return wrap(func() (*corev1.ServiceAccount, error) { return x.Patch(ctx, n, types.ApplyPatchType, b, o) })
			}
	case "role":
		x := c.RbacV1().Roles(ns)
		return func(ctx context.Context, n string) (metav1.Object, error) {
				return wrap(func() (*rbacv1.Role, error) { return x.Get(ctx, n, metav1.GetOptions{}) })
			}, func(ctx context.Context, n string, b []byte, o metav1.PatchOptions) (metav1.Object, error) {
				return wrap(func() (*rbacv1.Role, error) { return x.Patch(ctx, n, types.ApplyPatchType, b, o) })
			}
	case "rolebinding":
		x := c.RbacV1().RoleBindings(ns)
		return func(ctx context.Context, n string) (metav1.Object, error) {
				return wrap(func() (*rbacv1.RoleBinding, error) { return x.Get(ctx, n, metav1.GetOptions{}) })
			}, func(ctx context.Context, n string, b []byte, o metav1.PatchOptions) (metav1.Object, error) {
				return wrap(func() (*rbacv1.RoleBinding, error) { return x.Patch(ctx, n, types.ApplyPatchType, b, o) })
			}
	default: // cronjob
		x := c.BatchV1().CronJobs(ns)
		return func(ctx context.Context, n string) (metav1.Object, error) {
				return wrap(func() (*batchv1.CronJob, error) { return x.Get(ctx, n, metav1.GetOptions{}) })
			}, func(ctx context.Context, n string, b []byte, o metav1.PatchOptions) (metav1.Object, error) {
				return wrap(func() (*batchv1.CronJob, error) { return x.Patch(ctx, n, types.ApplyPatchType, b, o) })
			}
	}
}

func kindPath(kind string) string {
	switch kind {
	case "role", "rolebinding":
		return kind + ".rbac.authorization.k8s.io"
	case "cronjob":
		return "cronjob.batch"
	}
	return kind
}

func metaOf(o runtime.Object) (metav1.Object, error) {
	m, ok := o.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", o)
	}
	return m, nil
}

// explain turns a Forbidden error into what the user lacks.
func explain(err error, verb, kind string) error {
	if !apierrors.IsForbidden(err) {
		return err
	}
	hint := ""
	switch kind {
	case "role":
		hint = "; creating a Role also needs every permission it grants, or the \"escalate\" verb on roles (docs/rbac.md)"
	case "rolebinding":
		hint = "; binding a Role also needs its permissions, or the \"bind\" verb on roles (docs/rbac.md)"
	}
	return fmt.Errorf("forbidden: you may not %s %ss in this namespace (RBAC): ask for %q on %q%s: %w", verb, kind, verb, resourceOf(kind), hint, err)
}

func resourceOf(kind string) string {
	switch kind {
	case "serviceaccount":
		return "serviceaccounts"
	case "role":
		return "roles.rbac.authorization.k8s.io"
	case "rolebinding":
		return "rolebindings.rbac.authorization.k8s.io"
	}
	return "cronjobs.batch"
}

func ptr[T any](v T) *T { return &v }
