package cmd

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/verifyjob"
)

// get bvs lists verification sessions with their snapshot and BackupVerified, and prints
// one in the seed's BackupVerificationSession shape.
func TestGetBackupVerificationSessions(t *testing.T) {
	cfg := api.VerifyConfig{Name: "shop-verify", Invoker: "shop-backup", Session: "shop-backup", Repository: "s3", Snapshot: "latest", Retries: 1}
	good, err := verifyjob.SessionJob(cfg, "shop", verifyjob.SessionName(cfg, time.Unix(1730194200, 0)), "s3://b/r", nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	good.CreationTimestamp = metav1.NewTime(time.Now().Add(-time.Minute))
	annotate(good, api.AnnotationVerifyStatus, api.VerifyStatus{SchemaVersion: 1, Phase: api.PhaseSucceeded, Duration: "3s",
		Snapshots:  []api.VerifiedSnapshot{{Snapshot: "1a2b3c4d", Host: "host-0", Path: "/data", Files: 3}},
		Conditions: []api.Condition{{Type: api.ConditionRestoreSucceeded, Status: "True"}, {Type: api.ConditionBackupVerified, Status: "True"}}})
	bad, _ := verifyjob.SessionJob(cfg, "shop", verifyjob.SessionName(cfg, time.Unix(1730194300, 0)), "s3://b/r", nil, 0)
	bad.CreationTimestamp = metav1.NewTime(time.Now())
	annotate(bad, api.AnnotationVerifyStatus, api.VerifyStatus{SchemaVersion: 1, Phase: api.PhaseFailed, Duration: "5s", Retried: true,
		Snapshots:  []api.VerifiedSnapshot{{Snapshot: "5e6f7a8b", Host: "host-0", Path: "/data"}},
		Conditions: []api.Condition{{Type: api.ConditionRestoreSucceeded, Status: "False"}, {Type: api.ConditionBackupVerified, Status: "False", Message: "damaged files: /data/x"}}})
	cs := fake.NewClientset(good, bad)

	out, _, err := runSessions(t, cs, "get", "bvs", "-n", "shop")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!regexp.MustCompile(`^s3-shop-backup-1730194300\s+shop-backup\s+s3\s+5e6f7a8b\s+Failed\s+False\s+5s`).MatchString(lines[1]) ||
		!regexp.MustCompile(`^s3-shop-backup-1730194200\s+shop-backup\s+s3\s+1a2b3c4d\s+Succeeded\s+True\s+3s`).MatchString(lines[2]) {
		t.Errorf("get bvs, newest first:\n%s", out)
	}
	out, _, err = runSessions(t, cs, "get", "bvs", "s3-shop-backup-1730194300", "-n", "shop", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		APIVersion, Kind string
		Metadata         struct{ Name string }
		Spec             struct {
			Invoker                       struct{ APIGroup, Kind, Name string }
			Repository, Session, Snapshot string
			RetryLeft                     int
		}
		Status struct {
			Phase      api.Phase
			Duration   string
			Retried    *bool
			Conditions []api.Condition
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.APIVersion != "core.kubestash.com/v1alpha1" || v.Kind != "BackupVerificationSession" || v.Spec.Invoker.Kind != "BackupConfiguration" ||
		v.Spec.Invoker.Name != "shop-backup" || v.Spec.Session != "shop-backup" || v.Spec.Snapshot != "5e6f7a8b" || v.Spec.RetryLeft != 0 ||
		v.Status.Phase != api.PhaseFailed || v.Status.Retried == nil || !*v.Status.Retried || len(v.Status.Conditions) != 2 {
		t.Errorf("the seed's shape: %+v\n%s", v, out)
	}
}
