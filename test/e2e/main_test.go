//go:build e2e

// Package e2e runs the built binaries against the project's own real cluster
// (make cluster-up). Run it with `make e2e`, which sets the environment below.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// env is what `make e2e` passes in.
type env struct {
	binDir     string // kubectl-stash and stash-job
	kubectlDir string // the cluster's own kubectl
	kubeconfig string // the cluster's admin kubeconfig
	image      string // the job image reference loaded into the cluster
	nodeIP     string // the cluster node's address (on lo): servers pods must reach listen there
	versitygw  string // the S3 server binary (test/objectstores/objectstores.sh installs it)
}

var e env

func TestMain(m *testing.M) {
	e = env{
		binDir:     os.Getenv("STASH_BIN"),
		kubectlDir: os.Getenv("STASH_KUBECTL_DIR"),
		kubeconfig: os.Getenv("KUBECONFIG"),
		image:      os.Getenv("STASH_IMAGE"),
		nodeIP:     os.Getenv("STASH_NODE_IP"),
		versitygw:  os.Getenv("STASH_VERSITYGW"),
	}
	if e.binDir == "" || e.kubectlDir == "" || e.kubeconfig == "" || e.image == "" {
		fmt.Fprintln(os.Stderr, "e2e: STASH_BIN, STASH_KUBECTL_DIR, KUBECONFIG and STASH_IMAGE must be set: run `make e2e` (or `make test`)")
		os.Exit(2)
	}
	if _, err := os.Stat(e.kubeconfig); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: no cluster: %v (run `make cluster-up`)\n", err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// clientset returns a client for the test cluster.
func clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// namespace creates a fresh namespace deleted when the test ends.
func namespace(t *testing.T, c kubernetes.Interface) string {
	t.Helper()
	ns, err := c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))[:min(20, len(t.Name()))] + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dump(t, ns.Name)
		}
		_ = c.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// kubectl runs the cluster's own kubectl with the test binaries first on PATH, as a user
// who installed the plugin would have it.
func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(e.kubectlDir, "kubectl"), args...)
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+e.kubeconfig,
		"PATH="+e.binDir+":"+e.kubectlDir+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// podsStuck returns an error when a pod of the Job waits for something that will never
// come (an image that is not loaded, a config it cannot read), so a test fails at once with
// the reason instead of at its timeout.
func podsStuck(ctx context.Context, c kubernetes.Interface, ns, job string) error {
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + job})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				switch w.Reason {
				case "ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError", "InvalidImageName":
					return fmt.Errorf("pod %s container %s: %s: %s", p.Name, cs.Name, w.Reason, w.Message)
				}
			}
		}
	}
	return nil
}

// dump logs what a failed test left in its namespace.
func dump(t *testing.T, ns string) {
	for _, args := range [][]string{
		{"-n", ns, "get", "all,events", "-o", "wide"},
		{"-n", ns, "logs", "--all-containers", "--prefix", "-l", "batch.kubernetes.io/job-name", "--tail", "50"},
	} {
		out, _ := kubectl(t, args...)
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
}
