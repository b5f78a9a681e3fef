package cmd

import (
	"context"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

func TestCompletion(t *testing.T) {
	c := fake.NewClientset(
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "ns"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: "other"}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "uploads", Namespace: "ns"}},
		&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "shop-backup", Namespace: "ns", Labels: map[string]string{api.LabelBackupConfiguration: "shop-backup"}}},
		&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "not-ours", Namespace: "ns"}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "shop-backup-2do7af", Namespace: "ns", Labels: map[string]string{api.LabelComponent: api.ComponentSession}}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "shop-backup-2do7af-host-0", Namespace: "ns", Labels: map[string]string{api.LabelComponent: api.ComponentHost}}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "web-restore-x7k2p", Namespace: "ns", Labels: map[string]string{api.LabelComponent: api.ComponentRestoreSession}}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "web-restore-x7k2p-host-0", Namespace: "ns", Labels: map[string]string{api.LabelComponent: api.ComponentRestoreHost}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3", Namespace: "ns", Labels: map[string]string{api.LabelRepository: "s3"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "ns"}},
	)
	tests := []struct {
		name       string
		fn         completer
		toComplete string
		want       []string
	}{
		{"kinds first", completeTargets, "", []string{"deployment/", "statefulset/", "daemonset/", "replicaset/", "replicationcontroller/", "pvc/"}},
		{"deployments of the namespace", completeTargets, "deployment/", []string{"deployment/shop"}},
		{"short kind kept as typed", completeTargets, "sts/", []string{"sts/db"}},
		{"claims", completeTargets, "pvc/u", []string{"pvc/uploads"}},
		{"configurations only", completeConfigs, "", []string{"shop-backup"}},
		{"sessions, not hosts", completeSessions, "", []string{"shop-backup-2do7af"}},
		{"restore sessions, not hosts", completeRestoreSessions, "", []string{"web-restore-x7k2p"}},
		{"get restoresessions <TAB>", nameCompleter("restoresessions"), "", []string{"web-restore-x7k2p"}},
		{"describe restore <TAB>", nameCompleter("restore"), "", []string{"web-restore-x7k2p"}},
		{"describe restoresession <TAB>", nameCompleter("RestoreSession"), "", []string{"web-restore-x7k2p"}},
		{"get bs <TAB>", nameCompleter("bs"), "", []string{"shop-backup-2do7af"}},
		{"get bc <TAB>", nameCompleter("backupconfigurations"), "", []string{"shop-backup"}},
		{"repository secrets only", completeRepositories, "", []string{"s3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fn(context.Background(), c, "ns", tt.toComplete); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCompleteResources: get and describe offer restore sessions among their resources,
// and describe only the kinds of session it can describe.
func TestCompleteResources(t *testing.T) {
	g := &GlobalOptions{}
	got, _ := g.completeGet(nil, nil, "")
	if want := []string{"backupconfigurations", "backupsessions", "restoresessions", "bc", "bs", "restore"}; !reflect.DeepEqual(got, want) {
		t.Errorf("get: %v, want %v", got, want)
	}
	got, _ = g.completeDescribe(nil, nil, "")
	if want := []string{"backupsession", "restoresession", "bs", "restore"}; !reflect.DeepEqual(got, want) {
		t.Errorf("describe: %v, want %v", got, want)
	}
	if got, _ := g.completeDescribe(nil, []string{"bc"}, ""); got != nil {
		t.Errorf("describe bc: %v", got)
	}
	if got, _ := g.completeGet(nil, []string{"restore", "x"}, ""); got != nil {
		t.Errorf("a second name: %v", got)
	}
}
