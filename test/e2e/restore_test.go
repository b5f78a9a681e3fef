//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// s3Repository starts an S3 server and makes the repository Secret "s3" for it.
func s3Repository(t *testing.T, c kubernetes.Interface, ns string) {
	t.Helper()
	url, creds := s3Server(t)
	repoSecret(t, c, ns, "s3", url, creds)
}

// getRestoreSession reads a restore session as `kubectl stash get restoresession -o json`.
func getRestoreSession(t *testing.T, ns, name string) (phase string, total int, stats map[string]map[string]any) {
	t.Helper()
	out := mustStash(t, ns, "get", "restoresession", name, "-o", "json")
	var doc struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Status     struct {
			Phase           string           `json:"phase"`
			TotalHosts      int              `json:"totalHosts"`
			SessionDuration string           `json:"sessionDuration"`
			Stats           []map[string]any `json:"stats"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("get restoresession -o json: %v\n%s", err, out)
	}
	if doc.APIVersion != "stash.appscode.com/v1beta1" || doc.Kind != "RestoreSession" {
		t.Errorf("get restoresession: apiVersion %q kind %q, want the seed's", doc.APIVersion, doc.Kind)
	}
	if doc.Status.Phase == "Succeeded" && doc.Status.SessionDuration == "" {
		t.Errorf("a finished restore session has no sessionDuration:\n%s", out)
	}
	stats = map[string]map[string]any{}
	for _, s := range doc.Status.Stats {
		stats[s["hostname"].(string)] = s
	}
	return doc.Status.Phase, doc.Status.TotalHosts, stats
}

// statefulSet creates a StatefulSet of pause pods whose claim template "source-data" is
// mounted at /source/data (the seed's names); its claims must be bound to volumes already.
func statefulSet(t *testing.T, c kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	sc := "manual"
	labels := map[string]string{"app": name}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels}, ServiceName: name,
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{pauseContainer(corev1.VolumeMount{Name: "source-data", MountPath: "/source/data"})}}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "source-data"}, Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: &sc,
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}},
		},
	}
	if _, err := c.AppsV1().StatefulSets(ns).Create(context.Background(), sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, ns, "app="+name, int(replicas))
}

const claimTemplate = `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: source-data
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  resources:
    requests:
      storage: 1Gi
`

// TestRestoreSeedSampleIntoNewStatefulSet is the seed's sample: a StatefulSet of 3 replicas
// with different data is backed up, then restored into a new StatefulSet of 5 replicas with
// the seed's rules: host-0..2 get their own data, host-3 and host-4 get host-1's. Then a
// rule that matches only one host of the old StatefulSet leaves the others untouched.
func TestRestoreSeedSampleIntoNewStatefulSet(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	s3Repository(t, c, ns)
	trees := map[int]map[string]string{}
	oldDirs := map[int]string{}
	for i := range 3 {
		oldDirs[i] = hostDir(t)
		trees[i] = map[string]string{"replica.txt": fmt.Sprintf("I am sample-%d\n", i),
			fmt.Sprintf("only-%d/data.bin", i): strings.Repeat(fmt.Sprint(i), 5000*(i+1))}
		writeTree(t, oldDirs[i], trees[i])
		boundClaim(t, c, ns, fmt.Sprintf("source-data-sample-%d", i), oldDirs[i], corev1.ReadWriteOnce, false)
	}
	statefulSet(t, c, ns, "sample", 3)
	mustStash(t, ns, "backup", "statefulset/sample", "--repo", "s3", "--paths", "/source/data")
	if out, err := stash(t, ns, "trigger", "sample-backup", "--wait"); err != nil {
		t.Fatalf("trigger --wait: %v\n%s", err, out)
	}

	// the volumes of the StatefulSet to come: empty, bound to their claims by name
	newDirs := map[int]string{}
	for i := range 5 {
		newDirs[i] = hostDir(t)
		boundClaim(t, c, ns, fmt.Sprintf("source-data-recovered-%d", i), newDirs[i], corev1.ReadWriteOnce, false)
	}
	tmpl := filepath.Join(t.TempDir(), "claim.yaml")
	if err := os.WriteFile(tmpl, []byte(claimTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := stash(t, ns, "restore", "statefulset/recovered", "--repo", "s3", "--from-config", "sample-backup",
		"--name", "statefulset-restore", "--replicas", "5", "--volume-claim-template", tmpl, "--volume-mount", "source-data:/source/data",
		"--rule", "targetHosts=host-3,host-4;sourceHost=host-1;paths=/source/data",
		"--rule", "targetHosts=;sourceHost=;paths=/source/data", "--wait")
	if err != nil {
		t.Fatalf("restore --wait: %v\n%s", err, out)
	}
	t.Logf("restore into a new StatefulSet of 5 replicas: %s\n%s", time.Since(start).Round(time.Millisecond), out)
	for _, want := range []string{"persistentvolumeclaim/source-data-recovered-4 created", "restoresession statefulset-restore created",
		"host-3 <- /source/data of ", "session statefulset-restore: Succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore output lacks %q:\n%s", want, out)
		}
	}
	phase, total, stats := getRestoreSession(t, ns, "statefulset-restore")
	if phase != "Succeeded" || total != 5 || len(stats) != 5 {
		t.Fatalf("restore session: phase %s totalHosts %d stats %v, want Succeeded, 5, 5", phase, total, stats)
	}
	for i := range 5 {
		host := fmt.Sprintf("host-%d", i)
		if s := stats[host]; s["phase"] != "Succeeded" || s["duration"] == "" {
			t.Errorf("%s: %v", host, s)
		}
		want := trees[i]
		if i >= 3 {
			want = trees[1]
		}
		// the restore pods wrote into the claims the new pods will mount: read them on
		// the node, file by file
		if got := readTree(t, newDirs[i]); !reflect.DeepEqual(got, want) {
			t.Errorf("%s of the new StatefulSet holds %v, want %v", host, got, want)
		}
	}
	// the StatefulSet created now starts on the restored claims
	statefulSet(t, c, ns, "recovered", 5)
	for i := range 5 {
		pvc, err := c.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), fmt.Sprintf("source-data-recovered-%d", i), metav1.GetOptions{})
		if err != nil || pvc.Labels[api.LabelRestoreSession] != "statefulset-restore" {
			t.Errorf("claim %d: %v %v", i, err, pvc.Labels)
		}
	}
	if out := mustStash(t, ns, "get", "restore"); !regexp.MustCompile(`statefulset-restore\s+statefulset/recovered\s+s3\s+Succeeded\s+5/5`).MatchString(out) {
		t.Errorf("get restore:\n%s", out)
	}
	if out := mustStash(t, ns, "describe", "restore", "statefulset-restore"); !strings.Contains(out, "host-1") || !strings.Contains(out, "/source/data") {
		t.Errorf("describe restore:\n%s", out)
	}

	// A rule for host-1 only: host-0 and host-2 get nothing, and say so.
	out, err = stash(t, ns, "restore", "statefulset/sample", "--repo", "s3", "--from-config", "sample-backup", "--name", "only-host-1",
		"--rule", "targetHosts=host-1;sourceHost=host-0", "--wait")
	if err != nil {
		t.Fatalf("restore with one rule: %v\n%s", err, out)
	}
	phase, total, stats = getRestoreSession(t, ns, "only-host-1")
	if phase != "Succeeded" || total != 3 {
		t.Fatalf("phase %s totalHosts %d, want Succeeded 3", phase, total)
	}
	for _, h := range []string{"host-0", "host-2"} {
		if s := stats[h]; s["phase"] != "Skipped" || !strings.Contains(fmt.Sprint(s["message"]), "no restore rule matches "+h) {
			t.Errorf("%s: %v, want Skipped saying no rule matches", h, s)
		}
	}
	if s := stats["host-1"]; s["phase"] != "Succeeded" {
		t.Errorf("host-1: %v", s)
	}
	got := readTree(t, oldDirs[1])
	if got["replica.txt"] != "I am sample-0\n" || got["only-0/data.bin"] != trees[0]["only-0/data.bin"] || got["only-1/data.bin"] != trees[1]["only-1/data.bin"] {
		t.Errorf("host-1 after restoring host-0's data (no --delete): %v", keysOf(got))
	}
	if !reflect.DeepEqual(readTree(t, oldDirs[0]), trees[0]) || !reflect.DeepEqual(readTree(t, oldDirs[2]), trees[2]) {
		t.Errorf("a host no rule matches was changed")
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRestoreDeploymentInPlaceAndIntoNewPVC: a Deployment's volume restored in place with
// --scale-down (the app stopped, then back at its replica count), then into a new PVC; and
// bad input fails with one error and creates nothing.
func TestRestoreDeploymentInPlaceAndIntoNewPVC(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	s3Repository(t, c, ns)
	dir := hostDir(t)
	original := map[string]string{"index.html": "<h1>shop</h1>\n", "orders/2026.csv": "id,total\n1,9.99\n", "keep.txt": "same\n"}
	writeTree(t, dir, original)
	boundClaim(t, c, ns, "shop-data", dir, corev1.ReadWriteOnce, true)
	deployment(t, c, ns, "shop", "shop-data", "/source/data")
	two := int32(2)
	if _, err := c.AppsV1().Deployments(ns).Patch(context.Background(), "shop", "application/merge-patch+json", []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, ns, "app=shop", int(two))
	mustStash(t, ns, "backup", "deployment/shop", "--repo", "s3", "--paths", "/source/data")
	if out, err := stash(t, ns, "trigger", "shop-backup", "--wait"); err != nil {
		t.Fatalf("trigger: %v\n%s", err, out)
	}
	// the damage: a file changed, one added, one removed
	writeTree(t, dir, map[string]string{"index.html": "defaced\n", "malware.php": "<?php ?>\n"})
	os.Remove(filepath.Join(dir, "orders/2026.csv"))

	out, err := stash(t, ns, "restore", "deployment/shop", "--repo", "s3", "--from-config", "shop-backup", "--scale-down", "--delete",
		"--name", "shop-in-place", "--wait")
	if err != nil {
		t.Fatalf("restore --scale-down: %v\n%s", err, out)
	}
	if got := readTree(t, dir); !reflect.DeepEqual(got, original) {
		t.Errorf("in place: %v, want %v", got, original)
	}
	d, err := c.AppsV1().Deployments(ns).Get(context.Background(), "shop", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 2 || d.Annotations[api.AnnotationScaledDownFrom] != "" {
		t.Fatalf("deployment after the restore: %v replicas %d annotations %v, want 2 and no record", err, *d.Spec.Replicas, d.Annotations)
	}
	waitRunning(t, c, ns, "app=shop", 2)
	logs, _ := kubectl(t, "-n", ns, "logs", "job/shop-in-place")
	if !strings.Contains(logs, "scaled deployment/shop down from 2 to 0 replicas") || !strings.Contains(logs, "scaled deployment/shop back up to 2 replicas") {
		t.Errorf("session log does not show the scale-down and back:\n%s", logs)
	}

	// into a new PVC, created from --size; the volume takes /source/data's place
	copyDir := hostDir(t)
	boundClaim(t, c, ns, "shop-copy", copyDir, corev1.ReadWriteOnce, false)
	out, err = stash(t, ns, "restore", "pvc/shop-copy", "--repo", "s3", "--source-target", "deployment/shop", "--size", "1Gi",
		"--storage-class", "manual", "--name", "shop-copy", "--wait")
	if err != nil {
		t.Fatalf("restore into a new pvc: %v\n%s", err, out)
	}
	if got := readTree(t, copyDir); !reflect.DeepEqual(got, original) {
		t.Errorf("new pvc: %v, want %v", got, original)
	}

	// bad input: one clear error each, nothing created
	before := objectCount(t, c, ns)
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"restore", "deployment/shop", "--repo", "s3", "--snapshot", "deadbeef"}, `snapshot "deadbeef" is not in the repository s3: see kubectl stash snapshots --repo s3`},
		{[]string{"restore", "deployment/shop", "--repo", "s3", "--paths", "/not/backed/up"}, "holds /not/backed/up"},
		{[]string{"restore", "statefulset/ghost", "--repo", "s3", "--source-target", "deployment/shop"}, "give --replicas N and --volume-claim-template FILE"},
		{[]string{"restore", "deployment/shop", "--repo", "s3", "--rule", "sourceHost=host-0", "--rule", "paths=/source/data"}, "both have empty targetHosts"},
	} {
		out, err := stash(t, ns, bad.args...)
		if err == nil || !strings.Contains(out, bad.want) {
			t.Errorf("%v: err %v, want an error with %q:\n%s", bad.args, err, bad.want, out)
		}
		if lines := strings.Count(strings.TrimSpace(out), "\n"); lines > 3 {
			t.Errorf("%v: %d lines of output, want one clear error:\n%s", bad.args, lines+1, out)
		}
	}
	if after := objectCount(t, c, ns); after != before {
		t.Errorf("bad input created objects: %s before, %s after", before, after)
	}
}

// objectCount summarises the Jobs, claims, ServiceAccounts and Roles of ns.
func objectCount(t *testing.T, c kubernetes.Interface, ns string) string {
	t.Helper()
	ctx := context.Background()
	j, err1 := c.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	p, err2 := c.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	s, err3 := c.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
	r, err4 := c.RbacV1().Roles(ns).List(ctx, metav1.ListOptions{})
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return fmt.Sprintf("jobs=%d pvcs=%d serviceaccounts=%d roles=%d", len(j.Items), len(p.Items), len(s.Items), len(r.Items))
}

// TestRestoreOverwriteModes: a file changed after the backup (newer than the snapshot's),
// one changed but dated older, one added and one removed; each mode does what it says.
func TestRestoreOverwriteModes(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	s3Repository(t, c, ns)
	dir := hostDir(t)
	snap := map[string]string{"newer.txt": "snapshot\n", "older.txt": "snapshot\n", "removed.txt": "snapshot\n", "same.txt": "same\n"}
	writeTree(t, dir, snap)
	boundClaim(t, c, ns, "data", dir, corev1.ReadWriteOnce, true)
	mustStash(t, ns, "backup", "pvc/data", "--repo", "s3")
	if out, err := stash(t, ns, "trigger", "data-backup", "--wait"); err != nil {
		t.Fatalf("trigger: %v\n%s", err, out)
	}
	damage := func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeTree(t, dir, map[string]string{"newer.txt": "local\n", "older.txt": "local\n", "added.txt": "local\n", "same.txt": "same\n"})
		// older.txt's local copy predates the snapshot's; newer.txt's is from now
		old := time.Now().Add(-48 * time.Hour)
		if err := os.Chtimes(filepath.Join(dir, "older.txt"), old, old); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Hour)
		if err := os.Chtimes(filepath.Join(dir, "newer.txt"), later, later); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		mode   string
		delete bool
		want   map[string]string
	}{
		{"never", false, map[string]string{"newer.txt": "local\n", "older.txt": "local\n", "added.txt": "local\n", "removed.txt": "snapshot\n", "same.txt": "same\n"}},
		{"if-newer", false, map[string]string{"newer.txt": "local\n", "older.txt": "snapshot\n", "added.txt": "local\n", "removed.txt": "snapshot\n", "same.txt": "same\n"}},
		{"always", false, map[string]string{"newer.txt": "snapshot\n", "older.txt": "snapshot\n", "added.txt": "local\n", "removed.txt": "snapshot\n", "same.txt": "same\n"}},
		{"always", true, map[string]string{"newer.txt": "snapshot\n", "older.txt": "snapshot\n", "removed.txt": "snapshot\n", "same.txt": "same\n"}},
	}
	for i, tc := range cases {
		damage()
		args := []string{"restore", "pvc/data", "--repo", "s3", "--source-target", "pvc/data", "--overwrite", tc.mode,
			"--name", fmt.Sprintf("mode-%d", i), "--wait"}
		if tc.delete {
			args = append(args, "--delete")
		}
		out, err := stash(t, ns, args...)
		if err != nil {
			t.Fatalf("--overwrite %s --delete=%v: %v\n%s", tc.mode, tc.delete, err, out)
		}
		if got := readTree(t, dir); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("--overwrite %s --delete=%v:\n got %v\nwant %v\n%s", tc.mode, tc.delete, got, tc.want, out)
		}
	}
}

// TestDownloadLatestOnThisMachine: what a backup session put into the S3 repository comes
// back on this machine, with no pod, bit-identical: contents, modes, times, symbolic and
// hard links.
func TestDownloadLatestOnThisMachine(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	s3Repository(t, c, ns)
	dir := hostDir(t)
	writeTree(t, dir, map[string]string{"index.html": "<h1>hi</h1>\n", "conf/app.yaml": "port: 8080\n", "bin/run.sh": "#!/bin/sh\n"})
	randomFiles(t, dir, 3, 3<<20) // several chunks each
	mustChmod := func(p string, m os.FileMode) {
		if err := os.Chmod(filepath.Join(dir, p), m); err != nil {
			t.Fatal(err)
		}
	}
	mustChmod("bin/run.sh", 0o755)
	mustChmod("conf/app.yaml", 0o600)
	mustChmod("conf", 0o2750)
	for _, l := range [][2]string{{"index.html", "home"}, {"../outside", "dangling"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, "index.html"), filepath.Join(dir, "index-copy.html")); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2021, 3, 4, 5, 6, 7, 891011121, time.UTC)
	for _, p := range []string{"conf/app.yaml", "bin/run.sh", "blob-001.bin"} {
		if err := os.Chtimes(filepath.Join(dir, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	boundClaim(t, c, ns, "site", dir, corev1.ReadWriteOnce, true)
	deployment(t, c, ns, "site", "site", "/usr/share/site")
	mustStash(t, ns, "backup", "deployment/site", "--repo", "s3", "--paths", "/usr/share/site")
	if out, err := stash(t, ns, "trigger", "site-backup", "--wait"); err != nil {
		t.Fatalf("trigger: %v\n%s", err, out)
	}
	to := filepath.Join(t.TempDir(), "download")
	out, err := stash(t, ns, "download", "latest", "--repo", "s3", "--to", to)
	if err != nil {
		t.Fatalf("download: %v\n%s", err, out)
	}
	if !strings.Contains(out, "(host-0 /usr/share/site) to "+to) {
		t.Errorf("download summary:\n%s", out)
	}
	want, got := treeState(t, dir), treeState(t, filepath.Join(to, "usr/share/site"))
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if got[k] != want[k] {
				t.Errorf("%s: got %+v, want %+v", k, got[k], want[k])
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: not in the source", k)
			}
		}
	}
	a, _ := os.Stat(filepath.Join(to, "usr/share/site/index.html"))
	b, _ := os.Stat(filepath.Join(to, "usr/share/site/index-copy.html"))
	if !os.SameFile(a, b) {
		t.Errorf("index.html and index-copy.html are no longer one file (hard link)")
	}
}

type entryState struct {
	Mode    os.FileMode
	ModTime time.Time
	Content string // file content, or a symbolic link's target
}

// treeState is path → mode, modification time (not of directories, whose times a restore
// sets last but a backup of a live volume may see change) and content of a tree.
func treeState(t *testing.T, root string) map[string]entryState {
	t.Helper()
	out := map[string]entryState{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := entryState{Mode: fi.Mode()}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			st.Content, _ = os.Readlink(p)
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			st.Content, st.ModTime = string(b), fi.ModTime().UTC()
		}
		out[rel] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
