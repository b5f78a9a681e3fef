// Package tui is the live terminal UI of `kubectl stash watch` and `trigger --watch`: a list
// of backup sessions and the detail of one, redrawn from a feed of complete pictures
// (api.SessionFeed).
//
// It follows the Elm pattern of Bubble Tea v2: the root Model has value receivers, keeps a
// state (list or detail) and delegates drawing to the list and detail parts; every event
// is a named message type (msgs.go), and the feed is read by a command that Update re-arms
// after each picture (cmds.go). The package knows no Kubernetes types: the plugin turns
// Jobs into api.SessionView values and hands them over the feed channel.
package tui

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/term"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// Options configure the UI. The zero value of every field but Feed is usable.
type Options struct {
	// Feed delivers complete pictures; the latest wins. When it closes, the program ends
	// with ErrFeedClosed.
	Feed api.SessionFeed
	// Trigger starts a session of a configuration in a namespace; nil disables the t key.
	Trigger func(ctx context.Context, namespace, config string) (session string, err error)
	// Open, if set, opens this session's detail at start and follows it (trigger --watch,
	// watch SESSION). It is matched by name in any namespace of the feed.
	Open string
	// Follow, if set (a configuration name), keeps the detail on the newest session of that
	// configuration (the f key toggles it for the selected session's configuration).
	Follow string
	// ExitWhenDone: quit when the opened/followed session reaches a final phase
	// (trigger --watch); the program then returns that phase. The view is then drawn
	// inline rather than on the alternate screen, so the final picture stays on the
	// terminal.
	ExitWhenDone bool
	// Title names what is watched, e.g. "namespace shop" or "all namespaces".
	Title string
	// Now is the clock for ages and elapsed times; nil means time.Now. Tests fix it.
	Now func() time.Time
}

// ErrFeedClosed is returned by Run when the session feed closed before the user quit.
var ErrFeedClosed = errors.New("the session feed closed")

// Run runs the program on a terminal: it reads keys from in and draws on out. Pass the
// terminal's *os.File values (kubectl stash passes its stdin and renders to stderr, so
// stdout stays clean), since the program puts in into raw mode and asks out for its size;
// call Run only when both are terminals and print plain lines otherwise.
//
// Run returns the last phase seen of the session named by Options.Open, else of the newest
// session of Options.Follow ("" when there is none): with ExitWhenDone that is the final
// phase that ended the program; after the user quit it may be a phase that is not Final.
// The error is ctx.Err() when ctx ended the program, ErrFeedClosed when the feed closed,
// or what Bubble Tea reported; quitting with q or ctrl+c returns nil.
func Run(ctx context.Context, o Options, in io.Reader, out io.Writer) (api.Phase, error) {
	m := NewModel(o)
	m.ctx = ctx
	m.profile = colorprofile.Detect(out, os.Environ())
	m.styles = NewStyles(m.profile, m.dark)
	m.help.Styles = m.styles.Help

	opts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out)}
	if f, ok := out.(term.File); !ok || !term.IsTerminal(f.Fd()) {
		// Not a terminal (a test, a pipe): no size to ask for, so draw at the default one.
		opts = append(opts, tea.WithWindowSize(defaultWidth, defaultHeight))
	}
	p := tea.NewProgram(m, opts...)
	final, err := p.Run()
	fm, _ := final.(Model)
	phase := fm.result
	switch {
	case err != nil && ctx.Err() != nil:
		return phase, ctx.Err()
	case err != nil:
		return phase, err
	case fm.err != nil:
		return phase, fm.err
	}
	return phase, nil
}
