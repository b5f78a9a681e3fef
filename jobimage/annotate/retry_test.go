package annotate

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// A final status write outlasts an API server that is away for a while, and gives up at
// once on what no retry fixes.
func TestRetryFinal(t *testing.T) {
	refused := errors.New("dial tcp 10.96.0.1:443: " + syscall.ECONNREFUSED.Error())
	calls := 0
	err := RetryFinal(context.Background(), time.Minute, func(context.Context) error {
		if calls++; calls < 4 {
			return refused
		}
		return nil
	})
	if err != nil || calls != 4 {
		t.Fatalf("write failing 3 times with %v: err %v after %d calls, want success on the 4th", refused, err, calls)
	}

	calls = 0
	gone := apierrors.NewNotFound(schema.GroupResource{Group: "batch", Resource: "jobs"}, "x")
	if err := RetryFinal(context.Background(), time.Minute, func(context.Context) error { calls++; return gone }); !apierrors.IsNotFound(err) || calls != 1 {
		t.Fatalf("a deleted Job: err %v after %d calls, want NotFound after 1", err, calls)
	}

	start := time.Now()
	if err := RetryFinal(context.Background(), 1200*time.Millisecond, func(context.Context) error { return refused }); err == nil {
		t.Fatal("an API server that never comes back: no error")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("gave up after %s, want within about 1.2s", d)
	}
}
