package cmd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

// restoreFixture is namespace "prod" with Deployment shop (volume shop-data at
// /source/data) and repository Secret "s3" (a file:// repository) holding a snapshot of
// /source/data by host-0 of deployment/shop.
func restoreFixture(t *testing.T) (*fake.Clientset, repository.Snapshot) {
	t.Helper()
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "source", "data")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "index.html"), []byte("<h1>shop</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	r, err := repository.FromSecret(repository.NewSecret("s3", "prod", url, "s3cret", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Init(ctx, repo.InitOptions{KDF: repotest.CheapKDF}); err != nil {
		t.Fatal(err)
	}
	rp, closeFn, err := r.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if err := rp.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	// the snapshot records /source/data as the pod saw it, as a backup host does
	sn, err := snapshot.Backup(ctx, rp, []string{src}, snapshot.BackupOptions{Host: "host-0", Target: &repo.Target{Kind: "deployment", Name: "shop"}})
	if err != nil {
		t.Fatal(err)
	}
	one := int32(1)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "prod"},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "shop"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: filepath.Dir(src) + "/data"}}}},
				Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "shop-data"}}}}}}}}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "shop-data", Namespace: "prod"},
		Spec:   corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
	return fake.NewClientset(repository.NewSecret("s3", "prod", url, "s3cret", nil), d, pvc), repository.FromEngine(sn)
}

func runRestoreCmd(t *testing.T, cs kubernetes.Interface, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-kubeconfig"))
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	g := &GlobalOptions{ConfigFlags: genericclioptions.NewConfigFlags(true)}
	root := &cobra.Command{Use: "kubectl-stash", SilenceUsage: true, SilenceErrors: true}
	g.ConfigFlags.AddFlags(root.PersistentFlags())
	o := &RestoreOptions{global: g, IOStreams: streams, DryRun: "none", Overwrite: "always",
		newClient: func() (kubernetes.Interface, error) { return cs, nil }}
	root.AddCommand(newCmdRestore(o))
	root.SetArgs(append([]string{"restore", "-n", "prod"}, args...))
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func sessionConfig(t *testing.T, cs kubernetes.Interface, name string) (api.RestoreConfig, *batchv1.Job) {
	t.Helper()
	j, err := cs.BatchV1().Jobs("prod").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cfg api.RestoreConfig
	if err := json.Unmarshal([]byte(j.Annotations[api.AnnotationConfig]), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg, j
}

func TestRestoreCreatesASession(t *testing.T) {
	cs, sn := restoreFixture(t)
	out, _, err := runRestoreCmd(t, cs, "deployment/shop", "--repo", "s3", "--name", "shop-restore", "--scale-down", "--overwrite", "if-newer")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "host-0 <- "+sn.Paths[0]+" of "+sn.ShortID) || !strings.Contains(out, "restoresession shop-restore created") {
		t.Errorf("output:\n%s", out)
	}
	cfg, j := sessionConfig(t, cs, "shop-restore")
	if cfg.Target.String() != "deployment/shop" || cfg.SourceTarget != cfg.Target || cfg.Overwrite != "if-newer" || !cfg.ScaleDown {
		t.Errorf("config %+v", cfg)
	}
	if j.Spec.Suspend == nil || *j.Spec.Suspend || j.Labels[api.LabelComponent] != api.ComponentRestoreSession {
		t.Errorf("job: suspend %v labels %v, want started and labelled", j.Spec.Suspend, j.Labels)
	}
	// its ServiceAccount and Role belong to the session Job, and may scale this target only
	role, err := cs.RbacV1().Roles("prod").Get(context.Background(), "stash-restore-shop-restore", metav1.GetOptions{})
	if err != nil || len(role.OwnerReferences) != 1 || role.OwnerReferences[0].Name != "shop-restore" {
		t.Fatalf("role: %v %+v", err, role)
	}
	var patch bool
	for _, r := range role.Rules {
		if len(r.Resources) == 1 && r.Resources[0] == "deployments" && len(r.Verbs) == 1 && r.Verbs[0] == "patch" {
			patch = len(r.ResourceNames) == 1 && r.ResourceNames[0] == "shop"
		}
	}
	if !patch {
		t.Errorf("role rules %+v, want patch on deployment shop only", role.Rules)
	}
	// a second restore into the same target while this one runs is refused
	if _, _, err := runRestoreCmd(t, cs, "deployment/shop", "--repo", "s3"); err == nil || !strings.Contains(err.Error(), "restore session shop-restore into deployment/shop is still running") {
		t.Errorf("second restore: %v", err)
	}
}

// A new PVC is mounted where the one directory restored was: the data lands at its root.
func TestRestoreIntoANewPVC(t *testing.T) {
	cs, sn := restoreFixture(t)
	out, _, err := runRestoreCmd(t, cs, "pvc/copy", "--repo", "s3", "--source-target", "deployment/shop", "--size", "2Gi",
		"--storage-class", "manual", "--name", "copy")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cfg, _ := sessionConfig(t, cs, "copy")
	if cfg.MountPath != sn.Paths[0] {
		t.Errorf("mount path %q, want the restored directory %q", cfg.MountPath, sn.Paths[0])
	}
	pvc, err := cs.CoreV1().PersistentVolumeClaims("prod").Get(context.Background(), "copy", metav1.GetOptions{})
	if err != nil || pvc.Spec.Resources.Requests.Storage().String() != "2Gi" || *pvc.Spec.StorageClassName != "manual" {
		t.Errorf("pvc: %v %+v", err, pvc)
	}
}

// Bad input: one error naming what is wrong and how to fix it, and nothing created.
func TestRestoreBadInput(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown snapshot", []string{"deployment/shop", "--repo", "s3", "--snapshot", "deadbeef"}, `snapshot "deadbeef" is not in the repository s3: see kubectl stash snapshots --repo s3`},
		{"path not in the snapshot", []string{"deployment/shop", "--repo", "s3", "--paths", "/not/there"}, "holds /not/there"},
		{"missing target", []string{"statefulset/ghost", "--repo", "s3"}, "give --replicas N and --volume-claim-template FILE"},
		{"missing pvc", []string{"pvc/ghost", "--repo", "s3"}, "give --size (and --storage-class) or --volume-claim-template FILE"},
		{"two catch-all rules", []string{"deployment/shop", "--repo", "s3", "--rule", "sourceHost=host-0", "--rule", "paths=/a"}, "rules[1] and rules[0] both have empty targetHosts"},
		{"bad rule", []string{"deployment/shop", "--repo", "s3", "--rule", "hosts=host-1"}, `unknown key "hosts"`},
		{"bad overwrite", []string{"deployment/shop", "--repo", "s3", "--overwrite", "sometimes"}, "want never, if-newer or always"},
		{"no repository", []string{"deployment/shop"}, "give --repo NAME"},
		{"unknown repository", []string{"deployment/shop", "--repo", "nope"}, "nope"},
		{"replicas of an existing workload", []string{"deployment/shop", "--repo", "s3", "--replicas", "3"}, "--replicas is for a StatefulSet"},
		{"rule for no host", []string{"deployment/shop", "--repo", "s3", "--rule", "targetHosts=host-7"}, "no rule matches any of the hosts"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs, _ := restoreFixture(t)
			before := len(cs.Actions())
			_, _, err := runRestoreCmd(t, cs, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
			for _, a := range cs.Actions()[before:] {
				if a.GetVerb() == "create" || a.GetVerb() == "patch" || a.GetVerb() == "update" {
					t.Errorf("bad input changed the cluster: %s %s", a.GetVerb(), a.GetResource().Resource)
				}
			}
		})
	}
}

func TestRestoreDryRunPrintsTheObjects(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "claim.yaml")
	if err := os.WriteFile(tmpl, []byte("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: source-data}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := runRestoreCmd(t, nil, "statefulset/recovered", "--repo", "s3", "--from-config", "sample-backup", "--replicas", "2",
		"--volume-claim-template", tmpl, "--rule", "targetHosts=host-1;sourceHost=host-0", "--rule", "targetHosts=;paths=/source/data",
		"--name", "r1", "--dry-run=client", "-o", "yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var kinds []string
	var cfg api.RestoreConfig
	for _, doc := range strings.Split(out, "\n---\n") {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name        string            `json:"name"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, obj.Kind+"/"+obj.Metadata.Name)
		if obj.Kind == "Job" {
			if err := json.Unmarshal([]byte(obj.Metadata.Annotations[api.AnnotationConfig]), &cfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	// in the order kubectl apply -f needs them, and the Job not suspended
	want := "ServiceAccount/stash-restore-r1 Role/stash-restore-r1 RoleBinding/stash-restore-r1 PersistentVolumeClaim/source-data-recovered-0 PersistentVolumeClaim/source-data-recovered-1 Job/r1"
	if strings.Contains(out, "suspend: true") {
		t.Errorf("the printed Job is suspended: applied, it would never start")
	}
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("objects %s, want %s", got, want)
	}
	if len(cfg.Rules) != 2 || cfg.Rules[0].SourceHost != "host-0" || cfg.Replicas != 2 || len(cfg.VolumeMounts) != 1 || cfg.VolumeMounts[0].MountPath != "/source/data" {
		t.Errorf("config %+v: want the rules, 2 replicas, and the template mounted at the one rule path", cfg)
	}
}
