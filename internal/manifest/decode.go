package manifest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// maxSteps bounds the nodes one document may make the decoder visit, aliases expanded: a
// few kilobytes of nested aliases must not cost minutes.
const maxSteps = 200_000

// pos is where a node starts in its file.
type pos struct{ line, col int }

// decoder decodes the nodes of one document into Go values strictly: an unknown field, a
// value of the wrong type, a duplicate key is a Problem with the field's path and line.
// Go values are described by their json tags, as the Kubernetes API and the Stash and
// KubeStash types are; a type with its own UnmarshalJSON (quantities, durations, times)
// gets the node as JSON. A field tagged unsup:"ID" is one the project cannot honour: set,
// it is a Problem marked Unsupported, with the reason unsupported[ID].
type decoder struct {
	d     *doc
	steps int
	// stopped is set once the step budget is spent: everything after is skipped.
	stopped bool
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

func (dc *decoder) step(n *yaml.Node, path string) bool {
	if dc.stopped {
		return false
	}
	dc.steps++
	if dc.steps > maxSteps {
		dc.stopped = true
		dc.d.problem(n, path, false, "the document is too large, or expands too many aliases (more than %d nodes): split it, or write the aliased parts out", maxSteps)
		return false
	}
	return true
}

// resolve follows aliases.
func (dc *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		if !dc.step(n, path) {
			return nil
		}
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// isEmpty reports whether a value says nothing: null, {}, [], "" or false.
func isEmpty(n *yaml.Node) bool {
	if isNull(n) {
		return true
	}
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		return len(n.Content) == 0
	case yaml.ScalarNode:
		return (n.Tag == "!!str" && n.Value == "") || (n.Tag == "!!bool" && n.Value == "false")
	}
	return false
}

// describe says what a node is, for messages: a mapping, a list, the string "yes".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	switch n.Tag {
	case "!!str":
		return fmt.Sprintf("the string %q", v)
	case "!!int", "!!float":
		return "the number " + v
	case "!!bool":
		return v
	case "!!null":
		return "null"
	}
	return fmt.Sprintf("%q", v)
}

// field is one json-tagged field of a struct, reached through embedded structs by index.
type field struct {
	name  string
	index []int
	// unsup is the reason id of a field the project cannot honour.
	unsup string
}

var fieldCache sync.Map // reflect.Type -> map[string]field

// fieldsOf lists a struct's fields by json name; embedded structs without a json name
// (`json:",inline"`) contribute theirs, as encoding/json does.
func fieldsOf(t reflect.Type) map[string]field {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]field)
	}
	m := map[string]field{}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), index...), i)
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft, idx)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, dup := m[name]; !dup {
				m[name] = field{name: name, index: idx, unsup: f.Tag.Get("unsup")}
			}
		}
	}
	walk(t, nil)
	fieldCache.Store(t, m)
	return m
}

// fieldByIndex is reflect's FieldByIndex, allocating embedded pointers on the way.
func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	plain := name != ""
	for _, r := range name {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return path + "." + name
	}
	return fmt.Sprintf("%s[%q]", path, name)
}

// typeName says what a Go type wants, for messages.
func typeName(t reflect.Type) string {
	switch t.String() {
	case "resource.Quantity":
		return "a quantity (like 512Mi or 2Gi)"
	case "v1.Duration":
		return "a duration (like 30s, 10m or 1h30m)"
	case "v1.Time":
		return "a time (RFC 3339)"
	case "intstr.IntOrString":
		return "a number or a string"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "a list"
	}
	return "a value"
}

func (dc *decoder) wrongType(n *yaml.Node, path string, t reflect.Type) {
	dc.d.problem(n, path, false, "want %s, got %s", typeName(t), describe(n))
}

// decode decodes n into v (settable), path being n's field path.
func (dc *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	n = dc.resolve(n, path)
	if n == nil || !dc.step(n, path) {
		return
	}
	dc.d.at[path] = pos{n.Line, n.Column}
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		before := len(*dc.d.problems)
		dc.decode(n, path, v.Elem())
		if len(*dc.d.problems) > before && (v.Elem().Kind() != reflect.Struct || reflect.PointerTo(v.Type().Elem()).Implements(jsonUnmarshaler)) {
			// a scalar that did not decode is not there: no second problem about its value
			v.Set(reflect.Zero(v.Type()))
		}
		return
	}
	if v.Kind() != reflect.Interface && reflect.PointerTo(v.Type()).Implements(jsonUnmarshaler) {
		val, ok := dc.generic(n, path)
		if !ok {
			return
		}
		b, err := json.Marshal(val)
		if err == nil {
			err = v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(b)
		}
		if err != nil {
			dc.d.problem(n, path, false, "want %s, got %s: %v", typeName(v.Type()), describe(n), err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			dc.wrongType(n, path, v.Type())
			return
		}
		fields := fieldsOf(v.Type())
		dc.mapping(n, path, func(key string, kn, vn *yaml.Node) {
			p := join(path, key)
			dc.d.keyAt[p] = pos{kn.Line, kn.Column}
			f, ok := fields[key]
			if !ok {
				dc.d.at[p] = pos{kn.Line, kn.Column}
				dc.d.problem(kn, p, false, "unknown field %q%s", key, suggest(key, fields))
				return
			}
			dc.decode(vn, p, fieldByIndex(v, f.index))
			if f.unsup != "" && !isEmpty(dc.resolve(vn, p)) {
				reason, ok := unsupported[f.unsup]
				if !ok {
					panic("manifest: no reason for unsupported field id " + f.unsup)
				}
				dc.d.problem(kn, p, true, "%s", reason)
			}
		})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			dc.wrongType(n, path, v.Type())
			return
		}
		if v.Type().Key().Kind() != reflect.String {
			panic("manifest: map key of type " + v.Type().Key().String())
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		dc.mapping(n, path, func(key string, kn, vn *yaml.Node) {
			dc.d.keyAt[join(path, key)] = pos{kn.Line, kn.Column}
			e := reflect.New(v.Type().Elem()).Elem()
			dc.decode(vn, join(path, key), e)
			v.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), e)
		})
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if n.Kind != yaml.ScalarNode {
				dc.wrongType(n, path, v.Type())
				return
			}
			b, err := base64.StdEncoding.DecodeString(n.Value)
			if err != nil {
				dc.d.problem(n, path, false, "want a base64 string (the data of a Secret; use stringData for plain text), got %s: %v", describe(n), err)
				return
			}
			v.SetBytes(b)
			return
		}
		if n.Kind != yaml.SequenceNode {
			dc.wrongType(n, path, v.Type())
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, en := range n.Content {
			dc.decode(en, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
		}
		v.Set(s)
	case reflect.String:
		// a bare number or boolean where a string is wanted is its text, as kubectl reads it
		if n.Kind != yaml.ScalarNode {
			dc.wrongType(n, path, v.Type())
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || err != nil {
			dc.wrongType(n, path, v.Type())
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			dc.wrongType(n, path, v.Type())
			return
		}
		if v.OverflowInt(i) {
			dc.d.problem(n, path, false, "%d is out of range for this field", i)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var i uint64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			dc.wrongType(n, path, v.Type())
			return
		}
		if v.OverflowUint(i) {
			dc.d.problem(n, path, false, "%d is out of range for this field", i)
			return
		}
		v.SetUint(i)
	case reflect.Float32, reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			dc.wrongType(n, path, v.Type())
			return
		}
		v.SetFloat(f)
	case reflect.Interface:
		val, ok := dc.generic(n, path)
		if ok && val != nil {
			v.Set(reflect.ValueOf(val))
		}
	default:
		panic("manifest: cannot decode into " + v.Type().String())
	}
}

// mapping calls fn for each key of a mapping node, refusing non-string keys, duplicate
// keys and merge keys.
func (dc *decoder) mapping(n *yaml.Node, path string, fn func(key string, kn, vn *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn := dc.resolve(n.Content[i], path)
		if kn == nil {
			return
		}
		if kn.Kind != yaml.ScalarNode || kn.Tag == "!!null" {
			dc.d.problem(kn, path, false, "a key of this mapping is %s: keys are strings", describe(kn))
			continue
		}
		if kn.Tag == "!!merge" {
			dc.d.problem(kn, join(path, kn.Value), false, "YAML merge keys (<<) are not read: write the fields out")
			continue
		}
		if seen[kn.Value] {
			dc.d.problem(kn, join(path, kn.Value), false, "%q is given twice in this mapping: keep one", kn.Value)
			continue
		}
		seen[kn.Value] = true
		fn(kn.Value, kn, n.Content[i+1])
	}
}

// generic turns a node into the value encoding/json would make of the same JSON: maps,
// slices, strings, bools, json.Numbers and nil.
func (dc *decoder) generic(n *yaml.Node, path string) (any, bool) {
	n = dc.resolve(n, path)
	if n == nil || !dc.step(n, path) {
		return nil, false
	}
	dc.d.at[path] = pos{n.Line, n.Column}
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		ok := true
		dc.mapping(n, path, func(key string, _, vn *yaml.Node) {
			v, good := dc.generic(vn, join(path, key))
			ok = ok && good
			m[key] = v
		})
		return m, ok
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for i, en := range n.Content {
			v, ok := dc.generic(en, fmt.Sprintf("%s[%d]", path, i))
			if !ok {
				return nil, false
			}
			s = append(s, v)
		}
		return s, true
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool":
			b, err := strconv.ParseBool(n.Value)
			if err != nil {
				var yb bool
				if n.Decode(&yb) != nil {
					dc.d.problem(n, path, false, "%s is not a boolean", describe(n))
					return nil, false
				}
				return yb, true
			}
			return b, true
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				var u uint64
				if err := n.Decode(&u); err != nil {
					dc.d.problem(n, path, false, "%s is not a number JSON can hold", describe(n))
					return nil, false
				}
				return json.Number(strconv.FormatUint(u, 10)), true
			}
			return json.Number(strconv.FormatInt(i, 10)), true
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				dc.d.problem(n, path, false, "%s is not a number JSON can hold", describe(n))
				return nil, false
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), true
		}
		return n.Value, true
	}
	dc.d.problem(n, path, false, "unexpected YAML node")
	return nil, false
}

// suggest names the known field closest to a misspelt one, or lists the known fields.
func suggest(key string, fields map[string]field) string {
	best, bestD := "", 3
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
		if d := distance(strings.ToLower(key), strings.ToLower(name)); d < bestD {
			best, bestD = name, d
		}
	}
	sort.Strings(names)
	if best != "" {
		return fmt.Sprintf(": did you mean %q?", best)
	}
	if len(names) <= 12 {
		return fmt.Sprintf(" (known fields: %s)", strings.Join(names, ", "))
	}
	return ": fix its name or remove it"
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
