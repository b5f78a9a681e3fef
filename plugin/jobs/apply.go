package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

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
// object of the same name that the plugin does not manage is never taken over.
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
		getRV, patch := clientFor(c, kind, acc.GetNamespace())
		before, err := getRV(ctx, acc.GetName())
		if err != nil && !apierrors.IsNotFound(err) {
			return out, fmt.Errorf("%s %q in namespace %s: %w", kind, acc.GetName(), acc.GetNamespace(), explain(err, "get", kind))
		}
		if err == nil && before.labels[api.LabelManagedBy] != api.ManagedByValue {
			return out, fmt.Errorf("%s %q already exists in namespace %s and is not managed by kubectl-stash: choose another configuration name (--name), or delete it", kind, acc.GetName(), acc.GetNamespace())
		}
		afterRV, err := patch(ctx, acc.GetName(), body, opts)
		if err != nil {
			return out, fmt.Errorf("%s %q in namespace %s: %w", kind, acc.GetName(), acc.GetNamespace(), explain(err, "patch", kind))
		}
		r := Result{Kind: kindPath(kind), Name: acc.GetName(), Action: "configured"}
		switch {
		case before.rv == "":
			r.Action = "created"
		case before.rv == afterRV:
			r.Action = "unchanged"
		}
		if serverDryRun {
			r.Action += " (server dry run)"
		}
		out = append(out, r)
	}
	return out, nil
}

type current struct {
	rv     string
	labels map[string]string
}

func clientFor(c kubernetes.Interface, kind, ns string) (func(context.Context, string) (current, error), func(context.Context, string, []byte, metav1.PatchOptions) (string, error)) {
	get := func(o metav1.Object, err error) (current, error) {
		if err != nil {
			return current{}, err
		}
		return current{rv: o.GetResourceVersion(), labels: o.GetLabels()}, nil
	}
	rv := func(o metav1.Object, err error) (string, error) {
		if err != nil {
			return "", err
		}
		return o.GetResourceVersion(), nil
	}
	switch kind {
	case "serviceaccount":
		x := c.CoreV1().ServiceAccounts(ns)
		return func(ctx context.Context, n string) (current, error) { return get(x.Get(ctx, n, metav1.GetOptions{})) },
			func(ctx context.Context, n string, b []byte, o metav1.PatchOptions) (string, error) {
				return rv(x.Patch(ctx, n, types.ApplyPatchType, b, o))
			}
	case "role":
		x := c.RbacV1().Roles(ns)
		return func(ctx context.Context, n string) (current, error) { return get(x.Get(ctx, n, metav1.GetOptions{})) },
			func(ctx context.Context, n string, b []byte, o metav1.PatchOptions) (string, error) {
				return rv(x.Patch(ctx, n, types.ApplyPatchType, b, o))
			}
	case "rolebinding":
		x := c.RbacV1().RoleBindings(ns)
		return func(ctx context.Context, n string) (current, error) { return get(x.Get(ctx, n, metav1.GetOptions{})) },
			func(ctx context.Context, n string, b []byte, o metav1.PatchOptions) (string, error) {
				return rv(x.Patch(ctx, n, types.ApplyPatchType, b, o))
			}
	default: // cronjob
		x := c.BatchV1().CronJobs(ns)
		return func(ctx context.Context, n string) (current, error) { return get(x.Get(ctx, n, metav1.GetOptions{})) },
			func(ctx context.Context, n string, b []byte, o metav1.PatchOptions) (string, error) {
				return rv(x.Patch(ctx, n, types.ApplyPatchType, b, o))
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
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("forbidden: you may not %s %ss here (RBAC); ask for %q on %q in this namespace: %w", verb, kind, verb, resourceOf(kind), err)
	}
	return err
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
