package jobimage

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/verifyjob"
)

// verifyFixture is a file:// repository with one snapshot of a directory of three files,
// made by configuration web-backup for host-0.
func verifyFixture(t *testing.T) (url string, cfg api.VerifyConfig) {
	t.Helper()
	url = newFileRepo(t)
	src := t.TempDir()
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i % 253)
	}
	for name, body := range map[string][]byte{"index.html": []byte("<h1>hi</h1>"), "big.bin": big, "conf.yaml": []byte("a: 1\n")} {
		if err := os.WriteFile(filepath.Join(src, name), body, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	spec := api.HostSpec{Hostname: "host-0", Config: "web-backup", Session: "s", Paths: []string{src}, Target: api.Target{Kind: "deployment", Name: "web"}}
	if err := RunHost(context.Background(), HostRun{Spec: spec, RepoURL: url, Password: []byte("host test password"), Status: &recorder{}}); err != nil {
		t.Fatal(err)
	}
	return url, api.VerifyConfig{SchemaVersion: 1, Name: "web-verify", Invoker: "web-backup", Session: "web-backup", Repository: "repo",
		Snapshot: "latest", HistoryLimit: 2, Image: "stash-job:test"}
}

func verifySession(t *testing.T, c kubernetes.Interface, cfg api.VerifyConfig, name string, retryLeft int, created time.Time) {
	t.Helper()
	job, err := verifyjob.SessionJob(cfg, ns, name, "s3://bucket/repo", nil, retryLeft)
	if err != nil {
		t.Fatal(err)
	}
	job.UID = types.UID("uid-" + name)
	job.CreationTimestamp = metav1.NewTime(created)
	if _, err := c.BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func verifyStatusOf(t *testing.T, c kubernetes.Interface, name string) api.VerifyStatus {
	t.Helper()
	j, err := c.BatchV1().Jobs(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var st api.VerifyStatus
	if err := json.Unmarshal([]byte(j.Annotations[api.AnnotationVerifyStatus]), &st); err != nil {
		t.Fatalf("status of %s: %v", name, err)
	}
	return st
}

func conditions(st api.VerifyStatus) map[string]string {
	out := map[string]string{}
	for _, c := range st.Conditions {
		out[c.Type] = c.Status
	}
	return out
}

func runVerification(t *testing.T, c kubernetes.Interface, cfg api.VerifyConfig, url, job string) (api.Phase, error) {
	t.Helper()
	v := &Verification{Client: c, Namespace: ns, Job: job, Config: cfg, RepoURL: url, Password: []byte("host test password"), Scratch: t.TempDir()}
	return v.Run(context.Background(), false)
}

func TestVerification(t *testing.T) {
	url, cfg := verifyFixture(t)
	c := fake.NewClientset()
	t0 := time.Now().Add(-time.Hour)
	verifySession(t, c, cfg, "repo-web-backup-1", 0, t0)
	phase, err := runVerification(t, c, cfg, url, "repo-web-backup-1")
	if phase != api.PhaseSucceeded || err != nil {
		t.Fatalf("phase %s, err %v", phase, err)
	}
	st := verifyStatusOf(t, c, "repo-web-backup-1")
	if got := conditions(st); got[api.ConditionRestoreSucceeded] != "True" || got[api.ConditionBackupVerified] != "True" ||
		got[api.ConditionVerificationSessionHistoryCleaned] != "True" {
		t.Errorf("conditions %v", got)
	}
	if len(st.Snapshots) != 1 || st.Snapshots[0].Files != 3 || st.Snapshots[0].Host != "host-0" || st.Duration == "" {
		t.Errorf("status %+v", st)
	}

	// the same latest snapshot again: skipped, as the seed's BackupVerificationSkipped
	verifySession(t, c, cfg, "repo-web-backup-2", 0, t0.Add(time.Minute))
	if phase, err := runVerification(t, c, cfg, url, "repo-web-backup-2"); phase != api.PhaseSkipped || err != nil {
		t.Fatalf("second verification: %s %v, want Skipped", phase, err)
	}
	st = verifyStatusOf(t, c, "repo-web-backup-2")
	if got := conditions(st); got[api.ConditionBackupVerificationSkipped] != "True" {
		t.Errorf("conditions %v, want BackupVerificationSkipped", got)
	}

	// a third session with history limit 2 removes the first
	verifySession(t, c, cfg, "repo-web-backup-3", 0, t0.Add(2*time.Minute))
	if _, err := runVerification(t, c, cfg, url, "repo-web-backup-3"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BatchV1().Jobs(ns).Get(context.Background(), "repo-web-backup-1", metav1.GetOptions{}); err == nil {
		t.Error("the oldest session survived the history limit of 2")
	}
	if _, err := c.BatchV1().Jobs(ns).Get(context.Background(), "repo-web-backup-2", metav1.GetOptions{}); err != nil {
		t.Errorf("the second session was removed: %v", err)
	}
}

// A damaged pack: the verification fails naming the damaged file, and with a retry left
// it starts the next session, which has none.
func TestVerificationOfADamagedPack(t *testing.T) {
	url, cfg := verifyFixture(t)
	cfg.Retries = 1
	// flip bytes in the middle of the biggest data pack
	var biggest string
	var size int64
	filepath.Walk(filepath.Join(strings.TrimPrefix(url, "file://"), "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
		return nil
	})
	b, err := os.ReadFile(biggest)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+64; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(biggest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientset()
	verifySession(t, c, cfg, "repo-web-backup-1", 1, time.Now())
	phase, err := runVerification(t, c, cfg, url, "repo-web-backup-1")
	if phase != api.PhaseFailed || err == nil {
		t.Fatalf("phase %s, err %v, want Failed", phase, err)
	}
	st := verifyStatusOf(t, c, "repo-web-backup-1")
	got := conditions(st)
	if got[api.ConditionRestoreSucceeded] != "False" || got[api.ConditionBackupVerified] != "False" || !st.Retried {
		t.Errorf("conditions %v retried %v", got, st.Retried)
	}
	for _, cond := range st.Conditions {
		if cond.Type == api.ConditionBackupVerified && !strings.Contains(cond.Message, "big.bin") {
			t.Errorf("BackupVerified message %q does not name the damaged file", cond.Message)
		}
	}
	list, _ := c.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{LabelSelector: api.LabelRetryOf + "=repo-web-backup-1"})
	if len(list.Items) != 1 || list.Items[0].Annotations[verifyjob.AnnotationRetryLeft] != "0" {
		t.Fatalf("retry sessions %v, want one with retryLeft 0", list.Items)
	}
	retry := list.Items[0].Name
	if phase, _ := runVerification(t, c, cfg, url, retry); phase != api.PhaseFailed {
		t.Errorf("retry: %s, want Failed", phase)
	}
	if st := verifyStatusOf(t, c, retry); st.Retried || st.RetryLeft != 0 {
		t.Errorf("retry status %+v: no retry left, none started", st)
	}
	all, _ := c.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{})
	if len(all.Items) != 2 {
		t.Errorf("%d sessions, want the first and its one retry", len(all.Items))
	}
}

// The user's command runs on the restored tree; its failure fails BackupVerified with its
// output.
func TestVerificationCommand(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	url, cfg := verifyFixture(t)
	cfg.Command = "x"
	for _, tc := range []struct {
		command string
		want    api.Phase
		message string
	}{
		{`test -n "$(find . -name index.html)"`, api.PhaseSucceeded, "succeeded"},
		{`echo "no dump here" >&2; exit 3`, api.PhaseFailed, "no dump here"},
	} {
		c := fake.NewClientset()
		verifySession(t, c, cfg, "repo-web-backup-1", 0, time.Now())
		scratch := t.TempDir()
		v := &Verification{Client: c, Namespace: ns, Job: "repo-web-backup-1", Config: cfg, RepoURL: url, Password: []byte("host test password"), Scratch: scratch}
		if phase, err := v.Run(context.Background(), true); phase != api.PhaseRunning || err != nil {
			t.Fatalf("restore stage: %s %v, want Running for the command", phase, err)
		}
		v2 := &Verification{Client: c, Namespace: ns, Job: "repo-web-backup-1", Config: cfg, Scratch: scratch}
		phase, _ := v2.Command(context.Background(), tc.command, &strings.Builder{})
		st := verifyStatusOf(t, c, "repo-web-backup-1")
		if phase != tc.want || conditions(st)[api.ConditionRestoreSucceeded] != "True" {
			t.Errorf("%s: phase %s conditions %v", tc.command, phase, conditions(st))
		}
		for _, cond := range st.Conditions {
			if cond.Type == api.ConditionBackupVerified && !strings.Contains(cond.Message, tc.message) {
				t.Errorf("%s: BackupVerified %q, want %q", tc.command, cond.Message, tc.message)
			}
		}
	}
}

// The pod of a session with a command: restore and check as init containers, then the
// user's image runs the copied binary; the scratch space is sized, or an ephemeral PVC.
func TestVerifySessionJob(t *testing.T) {
	cfg := api.VerifyConfig{Name: "v", Session: "web-backup", Repository: "repo", Image: "stash-job:1", Command: "test -s x",
		CommandImage: "busybox:1.36", ScratchSize: "2Gi", Retries: 2}
	job, err := verifyjob.SessionJob(cfg, ns, verifyjob.SessionName(cfg, time.Unix(1730194200, 0)), "pvc://backups/repo", nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	if job.Name != "repo-web-backup-1730194200" || job.Annotations[verifyjob.AnnotationRetryLeft] != "2" {
		t.Errorf("name %s annotations %v", job.Name, job.Annotations)
	}
	pod := job.Spec.Template.Spec
	if len(pod.InitContainers) != 2 || pod.InitContainers[1].Args[2] != "restore" || pod.Containers[0].Image != "busybox:1.36" ||
		pod.Containers[0].Command[0] != "/stash-bin/stash-job" {
		t.Errorf("containers: %+v %+v", pod.InitContainers, pod.Containers)
	}
	if !pod.Containers[0].VolumeMounts[0].ReadOnly {
		t.Error("the command sees the restored tree read-write")
	}
	for _, e := range pod.Containers[0].EnvFrom {
		t.Errorf("the user's image gets the repository's credentials: %+v", e)
	}
	var scratchLimit string
	var repoMounted bool
	for _, v := range pod.Volumes {
		if v.Name == "scratch" && v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil {
			scratchLimit = v.EmptyDir.SizeLimit.String()
		}
		repoMounted = repoMounted || (v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "backups")
	}
	if scratchLimit != "2Gi" || !repoMounted {
		t.Errorf("scratch %q, repository mounted %v", scratchLimit, repoMounted)
	}
	cfg.ScratchPVC, cfg.StorageClass = true, "fast"
	job, _ = verifyjob.SessionJob(cfg, ns, "x", "s3://b/r", nil, 0)
	if eph := job.Spec.Template.Spec.Volumes[0].Ephemeral; eph == nil || *eph.VolumeClaimTemplate.Spec.StorageClassName != "fast" {
		t.Errorf("scratch volume %+v, want an ephemeral PVC of class fast", job.Spec.Template.Spec.Volumes[0])
	}
	truth := true
	job, _ = verifyjob.SessionJob(cfg, ns, "x", "s3://b/r", &metav1.OwnerReference{Kind: "CronJob", Name: "v", Controller: &truth}, 0)
	if o := job.OwnerReferences; len(o) != 1 || o[0].Name != "v" || *o[0].Controller {
		t.Errorf("owner %+v: want the CronJob as owner, not as controller (its history limit would trim the sessions)", o)
	}
	var _ *batchv1.Job = job
}

// A scheduled run: the CronJob's launcher Job starts a session named as the seed says,
// owned by the CronJob, with the verification's retries.
func TestLaunchVerification(t *testing.T) {
	truth := true
	launcher := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "web-verify-29382", Namespace: ns,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "web-verify", UID: "cj-uid", Controller: &truth}}}}
	c := fake.NewClientset(launcher)
	cfg := api.VerifyConfig{Name: "web-verify", Session: "web-backup", Repository: "repo", Retries: 2, Image: "stash-job:1"}
	name, err := LaunchVerification(context.Background(), c, ns, launcher.Name, cfg, "s3://b/r", time.Unix(1730194200, 0))
	if err != nil || name != "repo-web-backup-1730194200" {
		t.Fatalf("launch: %q %v", name, err)
	}
	j, err := c.BatchV1().Jobs(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Annotations[verifyjob.AnnotationRetryLeft] != "2" || len(j.OwnerReferences) != 1 || j.OwnerReferences[0].UID != "cj-uid" ||
		j.Labels[api.LabelComponent] != api.ComponentVerifySession {
		t.Errorf("session %+v", j.ObjectMeta)
	}
}
