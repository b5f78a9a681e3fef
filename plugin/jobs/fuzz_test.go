package jobs

import (
	"encoding/json"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// FuzzJobAnnotations: the plugin reads session and host status from annotations that
// anyone allowed to patch the Jobs can write. Whatever they say, every view the plugin
// builds from them (get backupsession/restoresession/backupverificationsession, the live
// feed) is built without a panic; a value that does not decode leaves the session's
// DecodeErr set and naming the annotation, and one that decodes is shown as it is.
func FuzzJobAnnotations(f *testing.F) {
	session, _ := json.Marshal(api.SessionStatus{SchemaVersion: 1, Phase: api.PhaseRunning, TotalHosts: 2,
		Members: []api.MemberStatus{{Target: api.Target{Kind: "Deployment", Name: "web"}, Phase: api.PhaseRunning}}})
	host, _ := json.Marshal(api.HostStatus{SchemaVersion: 1, Hostname: "host-0", Phase: api.PhaseSucceeded, Target: "Deployment/web",
		Snapshots: []api.SnapshotStats{{Name: "abc"}}})
	verify, _ := json.Marshal(api.VerifyStatus{SchemaVersion: 1, Phase: api.PhaseFailed})
	config, _ := json.Marshal(api.RestoreConfig{SchemaVersion: 1})
	f.Add(string(session), string(host), string(verify), string(config))
	f.Add(`{"schemaVersion":9}`, `{"phase":"Running","progress":{"bytesTotal":-1}}`, `{"snapshots":[null,{"problems":[""]}]}`, `[]`)
	f.Add(`null`, `null`, `null`, `null`)
	f.Fuzz(func(t *testing.T, sessionStatus, hostStatus, verifyStatus, config string) {
		job := func(name, component string, ann map[string]string) *batchv1.Job {
			return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Annotations: ann,
				Labels: map[string]string{api.LabelComponent: component, api.LabelBackupSession: "s", api.LabelRestoreSession: "r", api.LabelHost: "host-0"}}}
		}
		backup := job("s", api.ComponentSession, map[string]string{api.AnnotationSessionStatus: sessionStatus})
		restore := job("r", api.ComponentRestoreSession, map[string]string{api.AnnotationSessionStatus: sessionStatus, api.AnnotationConfig: config})
		verifyJob := job("v", api.ComponentVerifySession, map[string]string{api.AnnotationVerifyStatus: verifyStatus})
		verifyJob.Spec.Template.Annotations = map[string]string{api.AnnotationConfig: config}
		hosts := []*batchv1.Job{
			job("s-host-0", api.ComponentHost, map[string]string{api.AnnotationHostStatus: hostStatus, api.AnnotationTarget: "Deployment/web"}),
			job("r-host-0", api.ComponentRestoreHost, map[string]string{api.AnnotationHostStatus: hostStatus}),
		}

		s := sessionOf(backup)
		var want api.SessionStatus
		if err := api.Decode(api.AnnotationSessionStatus, sessionStatus, &want); (err == nil) != (s.DecodeErr == nil) {
			t.Fatalf("session status %q: DecodeErr %v, Decode %v", sessionStatus, s.DecodeErr, err)
		}
		if s.DecodeErr != nil && !strings.Contains(s.DecodeErr.Error(), api.AnnotationSessionStatus) {
			t.Fatalf("DecodeErr does not name the annotation: %v", s.DecodeErr)
		}
		h := hostStatusOf(hosts[0])
		s.Hosts = []api.HostStatus{h}
		v := s.View()
		if s.DecodeErr == nil && v.Status.TotalHosts != want.TotalHosts {
			t.Fatalf("session status %q shown with %d hosts, says %d", sessionStatus, v.Status.TotalHosts, want.TotalHosts)
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("view of %q does not encode: %v", sessionStatus, err)
		}
		r := restoreOf(restore)
		r.Hosts = []api.HostStatus{hostStatusOf(hosts[1])}
		_ = r.View()
		_, _ = r.Phase(), r.Ended()
		vs := verifySessionOf(verifyJob)
		_, _ = vs.View(), vs.Phase()
		_, _, _, _ = verifyView(verifyJob)
		objs := []any{backup, restore, verifyJob, hosts[0], hosts[1]}
		if views := picture(objs, FeedOptions{Limit: 10}); len(views) != 3 {
			t.Fatalf("the feed shows %d sessions of 3", len(views))
		}
	})
}
