package repository

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "gocloud.dev/blob/fileblob"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
)

func TestNewSecretAndBack(t *testing.T) {
	s := NewSecret("shop", "prod", "s3://bucket/shop?region=eu-west-1", "pw", map[string]string{"AWS_ACCESS_KEY_ID": "AKIA"})
	if s.Labels[api.LabelManagedBy] != api.ManagedByValue || s.Labels[api.LabelRepository] != "shop" || s.Type != corev1.SecretTypeOpaque {
		t.Errorf("labels %v, type %s", s.Labels, s.Type)
	}
	if string(s.Data[api.SecretKeyRepository]) != "s3://bucket/shop?region=eu-west-1" || string(s.Data[api.SecretKeyPassword]) != "pw" || string(s.Data["AWS_ACCESS_KEY_ID"]) != "AKIA" {
		t.Errorf("data %q", s.Data)
	}
	r, err := FromSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "shop" || r.Namespace != "prod" || r.URL != "s3://bucket/shop?region=eu-west-1" || r.PodURL != r.URL || r.Password != "pw" ||
		r.Claim != "" || !r.Managed || !slices.Equal(r.CredentialKeys(), []string{"AWS_ACCESS_KEY_ID"}) {
		t.Errorf("repository %+v", r)
	}
}

func TestFromSecretPVC(t *testing.T) {
	r, err := FromSecret(NewSecret("local", "ns", "pvc://backup-volume/repo/shop", "pw", nil))
	if err != nil {
		t.Fatal(err)
	}
	if r.Claim != "backup-volume" || r.PodURL != "file://"+api.RepositoryMountPath+"/repo/shop" {
		t.Errorf("claim %q, pod URL %q", r.Claim, r.PodURL)
	}
}

func TestFromSecretErrors(t *testing.T) {
	secret := func(data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "y"}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	tests := []struct {
		name    string
		s       *corev1.Secret
		wantErr string
	}{
		{"no URL", secret(map[string]string{api.SecretKeyPassword: "pw"}),
			`secret "x" in namespace "y" is not a usable repository: it has no key STASH_REPOSITORY (add the key, or recreate the secret with kubectl stash repo create x -n y --url URL --overwrite)`},
		{"no password", secret(map[string]string{api.SecretKeyRepository: "s3://b/p"}), "it has no key STASH_PASSWORD"},
		{"empty password", secret(map[string]string{api.SecretKeyRepository: "s3://b/p", api.SecretKeyPassword: ""}), "its key STASH_PASSWORD is empty"},
		{"bad URL", secret(map[string]string{api.SecretKeyRepository: "ftp://b/p", api.SecretKeyPassword: "pw"}),
			`secret "x" in namespace "y", key STASH_REPOSITORY: repository URL ftp://b/p: unsupported scheme "ftp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromSecret(tt.s)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestFromSecretReadsStringData(t *testing.T) {
	// A Secret applied from a manifest with stringData, as a fake clientset keeps it.
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "y"},
		StringData: map[string]string{api.SecretKeyRepository: "gs://b/p", api.SecretKeyPassword: "pw", "GOOGLE_CLOUD_PROJECT": "p"}}
	r, err := FromSecret(s)
	if err != nil || r.URL != "gs://b/p" || r.Env["GOOGLE_CLOUD_PROJECT"] != "p" || r.Managed {
		t.Fatalf("%+v, %v", r, err)
	}
}

func TestGet(t *testing.T) {
	c := fake.NewClientset(NewSecret("shop", "prod", "gs://b/p", "pw", nil))
	if r, err := Get(context.Background(), c, "prod", "shop"); err != nil || r.URL != "gs://b/p" {
		t.Fatalf("Get = %+v, %v", r, err)
	}
	_, err := Get(context.Background(), c, "dev", "shop")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	want := `secret "shop" not found in namespace "dev": create it with kubectl stash repo create shop -n dev --url URL`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want it to contain %q", err, want)
	}
}

func TestList(t *testing.T) {
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: "a"}}
	c := fake.NewClientset(NewSecret("z", "a", "gs://b/z", "pw", nil), NewSecret("b", "a", "gs://b/b", "pw", nil),
		NewSecret("c", "b", "gs://b/c", "pw", nil), other)
	l, err := List(context.Background(), c, "a")
	if err != nil || len(l) != 2 || l[0].Name != "b" || l[1].Name != "z" {
		t.Fatalf("List(a) = %v, %v", l, err)
	}
	l, err = List(context.Background(), c, "")
	if err != nil || len(l) != 3 || l[2].Namespace != "b" {
		t.Fatalf("List(all) = %v, %v", l, err)
	}
}

func TestPodAccess(t *testing.T) {
	r, _ := FromSecret(NewSecret("local", "ns", "pvc://vol/repo", "pw", nil))
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}
	r.PodAccess(true).ApplyTo(&spec, &spec.Containers[0])
	c := spec.Containers[0]
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "local" {
		t.Errorf("envFrom %+v", c.EnvFrom)
	}
	if len(c.Env) != 1 || c.Env[0].Name != api.SecretKeyRepository || c.Env[0].Value != "file:///stash-repository/repo" {
		t.Errorf("env %+v", c.Env)
	}
	if len(spec.Volumes) != 1 || spec.Volumes[0].PersistentVolumeClaim.ClaimName != "vol" || !spec.Volumes[0].PersistentVolumeClaim.ReadOnly {
		t.Errorf("volumes %+v", spec.Volumes)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != api.RepositoryMountPath || !c.VolumeMounts[0].ReadOnly {
		t.Errorf("mounts %+v", c.VolumeMounts)
	}

	r, _ = FromSecret(NewSecret("s3", "ns", "s3://b/p", "pw", nil))
	pa := r.PodAccess(false)
	if len(pa.EnvFrom) != 1 || pa.Env != nil || pa.Volumes != nil || pa.VolumeMounts != nil {
		t.Errorf("object-store access %+v", pa)
	}
}

func TestApplyEnvRestores(t *testing.T) {
	t.Setenv("STASH_TEST_KEPT", "before")
	os.Unsetenv("STASH_TEST_NEW")
	r := &Repository{Name: "x", Env: map[string]string{"STASH_TEST_KEPT": "from-secret", "STASH_TEST_NEW": "new",
		"GOOGLE_APPLICATION_CREDENTIALS": `{"type": "service_account"}`}}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "/old/path.json")
	restore, err := r.ApplyEnv()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("STASH_TEST_KEPT") != "from-secret" || os.Getenv("STASH_TEST_NEW") != "new" {
		t.Errorf("env not applied")
	}
	keyFile := os.Getenv("GOOGLE_APPLICATION_CREDENTIALS")
	if b, err := os.ReadFile(keyFile); err != nil || string(b) != `{"type": "service_account"}` {
		t.Errorf("GCP key written to %q: %q, %v", keyFile, b, err)
	}
	restore()
	if os.Getenv("STASH_TEST_KEPT") != "before" || os.Getenv("GOOGLE_APPLICATION_CREDENTIALS") != "/old/path.json" {
		t.Errorf("env not restored")
	}
	if _, set := os.LookupEnv("STASH_TEST_NEW"); set {
		t.Errorf("STASH_TEST_NEW still set")
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Errorf("temporary key file %s not removed: %v", keyFile, err)
	}
}

// fileRepository returns a repository Secret's view of a new directory; the repository
// itself does not exist yet.
func fileRepository(t *testing.T) *Repository {
	t.Helper()
	r, err := FromSecret(NewSecret("files", "ns", "file://"+filepath.Join(t.TempDir(), "repo"), "pw", nil))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func backup(t *testing.T, r *Repository, host string, at time.Time, files map[string]string) string {
	t.Helper()
	ctx := context.Background()
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
	if _, err := snapshot.Backup(ctx, rp, []string{src}, snapshot.BackupOptions{Host: host, Now: func() time.Time { return at }}); err != nil {
		t.Fatal(err)
	}
	return src
}

func TestInitSnapshotsWipe(t *testing.T) {
	ctx := context.Background()
	r := fileRepository(t)
	res, err := r.Init(ctx, repo.InitOptions{KDF: repotest.CheapKDF})
	if err != nil || !res.Created || res.ID == "" {
		t.Fatalf("Init = %+v, %v", res, err)
	}
	again, err := r.Init(ctx, repo.InitOptions{KDF: repotest.CheapKDF})
	if err != nil || again.Created || again.ID != res.ID {
		t.Fatalf("second Init = %+v, %v; want the existing repository %s", again, err, res.ID)
	}
	wrong := *r
	wrong.Password = "not it"
	if _, err := wrong.Init(ctx, repo.InitOptions{KDF: repotest.CheapKDF}); err == nil || !strings.Contains(err.Error(), "this password does not open it") {
		t.Fatalf("Init with another password: %v", err)
	}

	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	srcA := backup(t, r, "host-0", t0, map[string]string{"a": "alpha"})
	backup(t, r, "host-1", t0.Add(time.Hour), map[string]string{"b": "beta", "c": "gamma"})
	list, err := r.Snapshots(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("Snapshots = %v, %v", list, err)
	}
	if list[0].Host != "host-0" || !list[0].Time.Equal(t0) || list[0].Stats.TotalFiles != 1 || list[1].Stats.TotalFiles != 2 || len(list[0].ShortID) != 8 {
		t.Errorf("snapshots %+v", list)
	}
	if f := Filter(list, "host-0", ""); len(f) != 1 || f[0].Host != "host-0" {
		t.Errorf("Filter(host-0) = %+v", f)
	}
	if f := Filter(list, "", srcA+"/a"); len(f) != 1 || f[0].Host != "host-0" {
		t.Errorf("Filter(path below host-0's directory) = %+v", f)
	}

	// Something else under the URL survives the wipe.
	dir := strings.TrimPrefix(r.URL, "file://")
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not ours"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Wipe(ctx); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("Wipe with a wrong password: %v", err)
	}
	wr, err := r.Wipe(ctx)
	if err != nil || wr.Deleted < 5 || wr.Kept != 1 {
		t.Fatalf("Wipe = %+v, %v", wr, err)
	}
	if _, _, err := r.Open(ctx); !errors.Is(err, repo.ErrNoRepository) {
		t.Fatalf("Open after Wipe: %v, want ErrNoRepository", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
		t.Errorf("the foreign object went: %v", err)
	}
	if _, err := r.Wipe(ctx); !errors.Is(err, repo.ErrNoRepository) {
		t.Fatalf("Wipe of nothing: %v, want ErrNoRepository", err)
	}
}

func TestPVCRepositoryIsNotOpenedHere(t *testing.T) {
	r, _ := FromSecret(NewSecret("local", "ns", "pvc://vol/repo", "pw", nil))
	if _, err := r.Snapshots(context.Background()); !errors.Is(err, ErrInCluster) {
		t.Fatalf("err = %v, want ErrInCluster", err)
	}
}

func TestParseSnapshotsJSON(t *testing.T) {
	log := "some line [not json\n[\n  {\"id\": \"abc\", \"short_id\": \"abc\", \"host\": \"host-0\", \"paths\": [\"/data\"], \"stats\": {\"totalFiles\": 3}}\n]\n"
	l, err := ParseSnapshotsJSON([]byte(log))
	if err != nil || len(l) != 1 || l[0].Host != "host-0" || l[0].Stats.TotalFiles != 3 {
		t.Fatalf("%+v, %v", l, err)
	}
	if l, err := ParseSnapshotsJSON([]byte("[]\n")); err != nil || len(l) != 0 {
		t.Fatalf("empty: %+v, %v", l, err)
	}
	if _, err := ParseSnapshotsJSON([]byte("stash-job: wrong password\n")); err == nil {
		t.Fatal("no error for a log without a list")
	}
}
