//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
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

// The cluster-fault tests (docs/reliability.md): a host pod deleted, the kubelet restarted
// and the API server gone for 30 s, each in the middle of a backup. None of them calls
// t.Parallel: they stop parts of the cluster every other test uses, so they run alone,
// before the parallel tests start.

// clusterComponent runs test/cluster/up.sh ACTION COMPONENT (stop, start or restart the
// kube-apiserver or the kubelet the cluster script started).
func clusterComponent(t *testing.T, action, component string) {
	t.Helper()
	out, err := exec.Command("bash", "../cluster/up.sh", action, component).CombinedOutput()
	if err != nil {
		t.Fatalf("up.sh %s %s: %v\n%s", action, component, err, out)
	}
	t.Logf("up.sh %s %s:\n%s", action, component, strings.TrimSpace(string(out)))
}

// faultRepo is an S3 repository whose uploads pass through a slow link.
type faultRepo struct {
	url   string            // the repository's URL on this machine (straight to the server)
	creds map[string]string // the server's credentials
	dir   string            // the repository's directory under the server's root
}

// slowBackup makes a Deployment whose volume holds mib MiB of incompressible files and a
// backup configuration of it into an S3 repository the pods reach through a link of
// uploadRate bytes/s, so a session's host is busy long enough for a fault to hit it
// mid-backup.
func slowBackup(t *testing.T, c kubernetes.Interface, ns, config string, mib, uploadRate int, flags ...string) faultRepo {
	t.Helper()
	var r faultRepo
	r.url, r.creds, r.dir = s3ServerWithRoot(t)
	server := regexp.MustCompile(`endpoint=http://([^&]+)`).FindStringSubmatch(r.url)[1]
	slow := throttledProxy(t, server, uploadRate).Addr().String()
	repoSecret(t, c, ns, "repo", strings.Replace(r.url, server, slow, 1), r.creds)
	data := hostDir(t)
	randomFiles(t, data, mib/4, 4<<20)
	boundClaim(t, c, ns, "data", data, corev1.ReadWriteOnce, true)
	deployment(t, c, ns, "data", "data", "/data")
	mustStash(t, ns, append([]string{"backup", "deployment/data", "--name", config, "--repo", "repo", "--paths", "/data"}, flags...)...)
	return r
}

// throttledProxy forwards connections on the node's address to server, passing what the
// client sends at no more than rate bytes/s (what comes back is not slowed). It returns
// its listener (closing it takes the server away).
func throttledProxy(t *testing.T, server string, rate int) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", e.nodeIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer client.Close()
				up, err := net.Dial("tcp", server)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { io.Copy(client, up); client.Close() }()
				buf := make([]byte, 16<<10)
				for {
					n, err := client.Read(buf)
					if n > 0 {
						time.Sleep(time.Duration(n) * time.Second / time.Duration(rate))
						if _, werr := up.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return l
}

// sessionMidBackup makes a slow backup configuration (slowBackup, 48 MiB at 2 MiB/s),
// triggers a session and returns once its host is mid-backup, with the host's Job.
func sessionMidBackup(t *testing.T, c kubernetes.Interface, ns string, flags ...string) (repo faultRepo, session, job string) {
	t.Helper()
	repo = slowBackup(t, c, ns, "data-backup", 48, 2<<20, flags...)
	session = sessionName(t, mustStash(t, ns, "trigger", "data-backup"))
	return repo, session, hostMidBackup(t, c, ns, session)
}

// hostMidBackup waits until the session's host has backed up some bytes but not all, and
// returns its Job.
func hostMidBackup(t *testing.T, c kubernetes.Interface, ns, session string) string {
	t.Helper()
	var job string
	waitFor(t, "the host of "+session+" backing up", 3*time.Minute, func(ctx context.Context) (bool, error) {
		jobs, err := c.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: api.LabelBackupSession + "=" + session + "," +
			api.LabelComponent + "=" + api.ComponentHost})
		if err != nil || len(jobs.Items) == 0 {
			return false, nil
		}
		var hs api.HostStatus
		j := jobs.Items[0]
		if json.Unmarshal([]byte(j.Annotations[api.AnnotationHostStatus]), &hs) != nil || hs.Progress == nil {
			return false, nil
		}
		if hs.Phase.Final() {
			return false, fmt.Errorf("host %s ended (%s) before the fault: give it more data", j.Name, hs.Phase)
		}
		job = j.Name
		return hs.Progress.BytesDone > 4<<20, nil
	})
	return job
}

// sessionEnds waits until the session is in a final phase (never longer than within) and
// returns its document; a session still Running then fails the test.
func sessionEnds(t *testing.T, ns, session string, within time.Duration) sessionStatus {
	t.Helper()
	var s sessionStatus
	start := time.Now()
	waitFor(t, "session "+session+" to end", within, func(ctx context.Context) (bool, error) {
		out, err := stash(t, ns, "get", "bs", session, "-o", "json")
		if err != nil {
			return false, nil // the API server may still be coming back
		}
		s = sessionStatus{}
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			return false, err
		}
		return api.Phase(s.Status.Phase).Final(), nil
	})
	t.Logf("session %s ended %s after the fault: %s %s", session, time.Since(start).Round(time.Second), s.Status.Phase, hostErrors(s))
	for _, h := range s.Status.Stats {
		if !api.Phase(h.Phase).Final() {
			t.Errorf("session %s ended %s, its host %s is still %s", session, s.Status.Phase, h.Hostname, h.Phase)
		}
	}
	return s
}

// hostErrors joins the errors of a session's hosts: the reasons a session failed.
func hostErrors(s sessionStatus) string {
	var errs []string
	for _, h := range s.Status.Stats {
		if h.Error != "" {
			errs = append(errs, h.Hostname+": "+h.Error)
		}
	}
	return strings.Join(errs, "; ")
}

// locksIn lists the lock objects of the repository (the server keeps them as files).
func locksIn(t *testing.T, r faultRepo) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(r.dir, "locks"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// afterFault checks what every cluster fault must leave: the next session (which prunes)
// succeeds without anyone removing a lock, no lock is left behind, and the repository
// checks clean with every pack read.
func afterFault(t *testing.T, ns, config string, r faultRepo) {
	t.Helper()
	out := mustStash(t, ns, "trigger", config, "--wait")
	next := sessionName(t, out)
	if s := readSession(t, ns, next); s.Status.Phase != string(api.PhaseSucceeded) {
		t.Fatalf("the session after the fault: %s %s\n%s", s.Status.Phase, hostErrors(s), out)
	}
	if l := locksIn(t, r); len(l) != 0 {
		t.Errorf("locks left in the repository after the next session: %v", l)
	}
	check := stashJob(t, r.creds, "check", "--repo", r.url, "--read-data")
	if !strings.Contains(check, "no problems") {
		t.Errorf("check --read-data after the fault:\n%s", check)
	}
}

// TestHostPodDeletedMidBackup: the host's pod is deleted while it uploads, gracefully
// (SIGTERM: the host stops and releases its lock) or at once (SIGKILL: its lock stays
// behind). Either way the session ends Failed naming the host and why, and the next
// session, which prunes, succeeds without anyone removing a lock.
func TestHostPodDeletedMidBackup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace *int64
		kill  bool // SIGKILL the container instead (as the OOM killer does): its lock stays
	}{{"graceful", nil, false}, {"at-once", new(int64), false}, {"container-killed", nil, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := clientset(t)
			ns := namespace(t, c)
			repo, session, job := sessionMidBackup(t, c, ns, "--prune", "--keep-last", "3")
			pods, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "job-name=" + job})
			if err != nil || len(pods.Items) != 1 {
				t.Fatalf("pods of %s: %v %v", job, pods, err)
			}
			if tc.kill {
				killContainer(t, pods.Items[0])
			} else if err := c.CoreV1().Pods(ns).Delete(context.Background(), pods.Items[0].Name, metav1.DeleteOptions{GracePeriodSeconds: tc.grace}); err != nil {
				t.Fatal(err)
			}
			s := sessionEnds(t, ns, session, 3*time.Minute)
			if s.Status.Phase != string(api.PhaseFailed) {
				t.Fatalf("session %s after its host's pod was deleted: %s, want Failed", session, s.Status.Phase)
			}
			h := s.Status.Stats[0]
			if h.Phase != string(api.PhaseFailed) || h.Error == "" {
				t.Errorf("host %s: %s %q, want Failed with a reason", h.Hostname, h.Phase, h.Error)
			}
			left := locksIn(t, repo)
			t.Logf("host %s: %s; locks left: %d", h.Hostname, h.Error, len(left))
			if tc.kill && len(left) == 0 {
				t.Errorf("a container killed with SIGKILL left no lock: the test no longer shows what it is for")
			}
			afterFault(t, ns, "data-backup", repo)
		})
	}
}

// killContainer sends SIGKILL to a pod's first container through the node's containerd,
// as the kernel's OOM killer would: no signal handler runs, nothing is cleaned up.
func killContainer(t *testing.T, pod corev1.Pod) {
	t.Helper()
	if len(pod.Status.ContainerStatuses) == 0 {
		t.Fatalf("pod %s has no container status", pod.Name)
	}
	id := strings.TrimPrefix(pod.Status.ContainerStatuses[0].ContainerID, "containerd://")
	sock := filepath.Join(filepath.Dir(e.kubeconfig), "containerd", "containerd.sock")
	if out, err := exec.Command("ctr", "--address", sock, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id).CombinedOutput(); err != nil {
		t.Fatalf("ctr tasks kill %s: %v\n%s", id, err, out)
	}
}

// TestKubeletRestartMidSession: the kubelet restarts while the host backs up; the
// containers keep running, and the session ends (here: Succeeded) rather than hang.
func TestKubeletRestartMidSession(t *testing.T) {
	c := clientset(t)
	ns := namespace(t, c)
	repo, session, _ := sessionMidBackup(t, c, ns)
	clusterComponent(t, "restart", "kubelet")
	s := sessionEnds(t, ns, session, 5*time.Minute)
	if s.Status.Phase != string(api.PhaseSucceeded) && hostErrors(s) == "" {
		t.Errorf("session %s ended %s with no reason", session, s.Status.Phase)
	}
	afterFault(t, ns, "data-backup", repo)
}

// TestAPIServerUnreachableMidSession: the API server is gone for 30 s while the host backs
// up: the session and its host keep going (their status writes retry) and the session
// ends Succeeded: only the API server was away, the backup itself was not touched.
func TestAPIServerUnreachableMidSession(t *testing.T) {
	c := clientset(t)
	ns := namespace(t, c)
	repo, session, _ := sessionMidBackup(t, c, ns)
	clusterComponent(t, "stop", "kube-apiserver")
	stopped := time.Now()
	defer exec.Command("bash", "../cluster/up.sh", "start", "kube-apiserver").Run() // whatever happens, the other tests need it
	time.Sleep(30*time.Second - time.Since(stopped))
	clusterComponent(t, "start", "kube-apiserver")
	s := sessionEnds(t, ns, session, 5*time.Minute)
	if s.Status.Phase != string(api.PhaseSucceeded) {
		t.Errorf("session %s: %s %q; the host was not touched, only the API server was away for 30 s", session, s.Status.Phase, hostErrors(s))
	}
	afterFault(t, ns, "data-backup", repo)
}

// TestSessionWithBackendGone: the repository's server goes away after the configuration
// is made, for the whole session. The session fails within its timeout, its host names
// the repository and the cause, and no phase is left Running.
func TestSessionWithBackendGone(t *testing.T) {
	c := clientset(t)
	ns := namespace(t, c)
	url, creds, _ := s3ServerWithRoot(t)
	server := regexp.MustCompile(`endpoint=http://([^&]+)`).FindStringSubmatch(url)[1]
	proxy := throttledProxy(t, server, 1<<30)
	gone := proxy.Addr().String()
	repoSecret(t, c, ns, "repo", strings.Replace(url, server, gone, 1), creds)
	data := hostDir(t)
	writeTree(t, data, map[string]string{"a.txt": "a\n"})
	boundClaim(t, c, ns, "data", data, corev1.ReadWriteOnce, true)
	deployment(t, c, ns, "data", "data", "/data")
	mustStash(t, ns, "backup", "deployment/data", "--repo", "repo", "--paths", "/data", "--timeout", "4m")
	proxy.Close() // nothing listens there any more
	start := time.Now()
	out, err := stash(t, ns, "trigger", "data-backup", "--wait")
	took := time.Since(start)
	if err == nil {
		t.Fatalf("trigger --wait succeeded with the repository's server gone:\n%s", out)
	}
	s := sessionEnds(t, ns, sessionName(t, out), time.Minute)
	t.Logf("session %s after %s: %s", s.Status.Phase, took.Round(time.Second), hostErrors(s))
	if s.Status.Phase != string(api.PhaseFailed) {
		t.Errorf("session %s, want Failed", s.Status.Phase)
	}
	if took > 4*time.Minute+time.Minute {
		t.Errorf("the session took %s, beyond its 4m timeout", took)
	}
	if e := hostErrors(s); !strings.Contains(e, gone) || !strings.Contains(e, "connection refused") {
		t.Errorf("host errors %q: want the repository's address %s and the cause", e, gone)
	}
}
