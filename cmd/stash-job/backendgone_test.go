package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/store/storetest"
	"github.com/kubectl-stash/kubectl-stash/internal/testutil"
)

// backupAgainst runs `stash-job backup` in a child process against the S3 endpoint
// addr and returns its output, its error and how long it ran. The child is killed
// after limit: a backup still running then is the hang these tests exist to catch.
func backupAgainst(t *testing.T, addr string, limit time.Duration) (string, error, time.Duration) {
	t.Helper()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("pw"), 0o600)
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("data"), 0o644)
	repo := "s3://bucket/prefix?endpoint=http://" + addr + "&use_path_style=true&region=us-east-1"
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(),
		"STASH_JOB_AS_MAIN="+strings.Join([]string{"backup", "--repo", repo, "--password-file", pw, "--host", "h", src}, "\x1f"),
		// static credentials: the SDK asks no metadata service
		"AWS_ACCESS_KEY_ID=gone-test", "AWS_SECRET_ACCESS_KEY=gone-test-secret", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, &out
	start := time.Now()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(limit, func() { child.Process.Kill() })
	err := child.Wait()
	d := time.Since(start)
	if !timer.Stop() {
		t.Fatalf("the backup still ran after %v and was killed: it hangs\n%s", limit, out.String())
	}
	return out.String(), err, d
}

// With nothing listening at the repository's endpoint for the whole run, a backup
// fails within the retry bound, with an error naming the repository and the cause.
func TestBackupWithBackendGone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	out, err, d := backupAgainst(t, addr, 120*time.Second)
	if err == nil {
		t.Fatalf("the backup succeeded with no backend:\n%s", out)
	}
	for _, want := range []string{"s3://bucket/prefix", "connection refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("the error does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "gone-test-secret") {
		t.Errorf("the error shows the secret key:\n%s", out)
	}
	t.Logf("backend gone (connection refused): the backup failed after %v: %s", d.Round(100*time.Millisecond), strings.TrimSpace(out))
	figure(t, "backend gone (nothing listening): backup failed after %v", d.Round(100*time.Millisecond))
}

// With a backend that accepts connections and never answers, a backup fails after
// the tries' timeouts (store.Options.TryTimeout, 30s, times MaxAttempts, 5) instead of
// hanging. Long: it waits for the real timeouts.
func TestBackupWithSilentBackend(t *testing.T) {
	testutil.SoakOnly(t)
	addr := storetest.SilentServer(t)
	out, err, d := backupAgainst(t, addr, 6*time.Minute)
	if err == nil {
		t.Fatalf("the backup succeeded with a silent backend:\n%s", out)
	}
	for _, want := range []string{"s3://bucket/prefix", "no answer within 30s"} {
		if !strings.Contains(out, want) {
			t.Errorf("the error does not say %q:\n%s", want, out)
		}
	}
	t.Logf("silent backend: the backup failed after %v: %s", d.Round(100*time.Millisecond), strings.TrimSpace(out))
	figure(t, "backend silent (accepts, never answers): backup failed after %v", d.Round(100*time.Millisecond))
}
