// Package jobimage is the job image's program: it reads what the plugin put in the pod's
// environment, runs the requested mode through the engine, and reports status onto the
// pod's own Job. It never imports cobra, cli-runtime or charm, so the image stays small.
package jobimage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/version"
)

// Env is what a job pod learns about itself from its environment (set by the plugin
// through the downward API).
type Env struct {
	Namespace string
	JobName   string
	PodName   string
	NodeName  string
}

// EnvFrom reads Env with getenv (os.Getenv in main; a map in tests).
func EnvFrom(getenv func(string) string) Env {
	return Env{
		Namespace: getenv(api.EnvNamespace),
		JobName:   getenv(api.EnvJobName),
		PodName:   getenv(api.EnvPodName),
		NodeName:  getenv(api.EnvNodeName),
	}
}

// Validate says which variable is missing, and how the plugin would have set it.
func (e Env) Validate() error {
	var missing []error
	if e.Namespace == "" {
		missing = append(missing, fmt.Errorf("%s is not set (downward API metadata.namespace)", api.EnvNamespace))
	}
	if e.JobName == "" {
		missing = append(missing, fmt.Errorf("%s is not set (downward API metadata.labels['%s']); stash-job must run in a pod of a Job", api.EnvJobName, api.JobNameLabel))
	}
	return errors.Join(missing...)
}

// Annotator writes JSON values as annotations on the pod's own Job.
type Annotator interface {
	AnnotateJSON(ctx context.Context, key string, v any) error
}

// Probe proves the chain plugin → Job → pod → API server works: it writes api.Probe onto
// the pod's own Job.
func Probe(ctx context.Context, env Env, a Annotator, now func() time.Time) error {
	if err := env.Validate(); err != nil {
		return err
	}
	info := version.Get()
	p := api.Probe{
		SchemaVersion: api.SchemaVersion,
		Version:       info.Version,
		GitCommit:     info.GitCommit,
		Pod:           env.PodName,
		Node:          env.NodeName,
		Time:          now().UTC().Format(time.RFC3339),
	}
	return a.AnnotateJSON(ctx, api.AnnotationProbe, p)
}
