package cmd

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

func repoCareCmd(t *testing.T, cs kubernetes.Interface, args ...string) (string, error) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-kubeconfig"))
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	g := &GlobalOptions{ConfigFlags: genericclioptions.NewConfigFlags(true), newClient: func() (kubernetes.Interface, error) { return cs, nil }}
	root := &cobra.Command{Use: "kubectl-stash", SilenceUsage: true, SilenceErrors: true}
	g.ConfigFlags.AddFlags(root.PersistentFlags())
	for _, c := range []*cobra.Command{NewCmdForget(g, streams), NewCmdPrune(g, streams), NewCmdCheck(g, streams), NewCmdKey(g, streams), NewCmdUnlock(g, streams)} {
		root.AddCommand(c)
	}
	root.SetArgs(append(args, "-n", "prod"))
	err := root.Execute()
	return out.String() + errOut.String(), err
}

// The repository commands run from this machine with the Secret's URL and password.
func TestRepoCareLocal(t *testing.T) {
	cs, sn := restoreFixture(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"check", "--repo", "s3", "--read-data"}, "no problems found"},
		{[]string{"forget", "--repo", "s3", "--keep-last", "1", "--dry-run"}, sn.ShortID},
		{[]string{"prune", "--repo", "s3", "--dry-run"}, "reclaim"},
		{[]string{"key", "list", "--repo", "s3"}, "*"},
		{[]string{"unlock", "--repo", "s3"}, "removed 0 lock(s)"},
	} {
		out, err := repoCareCmd(t, cs, c.args...)
		if err != nil || !strings.Contains(out, c.want) {
			t.Errorf("%v: %v, want %q in:\n%s", c.args, err, c.want, out)
		}
	}
}

func TestRepoCareErrors(t *testing.T) {
	cs, _ := restoreFixture(t)
	if _, err := cs.CoreV1().Secrets("prod").Create(t.Context(), repository.NewSecret("onpvc", "prod", "pvc://claim/repo", "pw", nil), metav1CreateOptions()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"check"}, "give --repo NAME"},
		{[]string{"check", "--repo", "onpvc"}, "add --via-job"},
		{[]string{"key", "frob", "--repo", "s3"}, `key "frob": want list, add, remove or passwd`},
		{[]string{"key", "add", "--repo", "s3"}, "needs --new-password-file"},
		{[]string{"key", "add", "--repo", "s3", "--new-password-file", "x", "--via-job"}, "runs from this machine only"},
		{[]string{"check", "--repo", "s3", "--read-data-subset", "lots"}, "want a percentage"},
	} {
		if _, err := repoCareCmd(t, cs, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

func metav1CreateOptions() metav1.CreateOptions { return metav1.CreateOptions{} }
