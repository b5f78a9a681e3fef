//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// TestSecretsNeverShow: after a full backup, verification, restore, repository check and
// a failing session, with known secret values (the repository password and the S3
// credentials), none of them appears — raw or base64 — in any annotation, event, job or
// plugin log, -o yaml of a session, pod spec, or error message. Only the Secret holds them.
func TestSecretsNeverShow(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	url, creds := s3Server(t)
	repoSecret(t, c, ns, "repo", url, creds)
	data := hostDir(t)
	writeTree(t, data, map[string]string{"orders.csv": "1,teapot\n2,kettle\n", "notes/today.txt": "open at nine\n"})
	boundClaim(t, c, ns, "shop", data, corev1.ReadWriteOnce, true)
	deployment(t, c, ns, "shop", "shop", "/source/data")

	var said strings.Builder // everything the plugin printed, errors included
	run := func(ok bool, args ...string) string {
		t.Helper()
		out, err := stash(t, ns, args...)
		fmt.Fprintf(&said, "$ kubectl stash %s\n%s\n", strings.Join(args, " "), out)
		if ok && err != nil {
			t.Fatalf("kubectl stash %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	run(true, "backup", "deployment/shop", "--repo", "repo", "--paths", "/source/data", "--keep-last", "2")
	good := sessionName(t, run(true, "trigger", "shop-backup", "--wait"))
	run(true, "verify", "shop-backup", "--wait")
	run(true, "snapshots", "--repo", "repo", "-o", "wide")
	run(true, "check", "--repo", "repo", "--read-data")
	run(true, "restore", "deployment/shop", "--repo", "repo", "--from-config", "shop-backup", "--wait")
	run(true, "get", "bs", "-o", "yaml")
	run(true, "get", "restore", "-o", "yaml")
	run(true, "get", "bc", "-o", "yaml")
	run(true, "describe", "bs", good)
	run(true, "backup", "deployment/shop", "--repo", "repo", "--paths", "/source/data", "--dry-run=client", "-o", "yaml")
	// a session that fails: the password in the Secret no longer opens the repository
	sec, err := c.CoreV1().Secrets(ns).Get(context.Background(), "repo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wrong := "e2e wrong password " + ns
	sec.Data[api.SecretKeyPassword] = []byte(wrong)
	if _, err := c.CoreV1().Secrets(ns).Update(context.Background(), sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	bad := sessionName(t, run(false, "trigger", "shop-backup", "--wait"))
	run(false, "snapshots", "--repo", "repo")
	run(true, "describe", "bs", bad)

	// what the cluster holds, besides the Secret
	var held strings.Builder
	for _, what := range []string{"jobs,cronjobs,pods,serviceaccounts,roles,rolebindings,configmaps", "events"} {
		out, err := kubectl(t, "get", what, "-n", ns, "-o", "yaml")
		if err != nil {
			t.Fatalf("kubectl get %s: %v\n%s", what, err, out)
		}
		held.WriteString(out)
	}
	pods, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nlogs := 0
	for _, p := range pods.Items {
		for _, ct := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			b, err := c.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: ct.Name}).DoRaw(context.Background())
			if err == nil {
				fmt.Fprintf(&held, "--- logs of %s/%s\n%s\n", p.Name, ct.Name, b)
				nlogs++
			}
		}
	}
	if nlogs < 5 {
		t.Fatalf("only %d container logs read: the scan would prove nothing", nlogs)
	}
	if !strings.Contains(said.String(), "Succeeded") || !strings.Contains(held.String(), "kubectl-stash.io/host-status") {
		t.Fatal("the run did not produce the outputs the scan is for")
	}
	secrets := map[string]string{"the repository password": testPassword, "the wrong password": wrong}
	for k, v := range creds {
		secrets[k] = v
	}
	for what, v := range secrets {
		for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
			if i := strings.Index(said.String(), form); i >= 0 {
				t.Errorf("%s appears in the plugin's output: …%s…", what, excerpt(said.String(), i))
			}
			if i := strings.Index(held.String(), form); i >= 0 {
				t.Errorf("%s appears in the cluster's objects or logs: …%s…", what, excerpt(held.String(), i))
			}
		}
	}
	t.Logf("scanned %d bytes of plugin output and %d bytes of objects, events and %d container logs for %d secret values",
		said.Len(), held.Len(), nlogs, len(secrets))
	if t.Failed() {
		os.WriteFile(t.TempDir()+"/scan.txt", []byte(said.String()+held.String()), 0o644)
	}
}

func excerpt(s string, i int) string {
	return s[max(0, i-120):min(len(s), i+80)]
}
