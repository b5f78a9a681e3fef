package tui

import (
	"fmt"
	"strings"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// listModel is the state of the session list: the cursor, kept on the selected session
// across pictures, the first row shown, and the filter.
type listModel struct {
	cursor    int
	offset    int
	selected  sessionKey
	filter    string
	filtering bool // the filter is being typed
}

// listTop is the header, a blank line and the column header.
const listTop = 3

// listRows are the indices of the sessions the filter lets through, in the feed's order.
func (m Model) listRows() []int {
	f := strings.ToLower(m.list.filter)
	rows := make([]int, 0, len(m.sessions))
	for i, v := range m.sessions {
		if f == "" || strings.Contains(strings.ToLower(v.Name), f) || strings.Contains(strings.ToLower(v.Config), f) {
			rows = append(rows, i)
		}
	}
	return rows
}

// listBodyHeight is how many rows fit.
func (m Model) listBodyHeight(h int) int { return max(1, h-listTop-footerHeight) }

// sync puts the cursor back on the selected session, or keeps it in range when that
// session is gone or filtered out.
func (l listModel) sync(sessions []api.SessionView, rows []int) listModel {
	for i, r := range rows {
		if keyOf(sessions[r]) == l.selected {
			l.cursor = i
			return l
		}
	}
	l.cursor = min(max(l.cursor, 0), max(len(rows)-1, 0))
	if len(rows) > 0 {
		l.selected = keyOf(sessions[rows[l.cursor]])
	}
	return l
}

func (l listModel) move(delta int, sessions []api.SessionView, rows []int) listModel {
	if len(rows) == 0 {
		return l
	}
	l.cursor = min(max(l.cursor+delta, 0), len(rows)-1)
	l.selected = keyOf(sessions[rows[l.cursor]])
	return l
}

// scrollTo moves the window of rows so that the cursor is inside it.
func (l listModel) scrollTo(n, height int) listModel {
	if l.cursor < l.offset {
		l.offset = l.cursor
	}
	if l.cursor >= l.offset+height {
		l.offset = l.cursor - height + 1
	}
	l.offset = min(max(l.offset, 0), max(n-height, 0))
	return l
}

// listView draws the list: header lines, the visible rows, and the number of rows the
// body may take.
func (m Model) listView(w, h int) (top, body []string, bodyHeight int) {
	s := m.styles
	top = []string{m.headerLine("", ""), s.Counts.Render(m.counts())}
	bodyHeight = m.listBodyHeight(h)
	rows := m.listRows()
	switch {
	case !m.received:
		return append(top, s.Dim.Render("waiting for sessions…")), nil, bodyHeight
	case len(m.sessions) == 0:
		return append(top, s.Dim.Render("no sessions yet")), nil, bodyHeight
	case len(rows) == 0:
		return append(top, s.Dim.Render(fmt.Sprintf("no session matches %q", m.list.filter))), nil, bodyHeight
	}

	ns := m.multiNamespace()
	titles := []string{"NAME", "KIND", "CONFIG/TARGET", "PHASE", "HOSTS", "DURATION", "AGE"}
	if ns {
		titles = append([]string{"NAMESPACE"}, titles...)
	}
	now := m.opts.Now()
	cells := make([][]string, len(rows))
	for i, r := range rows {
		v := m.sessions[r]
		done, total := v.Done()
		c := []string{v.Name, string(v.Kind), v.Config, string(phaseOf(v.Phase)),
			fmt.Sprintf("%d/%d", done, total), sessionDuration(v, now), age(v, now)}
		if ns {
			c = append([]string{v.Namespace}, c...)
		}
		cells[i] = c
	}
	natural := make([]int, len(titles))
	minimum := make([]int, len(titles))
	for i, t := range titles {
		natural[i] = len(t)
		for _, c := range cells {
			natural[i] = max(natural[i], len([]rune(c[i])))
		}
		minimum[i] = natural[i]
	}
	name, config := 0, 2
	if ns {
		name, config = 1, 3
		minimum[0] = min(natural[0], 10)
	}
	minimum[name] = min(natural[name], 16)
	minimum[config] = min(natural[config], 10)
	order := []int{name, config}
	if ns {
		order = append(order, 0)
	}
	const gutter = 2
	widths := fitWidths(natural, minimum, order, w-gutter)
	phaseCol := config + 1

	top = append(top, "  "+s.Header.Render(joinRow(titles, widths)))
	l := m.list.scrollTo(len(rows), bodyHeight)
	end := min(l.offset+bodyHeight, len(rows))
	for i := l.offset; i < end; i++ {
		c := cells[i]
		if i == m.list.cursor {
			body = append(body, s.Cursor.Render(">")+" "+s.Selected.Render(joinRow(c, widths)))
			continue
		}
		styled := append([]string(nil), c...)
		styled[phaseCol] = s.Phase(phaseOf(m.sessions[rows[i]].Phase)).Render(c[phaseCol])
		body = append(body, "  "+joinRow(styled, widths))
	}
	return top, body, bodyHeight
}
