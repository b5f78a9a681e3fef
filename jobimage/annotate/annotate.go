// Package annotate writes a job's status onto its own Job as annotations, through a JSON
// merge patch of metadata.annotations only, with a named field manager. It is the job
// image's only writer to the API server.
package annotate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// FieldManager names this writer in managedFields, so `kubectl get -o yaml --show-managed-fields`
// tells who set the annotations.
const FieldManager = "stash-job"

// JobAnnotator patches annotations onto one Job.
type JobAnnotator struct {
	client    kubernetes.Interface
	namespace string
	job       string
}

// NewJobAnnotator returns an annotator for Job namespace/job.
func NewJobAnnotator(client kubernetes.Interface, namespace, job string) *JobAnnotator {
	return &JobAnnotator{client: client, namespace: namespace, job: job}
}

// Annotate merge-patches the given annotations onto the Job. A value of "" removes the key.
func (a *JobAnnotator) Annotate(ctx context.Context, annotations map[string]string) error {
	values := make(map[string]any, len(annotations))
	for k, v := range annotations {
		if v == "" {
			values[k] = nil // JSON merge patch: null deletes
			continue
		}
		values[k] = v
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": values}})
	if err != nil {
		return err
	}
	_, err = a.client.BatchV1().Jobs(a.namespace).Patch(ctx, a.job, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("annotate job %s/%s: %w", a.namespace, a.job, err)
	}
	return nil
}

// AnnotateJSON marshals v and writes it under key.
func (a *JobAnnotator) AnnotateJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return a.Annotate(ctx, map[string]string{key: string(b)})
}

// FinalWriteWithin is how long a final status write keeps trying while the API server
// is away: a host that stored its snapshot must not end Failed because the API server
// restarted at that moment, nor the session stay Running.
const FinalWriteWithin = 5 * time.Minute

// RetryFinal runs write until it succeeds, retrying while the API server is away
// (restarting, unreachable) for up to within, with a growing pause. Errors a retry cannot
// fix (the Job is gone, the write is forbidden or invalid) end it at once.
func RetryFinal(ctx context.Context, within time.Duration, write func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	pause := 500 * time.Millisecond
	for {
		err := write(ctx)
		if err == nil || apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsInvalid(err) ||
			apierrors.IsBadRequest(err) || apierrors.IsUnauthorized(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Second)
	}
}
