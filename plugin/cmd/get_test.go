package cmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// sessionsNow is the clock of get and describe in tests.
var sessionsNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// runSessions runs `kubectl stash ARGS` with get and describe on a fake clientset.
func runSessions(t *testing.T, cs kubernetes.Interface, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-kubeconfig"))
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	g := &GlobalOptions{ConfigFlags: genericclioptions.NewConfigFlags(true)}
	root := &cobra.Command{Use: "kubectl-stash", SilenceUsage: true, SilenceErrors: true}
	root.SetOut(out)
	root.SetErr(errOut)
	g.ConfigFlags.AddFlags(root.PersistentFlags())
	clients := func() (kubernetes.Interface, error) { return cs, nil }
	get := NewGetOptions(g, streams)
	get.newClient, get.now = clients, func() time.Time { return sessionsNow }
	desc := NewDescribeOptions(g, streams)
	desc.newClient, desc.now = clients, func() time.Time { return sessionsNow }
	root.AddCommand(newCmdGet(get), newCmdDescribe(desc))
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// requireGoldenFile compares got with testdata/<TestName>.golden (go test -update rewrites it).
func requireGoldenFile(t *testing.T, got string) {
	t.Helper()
	golden := filepath.Join("testdata", strings.ReplaceAll(t.Name(), "/", "_")+".golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(want, []byte(got)) {
		t.Errorf("output differs from %s (go test -update to accept):\n%s", golden, got)
	}
}

func annotate(j *batchv1.Job, key string, v any) {
	b, _ := json.Marshal(v)
	if j.Annotations == nil {
		j.Annotations = map[string]string{}
	}
	j.Annotations[key] = string(b)
}

// restoreSessionJob is a restore session Job as the restore verb creates it, with the
// status its pod wrote when st is set.
func restoreSessionJob(ns, name string, cfg api.RestoreConfig, st *api.SessionStatus, created time.Time) *batchv1.Job {
	cfg.SchemaVersion, cfg.Name = api.SchemaVersion, name
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, CreationTimestamp: metav1.NewTime(created),
		Labels: map[string]string{api.LabelManagedBy: api.ManagedByValue, api.LabelComponent: api.ComponentRestoreSession,
			api.LabelRestoreSession: name, api.LabelRestoreTarget: api.TargetLabel(cfg.Target)}}}
	annotate(j, api.AnnotationConfig, cfg)
	if st != nil {
		st.SchemaVersion = api.SchemaVersion
		annotate(j, api.AnnotationSessionStatus, st)
	}
	return j
}

// restoreHost is a restore host Job with the status its pod wrote.
func restoreHost(ns, session string, st api.HostStatus) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: api.HostJobName(session, st.Hostname), Namespace: ns,
		Labels: map[string]string{api.LabelManagedBy: api.ManagedByValue, api.LabelComponent: api.ComponentRestoreHost,
			api.LabelRestoreSession: session, api.LabelHost: st.Hostname}}}
	st.SchemaVersion = api.SchemaVersion
	annotate(j, api.AnnotationHostStatus, st)
	return j
}

// backupSessionJob is a backup session Job of config with the status its pod wrote, and
// its host Jobs.
func backupSessionJob(ns, name, config string, st api.SessionStatus, created time.Time, hosts ...api.HostStatus) []runtime.Object {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, CreationTimestamp: metav1.NewTime(created),
		Labels: map[string]string{api.LabelComponent: api.ComponentSession, api.LabelBackupConfiguration: config}}}
	st.SchemaVersion = api.SchemaVersion
	annotate(j, api.AnnotationSessionStatus, st)
	objs := []runtime.Object{j}
	for _, h := range hosts {
		hj := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: api.HostJobName(name, h.Hostname), Namespace: ns,
			Labels: map[string]string{api.LabelComponent: api.ComponentHost, api.LabelBackupConfiguration: config,
				api.LabelBackupSession: name, api.LabelHost: h.Hostname}}}
		h.SchemaVersion = api.SchemaVersion
		annotate(hj, api.AnnotationHostStatus, h)
		objs = append(objs, hj)
	}
	return objs
}

// sessionsCluster holds restore sessions in two namespaces and backup sessions with the
// same config name in both.
func sessionsCluster() *fake.Clientset {
	web := api.RestoreConfig{Target: api.Target{Kind: "statefulset", Name: "web"}, Repository: "s3-repo",
		FromConfig: "web-backup", SourceTarget: api.Target{Kind: "statefulset", Name: "web"},
		Rules: []api.RestoreRule{
			{TargetHosts: []string{"host-0", "host-1", "host-4"}, Paths: []string{"/source/data", "/source/config"}},
			{TargetHosts: []string{"host-2"}, SourceHost: "host-0", Snapshots: []string{"ea5381cc"}},
		},
		VolumeMounts: []api.VolumeMount{{Name: "source-data", MountPath: "/source/data"}, {Name: "config", MountPath: "/source/config"}},
		Overwrite:    "if-newer", Delete: true, Excludes: []string{"*.tmp", "cache/"}, ScaleDown: true}
	uploads := api.RestoreConfig{Target: api.Target{Kind: "pvc", Name: "uploads"}, Repository: "gcs-repo",
		SourceTarget: api.Target{Kind: "pvc", Name: "uploads-old"}, Rules: []api.RestoreRule{{}}, Paths: []string{"/data"}, MountPath: "/data"}
	ledger := api.RestoreConfig{Target: api.Target{Kind: "deployment", Name: "ledger"}, Repository: "s3-repo",
		FromConfig: "ledger-backup", SourceTarget: api.Target{Kind: "deployment", Name: "ledger"}, Rules: []api.RestoreRule{{}}}
	objs := []runtime.Object{
		restoreSessionJob("shop", "web-restore-x7k2p", web, &api.SessionStatus{Phase: api.PhaseRunning, TotalHosts: 5,
			Hosts:     api.HostCounts{Succeeded: 2, Failed: 1, Skipped: 1, Running: 1},
			StartTime: "2026-11-21T11:55:00Z"}, sessionsNow.Add(-5*time.Minute)),
		restoreHost("shop", "web-restore-x7k2p", api.HostStatus{Hostname: "host-0", Phase: api.PhaseSucceeded, Duration: "3.861369766s",
			Restored: []api.RestoredStats{
				{Snapshot: "4f1c9a2e", SourceHost: "host-0", Path: "/source/data", Files: 1200, Size: "1.000 GiB", Skipped: 1100, Kept: 3},
				{Snapshot: "9b0d77aa", SourceHost: "host-0", Path: "/source/config", Files: 4, Size: "2.000 KiB", Deleted: 1},
			}}),
		restoreHost("shop", "web-restore-x7k2p", api.HostStatus{Hostname: "host-1", Phase: api.PhaseFailed, Duration: "1.2s",
			Error: "restore /source/data: open /source/data/orders.db: permission denied\n  /source/data/ledger.db: permission denied"}),
		restoreHost("shop", "web-restore-x7k2p", api.HostStatus{Hostname: "host-2", Phase: api.PhaseSucceeded, Duration: "2.5s",
			Restored: []api.RestoredStats{{Snapshot: "ea5381cc", SourceHost: "host-0", Path: "/source/data", Files: 1190, Size: "998.500 MiB"}}}),
		restoreHost("shop", "web-restore-x7k2p", api.HostStatus{Hostname: "host-3", Phase: api.PhaseSkipped, Message: api.NoRuleMessage("host-3")}),
		restoreHost("shop", "web-restore-x7k2p", api.HostStatus{Hostname: "host-4", Phase: api.PhaseRunning,
			Progress: &api.Progress{Directory: "/source/data", FilesDone: 420, FilesTotal: 800, BytesDone: 700 << 20, BytesTotal: 1400 << 20}}),

		restoreSessionJob("shop", "uploads-restore-2do7af", uploads, &api.SessionStatus{Phase: api.PhaseSucceeded, TotalHosts: 1,
			SessionDuration: "42.317s", Hosts: api.HostCounts{Succeeded: 1}}, sessionsNow.Add(-26*time.Hour)),
		restoreHost("shop", "uploads-restore-2do7af", api.HostStatus{Hostname: "host-0", Phase: api.PhaseSucceeded, Duration: "42.317s",
			Restored: []api.RestoredStats{{Snapshot: "77c0ffee", SourceHost: "host-0", Path: "/data", Files: 31, Size: "5.250 MiB"}}}),

		restoreSessionJob("billing", "ledger-restore-abc123", ledger, nil, sessionsNow.Add(-10*time.Second)),
	}
	objs = append(objs, backupSessionJob("shop", "web-backup-29384", "web-backup", api.SessionStatus{Phase: api.PhaseSucceeded,
		TotalHosts: 1, SessionDuration: "3.861369766s", Hosts: api.HostCounts{Succeeded: 1}}, sessionsNow.Add(-time.Hour),
		api.HostStatus{Hostname: "host-0", Phase: api.PhaseSucceeded, Duration: "3.861369766s"})...)
	objs = append(objs, backupSessionJob("billing", "web-backup-29384", "web-backup", api.SessionStatus{Phase: api.PhaseRunning,
		TotalHosts: 2, Hosts: api.HostCounts{Running: 2}}, sessionsNow.Add(-time.Minute),
		api.HostStatus{Hostname: "host-0", Phase: api.PhaseRunning}, api.HostStatus{Hostname: "host-1", Phase: api.PhaseRunning})...)
	return fake.NewClientset(objs...)
}

// TestGetRestoreSessions pins each output of `get restoresessions` (golden files; -update).
func TestGetRestoreSessions(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"table", []string{"get", "restoresessions", "-n", "shop"}},
		{"wide", []string{"get", "restore", "-n", "shop", "-o", "wide"}},
		{"all namespaces", []string{"get", "restoresession", "-A"}},
		{"one as yaml", []string{"get", "restoresessions", "web-restore-x7k2p", "-n", "shop", "-o", "yaml"}},
		{"list as json", []string{"get", "restoresessions", "-n", "shop", "-o", "json"}},
		{"backup sessions of all namespaces", []string{"get", "bs", "-A"}},
	}
	cs := sessionsCluster()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runSessions(t, cs, tt.args...)
			if err != nil || errOut != "" {
				t.Fatalf("err %v, stderr %q", err, errOut)
			}
			requireGoldenFile(t, out)
		})
	}
}

// TestGetRestoreSessionYAMLShape reads -o yaml back: the seed's RestoreSession fields, and
// message only where a host says why it ended as it did.
func TestGetRestoreSessionYAMLShape(t *testing.T) {
	out, _, err := runSessions(t, sessionsCluster(), "get", "restore", "web-restore-x7k2p", "-n", "shop", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		APIVersion, Kind string
		Spec             struct {
			Repository struct{ Name string }
			Target     struct {
				Ref          struct{ APIVersion, Kind, Name string }
				VolumeMounts []map[string]string
			}
			Rules []map[string]any
		}
		Status struct {
			Phase      api.Phase
			TotalHosts int
			Stats      []map[string]string
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	ref := v.Spec.Target.Ref
	if v.APIVersion != "stash.appscode.com/v1beta1" || v.Kind != "RestoreSession" || v.Spec.Repository.Name != "s3-repo" ||
		ref.APIVersion != "apps/v1" || ref.Kind != "StatefulSet" || ref.Name != "web" || len(v.Spec.Target.VolumeMounts) != 2 ||
		len(v.Spec.Rules) != 2 || v.Status.Phase != api.PhaseRunning || v.Status.TotalHosts != 5 || len(v.Status.Stats) != 5 {
		t.Errorf("shape: %+v", v)
	}
	for _, st := range v.Status.Stats {
		if (st["message"] != "") != (st["phase"] == "Skipped") {
			t.Errorf("stats entry %v: a message belongs to the skipped host", st)
		}
	}
}

func TestGetErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown resource", []string{"get", "restores"}, "want backupconfigurations (bc), backupsessions (bs), restoresessions (restore) or backupverificationsessions (bvs)"},
		{"name across namespaces", []string{"get", "restore", "x", "-A"}, "cannot be retrieved by name across all namespaces"},
		{"config of a restore", []string{"get", "restore", "--config", "web-backup"}, "a restore session belongs to no configuration"},
		{"missing", []string{"get", "restore", "nope", "-n", "shop"}, `restoresession "nope" not found in namespace shop`},
		{"a backup session is no restore session", []string{"get", "restore", "web-backup-29384", "-n", "shop"}, "is not a restore session"},
		{"bad output", []string{"get", "restore", "-o", "name"}, `--output "name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runSessions(t, sessionsCluster(), tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want it to contain %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("printed %q", out)
			}
		})
	}
	_, errOut, err := runSessions(t, fake.NewClientset(), "get", "restore", "-n", "shop")
	if err != nil || errOut != "No restore sessions found in shop namespace.\n" {
		t.Errorf("none: err %v, stderr %q", err, errOut)
	}
}

// TestDescribe pins `describe restoresession` and `describe backupsession` (golden files;
// -update).
func TestDescribe(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"restore session", []string{"describe", "restoresession", "web-restore-x7k2p", "-n", "shop"}, []string{
			"Source:            backup configuration web-backup",
			"Total Hosts:       5 (2 succeeded, 1 skipped, 1 failed, 1 running, 0 pending)",
			"  1      host-0,host-1,host-4   <the host itself>   /source/data,/source/config   <latest of each path>",
			"  2      host-2                 host-0              <whole snapshots>             ea5381cc",
			"host-0        4f1c9a2e   /source/data",
			"1200    1.000 GiB     1100/3/0",
			"  Normal    HostSkipped   host-3   no restore rule matches host-3: nothing was restored on it",
			"HostFailed    host-1   restore /source/data: open /source/data/orders.db: permission denied /source/data/ledger.db: permission denied",
		}},
		{"restore session by alias", []string{"describe", "restore", "uploads-restore-2do7af", "-n", "shop"}, []string{
			"Source:            pvc/uploads-old", "  1      <every host>   <the host itself>   /data   <latest of each path>",
		}},
		{"restore session not written yet", []string{"describe", "restore", "ledger-restore-abc123", "-n", "billing"}, []string{
			"Phase:             Pending", "Hosts:\n  <none>\nEvents:\n  <none>\n",
		}},
		{"backup session", []string{"describe", "bs", "web-backup-29384", "-n", "shop"}, []string{"Configuration:     web-backup"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runSessions(t, sessionsCluster(), tt.args...)
			if err != nil || errOut != "" {
				t.Fatalf("err %v, stderr %q", err, errOut)
			}
			requireGoldenFile(t, out)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("lacks %q", w)
				}
			}
		})
	}
	for _, args := range [][]string{{"describe", "bc", "web-backup"}, {"describe", "restores", "x"}} {
		if _, _, err := runSessions(t, sessionsCluster(), args...); err == nil || !strings.Contains(err.Error(), "cannot describe") {
			t.Errorf("%v: %v", args, err)
		}
	}
	if _, _, err := runSessions(t, sessionsCluster(), "describe", "restore", "nope", "-n", "shop"); err == nil ||
		!strings.Contains(err.Error(), `restoresession "nope" not found in namespace shop: see kubectl stash get restoresessions`) {
		t.Errorf("missing: %v", err)
	}
}
