package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
)

func verifyCmd(t *testing.T, cs kubernetes.Interface, args ...string) (string, error) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-kubeconfig"))
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	g := &GlobalOptions{ConfigFlags: genericclioptions.NewConfigFlags(true), newClient: func() (kubernetes.Interface, error) { return cs, nil }}
	root := &cobra.Command{Use: "kubectl-stash", SilenceUsage: true, SilenceErrors: true}
	g.ConfigFlags.AddFlags(root.PersistentFlags())
	root.AddCommand(NewCmdVerify(g, streams))
	root.SetArgs(args)
	err := root.Execute()
	return out.String() + errOut.String(), err
}

// The seed's BackupVerificationSession names a KubeStash Snapshot object: refused with
// the reason, or with --ignore-unsupported the latest snapshots are verified.
func TestVerifyManifest(t *testing.T) {
	seed, err := os.ReadFile("../../internal/manifest/testdata/samples/seed-kubestash-backupverificationsession.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "bvs.yaml")
	os.WriteFile(f, seed, 0o644)
	if _, err := verifyCmd(t, nil, "verify", "-f", f, "--dry-run=client"); err == nil || !strings.Contains(err.Error(), `spec.snapshot "demo-storage-sample-backup-freq-backup-1730194080" names a KubeStash Snapshot object`) {
		t.Fatalf("seed as is: %v", err)
	}
	out, err := verifyCmd(t, nil, "verify", "-f", f, "--ignore-unsupported", "--dry-run=client", "-o", "yaml")
	if err != nil {
		t.Fatalf("--ignore-unsupported: %v\n%s", err, out)
	}
	for _, want := range []string{"verifying the latest snapshots instead", "kind: CronJob", `"invoker":"sample-backup"`, `"repository":"demo-storage"`, `"session":"freq-backup"`, `"snapshot":"latest"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := verifyCmd(t, nil, "verify", "-f", f, "--retries", "2"); err == nil || !strings.Contains(err.Error(), "--retries with -f") {
		t.Errorf("a flag the manifest replaces: %v", err)
	}
}
