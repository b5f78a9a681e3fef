package jobimage

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "gocloud.dev/blob/fileblob"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
)

// recorder keeps every status a host writes, in order.
type recorder struct {
	mu     sync.Mutex
	writes []api.HostStatus
}

func (r *recorder) AnnotateJSON(_ context.Context, key string, v any) error {
	if key != api.AnnotationHostStatus {
		panic(key)
	}
	b, _ := json.Marshal(v)
	var st api.HostStatus
	_ = json.Unmarshal(b, &st)
	r.mu.Lock()
	r.writes = append(r.writes, st)
	r.mu.Unlock()
	return nil
}

func (r *recorder) last() api.HostStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes[len(r.writes)-1]
}

func newFileRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("host test password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "file://" + dir
	if err := repocmd.InitRepository(context.Background(), repocmd.RepoFlags{URL: url, PasswordFile: pw}, repocmd.InitFlags{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	return url
}

func TestRunHost(t *testing.T) {
	url := newFileRepo(t)
	a, b := t.TempDir(), t.TempDir()
	for dir, files := range map[string][]string{a: {"one", "two"}, b: {"three"}} {
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(strings.Repeat(f, 100)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	spec := api.HostSpec{Hostname: "host-0", Config: "web-backup", Session: "web-backup-x", Paths: []string{a, b},
		Retention: api.Retention{KeepLast: 1}}
	run := func() api.HostStatus {
		rec := &recorder{}
		if err := RunHost(context.Background(), HostRun{Spec: spec, RepoURL: url, Password: []byte("host test password"), Status: rec}); err != nil {
			t.Fatal(err)
		}
		if first := rec.writes[0]; first.Phase != api.PhaseRunning || first.StartTime == "" {
			t.Errorf("first status %+v, want Running with a start time", first)
		}
		return rec.last()
	}
	st := run()
	if st.Phase != api.PhaseSucceeded || len(st.Snapshots) != 2 {
		t.Fatalf("status %+v, want Succeeded with one snapshot per path", st)
	}
	if st.Snapshots[0].Directory != a || st.Snapshots[0].FileStats.TotalFiles != 2 || st.Snapshots[0].FileStats.NewFiles != 2 ||
		st.Snapshots[1].Directory != b || st.Snapshots[1].FileStats.TotalFiles != 1 {
		t.Errorf("snapshots %+v", st.Snapshots)
	}
	if st.Snapshots[0].Size != "600 B" || st.Snapshots[0].ProcessingTime != "0m0s" {
		t.Errorf("size %q processingTime %q, want the seed's forms", st.Snapshots[0].Size, st.Snapshots[0].ProcessingTime)
	}
	// the second run has the first as parent, and retention keeps the newest snapshot only
	st = run()
	if fs := st.Snapshots[0].FileStats; fs.UnmodifiedFiles != 2 || fs.NewFiles != 0 {
		t.Errorf("second run fileStats %+v, want 2 unmodified", fs)
	}
	if !strings.Contains(st.Retention, "kept 1, removed 1") {
		t.Errorf("retention %q, want one snapshot removed per path", st.Retention)
	}
}

func TestRunHostFailures(t *testing.T) {
	url := newFileRepo(t)
	dir := t.TempDir()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		paths    []string
		password string
		want     string
	}{
		{"path not mounted", context.Background(), []string{"/nonexistent/data"}, "host test password", "/nonexistent/data"},
		{"wrong password", context.Background(), []string{dir}, "wrong", "password"},
		{"SIGTERM", canceled, []string{dir}, "host test password", "canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			err := RunHost(tt.ctx, HostRun{Spec: api.HostSpec{Hostname: "host-0", Paths: tt.paths}, RepoURL: url,
				Password: []byte(tt.password), Status: rec})
			if err == nil {
				t.Fatal("RunHost succeeded")
			}
			st := rec.last()
			if st.Phase != api.PhaseFailed || !strings.Contains(st.Error, tt.want) || st.Duration == "" {
				t.Errorf("final status %+v, want Failed with %q and a duration", st, tt.want)
			}
		})
	}
}

// TestRunHostKeepsToItsConfiguration: two configurations backing up the same host name
// and directory into one repository neither take each other's snapshots as parent nor
// remove each other's snapshots by retention.
func TestRunHostKeepsToItsConfiguration(t *testing.T) {
	url := newFileRepo(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(config string) api.HostStatus {
		rec := &recorder{}
		spec := api.HostSpec{Hostname: "host-0", Config: config, Paths: []string{dir}, Retention: api.Retention{KeepLast: 1}}
		if err := RunHost(context.Background(), HostRun{Spec: spec, RepoURL: url, Password: []byte("host test password"), Status: rec}); err != nil {
			t.Fatal(err)
		}
		return rec.last()
	}
	run("a-backup")
	b := run("b-backup")
	if fs := b.Snapshots[0].FileStats; fs.NewFiles != 1 || fs.UnmodifiedFiles != 0 {
		t.Errorf("b's first backup took a's snapshot as parent: %+v", fs)
	}
	if !strings.Contains(b.Retention, "kept 1, removed 0") {
		t.Errorf("b's retention touched a's snapshot: %q", b.Retention)
	}
	a := run("a-backup")
	if fs := a.Snapshots[0].FileStats; fs.UnmodifiedFiles != 1 {
		t.Errorf("a's second backup did not use a's first as parent: %+v", fs)
	}
	if !strings.Contains(a.Retention, "kept 1, removed 1") {
		t.Errorf("a's retention: %q, want its own older snapshot removed only", a.Retention)
	}
}
