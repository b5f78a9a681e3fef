package tui

import "charm.land/bubbles/v2/key"

// KeyMap holds the key bindings of the views.
type KeyMap struct {
	Up       key.Binding
	Down     key.Binding
	PageUp   key.Binding
	PageDown key.Binding
	Open     key.Binding
	Back     key.Binding
	Filter   key.Binding
	Follow   key.Binding
	Trigger  key.Binding
	Quit     key.Binding
	// ForceQuit quits from every mode, also while typing a filter.
	ForceQuit key.Binding
	Yes       key.Binding
	No        key.Binding
	// Accept ends typing a filter and keeps it.
	Accept key.Binding
	// Erase deletes the last character of the filter.
	Erase key.Binding

	// move only labels the help line: Up and Down do the work.
	move key.Binding
}

// DefaultKeyMap returns the bindings of kubectl stash watch.
func DefaultKeyMap() KeyMap {
	return KeyMap{
		Up:        key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:      key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:    key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "page up")),
		PageDown:  key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "page down")),
		Open:      key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open")),
		Back:      key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Filter:    key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Follow:    key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "follow newest")),
		Trigger:   key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "trigger")),
		Quit:      key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
		ForceQuit: key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
		Yes:       key.NewBinding(key.WithKeys("y", "Y"), key.WithHelp("y", "yes")),
		No:        key.NewBinding(key.WithKeys("n", "N", "esc"), key.WithHelp("n", "no")),
		Accept:    key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply")),
		Erase:     key.NewBinding(key.WithKeys("backspace"), key.WithHelp("backspace", "erase")),
		move:      key.NewBinding(key.WithKeys("up", "down", "j", "k"), key.WithHelp("↑/↓ j/k", "move")),
	}
}

// helpKeys is what the help line shows in one mode.
type helpKeys []key.Binding

func (h helpKeys) ShortHelp() []key.Binding  { return h }
func (h helpKeys) FullHelp() [][]key.Binding { return [][]key.Binding{h} }
