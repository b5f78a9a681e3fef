package jobimage

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// fakeExec plays the exec API: each call is recorded, and run decides what the command
// does with its streams.
type fakeExec struct {
	mu    sync.Mutex
	calls []execCall
	run   func(c execCall, stdin io.Reader, stdout, stderr io.Writer) error
}

type execCall struct {
	Pod, Container string
	Argv           []string
}

func (f *fakeExec) Exec(_ context.Context, pod, container string, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := execCall{pod, container, argv}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if f.run == nil {
		return nil
	}
	return f.run(c, stdin, stdout, stderr)
}

// script is what a shell hook's command line ends with (after the STASH_* exports).
func script(c execCall) string {
	if len(c.Argv) == 3 {
		return c.Argv[2]
	}
	return strings.Join(c.Argv, " ")
}

const hostPassword = "host test password"

func hostRun(t *testing.T, spec api.HostSpec, ex PodExec, objs ...corev1.Pod) (HostRun, *recorder) {
	t.Helper()
	rec := &recorder{}
	kube := fake.NewClientset()
	for i := range objs {
		if _, err := kube.CoreV1().Pods(ns).Create(context.Background(), &objs[i], metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return HostRun{Spec: spec, RepoURL: newFileRepo(t), Password: []byte(hostPassword), Status: rec, Exec: ex, Kube: kube, Namespace: ns}, rec
}

func appPod(annotations map[string]string) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app-0", Namespace: ns, Annotations: annotations},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1"}}
}

func hookNames(rs []api.HookResult) []string {
	var out []string
	for _, r := range rs {
		s := r.Phase + ":" + r.Name
		switch {
		case r.Skipped:
			s += ":skipped"
		case r.Succeeded:
			s += ":ok"
		default:
			s += ":failed"
		}
		out = append(out, s)
	}
	return out
}

// TestHostHooks: pre hooks run in order before the backup and a failure stops them and
// the backup; post hooks run by their policy, see the outcome in their environment, and
// a failed one fails the host.
func TestHostHooks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		hooks     api.Hooks
		fail      map[string]string // script → stderr of a failing command
		badPath   bool              // the backup itself fails
		wantErr   string
		wantHooks []string
		wantSnaps int
	}{
		{
			name: "pre and post in order, OnFailure skipped",
			hooks: api.Hooks{PreBackup: []api.Hook{{Name: "flush", Exec: api.ShellHook("sync")}, {Name: "mark", Exec: api.ShellHook("touch m")}},
				PostBackup: []api.Hook{{Name: "alert", Exec: api.ShellHook("alert"), Policy: api.PolicyOnFailure}, {Name: "always", Exec: api.ShellHook("log")}}},
			wantHooks: []string{"preBackup:flush:ok", "preBackup:mark:ok", "postBackup:alert:skipped", "postBackup:always:ok"},
			wantSnaps: 1,
		},
		{
			name: "failing pre hook stops the rest and the backup",
			hooks: api.Hooks{PreBackup: []api.Hook{{Name: "quiesce", Exec: api.ShellHook("quiesce")}, {Name: "never", Exec: api.ShellHook("never")}},
				PostBackup: []api.Hook{{Name: "alert", Exec: api.ShellHook("alert"), Policy: api.PolicyOnFailure}, {Name: "ok-only", Exec: api.ShellHook("ok"), Policy: api.PolicyOnSuccess}}},
			fail:      map[string]string{"quiesce": "cannot quiesce"},
			wantErr:   "preBackup hook quiesce failed: exited with code 3: cannot quiesce; nothing was backed up",
			wantHooks: []string{"preBackup:quiesce:failed", "postBackup:alert:ok", "postBackup:ok-only:skipped"},
		},
		{
			name:      "failing backup runs OnFailure",
			hooks:     api.Hooks{PostBackup: []api.Hook{{Name: "alert", Exec: api.ShellHook("alert"), Policy: api.PolicyOnFailure}}},
			badPath:   true,
			wantErr:   "no such file or directory",
			wantHooks: []string{"postBackup:alert:ok"},
		},
		{
			name:      "failing post hook fails the host after the backup",
			hooks:     api.Hooks{PostBackup: []api.Hook{{Name: "notify", Exec: api.ShellHook("notify")}}},
			fail:      map[string]string{"notify": "webhook down"},
			wantErr:   "postBackup hook notify failed: exited with code 3: webhook down",
			wantHooks: []string{"postBackup:notify:failed"},
			wantSnaps: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644)
			path := dir
			if tc.badPath {
				path = filepath.Join(dir, "missing")
			}
			ex := &fakeExec{}
			var envs []string
			ex.run = func(c execCall, _ io.Reader, stdout, stderr io.Writer) error {
				s := script(c)
				envs = append(envs, s)
				for cmd, msg := range tc.fail {
					if strings.HasSuffix(s, cmd) {
						fmt.Fprintln(stderr, msg)
						return &ExitError{Code: 3}
					}
				}
				return nil
			}
			spec := api.HostSpec{Hostname: "host-0", Config: "app-backup", Session: "app-backup-1", Paths: []string{path},
				Target: api.Target{Kind: "deployment", Name: "app"}, Pod: "app-0", Hooks: &tc.hooks}
			h, rec := hostRun(t, spec, ex, appPod(nil))
			err := RunHost(context.Background(), h)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("RunHost = %v, want %q", err, tc.wantErr)
			}
			st := rec.last()
			if got := hookNames(st.Hooks); strings.Join(got, " ") != strings.Join(tc.wantHooks, " ") {
				t.Errorf("hooks %v, want %v", got, tc.wantHooks)
			}
			if len(st.Snapshots) != tc.wantSnaps {
				t.Errorf("%d snapshots, want %d", len(st.Snapshots), tc.wantSnaps)
			}
			for _, c := range ex.calls {
				if c.Pod != "app-0" || c.Argv[0] != "/bin/sh" {
					t.Errorf("hook ran as %+v, want /bin/sh -c in pod app-0", c)
				}
			}
			// every hook sees who runs it; post hooks see the outcome
			for _, s := range envs {
				if !strings.Contains(s, "STASH_HOST='host-0'; export STASH_HOST;") || !strings.Contains(s, "STASH_SESSION='app-backup-1'") ||
					!strings.Contains(s, "STASH_TARGET='deployment/app'") {
					t.Errorf("hook script lacks the host's environment: %s", s)
				}
			}
			for i, r := range st.Hooks {
				if r.Phase == api.HookPostBackup && !r.Skipped {
					want := "STASH_BACKUP_PHASE='Succeeded'"
					if tc.wantErr != "" && !strings.Contains(tc.wantErr, "postBackup") {
						want = "STASH_BACKUP_PHASE='Failed'; export STASH_BACKUP_PHASE; STASH_BACKUP_ERROR="
					}
					found := false
					for _, s := range envs {
						found = found || strings.Contains(s, want)
					}
					if !found {
						t.Errorf("hook %d (%s) did not see %s in %v", i, r.Name, want, envs)
					}
				}
			}
		})
	}
}

// TestHookTimeoutAndAnnotations: a pod's annotations add hooks after the configuration's,
// in the container and with the timeout they name; a hook that outlives its timeout fails.
func TestHookTimeoutAndAnnotations(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644)
	ex := &fakeExec{run: func(c execCall, _ io.Reader, _, _ io.Writer) error {
		if strings.Contains(script(c), "slow") {
			time.Sleep(50 * time.Millisecond) // the exec API returns when the hook's context ends
			return context.DeadlineExceeded
		}
		return nil
	}}
	pod := appPod(map[string]string{
		api.AnnotationPreBackupCommand:  `["/usr/bin/flush","--all"]`,
		api.AnnotationPostBackupCommand: "slow",
		api.AnnotationHookContainer:     "db",
		api.AnnotationHookTimeout:       "1ms",
	})
	spec := api.HostSpec{Hostname: "host-0", Paths: []string{dir}, Pod: "app-0", Target: api.Target{Kind: "deployment", Name: "app"},
		Hooks: &api.Hooks{PreBackup: []api.Hook{{Name: "configured", Exec: api.ShellHook("true")}}}}
	h, rec := hostRun(t, spec, ex, pod)
	err := RunHost(context.Background(), h)
	if err == nil || !strings.Contains(err.Error(), "timed out after 1ms") {
		t.Fatalf("RunHost = %v, want the annotation's post hook to time out", err)
	}
	if got := hookNames(rec.last().Hooks); strings.Join(got, " ") !=
		"preBackup:configured:ok preBackup:annotation pre-backup-command:ok postBackup:annotation post-backup-command:failed" {
		t.Errorf("hooks %v", got)
	}
	if c := ex.calls[1]; c.Container != "db" || strings.Join(c.Argv, " ") != "/usr/bin/flush --all" {
		t.Errorf("annotation hook ran as %+v, want /usr/bin/flush --all in container db, unchanged", c)
	}
}

// TestHTTPHook: a request goes to the pod's IP by default, with the configured headers
// and body and the outcome as X-Stash-* headers; a status outside 2xx fails it.
func TestHTTPHook(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, string(b))
		mu.Unlock()
		if r.URL.Path == "/fail" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	_, portStr, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	port, _ := strconv.Atoi(portStr)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644)
	spec := api.HostSpec{Hostname: "host-0", Paths: []string{dir}, Pod: "app-0", Target: api.Target{Kind: "deployment", Name: "app"},
		Hooks: &api.Hooks{
			PreBackup:  []api.Hook{{Name: "quiesce", HTTP: &api.HTTPHook{Method: "POST", Port: port, Path: "/quiesce", Body: `{"on":true}`, Headers: map[string]string{"Authorization": "Bearer x"}}}},
			PostBackup: []api.Hook{{Name: "resume", HTTP: &api.HTTPHook{Method: "GET", Host: "127.0.0.1", Port: port, Path: "/fail"}}},
		}}
	h, rec := hostRun(t, spec, &fakeExec{}, appPod(nil))
	err := RunHost(context.Background(), h)
	if err == nil || !strings.Contains(err.Error(), "503 Service Unavailable: not ready") {
		t.Fatalf("RunHost = %v, want the post hook's 503", err)
	}
	if len(rec.last().Snapshots) != 1 {
		t.Errorf("the backup did not run between the hooks")
	}
	if len(got) != 2 || got[0].Method != "POST" || got[0].URL.Path != "/quiesce" || bodies[0] != `{"on":true}` ||
		got[0].Header.Get("Authorization") != "Bearer x" || got[0].Header.Get("X-Stash-Host") != "host-0" {
		t.Fatalf("requests %v %v", got, bodies)
	}
	if got[1].Header.Get("X-Stash-Backup-Phase") != "Succeeded" {
		t.Errorf("post hook headers %v, want X-Stash-Backup-Phase: Succeeded", got[1].Header)
	}
}

// TestDumpBackupAndRestore: a dump command's output is the snapshot's one file, byte for
// byte, fed back to the restore command; a failing or silent command fails the host with
// its standard error and leaves no snapshot.
func TestDumpBackupAndRestore(t *testing.T) {
	dump := make([]byte, 5<<20+123)
	rand.Read(dump)
	d := api.Dump{Preset: "postgres", Container: "db", DumpCommand: "pg_dumpall", RestoreCommand: "psql", FileName: "dumpfile.sql"}
	spec := api.HostSpec{Hostname: "host-0", Config: "db-backup", Session: "db-backup-1", Pod: "db-0",
		Target: api.Target{Kind: "statefulset", Name: "db"}, Dump: &d}
	ex := &fakeExec{run: func(c execCall, _ io.Reader, stdout, _ io.Writer) error {
		_, err := stdout.Write(dump)
		return err
	}}
	h, rec := hostRun(t, spec, ex)
	if err := RunHost(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	st := rec.last()
	if len(st.Snapshots) != 1 || st.Snapshots[0].Directory != "/dumpfile.sql" || st.Snapshots[0].FileStats.TotalFiles != 1 {
		t.Fatalf("snapshots %+v", st.Snapshots)
	}
	if c := ex.calls[0]; c.Pod != "db-0" || c.Container != "db" || strings.Join(c.Argv, " ") != "/bin/sh -c pg_dumpall" {
		t.Errorf("dump ran as %+v", c)
	}

	// restore: the restore command reads exactly the dump
	var fed bytes.Buffer
	rex := &fakeExec{run: func(c execCall, stdin io.Reader, _, _ io.Writer) error {
		_, err := io.Copy(&fed, stdin)
		return err
	}}
	rrec := &recorder{}
	rh := RestoreHostRun{Spec: api.RestoreHostSpec{Hostname: "host-0", SourceHost: "host-0", FromConfig: "db-backup", Session: "r-1",
		SourceTarget: spec.Target, Target: api.Target{Kind: "statefulset", Name: "db-copy"}, Pod: "db-copy-0", Dump: &d},
		RepoURL: h.RepoURL, Password: []byte(hostPassword), Status: rrec, Exec: rex}
	if err := RunRestoreHost(context.Background(), rh); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fed.Bytes(), dump) {
		t.Fatalf("the restore command read %d bytes, want the %d of the dump", fed.Len(), len(dump))
	}
	if c := rex.calls[0]; c.Pod != "db-copy-0" || strings.Join(c.Argv, " ") != "/bin/sh -c psql" {
		t.Errorf("restore ran as %+v", c)
	}
	if r := rrec.last().Restored; len(r) != 1 || r[0].Path != "/dumpfile.sql" {
		t.Errorf("restored %+v", r)
	}
	// a restore command that fails says so with its words
	rex.run = func(c execCall, stdin io.Reader, stdout, _ io.Writer) error {
		io.CopyN(io.Discard, stdin, 1000)
		fmt.Fprintln(stdout, `ERROR:  relation "items" already exists`)
		return &ExitError{Code: 1}
	}
	if err := RunRestoreHost(context.Background(), rh); err == nil || !strings.Contains(err.Error(), `restore command exited with code 1: ERROR:  relation "items" already exists`) {
		t.Errorf("failing restore command: %v", err)
	}

	for _, tc := range []struct {
		name    string
		run     func(c execCall, _ io.Reader, stdout, stderr io.Writer) error
		wantErr string
	}{
		{"wrong password", func(_ execCall, _ io.Reader, stdout, stderr io.Writer) error {
			fmt.Fprintln(stderr, `pg_dumpall: error: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "postgres"`)
			return &ExitError{Code: 1}
		}, `dump command exited with code 1: pg_dumpall: error: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed`},
		{"fails midway", func(_ execCall, _ io.Reader, stdout, stderr io.Writer) error {
			stdout.Write(dump[:3<<20])
			fmt.Fprintln(stderr, "pg_dumpall: error: query failed: server closed the connection unexpectedly")
			return &ExitError{Code: 1}
		}, "dump command exited with code 1: pg_dumpall: error: query failed"},
		{"stderr only", func(_ execCall, _ io.Reader, _, stderr io.Writer) error {
			fmt.Fprintln(stderr, "mysqldump: Got error: 1045: Access denied")
			return nil
		}, "the dump command wrote nothing to its standard output; stderr: mysqldump: Got error: 1045: Access denied"},
		{"empty", func(execCall, io.Reader, io.Writer, io.Writer) error { return nil }, "the dump command wrote nothing to its standard output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rec := hostRun(t, spec, &fakeExec{run: tc.run})
			err := RunHost(context.Background(), h)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("RunHost = %v, want %q", err, tc.wantErr)
			}
			if st := rec.last(); st.Phase != api.PhaseFailed || len(st.Snapshots) != 0 || !strings.Contains(st.Error, tc.wantErr) {
				t.Errorf("status %+v", st)
			}
			if n := snapshotCount(t, h.RepoURL); n != 0 {
				t.Errorf("%d snapshots saved by a failed dump", n)
			}
		})
	}
}

func snapshotCount(t *testing.T, url string) int {
	t.Helper()
	st, err := store.Open(context.Background(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := repo.Open(context.Background(), st, []byte(hostPassword), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sns, err := r.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(sns)
}
