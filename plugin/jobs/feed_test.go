package jobs

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
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
