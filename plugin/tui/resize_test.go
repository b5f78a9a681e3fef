package tui

import (
	"fmt"
	"testing"

	tea "charm.land/bubbletea/v2"
)

// TestResize lays the views out again at other sizes: no line wider than the terminal,
// no more lines than it has.
func TestResize(t *testing.T) {
	views := []struct {
		name string
		o    Options
	}{
		{"list", Options{}},
		{"running", Options{Open: "nightly-29384"}},
		{"failed", Options{Open: "nightly-29380"}},
		{"finished", Options{Open: "nightly-29383"}},
	}
	sizes := []tea.WindowSizeMsg{{Width: 100, Height: 30}, {Width: 60, Height: 12}, {Width: 140, Height: 50}, {Width: 30, Height: 6}}
	for _, v := range views {
		m := newTestModel(v.o, picture())
		for _, size := range sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", v.name, size.Width, size.Height), func(t *testing.T) {
				m = drive(m, size, kp("j"))
				checkFrame(t, m.View().Content, size.Width, size.Height)
			})
		}
	}
}
