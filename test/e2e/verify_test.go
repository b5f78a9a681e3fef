//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

type bvsDoc struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Repository string `json:"repository"`
		Session    string `json:"session"`
		Snapshot   string `json:"snapshot"`
		RetryLeft  int    `json:"retryLeft"`
	} `json:"spec"`
	Status struct {
		Phase      string `json:"phase"`
		Duration   string `json:"duration"`
		Retried    *bool  `json:"retried"`
		Conditions []struct {
			Type    string `json:"type"`
			Status  string `json:"status"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"conditions"`
	} `json:"status"`
}

func (d bvsDoc) condition(typ string) (status, message string) {
	for _, c := range d.Status.Conditions {
		if c.Type == typ {
			return c.Status, c.Message
		}
	}
	return "", ""
}

func listBVS(t *testing.T, ns string) []bvsDoc {
	t.Helper()
	out := mustStash(t, ns, "get", "bvs", "-o", "json")
	var list struct {
		Items []bvsDoc `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("get bvs -o json: %v\n%s", err, out)
	}
	return list.Items
}

// backedUpDeployment is a Deployment "shop" whose volume holds a few files, backed up
// once into repository "s3" by configuration shop-backup; it returns the repository's
// directory on this machine.
func backedUpDeployment(t *testing.T, c kubernetes.Interface, ns string) string {
	t.Helper()
	url, creds, repoDir := s3ServerWithRoot(t)
	repoSecret(t, c, ns, "s3", url, creds)
	dir := hostDir(t)
	writeTree(t, dir, map[string]string{"index.html": "<h1>shop</h1>\n", "orders/2026.csv": "id,total\n1,9.99\n"})
	randomFiles(t, dir, 2, 2<<20)
	boundClaim(t, c, ns, "shop-data", dir, corev1.ReadWriteOnce, true)
	deployment(t, c, ns, "shop", "shop-data", "/source/data")
	mustStash(t, ns, "backup", "deployment/shop", "--repo", "s3", "--paths", "/source/data")
	if out, err := stash(t, ns, "trigger", "shop-backup", "--wait"); err != nil {
		t.Fatalf("trigger: %v\n%s", err, out)
	}
	return repoDir
}

// TestVerifyGoodAndDamagedBackups: a good snapshot verifies (RestoreSucceeded and
// BackupVerified true), a second run finds it verified already (BackupVerificationSkipped);
// with one pack damaged, BackupVerified is false naming the damaged files, and --retries 1
// gives a second session that fails too, with retryLeft 0.
func TestVerifyGoodAndDamagedBackups(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	repoDir := backedUpDeployment(t, c, ns)

	start := time.Now()
	out, err := stash(t, ns, "verify", "shop-backup", "--wait")
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	t.Logf("verify of a good snapshot: %s\n%s", time.Since(start).Round(time.Millisecond), out)
	m := regexp.MustCompile(`backupverificationsession (s3-shop-backup-\d+) created`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no session named <repository>-<session>-<unix time>:\n%s", out)
	}
	var first bvsDoc
	if err := json.Unmarshal([]byte(mustStash(t, ns, "get", "bvs", m[1], "-o", "json")), &first); err != nil {
		t.Fatal(err)
	}
	if first.Status.Phase != "Succeeded" || first.Spec.Repository != "s3" || first.Spec.Session != "shop-backup" || first.Status.Duration == "" {
		t.Errorf("session %+v", first)
	}
	for _, typ := range []string{api.ConditionRestoreSucceeded, api.ConditionBackupVerified, api.ConditionVerificationSessionHistoryCleaned} {
		if st, msg := first.condition(typ); st != "True" {
			t.Errorf("%s = %q (%s), want True", typ, st, msg)
		}
	}
	// the same latest snapshot, verified again: skipped
	time.Sleep(time.Second) // a new unix second: a new session name
	out, err = stash(t, ns, "verify", "shop-backup", "--wait")
	if err != nil || !strings.Contains(out, "Skipped") {
		t.Fatalf("second verify: %v\n%s", err, out)
	}

	// the repository commands, from this machine and in a pod of the cluster
	if out := mustStash(t, ns, "check", "--repo", "s3", "--read-data"); !strings.Contains(out, "no problems found") {
		t.Errorf("check from this machine:\n%s", out)
	}
	if out := mustStash(t, ns, "check", "--repo", "s3", "--via-job"); !strings.Contains(out, "checked 1 snapshots") || !strings.Contains(out, "no problems found") {
		t.Errorf("check --via-job:\n%s", out)
	}
	if out := mustStash(t, ns, "forget", "--repo", "s3", "--keep-last", "1", "--dry-run", "--via-job"); !strings.Contains(out, "would remove 0 of 1 snapshots") {
		t.Errorf("forget --dry-run --via-job:\n%s", out)
	}

	// damage the largest data pack in the bucket (the server keeps objects as files)
	var biggest string
	var size int64
	filepath.Walk(filepath.Join(repoDir, "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
		return nil
	})
	b, err := os.ReadFile(biggest)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+256; i++ {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(biggest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = stash(t, ns, "verify", "shop-backup", "--name", "shop-verify-damaged", "--retries", "1", "--wait")
	if err == nil || !strings.Contains(out, "Failed") {
		t.Fatalf("verify of a damaged repository: %v\n%s", err, out)
	}
	t.Logf("verify of a damaged repository:\n%s", out)
	// the retry is a second session of the same verification; wait for it to end
	var damaged []bvsDoc
	waitFor(t, "the retry session to end", 2*time.Minute, func(context.Context) (bool, error) {
		damaged = damaged[:0]
		for _, d := range listBVS(t, ns) {
			j, err := c.BatchV1().Jobs(ns).Get(context.Background(), d.Metadata.Name, metav1.GetOptions{})
			if err == nil && j.Labels[api.LabelVerification] == "shop-verify-damaged" {
				damaged = append(damaged, d)
			}
		}
		return len(damaged) == 2 && damaged[0].Status.Phase == "Failed" && damaged[1].Status.Phase == "Failed", nil
	})
	retry, orig := damaged[0], damaged[1] // newest first
	if orig.Spec.RetryLeft != 1 || orig.Status.Retried == nil || !*orig.Status.Retried {
		t.Errorf("first damaged session: retryLeft %d retried %v, want 1 and true", orig.Spec.RetryLeft, orig.Status.Retried)
	}
	if retry.Spec.RetryLeft != 0 || (retry.Status.Retried != nil && *retry.Status.Retried) {
		t.Errorf("retry session: retryLeft %d retried %v, want 0 and false", retry.Spec.RetryLeft, retry.Status.Retried)
	}
	for _, d := range damaged {
		st, msg := d.condition(api.ConditionBackupVerified)
		if st != "False" || !strings.Contains(msg, "blob-") {
			t.Errorf("%s: BackupVerified %s %q, want False naming the damaged files", d.Metadata.Name, st, msg)
		}
		if st, _ := d.condition(api.ConditionRestoreSucceeded); st != "False" {
			t.Errorf("%s: RestoreSucceeded %s, want False", d.Metadata.Name, st)
		}
	}
	if out := mustStash(t, ns, "get", "bvs"); !regexp.MustCompile(`s3-shop-backup-\d+\s+shop-backup\s+s3\s+\S+\s+Failed\s+False`).MatchString(out) {
		t.Errorf("get bvs:\n%s", out)
	}
}

// TestRetentionKeepsTwoPerHostAndPath: five sessions with --keep-last 2 leave two
// snapshots per host and path.
func TestRetentionKeepsTwoPerHostAndPath(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	url, creds := s3Server(t)
	repoSecret(t, c, ns, "s3", url, creds)
	for i := range 2 {
		dir := hostDir(t)
		writeTree(t, dir, map[string]string{"a/x.txt": fmt.Sprint("a", i), "b/y.txt": fmt.Sprint("b", i)})
		boundClaim(t, c, ns, fmt.Sprintf("source-data-keep-%d", i), dir, corev1.ReadWriteOnce, false)
	}
	statefulSet(t, c, ns, "keep", 2)
	mustStash(t, ns, "backup", "statefulset/keep", "--repo", "s3", "--paths", "/source/data/a,/source/data/b", "--keep-last", "2", "--prune")
	var last string
	for i := range 5 {
		out, err := stash(t, ns, "trigger", "keep-backup", "--wait")
		if err != nil {
			t.Fatalf("session %d: %v\n%s", i, err, out)
		}
		last = sessionName(t, out)
	}
	// the last session says what retention removed and what the prune reclaimed
	conds := map[string]string{}
	for _, c := range getSession(t, ns, last)["status"].(map[string]any)["conditions"].([]any) {
		m := c.(map[string]any)
		conds[m["type"].(string)] = fmt.Sprint(m["status"], ": ", m["message"])
	}
	t.Logf("conditions of %s: %v", last, conds)
	if !strings.HasPrefix(conds["RetentionPolicyApplied"], "True: ") || !strings.Contains(conds["RetentionPolicyApplied"], "removed 1") {
		t.Errorf("RetentionPolicyApplied %q", conds["RetentionPolicyApplied"])
	}
	if !strings.HasPrefix(conds["RepositoryPruned"], "True: ") {
		t.Errorf("RepositoryPruned %q", conds["RepositoryPruned"])
	}
	out := stashJob(t, creds, "snapshots", "--repo", url, "-o", "json")
	var list []struct {
		Host  string   `json:"host"`
		Paths []string `json:"paths"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("snapshots -o json: %v\n%s", err, out)
	}
	count := map[string]int{}
	for _, s := range list {
		count[s.Host+" "+strings.Join(s.Paths, ",")]++
	}
	want := map[string]int{"host-0 /source/data/a": 2, "host-0 /source/data/b": 2, "host-1 /source/data/a": 2, "host-1 /source/data/b": 2}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("snapshots per host and path %v, want %v", count, want)
	}
}

// TestPauseResumeAndCancel: a paused configuration's schedule does not fire, a trigger
// still runs; resume fires it again. A running session canceled stops within 10 s,
// Failed with who canceled it, and the repository checks clean.
func TestPauseResumeAndCancel(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	url, creds := s3Server(t)
	repoSecret(t, c, ns, "s3", url, creds)
	dir := hostDir(t)
	randomFiles(t, dir, 40, 6<<20) // 240 MiB: a backup at 100m CPU takes a while
	boundClaim(t, c, ns, "media", dir, corev1.ReadWriteOnce, true)
	deployment(t, c, ns, "media", "media", "/media")
	mustStash(t, ns, "backup", "deployment/media", "--repo", "s3", "--paths", "/media", "--schedule", "* * * * *", "--cpu-limit", "100m")
	if out := mustStash(t, ns, "pause", "media-backup"); !strings.Contains(out, "paused") {
		t.Errorf("pause: %s", out)
	}
	if out := mustStash(t, ns, "get", "bc", "media-backup"); !regexp.MustCompile(`media-backup\s+deployment/media\s+\* \* \* \* \*\s+true`).MatchString(out) {
		t.Errorf("get bc of a paused configuration:\n%s", out)
	}
	scheduled := func() int {
		list, _ := c.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{LabelSelector: api.LabelComponent + "=" + api.ComponentSession})
		n := 0
		for _, j := range list.Items {
			if j.Annotations["cronjob.kubernetes.io/instantiate"] != "manual" {
				n++
			}
		}
		return n
	}
	// a trigger while paused runs; cancel it once its host is uploading
	out := mustStash(t, ns, "trigger", "media-backup")
	name := sessionName(t, out)
	host := api.HostJobName(name, "host-0")
	waitFor(t, "the host to upload", 2*time.Minute, func(ctx context.Context) (bool, error) {
		j, err := c.BatchV1().Jobs(ns).Get(ctx, host, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		var st api.HostStatus
		_ = json.Unmarshal([]byte(j.Annotations[api.AnnotationHostStatus]), &st)
		return st.Progress != nil && st.Progress.BytesDone > 0, nil
	})
	canceledAt := time.Now()
	if out := mustStash(t, ns, "cancel", name); !strings.Contains(out, "canceled") {
		t.Errorf("cancel: %s", out)
	}
	var sessionErr string
	waitFor(t, "the canceled session to end", 30*time.Second, func(ctx context.Context) (bool, error) {
		doc := getSession(t, ns, name)
		st := doc["status"].(map[string]any)
		sessionErr = fmt.Sprint(st["stats"])
		return st["phase"] == "Failed", nil
	})
	took := time.Since(canceledAt)
	t.Logf("canceled session ended Failed after %s: %s", took.Round(time.Millisecond), sessionErr)
	if took > 10*time.Second {
		t.Errorf("the canceled session took %s to end, want at most 10s", took)
	}
	j, _ := c.BatchV1().Jobs(ns).Get(context.Background(), name, metav1.GetOptions{})
	var st api.SessionStatus
	_ = json.Unmarshal([]byte(j.Annotations[api.AnnotationSessionStatus]), &st)
	if !strings.Contains(st.Error, "canceled by") {
		t.Errorf("session error %q, want who canceled it", st.Error)
	}
	// stashJob fails the test unless check exits 0: the repository is sound
	t.Logf("check --read-data after the cancel:\n%s", stashJob(t, creds, "check", "--repo", url, "--read-data"))
	// paused for over a minute: the schedule did not fire
	time.Sleep(time.Until(canceledAt.Add(65 * time.Second)))
	if n := scheduled(); n != 0 {
		t.Errorf("%d scheduled sessions while paused, want 0", n)
	}
	mustStash(t, ns, "resume", "media-backup")
	waitFor(t, "a scheduled session after resume", 90*time.Second, func(context.Context) (bool, error) { return scheduled() > 0, nil })
	mustStash(t, ns, "pause", "media-backup") // no more scheduled load on the cluster
}
