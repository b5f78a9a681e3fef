package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	_ "gocloud.dev/blob/fileblob"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

// testNow is the clock of `repo list` in tests.
var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// cmdTest runs the repo and snapshots verbs on a fake clientset.
type cmdTest struct {
	cs    *fake.Clientset
	stdin string
	// logs is what the pod of a --via-job Job printed.
	logs string
}

func (ct cmdTest) run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	// No kubeconfig of the machine running the tests leaks in.
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-kubeconfig"))
	streams, in, out, errOut := genericiooptions.NewTestIOStreams()
	in.WriteString(ct.stdin)
	g := &GlobalOptions{ConfigFlags: genericclioptions.NewConfigFlags(true)}
	root := &cobra.Command{Use: "kubectl-stash", SilenceUsage: true, SilenceErrors: true,
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl stash"}}
	root.SetOut(out)
	root.SetErr(errOut)
	g.ConfigFlags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVar(&g.Image, "image", "", "job image")
	clients := func() (kubernetes.Interface, error) { return ct.cs, nil }

	create := NewRepoCreateOptions(g, streams)
	create.newClient, create.initOptions = clients, repo.InitOptions{KDF: repotest.CheapKDF}
	create.pollInterval, create.jobTimeout, create.podLogs = time.Millisecond, 10*time.Second, canned(ct.logs)
	list := NewRepoListOptions(g, streams)
	list.newClient, list.now = clients, func() time.Time { return testNow }
	del := NewRepoDeleteOptions(g, streams)
	del.newClient = clients
	snaps := NewSnapshotsOptions(g, streams)
	snaps.newClient, snaps.location, snaps.pollInterval = clients, time.UTC, time.Millisecond
	snaps.podLogs = canned(ct.logs)
	repoCmd := &cobra.Command{Use: "repo"}
	repoCmd.AddCommand(newCmdRepoCreate(create), newCmdRepoList(list), newCmdRepoDelete(del))
	root.AddCommand(repoCmd, newCmdSnapshots(snaps))
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// canned is a pod log that says logs.
func canned(logs string) repoJobLogFunc {
	return func(context.Context, kubernetes.Interface, string, string, string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(logs)), nil
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func getSecret(t *testing.T, cs kubernetes.Interface, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := cs.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRepoCreate(t *testing.T) {
	ct := cmdTest{cs: fake.NewClientset()}
	pw := writeFile(t, "password", "correct horse battery staple\n")
	env := writeFile(t, "creds.env", "# MinIO in the cluster\nAWS_ACCESS_KEY_ID=minio\nAWS_SECRET_ACCESS_KEY=minio123\n")
	url := "s3://backups/shop?endpoint=http://minio.storage:9000&region=us-east-1&use_path_style=true"
	out, errOut, err := ct.run(t, "repo", "create", "shop", "-n", "prod", "--url", url, "--password-file", pw, "--from-env-file", env)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if want := "secret/shop created (repository " + url + ")\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	s := getSecret(t, ct.cs, "prod", "shop")
	want := map[string]string{
		api.SecretKeyRepository: url,
		api.SecretKeyPassword:   "correct horse battery staple",
		"AWS_ACCESS_KEY_ID":     "minio",
		"AWS_SECRET_ACCESS_KEY": "minio123",
	}
	if len(s.Data) != len(want) {
		t.Errorf("secret keys %v, want %v", keys(s.Data), want)
	}
	for k, v := range want {
		if string(s.Data[k]) != v {
			t.Errorf("secret %s = %q, want %q", k, s.Data[k], v)
		}
	}
	if s.Labels[api.LabelManagedBy] != api.ManagedByValue || s.Labels[api.LabelRepository] != "shop" || s.Type != corev1.SecretTypeOpaque {
		t.Errorf("labels %v, type %q", s.Labels, s.Type)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRepoCreateGeneratesPassword(t *testing.T) {
	ct := cmdTest{cs: fake.NewClientset()}
	out, errOut, err := ct.run(t, "repo", "create", "shop", "-n", "prod", "--url", "gs://bucket/shop", "--generate-password")
	if err != nil {
		t.Fatal(err)
	}
	pw := string(getSecret(t, ct.cs, "prod", "shop").Data[api.SecretKeyPassword])
	if len(pw) != 43 || !strings.Contains(errOut, "\n  "+pw+"\n") || !strings.Contains(errOut, "Store it somewhere safe") {
		t.Errorf("password %q, stderr:\n%s", pw, errOut)
	}
	if strings.Contains(out, pw) {
		t.Errorf("the password is on stdout:\n%s", out)
	}
}

func TestRepoCreateRefusesSecretsNotOurs(t *testing.T) {
	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "prod"}, Data: map[string][]byte{"tls.crt": []byte("x")}}
	ct := cmdTest{cs: fake.NewClientset(theirs)}
	for _, extra := range [][]string{nil, {"--overwrite"}} {
		args := append([]string{"repo", "create", "shop", "-n", "prod", "--url", "gs://bucket/shop", "--generate-password"}, extra...)
		_, errOut, err := ct.run(t, args...)
		if strings.Contains(errOut, "Generated repository password") {
			t.Errorf("a password was shown for a Secret that is not written:\n%s", errOut)
		}
		want := `secret "shop" already exists in namespace "prod" and kubectl stash did not create it`
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "kubectl delete secret shop -n prod") {
			t.Fatalf("%v: err = %v, want %q", extra, err, want)
		}
	}
	if s := getSecret(t, ct.cs, "prod", "shop"); string(s.Data["tls.crt"]) != "x" || len(s.Data) != 1 {
		t.Errorf("the Secret changed: %v", s.Data)
	}
}

func TestRepoCreateOverwrite(t *testing.T) {
	ct := cmdTest{cs: fake.NewClientset(repository.NewSecret("shop", "prod", "gs://old/shop", "old", nil))}
	_, _, err := ct.run(t, "repo", "create", "shop", "-n", "prod", "--url", "gs://new/shop", "--generate-password")
	if err == nil || !strings.Contains(err.Error(), `repository secret "shop" already exists in namespace "prod" (repository gs://old/shop): add --overwrite`) {
		t.Fatalf("err = %v", err)
	}
	out, _, err := ct.run(t, "repo", "create", "shop", "-n", "prod", "--url", "gs://new/shop", "--generate-password", "--overwrite")
	if err != nil || out != "secret/shop replaced (repository gs://new/shop)\n" {
		t.Fatalf("%q, %v", out, err)
	}
	if s := getSecret(t, ct.cs, "prod", "shop"); string(s.Data[api.SecretKeyRepository]) != "gs://new/shop" {
		t.Errorf("URL %q", s.Data[api.SecretKeyRepository])
	}
}

func TestRepoCreateDryRunClient(t *testing.T) {
	ct := cmdTest{cs: fake.NewClientset()}
	pw := writeFile(t, "password", "pw")
	out, _, err := ct.run(t, "repo", "create", "shop", "--url", "azblob://container/shop", "--password-file", pw, "--dry-run=client", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := yaml.UnmarshalStrict([]byte(out), &s); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if s.APIVersion != "v1" || s.Kind != "Secret" || s.Name != "shop" || s.Namespace != "" ||
		string(s.Data[api.SecretKeyRepository]) != "azblob://container/shop" || string(s.Data[api.SecretKeyPassword]) != "pw" ||
		s.Labels[api.LabelRepository] != "shop" {
		t.Errorf("printed Secret:\n%s", out)
	}
	if a := ct.cs.Actions(); len(a) != 0 {
		t.Errorf("a client dry run called the API: %v", a)
	}
	// With -n the manifest names its namespace; without -o, a line says what would happen.
	out, _, err = ct.run(t, "repo", "create", "shop", "-n", "prod", "--url", "azblob://container/shop", "--password-file", pw, "--dry-run=client", "-o", "json")
	if err != nil || !strings.Contains(out, `"namespace": "prod"`) {
		t.Errorf("%v:\n%s", err, out)
	}
	out, _, err = ct.run(t, "repo", "create", "shop", "--url", "azblob://container/shop", "--password-file", pw, "--dry-run=client")
	if err != nil || out != "secret/shop created (repository azblob://container/shop, dry run)\n" {
		t.Errorf("%q, %v", out, err)
	}
}

func TestRepoCreateDryRunServer(t *testing.T) {
	ct := cmdTest{cs: fake.NewClientset()}
	out, _, err := ct.run(t, "repo", "create", "shop", "-n", "prod", "--url", "gs://b/shop", "--generate-password", "--dry-run=server")
	if err != nil || out != "secret/shop created (repository gs://b/shop, server dry run)\n" {
		t.Fatalf("%q, %v", out, err)
	}
	var sawDryRun bool
	for _, a := range ct.cs.Actions() {
		if c, ok := a.(k8stesting.CreateActionImpl); ok {
			sawDryRun = len(c.CreateOptions.DryRun) == 1 && c.CreateOptions.DryRun[0] == metav1.DryRunAll
		}
	}
	if !sawDryRun {
		t.Errorf("no create with dryRun=All among %v", ct.cs.Actions())
	}
}

func TestRepoCreateValidation(t *testing.T) {
	pw := writeFile(t, "password", "pw")
	empty := writeFile(t, "empty", "\n")
	badEnv := writeFile(t, "creds.env", "AWS_ACCESS_KEY_ID=x\nAWS-SECRET=y\n")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no name", []string{"--url", "s3://b", "--generate-password"}, "create takes 1 argument(s), NAME; got 0"},
		{"bad name", []string{"Shop_1", "--url", "s3://b", "--generate-password"}, `"Shop_1" is not a valid repository name`},
		{"no URL", []string{"shop", "--generate-password"}, "--url is required"},
		{"unsupported scheme", []string{"shop", "--url", "http://minio/b", "--generate-password"}, `unsupported scheme "http": use one of s3, gs, azblob, file, pvc`},
		{"both password sources", []string{"shop", "--url", "s3://b", "--generate-password", "--password-file", pw}, "give exactly one of --password-file FILE and --generate-password"},
		{"no password source", []string{"shop", "--url", "s3://b"}, "give exactly one of --password-file FILE and --generate-password"},
		{"empty password file", []string{"shop", "--url", "s3://b", "--password-file", empty}, "is empty"},
		{"missing password file", []string{"shop", "--url", "s3://b", "--password-file", "/nonexistent/pw"}, "--password-file: password file: open /nonexistent/pw"},
		{"bad env file", []string{"shop", "--url", "s3://b", "--generate-password", "--from-env-file", badEnv}, badEnv + `:2: "AWS-SECRET" is not a valid environment variable name`},
		{"init in a dry run", []string{"shop", "--url", "s3://b", "--generate-password", "--init", "--dry-run=server"}, "drop one of --init and --dry-run"},
		{"bad dry run", []string{"shop", "--url", "s3://b", "--generate-password", "--dry-run=maybe"}, `--dry-run="maybe": want none, client or server`},
		{"bad output", []string{"shop", "--url", "s3://b", "--generate-password", "-o", "wide"}, `--output "wide" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := cmdTest{cs: fake.NewClientset()}
			_, _, err := ct.run(t, append([]string{"repo", "create", "-n", "prod"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if a := ct.cs.Actions(); len(a) != 0 {
				t.Errorf("validation failed after calling the API: %v", a)
			}
		})
	}
}

// fileRepo returns the URL of a new file:// repository made with the engine, holding a
// snapshot of host-0 (one file, 5 bytes) at t0 and one of host-1 (two files, 9 bytes) an
// hour later, and the directories they backed up.
func fileRepo(t *testing.T, password string, t0 time.Time) (url, dirA, dirB string) {
	t.Helper()
	ctx := context.Background()
	url = "file://" + filepath.Join(t.TempDir(), "repo")
	r, err := repository.FromSecret(repository.NewSecret("x", "ns", url, password, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Init(ctx, repo.InitOptions{KDF: repotest.CheapKDF}); err != nil {
		t.Fatal(err)
	}
	bk := func(host string, at time.Time, files map[string]string) string {
		src := t.TempDir()
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		rp, closeFn, err := r.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer closeFn()
		if err := rp.LoadIndex(ctx); err != nil {
			t.Fatal(err)
		}
		opts := snapshot.BackupOptions{Host: host, Tags: []string{"daily"}, Session: "shop-backup-1", Now: func() time.Time { return at }}
		if _, err := snapshot.Backup(ctx, rp, []string{src}, opts); err != nil {
			t.Fatal(err)
		}
		return src
	}
	dirA = bk("host-0", t0, map[string]string{"a.txt": "alpha"})
	dirB = bk("host-1", t0.Add(time.Hour), map[string]string{"b.txt": "beta", "c.txt": "gamma"})
	return url, dirA, dirB
}

func repoExists(t *testing.T, url, password string) bool {
	t.Helper()
	r, err := repository.FromSecret(repository.NewSecret("x", "ns", url, password, nil))
	if err != nil {
		t.Fatal(err)
	}
	_, closeFn, err := r.Open(context.Background())
	if errors.Is(err, repo.ErrNoRepository) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	closeFn()
	return true
}

func TestRepoCreateInit(t *testing.T) {
	ct := cmdTest{cs: fake.NewClientset()}
	pw := writeFile(t, "password", "pw")
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	out, errOut, err := ct.run(t, "repo", "create", "local", "-n", "dev", "--url", url, "--password-file", pw, "--init")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.HasPrefix(out, "repository "+url+" initialized (id ") || !strings.HasSuffix(out, "secret/local created (repository "+url+")\n") {
		t.Errorf("stdout:\n%s", out)
	}
	if !strings.Contains(errOut, "Warning: "+url+" is a directory on the machine that opens it") {
		t.Errorf("no file:// warning:\n%s", errOut)
	}
	if !repoExists(t, url, "pw") {
		t.Fatal("--init created no repository")
	}
	out, _, err = ct.run(t, "repo", "create", "local", "-n", "dev", "--url", url, "--password-file", pw, "--init", "--overwrite")
	if err != nil || !strings.Contains(out, "exists already") || !strings.Contains(out, "left as it is") {
		t.Fatalf("second --init: %v\n%s", err, out)
	}
	// A Secret whose password does not open the repository there is refused, and not written.
	other := writeFile(t, "other", "another password")
	_, _, err = ct.run(t, "repo", "create", "local2", "-n", "dev", "--url", url, "--password-file", other, "--init")
	if err == nil || !strings.Contains(err.Error(), "this password does not open it") || !strings.Contains(err.Error(), "no Secret was written") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ct.cs.CoreV1().Secrets("dev").Get(context.Background(), "local2", metav1.GetOptions{}); err == nil {
		t.Error("the Secret was written anyway")
	}
}

func TestRepoCreateInitPVC(t *testing.T) {
	pw := writeFile(t, "password", "pw")
	args := []string{"repo", "create", "local", "-n", "dev", "--url", "pvc://backup-volume/repo", "--password-file", pw, "--init", "--image", "registry.example/stash-job:test"}

	ct := cmdTest{cs: fake.NewClientset(), logs: "created repository 1a2b3c4d at file:///stash-repository/repo (compression zstd, hash blake3)\n"}
	var jobs []*batchv1.Job
	jobController(ct.cs, batchv1.JobComplete, corev1.PodStatus{}, &jobs)
	out, _, err := ct.run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 {
		t.Fatalf("%d jobs", len(jobs))
	}
	j := jobs[0]
	want := "secret/local created (repository pvc://backup-volume/repo)\nrepository pvc://backup-volume/repo initialized (by job/" + j.Name + ")\n"
	if out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	getSecret(t, ct.cs, "dev", "local")
	spec := j.Spec.Template.Spec
	c := spec.Containers[0]
	if !strings.HasPrefix(j.Name, "stash-init-") || strings.Join(c.Args, " ") != "init --repo $(STASH_REPOSITORY)" || c.Image != "registry.example/stash-job:test" ||
		c.EnvFrom[0].SecretRef.Name != "local" || c.Env[0].Value != "file:///stash-repository/repo" {
		t.Errorf("job %s: container %+v", j.Name, c)
	}
	if spec.Volumes[0].PersistentVolumeClaim.ReadOnly || c.VolumeMounts[0].ReadOnly {
		t.Error("init mounts the claim read-only")
	}
	if *c.SecurityContext.RunAsUser != 0 || c.SecurityContext.Capabilities.Drop[0] != "ALL" {
		t.Errorf("init runs as %+v: want uid 0 without capabilities, as the backup host pods that write there", c.SecurityContext)
	}

	// An existing repository is left alone.
	ct = cmdTest{cs: fake.NewClientset(), logs: "stash-job: file:///stash-repository/repo: a repository already exists here\n"}
	jobController(ct.cs, batchv1.JobFailed, corev1.PodStatus{}, &jobs)
	out, _, err = ct.run(t, args...)
	if err != nil || !strings.Contains(out, "repository pvc://backup-volume/repo exists already: left as it is") {
		t.Fatalf("%v\n%s", err, out)
	}

	// Any other failure is an error that shows the log and says the Secret is there.
	ct = cmdTest{cs: fake.NewClientset(), logs: "stash-job: mkdir /stash-repository/repo: permission denied\n"}
	jobController(ct.cs, batchv1.JobFailed, corev1.PodStatus{}, &jobs)
	_, _, err = ct.run(t, args...)
	if err == nil || !strings.Contains(err.Error(), "the Secret is written") || !strings.Contains(err.Error(), "  stash-job: mkdir /stash-repository/repo: permission denied") {
		t.Fatalf("err = %v", err)
	}
	getSecret(t, ct.cs, "dev", "local")
}

func TestRepoList(t *testing.T) {
	created := func(s *corev1.Secret, ago time.Duration) *corev1.Secret {
		s.CreationTimestamp = metav1.NewTime(testNow.Add(-ago))
		return s
	}
	broken := created(repository.NewSecret("broken", "prod", "s3://b/x", "pw", nil), time.Minute)
	delete(broken.Data, api.SecretKeyPassword)
	ct := cmdTest{cs: fake.NewClientset(
		created(repository.NewSecret("shop", "prod", "s3://backups/shop?region=eu-west-1", "pw", map[string]string{"AWS_ACCESS_KEY_ID": "a"}), 3*24*time.Hour),
		created(repository.NewSecret("local", "prod", "pvc://backup-volume/repo", "pw", nil), 2*time.Hour),
		created(repository.NewSecret("other", "dev", "gs://b/dev", "pw", nil), time.Hour),
		broken,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "prod"}},
	)}
	out, _, err := ct.run(t, "repo", "list", "-n", "prod")
	if err != nil {
		t.Fatal(err)
	}
	want := `NAME     URL                                  AGE
broken   <invalid: see -o yaml> s3://b/x      60s
local    pvc://backup-volume/repo             120m
shop     s3://backups/shop?region=eu-west-1   3d
`
	if out != want {
		t.Errorf("table:\n%s\nwant:\n%s", out, want)
	}
	out, _, err = ct.run(t, "repo", "list", "-A")
	if err != nil || !strings.HasPrefix(out, "NAMESPACE   NAME") || !strings.Contains(out, "dev         other    gs://b/dev") {
		t.Errorf("-A: %v\n%s", err, out)
	}
	out, _, err = ct.run(t, "repo", "list", "-n", "prod", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var items []repoListItem
	if err := json.Unmarshal([]byte(out), &items); err != nil || len(items) != 3 {
		t.Fatalf("%v:\n%s", err, out)
	}
	if items[0].Error == "" || !strings.Contains(items[0].Error, "no key STASH_PASSWORD") || items[1].Claim != "backup-volume" ||
		len(items[2].Credentials) != 1 || items[2].Credentials[0] != "AWS_ACCESS_KEY_ID" {
		t.Errorf("items %+v", items)
	}
	if strings.Contains(out, `"pw"`) {
		t.Errorf("-o json shows a password:\n%s", out)
	}
	_, errOut, err := ct.run(t, "repo", "list", "-n", "empty")
	if err != nil || !strings.Contains(errOut, "No repositories found in namespace empty") {
		t.Errorf("empty: %v, %q", err, errOut)
	}
}

func TestRepoDeleteKeepsData(t *testing.T) {
	url, _, _ := fileRepo(t, "pw", testNow)
	ct := cmdTest{cs: fake.NewClientset(repository.NewSecret("local", "dev", url, "pw", nil))}
	out, _, err := ct.run(t, "repo", "delete", "local", "-n", "dev")
	if err != nil {
		t.Fatal(err)
	}
	want := "secret/local deleted; the data of repository " + url + " is kept (recreate the Secret with the same URL and password to use it again, or delete it with --wipe-data)\n"
	if out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	if _, err := ct.cs.CoreV1().Secrets("dev").Get(context.Background(), "local", metav1.GetOptions{}); err == nil {
		t.Error("the Secret is still there")
	}
	if !repoExists(t, url, "pw") {
		t.Error("the repository is gone")
	}
}

func TestRepoDeleteWipeDataWrongNameDeletesNothing(t *testing.T) {
	url, _, _ := fileRepo(t, "pw", testNow)
	ct := cmdTest{cs: fake.NewClientset(repository.NewSecret("local", "dev", url, "pw", nil)), stdin: "lcoal\n"}
	_, errOut, err := ct.run(t, "repo", "delete", "local", "-n", "dev", "--wipe-data")
	if err == nil || err.Error() != `you typed "lcoal", not "local": nothing deleted` {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(errOut, "Type the repository name (local) to confirm: ") {
		t.Errorf("no prompt on stderr:\n%s", errOut)
	}
	getSecret(t, ct.cs, "dev", "local")
	if !repoExists(t, url, "pw") {
		t.Error("the repository is gone")
	}
	// No input at all (a script without --yes) deletes nothing either.
	ct.stdin = ""
	if _, _, err := ct.run(t, "repo", "delete", "local", "-n", "dev", "--wipe-data"); err == nil || !strings.Contains(err.Error(), "add --yes") {
		t.Fatalf("err = %v", err)
	}
	getSecret(t, ct.cs, "dev", "local")
}

func TestRepoDeleteWipeData(t *testing.T) {
	url, _, _ := fileRepo(t, "pw", testNow)
	ct := cmdTest{cs: fake.NewClientset(repository.NewSecret("local", "dev", url, "pw", nil)), stdin: "local\n"}
	out, _, err := ct.run(t, "repo", "delete", "local", "-n", "dev", "--wipe-data")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "repository "+url+" wiped: ") || !strings.HasSuffix(out, "objects deleted\nsecret/local deleted\n") {
		t.Errorf("stdout:\n%s", out)
	}
	if repoExists(t, url, "pw") {
		t.Error("the repository is still there")
	}
	if _, err := ct.cs.CoreV1().Secrets("dev").Get(context.Background(), "local", metav1.GetOptions{}); err == nil {
		t.Error("the Secret is still there")
	}
}

func TestRepoDeleteRefusals(t *testing.T) {
	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: "dev"}}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"missing", []string{"nope"}, `secret "nope" not found in namespace "dev": nothing to delete`},
		{"not ours", []string{"theirs"}, `secret "theirs" in namespace "dev" was not created by kubectl stash`},
		{"wipe a pvc", []string{"onpvc", "--wipe-data", "--yes"}, `--wipe-data cannot reach repository "onpvc" (pvc://vol/repo): it is on PersistentVolumeClaim "vol", which only pods can mount`},
		{"yes alone", []string{"onpvc", "--yes"}, "--yes confirms --wipe-data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := cmdTest{cs: fake.NewClientset(theirs, repository.NewSecret("onpvc", "dev", "pvc://vol/repo", "pw", nil))}
			_, _, err := ct.run(t, append([]string{"repo", "delete", "-n", "dev"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			getSecret(t, ct.cs, "dev", "theirs")
			getSecret(t, ct.cs, "dev", "onpvc")
		})
	}
}

func TestRepoDeleteWarnsAboutConfigurations(t *testing.T) {
	cfg, _ := json.Marshal(api.BackupConfig{SchemaVersion: api.SchemaVersion, Name: "shop", Repository: "s3repo"})
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "dev",
		Labels:      map[string]string{api.LabelBackupConfiguration: "shop"},
		Annotations: map[string]string{api.AnnotationConfig: string(cfg)}}}
	ct := cmdTest{cs: fake.NewClientset(cj, repository.NewSecret("s3repo", "dev", "s3://b/p", "pw", nil))}
	_, errOut, err := ct.run(t, "repo", "delete", "s3repo", "-n", "dev")
	if err != nil || !strings.Contains(errOut, `Warning: backup configuration(s) shop use repository "s3repo"`) {
		t.Errorf("%v; stderr %q", err, errOut)
	}
}

func TestEveryRepoAndSnapshotsHelpHasExamples(t *testing.T) {
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	root := NewCmdStash(streams)
	var check func(c *cobra.Command)
	seen := 0
	check = func(c *cobra.Command) {
		seen++
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no examples in its help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			check(sub)
		}
	}
	for _, name := range []string{"repo", "snapshots"} {
		c, _, err := root.Find([]string{name})
		if err != nil || c.Name() != name {
			t.Fatalf("no %s command: %v", name, err)
		}
		check(c)
	}
	if seen != 5 {
		t.Errorf("checked %d commands, want 5 (repo, create, list, delete, snapshots)", seen)
	}
}
