//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

const testPassword = "e2e correct horse battery staple"

// hostDir is a directory on this machine that the cluster's node (the same machine) mounts
// into pods as a hostPath PersistentVolume. Pods write as uid 0, the test reads as root.
func hostDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "stash-e2e-pv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// boundClaim creates a hostPath PersistentVolume over dir, pre-bound to claim ns/name, and
// (unless only the volume is wanted, for a StatefulSet's claims) the claim itself.
func boundClaim(t *testing.T, c kubernetes.Interface, ns, name, dir string, mode corev1.PersistentVolumeAccessMode, createClaim bool) {
	t.Helper()
	ctx := context.Background()
	pvName := ns + "-" + name
	q := resource.MustParse("1Gi")
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: q},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{mode},
			StorageClassName:              "manual",
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: name},
		},
	}
	if _, err := c.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.CoreV1().PersistentVolumes().Delete(context.Background(), pvName, metav1.DeleteOptions{})
	})
	if !createClaim {
		return
	}
	sc := "manual"
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{mode},
			StorageClassName: &sc,
			VolumeName:       pvName,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q}},
		},
	}
	if _, err := c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pvc "+name+" Bound", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.ClaimBound, nil
	})
}

// fileRepository makes a repository on a hostPath PVC named "repo" and its Secret
// (pvc://repo), and returns the repository's URL as seen from this machine.
func fileRepository(t *testing.T, c kubernetes.Interface, ns string) string {
	t.Helper()
	dir := hostDir(t)
	boundClaim(t, c, ns, "repo", dir, corev1.ReadWriteMany, true)
	url := "file://" + dir
	stashJob(t, nil, "init", "--repo", url)
	repoSecret(t, c, ns, "repo", "pvc://repo/", nil)
	return url
}

// repoSecret creates a repository Secret as `kubectl stash repo create` writes it.
func repoSecret(t *testing.T, c kubernetes.Interface, ns, name, url string, extra map[string]string) {
	t.Helper()
	data := map[string]string{api.SecretKeyRepository: url, api.SecretKeyPassword: testPassword}
	for k, v := range extra {
		data[k] = v
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
		Labels: map[string]string{api.LabelManagedBy: api.ManagedByValue, api.LabelRepository: name}}, StringData: data}
	if _, err := c.CoreV1().Secrets(ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// s3Server runs VersityGW on the cluster node's address (pods reach it through the bridge)
// for the length of the test, and returns a repository URL in a fresh bucket and the
// credentials the drivers read.
func s3Server(t *testing.T) (url string, creds map[string]string) {
	t.Helper()
	url, creds, _ = s3ServerWithRoot(t)
	return url, creds
}

// s3ServerWithRoot is s3Server, also returning the repository's directory on this machine
// (the server stores objects as files), for tests that damage it.
func s3ServerWithRoot(t *testing.T) (url string, creds map[string]string, repoDir string) {
	t.Helper()
	if e.versitygw == "" || e.nodeIP == "" {
		t.Fatal("STASH_VERSITYGW and STASH_NODE_IP must be set: run `make e2e`")
	}
	root := hostDir(t)
	if err := os.Mkdir(filepath.Join(root, "backups"), 0o755); err != nil { // a posix bucket is a directory
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", e.nodeIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(e.versitygw, "--port", addr, "posix", root)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY=e2e-access", "ROOT_SECRET_KEY=e2e-secret-key")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("versitygw:\n%s", logs.String())
		}
	})
	waitFor(t, "versitygw on "+addr, 30*time.Second, func(context.Context) (bool, error) {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err == nil, nil
	})
	creds = map[string]string{"AWS_ACCESS_KEY_ID": "e2e-access", "AWS_SECRET_ACCESS_KEY": "e2e-secret-key"}
	prefix := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	url = fmt.Sprintf("s3://backups/%s?endpoint=http://%s&use_path_style=true&region=us-east-1&request_checksum_calculation=when_required&response_checksum_validation=when_required", prefix, addr)
	stashJob(t, creds, "init", "--repo", url)
	return url, creds, filepath.Join(root, "backups", prefix)
}

// stashJob runs the stash-job binary on this machine (the engine, as the jobs run it).
func stashJob(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(e.binDir, "stash-job"), args...)
	cmd.Env = append(os.Environ(), "STASH_PASSWORD="+testPassword)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("stash-job %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// stash runs `kubectl stash ARGS -n NS --image IMAGE` through kubectl, as a user would.
func stash(t *testing.T, ns string, args ...string) (string, error) {
	t.Helper()
	return kubectl(t, append([]string{"stash", "-n", ns, "--image", e.image}, args...)...)
}

func mustStash(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := stash(t, ns, args...)
	if err != nil {
		t.Fatalf("kubectl stash %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// writeTree writes files (path → content) below dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// randomFiles writes n files of size bytes of random (incompressible) data.
func randomFiles(t *testing.T, dir string, n, size int) {
	t.Helper()
	buf := make([]byte, size)
	for i := range n {
		if _, err := rand.Read(buf); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("blob-%03d.bin", i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree returns path → content of every regular file below dir.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func(context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 300*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// pauseContainer is a container that holds its volumes mounted and does nothing.
func pauseContainer(mounts ...corev1.VolumeMount) corev1.Container {
	return corev1.Container{Name: "app", Image: "registry.k8s.io/pause:3.10", ImagePullPolicy: corev1.PullNever, VolumeMounts: mounts}
}

func claimVolume(name, claim string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}
}

// deployment creates a Deployment of one pause pod mounting claim at mountPath, and waits
// until its pod runs (so a ReadWriteOnce volume has a node to pin the backup to).
func deployment(t *testing.T, c kubernetes.Interface, ns, name, claim, mountPath string) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{pauseContainer(corev1.VolumeMount{Name: "data", MountPath: mountPath})},
				Volumes:    []corev1.Volume{claimVolume("data", claim)},
			}},
		},
	}
	if _, err := c.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, ns, "app="+name, 1)
}

func waitRunning(t *testing.T, c kubernetes.Interface, ns, selector string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d running pod(s) %s", n, selector), 2*time.Minute, func(ctx context.Context) (bool, error) {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running >= n, nil
	})
}

// kubectlStdin runs the cluster's kubectl with stdin.
func kubectlStdin(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(e.kubectlDir, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.kubeconfig)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
