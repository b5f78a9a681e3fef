package jobs

import (
	"context"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

func config(target api.Target, keepLast int) api.BackupConfig {
	return api.BackupConfig{SchemaVersion: 1, Name: "shop-backup", Target: target, Repository: "repo",
		Paths: []string{"/data"}, Retention: api.Retention{KeepLast: keepLast}, HistoryLimit: 5, Image: "stash-job:test"}
}

func actions(t *testing.T, rs []Result) string {
	t.Helper()
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return strings.Join(out, "\n")
}

func TestApply(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset()
	deploy := api.Target{Kind: "deployment", Name: "shop"}
	apply := func(cfg api.BackupConfig, dry bool) (string, error) {
		objs, err := Build(cfg, "ns")
		if err != nil {
			t.Fatal(err)
		}
		rs, err := Apply(ctx, c, objs.List(), dry)
		return actions(t, rs), err
	}
	steps := []struct {
		name    string
		cfg     api.BackupConfig
		dry     bool
		want    string
		wantErr string
	}{
		{name: "create", cfg: config(deploy, 3), want: "serviceaccount/stash-shop-backup created\nrole.rbac.authorization.k8s.io/stash-shop-backup created\n" +
			"rolebinding.rbac.authorization.k8s.io/stash-shop-backup created\ncronjob.batch/shop-backup created"},
		{name: "same again", cfg: config(deploy, 3), want: "serviceaccount/stash-shop-backup unchanged\nrole.rbac.authorization.k8s.io/stash-shop-backup unchanged\n" +
			"rolebinding.rbac.authorization.k8s.io/stash-shop-backup unchanged\ncronjob.batch/shop-backup unchanged"},
		{name: "changed retention", cfg: config(deploy, 5), want: "serviceaccount/stash-shop-backup unchanged\nrole.rbac.authorization.k8s.io/stash-shop-backup unchanged\n" +
			"rolebinding.rbac.authorization.k8s.io/stash-shop-backup unchanged\ncronjob.batch/shop-backup configured"},
		{name: "another target under the same name", cfg: config(api.Target{Kind: "pvc", Name: "shop"}, 5),
			wantErr: `backup configuration "shop-backup" in namespace ns backs up deployment/shop, not pvc/shop`},
	}
	for _, s := range steps {
		got, err := apply(s.cfg, s.dry)
		if s.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), s.wantErr) {
				t.Errorf("%s: err %v, want %q", s.name, err, s.wantErr)
			}
			continue
		}
		if err != nil || got != s.want {
			t.Errorf("%s: %v\n%s\nwant\n%s", s.name, err, got, s.want)
		}
	}
}

func TestApplyNeverTakesOverForeignObjects(t *testing.T) {
	c := fake.NewClientset(&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "shop-backup", Namespace: "ns"}})
	objs, err := Build(config(api.Target{Kind: "deployment", Name: "shop"}, 1), "ns")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Apply(context.Background(), c, objs.List(), false)
	if err == nil || !strings.Contains(err.Error(), `cronjob "shop-backup" already exists in namespace ns and is not managed by kubectl-stash`) {
		t.Fatalf("err = %v", err)
	}
	cj, _ := c.BatchV1().CronJobs("ns").Get(context.Background(), "shop-backup", metav1.GetOptions{})
	if len(cj.Labels) != 0 {
		t.Errorf("the foreign CronJob was changed: %v", cj.Labels)
	}
}

func TestTrigger(t *testing.T) {
	ctx := context.Background()
	objs, err := Build(config(api.Target{Kind: "deployment", Name: "shop"}, 1), "ns")
	if err != nil {
		t.Fatal(err)
	}
	cj := objs.CronJob
	cj.UID = "cronjob-uid"
	c := fake.NewClientset(cj, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "ns"}})
	j, err := Trigger(ctx, c, "ns", "shop-backup", "2do7af", "tester")
	if err != nil {
		t.Fatal(err)
	}
	if j.Name != "shop-backup-2do7af" || j.Labels[api.LabelComponent] != api.ComponentSession ||
		len(j.OwnerReferences) != 1 || j.OwnerReferences[0].UID != "cronjob-uid" || j.Annotations[api.AnnotationTriggeredBy] != "tester" {
		t.Errorf("session job %+v", j.ObjectMeta)
	}
	if _, err := Trigger(ctx, c, "ns", "missing", "x", ""); err == nil || !strings.Contains(err.Error(), `backup configuration "missing" not found in namespace ns`) {
		t.Errorf("missing: %v", err)
	}
	if _, err := Trigger(ctx, c, "ns", "other", "x", ""); err == nil || !strings.Contains(err.Error(), "is not a backup configuration") {
		t.Errorf("foreign cronjob: %v", err)
	}
}
