package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

func view(phase api.Phase, hosts ...api.HostStatus) api.SessionView {
	return api.SessionView{Kind: api.KindBackup, Namespace: "shop", Name: "web-backup-x", Config: "web-backup", Phase: phase,
		Status: api.SessionStatus{Phase: phase, TotalHosts: len(hosts)}, Hosts: hosts}
}

func TestPrintChanges(t *testing.T) {
	running := api.HostStatus{Hostname: "host-0", Phase: api.PhaseRunning, Progress: &api.Progress{Directory: "/data", BytesDone: 50, BytesTotal: 100, FilesDone: 1, FilesTotal: 2}}
	done := api.HostStatus{Hostname: "host-0", Phase: api.PhaseSucceeded, Snapshots: []api.SnapshotStats{{Name: "ea5381cc", Directory: "/data", Size: "30 B", Uploaded: "0 B"}}}
	pictures := [][]api.SessionView{
		{view(api.PhaseRunning, running)},
		{view(api.PhaseRunning, running)}, // no change: no line
		{view(api.PhaseSucceeded, done)},
		{view(api.PhaseSucceeded, done)}, // never read: the session ended
	}
	for _, tt := range []struct {
		name   string
		asJSON bool
		lines  int
	}{{"lines", false, 4}, {"json", true, 2}} {
		t.Run(tt.name, func(t *testing.T) {
			feed := make(chan []api.SessionView, len(pictures))
			for _, p := range pictures {
				feed <- p
			}
			var out bytes.Buffer
			phase, err := printChanges(context.Background(), feed, &out, tt.asJSON, "web-backup-x")
			if err != nil || phase != api.PhaseSucceeded {
				t.Fatalf("phase %s, err %v", phase, err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != tt.lines {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), tt.lines, out.String())
			}
			if tt.asJSON {
				var v api.SessionView
				if err := json.Unmarshal([]byte(lines[1]), &v); err != nil || v.Phase != api.PhaseSucceeded {
					t.Errorf("last JSON line %q: %v", lines[1], err)
				}
				return
			}
			for i, want := range []string{`shop/web-backup-x host host-0: Running /data 50% \(1/2 files`, `shop/web-backup-x Running \(0/1 hosts done\)`,
				`host host-0: Succeeded; snapshot ea5381cc of /data`, `shop/web-backup-x Succeeded \(1/1 hosts done\)`} {
				if !regexp.MustCompile(want).MatchString(lines[i]) {
					t.Errorf("line %d %q, want %q", i, lines[i], want)
				}
			}
		})
	}
	if err := phaseError("web-backup-x", api.PhaseFailed); err == nil {
		t.Error("a failed session is no error")
	}
	if err := phaseError("web-backup-x", api.PhaseRunning); err != nil {
		t.Errorf("a session left while running: %v", err)
	}
}

// TestWatchResolve: watch NAME opens a backup or a restore session, follows a
// configuration, and says so when --kind would hide what NAME names.
func TestWatchResolve(t *testing.T) {
	cs := sessionsCluster()
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "web-backup", Namespace: "shop",
		Labels: map[string]string{api.LabelBackupConfiguration: "web-backup"}}}
	if _, err := cs.BatchV1().CronJobs("shop").Create(context.Background(), cj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, target, kind     string
		open, follow, openKind string
		err                    string
	}{
		{"a restore session", "web-restore-x7k2p", "", "web-restore-x7k2p", "", "restore", ""},
		{"a restore session, kind restore", "web-restore-x7k2p", "restore", "web-restore-x7k2p", "", "restore", ""},
		{"a backup session", "web-backup-29384", "", "web-backup-29384", "", "backup", ""},
		{"a configuration", "web-backup", "backup", "", "web-backup", "", ""},
		{"a restore session hidden by --kind", "web-restore-x7k2p", "backup", "", "", "", "web-restore-x7k2p is a restore session, which --kind backup hides"},
		{"a configuration hidden by --kind", "web-backup", "restore", "", "", "", "web-backup is a backup configuration, whose sessions --kind restore hides"},
		{"nothing of that name", "nope", "", "", "", "", `no backup configuration, backup session or restore session named "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &WatchOptions{Target: tt.target, Kind: tt.kind, namespace: "shop", client: cs}
			err := o.resolve(context.Background())
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || o.open != tt.open || o.follow != tt.follow || string(o.openKind) != tt.openKind {
				t.Errorf("open %q (%s), follow %q, err %v", o.open, o.openKind, o.follow, err)
			}
		})
	}
}

// TestPrintChangesOfARestore: a restore host's lines say what it restored from where, and
// why a Skipped host restored nothing; the session's failure names it a restoresession.
func TestPrintChangesOfARestore(t *testing.T) {
	v := api.SessionView{Kind: api.KindRestore, Namespace: "shop", Name: "web-restore-x7k2p", Config: "statefulset/web", Phase: api.PhaseFailed,
		Status: api.SessionStatus{Phase: api.PhaseFailed, TotalHosts: 3, Error: "1 of 3 hosts failed"},
		Hosts: []api.HostStatus{
			{Hostname: "host-0", Phase: api.PhaseSucceeded, Restored: []api.RestoredStats{{Snapshot: "ea5381cc", SourceHost: "host-1", Path: "/data", Files: 3, Size: "30 B"}}},
			{Hostname: "host-1", Phase: api.PhaseFailed, Error: "restore /data: no space left on device"},
			{Hostname: "host-2", Phase: api.PhaseSkipped, Message: api.NoRuleMessage("host-2")},
		}}
	feed := make(chan []api.SessionView, 1)
	feed <- []api.SessionView{v}
	var out bytes.Buffer
	phase, err := printChanges(context.Background(), feed, &out, false, v.Name)
	if err != nil || phase != api.PhaseFailed {
		t.Fatalf("phase %s, err %v", phase, err)
	}
	for _, want := range []string{
		"shop/web-restore-x7k2p host host-0: Succeeded; restored /data of snapshot ea5381cc (host-1): 3 files, 30 B\n",
		"shop/web-restore-x7k2p host host-1: Failed: restore /data: no space left on device\n",
		"shop/web-restore-x7k2p host host-2: Skipped: no restore rule matches host-2: nothing was restored on it\n",
		"shop/web-restore-x7k2p Failed (3/3 hosts done): 1 of 3 hosts failed\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("lacks %q:\n%s", want, out.String())
		}
	}
	if err := sessionPhaseError(api.KindRestore, v.Name, phase); err == nil || err.Error() != "restoresession web-restore-x7k2p Failed" {
		t.Errorf("error %v", err)
	}
	if err := phaseError("web-backup-x", api.PhaseFailed); err == nil || err.Error() != "backupsession web-backup-x Failed" {
		t.Errorf("a backup session's error %v", err)
	}
}
