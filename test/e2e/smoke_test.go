//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/version"
)

// builtVersion asks the built stash-job for its version facts.
func builtVersion(t *testing.T) version.Info {
	t.Helper()
	out, err := exec.Command(filepath.Join(e.binDir, "stash-job"), "version", "-o", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v version.Info
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestJobImageAnnotatesItsOwnJob is the smoke of the whole chain: the job image runs in a
// pod of a Job under its own least-privilege ServiceAccount and patches an annotation on
// its own Job through the in-cluster config.
func TestJobImageAnnotatesItsOwnJob(t *testing.T) {
	c := clientset(t)
	ns := namespace(t, c)
	ctx := context.Background()

	if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "stash-job"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "stash-job"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "patch"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "stash-job"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "stash-job"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "stash-job", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				ServiceAccountName: "stash-job",
				RestartPolicy:      corev1.RestartPolicyNever,
				SecurityContext:    &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
				Containers: []corev1.Container{{
					Name:            "stash-job",
					Image:           e.image,
					ImagePullPolicy: corev1.PullNever,
					Args:            []string{"probe"},
					Env: []corev1.EnvVar{
						fieldEnv(api.EnvNamespace, "metadata.namespace"),
						fieldEnv(api.EnvJobName, "metadata.labels['"+api.JobNameLabel+"']"),
						fieldEnv(api.EnvPodName, "metadata.name"),
						fieldEnv(api.EnvNodeName, "spec.nodeName"),
					},
					SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr.To(false),
						ReadOnlyRootFilesystem:   ptr.To(true),
						Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					},
				}},
			}},
		},
	}
	if _, err := c.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var done *batchv1.Job
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := c.BatchV1().Jobs(ns).Get(ctx, "probe", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if err := podsStuck(ctx, c, ns, "probe"); err != nil {
			return false, err
		}
		for _, cond := range j.Status.Conditions {
			if cond.Status == corev1.ConditionTrue && (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) {
				done = j
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("job did not finish: %v", err)
	}
	if done.Status.Succeeded != 1 {
		t.Fatalf("job failed: %+v", done.Status.Conditions)
	}
	raw, ok := done.Annotations[api.AnnotationProbe]
	if !ok {
		t.Fatalf("job has no %s annotation: %v", api.AnnotationProbe, done.Annotations)
	}
	var p api.Probe
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatalf("annotation %s is not an api.Probe: %v: %s", api.AnnotationProbe, err, raw)
	}
	want := builtVersion(t)
	if p.Version != want.Version || p.GitCommit != want.GitCommit || p.Node == "" || !strings.HasPrefix(p.Pod, "probe-") {
		t.Errorf("probe = %+v, want version %s commit %s from a pod of job probe", p, want.Version, want.GitCommit)
	}
	// The patch came from the job's own ServiceAccount under the named field manager.
	var managers []string
	for _, mf := range done.ManagedFields {
		managers = append(managers, mf.Manager)
	}
	if !strings.Contains(strings.Join(managers, ","), "stash-job") {
		t.Errorf("managedFields managers = %v, want stash-job among them", managers)
	}
}

// TestPluginRunsThroughKubectl checks plugin discovery: kubectl finds kubectl-stash on PATH
// and `kubectl stash version` prints the plugin version, commit and job image.
func TestPluginRunsThroughKubectl(t *testing.T) {
	list, err := kubectl(t, "plugin", "list")
	if err != nil || !strings.Contains(list, filepath.Join(e.binDir, "kubectl-stash")) {
		t.Fatalf("kubectl plugin list does not find kubectl-stash (%v):\n%s", err, list)
	}
	out, err := kubectl(t, "stash", "version")
	if err != nil {
		t.Fatalf("kubectl stash version: %v\n%s", err, out)
	}
	want := builtVersion(t)
	for _, line := range []string{"Version:   " + want.Version, "GitCommit: " + want.GitCommit, "JobImage:  " + e.image} {
		if !strings.Contains(out, line) {
			t.Errorf("kubectl stash version lacks %q:\n%s", line, out)
		}
	}
}
