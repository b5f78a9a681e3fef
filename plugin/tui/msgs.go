package tui

import (
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// feedMsg is one complete picture from the feed.
type feedMsg []api.SessionView

// feedClosedMsg says the feed channel closed.
type feedClosedMsg struct{}

// tickMsg redraws ages and elapsed times while the feed is quiet.
type tickMsg time.Time

// triggerDoneMsg is the outcome of Options.Trigger.
type triggerDoneMsg struct {
	namespace, config string
	session           string
	err               error
}
