package annotate

import (
	"context"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestAnnotateMergesAndDeletes(t *testing.T) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns",
		Annotations: map[string]string{"keep": "1", "drop": "2"}}}
	client := fake.NewClientset(job)
	a := NewJobAnnotator(client, "ns", "j")
	if err := a.Annotate(context.Background(), map[string]string{"new": "3", "drop": ""}); err != nil {
		t.Fatal(err)
	}
	got, err := client.BatchV1().Jobs("ns").Get(context.Background(), "j", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"keep": "1", "new": "3"}
	if len(got.Annotations) != len(want) {
		t.Fatalf("annotations = %v, want %v", got.Annotations, want)
	}
	for k, v := range want {
		if got.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
		}
	}
}

func TestAnnotateMissingJobNamesIt(t *testing.T) {
	a := NewJobAnnotator(fake.NewClientset(), "ns", "gone")
	err := a.Annotate(context.Background(), map[string]string{"k": "v"})
	if err == nil || !strings.Contains(err.Error(), "ns/gone") {
		t.Fatalf("error = %v, want one naming ns/gone", err)
	}
}
