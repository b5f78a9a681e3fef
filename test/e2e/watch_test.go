//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// tmuxPane runs a command in a detached tmux session of a fixed size: a real terminal.
type tmuxPane struct {
	t    *testing.T
	name string
}

func newTmuxPane(t *testing.T, width, height int, env []string, command string) *tmuxPane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is needed for the terminal UI test: %v", err)
	}
	p := &tmuxPane{t: t, name: fmt.Sprintf("stash-e2e-%d", time.Now().UnixNano())}
	// the environment goes on the command line: a tmux server started earlier keeps its
	// own global environment, which new sessions would otherwise inherit
	args := []string{"new-session", "-d", "-s", p.name, "-x", fmt.Sprint(width), "-y", fmt.Sprint(height),
		"env " + strings.Join(env, " ") + " " + command}
	if out, err := exec.Command("tmux", args...).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	// remain-on-exit keeps the last screen if the program ends, for the failure message
	_ = exec.Command("tmux", "set-option", "-t", p.name, "remain-on-exit", "on").Run()
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", p.name).Run() })
	return p
}

// capture returns the visible screen as text (no escape sequences: what a person sees).
func (p *tmuxPane) capture() string {
	out, err := exec.Command("tmux", "capture-pane", "-p", "-t", p.name).Output()
	if err != nil {
		p.t.Fatalf("tmux capture-pane: %v", err)
	}
	return string(out)
}

func (p *tmuxPane) keys(keys ...string) {
	if out, err := exec.Command("tmux", append([]string{"send-keys", "-t", p.name}, keys...)...).CombinedOutput(); err != nil {
		p.t.Fatalf("tmux send-keys: %v\n%s", err, out)
	}
}

// waitScreen polls the screen until ok, and returns it.
func (p *tmuxPane) waitScreen(what string, timeout time.Duration, ok func(string) bool) string {
	p.t.Helper()
	end := time.Now().Add(timeout)
	var s string
	for time.Now().Before(end) {
		if s = p.capture(); ok(s) {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("screen never showed %s; last screen:\n%s", what, s)
	return ""
}

var garbage = regexp.MustCompile(`panic:|goroutine \d+|\x1b|\[\d+(;\d+)*m|\?25[lh]`)

// TestWatchInATerminal: `kubectl stash watch CONFIG` in tmux at 120x40 shows a session's
// host progress advancing, then Succeeded with stats; an annotation change reaches the
// screen within a second.
func TestWatchInATerminal(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	fileRepository(t, c, ns)
	data := hostDir(t)
	randomFiles(t, data, 60, 4<<20) // 240 MiB, read at a tenth of a CPU: several seconds
	boundClaim(t, c, ns, "media", data, corev1.ReadWriteOnce, true)
	mustStash(t, ns, "backup", "pvc/media", "--repo", "repo", "--paths", "/data", "--cpu-limit", "100m")

	env := []string{"KUBECONFIG=" + e.kubeconfig, "PATH=" + e.binDir + ":" + e.kubectlDir + ":/usr/bin:/bin", "TERM=xterm-256color"}
	pane := newTmuxPane(t, 120, 40, env, fmt.Sprintf("kubectl stash watch media-backup -n %s --image %s", ns, e.image))
	pane.waitScreen("the watch view", 20*time.Second, func(s string) bool { return strings.Contains(s, "media-backup") || strings.Contains(s, ns) })

	out := mustStash(t, ns, "trigger", "media-backup")
	session := sessionName(t, out)
	host := api.HostJobName(session, "host-0")

	// the progress bar advances: two screens of the running host with a growing percentage
	percent := regexp.MustCompile(`host-0\s+Running\s+\S+\s+(\d+)%`)
	progressOf := func(s string) int {
		m := percent.FindStringSubmatch(s)
		if m == nil {
			return -1
		}
		var n int
		fmt.Sscan(m[1], &n)
		return n
	}
	first := pane.waitScreen("the host running with progress", 90*time.Second, func(s string) bool {
		return progressOf(s) > 0 || strings.Contains(s, "Succeeded")
	})
	if progressOf(first) <= 0 {
		t.Fatalf("the host ended before any progress was drawn: make the volume larger\n%s", first)
	}
	second := pane.waitScreen("the progress advancing", 60*time.Second, func(s string) bool {
		return progressOf(s) > progressOf(first) || strings.Contains(s, "Succeeded")
	})
	if progressOf(second) <= progressOf(first) {
		t.Fatalf("the host ended before a second progress screen: make the volume larger\nfirst:\n%s\nthen:\n%s", first, second)
	}
	t.Logf("progress screens:\n%s\n---\n%s", first, second)
	done := pane.waitScreen("Succeeded with the stats", 3*time.Minute, func(s string) bool {
		return strings.Contains(s, "Succeeded") && strings.Contains(s, "/data") && strings.Contains(s, "60")
	})
	t.Logf("final screen:\n%s", done)
	for _, s := range []string{first, second, done} {
		if garbage.MatchString(s) {
			t.Errorf("the screen shows a panic or raw escape sequences:\n%q", s)
		}
	}

	// latency: an annotation written on the host Job appears on screen within a second
	ctx := context.Background()
	marker := fmt.Sprintf("latency-probe-%d", time.Now().UnixNano()%100000)
	st := api.HostStatus{SchemaVersion: api.SchemaVersion, Hostname: "host-0", Phase: api.PhaseFailed, Error: marker, Duration: "1s"}
	b, _ := json.Marshal(st)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{api.AnnotationHostStatus: string(b)}}})
	start := time.Now()
	if _, err := c.BatchV1().Jobs(ns).Patch(ctx, host, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	pane.waitScreen("the patched annotation", 5*time.Second, func(s string) bool { return strings.Contains(s, marker) })
	latency := time.Since(start)
	t.Logf("annotation change → on screen: %s", latency.Round(time.Millisecond))
	if latency > time.Second {
		t.Errorf("annotation change took %s to reach the screen, want ≤ 1s", latency)
	}
	if report := os.Getenv("STASH_E2E_REPORT"); report != "" {
		if f, err := os.OpenFile(filepath.Clean(report), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "watch latency: %s\n", latency.Round(time.Millisecond))
			f.Close()
		}
	}
	pane.keys("q")
}

// TestWatchWithoutATerminal: piped, watch SESSION prints one line per change and exits
// with the session's result.
func TestWatchWithoutATerminal(t *testing.T) {
	t.Parallel()
	c := clientset(t)
	ns := namespace(t, c)
	fileRepository(t, c, ns)
	data := hostDir(t)
	writeTree(t, data, map[string]string{"a.txt": "a\n"})
	boundClaim(t, c, ns, "small", data, corev1.ReadWriteOnce, true)
	mustStash(t, ns, "backup", "pvc/small", "--repo", "repo", "--paths", "/data")
	session := sessionName(t, mustStash(t, ns, "trigger", "small-backup"))
	out, err := stash(t, ns, "watch", session)
	if err != nil {
		t.Fatalf("watch %s: %v\n%s", session, err, out)
	}
	if !strings.Contains(out, ns+"/"+session+" Succeeded") || !strings.Contains(out, "host host-0: Succeeded") {
		t.Errorf("watch lines:\n%s", out)
	}
	// JSON lines, one object per change, the last one final
	out, err = stash(t, ns, "watch", session, "-o", "json")
	if err != nil {
		t.Fatalf("watch -o json: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last api.SessionView
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Phase != api.PhaseSucceeded || len(last.Hosts) != 1 {
		t.Errorf("last JSON line %q (%v)", lines[len(lines)-1], err)
	}
}
