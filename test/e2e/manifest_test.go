//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// writeManifest writes a manifest into a file of the test.
func writeManifest(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// backupConfig reads the configuration a CronJob carries.
func backupConfig(t *testing.T, c kubernetes.Interface, ns, name string) api.BackupConfig {
	t.Helper()
	cj, err := c.BatchV1().CronJobs(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cfg api.BackupConfig
	if err := json.Unmarshal([]byte(cj.Annotations[api.AnnotationConfig]), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestBackupManifestOfAStatefulSet: `kubectl stash backup -f` of a Stash
// BackupConfiguration for a StatefulSet makes the configuration its flag form makes; a
// session of each (the manifest's triggered by `kubectl stash trigger -f` of a Stash
// BackupSession) backs up every replica's own data, as host-0 and host-1.
func TestBackupManifestOfAStatefulSet(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	s3Repository(t, c, ns)
	trees := map[int]map[string]string{}
	for i := range 2 {
		dir := hostDir(t)
		trees[i] = map[string]string{"replica.txt": fmt.Sprintf("I am web-%d\n", i), fmt.Sprintf("only-%d/data.bin", i): strings.Repeat(fmt.Sprint(i), 3000*(i+1)),
			"cache/skip.tmp": "not backed up\n"}
		writeTree(t, dir, trees[i])
		boundClaim(t, c, ns, fmt.Sprintf("source-data-web-%d", i), dir, corev1.ReadWriteOnce, false)
	}
	statefulSet(t, c, ns, "web", 2)

	bc := fmt.Sprintf(`apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata:
  name: web-manifest
  namespace: %s
spec:
  repository:
    name: s3
  schedule: "0 3 * * *"
  target:
    ref:
      apiVersion: apps/v1
      kind: StatefulSet
      name: web
    volumeMounts:
    - name: source-data
      mountPath: /source/data
    paths:
    - /source/data
    exclude:
    - "*.tmp"
  runtimeSettings:
    container:
      resources:
        limits:
          memory: 512Mi
      nice:
        adjustment: 5
      ionice:
        class: 3
  tempDir:
    sizeLimit: 128Mi
  retentionPolicy:
    name: keep-last-3
    keepLast: 3
    prune: false
  backupHistoryLimit: 2
`, ns)
	out := mustStash(t, ns, "backup", "-f", writeManifest(t, bc))
	for _, want := range []string{"cronjob.batch/web-manifest created", `backup configuration web-manifest of statefulset/web (2 host(s) now) runs on schedule "0 3 * * *"`} {
		if !strings.Contains(out, want) {
			t.Errorf("backup -f output lacks %q:\n%s", want, out)
		}
	}
	mustStash(t, ns, "backup", "statefulset/web", "--name", "web-flags", "--repo", "s3", "--paths", "/source/data", "--exclude", "*.tmp",
		"--volume-mount", "source-data:/source/data", "--schedule", "0 3 * * *", "--memory-limit", "512Mi", "--nice", "5", "--ionice-class", "3",
		"--cache-size", "128Mi", "--keep-last", "3", "--history-limit", "2")

	// the same configuration but for its name (and the ServiceAccount named after it)
	fromFile, fromFlags := backupConfig(t, c, ns, "web-manifest"), backupConfig(t, c, ns, "web-flags")
	fromFile.Name, fromFile.Runtime.ServiceAccount = fromFlags.Name, fromFlags.Runtime.ServiceAccount
	if !reflect.DeepEqual(fromFile, fromFlags) {
		t.Errorf("backup -f and its flags configure differently:\n-f:    %+v\nflags: %+v", fromFile, fromFlags)
	}

	// a Stash BackupSession triggers the manifest's configuration
	bs := fmt.Sprintf(`apiVersion: stash.appscode.com/v1beta1
kind: BackupSession
metadata:
  name: web-manifest-manual
  namespace: %s
spec:
  invoker:
    apiGroup: stash.appscode.com
    kind: BackupConfiguration
    name: web-manifest
`, ns)
	out, err := stash(t, ns, "trigger", "-f", writeManifest(t, bs), "--wait")
	if err != nil {
		t.Fatalf("trigger -f --wait: %v\n%s", err, out)
	}
	if name := sessionName(t, out); name != "web-manifest-manual" {
		t.Errorf("session %s, want the manifest's name web-manifest-manual", name)
	}
	out, err = stash(t, ns, "trigger", "web-flags", "--wait")
	if err != nil {
		t.Fatalf("trigger --wait: %v\n%s", err, out)
	}
	flagsSession := sessionName(t, out)
	snapshots := map[string]string{} // config/host -> snapshot id
	for config, session := range map[string]string{"web-manifest": "web-manifest-manual", "web-flags": flagsSession} {
		hosts := checkSeedShape(t, getSession(t, ns, session), ns, session, config)
		for i := range 2 {
			host := fmt.Sprintf("host-%d", i)
			h := hosts[host]
			if h == nil || h["phase"] != "Succeeded" {
				t.Fatalf("%s %s: %v", session, host, h)
			}
			// 2 files: *.tmp is excluded
			if fs := fileStats(t, h, "/source/data"); fs["totalFiles"] != 2 {
				t.Errorf("%s %s: fileStats %v, want 2 files", session, host, fs)
			}
			snapshots[config+"/"+host] = h["snapshots"].([]any)[0].(map[string]any)["name"].(string)
		}
	}
	// each host's snapshot of either configuration holds that replica's own data
	url := strings.TrimSpace(mustSecretKey(t, c, ns, "s3", api.SecretKeyRepository))
	creds := map[string]string{"AWS_ACCESS_KEY_ID": mustSecretKey(t, c, ns, "s3", "AWS_ACCESS_KEY_ID"), "AWS_SECRET_ACCESS_KEY": mustSecretKey(t, c, ns, "s3", "AWS_SECRET_ACCESS_KEY")}
	for i := range 2 {
		want := map[string]string{}
		for k, v := range trees[i] {
			if !strings.HasSuffix(k, ".tmp") {
				want[k] = v
			}
		}
		for _, config := range []string{"web-manifest", "web-flags"} {
			target := t.TempDir()
			stashJob(t, creds, "restore", "--repo", url, snapshots[fmt.Sprintf("%s/host-%d", config, i)], "--path", "/source/data", "--target", target)
			if got := readTree(t, filepath.Join(target, "source/data")); !reflect.DeepEqual(got, want) {
				t.Errorf("%s host-%d restored %v, want %v", config, i, got, want)
			}
		}
	}
}

func mustSecretKey(t *testing.T, c kubernetes.Interface, ns, name, key string) string {
	t.Helper()
	s, err := c.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Data[key]; ok {
		return string(v)
	}
	return s.StringData[key]
}

// seedRestoreSession is the RestoreSession of seeds/stash-v1beta1-restoresession.md with
// the test's names: the repository s3, a StatefulSet recovered about to be created (its
// claims from volumeClaimTemplates), and runtime settings this cluster has (no private
// registry, no ServiceAccount my-restore-svc, the restore pods' own security context).
const seedRestoreSession = `apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata:
  name: statefulset-restore
  namespace: %s
spec:
  driver: Restic
  repository:
    name: s3
  target:
    ref:
      apiVersion: apps/v1
      kind: StatefulSet
      name: recovered
    replicas: 5
    volumeMounts:
    - mountPath: /source/data
      name: source-data
    volumeClaimTemplates:
    - metadata:
        name: source-data-recovered-${POD_ORDINAL}
      spec:
        accessModes: [ReadWriteOnce]
        storageClassName: manual
        resources:
          requests:
            storage: 1Gi
  rules:
  - targetHosts: ["host-3","host-4"] # "host-3" and "host-4" will have restored data of backed up host "host-1"
    sourceHost: "host-1" # source host
    paths:
    - /source/data
  - targetHosts: [] # empty host match all hosts
    sourceHost: "" # no source host indicates that the host is pod itself
    paths:
    - /source/data
  runtimeSettings:
    container:
      resources:
        limits:
          memory: 256M
        requests:
          memory: 256M
      ionice:
        class: 2
        classData: 4
      nice:
        adjustment: 5
  tempDir:
    disableCache: false
    medium: Memory
    size: 64Mi
`

// TestRestoreSeedManifest: `kubectl stash restore -f` of the seed's RestoreSession (its
// names adapted) restores a 3-replica StatefulSet's backup into a new one of 5 replicas as
// its flag form does (TestRestoreSeedSampleIntoNewStatefulSet): host-0..2 their own data,
// host-3 and host-4 host-1's. The RestoreSession names only its repository: the backup
// configuration writing to it is where the snapshots come from, as in Stash.
func TestRestoreSeedManifest(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	s3Repository(t, c, ns)
	trees := map[int]map[string]string{}
	for i := range 3 {
		dir := hostDir(t)
		trees[i] = map[string]string{"replica.txt": fmt.Sprintf("I am sample-%d\n", i),
			fmt.Sprintf("only-%d/data.bin", i): strings.Repeat(fmt.Sprint(i), 4000*(i+1))}
		writeTree(t, dir, trees[i])
		boundClaim(t, c, ns, fmt.Sprintf("source-data-sample-%d", i), dir, corev1.ReadWriteOnce, false)
	}
	statefulSet(t, c, ns, "sample", 3)
	mustStash(t, ns, "backup", "statefulset/sample", "--repo", "s3", "--paths", "/source/data")
	if out, err := stash(t, ns, "trigger", "sample-backup", "--wait"); err != nil {
		t.Fatalf("trigger --wait: %v\n%s", err, out)
	}
	newDirs := map[int]string{}
	for i := range 5 {
		newDirs[i] = hostDir(t)
		boundClaim(t, c, ns, fmt.Sprintf("source-data-recovered-%d", i), newDirs[i], corev1.ReadWriteOnce, false)
	}
	manifest := writeManifest(t, fmt.Sprintf(seedRestoreSession, ns))

	// the session the manifest makes is the one its flags make
	printed, err := stash(t, ns, "restore", "-f", manifest, "--dry-run=client", "-o", "json")
	if err != nil {
		t.Fatalf("restore -f --dry-run: %v\n%s", err, printed)
	}
	claim := writeManifest(t, claimTemplate)
	flagsPrinted := mustStash(t, ns, "restore", "statefulset/recovered", "--repo", "s3", "--name", "statefulset-restore", "--replicas", "5",
		"--volume-claim-template", claim, "--volume-mount", "source-data:/source/data",
		"--rule", "targetHosts=host-3,host-4;sourceHost=host-1;paths=/source/data", "--rule", "targetHosts=;sourceHost=;paths=/source/data",
		"--memory-request", "256M", "--memory-limit", "256M", "--ionice-class", "2", "--ionice-data", "4", "--nice", "5",
		"--dry-run=client", "-o", "json")
	fromFile, fromFlags := printedRestoreConfig(t, printed), printedRestoreConfig(t, flagsPrinted)
	fromFlags.Runtime.TempDirMedium, fromFlags.Runtime.CacheSize = "Memory", "64Mi" // tempDir has no flag
	if !reflect.DeepEqual(fromFile, fromFlags) {
		t.Errorf("restore -f and its flags configure differently:\n-f:    %+v\nflags: %+v", fromFile, fromFlags)
	}

	out, err := stash(t, ns, "restore", "-f", manifest, "--wait")
	if err != nil {
		t.Fatalf("restore -f --wait: %v\n%s", err, out)
	}
	for _, want := range []string{"restoring the snapshots of backup configuration sample-backup, which writes to repository s3",
		"persistentvolumeclaim/source-data-recovered-4 created", "host-3 <- /source/data of ", "session statefulset-restore: Succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore -f output lacks %q:\n%s", want, out)
		}
	}
	phase, total, stats := getRestoreSession(t, ns, "statefulset-restore")
	if phase != "Succeeded" || total != 5 || len(stats) != 5 {
		t.Fatalf("restore session: phase %s totalHosts %d stats %v, want Succeeded, 5, 5", phase, total, stats)
	}
	for i := range 5 {
		want := trees[i]
		if i >= 3 {
			want = trees[1]
		}
		if got := readTree(t, newDirs[i]); !reflect.DeepEqual(got, want) {
			t.Errorf("host-%d of the new StatefulSet holds %v, want %v", i, got, want)
		}
	}
	// the runtime settings reached the restore pods
	pod := hostPod(t, c, ns, "statefulset-restore-host-0")
	ct := pod.Spec.Containers[0]
	if ct.Resources.Limits.Memory().String() != "256M" {
		t.Errorf("restore pod memory limit %v, want the manifest's 256M", ct.Resources.Limits.Memory())
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == "stash-cache" && (v.EmptyDir.Medium != corev1.StorageMediumMemory || v.EmptyDir.SizeLimit.String() != "64Mi") {
			t.Errorf("cache volume %+v, want the manifest's tempDir (Memory, 64Mi)", v.EmptyDir)
		}
	}

	// bad input: the place and the reason, and nothing created
	before := objectCount(t, c, ns)
	bad := strings.Replace(fmt.Sprintf(seedRestoreSession, ns), `  - targetHosts: ["host-3","host-4"]`, `  - targetHosts: []`, 1)
	out, err = stash(t, ns, "restore", "-f", writeManifest(t, bad))
	if err == nil || !strings.Contains(out, "spec.rules[1].targetHosts: rules[1] and rules[0] both have empty targetHosts") {
		t.Errorf("two catch-all rules: %v\n%s", err, out)
	}
	if after := objectCount(t, c, ns); after != before {
		t.Errorf("bad input created objects: %s before, %s after", before, after)
	}
}

// printedRestoreConfig is the configuration of the session Job of a printed manifest
// (after the notes the command writes on stderr).
func printedRestoreConfig(t *testing.T, out string) api.RestoreConfig {
	t.Helper()
	if i := strings.Index(out, "{\n"); i > 0 {
		out = out[i:]
	}
	var list struct {
		Items []struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, it := range list.Items {
		if it.Kind == "Job" {
			var cfg api.RestoreConfig
			if err := json.Unmarshal([]byte(it.Metadata.Annotations[api.AnnotationConfig]), &cfg); err != nil {
				t.Fatal(err)
			}
			return cfg
		}
	}
	t.Fatalf("no Job printed:\n%s", out)
	return api.RestoreConfig{}
}

// hostPod returns the pod of a host Job.
func hostPod(t *testing.T, c kubernetes.Interface, ns, job string) corev1.Pod {
	t.Helper()
	pods, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: api.JobNameLabel + "=" + job})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods of job %s: %v (%d)", job, err, len(pods.Items))
	}
	return pods.Items[0]
}
