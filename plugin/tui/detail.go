package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// detailModel is the state of a session's detail: the session shown, the host under the
// cursor and the first body line shown.
type detailModel struct {
	key    sessionKey
	cursor int
	offset int
}

// Limits on how much of an error the detail shows; `kubectl stash get` has all of it.
const (
	maxSessionErrorLines = 3
	maxHostErrorLines    = 6
)

// detailFrame is a laid-out detail: the lines above the hosts, one block of lines per host
// (body[starts[i]:ends[i]]) and any trailing note.
type detailFrame struct {
	top    []string
	body   []string
	starts []int
	ends   []int
}

func (m Model) detailSession() (api.SessionView, bool) {
	return find(m.sessions, m.detail.key.matches)
}

func (m Model) detailBodyHeight(f detailFrame, h int) int {
	return max(1, h-len(f.top)-footerHeight)
}

func (d detailModel) move(delta, hosts int) detailModel {
	d.cursor = min(max(d.cursor+delta, 0), max(hosts-1, 0))
	return d
}

// scrollTo moves the window so that the cursor's host is inside it: its whole block when
// it fits, else its first lines.
func (d detailModel) scrollTo(f detailFrame, height int) detailModel {
	if d.cursor >= 0 && d.cursor < len(f.starts) {
		start, end := f.starts[d.cursor], f.ends[d.cursor]
		if end > d.offset+height {
			d.offset = end - height
		}
		if start < d.offset {
			d.offset = start
		}
	}
	d.offset = min(max(d.offset, 0), max(len(f.body)-height, 0))
	return d
}

// detailView draws the detail: header lines, the visible body lines, and the number of
// lines the body may take.
func (m Model) detailView(w, h int) (top, body []string, bodyHeight int) {
	s := m.styles
	v, ok := m.detailSession()
	if !ok {
		what := "session " + m.detail.key.name
		if m.follow.on() && m.detail.key.name == "" {
			what = "a session of " + m.follow.config
		}
		msg := "waiting for " + what + "…"
		if !m.received {
			msg = "waiting for sessions…"
		}
		top = []string{m.headerLine(m.detail.key.name, ""), "", s.Dim.Render(msg)}
		return top, nil, max(1, h-len(top)-footerHeight)
	}
	f := m.detailFrame(v, w)
	bodyHeight = m.detailBodyHeight(f, h)
	d := m.detail.scrollTo(f, bodyHeight)
	return f.top, f.body[d.offset:min(d.offset+bodyHeight, len(f.body))], bodyHeight
}

// detailFrame lays out session v for width w.
func (m Model) detailFrame(v api.SessionView, w int) detailFrame {
	s := m.styles
	now := m.opts.Now()
	var f detailFrame

	// The header: title, summary, session error, column header.
	f.top = append(f.top, m.headerLine(v.Name, ""))
	done, total := v.Done()
	label := func(l, val string) string { return s.Dim.Render(l) + " " + val }
	summary := []string{string(v.Kind) + " " + v.Name}
	if m.multiNamespace() {
		summary = append(summary, label("namespace", v.Namespace))
	}
	summary = append(summary,
		label(configLabel(v), v.Config),
		s.Phase(phaseOf(v.Phase)).Render(string(phaseOf(v.Phase))),
		label("hosts", fmt.Sprintf("%d/%d", done, total)),
		label("duration", sessionDuration(v, now)),
		label("age", age(v, now)))
	f.top = append(f.top, strings.Join(summary, "  "))
	if v.Status.Error != "" {
		for _, l := range wrapLines("error: "+v.Status.Error, w, maxSessionErrorLines) {
			f.top = append(f.top, s.Error.Render(l))
		}
	}
	f.top = append(f.top, "")

	if len(v.Hosts) == 0 {
		f.top = append(f.top, s.Dim.Render("no host has reported yet"))
		return f
	}

	// The host table: every column but the bar and the directory is as wide as its
	// content; the bar takes what is left, within bounds. The directory (or the time a
	// finished host took) is the last column when it gets room, else a line under the host.
	const gutter = 2
	titles := []string{"HOST", "PHASE", "PROGRESS", "BYTES", "FILES", "RATE", "ETA", "DIRECTORY"}
	const hostCol, progCol, dirCol = 0, 2, 7
	cells := make([][]string, len(v.Hosts))
	for i, h := range v.Hosts {
		c := make([]string, len(titles))
		c[0] = h.DisplayName()
		c[1] = string(phaseOf(h.Phase))
		c[3], c[4] = "-", "-"
		if p := h.Progress; p != nil {
			c[3] = api.FormatBytes(p.BytesDone) + "/" + api.FormatBytes(p.BytesTotal)
			c[4] = fmt.Sprintf("%d/%d", p.FilesDone, p.FilesTotal)
		}
		c[5], c[6] = rate(h), eta(h)
		switch {
		case phaseOf(h.Phase) == api.PhaseRunning && h.Progress != nil:
			c[dirCol] = h.Progress.Directory
		case phaseOf(h.Phase).Final() && h.Duration != "":
			c[dirCol] = "took " + h.Duration
		}
		cells[i] = c
	}
	widths := make([]int, len(titles))
	for i, t := range titles {
		widths[i] = len(t)
		for _, c := range cells {
			widths[i] = max(widths[i], ansi.StringWidth(c[i]))
		}
	}
	const (
		pctWidth = 5 // " 100%"
		minBar   = 10
		wideBar  = 16
		maxBar   = 30
		minDir   = 20
	)
	// On a narrow terminal, columns go before the bar gets too short: files, rate, bytes.
	show := []bool{true, true, true, true, true, true, true, true}
	fixed := func() int {
		n, cols := gutter, 0
		for i, wd := range widths {
			if show[i] && i != progCol && i != dirCol {
				n += wd
				cols++
			}
		}
		return n + len(colSep)*cols // the separators before the bar and after each column
	}
	for _, col := range []int{4, 5, 3} {
		if w-fixed() >= minBar+pctWidth {
			break
		}
		show[col] = false
	}
	rest := w - fixed()
	dirInline := rest-wideBar-pctWidth-len(colSep) >= min(widths[dirCol], minDir)
	show[dirCol] = dirInline
	barW := rest - pctWidth
	if dirInline {
		barW -= len(colSep) + min(widths[dirCol], minDir)
	}
	barW = min(max(barW, minBar), maxBar)
	if short := barW + pctWidth - rest; short > 0 {
		// Too narrow even for the shortest bar: shorten long host names.
		widths[hostCol] = max(min(widths[hostCol], 10), widths[hostCol]-short)
	}
	widths[progCol] = barW + pctWidth
	if dirInline {
		widths[dirCol] = max(rest-widths[progCol]-len(colSep), 0)
	}
	f.top = append(f.top, strings.Repeat(" ", gutter)+s.Header.Render(joinRow(pick(titles, show), pick(widths, show))))

	cur := min(m.detail.cursor, len(v.Hosts)-1)
	const indent = "    "
	snaps := m.snapshotLines(v, w-len(indent))
	restored := m.restoredLines(v, w-len(indent))
	for i, h := range v.Hosts {
		f.starts = append(f.starts, len(f.body))
		c := append([]string(nil), cells[i]...)
		ph := phaseOf(h.Phase)
		c[1] = s.Phase(ph).Render(c[1])
		if frac, ok := hostFraction(h); ok {
			c[progCol] = m.bar(frac, barW) + fmt.Sprintf(" %3d%%", int(frac*100))
		} else {
			c[progCol] = "-"
		}
		where := c[dirCol]
		if ph.Final() {
			where = s.Dim.Render(where)
		}
		c[dirCol] = where
		if dirInline && !ph.Final() {
			c[dirCol] = cutLeft(where, widths[dirCol])
		}
		mark := "  "
		if i == cur {
			mark = s.Cursor.Render(">") + " "
			c[hostCol] = s.Selected.Render(c[hostCol])
		}
		f.body = append(f.body, mark+joinRow(pick(c, show), pick(widths, show)))

		if !dirInline && where != "" {
			if !ph.Final() {
				where = s.Dim.Render("in ") + cutLeft(cells[i][dirCol], w-len(indent)-3)
			}
			f.body = append(f.body, indent+where)
		}
		if h.Error != "" {
			for _, l := range wrapLines("error: "+h.Error, w-len(indent), maxHostErrorLines) {
				f.body = append(f.body, indent+s.Error.Render(l))
			}
		}
		if ph.Final() {
			for _, l := range snaps[i] {
				f.body = append(f.body, indent+l)
			}
			for _, l := range restored[i] {
				f.body = append(f.body, indent+l)
			}
			if h.Retention != "" {
				f.body = append(f.body, indent+label("retention", h.Retention))
			}
		}
		if h.Message != "" {
			for _, l := range wrapLines(h.Message, w-len(indent), maxHostErrorLines) {
				f.body = append(f.body, indent+s.Dim.Render(l))
			}
		}
		f.ends = append(f.ends, len(f.body))
	}
	if missing := total - len(v.Hosts); missing > 0 {
		word := "hosts have"
		if missing == 1 {
			word = "host has"
		}
		f.body = append(f.body, "  "+s.Dim.Render(fmt.Sprintf("%d more %s not reported yet", missing, word)))
		// The last host's block takes the note, so moving to it shows the note too.
		f.ends[len(f.ends)-1] = len(f.body)
	}
	return f
}

// configLabel names what a session's Config is: a backup session's configuration, or a
// restore session's target.
func configLabel(v api.SessionView) string {
	if v.Kind == api.KindRestore {
		return "target"
	}
	return "config"
}

// snapshotLines draws each host's snapshots, their columns aligned across the session;
// the "snapshot" label goes when the lines would not fit w.
func (m Model) snapshotLines(v api.SessionView, w int) [][]string {
	rows := make([][][]string, len(v.Hosts))
	for i, h := range v.Hosts {
		for _, sn := range h.Snapshots {
			fs := sn.FileStats
			rows[i] = append(rows[i], []string{sn.Name, sn.Directory, fmt.Sprint(fs.NewFiles), fmt.Sprint(fs.ModifiedFiles),
				fmt.Sprint(fs.UnmodifiedFiles), sn.Size, sn.Uploaded})
		}
	}
	return m.statLines(rows, []string{"snapshot", "", "new", "modified", "unmodified", "size", "uploaded"}, []int{40, 30}, w)
}

// restoredLines draws what each restore host restored: snapshot, path, the host it came
// from, files and size, and the files it left (identical, kept by the overwrite mode) or
// deleted when there are any; the "restored" label goes when the lines would not fit w.
func (m Model) restoredLines(v api.SessionView, w int) [][]string {
	rows := make([][][]string, len(v.Hosts))
	for i, h := range v.Hosts {
		for _, r := range h.Restored {
			var left []string
			for _, n := range []struct {
				n    int64
				what string
			}{{r.Skipped, "identical"}, {r.Kept, "kept"}, {r.Deleted, "deleted"}} {
				if n.n > 0 {
					left = append(left, fmt.Sprintf("%d %s", n.n, n.what))
				}
			}
			rows[i] = append(rows[i], []string{r.Snapshot, r.Path, r.SourceHost, fmt.Sprintf("%d files", r.Files), r.Size, strings.Join(left, ", ")})
		}
	}
	return m.statLines(rows, []string{"restored", "", "from", "", "", ""}, []int{40, 30, 20}, w)
}

// statLines lays out rows of labelled cells, per host, their columns aligned across the
// session and the first caps[i] columns at most caps[i] wide; the first label goes when
// the lines would not fit w.
func (m Model) statLines(rows [][][]string, labels []string, caps []int, w int) [][]string {
	s := m.styles
	nCols := len(labels)
	widths := make([]int, nCols)
	for _, hr := range rows {
		for _, r := range hr {
			for i, c := range r {
				widths[i] = max(widths[i], ansi.StringWidth(c))
			}
		}
	}
	for i, c := range caps {
		widths[i] = min(widths[i], c)
	}
	labels = append([]string(nil), labels...)
	total := len(colSep) * (nCols - 1)
	for i, wd := range widths {
		total += wd
		if labels[i] != "" {
			total += len(labels[i]) + 1
		}
	}
	if total > w {
		labels[0] = ""
	}
	out := make([][]string, len(rows))
	for i, hr := range rows {
		for _, r := range hr {
			var parts []string
			for j, c := range r {
				c = pad(c, widths[j])
				if j == nCols-1 {
					c = strings.TrimRight(c, " ")
				}
				if labels[j] != "" {
					c = s.Dim.Render(labels[j]) + " " + c
				}
				parts = append(parts, c)
			}
			out[i] = append(out[i], strings.TrimRight(strings.Join(parts, colSep), " "))
		}
	}
	return out
}

// pick keeps the columns shown.
func pick[T any](cols []T, show []bool) []T {
	var out []T
	for i, c := range cols {
		if show[i] {
			out = append(out, c)
		}
	}
	return out
}

// bar draws a progress bar of width w.
func (m Model) bar(frac float64, w int) string {
	full := int(frac * float64(w))
	if frac >= 1 {
		full = w
	}
	full = min(max(full, 0), w)
	return m.styles.BarFull.Render(strings.Repeat("█", full)) + m.styles.BarEmpty.Render(strings.Repeat("░", w-full))
}

// cutLeft shortens a path to w columns keeping its end, the part that changes.
func cutLeft(s string, w int) string {
	sw := ansi.StringWidth(s)
	if sw <= w {
		return s
	}
	if w <= 1 {
		return ansi.Truncate(s, w, "")
	}
	return "…" + ansi.TruncateLeft(s, sw-w+1, "")
}
