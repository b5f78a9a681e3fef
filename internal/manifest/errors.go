package manifest

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a manifest: where (file, line, column, field path), why,
// and how to fix it.
type Problem struct {
	File   string
	Line   int
	Column int
	// Path is the field's path in its document: spec.target.rules[1].targetHosts.
	Path string
	// Msg is the reason and the fix.
	Msg string
	// Unsupported marks a field this project cannot honour (as opposed to a malformed
	// one): --ignore-unsupported turns it into a warning and the field is not applied.
	Unsupported bool
}

func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	if p.Unsupported {
		b.WriteString(" (--ignore-unsupported: warn and go on without it)")
	}
	return b.String()
}

// Warning is the text of a Problem turned into a warning by --ignore-unsupported.
func (p *Problem) Warning() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	}
	if p.Path != "" {
		loc += ": " + p.Path
	}
	return fmt.Sprintf("%s: not applied: %s", loc, p.Msg)
}

// Error lists every problem of the manifests read: nothing was created.
type Error struct {
	Problems []*Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	if len(lines) == 1 {
		return lines[0]
	}
	return fmt.Sprintf("%d problems in the manifests:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// sortProblems orders problems by file, then line.
func sortProblems(ps []*Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
}

// doc is one YAML document of a source, with the positions of its fields.
type doc struct {
	file string
	root *yaml.Node
	// at maps a field path to where its value starts, keyAt to where its key does, for
	// problems found after decoding.
	at       map[string]pos
	keyAt    map[string]pos
	apiVer   string
	kind     string
	name     string
	ns       string
	problems *[]*Problem
}

// problem records a problem at node n (nil: at path's position).
func (d *doc) problem(n *yaml.Node, path string, unsupported bool, format string, a ...any) {
	p := &Problem{File: d.file, Path: path, Msg: fmt.Sprintf(format, a...), Unsupported: unsupported}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	} else {
		at := d.pos(path)
		p.Line, p.Column = at.line, at.col
	}
	*d.problems = append(*d.problems, p)
}

// fail records a problem at a field path (the nearest decoded ancestor's position when
// the field itself is absent).
func (d *doc) fail(path, format string, a ...any) { d.problem(nil, path, false, format, a...) }

// unsup records a field the project cannot honour.
func (d *doc) unsup(path, format string, a ...any) { d.problem(nil, path, true, format, a...) }

// pos is where path's key, or its value (a list item), or its nearest ancestor's, starts.
func (d *doc) pos(path string) pos {
	for p := path; p != ""; {
		if at, ok := d.keyAt[p]; ok {
			return at
		}
		if at, ok := d.at[p]; ok {
			return at
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	if d.root != nil {
		return pos{d.root.Line, d.root.Column}
	}
	return pos{}
}

// what names the document in messages: "Stash BackupConfiguration shop-backup".
func (d *doc) what() string {
	flavour := "Stash"
	if strings.Contains(d.apiVer, "kubestash.com") {
		flavour = "KubeStash"
	}
	return fmt.Sprintf("%s %s %s", flavour, d.kind, d.name)
}
