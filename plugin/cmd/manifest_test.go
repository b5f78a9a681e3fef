package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/manifest"
	"github.com/kubectl-stash/kubectl-stash/plugin/jobs"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

// samplesDir holds the Stash and KubeStash samples the manifest package pins.
var samplesDir = filepath.Join("..", "..", "internal", "manifest", "testdata", "samples")

// runVerb runs `kubectl stash VERB ARGS --image stash-job:test` against cs (nil: no
// cluster), with stdin.
func runVerb(t *testing.T, cs kubernetes.Interface, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-kubeconfig"))
	streams, in, out, errOut := genericiooptions.NewTestIOStreams()
	in.WriteString(stdin)
	g := &GlobalOptions{ConfigFlags: genericclioptions.NewConfigFlags(true), Image: "stash-job:test"}
	newClient := func() (kubernetes.Interface, error) { return cs, nil }
	root := &cobra.Command{Use: "kubectl-stash", SilenceUsage: true, SilenceErrors: true}
	g.ConfigFlags.AddFlags(root.PersistentFlags())
	root.AddCommand(newCmdBackup(&BackupOptions{global: g, IOStreams: streams, HistoryLimit: 5, DryRun: "none", newClient: newClient}),
		newCmdRestore(&RestoreOptions{global: g, IOStreams: streams, DryRun: "none", Overwrite: "always", newClient: newClient}),
		newCmdTrigger(&TriggerOptions{global: g, IOStreams: streams, DryRun: "none", newClient: newClient}),
		NewCmdConvert(g, streams))
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs (go test -update to accept):\n%s", file, got)
	}
}

// triggerCluster is a cluster with the backup configurations the BackupSession samples
// name, as kubectl stash backup made them.
func triggerCluster(t *testing.T, ns string) *fake.Clientset {
	t.Helper()
	var objs []runtime.Object
	for _, c := range []api.BackupConfig{
		{Name: "deployment-backup", Target: api.Target{Kind: "deployment", Name: "shop"}},
		{Name: "sts-backup", Target: api.Target{Kind: "statefulset", Name: "stash-demo"}},
		{Name: "sample-backup-sts", Target: api.Target{Kind: "statefulset", Name: "sample-sts"}, Session: "demo-session"},
		{Name: "wordpress-backup", Members: []api.Member{{Target: api.Target{Kind: "deployment", Name: "wordpress"}, Paths: []string{"/var/www/html"}},
			{Target: api.Target{Kind: "statefulset", Name: "wordpress-db"}, Dump: &api.Dump{Preset: "postgres"}}}},
	} {
		c.SchemaVersion, c.Repository, c.Image = api.SchemaVersion, "s3", "stash-job:test"
		if !c.IsBatch() {
			c.Paths = []string{"/source/data"}
		}
		o, err := jobs.Build(c, ns)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o.CronJob)
	}
	return fake.NewClientset(objs...)
}

var triggeredBy = regexp.MustCompile(`(kubectl-stash.io/triggered-by: )kubectl-stash trigger by \S+`)

// TestManifestObjects: every sample the manifest package pins, through the verb it is
// for, with --dry-run=client -o yaml: the Kubernetes objects the plugin would create
// (golden files; -update).
func TestManifestObjects(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(samplesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, file := range files {
		base := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(base, func(t *testing.T) {
			srcs, err := manifest.Read(file, nil)
			if err != nil {
				t.Fatal(err)
			}
			set, err := manifest.Parse(srcs, manifest.Options{IgnoreUnsupported: true})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			run := func(cs kubernetes.Interface, verb string, extra ...string) {
				args := append([]string{verb, "-f", file, "--dry-run=client", "-o", "yaml", "--ignore-unsupported"}, extra...)
				stdout, stderr, err := runVerb(t, cs, "", args...)
				if err != nil {
					t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr)
				}
				out.WriteString("# kubectl stash " + verb + " -f " + filepath.Base(file) + " --dry-run=client -o yaml\n")
				out.WriteString(stdout)
			}
			switch {
			case len(set.Backups) > 0:
				run(nil, "backup")
			case len(set.Restores) > 0:
				run(nil, "restore")
			case len(set.Triggers) > 0:
				run(triggerCluster(t, set.Namespace), "trigger")
			default:
				t.Skip("nothing for backup, restore or trigger")
			}
			goldenFile(t, filepath.Join("TestManifestObjects", base+".golden"), triggeredBy.ReplaceAll(out.Bytes(), []byte("${1}kubectl-stash trigger by USER")))
		})
	}
}

const stashStatefulSetBackup = `apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata:
  name: web-backup
  namespace: shop
spec:
  repository:
    name: s3
  schedule: "30 1 * * *"
  target:
    ref:
      apiVersion: apps/v1
      kind: StatefulSet
      name: web
    paths: [/var/lib/web]
    exclude: ["*.tmp"]
  runtimeSettings:
    container:
      resources:
        limits: {cpu: 500m}
      nice: {adjustment: 10}
    pod:
      nodeSelector: {kubernetes.io/os: linux}
  tempDir:
    sizeLimit: 1Gi
  retentionPolicy:
    name: keep
    keepLast: 3
    keepDaily: 7
    prune: false
  backupHistoryLimit: 2
  timeOut: 1h
`

// TestManifestSameAsFlags: a Stash BackupConfiguration and a RestoreSession with the
// seed's rules make the very objects their flag forms make.
func TestManifestSameAsFlags(t *testing.T) {
	fromFile, stderr, err := runVerb(t, nil, stashStatefulSetBackup, "backup", "-f", "-", "--dry-run=client", "-o", "yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	fromFlags, stderr, err := runVerb(t, nil, "", "backup", "statefulset/web", "-n", "shop", "--name", "web-backup", "--repo", "s3",
		"--paths", "/var/lib/web", "--exclude", "*.tmp", "--schedule", "30 1 * * *", "--cpu-limit", "500m", "--nice", "10",
		"--node-selector", "kubernetes.io/os=linux", "--cache-size", "1Gi", "--keep-last", "3", "--keep-daily", "7",
		"--history-limit", "2", "--timeout", "1h", "--dry-run=client", "-o", "yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if fromFile != fromFlags {
		t.Errorf("backup -f and its flags differ:\n-f:\n%s\nflags:\n%s", fromFile, fromFlags)
	}

	restore := `apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata:
  name: statefulset-restore
  namespace: shop
  annotations:
    kubectl-stash.io/from-config: web-backup
spec:
  repository:
    name: s3
  target:
    ref:
      apiVersion: apps/v1
      kind: StatefulSet
      name: recovered
    replicas: 5
    volumeMounts:
    - name: source-data
      mountPath: /source/data
    volumeClaimTemplates:
    - metadata:
        name: source-data-recovered-${POD_ORDINAL}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 1Gi}}
    rules:
    - targetHosts: ["host-3","host-4"]
      sourceHost: "host-1"
      paths: [/source/data]
    - targetHosts: []
      sourceHost: ""
      paths: [/source/data]
`
	fromFile, stderr, err = runVerb(t, nil, restore, "restore", "-f", "-", "--dry-run=client", "-o", "yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	claim := filepath.Join(t.TempDir(), "claim.yaml")
	if err := os.WriteFile(claim, []byte("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: source-data}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fromFlags, stderr, err = runVerb(t, nil, "", "restore", "statefulset/recovered", "-n", "shop", "--name", "statefulset-restore", "--repo", "s3",
		"--from-config", "web-backup", "--replicas", "5", "--volume-claim-template", claim, "--volume-mount", "source-data:/source/data",
		"--rule", "targetHosts=host-3,host-4;sourceHost=host-1;paths=/source/data", "--rule", "targetHosts=;sourceHost=;paths=/source/data",
		"--dry-run=client", "-o", "yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if fromFile != fromFlags {
		t.Errorf("restore -f and its flags differ:\n-f:\n%s\nflags:\n%s", fromFile, fromFlags)
	}
}

const stashBatchBackup = `apiVersion: stash.appscode.com/v1beta1
kind: BackupBatch
metadata:
  name: wordpress
  namespace: shop
  annotations:
    kubectl-stash.io/dump-container: postgres
    kubectl-stash.io/hook-timeout: 1m
spec:
  repository:
    name: s3
  schedule: "30 1 * * *"
  executionOrder: Sequential
  runtimeSettings:
    container:
      nice: {adjustment: 10}
  members:
  - target:
      ref: {apiVersion: apps/v1, kind: Deployment, name: wordpress}
      paths: [/var/www/html, /etc/wordpress]
    tempDir: {sizeLimit: 1Gi}
    hooks:
      preBackup:
        exec:
          command: [/bin/sh, -c, sync]
      postBackup:
        httpPost: {host: alerts.ops, port: 8080, path: /backup-failed}
        executionPolicy: OnFailure
  - task:
      name: pg-backup-15
    target:
      ref: {apiVersion: apps/v1, kind: StatefulSet, name: pg}
    tempDir: {sizeLimit: 1Gi}
    hooks:
      preBackup:
        exec:
          command: [/bin/sh, -c, sync]
      postBackup:
        httpPost: {host: alerts.ops, port: 8080, path: /backup-failed}
        executionPolicy: OnFailure
  - target:
      ref: {apiVersion: v1, kind: PersistentVolumeClaim, name: uploads}
      paths: [/data]
    tempDir: {sizeLimit: 1Gi}
    hooks:
      preBackup:
        exec:
          command: [/bin/sh, -c, sync]
      postBackup:
        httpPost: {host: alerts.ops, port: 8080, path: /backup-failed}
        executionPolicy: OnFailure
  retentionPolicy:
    name: keep
    keepLast: 3
    keepDaily: 7
    prune: true
  backupHistoryLimit: 2
  timeOut: 1h
`

// TestManifestSameAsFlags_Batch: a Stash BackupBatch (a database member, hooks, the dump
// and hook annotations) makes the very objects backup --batch --member makes; the flag
// form written as a Stash manifest (-o stash) and read back makes them too.
func TestManifestSameAsFlags_Batch(t *testing.T) {
	fromFile, stderr, err := runVerb(t, nil, stashBatchBackup, "backup", "-f", "-", "--dry-run=client", "-o", "yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	args := []string{"backup", "--batch", "wordpress", "-n", "shop", "--repo", "s3",
		"--member", "deployment/wordpress:/var/www/html,/etc/wordpress", "--member", "statefulset/pg:dump=postgres", "--member", "pvc/uploads:/data",
		"--pre-backup", "sync", "--post-backup-http", "POST http://alerts.ops:8080/backup-failed", "--post-backup-policy", "OnFailure",
		"--hook-timeout", "1m", "--dump-container", "postgres", "--execution-order", "Sequential", "--schedule", "30 1 * * *",
		"--nice", "10", "--cache-size", "1Gi", "--keep-last", "3", "--keep-daily", "7", "--prune", "--history-limit", "2", "--timeout", "1h",
		"--dry-run=client"}
	fromFlags, stderr, err := runVerb(t, nil, "", append(args, "-o", "yaml")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if fromFile != fromFlags {
		t.Errorf("backup -f of a BackupBatch and its flags differ:\n-f:\n%s\nflags:\n%s", fromFile, fromFlags)
	}
	for _, want := range []string{`"members":[`, `"dump":{"preset":"postgres","container":"postgres"}`, `"executionOrder":"Sequential"`, "pods/exec"} {
		if !strings.Contains(fromFile, want) {
			t.Errorf("the objects lack %s:\n%s", want, fromFile)
		}
	}
	stash, stderr, err := runVerb(t, nil, "", append(args, "-o", "stash")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"kind: BackupBatch", "name: postgres-backup", "executionPolicy: OnFailure", "kubectl-stash.io/hook-timeout: 1m0s"} {
		if !strings.Contains(stash, want) {
			t.Errorf("-o stash lacks %q:\n%s", want, stash)
		}
	}
	again, stderr, err := runVerb(t, nil, stash, "backup", "-f", "-", "--dry-run=client", "-o", "yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if again != fromFlags {
		t.Errorf("-o stash read back with -f makes other objects:\n%s\nwant:\n%s", again, fromFlags)
	}
	// the command line of the manifest is the flags above
	script, stderr, err := runVerb(t, nil, stashBatchBackup, "convert", "-f", "-", "--to", "flags")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"--batch wordpress", "--member statefulset/pg:dump=postgres", "--member pvc/uploads:/data", "--pre-backup sync",
		"--post-backup-http 'POST http://alerts.ops:8080/backup-failed'", "--post-backup-policy OnFailure", "--hook-timeout 1m0s", "--dump-container postgres"} {
		if !strings.Contains(script, want) {
			t.Errorf("convert --to flags lacks %q:\n%s", want, script)
		}
	}
	// KubeStash has no batch: said, not dropped
	if _, _, err := runVerb(t, nil, "", append(args, "-o", "kubestash")...); err == nil || !strings.Contains(err.Error(), "backupbatch wordpress: KubeStash's BackupConfiguration has one target per session") {
		t.Errorf("-o kubestash of a batch: %v", err)
	}
}

// TestManifestFlagsScripts: a sample whose command line (the golden of convert --to
// flags) is one backup or restore command makes, run, the very objects -f makes.
func TestManifestFlagsScripts(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join(samplesDir, "..", "golden", "*.flags.sh"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	n := 0
	for _, script := range scripts {
		b, err := os.ReadFile(script)
		if err != nil {
			t.Fatal(err)
		}
		words := shellWords(string(b))
		if len(words) < 3 || words[0] != "kubectl" || words[1] != "stash" || (words[2] != "backup" && words[2] != "restore") || strings.Count(string(b), "kubectl stash") != 1 {
			continue // refused, or more than one command (a repository, a file)
		}
		n++
		sample := filepath.Join(samplesDir, strings.TrimSuffix(filepath.Base(script), ".flags.sh")+".yaml")
		t.Run(filepath.Base(sample), func(t *testing.T) {
			fromFile, stderr, err := runVerb(t, nil, "", words[2], "-f", sample, "--dry-run=client", "-o", "yaml")
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			fromFlags, stderr, err := runVerb(t, nil, "", append(words[2:], "--dry-run=client", "-o", "yaml")...)
			if err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(words, " "), err, stderr)
			}
			if fromFile != fromFlags {
				t.Errorf("-f %s and its command line differ:\n-f:\n%s\nflags:\n%s", sample, fromFile, fromFlags)
			}
		})
	}
	if n == 0 {
		t.Fatal("no sample has a one-command script")
	}
}

// shellWords splits a script the manifest package writes: words, single-quoted words (a
// quote inside is written quote, backslash, quote, quote), and lines continued by a
// backslash.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			w.WriteByte(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == '\\' && i+1 < len(s) && s[i+1] == '\n':
			i++
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\n' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// TestFlagsAsManifests: the flag forms print as Stash and KubeStash manifests, which -f
// reads back into the same objects.
func TestFlagsAsManifests(t *testing.T) {
	args := []string{"backup", "statefulset/web", "-n", "shop", "--name", "web-backup", "--repo", "s3", "--paths", "/var/lib/web",
		"--schedule", "30 1 * * *", "--keep-last", "3", "--keep-tag", "release", "--paused", "--alias", "web", "--nice", "5", "--dry-run=client"}
	objects, _, err := runVerb(t, nil, "", append(args, "-o", "yaml")...)
	if err != nil {
		t.Fatal(err)
	}
	stash, _, err := runVerb(t, nil, "", append(args, "-o", "stash")...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: BackupConfiguration", "alias: web", "paused: true", "keepTags:\n      - release", "prune: false"} {
		if !strings.Contains(stash, want) {
			t.Errorf("-o stash lacks %q:\n%s", want, stash)
		}
	}
	again, stderr, err := runVerb(t, nil, stash, "backup", "-f", "-", "--dry-run=client", "-o", "yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if again != objects {
		t.Errorf("-o stash read back with -f makes other objects:\n%s\nwant:\n%s", again, objects)
	}
	// KubeStash has no keepTags nor alias: said, not dropped
	if _, _, err := runVerb(t, nil, "", append(args, "-o", "kubestash")...); err == nil || !strings.Contains(err.Error(), "keepTags") || !strings.Contains(err.Error(), `alias "web"`) {
		t.Errorf("-o kubestash of what KubeStash cannot say: %v", err)
	}
	if _, _, err := runVerb(t, nil, "", "backup", "statefulset/web", "--repo", "s3", "--paths", "/d", "-o", "stash"); err == nil || !strings.Contains(err.Error(), "add --dry-run=client") {
		t.Errorf("-o stash without --dry-run=client: %v", err)
	}
}

// TestManifestFlagErrors: -f replaces the target and the flags that describe it.
func TestManifestFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"backup", "-f", "-", "--repo", "s3"}, "--repo with -f: the manifests say what the flags would; give one or the other"},
		{[]string{"backup", "deployment/web", "-f", "-"}, "deployment/web with -f: the manifests name the targets"},
		{[]string{"restore", "-f", "-", "--rule", "paths=/a"}, "--rule with -f"},
		{[]string{"trigger", "shop-backup", "-f", "-"}, "shop-backup with -f: the manifests name the configurations"},
		{[]string{"backup", "-f", "-", "-n", "other"}, "the manifests are in namespace shop, and -n says other: give -n shop, or leave -n out"},
		{[]string{"restore", "-f", "-"}, "no RestoreSession in the manifests of -f -: kubectl stash restore -f starts restore sessions"},
		{[]string{"trigger", "-f", "-"}, "nothing was created: Stash BackupConfiguration web-backup (<stdin>:1) is for kubectl stash backup -f"},
		{[]string{"convert", "-f", "-"}, "--to is required: kubestash, stash or flags"},
	} {
		_, _, err := runVerb(t, nil, stashStatefulSetBackup, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	// a problem of the manifests: nothing created, the place and the fix
	dryRun := strings.Replace(stashStatefulSetBackup, "prune: false", "prune: false\n    dryRun: true", 1)
	_, _, err := runVerb(t, nil, dryRun, "backup", "-f", "-", "--dry-run=client")
	if want := "nothing was created: <stdin>:31:5: spec.retentionPolicy.dryRun: dryRun: true is not supported"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("dryRun: true: %v, want %q", err, want)
	}
	_, stderr, err := runVerb(t, nil, dryRun, "backup", "-f", "-", "--dry-run=client", "--ignore-unsupported")
	if err != nil || !strings.Contains(stderr, "Warning: <stdin>:31:5: spec.retentionPolicy.dryRun: not applied: dryRun: true is not supported") {
		t.Errorf("--ignore-unsupported: %v\n%s", err, stderr)
	}
}

// TestBackupManifestCreates: backup -f creates the configuration in the manifests'
// namespace, as the flags do.
func TestBackupManifestCreates(t *testing.T) {
	cs := fake.NewClientset(repository.NewSecret("s3", "shop", "s3://b/p", "pw", nil), webStatefulSet("shop"),
		boundPVC("shop", "data-web-0"), boundPVC("shop", "data-web-1"))
	out, stderr, err := runVerb(t, cs, strings.ReplaceAll(stashStatefulSetBackup, "/var/lib/web", "/var/lib/web/db"), "backup", "-f", "-")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(out, "cronjob.batch/web-backup created") || !strings.Contains(out, `backup configuration web-backup of statefulset/web (2 host(s) now) runs on schedule "30 1 * * *"`) {
		t.Errorf("output:\n%s", out)
	}
	cj, err := cs.BatchV1().CronJobs("shop").Get(context.Background(), "web-backup", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cfg api.BackupConfig
	if err := json.Unmarshal([]byte(cj.Annotations[api.AnnotationConfig]), &cfg); err != nil || cfg.Retention.KeepDaily != 7 || cfg.HistoryLimit != 2 || cfg.Image != "stash-job:test" {
		t.Errorf("config %+v: %v", cfg, err)
	}
}

func webStatefulSet(ns string) *appsv1.StatefulSet {
	two := int32(2)
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: appsv1.StatefulSetSpec{Replicas: &two,
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web",
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/web"}}}}}},
		VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}}}
}

func boundPVC(ns, name string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:   corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
}

// TestEnsureRepository: a manifest's repository Secret is created, left alone when it is
// the same, and refused when it differs or is not kubectl stash's.
func TestEnsureRepository(t *testing.T) {
	ctx := context.Background()
	r := manifest.Repository{Name: "repo", URL: "gs://b/p", Password: "pw", Env: map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": "{}"},
		Origin: manifest.Origin{File: "r.yaml", Line: 3, Kind: "Stash Repository"}}
	cs := fake.NewClientset()
	streams, _, out, _ := genericiooptions.NewTestIOStreams()
	g := &GlobalOptions{ConfigFlags: genericclioptions.NewConfigFlags(true)}
	if err := ensureRepository(ctx, g, streams, out, cs, "ns", r, false, false); err != nil {
		t.Fatal(err)
	}
	got, err := repository.Get(ctx, cs, "ns", "repo")
	if err != nil || got.URL != r.URL || got.Password != "pw" || got.Env["GOOGLE_APPLICATION_CREDENTIALS"] != "{}" || !got.Managed {
		t.Fatalf("secret: %v %+v", err, got)
	}
	out.Reset()
	if err := ensureRepository(ctx, g, streams, out, cs, "ns", r, false, false); err != nil || out.String() != "secret/repo unchanged\n" {
		t.Errorf("again: %v %q", err, out)
	}
	r.URL, r.Password = "gs://b/other", "other"
	want := "Stash Repository (r.yaml:3): repository secret \"repo\" in namespace ns is not the manifests' repository: its URL is gs://b/p, the manifests' gs://b/other; its password differs; nothing was changed: rename the repository, or replace the secret (kubectl stash repo create repo --overwrite)"
	if err := ensureRepository(ctx, g, streams, out, cs, "ns", r, false, false); err == nil || err.Error() != want {
		t.Errorf("different:\n got %v\nwant %s", err, want)
	}
	cs = fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "ns"}})
	if err := ensureRepository(ctx, g, streams, out, cs, "ns", r, false, false); err == nil || !strings.Contains(err.Error(), "kubectl stash did not create it") {
		t.Errorf("not ours: %v", err)
	}
}

// TestTriggerManifest: a Stash BackupSession starts a session of its configuration, named
// as the manifest names it; a KubeStash one finds the configuration of its session.
func TestTriggerManifest(t *testing.T) {
	cs := triggerCluster(t, "demo")
	seed, err := os.ReadFile(filepath.Join(samplesDir, "seed-stash-backupsession.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runVerb(t, cs, string(seed), "trigger", "-f", "-")
	if err != nil || out != "backupsession deployment-backup-2do7af created\n" {
		t.Fatalf("%v %q %s", err, out, stderr)
	}
	j, err := cs.BatchV1().Jobs("demo").Get(context.Background(), "deployment-backup-2do7af", metav1.GetOptions{})
	if err != nil || j.Labels[api.LabelBackupConfiguration] != "deployment-backup" {
		t.Fatalf("job: %v %v", err, j)
	}
	out, stderr, err = runVerb(t, cs, "", "trigger", "-f", filepath.Join(samplesDir, "kubestash-backupsession.yaml"))
	if err != nil || out != "backupsession sample-backup-sts-manual created\n" {
		t.Fatalf("%v %q %s", err, out, stderr)
	}
	out, stderr, err = runVerb(t, cs, "", "trigger", "-f", filepath.Join(samplesDir, "stash-backupsession-batch.yaml"))
	if err != nil || out != "backupsession wordpress-backup-manual1 created\n" {
		t.Fatalf("a BackupSession of a BackupBatch: %v %q %s", err, out, stderr)
	}
	j, err = cs.BatchV1().Jobs("demo").Get(context.Background(), "wordpress-backup-manual1", metav1.GetOptions{})
	if err != nil || j.Labels[api.LabelBackupConfiguration] != "wordpress-backup" {
		t.Fatalf("job of the batch: %v %v", err, j)
	}
	bad := strings.Replace(string(seed), "name: deployment-backup-2do7af", "name: other-2do7af", 1)
	if _, _, err := runVerb(t, cs, bad, "trigger", "-f", "-"); err == nil || !strings.Contains(err.Error(), "the session of configuration deployment-backup is a Job named deployment-backup-<suffix>") {
		t.Errorf("a session named otherwise: %v", err)
	}
}

// TestRestoreManifestCreates: a Stash RestoreSession naming only its repository restores
// the snapshots of the configuration writing to it, found in the cluster (none here: the
// target's own), as the flags restore them.
func TestRestoreManifestCreates(t *testing.T) {
	cs, sn := restoreFixture(t)
	rs := `apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata:
  name: shop-restore
spec:
  repository:
    name: s3
  target:
    ref:
      apiVersion: apps/v1
      kind: Deployment
      name: shop
    rules:
    - paths: [` + sn.Paths[0] + `]
`
	streams, in, out, errOut := genericiooptions.NewTestIOStreams()
	in.WriteString(rs)
	_ = streams
	stdout, stderr, err := runRestoreCmd(t, cs, "-f", writeTemp(t, rs))
	_, _, _ = in, out, errOut
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout, stderr)
	}
	for _, want := range []string{"no backup configuration writes to repository s3: restoring the snapshots of deployment/shop itself",
		"host-0 <- " + sn.Paths[0] + " of " + sn.ShortID, "restoresession shop-restore created"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	cfg, _ := sessionConfig(t, cs, "shop-restore")
	if cfg.SourceTarget != cfg.Target || len(cfg.Rules) != 1 || cfg.Rules[0].Paths[0] != sn.Paths[0] || cfg.Image == "" {
		t.Errorf("config %+v", cfg)
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestConvert: convert prints what the manifest package renders, and says what cannot be
// converted.
func TestConvert(t *testing.T) {
	file := filepath.Join(samplesDir, "stash-backupconfiguration-pvc.yaml")
	for _, to := range []string{"kubestash", "flags"} {
		out, stderr, err := runVerb(t, nil, "", "convert", "-f", file, "--to", to)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		ext := map[string]string{"kubestash": ".convert-kubestash.yaml", "flags": ".flags.sh"}[to]
		want, err := os.ReadFile(filepath.Join(samplesDir, "..", "golden", "stash-backupconfiguration-pvc"+ext))
		if err != nil {
			t.Fatal(err)
		}
		if out != string(want) {
			t.Errorf("convert --to %s:\n%s\nwant:\n%s", to, out, want)
		}
	}
	file = filepath.Join(samplesDir, "stash-backupconfiguration.yaml")
	if _, _, err := runVerb(t, nil, "", "convert", "-f", file, "--to", "kubestash"); err == nil || !strings.Contains(err.Error(), "keepTags") {
		t.Errorf("convert of what KubeStash cannot say: %v", err)
	}
	out, stderr, err := runVerb(t, nil, "", "convert", "-f", file, "--to", "kubestash", "--ignore-unsupported")
	if err != nil || !strings.Contains(stderr, "Warning: left out: backupconfiguration sts-backup: keeping snapshots by tag (keepTags) has no KubeStash RetentionPolicy field") || !strings.Contains(out, "kind: BackupConfiguration") {
		t.Errorf("--ignore-unsupported: %v\n%s", err, stderr)
	}
}
