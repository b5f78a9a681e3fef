package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// phaseOf names a phase, reading an unset one as Pending.
func phaseOf(p api.Phase) api.Phase {
	if p == "" {
		return api.PhasePending
	}
	return p
}

// humanAge formats an age like kubectl's AGE column: 45s, 3m12s, 42m, 5h20m, 30h, 3d4h, 12d.
func humanAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 120:
		return fmt.Sprintf("%ds", s)
	case d < 10*time.Minute:
		if s%60 == 0 {
			return fmt.Sprintf("%dm", s/60)
		}
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case d < 3*time.Hour:
		return fmt.Sprintf("%dm", s/60)
	case d < 8*time.Hour:
		if s%3600/60 == 0 {
			return fmt.Sprintf("%dh", s/3600)
		}
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", s/3600)
	case d < 8*24*time.Hour:
		if s%86400/3600 == 0 {
			return fmt.Sprintf("%dd", s/86400)
		}
		return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
	default:
		return fmt.Sprintf("%dd", s/86400)
	}
}

// shortDuration formats an estimate: 45s, 3m05s, 2h07m.
func shortDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	default:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
}

// sessionDuration is Status.SessionDuration (the sum of the host durations) when the
// session wrote it, else the time since Created while the session runs.
func sessionDuration(v api.SessionView, now time.Time) string {
	if v.Status.SessionDuration != "" {
		return v.Status.SessionDuration
	}
	if phaseOf(v.Phase).Final() || v.Created.IsZero() {
		return "-"
	}
	return api.FormatProcessingTime(max(now.Sub(v.Created), 0))
}

// age is the time since Created, "-" when unknown.
func age(v api.SessionView, now time.Time) string {
	if v.Created.IsZero() {
		return "-"
	}
	return humanAge(now.Sub(v.Created))
}

// hostFraction is how far a host got, and whether a bar makes sense for it.
func hostFraction(h api.HostStatus) (float64, bool) {
	switch phaseOf(h.Phase) {
	case api.PhaseSkipped:
		return 0, false
	case api.PhaseSucceeded:
		return 1, true
	}
	p := h.Progress
	switch {
	case p == nil:
		return 0, true
	case p.BytesTotal > 0:
		return min(max(float64(p.BytesDone)/float64(p.BytesTotal), 0), 1), true
	case p.FilesTotal > 0:
		return min(max(float64(p.FilesDone)/float64(p.FilesTotal), 0), 1), true
	}
	return 0, true
}

// eta estimates the time left of a running host; "scanning" while the totals grow.
func eta(h api.HostStatus) string {
	p := h.Progress
	if phaseOf(h.Phase) != api.PhaseRunning || p == nil {
		return "-"
	}
	if p.Scanning {
		return "scanning"
	}
	left := p.BytesTotal - p.BytesDone
	if p.BytesPerS <= 0 || left <= 0 {
		return "-"
	}
	secs := float64(left) / p.BytesPerS
	switch {
	case secs > float64(math.MaxInt64/int64(time.Second)):
		return "-"
	case secs < 1:
		return "<1s"
	}
	return shortDuration(time.Duration(secs * float64(time.Second)))
}

// rate is the host's throughput while it runs.
func rate(h api.HostStatus) string {
	p := h.Progress
	if phaseOf(h.Phase) != api.PhaseRunning || p == nil || p.BytesPerS <= 0 {
		return "-"
	}
	return api.FormatBytes(int64(p.BytesPerS)) + "/s"
}

// pad cuts or pads s, which may hold styles, to exactly w columns.
func pad(s string, w int) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		s = ansi.Truncate(s, w, "…")
		sw = ansi.StringWidth(s)
	}
	return s + strings.Repeat(" ", w-sw)
}

// colSep separates table columns.
const colSep = "  "

// fitWidths shrinks the columns listed in order (most expendable first) down to their
// minimum until the row fits avail; other columns keep their natural width.
func fitWidths(natural, minimum []int, order []int, avail int) []int {
	w := append([]int(nil), natural...)
	total := func() int {
		t := len(colSep) * (len(w) - 1)
		for _, x := range w {
			t += x
		}
		return t
	}
	for _, i := range order {
		over := total() - avail
		if over <= 0 {
			break
		}
		w[i] = max(minimum[i], w[i]-over)
	}
	return w
}

// joinRow pads cells to widths and trims the trailing blanks.
func joinRow(cells []string, widths []int) string {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteString(colSep)
		}
		if i == len(cells)-1 {
			// The last column is not padded.
			if ansi.StringWidth(c) > widths[i] {
				c = ansi.Truncate(c, widths[i], "…")
			}
			b.WriteString(c)
			continue
		}
		b.WriteString(pad(c, widths[i]))
	}
	return strings.TrimRight(b.String(), " ")
}

// wrapLines wraps text to width and keeps at most maxLines lines, ending a cut with "…".
func wrapLines(text string, width, maxLines int) []string {
	if width < 1 {
		width = 1
	}
	lines := strings.Split(ansi.Wrap(strings.TrimSpace(text), width, " /,"), "\n")
	if len(lines) > maxLines {
		lines = lines[:maxLines]
		last := lines[maxLines-1]
		if ansi.StringWidth(last) >= width {
			last = ansi.Truncate(last, width-1, "")
		}
		lines[maxLines-1] = last + "…"
	}
	return lines
}

// fit cuts every line to width and keeps at most height lines, so a frame never wraps or
// scrolls the terminal.
func fit(lines []string, width, height int) string {
	if height > 0 && len(lines) > height {
		lines = lines[:height]
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if ansi.StringWidth(l) > width {
			l = ansi.Truncate(l, width, "…")
		}
		out[i] = l
	}
	return strings.Join(out, "\n")
}
