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
	"sort"
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

// getSession reads `kubectl stash get bs NAME -o json` as a generic document, so the test
// sees exactly the fields the command prints.
func getSession(t *testing.T, ns, name string) map[string]any {
	t.Helper()
	out := mustStash(t, ns, "get", "bs", name, "-o", "json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("get bs -o json: %v\n%s", err, out)
	}
	return doc
}

func keys(v any) []string {
	m, _ := v.(map[string]any)
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func wantKeys(t *testing.T, where string, v any, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := keys(v); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: fields %v, want %v (seeds/stash-v1beta1-backupsession.md)", where, got, want)
	}
}

var (
	seedSize     = regexp.MustCompile(`^(\d+ B|\d+\.\d{3} [KMGTP]iB)$`)
	seedProcTime = regexp.MustCompile(`^(\d+h)?\d+m\d+s$`)
)

// checkSeedShape compares a BackupSession document with the seed field by field, and
// returns its stats per host.
func checkSeedShape(t *testing.T, doc map[string]any, ns, name, config string) map[string]map[string]any {
	t.Helper()
	wantKeys(t, "BackupSession", doc, "apiVersion", "kind", "metadata", "spec", "status")
	if doc["apiVersion"] != "stash.appscode.com/v1beta1" || doc["kind"] != "BackupSession" {
		t.Errorf("apiVersion/kind = %v/%v", doc["apiVersion"], doc["kind"])
	}
	md := doc["metadata"].(map[string]any)
	wantKeys(t, "metadata", md, "name", "namespace", "labels")
	if md["name"] != name || md["namespace"] != ns {
		t.Errorf("metadata = %v", md)
	}
	if l := md["labels"].(map[string]any); !reflect.DeepEqual(l, map[string]any{"backup-configuration": config}) {
		t.Errorf("metadata.labels = %v, want backup-configuration: %s", l, config)
	}
	spec := doc["spec"].(map[string]any)
	if !reflect.DeepEqual(spec, map[string]any{"backupConfiguration": map[string]any{"name": config}}) {
		t.Errorf("spec = %v", spec)
	}
	st := doc["status"].(map[string]any)
	statusKeys := []string{"phase", "totalHosts", "sessionDuration", "stats"}
	if _, ok := st["conditions"]; ok {
		// a configuration with a retention policy records the seed's RetentionPolicyApplied
		// (Stash's BackupSession status.conditions, peers.md)
		statusKeys = append(statusKeys, "conditions")
		for _, c := range st["conditions"].([]any) {
			wantKeys(t, "status.conditions[]", c, "type", "status", "reason", "message", "lastTransitionTime")
		}
	}
	wantKeys(t, "status", st, statusKeys...)
	stats := st["stats"].([]any)
	if int(st["totalHosts"].(float64)) != len(stats) {
		t.Errorf("totalHosts %v but %d stats", st["totalHosts"], len(stats))
	}
	var sum time.Duration
	hosts := map[string]map[string]any{}
	for _, s := range stats {
		h := s.(map[string]any)
		hostKeys := []string{"hostname", "phase", "duration", "snapshots"}
		if _, ok := h["error"]; ok {
			hostKeys = append(hostKeys, "error")
		}
		wantKeys(t, "stats[]", h, hostKeys...)
		d, err := time.ParseDuration(h["duration"].(string))
		if err != nil {
			t.Errorf("stats[].duration %q: %v", h["duration"], err)
		}
		sum += d
		for _, sn := range h["snapshots"].([]any) {
			m := sn.(map[string]any)
			wantKeys(t, "stats[].snapshots[]", m, "name", "directory", "size", "uploaded", "processingTime", "fileStats")
			wantKeys(t, "stats[].snapshots[].fileStats", m["fileStats"], "totalFiles", "newFiles", "modifiedFiles", "unmodifiedFiles")
			if !seedSize.MatchString(m["size"].(string)) || !seedSize.MatchString(m["uploaded"].(string)) {
				t.Errorf("size %q / uploaded %q: not in the seed's form (\"30 B\")", m["size"], m["uploaded"])
			}
			if !seedProcTime.MatchString(m["processingTime"].(string)) {
				t.Errorf("processingTime %q: not in the seed's form (\"0m0s\")", m["processingTime"])
			}
		}
		hosts[h["hostname"].(string)] = h
	}
	// the seed: sessionDuration is the sum of the hosts' durations
	if d, err := time.ParseDuration(st["sessionDuration"].(string)); err != nil || d != sum {
		t.Errorf("sessionDuration %v, want the sum of host durations %s", st["sessionDuration"], sum)
	}
	return hosts
}

func fileStats(t *testing.T, host map[string]any, dir string) map[string]int {
	t.Helper()
	for _, sn := range host["snapshots"].([]any) {
		m := sn.(map[string]any)
		if m["directory"] == dir {
			out := map[string]int{}
			for k, v := range m["fileStats"].(map[string]any) {
				out[k] = int(v.(float64))
			}
			return out
		}
	}
	t.Fatalf("host %v has no snapshot of %s", host["hostname"], dir)
	return nil
}

func sessionName(t *testing.T, triggerOut string) string {
	t.Helper()
	m := regexp.MustCompile(`backupsession (\S+) created`).FindStringSubmatch(triggerOut)
	if m == nil {
		t.Fatalf("trigger printed no session name:\n%s", triggerOut)
	}
	return m[1]
}

// TestDeploymentScheduledAndTriggeredSessions: the CronJob's own session and a triggered
// one both succeed, with stats that match the volume's tree, in the seed's shape.
func TestDeploymentScheduledAndTriggeredSessions(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	data := hostDir(t)
	tree := map[string]string{"index.html": "<h1>shop</h1>\n", "img/logo.svg": "<svg/>", "orders/2026/11.csv": "id,total\n1,30\n"}
	writeTree(t, data, tree)
	boundClaim(t, c, ns, "shop-data", data, corev1.ReadWriteOnce, true)
	repoURL := fileRepository(t, c, ns)
	deployment(t, c, ns, "shop", "shop-data", "/source/data")

	out := mustStash(t, ns, "backup", "deployment/shop", "--repo", "repo", "--paths", "/source/data", "--schedule", "*/1 * * * *", "--keep-last", "5")
	for _, want := range []string{"serviceaccount/stash-shop-backup created", "role.rbac.authorization.k8s.io/stash-shop-backup created",
		"rolebinding.rbac.authorization.k8s.io/stash-shop-backup created", "cronjob.batch/shop-backup created"} {
		if !strings.Contains(out, want) {
			t.Errorf("backup output lacks %q:\n%s", want, out)
		}
	}
	// idempotent: the same command again changes nothing
	if out := mustStash(t, ns, "backup", "deployment/shop", "--repo", "repo", "--paths", "/source/data", "--schedule", "*/1 * * * *", "--keep-last", "5"); strings.Count(out, " unchanged") != 4 {
		t.Errorf("second identical backup command changed something:\n%s", out)
	}

	// the CronJob's own session (up to a minute away)
	var scheduled string
	waitFor(t, "the CronJob's session to finish", 150*time.Second, func(ctx context.Context) (bool, error) {
		jobs, err := c.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: api.LabelComponent + "=" + api.ComponentSession})
		if err != nil || len(jobs.Items) == 0 {
			return false, nil
		}
		j := jobs.Items[0]
		if j.Annotations["cronjob.kubernetes.io/instantiate"] == "manual" {
			return false, fmt.Errorf("unexpected manual session %s", j.Name)
		}
		var st api.SessionStatus
		if v := j.Annotations[api.AnnotationSessionStatus]; v != "" {
			_ = json.Unmarshal([]byte(v), &st)
		}
		scheduled = j.Name
		return st.Phase.Final(), nil
	})
	// no further scheduled session while the triggered one runs
	if _, err := kubectl(t, "-n", ns, "patch", "cronjob", "shop-backup", "--type=merge", "-p", `{"spec":{"suspend":true}}`); err != nil {
		t.Fatal(err)
	}
	doc := getSession(t, ns, scheduled)
	hosts := checkSeedShape(t, doc, ns, scheduled, "shop-backup")
	if phase := doc["status"].(map[string]any)["phase"]; phase != "Succeeded" {
		t.Fatalf("scheduled session %s: %v\n%s", scheduled, phase, mustStash(t, ns, "describe", "bs", scheduled))
	}
	if got, want := fileStats(t, hosts["host-0"], "/source/data"), map[string]int{"totalFiles": 3, "newFiles": 3, "modifiedFiles": 0, "unmodifiedFiles": 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("first session fileStats %v, want %v", got, want)
	}

	start := time.Now()
	out, err := stash(t, ns, "trigger", "shop-backup", "--wait")
	t.Logf("trigger --wait (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("trigger --wait: %v", err)
	}
	triggered := sessionName(t, out)
	if !strings.Contains(out, "Succeeded") {
		t.Errorf("trigger --wait did not report Succeeded:\n%s", out)
	}
	doc = getSession(t, ns, triggered)
	hosts = checkSeedShape(t, doc, ns, triggered, "shop-backup")
	if got, want := fileStats(t, hosts["host-0"], "/source/data"), map[string]int{"totalFiles": 3, "newFiles": 0, "modifiedFiles": 0, "unmodifiedFiles": 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("second session fileStats %v, want %v", got, want)
	}
	// the snapshot holds the tree: restore it on this machine with the engine
	target := t.TempDir()
	stashJob(t, nil, "restore", "--repo", repoURL, "latest", "--host", "host-0", "--path", "/source/data", "--target", target)
	if got := readTree(t, filepath.Join(target, "source/data")); !reflect.DeepEqual(got, tree) {
		t.Errorf("restored tree %v, want %v", got, tree)
	}
	// the repository on its PVC, listed by a short-lived pod
	if out := mustStash(t, ns, "snapshots", "--repo", "repo", "--via-job"); strings.Count(out, "host-0") < 2 {
		t.Errorf("snapshots --via-job: want the two sessions' snapshots of host-0:\n%s", out)
	}
	// the tables
	if out := mustStash(t, ns, "get", "bc"); !regexp.MustCompile(`shop-backup\s+deployment/shop\s+\*/1 \* \* \* \*\s+true\s+` + triggered + `\s+Succeeded`).MatchString(out) {
		t.Errorf("get bc:\n%s", out)
	}
	if out := mustStash(t, ns, "get", "bs"); !regexp.MustCompile(triggered + `\s+shop-backup\s+Succeeded\s+1/1`).MatchString(out) {
		t.Errorf("get bs:\n%s", out)
	}
}

// TestStatefulSetHostPerReplica: three replicas with different data are three hosts, each
// with its own snapshot of its own claim, in a repository on a real S3 server.
func TestStatefulSetHostPerReplica(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	url, creds := s3Server(t)
	// the repository Secret as users make it, from an env file of credentials
	envFile := filepath.Join(t.TempDir(), "s3.env")
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(envFile, []byte(fmt.Sprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"])), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwFile, []byte(testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustStash(t, ns, "repo", "create", "s3", "--url", url, "--password-file", pwFile, "--from-env-file", envFile); !strings.Contains(out, "secret/s3 created") {
		t.Errorf("repo create:\n%s", out)
	}
	trees := map[int]map[string]string{}
	for i := range 3 {
		dir := hostDir(t)
		trees[i] = map[string]string{"replica.txt": fmt.Sprintf("I am web-%d\n", i), fmt.Sprintf("only-%d/data.bin", i): strings.Repeat(fmt.Sprint(i), 1000*(i+1))}
		writeTree(t, dir, trees[i])
		boundClaim(t, c, ns, fmt.Sprintf("data-web-%d", i), dir, corev1.ReadWriteOnce, false)
	}
	replicas := int32(3)
	sc := "manual"
	labels := map[string]string{"app": "web"}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels}, ServiceName: "web",
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{pauseContainer(corev1.VolumeMount{Name: "data", MountPath: "/usr/share/web"})}}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: &sc,
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}},
		},
	}
	if _, err := c.AppsV1().StatefulSets(ns).Create(context.Background(), sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, ns, "app=web", 3)
	mustStash(t, ns, "backup", "statefulset/web", "--repo", "s3", "--paths", "/usr/share/web")
	out, err := stash(t, ns, "trigger", "web-backup", "--wait")
	if err != nil {
		t.Fatalf("trigger --wait: %v\n%s", err, out)
	}
	name := sessionName(t, out)
	doc := getSession(t, ns, name)
	hosts := checkSeedShape(t, doc, ns, name, "web-backup")
	if got := doc["status"].(map[string]any)["totalHosts"]; got != float64(3) {
		t.Fatalf("totalHosts %v, want 3", got)
	}
	for i := range 3 {
		host := fmt.Sprintf("host-%d", i)
		h, ok := hosts[host]
		if !ok || h["phase"] != "Succeeded" || len(h["snapshots"].([]any)) != 1 {
			t.Fatalf("%s: %v", host, h)
		}
		if fs := fileStats(t, h, "/usr/share/web"); fs["totalFiles"] != 2 {
			t.Errorf("%s: fileStats %v, want 2 files", host, fs)
		}
		// the host pod kept the repository's metadata in its cache volume
		if logs, err := kubectl(t, "-n", ns, "logs", "job/"+api.HostJobName(name, host)); err != nil || !strings.Contains(logs, "cache: ") || !strings.Contains(logs, "/stash-cache") {
			t.Errorf("%s log has no cache line (%v):\n%s", host, err, logs)
		}
		// the snapshot, listed from this machine with the Secret's credentials
		if out := mustStash(t, ns, "snapshots", "--repo", "s3", "--host", host); !regexp.MustCompile(`(?m)^` + h["snapshots"].([]any)[0].(map[string]any)["name"].(string) + `\s.*` + host + `\s+/usr/share/web`).MatchString(out) {
			t.Errorf("snapshots --host %s does not list the session's snapshot:\n%s", host, out)
		}
		target := t.TempDir()
		stashJob(t, creds, "restore", "--repo", url, "latest", "--host", host, "--path", "/usr/share/web", "--target", target)
		if got := readTree(t, filepath.Join(target, "usr/share/web")); !reflect.DeepEqual(got, trees[i]) {
			t.Errorf("%s restored %v, want replica %d's tree %v", host, got, i, trees[i])
		}
	}
	// shell completion asks this cluster
	if out := mustStash(t, ns, "__complete", "trigger", ""); !strings.Contains(out, "web-backup\n") {
		t.Errorf("completion of trigger does not offer web-backup:\n%s", out)
	}
	if out := mustStash(t, ns, "__complete", "backup", "statefulset/"); !strings.Contains(out, "statefulset/web\n") {
		t.Errorf("completion of backup does not offer statefulset/web:\n%s", out)
	}
	// repo list shows the repository; repo delete removes the Secret and keeps the data
	if out := mustStash(t, ns, "repo", "list"); !regexp.MustCompile(`(?m)^s3\s+s3://backups/`).MatchString(out) {
		t.Errorf("repo list:\n%s", out)
	}
	if out := mustStash(t, ns, "repo", "delete", "s3"); !strings.Contains(out, "s3") {
		t.Errorf("repo delete:\n%s", out)
	}
	if _, err := c.CoreV1().Secrets(ns).Get(context.Background(), "s3", metav1.GetOptions{}); err == nil {
		t.Error("repo delete left the Secret")
	}
	if snaps := stashJob(t, creds, "snapshots", "--repo", url); strings.Count(snaps, "/usr/share/web") != 3 {
		t.Errorf("the repository's snapshots after repo delete:\n%s", snaps)
	}
}

// TestDaemonSetHostIsTheNode: a daemon pod's host is named after its node.
func TestDaemonSetHostIsTheNode(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	repoURL := fileRepository(t, c, ns)
	dir := hostDir(t)
	writeTree(t, dir, map[string]string{"node.log": "node-local data\n"})
	labels := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{pauseContainer(corev1.VolumeMount{Name: "logs", MountPath: "/var/log/agent"})},
				Volumes:    []corev1.Volume{{Name: "logs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}}},
			}}},
	}
	if _, err := c.AppsV1().DaemonSets(ns).Create(context.Background(), ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, ns, "app=agent", 1)
	nodes, err := c.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("nodes: %v %v", nodes, err)
	}
	node := nodes.Items[0].Name
	mustStash(t, ns, "backup", "daemonset/agent", "--repo", "repo", "--paths", "/var/log/agent")
	out, err := stash(t, ns, "trigger", "agent-backup", "--wait")
	if err != nil {
		t.Fatalf("trigger --wait: %v\n%s", err, out)
	}
	name := sessionName(t, out)
	hosts := checkSeedShape(t, getSession(t, ns, name), ns, name, "agent-backup")
	if len(hosts) != 1 || hosts[node] == nil || hosts[node]["phase"] != "Succeeded" {
		t.Fatalf("hosts %v, want one host named after node %s", hosts, node)
	}
	if snaps := stashJob(t, nil, "snapshots", "--repo", repoURL, "--host", node); !strings.Contains(snaps, "/var/log/agent") {
		t.Errorf("no snapshot of host %s:\n%s", node, snaps)
	}
}

// TestStandalonePVCIsHost0: a PVC on its own is host-0, mounted where --paths says.
func TestStandalonePVCIsHost0(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	repoURL := fileRepository(t, c, ns)
	dir := hostDir(t)
	tree := map[string]string{"a/b/c.txt": "deep\n", "top.txt": "top\n"}
	writeTree(t, dir, tree)
	boundClaim(t, c, ns, "uploads", dir, corev1.ReadWriteOnce, true)
	// low priority: the host re-executes itself with it (every thread inherits it)
	mustStash(t, ns, "backup", "pvc/uploads", "--repo", "repo", "--paths", "/data", "--nice", "10", "--ionice-class", "3", "--history-limit", "1")
	out, err := stash(t, ns, "trigger", "uploads-backup", "--wait")
	if err != nil {
		t.Fatalf("trigger --wait: %v\n%s", err, out)
	}
	name := sessionName(t, out)
	hosts := checkSeedShape(t, getSession(t, ns, name), ns, name, "uploads-backup")
	if len(hosts) != 1 || hosts["host-0"] == nil {
		t.Fatalf("hosts %v, want host-0", hosts)
	}
	target := t.TempDir()
	stashJob(t, nil, "restore", "--repo", repoURL, "latest", "--host", "host-0", "--target", target)
	if got := readTree(t, filepath.Join(target, "data")); !reflect.DeepEqual(got, tree) {
		t.Errorf("restored %v, want %v", got, tree)
	}
	// --history-limit 1: the CronJob keeps one finished session (triggered ones too, as
	// they are its own), and a session's host Jobs go with it
	if _, err := stash(t, ns, "trigger", "uploads-backup", "--wait"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "one session and one host Job left", 90*time.Second, func(ctx context.Context) (bool, error) {
		jobs, err := c.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: api.LabelBackupConfiguration + "=uploads-backup"})
		return err == nil && len(jobs.Items) == 2, nil
	})
}

// TestUnreadableFileFailsHostAndSession: with a user-given non-root identity, a mode-000
// file cannot be read: the host fails naming the file, the session fails, trigger exits 1.
func TestUnreadableFileFailsHostAndSession(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	fileRepositoryOwnedBy(t, c, ns, 1000)
	data := hostDir(t)
	writeTree(t, data, map[string]string{"public.txt": "ok\n", "secret.key": "nobody may read me\n"})
	if err := os.Chmod(filepath.Join(data, "secret.key"), 0); err != nil {
		t.Fatal(err)
	}
	boundClaim(t, c, ns, "vault", data, corev1.ReadWriteOnce, true)
	deployment(t, c, ns, "vault", "vault", "/vault")
	mustStash(t, ns, "backup", "deployment/vault", "--repo", "repo", "--paths", "/vault", "--run-as-user", "1000", "--run-as-group", "1000")
	out, err := stash(t, ns, "trigger", "vault-backup", "--wait")
	if err == nil {
		t.Fatalf("trigger --wait succeeded on an unreadable file:\n%s", out)
	}
	name := sessionName(t, out)
	doc := getSession(t, ns, name)
	st := doc["status"].(map[string]any)
	if st["phase"] != "Failed" {
		t.Fatalf("session phase %v, want Failed", st["phase"])
	}
	h := st["stats"].([]any)[0].(map[string]any)
	if h["phase"] != "Failed" || !strings.Contains(fmt.Sprint(h["error"]), "/vault/secret.key") {
		t.Errorf("host %v: want Failed with an error naming /vault/secret.key", h)
	}
	if d := mustStash(t, ns, "describe", "bs", name); !strings.Contains(d, "HostFailed") || !strings.Contains(d, "/vault/secret.key") {
		t.Errorf("describe does not show the failure:\n%s", d)
	}
}

// fileRepositoryOwnedBy is fileRepository for jobs that run as uid: the repository
// directory is theirs.
func fileRepositoryOwnedBy(t *testing.T, c kubernetes.Interface, ns string, uid int) string {
	t.Helper()
	url := fileRepository(t, c, ns)
	dir := strings.TrimPrefix(url, "file://")
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	}); err != nil {
		t.Fatal(err)
	}
	return url
}

// TestDryRunYAMLAppliesToTheSameObjects: what --dry-run=client -o yaml prints, applied with
// kubectl, is what `backup` creates.
func TestDryRunYAMLAppliesToTheSameObjects(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	nsA, nsB := namespace(t, c), namespace(t, c)
	flags := []string{"backup", "pvc/files", "--repo", "repo", "--paths", "/data/files", "--mount-path", "/data", "--schedule", "@daily",
		"--keep-daily", "7", "--keep-weekly", "4", "--timeout", "1h", "--cpu-limit", "500m", "--memory-limit", "256Mi", "--nice", "10",
		"--ionice-class", "3", "--node-selector", "kubernetes.io/os=linux", "--toleration", "dedicated=backup:NoSchedule"}
	for _, ns := range []string{nsA, nsB} {
		repoSecret(t, c, ns, "repo", "file:///nowhere", nil)
		dir := hostDir(t)
		if err := os.Mkdir(filepath.Join(dir, "files"), 0o755); err != nil {
			t.Fatal(err)
		}
		boundClaim(t, c, ns, "files", dir, corev1.ReadWriteOnce, true)
	}
	mustStash(t, nsA, flags...)
	yaml := mustStash(t, nsB, append(flags, "--dry-run=client", "-o", "yaml")...)
	cmd := fmt.Sprintf("kubectl apply -n %s -f -", nsB)
	if out, err := kubectlStdin(t, yaml, "apply", "-n", nsB, "-f", "-"); err != nil {
		t.Fatalf("%s: %v\n%s\n%s", cmd, err, out, yaml)
	}
	ctx := context.Background()
	a, errA := c.BatchV1().CronJobs(nsA).Get(ctx, "files-backup", metav1.GetOptions{})
	b, errB := c.BatchV1().CronJobs(nsB).Get(ctx, "files-backup", metav1.GetOptions{})
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if !reflect.DeepEqual(a.Spec, b.Spec) || !reflect.DeepEqual(a.Labels, b.Labels) || a.Annotations[api.AnnotationConfig] != b.Annotations[api.AnnotationConfig] {
		t.Errorf("CronJobs differ:\nbackup: %+v\napplied: %+v", a.Spec, b.Spec)
	}
	ra, _ := c.RbacV1().Roles(nsA).Get(ctx, "stash-files-backup", metav1.GetOptions{})
	rb, _ := c.RbacV1().Roles(nsB).Get(ctx, "stash-files-backup", metav1.GetOptions{})
	if ra == nil || rb == nil || !reflect.DeepEqual(ra.Rules, rb.Rules) {
		t.Errorf("Roles differ: %v vs %v", ra, rb)
	}
	ba, _ := c.RbacV1().RoleBindings(nsA).Get(ctx, "stash-files-backup", metav1.GetOptions{})
	bb, _ := c.RbacV1().RoleBindings(nsB).Get(ctx, "stash-files-backup", metav1.GetOptions{})
	if ba == nil || bb == nil || ba.RoleRef != bb.RoleRef || len(bb.Subjects) != 1 || bb.Subjects[0].Namespace != nsB || bb.Subjects[0].Name != ba.Subjects[0].Name {
		t.Errorf("RoleBindings differ: %v vs %v", ba, bb)
	}
	if _, err := c.CoreV1().ServiceAccounts(nsB).Get(ctx, "stash-files-backup", metav1.GetOptions{}); err != nil {
		t.Errorf("ServiceAccount of the applied YAML: %v", err)
	}
}

// TestTrigger100MiBTime measures trigger → Succeeded for a 100 MiB volume.
func TestTrigger100MiBTime(t *testing.T) {
	c := clientset(t)
	ns := namespace(t, c)
	fileRepository(t, c, ns)
	data := hostDir(t)
	randomFiles(t, data, 100, 1<<20)
	boundClaim(t, c, ns, "big", data, corev1.ReadWriteOnce, true)
	mustStash(t, ns, "backup", "pvc/big", "--repo", "repo", "--paths", "/data")
	start := time.Now()
	out, err := stash(t, ns, "trigger", "big-backup", "--wait")
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("trigger --wait: %v\n%s", err, out)
	}
	name := sessionName(t, out)
	hosts := checkSeedShape(t, getSession(t, ns, name), ns, name, "big-backup")
	snap := hosts["host-0"]["snapshots"].([]any)[0].(map[string]any)
	if snap["size"] != "100.000 MiB" {
		t.Errorf("snapshot size %v, want 100.000 MiB", snap["size"])
	}
	t.Logf("trigger → Succeeded for a 100 MiB volume (100 random files of 1 MiB): %s (host duration %v, uploaded %v)",
		elapsed.Round(time.Millisecond), hosts["host-0"]["duration"], snap["uploaded"])
	if report := os.Getenv("STASH_E2E_REPORT"); report != "" {
		f, err := os.OpenFile(report, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "trigger-to-succeeded 100MiB: %s\n", elapsed.Round(time.Millisecond))
			f.Close()
		}
	}
}
