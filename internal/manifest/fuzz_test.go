package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no input makes the parser, the mapping or the renderers panic or hang; a
// problem is always an *Error with a file name; and what a Set renders as parses again.
// The seed corpus is every sample, plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "samples", "*.yaml"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Parse([]Source{{Name: "fuzz.yaml", Data: data}}, Options{IgnoreUnsupported: len(data)%2 == 0})
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) || len(perr.Problems) == 0 {
				t.Fatalf("error of type %T: %v", err, err)
			}
			for _, p := range perr.Problems {
				if p.File != "fuzz.yaml" || p.Msg == "" {
					t.Fatalf("problem without a place or a message: %+v", p)
				}
			}
			return
		}
		for _, format := range []string{FormatStash, FormatKubeStash} {
			out, warnings, err := Render(set, format, false)
			if err != nil || len(warnings) > 0 {
				continue
			}
			if _, err := Parse([]Source{{Name: "rendered.yaml", Data: out}}, Options{}); err != nil {
				t.Fatalf("%s rendered from\n%s\ndoes not parse: %v\n%s", format, data, err, out)
			}
		}
		_, _, _ = RenderFlags(set, true)
	})
}
