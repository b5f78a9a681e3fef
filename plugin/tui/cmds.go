package tui

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// waitForFeed waits for the next picture of the feed; Update re-arms it after each
// feedMsg (bubbletea examples/realtime).
func waitForFeed(ch api.SessionFeed) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		v, ok := <-ch
		if !ok {
			return feedClosedMsg{}
		}
		return feedMsg(v)
	}
}

// tickInterval is how often ages and elapsed times are redrawn.
const tickInterval = time.Second

func tick() tea.Cmd {
	return tea.Tick(tickInterval, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// triggerSession runs fn off the event loop.
func triggerSession(ctx context.Context, fn func(context.Context, string, string) (string, error), namespace, config string) tea.Cmd {
	return func() tea.Msg {
		s, err := fn(ctx, namespace, config)
		return triggerDoneMsg{namespace: namespace, config: config, session: s, err: err}
	}
}
