package jobs

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// restoreJob is a restore session Job as the restore verb creates it, with the status its
// pod wrote when st is set.
func restoreJob(ns, name string, cfg api.RestoreConfig, st *api.SessionStatus, created time.Time) *batchv1.Job {
	cfg.SchemaVersion, cfg.Name = api.SchemaVersion, name
	b, _ := json.Marshal(cfg)
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, CreationTimestamp: metav1.NewTime(created),
		Labels: map[string]string{api.LabelManagedBy: api.ManagedByValue, api.LabelComponent: api.ComponentRestoreSession,
			api.LabelRestoreSession: name, api.LabelRestoreTarget: api.TargetLabel(cfg.Target)},
		Annotations: map[string]string{api.AnnotationConfig: string(b)}}}
	if st != nil {
		st.SchemaVersion = api.SchemaVersion
		b, _ := json.Marshal(st)
		j.Annotations[api.AnnotationSessionStatus] = string(b)
	}
	return j
}

// restoreHostJob is a restore host Job, with the status its pod wrote when st is set.
func restoreHostJob(ns, session, host string, st *api.HostStatus) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: api.HostJobName(session, host), Namespace: ns,
		Labels: map[string]string{api.LabelManagedBy: api.ManagedByValue, api.LabelComponent: api.ComponentRestoreHost,
			api.LabelRestoreSession: session, api.LabelHost: host}}}
	if st != nil {
		st.SchemaVersion, st.Hostname = api.SchemaVersion, host
		b, _ := json.Marshal(st)
		j.Annotations = map[string]string{api.AnnotationHostStatus: string(b)}
	}
	return j
}

// webRestore is the seed's example: statefulset/web, host-3 and host-4 from host-1, every
// other host from itself.
var webRestore = api.RestoreConfig{Target: api.Target{Kind: "statefulset", Name: "web"}, Repository: "s3-repo",
	FromConfig: "web-backup", SourceTarget: api.Target{Kind: "statefulset", Name: "web"},
	Rules: []api.RestoreRule{
		{TargetHosts: []string{"host-3", "host-4"}, SourceHost: "host-1", Paths: []string{"/source/data"}},
		{Paths: []string{"/source/data"}},
	},
	VolumeMounts: []api.VolumeMount{{Name: "source-data", MountPath: "/source/data"}}}

func TestRestoreSessionView(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	cfg := api.RestoreConfig{Target: api.Target{Kind: "pvc", Name: "uploads"}, Repository: "s3-repo",
		Rules: []api.RestoreRule{{TargetHosts: []string{"host-0"}, Snapshots: []string{"ea5381cc"}}}}
	r := restoreOf(restoreJob("shop", "uploads-restore-x7k2p", cfg, &api.SessionStatus{Phase: api.PhaseFailed, TotalHosts: 3,
		SessionDuration: "1.5s", Hosts: api.HostCounts{Succeeded: 1, Failed: 1, Skipped: 1}}, t0))
	r.Hosts = []api.HostStatus{
		{Hostname: "host-0", Phase: api.PhaseSucceeded, Duration: "1.2s", Restored: []api.RestoredStats{{Snapshot: "ea5381cc", SourceHost: "host-0", Path: "/data", Files: 3, Size: "30 B"}}},
		{Hostname: "host-1", Phase: api.PhaseFailed, Duration: "300ms", Error: "restore /data: no space left on device"},
		{Hostname: "host-2", Phase: api.PhaseSkipped}, // said nothing: the view says why
	}
	got, err := yaml.Marshal(r.View())
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata:
  name: uploads-restore-x7k2p
  namespace: shop
spec:
  repository:
    name: s3-repo
  rules:
  - snapshots:
    - ea5381cc
    sourceHost: ""
    targetHosts:
    - host-0
  target:
    ref:
      apiVersion: v1
      kind: PersistentVolumeClaim
      name: uploads
status:
  phase: Failed
  sessionDuration: 1.5s
  stats:
  - duration: 1.2s
    hostname: host-0
    phase: Succeeded
  - duration: 300ms
    error: 'restore /data: no space left on device'
    hostname: host-1
    phase: Failed
  - hostname: host-2
    message: 'no restore rule matches host-2: nothing was restored on it'
    phase: Skipped
  totalHosts: 3
`
	if string(got) != want {
		t.Errorf("view:\n%s\nwant:\n%s", got, want)
	}

	// the seed's statefulset example: volumeMounts, and targetHosts: [] for the catch-all
	got, err = yaml.Marshal(restoreOf(restoreJob("demo", "web-restore", webRestore, nil, t0)).View())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"    targetHosts: []\n", "      apiVersion: apps/v1\n      kind: StatefulSet\n      name: web\n",
		"    volumeMounts:\n    - mountPath: /source/data\n      name: source-data\n", "  phase: Pending\n  totalHosts: 0\n"} {
		if !strings.Contains(string(got), s) {
			t.Errorf("view lacks %q:\n%s", s, got)
		}
	}
}

func TestRestorePhase(t *testing.T) {
	failed := batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}}
	tests := []struct {
		name   string
		status *api.SessionStatus
		job    batchv1.JobStatus
		want   api.Phase
	}{
		{"pod has not written", nil, batchv1.JobStatus{}, api.PhasePending},
		{"running", &api.SessionStatus{Phase: api.PhaseRunning}, batchv1.JobStatus{}, api.PhaseRunning},
		{"killed while running", &api.SessionStatus{Phase: api.PhaseRunning}, failed, api.PhaseFailed},
		{"killed before writing", nil, failed, api.PhaseFailed},
		{"final status stands", &api.SessionStatus{Phase: api.PhaseSucceeded}, failed, api.PhaseSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := restoreJob("ns", "r", webRestore, tt.status, time.Now())
			j.Status = tt.job
			if got := restoreOf(j).Phase(); got != tt.want {
				t.Errorf("phase %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRefOf(t *testing.T) {
	tests := []struct {
		kind, apiVersion, want string
	}{
		{"deployment", "apps/v1", "Deployment"},
		{"statefulset", "apps/v1", "StatefulSet"},
		{"daemonset", "apps/v1", "DaemonSet"},
		{"replicaset", "apps/v1", "ReplicaSet"},
		{"replicationcontroller", "v1", "ReplicationController"},
		{"pvc", "v1", "PersistentVolumeClaim"},
		{"cronjob", "", "cronjob"}, // unknown: kept as is
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			if got := RefOf(api.Target{Kind: tt.kind, Name: "x"}); got != (TargetRef{tt.apiVersion, tt.want, "x"}) {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestRestoreSourceHostAndMessage(t *testing.T) {
	r := restoreOf(restoreJob("ns", "r", webRestore, nil, time.Now()))
	only := restoreOf(restoreJob("ns", "r", api.RestoreConfig{Rules: []api.RestoreRule{{TargetHosts: []string{"host-0"}}}}, nil, time.Now()))
	tests := []struct {
		name          string
		r             Restore
		h             api.HostStatus
		source, messg string
	}{
		{"what it restored says", r, api.HostStatus{Hostname: "host-3", Restored: []api.RestoredStats{{SourceHost: "host-9"}, {SourceHost: "host-9"}}}, "host-9", ""},
		{"named by a rule", r, api.HostStatus{Hostname: "host-4", Phase: api.PhaseRunning}, "host-1", ""},
		{"the catch-all: itself", r, api.HostStatus{Hostname: "host-0"}, "host-0", ""},
		{"no rule: skipped, and why", only, api.HostStatus{Hostname: "host-1", Phase: api.PhaseSkipped}, "", api.NoRuleMessage("host-1")},
		{"its own message stands", only, api.HostStatus{Hostname: "host-1", Phase: api.PhaseSkipped, Message: "target pod gone"}, "", "target pod gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.SourceHost(tt.h); got != tt.source {
				t.Errorf("source host %q, want %q", got, tt.source)
			}
			if got := tt.r.Message(tt.h); got != tt.messg {
				t.Errorf("message %q, want %q", got, tt.messg)
			}
		})
	}
}

// TestListRestoreSessions lists with two calls whatever the count, newest first, each
// session with its own hosts in host order, across namespaces without mixing them.
func TestListRestoreSessions(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	objs := []runtime.Object{
		restoreJob("shop", "web-restore-a", webRestore, &api.SessionStatus{Phase: api.PhaseSucceeded, TotalHosts: 2}, t0),
		restoreJob("shop", "web-restore-b", webRestore, &api.SessionStatus{Phase: api.PhaseRunning, TotalHosts: 11}, t0.Add(time.Minute)),
		restoreJob("other", "web-restore-a", webRestore, nil, t0.Add(2*time.Minute)),
		restoreHostJob("shop", "web-restore-a", "host-0", &api.HostStatus{Phase: api.PhaseSucceeded}),
		restoreHostJob("other", "web-restore-a", "host-7", nil),
		// a backup session and its host are not restore sessions
		job("web-backup-x", api.ComponentSession, "web-backup", "", "", t0),
		job("web-backup-x-host-0", api.ComponentHost, "web-backup", "web-backup-x", "host-0", t0),
	}
	for _, h := range []string{"host-10", "host-2", "host-0"} {
		objs = append(objs, restoreHostJob("shop", "web-restore-b", h, nil))
	}
	c := fake.NewClientset(objs...)
	lists := 0
	c.PrependReactor("list", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) { lists++; return false, nil, nil })

	got, err := ListRestoreSessions(context.Background(), c, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if lists != 2 {
		t.Errorf("%d List calls, want 2", lists)
	}
	var names []string
	for _, r := range got {
		var hosts []string
		for _, h := range r.Hosts {
			hosts = append(hosts, h.Hostname+"="+string(h.Phase))
		}
		names = append(names, r.Job.Namespace+"/"+r.Job.Name+"["+strings.Join(hosts, ",")+"]")
	}
	want := "other/web-restore-a[host-7=Pending] shop/web-restore-b[host-0=Pending,host-2=Pending,host-10=Pending] shop/web-restore-a[host-0=Succeeded]"
	if strings.Join(names, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(names, " "), want)
	}

	lists = 0
	got, err = ListRestoreSessions(context.Background(), c, "shop", false)
	if err != nil || len(got) != 2 || got[0].Hosts != nil || lists != 1 {
		t.Errorf("without hosts: %d sessions, %d List calls, err %v", len(got), lists, err)
	}
}

func TestGetRestoreSession(t *testing.T) {
	c := fake.NewClientset(
		restoreJob("shop", "web-restore-a", webRestore, nil, time.Now()),
		restoreHostJob("shop", "web-restore-a", "host-1", nil),
		restoreHostJob("shop", "web-restore-b", "host-0", nil),
		job("web-backup-x", api.ComponentSession, "web-backup", "", "", time.Now()),
	)
	ctx := context.Background()
	r, err := GetRestoreSession(ctx, c, "shop", "web-restore-a")
	if err != nil || len(r.Hosts) != 1 || r.Hosts[0].Hostname != "host-1" || r.Target().String() != "statefulset/web" || r.DecodeErr != nil {
		t.Errorf("got %+v, err %v", r, err)
	}
	if _, err := GetRestoreSession(ctx, c, "shop", "nope"); !apierrors.IsNotFound(err) {
		t.Errorf("a missing session: %v, want NotFound", err)
	}
	if _, err := GetRestoreSession(ctx, c, "ns", "web-backup-x"); err == nil || !strings.Contains(err.Error(), "is not a restore session") {
		t.Errorf("a backup session: %v", err)
	}
}

func TestRestoreTargetWithoutConfig(t *testing.T) {
	j := restoreJob("ns", "r", webRestore, nil, time.Now())
	delete(j.Annotations, api.AnnotationConfig)
	if got := restoreOf(j).Target().String(); got != "statefulset/web" {
		t.Errorf("target from the label: %q", got)
	}
	j.Annotations[api.AnnotationConfig] = `{"schemaVersion": 99}`
	if err := restoreOf(j).DecodeErr; err == nil || !strings.Contains(err.Error(), "upgrade kubectl-stash") {
		t.Errorf("a newer schema: %v", err)
	}
}
