package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs (go test -update to accept):\n%s", file, got)
	}
}

func samples(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	return files
}

func parseFile(t *testing.T, file string, ignore bool) (*Set, error) {
	t.Helper()
	srcs, err := Read(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	// names in messages are the file's base name, as the user typed it
	for i := range srcs {
		srcs[i].Name = filepath.Base(srcs[i].Name)
	}
	return Parse(srcs, Options{IgnoreUnsupported: ignore})
}

func modelJSON(t *testing.T, s *Set) []byte {
	t.Helper()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// flavour is the format a sample is written in.
func flavour(file string) string {
	if strings.Contains(filepath.Base(file), "kubestash") {
		return FormatKubeStash
	}
	return FormatStash
}

// TestSamples: every sample (the seeds' BackupSession, RestoreSession with rules and
// BackupVerificationSession, and one of each other kind) parses into the model the
// golden file holds; written back in its own format and parsed again, it gives the same
// model; and its conversions to the other format and to the command line are pinned.
func TestSamples(t *testing.T) {
	for _, file := range samples(t) {
		base := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(base, func(t *testing.T) {
			set, err := parseFile(t, file, false)
			var perr *Error
			if errors.As(err, &perr) && perr.unsupportedOnly() {
				// rejected for what cannot be honoured: the error is pinned, and with
				// --ignore-unsupported the rest is mapped
				golden(t, base+".error.txt", []byte(err.Error()+"\n"))
				set, err = parseFile(t, file, true)
			}
			if err != nil {
				t.Fatal(err)
			}
			golden(t, base+".model.json", modelJSON(t, set))

			own := flavour(file)
			out, warnings, err := Render(set, own, false)
			if err != nil {
				t.Fatalf("render %s: %v", own, err)
			}
			if len(warnings) > 0 {
				t.Fatalf("render %s: %v", own, warnings)
			}
			golden(t, base+".rendered.yaml", out)
			if len(out) == 0 {
				return // everything was rejected
			}
			again, err := Parse([]Source{{Name: base + ".rendered.yaml", Data: out}}, Options{})
			if err != nil {
				t.Fatalf("the rendered manifest does not parse: %v\n%s", err, out)
			}
			set.Warnings = nil
			if !reflect.DeepEqual(stripOrigins(set), stripOrigins(again)) {
				t.Errorf("round trip changed the model:\nbefore %s\nafter  %s", modelJSON(t, set), modelJSON(t, again))
			}

			other := FormatKubeStash
			if own == FormatKubeStash {
				other = FormatStash
			}
			out, _, err = Render(set, other, false)
			if err != nil {
				out = []byte("# " + strings.ReplaceAll(err.Error(), "\n", "\n# ") + "\n")
			}
			golden(t, base+".convert-"+other+".yaml", out)
			script, _, err := RenderFlags(set, false)
			if err != nil {
				script = "# " + strings.ReplaceAll(err.Error(), "\n", "\n# ") + "\n"
			}
			golden(t, base+".flags.sh", []byte(script))
		})
	}
}

func (e *Error) unsupportedOnly() bool {
	for _, p := range e.Problems {
		if !p.Unsupported {
			return false
		}
	}
	return true
}

// stripOrigins leaves out where objects came from, which a round trip changes.
func stripOrigins(s *Set) *Set {
	c := *s
	c.Repositories = append([]Repository(nil), s.Repositories...)
	for i := range c.Repositories {
		c.Repositories[i].Origin = Origin{}
	}
	c.Backups = append([]Backup(nil), s.Backups...)
	for i := range c.Backups {
		c.Backups[i].Origin = Origin{}
	}
	c.Restores = append([]Restore(nil), s.Restores...)
	for i := range c.Restores {
		c.Restores[i].Origin = Origin{}
	}
	c.Triggers = append([]Trigger(nil), s.Triggers...)
	for i := range c.Triggers {
		c.Triggers[i].Origin = Origin{}
	}
	c.Verifications = append([]Verification(nil), s.Verifications...)
	for i := range c.Verifications {
		c.Verifications[i].Origin = Origin{}
	}
	return &c
}
