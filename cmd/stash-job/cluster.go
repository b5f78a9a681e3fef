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
	"github.com/kubectl-stash/kubectl-stash/internal/version"
	"github.com/kubectl-stash/kubectl-stash/jobimage"
	"github.com/kubectl-stash/kubectl-stash/jobimage/annotate"
)

func inClusterClient() (kubernetes.Interface, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster config: %w", err)
	}
	cfg.UserAgent = "stash-job/" + version.Version()
	return kubernetes.NewForConfig(cfg)
}

// runSession is the pod of a session Job: it reads the configuration the plugin put on
// its pod (STASH_CONFIG) and runs the session. It exits 0 for Succeeded and Skipped.
func runSession(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("session", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	env := jobimage.EnvFrom(os.Getenv)
	if err := env.Validate(); err != nil {
		return err
	}
	var cfg api.BackupConfig
	if err := api.Decode(api.EnvConfig, os.Getenv(api.EnvConfig), &cfg); err != nil {
		return fmt.Errorf("%s (the session's configuration, from annotation %s): %w", api.EnvConfig, api.AnnotationConfig, err)
	}
	client, err := inClusterClient()
	if err != nil {
		return err
	}
	s := &jobimage.Session{Client: client, Namespace: env.Namespace, Job: env.JobName, Config: cfg,
		RepoURL: os.Getenv(api.SecretKeyRepository), Log: stdout, Now: time.Now}
	_, err = s.Run(ctx)
	return err
}

// envPriorityApplied marks the process that runs with the configured priority already.
const envPriorityApplied = "STASH_PRIORITY_APPLIED"

// runHost is the pod of a host Job: it backs up the host's paths (STASH_HOST_SPEC) into the
// repository of the Secret its pod has in its environment.
func runHost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("host", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	env := jobimage.EnvFrom(os.Getenv)
	if err := env.Validate(); err != nil {
		return err
	}
	var spec api.HostSpec
	if err := api.Decode(api.EnvHostSpec, os.Getenv(api.EnvHostSpec), &spec); err != nil {
		return fmt.Errorf("%s (from annotation %s): %w", api.EnvHostSpec, api.AnnotationHostSpec, err)
	}
	client, err := inClusterClient()
	if err != nil {
		return err
	}
	status := annotate.NewJobAnnotator(client, env.Namespace, env.JobName)
	pw, pwErr := repo.ReadPassword("")
	if err := applyPriority(spec.Nice, spec.IONiceClass, spec.IONiceData); err != nil {
		pwErr = errors.Join(pwErr, err)
	}
	h := jobimage.HostRun{Spec: spec, RepoURL: os.Getenv(api.SecretKeyRepository), Password: pw, Status: status, Log: stdout, Now: time.Now}
	if pwErr != nil {
		return jobimage.FailHost(ctx, h, pwErr)
	}
	return jobimage.RunHost(ctx, h)
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
	fs := newFlagSet("restore-session", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	env := jobimage.EnvFrom(os.Getenv)
	if err := env.Validate(); err != nil {
		return err
	}
	var cfg api.RestoreConfig
	if err := api.Decode(api.EnvConfig, os.Getenv(api.EnvConfig), &cfg); err != nil {
		return fmt.Errorf("%s (the restore session's configuration, from annotation %s): %w", api.EnvConfig, api.AnnotationConfig, err)
	}
	client, err := inClusterClient()
	if err != nil {
		return err
	}
	s := &jobimage.RestoreSession{Client: client, Namespace: env.Namespace, Job: env.JobName, Config: cfg,
		RepoURL: os.Getenv(api.SecretKeyRepository), Log: stdout, Now: time.Now}
	_, err = s.Run(ctx)
	return err
}

// runRestoreHost is the pod of a restore host Job: it restores what its rule selects
// (STASH_RESTORE_HOST_SPEC) from the repository of the Secret in its environment.
func runRestoreHost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore-host", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	env := jobimage.EnvFrom(os.Getenv)
	if err := env.Validate(); err != nil {
		return err
	}
	var spec api.RestoreHostSpec
	if err := api.Decode(api.EnvRestoreHostSpec, os.Getenv(api.EnvRestoreHostSpec), &spec); err != nil {
		return fmt.Errorf("%s (from annotation %s): %w", api.EnvRestoreHostSpec, api.AnnotationRestoreHostSpec, err)
	}
	client, err := inClusterClient()
	if err != nil {
		return err
	}
	status := annotate.NewJobAnnotator(client, env.Namespace, env.JobName)
	pw, pwErr := repo.ReadPassword("")
	if err := applyPriority(spec.Nice, spec.IONiceClass, spec.IONiceData); err != nil {
		pwErr = errors.Join(pwErr, err)
	}
	h := jobimage.RestoreHostRun{Spec: spec, RepoURL: os.Getenv(api.SecretKeyRepository), Password: pw, Status: status, Log: stdout, Now: time.Now}
	if pwErr != nil {
		return jobimage.FailRestoreHost(ctx, h, pwErr)
	}
	return jobimage.RunRestoreHost(ctx, h)
}
