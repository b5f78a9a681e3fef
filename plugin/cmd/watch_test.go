package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

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
