package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/verifyjob"
)

func job(name, component, config, session, host string, created time.Time) *batchv1.Job {
	l := map[string]string{api.LabelComponent: component, api.LabelBackupConfiguration: config}
	if session != "" {
		l[api.LabelBackupSession] = session
	}
	if host != "" {
		l[api.LabelHost] = host
	}
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: l, CreationTimestamp: metav1.NewTime(created)}}
}

// until returns the first picture that satisfies ok, failing if none comes within a
// second: the feed must be live, and a change must reach it fast.
func until(t *testing.T, feed api.SessionFeed, what string, ok func([]api.SessionView) bool) []api.SessionView {
	t.Helper()
	deadline := time.After(time.Second)
	var last []api.SessionView
	for {
		select {
		case p, open := <-feed:
			if !open {
				t.Fatal("feed closed")
			}
			if ok(p) {
				return p
			}
			last = p
		case <-deadline:
			t.Fatalf("%s: not within 1s; last picture %+v", what, last)
		}
	}
}

func TestWatchSessions(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	c := fake.NewClientset(
		job("web-backup-old", api.ComponentSession, "web-backup", "", "", t0),
		job("web-backup-old-host-0", api.ComponentHost, "web-backup", "web-backup-old", "host-0", t0),
		job("db-backup-x", api.ComponentSession, "db-backup", "", "", t0.Add(time.Minute)),
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: "ns"}},
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed, err := WatchSessions(ctx, c, FeedOptions{Namespace: "ns", Settle: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pic := until(t, feed, "the two sessions, newest first", func(p []api.SessionView) bool {
		return len(p) == 2 && p[0].Name == "db-backup-x" && p[1].Name == "web-backup-old"
	})
	if len(pic[1].Hosts) != 1 || pic[1].Hosts[0].Hostname != "host-0" || pic[1].Hosts[0].Phase != api.PhasePending || pic[1].Phase != api.PhasePending {
		t.Errorf("web-backup-old: %+v", pic[1])
	}
	// a host's progress annotation shows up in the next picture
	st, _ := json.Marshal(api.HostStatus{SchemaVersion: 1, Hostname: "host-0", Phase: api.PhaseRunning,
		Progress: &api.Progress{BytesDone: 50, BytesTotal: 100}})
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{api.AnnotationHostStatus: string(st)}}})
	if _, err := c.BatchV1().Jobs("ns").Patch(ctx, "web-backup-old-host-0", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	until(t, feed, "the host's progress", func(p []api.SessionView) bool {
		h := p[1].Hosts[0]
		return h.Phase == api.PhaseRunning && h.Progress != nil && h.Progress.BytesDone == 50
	})
	// a new session comes first
	if _, err := c.BatchV1().Jobs("ns").Create(ctx, job("web-backup-new", api.ComponentSession, "web-backup", "", "", t0.Add(2*time.Minute)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	until(t, feed, "the new session first", func(p []api.SessionView) bool { return len(p) == 3 && p[0].Name == "web-backup-new" })
	cancel()
	for range feed { // the feed closes when ctx ends
	}
}

func TestWatchSessionsOfOneConfiguration(t *testing.T) {
	t0 := time.Now()
	c := fake.NewClientset(job("web-backup-a", api.ComponentSession, "web-backup", "", "", t0), job("db-backup-b", api.ComponentSession, "db-backup", "", "", t0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed, err := WatchSessions(ctx, c, FeedOptions{Namespace: "ns", Config: "db-backup"})
	if err != nil {
		t.Fatal(err)
	}
	pic := until(t, feed, "sessions", func(p []api.SessionView) bool { return len(p) > 0 })
	if len(pic) != 1 || pic[0].Name != "db-backup-b" {
		t.Errorf("picture %v: want db-backup's session only", pic)
	}
}

// TestWatchRestoreSessions: restore sessions come with backup sessions, joined with their
// host Jobs by the restore-session label, as Kind restore with their target as Config.
func TestWatchRestoreSessions(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	only := api.RestoreConfig{Target: api.Target{Kind: "statefulset", Name: "web"}, Repository: "s3-repo",
		Rules: []api.RestoreRule{{TargetHosts: []string{"host-0", "host-1"}}}}
	c := fake.NewClientset(
		job("web-backup-x", api.ComponentSession, "web-backup", "", "", t0),
		job("web-backup-x-host-0", api.ComponentHost, "web-backup", "web-backup-x", "host-0", t0),
		restoreJob("ns", "web-restore-a", only, &api.SessionStatus{Phase: api.PhaseRunning, TotalHosts: 3}, t0.Add(time.Minute)),
		restoreHostJob("ns", "web-restore-a", "host-1", nil),
		restoreHostJob("ns", "web-restore-a", "host-0", &api.HostStatus{Phase: api.PhaseRunning}),
		restoreHostJob("ns", "web-restore-a", "host-2", &api.HostStatus{Phase: api.PhaseSkipped}),
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed, err := WatchSessions(ctx, c, FeedOptions{Namespace: "ns", Settle: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pic := until(t, feed, "the restore session, then the backup session", func(p []api.SessionView) bool {
		return len(p) == 2 && p[0].Name == "web-restore-a" && p[1].Name == "web-backup-x"
	})
	r := pic[0]
	if r.Kind != api.KindRestore || r.Config != "statefulset/web" || r.Phase != api.PhaseRunning || r.Status.TotalHosts != 3 {
		t.Errorf("restore session: %+v", r)
	}
	var hosts []string
	for _, h := range r.Hosts {
		hosts = append(hosts, h.Hostname+"="+string(h.Phase))
	}
	if got := strings.Join(hosts, " "); got != "host-0=Running host-1=Pending host-2=Skipped" {
		t.Errorf("hosts %s", got)
	}
	if r.Hosts[2].Message != api.NoRuleMessage("host-2") {
		t.Errorf("a skipped host says %q", r.Hosts[2].Message)
	}
	if b := pic[1]; b.Kind != api.KindBackup || b.Config != "web-backup" || len(b.Hosts) != 1 {
		t.Errorf("backup session: %+v", b)
	}

	// a restore host's annotation patch shows up in the next picture
	st, _ := json.Marshal(api.HostStatus{SchemaVersion: 1, Hostname: "host-1", Phase: api.PhaseSucceeded, Duration: "2s",
		Restored: []api.RestoredStats{{Snapshot: "ea5381cc", SourceHost: "host-1", Path: "/data", Files: 3, Size: "30 B"}}})
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{api.AnnotationHostStatus: string(st)}}})
	if _, err := c.BatchV1().Jobs("ns").Patch(ctx, api.HostJobName("web-restore-a", "host-1"), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	until(t, feed, "host-1's restored stats", func(p []api.SessionView) bool {
		h := p[0].Hosts[1]
		return h.Phase == api.PhaseSucceeded && len(h.Restored) == 1 && h.Restored[0].Files == 3
	})
	cancel()
	for range feed {
	}
}

// TestWatchSessionsFilters: Kind keeps one kind; Config keeps a configuration's backup
// sessions and the restore session of that name, each with its hosts.
func TestWatchSessionsFilters(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	c := fake.NewClientset(
		job("web-backup-x", api.ComponentSession, "web-backup", "", "", t0),
		job("web-backup-x-host-0", api.ComponentHost, "web-backup", "web-backup-x", "host-0", t0),
		job("db-backup-y", api.ComponentSession, "db-backup", "", "", t0),
		restoreJob("ns", "web-restore-a", webRestore, nil, t0),
		restoreHostJob("ns", "web-restore-a", "host-0", nil),
		restoreJob("ns", "web-restore-b", webRestore, nil, t0),
		restoreHostJob("ns", "web-restore-b", "host-0", nil),
	)
	tests := []struct {
		name string
		o    FeedOptions
		want string
	}{
		{"every kind", FeedOptions{}, "restore/web-restore-b[1] restore/web-restore-a[1] backup/web-backup-x[1] backup/db-backup-y[0]"},
		{"backup", FeedOptions{Kind: api.KindBackup}, "backup/web-backup-x[1] backup/db-backup-y[0]"},
		{"restore", FeedOptions{Kind: api.KindRestore}, "restore/web-restore-b[1] restore/web-restore-a[1]"},
		{"no verify sessions yet", FeedOptions{Kind: api.KindVerify}, ""},
		{"a configuration", FeedOptions{Config: "web-backup"}, "backup/web-backup-x[1]"},
		{"a restore session by name", FeedOptions{Config: "web-restore-a"}, "restore/web-restore-a[1]"},
		{"a restore session by name, kind restore", FeedOptions{Config: "web-restore-a", Kind: api.KindRestore}, "restore/web-restore-a[1]"},
		{"a restore session is no configuration", FeedOptions{Config: "web-restore-a", Kind: api.KindBackup}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tt.o.Namespace = "ns"
			feed, err := WatchSessions(ctx, c, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			pic := until(t, feed, "a picture", func([]api.SessionView) bool { return true })
			var got []string
			for _, v := range pic {
				got = append(got, fmt.Sprintf("%s/%s[%d]", v.Kind, v.Name, len(v.Hosts)))
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("got  %s\nwant %s", strings.Join(got, " "), tt.want)
			}
		})
	}
	if _, err := WatchSessions(context.Background(), c, FeedOptions{Config: "statefulset/web"}); err == nil {
		t.Error("a Config no label can hold is no error")
	}
}

// A verification session is in the feed too: while it restores, one row with its
// progress; when done, a row per snapshot verified (its host), the damaged one Failed.
func TestWatchVerifySessions(t *testing.T) {
	cfg := api.VerifyConfig{Name: "shop-verify", Session: "shop-backup", Repository: "s3"}
	vj, err := verifyjob.SessionJob(cfg, "ns", "s3-shop-backup-1730194200", "s3://b/r", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	running := api.VerifyStatus{SchemaVersion: 1, Phase: api.PhaseRunning, Progress: &api.Progress{BytesDone: 5, BytesTotal: 10}}
	b, _ := json.Marshal(running)
	vj.Annotations[api.AnnotationVerifyStatus] = string(b)
	c := fake.NewClientset(vj)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed, err := WatchSessions(ctx, c, FeedOptions{Namespace: "ns", Kind: api.KindVerify, Settle: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pic := until(t, feed, "the running verification", func(p []api.SessionView) bool { return len(p) == 1 })
	if v := pic[0]; v.Kind != api.KindVerify || v.Config != "shop-verify" || len(v.Hosts) != 1 || v.Hosts[0].Progress == nil || v.Hosts[0].Progress.BytesDone != 5 {
		t.Fatalf("running verification: %+v", v)
	}
	done := api.VerifyStatus{SchemaVersion: 1, Phase: api.PhaseFailed, Duration: "3s", Snapshots: []api.VerifiedSnapshot{
		{Snapshot: "aaaa1111", Host: "host-0", Path: "/data", Files: 3},
		{Snapshot: "bbbb2222", Host: "host-1", Path: "/data", Files: 2, Problems: []string{"/data/x: size 1, snapshot has 2"}}}}
	b, _ = json.Marshal(done)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{api.AnnotationVerifyStatus: string(b)}}})
	if _, err := c.BatchV1().Jobs("ns").Patch(ctx, vj.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	pic = until(t, feed, "the finished verification", func(p []api.SessionView) bool { return len(p) == 1 && p[0].Phase == api.PhaseFailed })
	v := pic[0]
	if len(v.Hosts) != 2 || v.Hosts[0].Phase != api.PhaseSucceeded || v.Hosts[1].Phase != api.PhaseFailed ||
		!strings.Contains(v.Hosts[1].Error, "size 1, snapshot has 2") || v.Status.Hosts.Failed != 1 || v.Status.SessionDuration != "3s" {
		t.Errorf("finished verification: %+v", v)
	}
}
