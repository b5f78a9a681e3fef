package jobimage

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

const ns = "shop"

func testConfig() api.BackupConfig {
	return api.BackupConfig{SchemaVersion: 1, Name: "web-backup", Target: api.Target{Kind: "deployment", Name: "web"},
		Repository: "repo", Paths: []string{"/source/data"}, Image: "stash-job:test"}
}

func sessionJob(name string, created time.Time) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name),
		CreationTimestamp: metav1.NewTime(created),
		Labels:            map[string]string{api.LabelBackupConfiguration: "web-backup", api.LabelComponent: api.ComponentSession}}}
}

func deploymentWith(volume corev1.Volume) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: volume.Name, MountPath: "/source/data"}}}},
				Volumes:    []corev1.Volume{volume}}}}}
}

func boundPVC(name string, mode corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:   corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{mode}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
}

var pvcVolume = corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}

// hostSim plays the part of the host pods: when a host Job appears it applies act to it.
func hostSim(t *testing.T, c kubernetes.Interface, act func(job *batchv1.Job)) (stop func()) {
	return jobSim(c, api.ComponentHost, act)
}

// jobSim hands each Job of component that may run (not suspended) to act, once.
func jobSim(c kubernetes.Interface, component string, act func(job *batchv1.Job)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		done := map[string]bool{}
		for ctx.Err() == nil {
			list, _ := c.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: api.LabelComponent + "=" + component})
			for i := range list.Items {
				if j := &list.Items[i]; !done[j.Name] && (j.Spec.Suspend == nil || !*j.Spec.Suspend) {
					done[j.Name] = true
					act(j)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return func() { cancel(); wg.Wait() }
}

func annotateHost(t *testing.T, c kubernetes.Interface, job string, st api.HostStatus) {
	t.Helper()
	st.SchemaVersion = 1
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{api.AnnotationHostStatus: mustJSON(st)}}})
	if _, err := c.BatchV1().Jobs(ns).Patch(context.Background(), job, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		t.Error(err)
	}
}

func failJob(t *testing.T, c kubernetes.Interface, j *batchv1.Job) {
	t.Helper()
	j = j.DeepCopy()
	j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue,
		Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"})
	if _, err := c.BatchV1().Jobs(ns).UpdateStatus(context.Background(), j, metav1.UpdateOptions{}); err != nil {
		t.Error(err)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func sessionStatus(t *testing.T, c kubernetes.Interface, name string) api.SessionStatus {
	t.Helper()
	j, err := c.BatchV1().Jobs(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var st api.SessionStatus
	if err := json.Unmarshal([]byte(j.Annotations[api.AnnotationSessionStatus]), &st); err != nil {
		t.Fatalf("session status %q: %v", j.Annotations[api.AnnotationSessionStatus], err)
	}
	return st
}

func hostStatus(t *testing.T, c kubernetes.Interface, job string) (api.HostStatus, *batchv1.Job) {
	t.Helper()
	j, err := c.BatchV1().Jobs(ns).Get(context.Background(), job, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var st api.HostStatus
	_ = json.Unmarshal([]byte(j.Annotations[api.AnnotationHostStatus]), &st)
	return st, j
}

func TestSession(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		objects []any
		config  func(*api.BackupConfig)
		host    func(t *testing.T, c kubernetes.Interface, j *batchv1.Job)
		// want
		phase     api.Phase
		errSubstr string
		hostPhase api.Phase
		hostError string
		suspended bool
	}{
		{
			name:    "host succeeds",
			objects: []any{deploymentWith(pvcVolume), boundPVC("data", corev1.ReadWriteOnce)},
			host: func(t *testing.T, c kubernetes.Interface, j *batchv1.Job) {
				annotateHost(t, c, j.Name, api.HostStatus{Hostname: "host-0", Phase: api.PhaseSucceeded, Duration: "1.5s",
					Snapshots: []api.SnapshotStats{{Name: "ea5381cc", Directory: "/source/data"}}})
			},
			phase: api.PhaseSucceeded, hostPhase: api.PhaseSucceeded,
		},
		{
			name:    "host pod OOM-killed",
			objects: []any{deploymentWith(pvcVolume), boundPVC("data", corev1.ReadWriteOnce)},
			host: func(t *testing.T, c kubernetes.Interface, j *batchv1.Job) {
				annotateHost(t, c, j.Name, api.HostStatus{Hostname: "host-0", Phase: api.PhaseRunning, StartTime: now.UTC().Format(time.RFC3339)})
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: j.Name + "-abcde", Namespace: ns, Labels: map[string]string{api.JobNameLabel: j.Name}},
					Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{Name: "backup",
						State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}}}}}
				if _, err := c.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
					t.Error(err)
				}
				failJob(t, c, j)
			},
			phase: api.PhaseFailed, errSubstr: "1 of 1 hosts failed", hostPhase: api.PhaseFailed, hostError: "OOMKilled",
		},
		{
			name:    "host pod vanished",
			objects: []any{deploymentWith(pvcVolume), boundPVC("data", corev1.ReadWriteOnce)},
			host: func(t *testing.T, c kubernetes.Interface, j *batchv1.Job) {
				annotateHost(t, c, j.Name, api.HostStatus{Hostname: "host-0", Phase: api.PhaseRunning})
				failJob(t, c, j)
			},
			phase: api.PhaseFailed, hostPhase: api.PhaseFailed, hostError: "vanished",
		},
		{
			name:    "host pod cannot be created (Pod Security)",
			objects: []any{deploymentWith(pvcVolume), boundPVC("data", corev1.ReadWriteOnce)},
			host: func(t *testing.T, c kubernetes.Interface, j *batchv1.Job) {
				ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: j.Name + ".1", Namespace: ns},
					InvolvedObject: corev1.ObjectReference{Kind: "Job", Name: j.Name}, Reason: "FailedCreate", Type: "Warning",
					Message: `Error creating: pods "x" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities (container "backup" must not include "DAC_READ_SEARCH")`}
				if _, err := c.CoreV1().Events(ns).Create(context.Background(), ev, metav1.CreateOptions{}); err != nil {
					t.Error(err)
				}
			},
			phase: api.PhaseFailed, hostPhase: api.PhaseFailed, hostError: "could not be created: Error creating: pods \"x\" is forbidden: violates PodSecurity", suspended: true,
		},
		{
			name:    "timeout",
			objects: []any{deploymentWith(pvcVolume), boundPVC("data", corev1.ReadWriteOnce)},
			config:  func(c *api.BackupConfig) { c.Timeout = "300ms" },
			host: func(t *testing.T, c kubernetes.Interface, j *batchv1.Job) {
				annotateHost(t, c, j.Name, api.HostStatus{Hostname: "host-0", Phase: api.PhaseRunning, StartTime: now.UTC().Format(time.RFC3339)})
			},
			phase: api.PhaseFailed, errSubstr: "deadline exceeded", hostPhase: api.PhaseFailed, hostError: "deadline exceeded", suspended: true,
		},
		{
			name:    "emptyDir volume: host Failed without running",
			objects: []any{deploymentWith(corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})},
			phase:   api.PhaseFailed, hostPhase: api.PhaseFailed, hostError: `volume "cache" (emptyDir)`, suspended: true,
		},
		{
			name:    "ReadWriteOncePod claim: host Failed without running",
			objects: []any{deploymentWith(pvcVolume), boundPVC("data", corev1.ReadWriteOncePod)},
			phase:   api.PhaseFailed, hostPhase: api.PhaseFailed, hostError: "ReadWriteOncePod", suspended: true,
		},
		{
			name:    "target not found",
			objects: nil,
			phase:   api.PhaseFailed, errSubstr: "target deployment/web not found in namespace shop",
		},
		{
			name:    "an older session still runs: Skipped",
			objects: []any{deploymentWith(pvcVolume), boundPVC("data", corev1.ReadWriteOnce), sessionJob("web-backup-older", now.Add(-time.Minute))},
			phase:   api.PhaseSkipped, errSubstr: "session web-backup-older of backup configuration web-backup is still running",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			self := sessionJob("web-backup-2do7af", now)
			c := fake.NewClientset(self)
			for _, o := range tt.objects {
				var err error
				switch o := o.(type) {
				case *appsv1.Deployment:
					_, err = c.AppsV1().Deployments(ns).Create(context.Background(), o, metav1.CreateOptions{})
				case *corev1.PersistentVolumeClaim:
					_, err = c.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), o, metav1.CreateOptions{})
				case *batchv1.Job:
					_, err = c.BatchV1().Jobs(ns).Create(context.Background(), o, metav1.CreateOptions{})
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if tt.host != nil {
				stop := hostSim(t, c, func(j *batchv1.Job) { tt.host(t, c, j) })
				defer stop()
			}
			cfg := testConfig()
			if tt.config != nil {
				tt.config(&cfg)
			}
			s := &Session{Client: c, Namespace: ns, Job: self.Name, Config: cfg, RepoURL: "s3://bucket/x",
				Poll: 10 * time.Millisecond, Grace: 50 * time.Millisecond, PodCreateGrace: 100 * time.Millisecond}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			phase, err := s.Run(ctx)
			if phase != tt.phase {
				t.Fatalf("phase %s (%v), want %s", phase, err, tt.phase)
			}
			if (err != nil) != (tt.phase == api.PhaseFailed) {
				t.Errorf("err = %v for phase %s", err, phase)
			}
			st := sessionStatus(t, c, self.Name)
			if st.Phase != tt.phase || !strings.Contains(st.Error, tt.errSubstr) {
				t.Errorf("session status %+v, want phase %s, error containing %q", st, tt.phase, tt.errSubstr)
			}
			if tt.hostPhase == "" {
				return
			}
			hs, job := hostStatus(t, c, api.HostJobName(self.Name, "host-0"))
			if hs.Phase != tt.hostPhase || !strings.Contains(hs.Error, tt.hostError) {
				t.Errorf("host status %+v, want %s with %q", hs, tt.hostPhase, tt.hostError)
			}
			if got := job.Spec.Suspend != nil && *job.Spec.Suspend; got != tt.suspended {
				t.Errorf("host job suspended = %v, want %v", got, tt.suspended)
			}
			if len(job.OwnerReferences) != 1 || job.OwnerReferences[0].UID != self.UID {
				t.Errorf("host job owners %v, want the session job", job.OwnerReferences)
			}
			if st.TotalHosts != 1 {
				t.Errorf("totalHosts %d, want 1", st.TotalHosts)
			}
			if tt.phase == api.PhaseSucceeded && st.SessionDuration != "1.5s" {
				t.Errorf("sessionDuration %q, want the sum of host durations 1.5s", st.SessionDuration)
			}
		})
	}
}

// TestStatusAnnotationsStaySmall: the session annotation does not grow with the host
// count (a DaemonSet on 1000 nodes), and a host's annotation stays bounded however many
// files it fails to read.
func TestStatusAnnotationsStaySmall(t *testing.T) {
	const limit = 256 << 10 // the API server's limit on all annotations of an object
	size := func(hosts int) int {
		var hs []api.HostStatus
		for i := range hosts {
			hs = append(hs, api.HostStatus{Hostname: fmt.Sprintf("node-%04d.eu-west-1.compute.internal", i), Phase: api.PhaseFailed,
				Duration: "3m25.123456789s", Error: "deadline exceeded"})
		}
		counts, dur := summarize(hs)
		st := api.SessionStatus{SchemaVersion: 1, Phase: api.PhaseFailed, TotalHosts: hosts, SessionDuration: dur, Hosts: counts,
			Error: fmt.Sprintf("%d of %d hosts failed", hosts, hosts), StartTime: time.Now().UTC().Format(time.RFC3339),
			CompletionTime: time.Now().UTC().Format(time.RFC3339)}
		return len(mustJSON(st))
	}
	one, thousand := size(1), size(1000)
	t.Logf("session-status annotation: %d bytes with 1 host, %d bytes with 1000 hosts", one, thousand)
	if thousand > 1024 || thousand-one > 16 {
		t.Errorf("session annotation grows with hosts: %d bytes for 1 host, %d for 1000", one, thousand)
	}

	// the worst host: every path failed with a long error, many snapshots recorded
	var paths []string
	for i := range 5000 {
		paths = append(paths, fmt.Sprintf("/data/%s/file-%d: permission denied", strings.Repeat("d", 200), i))
	}
	hs := api.HostStatus{SchemaVersion: 1, Hostname: "host-0", Phase: api.PhaseFailed, Error: api.TruncateError(strings.Join(paths, "\n"))}
	for i := range 20 {
		hs.Snapshots = append(hs.Snapshots, api.SnapshotStats{Name: "ea5381cc", Directory: fmt.Sprintf("/data/%d/%s", i, strings.Repeat("p", 200)),
			Size: "1.234 GiB", Uploaded: "12.000 MiB", ProcessingTime: "3m25s"})
	}
	hostSize := len(mustJSON(hs))
	t.Logf("worst host-status annotation: %d bytes", hostSize)
	if hostSize > 16<<10 || hostSize > limit/16 {
		t.Errorf("host annotation %d bytes: not bounded", hostSize)
	}
}
