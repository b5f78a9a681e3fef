package jobimage

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

func restoreSessionJob(name string, cfg api.RestoreConfig) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name),
		CreationTimestamp: metav1.NewTime(time.Now()),
		Labels: map[string]string{api.LabelRestoreSession: name, api.LabelComponent: api.ComponentRestoreSession,
			api.LabelRestoreTarget: api.TargetLabel(cfg.Target)}}}
}

// restoreHostSim plays the restore host pods: each host Job that may run (not suspended)
// is handed to act once.
func restoreHostSim(c kubernetes.Interface, act func(job *batchv1.Job)) (stop func()) {
	return jobSim(c, api.ComponentRestoreHost, act)
}

func pendingPVC(name string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:   corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}
}

func hostSpecOf(t *testing.T, j *batchv1.Job) api.RestoreHostSpec {
	t.Helper()
	var spec api.RestoreHostSpec
	if err := json.Unmarshal([]byte(j.Spec.Template.Annotations[api.AnnotationRestoreHostSpec]), &spec); err != nil {
		t.Fatalf("host spec of %s: %v", j.Name, err)
	}
	return spec
}

func runRestore(t *testing.T, c *fake.Clientset, cfg api.RestoreConfig) (api.Phase, error) {
	t.Helper()
	cfg.SchemaVersion, cfg.Image, cfg.Repository = 1, "stash-job:test", "repo"
	if _, err := c.BatchV1().Jobs(ns).Create(context.Background(), restoreSessionJob(cfg.Name, cfg), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs := &RestoreSession{Client: c, Namespace: ns, Job: cfg.Name, Config: cfg, RepoURL: "s3://bucket/repo", Poll: 10 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return rs.Run(ctx)
}

func succeed(t *testing.T, c kubernetes.Interface) func(j *batchv1.Job) {
	return func(j *batchv1.Job) {
		annotateHost(t, c, j.Name, api.HostStatus{Hostname: j.Labels[api.LabelHost], Phase: api.PhaseSucceeded, Duration: "1s"})
	}
}

// The seed's sample: a StatefulSet that does not exist yet, 5 replicas, host-3 and host-4
// restore host-1's data, every other host its own.
func TestRestoreSessionSeedRules(t *testing.T) {
	var objs []runtime.Object
	for i := range 5 {
		objs = append(objs, pendingPVC(fmt.Sprintf("source-data-recovered-statefulset-%d", i)))
	}
	c := fake.NewClientset(objs...)
	stop := restoreHostSim(c, succeed(t, c))
	defer stop()
	cfg := api.RestoreConfig{Name: "statefulset-restore", Target: api.Target{Kind: "statefulset", Name: "recovered-statefulset"},
		SourceTarget: api.Target{Kind: "statefulset", Name: "sample"}, Replicas: 5, VolumeClaimTemplates: []string{"source-data"},
		VolumeMounts: []api.VolumeMount{{Name: "source-data", MountPath: "/source/data"}},
		Rules: []api.RestoreRule{
			{TargetHosts: []string{"host-3", "host-4"}, SourceHost: "host-1", Paths: []string{"/source/data"}},
			{TargetHosts: []string{}, SourceHost: "", Paths: []string{"/source/data"}},
		}}
	phase, err := runRestore(t, c, cfg)
	if phase != api.PhaseSucceeded || err != nil {
		t.Fatalf("phase %s, err %v", phase, err)
	}
	st := sessionStatus(t, c, cfg.Name)
	if st.TotalHosts != 5 || st.Hosts.Succeeded != 5 || st.SessionDuration != "5s" {
		t.Errorf("session status %+v, want 5 hosts Succeeded, duration the sum 5s", st)
	}
	for i := range 5 {
		host := fmt.Sprintf("host-%d", i)
		_, j := hostStatus(t, c, api.HostJobName(cfg.Name, host))
		spec := hostSpecOf(t, j)
		wantSource := host
		if i >= 3 {
			wantSource = "host-1"
		}
		if spec.SourceHost != wantSource || !slices.Equal(spec.Paths, []string{"/source/data"}) || spec.SourceTarget != cfg.SourceTarget {
			t.Errorf("%s: spec %+v, want source %s paths [/source/data] of %s", host, spec, wantSource, cfg.SourceTarget)
		}
		pod := j.Spec.Template.Spec
		claim := fmt.Sprintf("source-data-recovered-statefulset-%d", i)
		var mounted bool
		for _, v := range pod.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim && !v.PersistentVolumeClaim.ReadOnly {
				for _, m := range pod.Containers[0].VolumeMounts {
					mounted = mounted || (m.Name == v.Name && m.MountPath == "/source/data" && !m.ReadOnly)
				}
			}
		}
		if !mounted {
			t.Errorf("%s: claim %s not mounted read-write at /source/data: %+v %+v", host, claim, pod.Volumes, pod.Containers[0].VolumeMounts)
		}
		if caps := pod.Containers[0].SecurityContext.Capabilities.Add; !slices.Contains(caps, "CHOWN") || !slices.Contains(caps, "FOWNER") {
			t.Errorf("%s: capabilities %v, want what a restore needs to set owners and modes", host, caps)
		}
		if pod.Containers[0].Args[0] != "restore-host" || !slices.Equal(spec.Mounts, []string{"/source/data"}) {
			t.Errorf("%s: args %v mounts %v", host, pod.Containers[0].Args, spec.Mounts)
		}
	}
}

func TestRestoreSessionHostWithoutRule(t *testing.T) {
	c := fake.NewClientset(pendingPVC("data-new-0"), pendingPVC("data-new-1"), pendingPVC("data-new-2"))
	stop := restoreHostSim(c, succeed(t, c))
	defer stop()
	cfg := api.RestoreConfig{Name: "partial", Target: api.Target{Kind: "statefulset", Name: "new"}, SourceTarget: api.Target{Kind: "statefulset", Name: "old"},
		Replicas: 3, VolumeClaimTemplates: []string{"data"}, VolumeMounts: []api.VolumeMount{{Name: "data", MountPath: "/data"}},
		Rules: []api.RestoreRule{{TargetHosts: []string{"host-1"}, SourceHost: "host-0"}}}
	phase, err := runRestore(t, c, cfg)
	if phase != api.PhaseSucceeded || err != nil {
		t.Fatalf("phase %s, err %v: hosts no rule matches are not failures", phase, err)
	}
	if st := sessionStatus(t, c, cfg.Name); st.Hosts.Succeeded != 1 || st.Hosts.Skipped != 2 || st.TotalHosts != 3 {
		t.Errorf("session status %+v, want 1 Succeeded, 2 Skipped of 3", st)
	}
	for _, h := range []string{"host-0", "host-2"} {
		st, j := hostStatus(t, c, api.HostJobName(cfg.Name, h))
		if st.Phase != api.PhaseSkipped || st.Message != api.NoRuleMessage(h) || j.Spec.Suspend == nil || !*j.Spec.Suspend {
			t.Errorf("%s: %+v (suspended %v), want Skipped saying no rule matches", h, st, j.Spec.Suspend)
		}
	}
}

func TestRestoreSessionScaleDown(t *testing.T) {
	three := int32(3)
	d := deploymentWith(pvcVolume)
	d.Spec.Replicas = &three
	c := fake.NewClientset(d, boundPVC("data", corev1.ReadWriteOnce))
	var during *appsv1.Deployment
	stop := restoreHostSim(c, func(j *batchv1.Job) {
		during, _ = c.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
		succeed(t, c)(j)
	})
	defer stop()
	cfg := api.RestoreConfig{Name: "web-restore", Target: api.Target{Kind: "deployment", Name: "web"}, SourceTarget: api.Target{Kind: "deployment", Name: "web"}, ScaleDown: true}
	if phase, err := runRestore(t, c, cfg); phase != api.PhaseSucceeded || err != nil {
		t.Fatalf("phase %s, err %v", phase, err)
	}
	if during == nil || *during.Spec.Replicas != 0 || during.Annotations[api.AnnotationScaledDownFrom] != "3" || during.Annotations[api.AnnotationScaledDownBy] != "web-restore" {
		t.Fatalf("during the restore: %+v, want 0 replicas and the count 3 recorded", during)
	}
	after, _ := c.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if *after.Spec.Replicas != 3 || after.Annotations[api.AnnotationScaledDownFrom] != "" {
		t.Errorf("after: replicas %d annotations %v, want 3 and the record gone", *after.Spec.Replicas, after.Annotations)
	}

	// an earlier restore crashed after scaling down: its record is the real count, and it
	// comes back even when this restore fails
	d2 := deploymentWith(pvcVolume)
	zero := int32(0)
	d2.Spec.Replicas, d2.Annotations = &zero, map[string]string{api.AnnotationScaledDownFrom: "2"}
	c = fake.NewClientset(d2, boundPVC("data", corev1.ReadWriteOnce))
	stop2 := restoreHostSim(c, func(j *batchv1.Job) {
		annotateHost(t, c, j.Name, api.HostStatus{Hostname: "host-0", Phase: api.PhaseFailed, Error: "boom", Duration: "1s"})
	})
	defer stop2()
	if phase, _ := runRestore(t, c, cfg); phase != api.PhaseFailed {
		t.Fatalf("phase %s, want Failed", phase)
	}
	after, _ = c.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if *after.Spec.Replicas != 2 || after.Annotations[api.AnnotationScaledDownFrom] != "" {
		t.Errorf("after a failed restore: replicas %d annotations %v, want the recorded 2 back", *after.Spec.Replicas, after.Annotations)
	}
}

func TestRestoreSessionTargetMissing(t *testing.T) {
	c := fake.NewClientset()
	cfg := api.RestoreConfig{Name: "nothing", Target: api.Target{Kind: "statefulset", Name: "ghost"}}
	phase, err := runRestore(t, c, cfg)
	if phase != api.PhaseFailed || err == nil || !strings.Contains(err.Error(), "--replicas N and --volume-claim-template FILE") {
		t.Fatalf("phase %s, err %v, want Failed naming --replicas", phase, err)
	}
}

// A restore host puts each path back in place, from the source host's latest snapshot,
// and records what it did.
func TestRunRestoreHost(t *testing.T) {
	url := newFileRepo(t)
	pw := []byte("host test password")
	data := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(data, name), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	write("kept.txt", "original")
	write("changed.txt", "original")
	write("removed.txt", "original")
	spec := api.HostSpec{Hostname: "host-1", Config: "web-backup", Session: "s1", Paths: []string{data}, Target: api.Target{Kind: "statefulset", Name: "web"}}
	if err := RunHost(context.Background(), HostRun{Spec: spec, RepoURL: url, Password: pw, Status: &recorder{}}); err != nil {
		t.Fatal(err)
	}
	// after the backup: one file changed (newer), one added, one removed
	time.Sleep(10 * time.Millisecond)
	write("changed.txt", "changed after the backup")
	write("added.txt", "new")
	os.Remove(filepath.Join(data, "removed.txt"))

	rec := &recorder{}
	rspec := api.RestoreHostSpec{Hostname: "host-3", SourceHost: "host-1", SourceTarget: spec.Target, Paths: []string{data},
		Mounts: []string{filepath.Dir(data)}, Overwrite: "always", Delete: true}
	if err := RunRestoreHost(context.Background(), RestoreHostRun{Spec: rspec, RepoURL: url, Password: pw, Status: rec}); err != nil {
		t.Fatal(err)
	}
	st := rec.last()
	if st.Phase != api.PhaseSucceeded || len(st.Restored) != 1 || st.Restored[0].SourceHost != "host-1" || st.Restored[0].Deleted != 1 {
		t.Fatalf("status %+v", st)
	}
	got := readDir(t, data)
	if want := map[string]string{"kept.txt": "original", "changed.txt": "original", "removed.txt": "original"}; !mapsEqual(got, want) {
		t.Errorf("after restore: %v, want the snapshot exactly %v", got, want)
	}

	// a source host without snapshots, and a path outside the host's volumes, fail the host
	for _, c := range []struct {
		spec api.RestoreHostSpec
		want string
	}{
		{api.RestoreHostSpec{Hostname: "host-0", SourceHost: "host-9", SourceTarget: spec.Target, Mounts: []string{data}}, "no snapshot of host-9 of statefulset/web"},
		{api.RestoreHostSpec{Hostname: "host-0", SourceHost: "host-1", SourceTarget: spec.Target, Mounts: []string{"/elsewhere"}}, "is not on a volume of the target"},
		{api.RestoreHostSpec{Hostname: "host-0", SourceHost: "host-1", SourceTarget: spec.Target, Mounts: []string{data}, Paths: []string{"/not/backed/up"}}, "holds /not/backed/up"},
		{api.RestoreHostSpec{Hostname: "host-0", SourceHost: "host-1", SourceTarget: spec.Target, Mounts: []string{data}, Snapshots: []string{"deadbeef"}}, "deadbeef"},
	} {
		rec := &recorder{}
		err := RunRestoreHost(context.Background(), RestoreHostRun{Spec: c.spec, RepoURL: url, Password: pw, Status: rec})
		if err == nil || !strings.Contains(err.Error(), c.want) || rec.last().Phase != api.PhaseFailed {
			t.Errorf("%+v: err %v, last status %+v, want Failed with %q", c.spec, err, rec.last(), c.want)
		}
	}
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = string(b)
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
