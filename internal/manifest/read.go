package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Source is one manifest file: its name, for messages, and its content.
type Source struct {
	Name string
	Data []byte
}

// MaxSourceSize bounds one manifest file (or stdin).
const MaxSourceSize = 8 << 20

// Read reads what -f names: a file, a directory (its *.yaml, *.yml and *.json files, not
// its subdirectories, in name order) or "-" (stdin).
func Read(name string, stdin io.Reader) ([]Source, error) {
	if name == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, MaxSourceSize+1))
		if err != nil {
			return nil, fmt.Errorf("-f -: %w", err)
		}
		if len(b) > MaxSourceSize {
			return nil, fmt.Errorf("-f -: more than %d MiB on stdin", MaxSourceSize>>20)
		}
		return []Source{{Name: "<stdin>", Data: b}}, nil
	}
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("-f: %w", err)
	}
	if !fi.IsDir() {
		s, err := readFile(name)
		if err != nil {
			return nil, err
		}
		return []Source{s}, nil
	}
	entries, err := os.ReadDir(name)
	if err != nil {
		return nil, fmt.Errorf("-f: %w", err)
	}
	var out []Source
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		if e.IsDir() {
			continue
		}
		s, err := readFile(filepath.Join(name, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-f %s: the directory has no .yaml, .yml or .json file", name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func readFile(name string) (Source, error) {
	f, err := os.Open(name)
	if err != nil {
		return Source{}, fmt.Errorf("-f: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSourceSize+1))
	if err != nil {
		return Source{}, fmt.Errorf("-f: %w", err)
	}
	if len(b) > MaxSourceSize {
		return Source{}, fmt.Errorf("-f %s: larger than %d MiB", name, MaxSourceSize>>20)
	}
	return Source{Name: name, Data: b}, nil
}

// documents splits a source into its YAML documents (a v1 List's items are documents
// too). A syntax error is a Problem of the source, at its line.
func documents(src Source, problems *[]*Problem) []*doc {
	dec := yaml.NewDecoder(bytes.NewReader(src.Data))
	var out []*doc
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			*problems = append(*problems, syntaxProblem(src.Name, err))
			return out
		}
		root := &n
		if root.Kind == yaml.DocumentNode {
			if len(root.Content) == 0 {
				continue
			}
			root = root.Content[0]
		}
		if isNull(root) {
			continue // an empty document between ---
		}
		d := &doc{file: src.Name, root: root, at: map[string]pos{}, keyAt: map[string]pos{}, problems: problems}
		if root.Kind != yaml.MappingNode {
			d.problem(root, "", false, "a document is %s: want a Kubernetes object (a mapping with apiVersion and kind)", describe(root))
			continue
		}
		d.apiVer, d.kind = scalarField(root, "apiVersion"), scalarField(root, "kind")
		if d.apiVer == "v1" && (d.kind == "List" || strings.HasSuffix(d.kind, "List")) {
			out = append(out, listItems(d)...)
			continue
		}
		out = append(out, d)
	}
}

// listItems are the documents of a v1 List.
func listItems(list *doc) []*doc {
	var out []*doc
	for i := 0; i+1 < len(list.root.Content); i += 2 {
		k, v := list.root.Content[i], list.root.Content[i+1]
		switch k.Value {
		case "apiVersion", "kind", "metadata":
			continue
		case "items":
		default:
			list.problem(k, k.Value, false, "unknown field %q of a List (known: apiVersion, items, kind, metadata)", k.Value)
			continue
		}
		if v.Kind != yaml.SequenceNode {
			list.problem(v, "items", false, "want a list, got %s", describe(v))
			continue
		}
		for j, item := range v.Content {
			d := &doc{file: list.file, root: item, at: map[string]pos{}, keyAt: map[string]pos{}, problems: list.problems}
			if item.Kind != yaml.MappingNode {
				d.problem(item, fmt.Sprintf("items[%d]", j), false, "want a Kubernetes object, got %s", describe(item))
				continue
			}
			d.apiVer, d.kind = scalarField(item, "apiVersion"), scalarField(item, "kind")
			out = append(out, d)
		}
	}
	return out
}

func scalarField(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

// syntaxProblem turns a YAML parser error ("yaml: line 3: mapping values are not
// allowed in this context") into a Problem at that line.
func syntaxProblem(file string, err error) *Problem {
	msg := err.Error()
	p := &Problem{File: file}
	var line int
	if _, scanErr := fmt.Sscanf(strings.TrimPrefix(msg, "yaml: "), "line %d:", &line); scanErr == nil {
		p.Line, p.Column = line, 1
		_, rest, _ := strings.Cut(msg, fmt.Sprintf("line %d: ", line))
		msg = rest
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	p.Msg = "not valid YAML: " + msg
	return p
}
