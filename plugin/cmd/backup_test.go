package cmd

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-stash/kubectl-stash/plugin/jobs"
)

var update = flag.Bool("update", false, "rewrite golden files")

// runBackupClient runs `kubectl stash backup ARGS --dry-run=client`: no cluster is touched.
func runBackupClient(t *testing.T, args ...string) (string, error) {
	t.Helper()
	streams, _, out, _ := genericiooptions.NewTestIOStreams()
	root := NewCmdStash(streams)
	root.SetArgs(append([]string{"backup", "-n", "shop", "--image", "stash-job:test", "--dry-run=client"}, args...))
	root.SilenceErrors = true
	err := root.Execute()
	return out.String(), err
}

func TestBackupValidate(t *testing.T) {
	ok := []string{"deployment/web", "--repo", "repo", "--paths", "/source/data"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown kind", []string{"cronjob/web", "--repo", "r", "--paths", "/d"}, "KIND one of deployment, statefulset"},
		{"no name", []string{"deployment/", "--repo", "r", "--paths", "/d"}, "want KIND/NAME"},
		{"no repo", []string{"deployment/web", "--paths", "/d"}, "no repository: give --repo NAME"},
		{"no paths", []string{"deployment/web", "--repo", "r"}, "no paths: give --paths"},
		{"relative path", []string{"deployment/web", "--repo", "r", "--paths", "data"}, `--paths "data": want an absolute path`},
		{"bad cron", append(ok, "--schedule", "61 * * * *"), `--schedule "61 * * * *" is not a valid cron expression`},
		{"cron with 6 fields", append(ok, "--schedule", "0 0 1 * * *"), "want 5 fields"},
		{"negative keep", append(ok, "--keep-daily", "-1"), "--keep-daily -1: want 0 or more"},
		{"nice out of range", append(ok, "--nice", "20"), "--nice 20: want -20..19"},
		{"ionice class", append(ok, "--ionice-class", "4"), "--ionice-class 4"},
		{"bad quantity", append(ok, "--memory-limit", "lots"), `--memory-limit "lots"`},
		{"bad toleration", append(ok, "--toleration", "dedicated=backup:Sometimes"), "--toleration"},
		{"bad node selector", append(ok, "--node-selector", "zone"), "--node-selector \"zone\": want KEY=VALUE"},
		{"name too long", append(ok, "--name", strings.Repeat("a", 41)), "at most 40 characters"},
		{"bad output", append(ok, "-o", "table"), `--output "table": want yaml or json`},
		{"cache size and no cache", append(ok, "--cache-size", "1Gi", "--no-cache"), "--cache-size and --no-cache exclude each other"},
		{"tiny cache", append(ok, "--cache-size", "1Mi"), `--cache-size "1Mi": want a size of at least 16Mi`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runBackupClient(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("printed objects despite the error:\n%s", out)
			}
		})
	}
}

// TestBackupDryRunYAML pins the objects a configuration is made of (golden file; -update).
func TestBackupDryRunYAML(t *testing.T) {
	out, err := runBackupClient(t, "statefulset/db", "--repo", "s3-repo", "--paths", "/var/lib/db,/etc/db", "--exclude", "*.tmp",
		"--schedule", "30 1 * * *", "--keep-last", "3", "--keep-daily", "7", "--history-limit", "2", "--timeout", "1h",
		"--cpu-limit", "500m", "--memory-request", "128Mi", "--nice", "10", "--ionice-class", "3",
		"--node-selector", "kubernetes.io/os=linux", "--toleration", "dedicated=backup:NoSchedule", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", t.Name()+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(want, []byte(out)) {
		t.Errorf("dry-run YAML differs from %s (go test -update to accept):\n%s", golden, out)
	}
	for _, want := range []string{"kind: ServiceAccount", "kind: Role", "kind: RoleBinding", "kind: CronJob",
		"schedule: 30 1 * * *", "suspend: false", "resourceNames:\n  - db", "activeDeadlineSeconds: 3720"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run YAML lacks %q", want)
		}
	}
}

func TestBackupWithoutScheduleIsSuspended(t *testing.T) {
	out, err := runBackupClient(t, "pvc/uploads", "--repo", "r", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"schedule: " + jobs.NeverSchedule, "suspend: true", `"paths":["/data"]`, `"mountPath":"/data"`} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
}
