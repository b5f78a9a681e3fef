package tui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// now is the fixed clock of the tests.
var now = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

// Test terminal size of the golden files.
const (
	testWidth  = 100
	testHeight = 30
)

func snapshot(name, dir, size, uploaded string, newF, mod, unmod int64) api.SnapshotStats {
	return api.SnapshotStats{Name: name, Directory: dir, Size: size, Uploaded: uploaded, ProcessingTime: "0m12s",
		FileStats: api.FileStats{TotalFiles: newF + mod + unmod, NewFiles: newF, ModifiedFiles: mod, UnmodifiedFiles: unmod}}
}

// runningSession has three hosts at different points: one done, one halfway, one still
// scanning.
func runningSession() api.SessionView {
	return api.SessionView{
		Kind: api.KindBackup, Namespace: "shop", Name: "nightly-29384", Config: "nightly",
		Created: now.Add(-2*time.Minute - 10*time.Second),
		Phase:   api.PhaseRunning,
		Status:  api.SessionStatus{Phase: api.PhaseRunning, TotalHosts: 3, Hosts: api.HostCounts{Running: 2, Succeeded: 1}},
		Hosts: []api.HostStatus{
			{Hostname: "host-0", Phase: api.PhaseSucceeded, Duration: "1m2s",
				Progress:  &api.Progress{FilesDone: 1200, FilesTotal: 1200, BytesDone: 1 << 30, BytesTotal: 1 << 30},
				Snapshots: []api.SnapshotStats{snapshot("4f1c9a2e", "/data", "1.000 GiB", "12.500 MiB", 10, 2, 1188)}},
			{Hostname: "host-1", Phase: api.PhaseRunning,
				Progress: &api.Progress{Directory: "/data/orders/2025/03", FilesDone: 420, FilesTotal: 800,
					BytesDone: 700 << 20, BytesTotal: 1400 << 20, BytesPerS: 35 << 20}},
			{Hostname: "host-2", Phase: api.PhaseRunning,
				Progress: &api.Progress{Directory: "/data/media", FilesDone: 12, FilesTotal: 90,
					BytesDone: 3 << 20, BytesTotal: 200 << 20, BytesPerS: 1 << 20, Scanning: true}},
		},
	}
}

// failedSession has a host that failed with a long error.
func failedSession() api.SessionView {
	return api.SessionView{
		Kind: api.KindBackup, Namespace: "shop", Name: "nightly-29380", Config: "nightly",
		Created: now.Add(-26 * time.Hour),
		Phase:   api.PhaseFailed,
		Status: api.SessionStatus{Phase: api.PhaseFailed, TotalHosts: 2, SessionDuration: "3m40s",
			Error: "1 of 2 hosts failed", Hosts: api.HostCounts{Succeeded: 1, Failed: 1}},
		Hosts: []api.HostStatus{
			{Hostname: "host-0", Phase: api.PhaseSucceeded, Duration: "2m1s",
				Snapshots: []api.SnapshotStats{
					snapshot("9b3e7d10", "/data", "820.000 MiB", "4.250 MiB", 3, 5, 2210),
					snapshot("c0ffee42", "/etc/shop", "12 KiB", "0 B", 0, 0, 14),
				}},
			{Hostname: "host-1", Phase: api.PhaseFailed, Duration: "1m39s",
				Progress: &api.Progress{Directory: "/data/orders", FilesDone: 300, FilesTotal: 900, BytesDone: 90 << 20, BytesTotal: 400 << 20},
				Error: "backup /data: open /data/orders/2025/02/archive.tar: permission denied; " +
					"read /data/orders/2025/02/index.db: input/output error; upload pack 5d2e: " +
					"PutObject s3://backups/shop/data/5d2e: RequestTimeout: your socket connection to the server was not read from or written to within the timeout period"},
		},
	}
}

// finishedSession succeeded on two hosts.
func finishedSession() api.SessionView {
	return api.SessionView{
		Kind: api.KindBackup, Namespace: "shop", Name: "nightly-29383", Config: "nightly",
		Created: now.Add(-2 * time.Hour),
		Phase:   api.PhaseSucceeded,
		Status:  api.SessionStatus{Phase: api.PhaseSucceeded, TotalHosts: 2, SessionDuration: "4m5s", Hosts: api.HostCounts{Succeeded: 2}},
		Hosts: []api.HostStatus{
			{Hostname: "host-0", Phase: api.PhaseSucceeded, Duration: "2m3s", Retention: "removed 2 snapshots",
				Snapshots: []api.SnapshotStats{snapshot("a1b2c3d4", "/data", "1.000 GiB", "10.000 MiB", 12, 3, 1185)}},
			{Hostname: "host-1", Phase: api.PhaseSucceeded, Duration: "2m2s",
				Snapshots: []api.SnapshotStats{snapshot("e5f6a7b8", "/data", "998.500 MiB", "9.750 MiB", 8, 1, 1190)}},
		},
	}
}

// pendingSession is a triggered session whose pod has not written yet.
func pendingSession() api.SessionView {
	return api.SessionView{
		Kind: api.KindBackup, Namespace: "shop", Name: "adhoc-x7k2p", Config: "adhoc",
		Created: now.Add(-5 * time.Second), Phase: api.PhasePending,
	}
}

func verifySession() api.SessionView {
	return api.SessionView{
		Kind: api.KindVerify, Namespace: "shop", Name: "weekly-verify-29001", Config: "weekly-verify",
		Created: now.Add(-3 * 24 * time.Hour),
		Phase:   api.PhaseSucceeded,
		Status:  api.SessionStatus{Phase: api.PhaseSucceeded, TotalHosts: 1, SessionDuration: "0m40s"},
		Hosts:   []api.HostStatus{{Hostname: "host-0", Phase: api.PhaseSucceeded, Duration: "0m40s"}},
	}
}

func skippedSession() api.SessionView {
	return api.SessionView{
		Kind: api.KindRestore, Namespace: "shop", Name: "restore-orders-1", Config: "statefulset/orders",
		Created: now.Add(-40 * time.Minute),
		Phase:   api.PhaseSkipped,
		Status:  api.SessionStatus{Phase: api.PhaseSkipped, Error: "a session of orders is running"},
	}
}

// restoreSession restores statefulset/web: a host that restored two paths from another
// host, one no rule matches, one that failed and one still running.
func restoreSession() api.SessionView {
	return api.SessionView{
		Kind: api.KindRestore, Namespace: "shop", Name: "web-restore-x7k2p", Config: "statefulset/web",
		Created: now.Add(-3 * time.Minute),
		Phase:   api.PhaseRunning,
		Status: api.SessionStatus{Phase: api.PhaseRunning, TotalHosts: 4,
			Hosts: api.HostCounts{Succeeded: 1, Skipped: 1, Failed: 1, Running: 1}},
		Hosts: []api.HostStatus{
			{Hostname: "host-0", Phase: api.PhaseSucceeded, Duration: "1m2s", Restored: []api.RestoredStats{
				{Snapshot: "4f1c9a2e", SourceHost: "host-1", Path: "/source/data", Files: 1200, Size: "1.000 GiB", Skipped: 1100, Kept: 3},
				{Snapshot: "9b0d77aa", SourceHost: "host-1", Path: "/source/config", Files: 4, Size: "2.000 KiB", Deleted: 1},
			}},
			{Hostname: "host-1", Phase: api.PhaseFailed, Duration: "3s", Error: "restore /source/data: open /source/data/orders.db: permission denied"},
			{Hostname: "host-2", Phase: api.PhaseRunning,
				Progress: &api.Progress{Directory: "/source/data", FilesDone: 420, FilesTotal: 800, BytesDone: 700 << 20, BytesTotal: 1400 << 20, BytesPerS: 35 << 20}},
			{Hostname: "host-3", Phase: api.PhaseSkipped, Message: api.NoRuleMessage("host-3")},
		},
	}
}

// picture is a feed picture with mixed phases, newest first.
func picture() []api.SessionView {
	return []api.SessionView{pendingSession(), runningSession(), skippedSession(), finishedSession(), failedSession(), verifySession()}
}

// drive feeds messages to m as the program would, ignoring the commands.
func drive(m Model, msgs ...tea.Msg) Model {
	for _, msg := range msgs {
		nm, _ := m.Update(msg)
		m = nm.(Model)
	}
	return m
}

// kp builds a key press: a name (enter, esc, up, down, backspace, ctrl+c) or one character.
func kp(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	}
	r := []rune(s)
	if len(r) != 1 {
		panic("key: " + s)
	}
	return tea.KeyPressMsg{Code: r[0], Text: s}
}

// typed presses every character of s.
func typed(s string) []tea.Msg {
	var msgs []tea.Msg
	for _, r := range s {
		msgs = append(msgs, kp(string(r)))
	}
	return msgs
}

// checkFrame fails when the view has colour or escape sequences, or exceeds the terminal.
func checkFrame(t *testing.T, view string, width, height int) {
	t.Helper()
	if strings.Contains(view, "\x1b") {
		t.Errorf("view holds escape sequences: %q", view)
	}
	lines := strings.Split(view, "\n")
	if len(lines) > height {
		t.Errorf("view has %d lines, more than the height %d", len(lines), height)
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > width {
			t.Errorf("line %d is %d columns, wider than %d: %q", i+1, w, width, l)
		}
	}
}

// requireContains fails naming every missing substring.
func requireContains(t *testing.T, view string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(view, w) {
			t.Errorf("view lacks %q:\n%s", w, view)
		}
	}
}

// batchSession is a batch's session: two members, each with a host-0, the database
// member failed.
func batchSession() api.SessionView {
	return api.SessionView{
		Kind: api.KindBackup, Namespace: "shop", Name: "shop-bb2i8f", Config: "shop",
		Created: now.Add(-3 * time.Minute),
		Phase:   api.PhaseFailed,
		Status: api.SessionStatus{Phase: api.PhaseFailed, TotalHosts: 2, SessionDuration: "2.1s", Hosts: api.HostCounts{Succeeded: 1, Failed: 1},
			Error: "1 of 2 hosts failed; member statefulset/pg failed",
			Members: []api.MemberStatus{{Target: api.Target{Kind: "deployment", Name: "web"}, TotalHosts: 1, Phase: api.PhaseSucceeded},
				{Target: api.Target{Kind: "statefulset", Name: "pg"}, TotalHosts: 1, Phase: api.PhaseFailed, Error: "1 of 1 hosts failed"}}},
		Hosts: []api.HostStatus{
			{Hostname: "host-0", Target: "deployment/web", Phase: api.PhaseSucceeded, Duration: "1.5s",
				Snapshots: []api.SnapshotStats{snapshot("a6f87e8a", "/var/www/html", "51 B", "603 B", 0, 0, 3)}},
			{Hostname: "host-0", Target: "statefulset/pg", Phase: api.PhaseFailed, Duration: "518ms",
				Error: `statefulset/pg: dump command exited with code 1: pg_dumpall: error: FATAL:  password authentication failed for user "postgres"`},
		},
	}
}
