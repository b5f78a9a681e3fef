package tui

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// waitLimit bounds every wait of the program tests.
const waitLimit = 10 * time.Second

// triggerCall is what the fake Trigger was asked.
type triggerCall struct{ namespace, config string }

// fakeTrigger records its calls on calls (when not nil) and names the new session.
func fakeTrigger(calls chan<- triggerCall) func(context.Context, string, string) (string, error) {
	return func(_ context.Context, namespace, config string) (string, error) {
		if calls != nil {
			calls <- triggerCall{namespace, config}
		}
		return config + "-manual-1", nil
	}
}

// frames collects the view, stripped of styles, after every Update, so that a test waits for a state of
// the model (teatest.WaitFor) rather than for bytes the renderer diffed into the output.
type frames struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (f *frames) add(view string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf.WriteString(view)
	f.buf.WriteString("\n\f\n")
}

func (f *frames) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.Read(p)
}

// recorder is the model under test, writing each view to frames.
type recorder struct {
	Model
	frames *frames
}

func (r recorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m, cmd := r.Model.Update(msg)
	r.Model = m.(Model)
	r.frames.add(ansi.Strip(r.Model.View().Content))
	return r, cmd
}

// lastFrame is the newest complete view in bts.
func lastFrame(bts []byte) string {
	fs := strings.Split(strings.TrimSuffix(string(bts), "\n\f\n"), "\n\f\n")
	return fs[len(fs)-1]
}

// waitView waits until the newest view satisfies ok.
func waitView(t *testing.T, f *frames, what string, ok func(view string) bool) string {
	t.Helper()
	var last string
	teatest.WaitFor(t, f, func(bts []byte) bool {
		if len(bts) == 0 {
			return false
		}
		last = lastFrame(bts)
		return ok(last)
	}, teatest.WithDuration(waitLimit), teatest.WithCheckInterval(10*time.Millisecond))
	t.Logf("%s:\n%s", what, last)
	return last
}

func contains(subs ...string) func(string) bool {
	return func(view string) bool {
		for _, s := range subs {
			if !strings.Contains(view, s) {
				return false
			}
		}
		return true
	}
}

func startProgram(t *testing.T, o Options) (*teatest.TestModel, *frames) {
	t.Helper()
	o.Now = clock
	f := &frames{}
	tm := teatest.NewTestModel(t, recorder{NewModel(o), f},
		teatest.WithInitialTermSize(testWidth, testHeight),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	return tm, f
}

func press(tm *teatest.TestModel, names ...string) {
	for _, n := range names {
		tm.Send(kp(n))
	}
}

// TestKeyFlow opens a session, filters the list, goes back, follows a configuration,
// triggers a session and quits, in a running program.
func TestKeyFlow(t *testing.T) {
	feed := make(chan []api.SessionView, 4)
	calls := make(chan triggerCall, 1)
	tm, f := startProgram(t, Options{Feed: feed, Trigger: fakeTrigger(calls), Title: "namespace shop"})

	feed <- picture()
	waitView(t, f, "the list", contains("> adhoc-x7k2p", "nightly-29384", "weekly-verify-29001"))

	press(tm, "j", "enter")
	waitView(t, f, "the detail of the second session", contains("› nightly-29384", "PROGRESS", "> host-0"))

	press(tm, "esc")
	waitView(t, f, "back in the list", contains("KIND", "> nightly-29384"))

	press(tm, "/", "v", "e", "r")
	waitView(t, f, "typing a filter", contains("/ver▏", "> weekly-verify-29001"))
	press(tm, "enter")
	view := waitView(t, f, "the filtered list", contains(`filter "ver": 1 of 6 sessions (esc clears)`, "> weekly-verify-29001"))
	if strings.Contains(view, "nightly-29384") {
		t.Errorf("the filter lets nightly-29384 through:\n%s", view)
	}

	// f follows the newest session of the selected one's configuration.
	press(tm, "f")
	waitView(t, f, "following weekly-verify", contains("› weekly-verify-29001", "following the newest session of weekly-verify"))
	newer := verifySession()
	newer.Name, newer.Created, newer.Phase = "weekly-verify-29002", now, api.PhaseRunning
	feed <- append([]api.SessionView{newer}, picture()...)
	waitView(t, f, "the newest session of weekly-verify", contains("› weekly-verify-29002", "Running"))

	press(tm, "t")
	waitView(t, f, "the trigger question", contains("trigger a session of weekly-verify? y/n"))
	press(tm, "y")
	select {
	case c := <-calls:
		if c != (triggerCall{"shop", "weekly-verify"}) {
			t.Errorf("Trigger got %+v, want namespace shop, config weekly-verify", c)
		}
	case <-time.After(waitLimit):
		t.Fatal("Trigger was not called")
	}
	waitView(t, f, "the trigger's outcome", contains("triggered session weekly-verify-manual-1 of weekly-verify"))

	// esc goes back to the list, and stops following.
	press(tm, "esc")
	waitView(t, f, "back in the filtered list", contains("KIND", "> weekly-verify-29002", `filter "ver"`))
	press(tm, "esc")
	waitView(t, f, "the whole list", contains("> weekly-verify-29002", "nightly-29384", "adhoc-x7k2p"))

	press(tm, "q")
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(waitLimit)).(recorder).Model
	if !fm.quitting || fm.err != nil {
		t.Errorf("after q: quitting %v, err %v", fm.quitting, fm.err)
	}
	if fm.result != "" {
		t.Errorf("result %q without Open or Follow, want none", fm.result)
	}
	if out, err := io.ReadAll(tm.FinalOutput(t)); err != nil || !bytes.Contains(out, []byte("weekly-verify")) {
		t.Errorf("the terminal output lacks the sessions (err %v)", err)
	}
}

// TestTriggerDeclined answers n: Trigger is not called.
func TestTriggerDeclined(t *testing.T) {
	calls := make(chan triggerCall, 1)
	m := newTestModel(Options{Trigger: fakeTrigger(calls)}, picture())
	m = drive(m, kp("t"))
	requireContains(t, m.View().Content, "trigger a session of adhoc? y/n", "y yes")
	nm, cmd := m.Update(kp("n"))
	m = nm.(Model)
	if cmd != nil || m.confirm.active {
		t.Errorf("n left the question open (cmd %v)", cmd != nil)
	}
	if strings.Contains(m.View().Content, "y/n") {
		t.Errorf("the question stays after n:\n%s", m.View().Content)
	}
	select {
	case c := <-calls:
		t.Errorf("Trigger called with %+v after n", c)
	default:
	}
}

// TestExitWhenDone ends the program when the opened session ends, with its phase.
func TestExitWhenDone(t *testing.T) {
	feed := make(chan []api.SessionView, 2)
	tm, f := startProgram(t, Options{Feed: feed, Open: "nightly-29384", ExitWhenDone: true})
	feed <- picture()
	waitView(t, f, "the opened session", contains("› nightly-29384", "Running"))

	done := runningSession()
	done.Phase, done.Status.Phase = api.PhaseFailed, api.PhaseFailed
	for i := range done.Hosts {
		done.Hosts[i].Phase = api.PhaseFailed
	}
	feed <- []api.SessionView{done}
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(waitLimit)).(recorder).Model
	if fm.result != api.PhaseFailed {
		t.Errorf("result %q, want Failed", fm.result)
	}
	if view := fm.View(); view.AltScreen || strings.Contains(view.Content, "q quit") {
		t.Errorf("the last picture of trigger --watch keeps the help line or the alternate screen:\n%s", view.Content)
	}
}

// TestFollowWaitsForNewSession: with Follow and ExitWhenDone, an old finished session
// does not end the program; the next one of the configuration does.
func TestFollowWaitsForNewSession(t *testing.T) {
	o := Options{Follow: "nightly", ExitWhenDone: true, Now: clock}
	m := NewModel(o)
	old := finishedSession()
	nm, cmd := m.Update(feedMsg{old})
	m = nm.(Model)
	if isQuit(cmd) {
		t.Fatal("an old finished session ended the program")
	}
	requireContains(t, m.View().Content, "› nightly-29383")
	next := runningSession()
	next.Created = now.Add(time.Second)
	m = drive(m, feedMsg{next, old})
	requireContains(t, m.View().Content, "› nightly-29384")
	next.Phase = api.PhaseSucceeded
	nm, cmd = m.Update(feedMsg{next, old})
	if !isQuit(cmd) || nm.(Model).result != api.PhaseSucceeded {
		t.Errorf("the followed session ended without ending the program (result %q)", nm.(Model).result)
	}
}

func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

// TestRun runs the program as kubectl stash does, through pipes: keys in, frames out.
func TestRun(t *testing.T) {
	t.Run("ExitWhenDone", func(t *testing.T) {
		feed := make(chan []api.SessionView, 1)
		s := runningSession()
		s.Phase = api.PhaseSucceeded
		feed <- []api.SessionView{s}
		in, out := newPipes(t)
		phase, err := Run(t.Context(), Options{Feed: feed, Open: s.Name, ExitWhenDone: true, Now: clock}, in, out)
		if phase != api.PhaseSucceeded || err != nil {
			t.Errorf("Run = %q, %v; want Succeeded, nil", phase, err)
		}
		if !strings.Contains(out.String(), "nightly-29384") {
			t.Errorf("the output lacks the session:\n%q", out.String())
		}
	})
	t.Run("quit", func(t *testing.T) {
		feed := make(chan []api.SessionView, 1)
		feed <- picture()
		in, out := newPipes(t)
		res := runAsync(t.Context(), Options{Feed: feed, Follow: "nightly", Now: clock}, in, out)
		waitOutput(t, out, "nightly-29384")
		if _, err := in.w.Write([]byte("q")); err != nil {
			t.Fatal(err)
		}
		r := <-res
		if r.phase != api.PhaseRunning || r.err != nil {
			t.Errorf("Run = %q, %v; want Running (the newest nightly session), nil", r.phase, r.err)
		}
	})
	t.Run("feed closed", func(t *testing.T) {
		feed := make(chan []api.SessionView)
		close(feed)
		in, out := newPipes(t)
		_, err := Run(t.Context(), Options{Feed: feed, Now: clock}, in, out)
		if !errors.Is(err, ErrFeedClosed) {
			t.Errorf("Run = %v, want ErrFeedClosed", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		in, out := newPipes(t)
		res := runAsync(ctx, Options{Feed: make(chan []api.SessionView), Now: clock}, in, out)
		waitOutput(t, out, "waiting")
		cancel()
		if r := <-res; !errors.Is(r.err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", r.err)
		}
	})
}

type runResult struct {
	phase api.Phase
	err   error
}

func runAsync(ctx context.Context, o Options, in pipeIn, out *syncBuffer) <-chan runResult {
	res := make(chan runResult, 1)
	go func() {
		phase, err := Run(ctx, o, in, out)
		res <- runResult{phase, err}
	}()
	return res
}

func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	teatest.WaitFor(t, out, func(bts []byte) bool { return bytes.Contains(bts, []byte(want)) },
		teatest.WithDuration(waitLimit), teatest.WithCheckInterval(10*time.Millisecond))
}

// pipeIn is the keyboard of a Run test.
type pipeIn struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (p pipeIn) Read(b []byte) (int, error) { return p.r.Read(b) }

// syncBuffer is the screen of a Run test: String has all of it, Read what was not read.
type syncBuffer struct {
	mu     sync.Mutex
	all    bytes.Buffer
	unread bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unread.Write(p)
	return b.all.Write(p)
}

func (b *syncBuffer) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.unread.Read(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.all.String()
}

func newPipes(t *testing.T) (pipeIn, *syncBuffer) {
	r, w := io.Pipe()
	t.Cleanup(func() { _ = w.Close() })
	return pipeIn{r, w}, &syncBuffer{}
}
