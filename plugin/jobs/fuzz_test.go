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
//
// Fuzz it with minimization off or short (test/soak/fuzz.sh passes -fuzzminimizetime 0):
// by default the fuzzer spends up to 60s shrinking every input that finds new coverage,
// trying to drop every run of bytes of each of the four JSON values (quadratic in their
// length), and counts none of those runs until it is done, so a run looks stuck at a
// handful of execs. One input takes about 0.1ms (BenchmarkJobAnnotations); a fuzzing
// worker still manages only several hundred a second, most of each spent resetting and
// comparing the coverage counters of this package's test binary, which links client-go.
func FuzzJobAnnotations(f *testing.F) {
	for _, a := range jobAnnotationSeeds() {
		f.Add(a.session, a.host, a.verify, a.config)
	}
	f.Fuzz(func(t *testing.T, sessionStatus, hostStatus, verifyStatus, config string) {
		checkJobAnnotations(t, jobAnnotations{session: sessionStatus, host: hostStatus, verify: verifyStatus, config: config})
	})
}

// jobAnnotations are the values one fuzz input writes: a session status (on a backup and
// a restore session Job), a host status (on a backup and a restore host Job), a
// verification session's status, and a configuration (on the restore and the
// verification session).
type jobAnnotations struct{ session, host, verify, config string }

func jobAnnotationSeeds() []jobAnnotations {
	session, _ := json.Marshal(api.SessionStatus{SchemaVersion: 1, Phase: api.PhaseRunning, TotalHosts: 2,
		Members: []api.MemberStatus{{Target: api.Target{Kind: "Deployment", Name: "web"}, Phase: api.PhaseRunning}}})
	host, _ := json.Marshal(api.HostStatus{SchemaVersion: 1, Hostname: "host-0", Phase: api.PhaseSucceeded, Target: "Deployment/web",
		Snapshots: []api.SnapshotStats{{Name: "abc"}}})
	verify, _ := json.Marshal(api.VerifyStatus{SchemaVersion: 1, Phase: api.PhaseFailed})
	config, _ := json.Marshal(api.RestoreConfig{SchemaVersion: 1})
	return []jobAnnotations{
		{session: string(session), host: string(host), verify: string(verify), config: string(config)},
		{session: `{"schemaVersion":9}`, host: `{"phase":"Running","progress":{"bytesTotal":-1}}`,
			verify: `{"snapshots":[null,{"problems":[""]}]}`, config: `[]`},
		{session: `null`, host: `null`, verify: `null`, config: `null`},
	}
}

// checkJobAnnotations builds every view of Jobs annotated with a and checks what they show.
func checkJobAnnotations(t testing.TB, a jobAnnotations) {
	job := func(name, component string, ann map[string]string) *batchv1.Job {
		return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Annotations: ann,
			Labels: map[string]string{api.LabelComponent: component, api.LabelBackupSession: "s", api.LabelRestoreSession: "r", api.LabelHost: "host-0"}}}
	}
	backup := job("s", api.ComponentSession, map[string]string{api.AnnotationSessionStatus: a.session})
	restore := job("r", api.ComponentRestoreSession, map[string]string{api.AnnotationSessionStatus: a.session, api.AnnotationConfig: a.config})
	verifyJob := job("v", api.ComponentVerifySession, map[string]string{api.AnnotationVerifyStatus: a.verify})
	verifyJob.Spec.Template.Annotations = map[string]string{api.AnnotationConfig: a.config}
	hosts := []*batchv1.Job{
		job("s-host-0", api.ComponentHost, map[string]string{api.AnnotationHostStatus: a.host, api.AnnotationTarget: "Deployment/web"}),
		job("r-host-0", api.ComponentRestoreHost, map[string]string{api.AnnotationHostStatus: a.host}),
	}

	s := sessionOf(backup)
	var want api.SessionStatus
	if err := api.Decode(api.AnnotationSessionStatus, a.session, &want); (err == nil) != (s.DecodeErr == nil) {
		t.Fatalf("session status %q: DecodeErr %v, Decode %v", a.session, s.DecodeErr, err)
	}
	if s.DecodeErr != nil && !strings.Contains(s.DecodeErr.Error(), api.AnnotationSessionStatus) {
		t.Fatalf("DecodeErr does not name the annotation: %v", s.DecodeErr)
	}
	h := hostStatusOf(hosts[0])
	s.Hosts = []api.HostStatus{h}
	v := s.View()
	if s.DecodeErr == nil && v.Status.TotalHosts != want.TotalHosts {
		t.Fatalf("session status %q shown with %d hosts, says %d", a.session, v.Status.TotalHosts, want.TotalHosts)
	}
	if _, err := json.Marshal(v); err != nil {
		t.Fatalf("view of %q does not encode: %v", a.session, err)
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
}

// BenchmarkJobAnnotations times the fuzz body on the seeds: the place to profile it
// (-cpuprofile), which fuzzing does not allow.
func BenchmarkJobAnnotations(b *testing.B) {
	seeds := jobAnnotationSeeds()
	for i := 0; b.Loop(); i++ {
		checkJobAnnotations(b, seeds[i%len(seeds)])
	}
}
