package cmd

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/version"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

var snapT0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// snapshotsFixture is a fake cluster holding Secret "shop" of a real file:// repository
// with two snapshots, and the snapshots' ids (from -o json).
func snapshotsFixture(t *testing.T) (ct cmdTest, list []repository.Snapshot, dirA, dirB string) {
	t.Helper()
	url, dirA, dirB := fileRepo(t, "s3cret", snapT0)
	ct = cmdTest{cs: fake.NewClientset(repository.NewSecret("shop", "prod", url, "s3cret", nil))}
	out, _, err := ct.run(t, "snapshots", "--repo", "shop", "-n", "prod", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	return ct, list, dirA, dirB
}

func TestSnapshotsTable(t *testing.T) {
	ct, list, dirA, dirB := snapshotsFixture(t)
	a, b := list[0], list[1]
	if a.Host != "host-0" || !a.Time.Equal(snapT0) || a.Paths[0] != dirA || a.Stats.TotalFiles != 1 || a.Stats.Size != 5 ||
		b.Host != "host-1" || b.Paths[0] != dirB || b.Stats.TotalFiles != 2 || b.Stats.Size != 9 || a.Session != "shop-backup-1" || len(a.ShortID) != 8 {
		t.Fatalf("snapshots %+v", list)
	}
	w := max(len(dirA), len(dirB), len("DIRECTORY")) + 3
	row := func(cols ...string) string {
		return fmt.Sprintf("%-11s%-22s%-9s%-*s%-8s%s", cols[0], cols[1], cols[2], w, cols[3], cols[4], cols[5])
	}
	want := strings.Join([]string{
		row("ID", "TIME", "HOST", "DIRECTORY", "FILES", "SIZE"),
		row(a.ShortID, "2025-03-01 10:00:00", "host-0", dirA, "1", "5 B"),
		row(b.ShortID, "2025-03-01 11:00:00", "host-1", dirB, "2", "9 B"),
	}, "\n") + "\n"
	out, _, err := ct.run(t, "snapshots", "--repo", "shop", "-n", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if out != want {
		t.Errorf("table:\n%s\nwant:\n%s", out, want)
	}

	out, _, err = ct.run(t, "snapshots", "--repo", "shop", "-n", "prod", "-o", "wide")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "ID TIME HOST DIRECTORY FILES SIZE UPLOADED TAGS TARGET SESSION" {
		t.Errorf("wide header %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], strings.TrimRight(strings.Split(want, "\n")[1], " ")) || !strings.Contains(lines[1], " KiB   daily   <none>   shop-backup-1") {
		t.Errorf("wide row %q", lines[1])
	}

	out, _, err = ct.run(t, "snapshots", "--repo", "shop", "-n", "prod", "-o", "yaml")
	if err != nil || !regexp.MustCompile(`short_id: "?`+a.ShortID+`"?\n`).MatchString(out) || !strings.Contains(out, "totalFiles: 2") {
		t.Errorf("yaml: %v\n%s", err, out)
	}
}

func TestSnapshotsFilters(t *testing.T) {
	ct, list, dirA, _ := snapshotsFixture(t)
	for _, args := range [][]string{{"--host", "host-0"}, {"--path", dirA}, {"--path", dirA + "/a.txt"}} {
		out, _, err := ct.run(t, append([]string{"snapshots", "--repo", "shop", "-n", "prod"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], list[0].ShortID) {
			t.Errorf("%v:\n%s", args, out)
		}
	}
	out, errOut, err := ct.run(t, "snapshots", "--repo", "shop", "-n", "prod", "--host", "host-9")
	if err != nil || out != "" || !strings.HasPrefix(errOut, "No snapshots matching --host host-9 in repository shop (file://") {
		t.Errorf("%v, %q, %q", err, out, errOut)
	}
	out, _, err = ct.run(t, "snapshots", "--repo", "shop", "-n", "prod", "--host", "host-9", "-o", "json")
	if err != nil || out != "[]\n" {
		t.Errorf("empty json: %v, %q", err, out)
	}
}

func TestSnapshotsErrors(t *testing.T) {
	broken := repository.NewSecret("broken", "prod", "s3://b/p", "pw", nil)
	delete(broken.Data, api.SecretKeyRepository)
	cs := func() *fake.Clientset {
		return fake.NewClientset(repository.NewSecret("onpvc", "prod", "pvc://backup-volume/repo", "pw", nil), broken,
			repository.NewSecret("wrongpw", "prod", "file:///nonexistent/repo", "pw", nil))
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"pvc without --via-job", []string{"--repo", "onpvc"},
			`repository "onpvc" (pvc://backup-volume/repo) is on PersistentVolumeClaim "backup-volume", which this machine cannot read: add --via-job`},
		{"missing secret", []string{"--repo", "nope"},
			`secret "nope" not found in namespace "prod": create it with kubectl stash repo create nope -n prod --url URL`},
		{"malformed secret", []string{"--repo", "broken"}, `secret "broken" in namespace "prod" is not a usable repository: it has no key STASH_REPOSITORY`},
		{"no repository there", []string{"--repo", "wrongpw"}, `read repository "wrongpw" from this machine: `},
		{"no --repo", nil, "--repo is required"},
		{"bad output", []string{"--repo", "onpvc", "-o", "csv"}, `--output "csv" is not supported: use table, wide, json or yaml`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := cmdTest{cs: cs()}
			_, _, err := ct.run(t, append([]string{"snapshots", "-n", "prod"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// jobController makes a fake clientset act as the Job controller and kubelet would: a
// created Job gets a pod (with status podStatus) and, unless condition is "", that
// condition. It records the Job.
func jobController(cs *fake.Clientset, condition batchv1.JobConditionType, podStatus corev1.PodStatus, created *[]*batchv1.Job) {
	cs.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		j := a.(k8stesting.CreateAction).GetObject().(*batchv1.Job)
		*created = append(*created, j.DeepCopy())
		if condition != "" {
			j.Status.Conditions = []batchv1.JobCondition{{Type: condition, Status: corev1.ConditionTrue}}
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: j.Name + "-abcde", Namespace: j.Namespace,
			Labels: map[string]string{api.JobNameLabel: j.Name}}, Status: podStatus}
		if err := cs.Tracker().Add(pod); err != nil {
			return true, nil, err
		}
		return false, nil, nil // the tracker stores the Job
	})
}

func TestSnapshotsViaJob(t *testing.T) {
	_, list, _, _ := snapshotsFixture(t)
	logJSON, _ := json.MarshalIndent(list, "", "  ")
	ct := cmdTest{cs: fake.NewClientset(repository.NewSecret("local", "prod", "pvc://backup-volume/repo/shop", "pw", nil)),
		logs: string(logJSON) + "\n"}
	var jobs []*batchv1.Job
	jobController(ct.cs, batchv1.JobComplete, corev1.PodStatus{Phase: corev1.PodSucceeded}, &jobs)

	out, _, err := ct.run(t, "snapshots", "--repo", "local", "-n", "prod", "--via-job", "--host", "host-1", "--image", "registry.example/stash-job:test")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[1], list[1].ShortID) {
		t.Errorf("table:\n%s", out)
	}
	if len(jobs) != 1 {
		t.Fatalf("%d jobs created", len(jobs))
	}
	j := jobs[0]
	spec := j.Spec.Template.Spec
	c := spec.Containers[0]
	if !strings.HasPrefix(j.Name, "stash-snapshots-") || j.Namespace != "prod" || j.Labels[api.LabelRepository] != "local" || *j.Spec.BackoffLimit != 0 {
		t.Errorf("job meta %+v", j.ObjectMeta)
	}
	if c.Image != "registry.example/stash-job:test" || strings.Join(c.Args, " ") != "snapshots -o json --repo $(STASH_REPOSITORY) --host host-1" {
		t.Errorf("image %q, args %q", c.Image, c.Args)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "local" || len(c.Env) != 1 || c.Env[0].Value != "file:///stash-repository/repo/shop" {
		t.Errorf("envFrom %+v, env %+v", c.EnvFrom, c.Env)
	}
	if len(spec.Volumes) != 1 || spec.Volumes[0].PersistentVolumeClaim.ClaimName != "backup-volume" || !spec.Volumes[0].PersistentVolumeClaim.ReadOnly ||
		len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != api.RepositoryMountPath {
		t.Errorf("volumes %+v, mounts %+v", spec.Volumes, c.VolumeMounts)
	}
	var deleted bool
	for _, a := range ct.cs.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok && d.Resource.Resource == "jobs" && d.Name == j.Name {
			deleted = d.DeleteOptions.PropagationPolicy != nil && *d.DeleteOptions.PropagationPolicy == metav1.DeletePropagationBackground
		}
	}
	if !deleted {
		t.Error("the Job was not deleted with background propagation")
	}
}

func TestSnapshotsViaJobDefaultImageAndObjectStore(t *testing.T) {
	ct := cmdTest{cs: fake.NewClientset(repository.NewSecret("s3", "prod", "s3://b/p", "pw", map[string]string{"AWS_ACCESS_KEY_ID": "a"})), logs: "[]\n"}
	var jobs []*batchv1.Job
	jobController(ct.cs, batchv1.JobComplete, corev1.PodStatus{}, &jobs)
	_, errOut, err := ct.run(t, "snapshots", "--repo", "s3", "-n", "prod", "--via-job")
	if err != nil || !strings.Contains(errOut, "No snapshots in repository s3 (s3://b/p).") {
		t.Fatalf("%v; stderr %q", err, errOut)
	}
	c := jobs[0].Spec.Template.Spec.Containers[0]
	if c.Image != version.DefaultImage() || len(c.VolumeMounts) != 0 || strings.Join(c.Args, " ") != "snapshots -o json --repo $(STASH_REPOSITORY)" ||
		len(c.Env) != 1 || c.Env[0].Name != api.SecretKeyRepository || c.Env[0].ValueFrom.SecretKeyRef.Name != "s3" || c.Env[0].ValueFrom.SecretKeyRef.Key != api.SecretKeyRepository {
		t.Errorf("container %+v", c)
	}
}

func TestSnapshotsViaJobFailures(t *testing.T) {
	secret := repository.NewSecret("s3", "prod", "s3://b/p", "pw", nil)
	t.Run("job failed", func(t *testing.T) {
		ct := cmdTest{cs: fake.NewClientset(secret), logs: "stash-job: s3://b/p: wrong password (no key file opens with it)\n"}
		var jobs []*batchv1.Job
		jobController(ct.cs, batchv1.JobFailed, corev1.PodStatus{Phase: corev1.PodFailed}, &jobs)
		_, _, err := ct.run(t, "snapshots", "--repo", "s3", "-n", "prod", "--via-job")
		if err == nil || !strings.Contains(err.Error(), "failed; the end of its log:\n  stash-job: s3://b/p: wrong password") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("image cannot be pulled", func(t *testing.T) {
		ct := cmdTest{cs: fake.NewClientset(secret)}
		var jobs []*batchv1.Job
		waiting := corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "snapshots",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "not found"}}}}}
		jobController(ct.cs, "", waiting, &jobs)
		_, _, err := ct.run(t, "snapshots", "--repo", "s3", "-n", "prod", "--via-job")
		if err == nil || !strings.Contains(err.Error(), "ImagePullBackOff: not found (give the job image with --image)") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		ct := cmdTest{cs: fake.NewClientset(secret)}
		var jobs []*batchv1.Job
		jobController(ct.cs, "", corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled,
			Status: corev1.ConditionFalse, Message: "0/1 nodes are available"}}}, &jobs)
		_, _, err := ct.run(t, "snapshots", "--repo", "s3", "-n", "prod", "--via-job", "--timeout", "50ms")
		if err == nil || !strings.Contains(err.Error(), "did not finish within 50ms: pod/") || !strings.Contains(err.Error(), "not scheduled: 0/1 nodes are available") {
			t.Fatalf("err = %v", err)
		}
	})
}

// The JSON of `kubectl stash snapshots -o json` reads back as the same list.
func TestSnapshotsJSONRoundTrip(t *testing.T) {
	_, list, _, _ := snapshotsFixture(t)
	b, _ := yaml.Marshal(list)
	var back []repository.Snapshot
	if err := yaml.Unmarshal(b, &back); err != nil || len(back) != 2 || back[1].ID != list[1].ID || !back[0].Time.Equal(list[0].Time) {
		t.Fatalf("%v: %+v", err, back)
	}
}
