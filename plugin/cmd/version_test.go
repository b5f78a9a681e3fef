package cmd

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-stash/kubectl-stash/internal/version"
)

func runStash(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	root := NewCmdStash(streams)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func TestVersion(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, out string)
	}{
		{"text shows three facts", []string{"version"}, func(t *testing.T, out string) {
			for _, want := range []string{"Version:   " + version.Version(), "GitCommit: " + version.GitCommit(), "JobImage:  " + version.DefaultImage()} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		}},
		{"json", []string{"version", "-o", "json"}, func(t *testing.T, out string) {
			var got version.Info
			if err := json.Unmarshal([]byte(out), &got); err != nil || got != version.Get() {
				t.Errorf("got %+v (%v), want %+v", got, err, version.Get())
			}
		}},
		{"image override", []string{"version", "--image", "example.com/x:1"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "JobImage:  example.com/x:1") {
				t.Errorf("override not shown:\n%s", out)
			}
		}},
		{"yaml", []string{"version", "-o", "yaml"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "jobImage: "+version.DefaultImage()) {
				t.Errorf("yaml lacks jobImage:\n%s", out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runStash(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, out)
		})
	}
}

func TestVersionRejectsUnknownOutput(t *testing.T) {
	_, _, err := runStash(t, "version", "-o", "xml")
	if err == nil || !strings.Contains(err.Error(), `--output "xml"`) {
		t.Fatalf("err = %v, want one naming --output \"xml\"", err)
	}
}

func TestHelpSaysKubectlStash(t *testing.T) {
	out, _, err := runStash(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "kubectl stash [command]") {
		t.Errorf("help does not use the kubectl stash prefix:\n%s", out)
	}
}
