package tui

import (
	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// Styles are the looks of the views, built once per colour profile and background
// (soft-serve pkg/ui/styles). Without colour (NO_COLOR, a dumb terminal, tests) they add
// no colour: NoTTY styles are empty, so views are plain text; Ascii ones keep bold and
// reverse video.
type Styles struct {
	Title    lipgloss.Style // the header's title
	Counts   lipgloss.Style // the header's session counts
	Header   lipgloss.Style // column headers
	Dim      lipgloss.Style // labels and secondary text
	Selected lipgloss.Style // the list row under the cursor
	Cursor   lipgloss.Style // the cursor mark in the gutter
	Error    lipgloss.Style
	Status   lipgloss.Style // messages on the status line
	Prompt   lipgloss.Style // questions and the filter being typed
	BarFull  lipgloss.Style
	BarEmpty lipgloss.Style

	Succeeded lipgloss.Style
	Failed    lipgloss.Style
	Running   lipgloss.Style
	Pending   lipgloss.Style
	Skipped   lipgloss.Style

	Help help.Styles
}

// NewStyles builds the styles for a colour profile and a dark or light background.
func NewStyles(p colorprofile.Profile, dark bool) Styles {
	plain := lipgloss.NewStyle()
	var s Styles
	switch {
	case p <= colorprofile.NoTTY:
		s = Styles{Title: plain, Counts: plain, Header: plain, Dim: plain, Selected: plain, Cursor: plain,
			Error: plain, Status: plain, Prompt: plain, BarFull: plain, BarEmpty: plain,
			Succeeded: plain, Failed: plain, Running: plain, Pending: plain, Skipped: plain}
		return s
	case p == colorprofile.Ascii:
		bold := plain.Bold(true)
		s = Styles{Title: bold, Counts: plain, Header: bold, Dim: plain, Selected: plain.Reverse(true), Cursor: bold,
			Error: bold, Status: plain, Prompt: bold, BarFull: plain, BarEmpty: plain,
			Succeeded: plain, Failed: bold, Running: plain, Pending: plain, Skipped: plain}
		return s
	}
	ld := lipgloss.LightDark(dark)
	grey := ld(lipgloss.Color("#8a8a8a"), lipgloss.Color("#767676"))
	faint := ld(lipgloss.Color("#d0d0d0"), lipgloss.Color("#444444"))
	accent := ld(lipgloss.Color("#5f00d7"), lipgloss.Color("#af87ff"))
	selBg := ld(lipgloss.Color("#e4e4e4"), lipgloss.Color("#303030"))
	// Phases use the 16 ANSI colours, which every terminal theme adapts to its background.
	green, red, cyan, yellow := lipgloss.Color("2"), lipgloss.Color("1"), lipgloss.Color("6"), lipgloss.Color("3")
	s = Styles{
		Title:     plain.Bold(true).Foreground(accent),
		Counts:    plain.Foreground(grey),
		Header:    plain.Bold(true),
		Dim:       plain.Foreground(grey),
		Selected:  plain.Bold(true).Background(selBg),
		Cursor:    plain.Bold(true).Foreground(accent),
		Error:     plain.Foreground(red),
		Status:    plain.Foreground(grey),
		Prompt:    plain.Bold(true).Foreground(yellow),
		BarFull:   plain.Foreground(cyan),
		BarEmpty:  plain.Foreground(faint),
		Succeeded: plain.Foreground(green),
		Failed:    plain.Bold(true).Foreground(red),
		Running:   plain.Foreground(cyan),
		Pending:   plain.Foreground(yellow),
		Skipped:   plain.Foreground(grey),
		Help:      help.DefaultStyles(dark),
	}
	return s
}

// Phase is the style of a phase's name.
func (s Styles) Phase(p api.Phase) lipgloss.Style {
	switch p {
	case api.PhaseSucceeded:
		return s.Succeeded
	case api.PhaseFailed:
		return s.Failed
	case api.PhaseRunning:
		return s.Running
	case api.PhaseSkipped:
		return s.Skipped
	default:
		return s.Pending
	}
}
