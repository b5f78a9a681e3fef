package jobimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// hookRunner runs a host's hooks: commands in a container of the host's pod through the
// exec API, or HTTP requests (to the pod's IP unless the hook names a host).
type hookRunner struct {
	exec      PodExec
	kube      kubernetes.Interface
	namespace string
	// pod is the target's pod of this host; "" when none runs (a pvc target).
	pod string
	// env is what every hook may read: the host, session and target.
	env  []envVar
	log  io.Writer
	now  func() time.Time
	http *http.Client
	// record receives each outcome as it is known, for the host's status.
	record func(api.HookResult)
}

type envVar struct{ name, value string }

// withPodAnnotations adds the hooks a pod's annotations ask for (api.AnnotationPre…):
// after the configuration's own, in the container and with the timeout they name.
func (hr *hookRunner) withPodAnnotations(ctx context.Context, hooks api.Hooks, backup bool) (api.Hooks, error) {
	if hr.pod == "" || hr.kube == nil || !backup {
		return hooks, nil
	}
	pod, err := hr.kube.CoreV1().Pods(hr.namespace).Get(ctx, hr.pod, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// replaced since the session looked (a rollout): a dump or an exec hook says so
		// when it runs; a backup of volumes does not need the pod
		fmt.Fprintf(hr.log, "pod %s is gone: no hooks from its annotations\n", hr.pod)
		return hooks, nil
	}
	if err != nil {
		return hooks, fmt.Errorf("read pod %s for its hook annotations: %w", hr.pod, err)
	}
	a := pod.Annotations
	for _, x := range []struct {
		key  string
		into *[]api.Hook
	}{{api.AnnotationPreBackupCommand, &hooks.PreBackup}, {api.AnnotationPostBackupCommand, &hooks.PostBackup}} {
		v, ok := a[x.key]
		if !ok {
			continue
		}
		argv, err := api.ParseHookCommand(v)
		if err != nil {
			return hooks, fmt.Errorf("pod %s: annotation %s: %v", hr.pod, x.key, err)
		}
		h := api.Hook{Name: "annotation " + strings.TrimPrefix(x.key, api.Prefix), Exec: argv,
			Container: a[api.AnnotationHookContainer], Timeout: a[api.AnnotationHookTimeout]}
		if err := h.Validate("pod "+hr.pod+" annotation "+x.key, false); err != nil {
			return hooks, err
		}
		*x.into = append(append([]api.Hook(nil), *x.into...), h)
	}
	return hooks, nil
}

// pre runs the hooks of a pre phase in order; the first failure stops them and is
// returned: the backup or restore must not run.
func (hr *hookRunner) pre(ctx context.Context, phase string, hooks []api.Hook) error {
	for i, h := range hooks {
		if err := hr.one(ctx, phase, i, h, nil); err != nil {
			return err
		}
	}
	return nil
}

// post runs the hooks of a post phase in order, each when its policy says so for the
// outcome workErr (nil: succeeded), and returns their failures joined: every hook gets
// its chance, and a failed one fails the host.
func (hr *hookRunner) post(ctx context.Context, phase string, hooks []api.Hook, workErr error) error {
	var errs []error
	for i, h := range hooks {
		policy := h.Policy
		if policy == "" {
			policy = api.PolicyAlways
		}
		if (policy == api.PolicyOnSuccess && workErr != nil) || (policy == api.PolicyOnFailure && workErr == nil) {
			hr.record(api.HookResult{Phase: phase, Name: hookName(h, i), Skipped: true, Succeeded: true,
				Message: fmt.Sprintf("not run: executionPolicy %s and the host %s", policy, outcome(workErr))})
			continue
		}
		if err := hr.one(ctx, phase, i, h, resultEnv(phase, workErr)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func outcome(err error) string {
	if err != nil {
		return "failed"
	}
	return "succeeded"
}

// resultEnv is what a post hook learns of the outcome.
func resultEnv(phase string, workErr error) []envVar {
	name := api.HookEnvPhase
	if phase == api.HookPostRestore {
		name = api.HookEnvRestore
	}
	if workErr == nil {
		return []envVar{{name, string(api.PhaseSucceeded)}}
	}
	return []envVar{{name, string(api.PhaseFailed)}, {api.HookEnvError, api.TruncateError(workErr.Error())}}
}

func hookName(h api.Hook, i int) string {
	if h.Name != "" {
		return h.Name
	}
	if h.HTTP != nil {
		return fmt.Sprintf("#%d %s %s", i+1, strings.ToUpper(h.HTTP.Method), h.HTTP.Path)
	}
	return fmt.Sprintf("#%d %s", i+1, commandLine(h.Exec))
}

// commandLine shows a command: the script of a shell hook, else its words.
func commandLine(argv []string) string {
	if len(argv) == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" {
		return argv[2]
	}
	return strings.Join(argv, " ")
}

// one runs hook h and records its outcome.
func (hr *hookRunner) one(ctx context.Context, phase string, i int, h api.Hook, extra []envVar) error {
	name := hookName(h, i)
	timeout := api.DefaultHookTimeout
	if h.Timeout != "" {
		if d, err := time.ParseDuration(h.Timeout); err == nil && d > 0 {
			timeout = d
		}
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := hr.now()
	fmt.Fprintf(hr.log, "hook %s %s: running\n", phase, name)
	var err error
	if h.HTTP != nil {
		err = hr.request(hctx, h.HTTP, extra)
	} else {
		err = hr.command(hctx, h, extra)
	}
	if err != nil && hctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		err = fmt.Errorf("timed out after %s (raise the hook's timeout): %w", timeout, err)
	}
	res := api.HookResult{Phase: phase, Name: name, Succeeded: err == nil, Duration: hr.now().Sub(start).Round(time.Millisecond).String()}
	if err != nil {
		res.Message = api.TruncateError(err.Error())
		fmt.Fprintf(hr.log, "hook %s %s: failed: %v\n", phase, name, err)
		err = fmt.Errorf("%s hook %s failed: %w", phase, name, err)
	} else {
		fmt.Fprintf(hr.log, "hook %s %s: succeeded in %s\n", phase, name, res.Duration)
	}
	hr.record(res)
	return err
}

// command runs an exec hook; a shell hook sees the STASH_* variables in its environment
// (set by the script itself, so the container needs no env program).
func (hr *hookRunner) command(ctx context.Context, h api.Hook, extra []envVar) error {
	if hr.pod == "" {
		return errors.New("the target has no running pod to run the command in")
	}
	if hr.exec == nil {
		return errors.New("no exec client")
	}
	argv := h.Exec
	if len(argv) == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" {
		var b strings.Builder
		for _, e := range append(append([]envVar(nil), hr.env...), extra...) {
			fmt.Fprintf(&b, "%s=%s; export %s; ", e.name, shellQuote(e.value), e.name)
		}
		argv = []string{"/bin/sh", "-c", b.String() + argv[2]}
	}
	out := newTail(2048)
	err := hr.exec.Exec(ctx, hr.pod, h.Container, argv, nil, out, out)
	if err != nil {
		if o := out.String(); o != "" {
			return fmt.Errorf("%w: %s", err, o)
		}
		return err
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// request sends an HTTP hook; a status outside 2xx fails it.
func (hr *hookRunner) request(ctx context.Context, h *api.HTTPHook, extra []envVar) error {
	host := h.Host
	if host == "" {
		if hr.pod == "" || hr.kube == nil {
			return errors.New("the hook names no host and the target has no running pod")
		}
		pod, err := hr.kube.CoreV1().Pods(hr.namespace).Get(ctx, hr.pod, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("read pod %s: %w", hr.pod, err)
		}
		if pod.Status.PodIP == "" || pod.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("pod %s has no IP (phase %s)", hr.pod, pod.Status.Phase)
		}
		host = pod.Status.PodIP
	}
	scheme := strings.ToLower(h.Scheme)
	if scheme == "" {
		scheme = "http"
	}
	path := h.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(h.Port)) + path
	req, err := http.NewRequestWithContext(ctx, strings.ToUpper(h.Method), url, strings.NewReader(h.Body))
	if err != nil {
		return err
	}
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	for _, e := range append(append([]envVar(nil), hr.env...), extra...) {
		req.Header.Set(headerName(e.name), e.value)
	}
	client := hr.http
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s %s: %s%s", req.Method, url, resp.Status, prefixed(": ", strings.TrimSpace(string(body))))
	}
	return nil
}

// headerName is the header carrying an environment variable: STASH_BACKUP_PHASE is
// X-Stash-Backup-Phase.
func headerName(env string) string {
	words := strings.Split(strings.ToLower(env), "_")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return "X-" + strings.Join(words, "-")
}
