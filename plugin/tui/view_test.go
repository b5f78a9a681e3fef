package tui

import (
	"strconv"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// newTestModel is a model at the golden size with one picture of sessions.
func newTestModel(o Options, sessions []api.SessionView) Model {
	o.Now = clock
	if o.Title == "" {
		o.Title = "namespace shop"
	}
	return drive(NewModel(o), tea.WindowSizeMsg{Width: testWidth, Height: testHeight}, feedMsg(sessions))
}

// requireGolden compares the view with testdata/<TestName>.golden (go test -update
// rewrites it) after checking that it is plain text within the terminal.
func requireGolden(t *testing.T, m Model) string {
	t.Helper()
	view := m.View().Content
	checkFrame(t, view, testWidth, testHeight)
	golden.RequireEqual(t, view)
	return view
}

func TestListView(t *testing.T) {
	m := newTestModel(Options{Trigger: fakeTrigger(nil)}, picture())
	m = drive(m, kp("j"))
	view := requireGolden(t, m)
	requireContains(t, view,
		"kubectl stash · namespace shop\n6 sessions · 1 running · 1 pending · 2 succeeded · 1 failed · 1 skipped",
		"NAME", "KIND", "CONFIG/TARGET", "PHASE", "HOSTS", "DURATION", "AGE",
		"restore-orders-1     restore  statefulset/orders  Skipped", // a restore session's target
		"> nightly-29384",         // the cursor moved to the second row
		"Running    1/3    2m10s", // elapsed time of a running session
		"Succeeded  2/2    4m5s",  // SessionDuration of a finished one
		"t trigger", "q quit")
	if lines := strings.Split(view, "\n"); len(lines) != testHeight {
		t.Errorf("the list takes %d lines, want the whole screen (%d)", len(lines), testHeight)
	}
}

func TestListViewAllNamespaces(t *testing.T) {
	other := runningSession()
	other.Namespace, other.Name = "billing", "invoices-771"
	m := newTestModel(Options{Title: "all namespaces"}, append(picture(), other))
	view := requireGolden(t, m)
	requireContains(t, view, "NAMESPACE", "billing    invoices-771")
	if strings.Contains(view, "t trigger") {
		t.Errorf("t is offered without Options.Trigger:\n%s", view)
	}
}

func TestDetailRunning(t *testing.T) {
	m := newTestModel(Options{Open: "nightly-29384"}, picture())
	m = drive(m, kp("j"))
	view := requireGolden(t, m)
	requireContains(t, view,
		"› nightly-29384",
		"backup nightly-29384  config nightly  Running  hosts 1/3  duration 2m10s",
		"HOST", "PROGRESS", "BYTES", "FILES", "RATE", "ETA",
		"  host-0  Succeeded", "100%", "    took 1m2s",
		"> host-1  Running", " 50%", "700.000 MiB/1.367 GiB", "420/800", "35.000 MiB/s", "20s",
		"    in /data/orders/2025/03", // no room for a DIRECTORY column at 100 columns
		"scanning",                    // host-2's totals still grow: no ETA
		"4f1c9a2e  /data  new 10  modified 2  unmodified 1188  size 1.000 GiB  uploaded 12.500 MiB")
}

func TestDetailFailedHost(t *testing.T) {
	m := newTestModel(Options{Open: "nightly-29380"}, picture())
	view := requireGolden(t, m)
	requireContains(t, view,
		"Failed  hosts 2/2  duration 3m40s",
		"error: 1 of 2 hosts failed",
		"host-1  Failed",
		"    error: backup /data: open /data/orders/2025/02/archive.tar: permission denied;",
		"RequestTimeout")
}

func TestDetailFinished(t *testing.T) {
	m := newTestModel(Options{Open: "nightly-29383"}, picture())
	view := requireGolden(t, m)
	requireContains(t, view,
		"Succeeded  hosts 2/2  duration 4m5s  age 120m",
		"DIRECTORY", "took 2m3s",
		"    a1b2c3d4  /data  new 12  modified 3  unmodified 1185  size 1.000 GiB    uploaded 10.000 MiB",
		"    retention removed 2 snapshots",
		"    e5f6a7b8  /data  new 8   modified 1  unmodified 1190  size 998.500 MiB  uploaded 9.750 MiB")
}

// TestDetailRestore: a restore session names its target, each finished host says what it
// restored from which host, and a Skipped host why it restored nothing.
func TestDetailRestore(t *testing.T) {
	m := newTestModel(Options{Open: "web-restore-x7k2p"}, append(picture(), restoreSession()))
	view := requireGolden(t, m)
	requireContains(t, view,
		"restore web-restore-x7k2p  target statefulset/web  Running  hosts 3/4",
		"> host-0  Succeeded",
		"    restored 4f1c9a2e  /source/data    from host-1  1200 files  1.000 GiB  1100 identical, 3 kept\n",
		"    restored 9b0d77aa  /source/config  from host-1  4 files     2.000 KiB  1 deleted\n",
		"    error: restore /source/data: open /source/data/orders.db: permission denied",
		"  host-3  Skipped",
		"    no restore rule matches host-3: nothing was restored on it")
}

// TestTriggerARestore: t on a restore session says what to do instead of triggering.
func TestTriggerARestore(t *testing.T) {
	m := newTestModel(Options{Trigger: fakeTrigger(nil), Open: "web-restore-x7k2p"}, append(picture(), restoreSession()))
	m = drive(m, kp("t"))
	if m.confirm.active {
		t.Fatal("asks to trigger a restore session")
	}
	requireContains(t, m.View().Content, "web-restore-x7k2p is a restore session: start another with kubectl stash restore")
}

// TestDetailScrolls moves the cursor through a session with more hosts than lines and
// checks that the host under the cursor stays on screen.
func TestDetailScrolls(t *testing.T) {
	v := runningSession()
	v.Hosts = nil
	for i := range 40 {
		h := runningSession().Hosts[i%3]
		h.Hostname = "host-" + strconv.Itoa(i)
		v.Hosts = append(v.Hosts, h)
	}
	v.Status.TotalHosts = 42
	m := newTestModel(Options{Open: v.Name}, []api.SessionView{v})
	for i := range 40 {
		view := m.View().Content
		checkFrame(t, view, testWidth, testHeight)
		requireContains(t, view, "> host-"+strconv.Itoa(i)+" ")
		m = drive(m, kp("j"))
	}
	requireContains(t, m.View().Content, "2 more hosts have not reported yet")
	m = drive(m, kp("k"), kp("k"))
	requireContains(t, m.View().Content, "> host-37 ")
}

// TestDetailBatch: a batch's hosts are named with their member, since both are host-0.
func TestDetailBatch(t *testing.T) {
	m := newTestModel(Options{Open: "shop-bb2i8f"}, append(picture(), batchSession()))
	view := requireGolden(t, m)
	requireContains(t, view,
		"deployment/web host-0  Succeeded",
		"statefulset/pg host-0  Failed",
		"dump command exited with code 1: pg_dumpall: error: FATAL:  password")
}
