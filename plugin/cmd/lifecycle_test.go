package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

func lifecycleCmd(t *testing.T, cs kubernetes.Interface, args ...string) (string, error) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-kubeconfig"))
	streams, _, out, _ := genericiooptions.NewTestIOStreams()
	g := &GlobalOptions{ConfigFlags: genericclioptions.NewConfigFlags(true)}
	root := &cobra.Command{Use: "kubectl-stash", SilenceUsage: true, SilenceErrors: true}
	g.ConfigFlags.AddFlags(root.PersistentFlags())
	newClient := func() (kubernetes.Interface, error) { return cs, nil }
	for _, c := range []*cobra.Command{NewCmdPause(g, streams), NewCmdResume(g, streams), NewCmdDelete(g, streams), NewCmdCancel(g, streams)} {
		root.AddCommand(c)
	}
	g.newClient = newClient
	root.SetArgs(append(args, "-n", "prod"))
	err := root.Execute()
	return out.String(), err
}

func configCronJob(name, schedule string, suspend bool) *batchv1.CronJob {
	cfg, _ := json.Marshal(api.BackupConfig{SchemaVersion: 1, Name: name, Target: api.Target{Kind: "deployment", Name: "shop"}, Repository: "s3", Schedule: schedule})
	return &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "prod",
		Labels: map[string]string{api.LabelBackupConfiguration: name}, Annotations: map[string]string{api.AnnotationConfig: string(cfg)}},
		Spec: batchv1.CronJobSpec{Schedule: schedule, Suspend: &suspend}}
}

func TestPauseResume(t *testing.T) {
	cs := fake.NewClientset(configCronJob("shop-backup", "30 1 * * *", false), configCronJob("manual", "", true))
	suspended := func() bool {
		cj, _ := cs.BatchV1().CronJobs("prod").Get(context.Background(), "shop-backup", metav1.GetOptions{})
		return *cj.Spec.Suspend
	}
	if out, err := lifecycleCmd(t, cs, "pause", "shop-backup"); err != nil || !suspended() || !strings.Contains(out, "paused") {
		t.Fatalf("pause: %v %q", err, out)
	}
	if out, err := lifecycleCmd(t, cs, "pause", "shop-backup"); err != nil || !strings.Contains(out, "already paused") {
		t.Errorf("pause twice: %v %q", err, out)
	}
	if out, err := lifecycleCmd(t, cs, "resume", "shop-backup"); err != nil || suspended() || !strings.Contains(out, `schedule "30 1 * * *"`) {
		t.Fatalf("resume: %v %q", err, out)
	}
	if _, err := lifecycleCmd(t, cs, "resume", "manual"); err == nil || !strings.Contains(err.Error(), "has no schedule") {
		t.Errorf("resume of a trigger-only configuration: %v", err)
	}
	if _, err := lifecycleCmd(t, cs, "pause", "nope"); err == nil || !strings.Contains(err.Error(), `backup configuration "nope" not found`) {
		t.Errorf("pause of a missing configuration: %v", err)
	}
}

func TestDeleteKeepsTheUsersServiceAccount(t *testing.T) {
	l := map[string]string{api.LabelBackupConfiguration: "shop-backup"}
	meta := func(n string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: n, Namespace: "prod", Labels: l} }
	cs := fake.NewClientset(configCronJob("shop-backup", "", true),
		&corev1.ServiceAccount{ObjectMeta: meta("stash-shop-backup")}, &corev1.ServiceAccount{ObjectMeta: meta("users-own")},
		&rbacv1.Role{ObjectMeta: meta("stash-shop-backup")}, &rbacv1.RoleBinding{ObjectMeta: meta("stash-shop-backup")})
	out, err := lifecycleCmd(t, cs, "delete", "shop-backup")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cronjob.batch/shop-backup deleted", "role.rbac.authorization.k8s.io/stash-shop-backup deleted", "serviceaccount/stash-shop-backup deleted", "the snapshots stay in repository s3"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := cs.CoreV1().ServiceAccounts("prod").Get(context.Background(), "users-own", metav1.GetOptions{}); err != nil {
		t.Errorf("a ServiceAccount the plugin did not make was deleted: %v", err)
	}
	if _, err := cs.BatchV1().CronJobs("prod").Get(context.Background(), "shop-backup", metav1.GetOptions{}); err == nil {
		t.Error("the CronJob survived")
	}
}

func TestCancel(t *testing.T) {
	running := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "shop-backup-abc", Namespace: "prod", Labels: map[string]string{api.LabelComponent: api.ComponentSession}}}
	done := running.DeepCopy()
	done.Name = "shop-backup-old"
	done.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	other := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: "prod"}}
	cs := fake.NewClientset(running, done, other)
	if _, err := lifecycleCmd(t, cs, "cancel", "shop-backup-abc"); err != nil {
		t.Fatal(err)
	}
	j, _ := cs.BatchV1().Jobs("prod").Get(context.Background(), "shop-backup-abc", metav1.GetOptions{})
	if j.Spec.Suspend == nil || !*j.Spec.Suspend || !strings.HasPrefix(j.Annotations[api.AnnotationCanceledBy], "kubectl stash cancel") {
		t.Errorf("job after cancel: suspend %v annotations %v", j.Spec.Suspend, j.Annotations)
	}
	if _, err := lifecycleCmd(t, cs, "cancel", "shop-backup-old"); err == nil || !strings.Contains(err.Error(), "has ended already") {
		t.Errorf("cancel of an ended session: %v", err)
	}
	if _, err := lifecycleCmd(t, cs, "cancel", "unrelated"); err == nil || !strings.Contains(err.Error(), "is not a backup, restore or verification session") {
		t.Errorf("cancel of another Job: %v", err)
	}
}

// --wipe-data removes the configuration's snapshots only, after confirmation, then prunes.
func TestDeleteWipeData(t *testing.T) {
	cs, kept := restoreFixture(t)
	ctx := context.Background()
	sec, _ := cs.CoreV1().Secrets("prod").Get(ctx, "s3", metav1.GetOptions{})
	r, err := repository.FromSecret(sec)
	if err != nil {
		t.Fatal(err)
	}
	rp, closeFn, err := r.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rp.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "only-mine.bin"), bytes.Repeat([]byte("x"), 1<<20), 0o644)
	mine, err := snapshot.Backup(ctx, rp, []string{src}, snapshot.BackupOptions{Host: "host-0", Tags: []string{api.TagConfig + "shop-backup"}})
	if err != nil {
		t.Fatal(err)
	}
	closeFn()
	cs.BatchV1().CronJobs("prod").Create(ctx, configCronJob("shop-backup", "", true), metav1.CreateOptions{})

	// not confirmed: nothing goes
	if _, err := lifecycleCmd(t, cs, "delete", "shop-backup", "--wipe-data"); err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Fatalf("unconfirmed wipe: %v", err)
	}
	if _, err := cs.BatchV1().CronJobs("prod").Get(ctx, "shop-backup", metav1.GetOptions{}); err != nil {
		t.Fatalf("the configuration went without confirmation: %v", err)
	}
	out, err := lifecycleCmd(t, cs, "delete", "shop-backup", "--wipe-data", "--yes")
	if err != nil || !strings.Contains(out, "removed 1 snapshot(s) of shop-backup") || !strings.Contains(out, "pruned:") {
		t.Fatalf("wipe: %v\n%s", err, out)
	}
	rp, closeFn, _ = r.Open(ctx)
	defer closeFn()
	sns, _ := rp.Snapshots(ctx)
	if len(sns) != 1 || sns[0].ID.Short() != kept.ShortID || sns[0].ID == mine.ID {
		t.Errorf("snapshots after the wipe: %v, want only the other configuration's %s", sns, kept.ShortID)
	}
}
