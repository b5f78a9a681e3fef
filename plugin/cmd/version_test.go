package cmd

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/version"
)

// runStash runs the real root command with no kubeconfig: nothing reaches a cluster.
func runStash(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-kubeconfig"))
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	root := NewCmdStash(streams)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func TestVersion(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, out string)
	}{
		{"text shows three facts", []string{"version"}, func(t *testing.T, out string) {
			for _, want := range []string{"Version:   " + version.Version(), "GitCommit: " + version.GitCommit(), "JobImage:  " + version.DefaultImage()} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		}},
		{"json", []string{"version", "-o", "json"}, func(t *testing.T, out string) {
			var got version.Info
			if err := json.Unmarshal([]byte(out), &got); err != nil || got != version.Get() {
				t.Errorf("got %+v (%v), want %+v", got, err, version.Get())
			}
		}},
		{"image override", []string{"version", "--image", "example.com/x:1"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "JobImage:  example.com/x:1") {
				t.Errorf("override not shown:\n%s", out)
			}
		}},
		{"yaml", []string{"version", "-o", "yaml"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "jobImage: "+version.DefaultImage()) {
				t.Errorf("yaml lacks jobImage:\n%s", out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runStash(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, out)
		})
	}
}

func TestVersionRejectsUnknownOutput(t *testing.T) {
	_, _, err := runStash(t, "version", "-o", "xml")
	if err == nil || !strings.Contains(err.Error(), `--output "xml"`) {
		t.Fatalf("err = %v, want one naming --output \"xml\"", err)
	}
}

func TestHelpSaysKubectlStash(t *testing.T) {
	out, _, err := runStash(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "kubectl stash [command]") {
		t.Errorf("help does not use the kubectl stash prefix:\n%s", out)
	}
}

func TestVersionWithoutKubeconfigSaysNothingMore(t *testing.T) {
	out, errOut, err := runStash(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	if errOut != "" {
		t.Errorf("stderr without a kubeconfig: %q, want nothing", errOut)
	}
	if !strings.Contains(out, "JobImage:  "+version.DefaultImage()) {
		t.Errorf("output lacks the pinned image:\n%s", out)
	}
}

// backupConfigCronJob is a backup configuration as kubectl stash backup leaves it: a
// labelled CronJob whose config annotation names the job image.
func backupConfigCronJob(ns, name, image string) *batchv1.CronJob {
	cfg, _ := json.Marshal(api.BackupConfig{SchemaVersion: api.SchemaVersion, Name: name, Repository: "repo",
		Paths: []string{"/data"}, Image: image})
	return &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
		Labels:      map[string]string{api.LabelBackupConfiguration: name},
		Annotations: map[string]string{api.AnnotationConfig: string(cfg)}}}
}

// testKubeconfig names a cluster that is never dialed: the tests' clients are fakes.
const testKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: test
contexts:
- name: test
  context: {cluster: test, user: test}
current-context: test
`

// runVersion runs `kubectl stash version ARGS` with a kubeconfig and the given clients.
func runVersion(t *testing.T, newClient clientsetFunc, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	g := &GlobalOptions{ConfigFlags: genericclioptions.NewConfigFlags(true)}
	root := &cobra.Command{Use: "kubectl-stash", SilenceUsage: true, SilenceErrors: true}
	g.ConfigFlags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVar(&g.Image, "image", "", "job image")
	o := NewVersionOptions(g, streams)
	o.newClient = newClient
	root.AddCommand(newCmdVersion(o))
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func TestVersionWarnsAboutConfigurationsOnOtherImages(t *testing.T) {
	mine := version.DefaultImage()
	old := version.ImageRepository + ":v0.9.0"
	notAConfig := backupConfigCronJob("shop", "unrelated", old)
	delete(notAConfig.Labels, api.LabelBackupConfiguration)
	unreadable := backupConfigCronJob("shop", "unreadable", "")
	unreadable.Annotations[api.AnnotationConfig] = "{"
	cs := fake.NewClientset(
		backupConfigCronJob("shop", "current", mine),
		backupConfigCronJob("shop", "mirrored", "registry.example.com/mirror/stash-job:"+version.ImageTag(version.Version())),
		backupConfigCronJob("shop", "older", old),
		backupConfigCronJob("shop", "pinned-by-digest", version.ImageRepository+"@sha256:0123"),
		backupConfigCronJob("other-ns", "elsewhere", old),
		notAConfig, unreadable,
	)
	clients := func() (kubernetes.Interface, error) { return cs, nil }

	tests := []struct {
		name       string
		args       []string
		wantWarned []string
		wantOut    string
	}{
		{"default image", []string{"version", "-n", "shop"}, []string{"shop/older", "shop/pinned-by-digest"}, "JobImage:  " + mine},
		{"json output, warnings still on stderr", []string{"version", "-n", "shop", "-o", "json"}, []string{"shop/older", "shop/pinned-by-digest"}, `"jobImage": "` + mine + `"`},
		{"--image of the older version", []string{"version", "-n", "shop", "--image", "example.com/stash-job:v0.9.0"},
			[]string{"shop/current", "shop/mirrored", "shop/pinned-by-digest"}, "JobImage:  example.com/stash-job:v0.9.0"},
		{"another namespace", []string{"version", "-n", "other-ns"}, []string{"other-ns/elsewhere"}, "JobImage:  " + mine},
		{"empty namespace", []string{"version", "-n", "nothing-here"}, nil, "JobImage:  " + mine},
	}
	all := []string{"shop/current", "shop/mirrored", "shop/older", "shop/pinned-by-digest", "other-ns/elsewhere", "shop/unrelated", "shop/unreadable"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runVersion(t, clients, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantOut, out)
			}
			if strings.Contains(out, "Warning") {
				t.Errorf("a warning went to stdout:\n%s", out)
			}
			for _, c := range all {
				warned := strings.Contains(errOut, "backup configuration "+c+" runs job image ")
				want := false
				for _, w := range tt.wantWarned {
					want = want || w == c
				}
				if warned != want {
					t.Errorf("%s: warned %v, want %v; stderr:\n%s", c, warned, want, errOut)
				}
			}
			if len(tt.wantWarned) > 0 && !strings.Contains(errOut, "run kubectl stash backup for it again") {
				t.Errorf("the warning does not say what to do:\n%s", errOut)
			}
		})
	}
	if _, errOut, _ := runVersion(t, clients, "version", "-n", "shop"); !strings.Contains(errOut,
		"Warning: backup configuration shop/older runs job image "+old+", not "+version.ImageTag(version.Version())+" like this plugin") {
		t.Errorf("warning text:\n%s", errOut)
	}
}

func TestVersionClientOnlyAsksNoCluster(t *testing.T) {
	called := false
	out, errOut, err := runVersion(t, func() (kubernetes.Interface, error) {
		called = true
		return fake.NewClientset(backupConfigCronJob("default", "older", "x/stash-job:v0.0.1")), nil
	}, "version", "--client")
	if err != nil || called || errOut != "" {
		t.Errorf("err %v, client built %v, stderr %q; want none of them", err, called, errOut)
	}
	if !strings.Contains(out, "Version:   "+version.Version()) {
		t.Errorf("stdout:\n%s", out)
	}
}

func TestVersionWhenTheClusterCannotBeAsked(t *testing.T) {
	forbidden := fake.NewClientset()
	forbidden.PrependReactor("list", "cronjobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "cronjobs"}, "", errors.New("no list"))
	})
	tests := []struct {
		name      string
		newClient clientsetFunc
		want      string
	}{
		{"no client", func() (kubernetes.Interface, error) { return nil, errors.New("bad certificate") },
			"Warning: the job images of the backup configurations were not checked: bad certificate"},
		{"list forbidden", func() (kubernetes.Interface, error) { return forbidden, nil },
			"Warning: the job images of the backup configurations in namespace shop were not checked: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runVersion(t, tt.newClient, "version", "-n", "shop")
			if err != nil {
				t.Fatalf("version failed: %v (a cluster that cannot be asked is only a warning)", err)
			}
			if !strings.Contains(out, "Version:   ") || !strings.Contains(errOut, tt.want) {
				t.Errorf("stdout:\n%s\nstderr:\n%s\nwant stderr containing %q", out, errOut, tt.want)
			}
		})
	}
}

func TestImageVersion(t *testing.T) {
	tests := []struct {
		name, ref, want string
	}{
		{"tag", "ghcr.io/kubectl-stash/stash-job:v1.2.3", "v1.2.3"},
		{"registry with a port", "localhost:5000/stash-job:v1.2.3", "v1.2.3"},
		{"registry with a port, no tag", "localhost:5000/stash-job", "latest"},
		{"no tag", "stash-job", "latest"},
		{"digest", "ghcr.io/kubectl-stash/stash-job@sha256:abc", "sha256:abc"},
		{"tag and digest", "ghcr.io/kubectl-stash/stash-job:v1.2.3@sha256:abc", "sha256:abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := imageVersion(tt.ref); got != tt.want {
				t.Errorf("imageVersion(%q) = %q, want %q", tt.ref, got, tt.want)
			}
		})
	}
	if otherImageVersion("", "x:v1") {
		t.Error("an unknown image counts as another version")
	}
	if otherImageVersion("mirror.example.com/a/stash-job:v1", "ghcr.io/kubectl-stash/stash-job:v1") {
		t.Error("a mirror of the same version counts as another version")
	}
}

func TestGetBackupConfigurationsMarksOtherImages(t *testing.T) {
	old := version.ImageRepository + ":v0.9.0"
	cs := fake.NewClientset(
		backupConfigCronJob("shop", "current", version.DefaultImage()),
		backupConfigCronJob("shop", "older", old),
	)
	want := "(*) backup configuration older runs job image " + old + ", not " + version.ImageTag(version.Version()) +
		" like this plugin: run kubectl stash backup for it again to move it to this version\n"
	tests := []struct {
		name, wantErr string
		args          []string
		wide          bool
	}{
		{"table", want, []string{"get", "bc", "-n", "shop"}, false},
		{"wide", want, []string{"get", "bc", "-n", "shop", "-o", "wide"}, true},
		{"all namespaces", strings.Replace(want, "configuration older", "configuration shop/older", 1), []string{"get", "bc", "-A"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runSessions(t, cs, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if errOut != tt.wantErr {
				t.Errorf("stderr %q, want %q", errOut, tt.wantErr)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 {
				t.Fatalf("want a header and two rows:\n%s", out)
			}
			if got := strings.Contains(lines[0], "IMAGE"); got != tt.wide {
				t.Errorf("IMAGE column shown %v, want %v:\n%s", got, tt.wide, out)
			}
			for _, l := range lines[1:] {
				marked := strings.HasSuffix(l, "(*)")
				if isOld := strings.Contains(l, "older"); marked != isOld {
					t.Errorf("row %q: marked %v, want %v", l, marked, isOld)
				}
				if tt.wide && strings.Contains(l, "older") && !strings.Contains(l, old) {
					t.Errorf("wide row %q lacks its image %s", l, old)
				}
				if tt.wide && strings.Contains(l, "current") && !strings.Contains(l, version.DefaultImage()) {
					t.Errorf("wide row %q lacks its image %s", l, version.DefaultImage())
				}
			}
		})
	}
}
