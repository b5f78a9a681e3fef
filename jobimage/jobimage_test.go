package jobimage

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

type recordingAnnotator struct {
	key string
	val any
}

func (r *recordingAnnotator) AnnotateJSON(_ context.Context, key string, v any) error {
	r.key, r.val = key, v
	return nil
}

func TestProbeWritesItsAnnotation(t *testing.T) {
	env := EnvFrom(envMap{
		api.EnvNamespace: "ns", api.EnvJobName: "j", api.EnvPodName: "j-abc", api.EnvNodeName: "node1",
	}.get)
	rec := &recordingAnnotator{}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := Probe(context.Background(), env, rec, func() time.Time { return at }); err != nil {
		t.Fatal(err)
	}
	p, ok := rec.val.(api.Probe)
	if rec.key != api.AnnotationProbe || !ok {
		t.Fatalf("wrote %q = %#v, want an api.Probe under %q", rec.key, rec.val, api.AnnotationProbe)
	}
	if p.Pod != "j-abc" || p.Node != "node1" || p.Time != "2026-01-02T03:04:05Z" || p.SchemaVersion != api.SchemaVersion {
		t.Errorf("probe = %+v", p)
	}
}

func TestProbeNamesMissingEnvironment(t *testing.T) {
	err := Probe(context.Background(), EnvFrom(envMap{}.get), &recordingAnnotator{}, time.Now)
	if err == nil {
		t.Fatal("want an error without namespace and job name")
	}
	for _, want := range []string{api.EnvNamespace, api.EnvJobName} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

type envMap map[string]string

func (m envMap) get(k string) string { return m[k] }
