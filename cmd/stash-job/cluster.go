package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
	"github.com/kubectl-stash/kubectl-stash/internal/verifyjob"
	"github.com/kubectl-stash/kubectl-stash/internal/version"
	"github.com/kubectl-stash/kubectl-stash/jobimage"
	"github.com/kubectl-stash/kubectl-stash/jobimage/annotate"
)

func inClusterClient() (kubernetes.Interface, error) {
	c, _, err := inClusterConfig()
	return c, err
}

// inClusterConfig is the client of the pod's ServiceAccount and its configuration (the
// exec API needs both).
func inClusterConfig() (kubernetes.Interface, *rest.Config, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("in-cluster config: %w", err)
	}
	cfg.UserAgent = "stash-job/" + version.Version()
	c, err := kubernetes.NewForConfig(cfg)
	return c, cfg, err
}

// podLockHolders names this process's repository locks by its pod, and lets it remove
// the locks of pods that have ended (repo.LockHolders), when it runs in a pod whose
// ServiceAccount token is bound to it. Elsewhere locks carry host and PID only.
func podLockHolders(stderr io.Writer) {
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return
	}
	if _, err := os.Stat(jobimage.ServiceAccountTokenPath); err != nil {
		return
	}
	client, err := inClusterClient()
	if err == nil {
		var h *jobimage.PodLockHolders
		if h, err = jobimage.NewPodLockHolders(client, jobimage.ServiceAccountTokenPath); err == nil {
			repocmd.LockHolders = h
			return
		}
	}
	fmt.Fprintf(stderr, "locks name host and process only: %v\n", err)
}

// podExec runs hooks and dumps in the target's pods with the host pod's ServiceAccount.
func podExec(client kubernetes.Interface, ns string) (jobimage.PodExec, error) {
	_, cfg, err := inClusterConfig()
	if err != nil {
		return nil, err
	}
	return jobimage.APIExec{Client: client, Config: cfg, Namespace: ns}, nil
}

// runSession is the pod of a session Job: it reads the configuration the plugin put on
// its pod (STASH_CONFIG) and runs the session. It exits 0 for Succeeded and Skipped.
func runSession(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	env, client, err := inPod("session", args, stderr)
	if err != nil {
		return err
	}
	var cfg api.BackupConfig
	if err := api.Decode(api.EnvConfig, os.Getenv(api.EnvConfig), &cfg); err != nil {
		return fmt.Errorf("%s (the session's configuration, from annotation %s): %w", api.EnvConfig, api.AnnotationConfig, err)
	}
	s := &jobimage.Session{Client: client, Namespace: env.Namespace, Job: env.JobName, Config: cfg,
		RepoURL: os.Getenv(api.SecretKeyRepository), Log: stdout, Now: time.Now}
	_, err = s.Run(ctx)
	return err
}

// inPod is how every in-cluster mode starts: no arguments, the pod's identity from its
// environment, and a client with the pod's ServiceAccount.
func inPod(mode string, args []string, stderr io.Writer) (jobimage.Env, kubernetes.Interface, error) {
	fs := newFlagSet(mode, stderr)
	if err := fs.Parse(args); err != nil {
		return jobimage.Env{}, nil, err
	}
	env := jobimage.EnvFrom(os.Getenv)
	if err := env.Validate(); err != nil {
		return env, nil, err
	}
	client, err := inClusterClient()
	return env, client, err
}

// hostPassword reads the repository password a host pod has from its Secret and gives the
// process its configured priority; the error says what failed, for the host's status.
func hostPassword(nice *int, ioClass int, ioData *int) ([]byte, error) {
	pw, err := repo.ReadPassword("")
	if perr := applyPriority(nice, ioClass, ioData); perr != nil {
		err = errors.Join(err, perr)
	}
	return pw, err
}

// envPriorityApplied marks the process that runs with the configured priority already.
const envPriorityApplied = "STASH_PRIORITY_APPLIED"

// runHost is the pod of a host Job: it backs up the host's paths (STASH_HOST_SPEC) into the
// repository of the Secret its pod has in its environment.
func runHost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	env, client, err := inPod("host", args, stderr)
	if err != nil {
		return err
	}
	var spec api.HostSpec
	if err := api.Decode(api.EnvHostSpec, os.Getenv(api.EnvHostSpec), &spec); err != nil {
		return fmt.Errorf("%s (from annotation %s): %w", api.EnvHostSpec, api.AnnotationHostSpec, err)
	}
	status := annotate.NewJobAnnotator(client, env.Namespace, env.JobName)
	pw, pwErr := hostPassword(spec.Nice, spec.IONiceClass, spec.IONiceData)
	h := jobimage.HostRun{Spec: spec, RepoURL: os.Getenv(api.SecretKeyRepository), Password: pw, Status: status, Log: stdout, Now: time.Now,
		Kube: client, Namespace: env.Namespace}
	if pwErr == nil {
		h.Exec, pwErr = podExec(client, env.Namespace)
	}
	if pwErr != nil {
		return jobimage.FailHost(ctx, h, pwErr)
	}
	defer logPeakMemory(stdout)
	return jobimage.RunHost(ctx, h)
}

// logPeakMemory writes the process's peak resident memory to the host's log: what a
// memory limit for the host pods must allow.
func logPeakMemory(w io.Writer) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		fmt.Fprintf(w, "peak memory: %.1f MiB (maximum resident set size)\n", float64(ru.Maxrss)/1024) // Maxrss is in KiB on Linux
	}
}

// applyPriority gives the whole process the configured niceness and I/O priority. Both
// belong to a thread on Linux, and the Go runtime has started several already: they are
// set on this thread, locked, and the program is executed again from it, so that every
// thread of the new image inherits them. In the new image (marked by envPriorityApplied)
// it does nothing. It returns only on failure.
func applyPriority(nice *int, ioClass int, ioData *int) error {
	if (nice == nil && ioClass == 0) || os.Getenv(envPriorityApplied) != "" {
		return nil
	}
	runtime.LockOSThread()
	if err := jobimage.SetPriority(nice, ioClass, ioData); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, os.Args, append(os.Environ(), envPriorityApplied+"=1"))
	}
	runtime.UnlockOSThread()
	return fmt.Errorf("re-exec with the configured priority: %w", err)
}

// runRestoreSession is the pod of a restore session Job: it reads the restore
// configuration the plugin put on its pod (STASH_CONFIG) and runs the session. It exits 0
// only for Succeeded.
func runRestoreSession(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	env, client, err := inPod("restore-session", args, stderr)
	if err != nil {
		return err
	}
	var cfg api.RestoreConfig
	if err := api.Decode(api.EnvConfig, os.Getenv(api.EnvConfig), &cfg); err != nil {
		return fmt.Errorf("%s (the restore session's configuration, from annotation %s): %w", api.EnvConfig, api.AnnotationConfig, err)
	}
	s := &jobimage.RestoreSession{Client: client, Namespace: env.Namespace, Job: env.JobName, Config: cfg,
		RepoURL: os.Getenv(api.SecretKeyRepository), Log: stdout, Now: time.Now}
	_, err = s.Run(ctx)
	return err
}

// runRestoreHost is the pod of a restore host Job: it restores what its rule selects
// (STASH_RESTORE_HOST_SPEC) from the repository of the Secret in its environment.
func runRestoreHost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	env, client, err := inPod("restore-host", args, stderr)
	if err != nil {
		return err
	}
	var spec api.RestoreHostSpec
	if err := api.Decode(api.EnvRestoreHostSpec, os.Getenv(api.EnvRestoreHostSpec), &spec); err != nil {
		return fmt.Errorf("%s (from annotation %s): %w", api.EnvRestoreHostSpec, api.AnnotationRestoreHostSpec, err)
	}
	status := annotate.NewJobAnnotator(client, env.Namespace, env.JobName)
	pw, pwErr := hostPassword(spec.Nice, spec.IONiceClass, spec.IONiceData)
	h := jobimage.RestoreHostRun{Spec: spec, RepoURL: os.Getenv(api.SecretKeyRepository), Password: pw, Status: status, Log: stdout, Now: time.Now,
		Kube: client, Namespace: env.Namespace}
	if pwErr == nil {
		h.Exec, pwErr = podExec(client, env.Namespace)
	}
	if pwErr != nil {
		return jobimage.FailRestoreHost(ctx, h, pwErr)
	}
	defer logPeakMemory(stdout)
	return jobimage.RunRestoreHost(ctx, h)
}

// verificationFromEnv reads what every stage of a verification pod needs.
func verificationFromEnv() (*jobimage.Verification, error) {
	env := jobimage.EnvFrom(os.Getenv)
	if err := env.Validate(); err != nil {
		return nil, err
	}
	var cfg api.VerifyConfig
	if err := api.Decode(api.EnvConfig, os.Getenv(api.EnvConfig), &cfg); err != nil {
		return nil, fmt.Errorf("%s (the verification's configuration, from annotation %s): %w", api.EnvConfig, api.AnnotationConfig, err)
	}
	client, err := inClusterClient()
	if err != nil {
		return nil, err
	}
	return &jobimage.Verification{Client: client, Namespace: env.Namespace, Job: env.JobName, Config: cfg,
		RepoURL: os.Getenv(api.SecretKeyRepository), Scratch: verifyjob.ScratchPath, Now: time.Now}, nil
}

// runVerifySession is the verify container of a verification session: restore, compare,
// record. With --stage restore, a command container finishes the session.
func runVerifySession(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify-session", stderr)
	stage := fs.String("stage", "all", "all, or restore (a command container follows)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *stage != "all" && *stage != "restore" {
		return usagef("--stage %q: want all or restore", *stage)
	}
	v, err := verificationFromEnv()
	if err != nil {
		return err
	}
	v.Log = stdout
	pw, err := repo.ReadPassword("")
	if err != nil {
		return err
	}
	v.Password = pw
	_, err = v.Run(ctx, *stage == "restore")
	return err
}

// runVerifyCommand runs in the user's image (a copy of this static binary): the user's
// command on the restored tree, then the session's end.
func runVerifyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify-command", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := verificationFromEnv()
	if err != nil {
		return err
	}
	v.Log = stdout
	command := os.Getenv(verifyjob.EnvCommand)
	if command == "" {
		return fmt.Errorf("no command: %s is empty", verifyjob.EnvCommand)
	}
	_, err = v.Command(ctx, command, stdout)
	return err
}

// runVerifyLaunch is the pod of a scheduled verification's CronJob: it starts a session
// named as the seed names them and ends.
func runVerifyLaunch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify-launch", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := verificationFromEnv()
	if err != nil {
		return err
	}
	name, err := jobimage.LaunchVerification(ctx, v.Client, v.Namespace, v.Job, v.Config, v.RepoURL, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "verification session %s created\n", name)
	return nil
}

// runInstallSelf copies this binary into a directory shared with a user's container.
func runInstallSelf(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("install-self", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("install-self needs one DIRECTORY")
	}
	return jobimage.InstallSelf(fs.Arg(0))
}
