package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// state is the view the root model shows.
type state int

const (
	stateList state = iota
	stateDetail
)

// Default size until the first tea.WindowSizeMsg.
const (
	defaultWidth  = 80
	defaultHeight = 24
)

// sessionKey names a session; an empty namespace matches any (Options.Open is a bare name).
type sessionKey struct{ namespace, name string }

func keyOf(v api.SessionView) sessionKey { return sessionKey{v.Namespace, v.Name} }

func (k sessionKey) matches(v api.SessionView) bool {
	return k.name != "" && v.Name == k.name && (k.namespace == "" || k.namespace == v.Namespace)
}

// followTarget is the configuration whose newest session the detail shows; an empty config
// means not following, an empty namespace any namespace.
type followTarget struct{ namespace, config string }

func (f followTarget) on() bool { return f.config != "" }

func (f followTarget) matches(v api.SessionView) bool {
	return f.config != "" && v.Config == f.config && (f.namespace == "" || f.namespace == v.Namespace)
}

// confirmation is the pending "trigger a session of CONFIG? y/n" question.
type confirmation struct {
	active            bool
	namespace, config string
}

// Model is the root model of the UI: it keeps the latest picture of the feed and the state
// of the list and the detail, and delegates drawing to them.
type Model struct {
	opts    Options
	ctx     context.Context // for Options.Trigger; Run sets it
	keys    KeyMap
	styles  Styles
	profile colorprofile.Profile
	dark    bool
	help    help.Model
	width   int
	height  int

	sessions []api.SessionView // the latest picture, in the feed's order (newest first)
	received bool              // whether a picture arrived

	state   state
	list    listModel
	detail  detailModel
	follow  followTarget
	confirm confirmation

	status      string // one line of news: a trigger's outcome, a hint
	statusIsErr bool
	err         error // why the program ended by itself (the feed closed)
	quitting    bool

	// start is when the model was built; a followed session created later ended while
	// watched even if no picture showed it running.
	start     time.Time
	result    api.Phase // last phase of the session Open or Follow names
	trackKey  sessionKey
	trackLive bool // the tracked session was seen before it ended
}

// NewModel returns the root model for o. Its styles are colour-free until the program
// reports the terminal's colour profile (tea.ColorProfileMsg).
func NewModel(o Options) Model {
	if o.Now == nil {
		o.Now = time.Now
	}
	m := Model{
		opts:    o,
		ctx:     context.Background(),
		keys:    DefaultKeyMap(),
		profile: colorprofile.NoTTY,
		dark:    true,
		help:    help.New(),
		start:   o.Now(),
	}
	m.styles = NewStyles(m.profile, m.dark)
	m.help.Styles = m.styles.Help
	m.keys.Trigger.SetEnabled(o.Trigger != nil)
	if o.Follow != "" {
		m.follow = followTarget{config: o.Follow}
		m.state = stateDetail
	}
	if o.Open != "" {
		m.detail = detailModel{key: sessionKey{name: o.Open}}
		m.state = stateDetail
	}
	return m
}

// Init starts reading the feed and the clock, and asks the terminal for its background.
func (m Model) Init() tea.Cmd {
	return tea.Batch(waitForFeed(m.opts.Feed), tick(), tea.RequestBackgroundColor)
}

// Update handles one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.SetWidth(msg.Width)
		return m.fixScroll(), nil
	case tea.ColorProfileMsg:
		m.profile = msg.Profile
		return m.restyle(), nil
	case tea.BackgroundColorMsg:
		m.dark = msg.IsDark()
		return m.restyle(), nil
	case feedMsg:
		var quit bool
		m, quit = m.applyFeed(msg)
		if quit {
			m.quitting = true
			return m, tea.Quit
		}
		return m, waitForFeed(m.opts.Feed)
	case feedClosedMsg:
		m.err = ErrFeedClosed
		m.status, m.statusIsErr = "error: "+ErrFeedClosed.Error(), true
		m.quitting = true
		return m, tea.Quit
	case triggerDoneMsg:
		if msg.err != nil {
			m.status, m.statusIsErr = fmt.Sprintf("trigger %s: %v", msg.config, msg.err), true
		} else {
			m.status, m.statusIsErr = fmt.Sprintf("triggered session %s of %s", msg.session, msg.config), false
		}
		return m, nil
	case tickMsg:
		return m, tick()
	case tea.KeyPressMsg:
		return m.handleKey(msg)
	}
	return m, nil
}

func (m Model) restyle() Model {
	m.styles = NewStyles(m.profile, m.dark)
	m.help.Styles = m.styles.Help
	return m
}

// size is the terminal size, or a default before the first tea.WindowSizeMsg.
func (m Model) size() (int, int) {
	w, h := m.width, m.height
	if w <= 0 {
		w = defaultWidth
	}
	if h <= 0 {
		h = defaultHeight
	}
	return w, h
}

// fullScreen says whether the view takes the alternate screen (and pads to its height).
// With ExitWhenDone it is drawn inline, so the last picture stays on the terminal.
func (m Model) fullScreen() bool { return !m.opts.ExitWhenDone }

// applyFeed takes a new picture, keeps the cursors on their sessions and reports whether
// the tracked session ended (ExitWhenDone).
func (m Model) applyFeed(sessions []api.SessionView) (Model, bool) {
	m.sessions = sessions
	m.received = true
	m = m.applyFollow()
	m.list = m.list.sync(m.sessions, m.listRows())
	m = m.fixScroll()
	return m.track()
}

// applyFollow moves the detail to the newest session of the followed configuration.
func (m Model) applyFollow() Model {
	if !m.follow.on() {
		return m
	}
	for _, v := range m.sessions {
		if m.follow.matches(v) {
			if k := keyOf(v); m.detail.key != k {
				m.detail = detailModel{key: k}
			}
			break
		}
	}
	return m
}

// tracked is the session whose phase Run returns: the one Open names, else the newest of
// the Follow configuration.
func (m Model) tracked() (api.SessionView, bool) {
	switch {
	case m.opts.Open != "":
		return find(m.sessions, func(v api.SessionView) bool { return v.Name == m.opts.Open })
	case m.opts.Follow != "":
		return find(m.sessions, func(v api.SessionView) bool { return v.Config == m.opts.Follow })
	}
	return api.SessionView{}, false
}

func find(sessions []api.SessionView, ok func(api.SessionView) bool) (api.SessionView, bool) {
	for _, v := range sessions {
		if ok(v) {
			return v, true
		}
	}
	return api.SessionView{}, false
}

// track records the tracked session's phase and reports whether the program should end.
// A followed session ends the program only if it was seen before it ended (or was created
// after the program started), so an old finished session does not end it at once.
func (m Model) track() (Model, bool) {
	v, ok := m.tracked()
	if !ok {
		return m, false
	}
	m.result = phaseOf(v.Phase)
	if k := keyOf(v); k != m.trackKey {
		m.trackKey, m.trackLive = k, false
	}
	if !m.result.Final() || !v.Created.Before(m.start) {
		m.trackLive = true
	}
	done := m.result.Final() && (m.opts.Open != "" || m.trackLive)
	return m, m.opts.ExitWhenDone && done
}

// fixScroll keeps the cursor of the current view on screen.
func (m Model) fixScroll() Model {
	_, h := m.size()
	if m.state == stateList {
		m.list = m.list.scrollTo(len(m.listRows()), m.listBodyHeight(h))
		return m
	}
	v, ok := m.detailSession()
	if !ok {
		return m
	}
	w, _ := m.size()
	f := m.detailFrame(v, w)
	m.detail = m.detail.scrollTo(f, m.detailBodyHeight(f, h))
	return m
}

// current is the session the t key acts on: the selected one, or the one shown.
func (m Model) current() (api.SessionView, bool) {
	if m.state == stateDetail {
		return m.detailSession()
	}
	rows := m.listRows()
	if m.list.cursor < 0 || m.list.cursor >= len(rows) {
		return api.SessionView{}, false
	}
	return m.sessions[rows[m.list.cursor]], true
}

func (m Model) quit() (tea.Model, tea.Cmd) {
	m.quitting = true
	return m, tea.Quit
}

func (m Model) handleKey(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	if key.Matches(k, m.keys.ForceQuit) {
		return m.quit()
	}
	if m.confirm.active {
		switch {
		case key.Matches(k, m.keys.Yes):
			c := m.confirm
			m.confirm = confirmation{}
			m.status, m.statusIsErr = fmt.Sprintf("triggering a session of %s…", c.config), false
			return m, triggerSession(m.ctx, m.opts.Trigger, c.namespace, c.config)
		case key.Matches(k, m.keys.No):
			m.confirm = confirmation{}
			m.status = ""
		}
		return m, nil
	}
	if m.state == stateList && m.list.filtering {
		return m.filterKey(k), nil
	}
	m.status, m.statusIsErr = "", false
	switch {
	case key.Matches(k, m.keys.Quit):
		return m.quit()
	case key.Matches(k, m.keys.Trigger):
		v, ok := m.current()
		switch {
		case !ok:
		case v.Kind == api.KindRestore:
			m.status, m.statusIsErr = fmt.Sprintf("%s is a %s session: start another with kubectl stash restore", v.Name, v.Kind), true
		case v.Config == "":
			m.status, m.statusIsErr = fmt.Sprintf("session %s has no configuration", v.Name), true
		default:
			m.confirm = confirmation{active: true, namespace: v.Namespace, config: v.Config}
		}
		return m, nil
	}
	if m.state == stateDetail {
		return m.detailKey(k), nil
	}
	return m.listKey(k), nil
}

// listKey handles a key of the list.
func (m Model) listKey(k tea.KeyPressMsg) Model {
	_, h := m.size()
	rows := m.listRows()
	switch {
	case key.Matches(k, m.keys.Up):
		m.list = m.list.move(-1, m.sessions, rows)
	case key.Matches(k, m.keys.Down):
		m.list = m.list.move(1, m.sessions, rows)
	case key.Matches(k, m.keys.PageUp):
		m.list = m.list.move(-m.listBodyHeight(h), m.sessions, rows)
	case key.Matches(k, m.keys.PageDown):
		m.list = m.list.move(m.listBodyHeight(h), m.sessions, rows)
	case key.Matches(k, m.keys.Open):
		if v, ok := m.current(); ok {
			m.state = stateDetail
			m.follow = followTarget{}
			m.detail = detailModel{key: keyOf(v)}
		}
	case key.Matches(k, m.keys.Back):
		m.list.filter = ""
		m.list = m.list.sync(m.sessions, m.listRows())
	case key.Matches(k, m.keys.Filter):
		m.list.filtering = true
	case key.Matches(k, m.keys.Follow):
		if v, ok := m.current(); ok && v.Config != "" {
			m.state = stateDetail
			m.follow = followTarget{namespace: v.Namespace, config: v.Config}
			m.detail = detailModel{key: keyOf(v)}
			m = m.applyFollow()
		}
	}
	return m.fixScroll()
}

// filterKey handles a key while the filter is typed.
func (m Model) filterKey(k tea.KeyPressMsg) Model {
	switch {
	case key.Matches(k, m.keys.Accept):
		m.list.filtering = false
	case k.String() == "esc":
		m.list.filter, m.list.filtering = "", false
	case key.Matches(k, m.keys.Erase):
		r := []rune(m.list.filter)
		if len(r) > 0 {
			m.list.filter = string(r[:len(r)-1])
		}
	case k.String() == "up":
		m.list = m.list.move(-1, m.sessions, m.listRows())
	case k.String() == "down":
		m.list = m.list.move(1, m.sessions, m.listRows())
	case k.Text != "" && k.Mod&(tea.ModCtrl|tea.ModAlt) == 0:
		m.list.filter += k.Text
	}
	m.list = m.list.sync(m.sessions, m.listRows())
	return m.fixScroll()
}

// detailKey handles a key of the detail.
func (m Model) detailKey(k tea.KeyPressMsg) Model {
	v, ok := m.detailSession()
	w, h := m.size()
	page := 1
	if ok {
		page = max(1, m.detailBodyHeight(m.detailFrame(v, w), h)/2)
	}
	switch {
	case key.Matches(k, m.keys.Up):
		m.detail = m.detail.move(-1, len(v.Hosts))
	case key.Matches(k, m.keys.Down):
		m.detail = m.detail.move(1, len(v.Hosts))
	case key.Matches(k, m.keys.PageUp):
		m.detail = m.detail.move(-page, len(v.Hosts))
	case key.Matches(k, m.keys.PageDown):
		m.detail = m.detail.move(page, len(v.Hosts))
	case key.Matches(k, m.keys.Back):
		m.state = stateList
		m.follow = followTarget{}
		if ok {
			m.list.selected = keyOf(v)
		}
		m.list = m.list.sync(m.sessions, m.listRows())
	case key.Matches(k, m.keys.Follow):
		switch {
		case m.follow.on():
			m.status = "stopped following " + m.follow.config
			m.follow = followTarget{}
		case ok && v.Config != "":
			m.follow = followTarget{namespace: v.Namespace, config: v.Config}
			m = m.applyFollow()
		}
	}
	return m.fixScroll()
}

// View draws the current view, cut to the terminal's size.
func (m Model) View() tea.View {
	w, h := m.size()
	var top, body []string
	bodyHeight := 0
	if m.state == stateDetail {
		top, body, bodyHeight = m.detailView(w, h)
	} else {
		top, body, bodyHeight = m.listView(w, h)
	}
	lines := append(top, body...)
	if m.fullScreen() {
		for i := len(body); i < bodyHeight; i++ {
			lines = append(lines, "")
		}
	}
	if status := m.statusLine(w); status != "" || !m.quitting || m.fullScreen() {
		lines = append(lines, status)
	}
	if !m.quitting {
		m.help.SetWidth(w)
		lines = append(lines, m.help.View(m.helpKeys()))
	} else if !m.fullScreen() {
		// Bubble Tea leaves the cursor on the last line of an inline view: make it a
		// blank one, so what the command prints next does not overwrite the picture.
		lines = append(lines, "")
	}
	v := tea.NewView(fit(lines, w, h))
	v.AltScreen = m.fullScreen()
	return v
}

// footerHeight is the status line and the help line.
const footerHeight = 2

// statusLine is the question, the filter being typed, or the latest news.
func (m Model) statusLine(w int) string {
	s := m.styles
	switch {
	case m.confirm.active:
		return s.Prompt.Render(fmt.Sprintf("trigger a session of %s? y/n", m.confirm.config))
	case m.status != "":
		if m.statusIsErr {
			return s.Error.Render(m.status)
		}
		return s.Status.Render(m.status)
	case m.state == stateList && m.list.filtering:
		return s.Prompt.Render("/"+m.list.filter+"▏") + s.Dim.Render(fmt.Sprintf("  %d of %d sessions", len(m.listRows()), len(m.sessions)))
	case m.state == stateList && m.list.filter != "":
		return s.Status.Render(fmt.Sprintf("filter %q: %d of %d sessions (esc clears)", m.list.filter, len(m.listRows()), len(m.sessions)))
	case m.state == stateDetail && m.follow.on():
		return s.Status.Render("following the newest session of " + m.follow.config + " (f stops)")
	}
	return ""
}

// helpKeys are the bindings the help line shows in the current mode.
func (m Model) helpKeys() help.KeyMap {
	k := m.keys
	switch {
	case m.confirm.active:
		return helpKeys{k.Yes, k.No}
	case m.state == stateList && m.list.filtering:
		clear := k.Back
		clear.SetHelp("esc", "clear")
		return helpKeys{k.Accept, clear, k.ForceQuit}
	case m.state == stateDetail:
		follow := k.Follow
		if m.follow.on() {
			follow.SetHelp("f", "stop following")
		}
		return helpKeys{k.move, k.Back, follow, k.Trigger, k.Quit}
	}
	return helpKeys{k.move, k.Open, k.Filter, k.Follow, k.Trigger, k.Quit}
}

// headerLine is the title and what it adds up to.
func (m Model) headerLine(crumb, counts string) string {
	s := m.styles
	title := "kubectl stash"
	if m.opts.Title != "" {
		title += " · " + m.opts.Title
	}
	if crumb != "" {
		title += " › " + crumb
	}
	if counts == "" {
		return s.Title.Render(title)
	}
	return s.Title.Render(title) + "  " + s.Counts.Render(counts)
}

// counts sums the sessions of the picture by phase.
func (m Model) counts() string {
	if !m.received {
		return ""
	}
	n := map[api.Phase]int{}
	for _, v := range m.sessions {
		n[phaseOf(v.Phase)]++
	}
	word := "sessions"
	if len(m.sessions) == 1 {
		word = "session"
	}
	parts := []string{fmt.Sprintf("%d %s", len(m.sessions), word)}
	for _, p := range []api.Phase{api.PhaseRunning, api.PhasePending, api.PhaseSucceeded, api.PhaseFailed, api.PhaseSkipped} {
		if n[p] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[p], strings.ToLower(string(p))))
		}
	}
	return strings.Join(parts, " · ")
}

// multiNamespace says whether the picture spans namespaces, so rows name theirs.
func (m Model) multiNamespace() bool {
	for _, v := range m.sessions {
		if v.Namespace != m.sessions[0].Namespace {
			return true
		}
	}
	return false
}
