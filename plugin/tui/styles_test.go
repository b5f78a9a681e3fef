package tui

import (
	"regexp"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
)

// TestStylesByProfile: no escape at all without a terminal, no colour with NO_COLOR
// (colorprofile.Ascii), colour otherwise.
func TestStylesByProfile(t *testing.T) {
	tests := []struct {
		name       string
		profile    colorprofile.Profile
		wantEscape bool
		wantColour bool
	}{
		{"NoTTY", colorprofile.NoTTY, false, false},
		{"Ascii (NO_COLOR)", colorprofile.Ascii, true, false},
		{"ANSI256", colorprofile.ANSI256, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(Options{Open: "nightly-29380"}, picture())
			m = drive(m, tea.ColorProfileMsg{Profile: tt.profile})
			view := m.View().Content
			if got := strings.Contains(view, "\x1b["); got != tt.wantEscape {
				t.Errorf("escape sequences: %v, want %v", got, tt.wantEscape)
			}
			if colour := sgrColour.MatchString(view); colour != tt.wantColour {
				t.Errorf("colour: %v, want %v:\n%q", colour, tt.wantColour, view)
			}
		})
	}
}

// TestStylesFollowBackground rebuilds the styles when the terminal reports a light
// background.
func TestStylesFollowBackground(t *testing.T) {
	m := newTestModel(Options{}, picture())
	m = drive(m, tea.ColorProfileMsg{Profile: colorprofile.TrueColor})
	dark := m.View().Content
	m = drive(m, tea.BackgroundColorMsg{Color: colorprofile.TrueColor.Convert(white{})})
	if m.dark {
		t.Fatal("a white background was taken for a dark one")
	}
	if m.View().Content == dark {
		t.Error("the view looks the same on a light background")
	}
}

// sgrColour matches an SGR sequence that sets a foreground or background colour.
var sgrColour = regexp.MustCompile(`\x1b\[([0-9]+;)*(3[0-8]|4[0-8]|9[0-7]|10[0-7])(;[0-9]+)*m`)

type white struct{}

func (white) RGBA() (r, g, b, a uint32) { return 0xffff, 0xffff, 0xffff, 0xffff }
