package store_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"

	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/store/storetest"
)

// within runs f and fails the test if it does not return within d.
func within(t *testing.T, d time.Duration, f func()) time.Duration {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); f() }()
	select {
	case <-done:
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("still waiting after %v: a silent service hangs the store", d)
		return 0
	}
}

// TestSilentServiceFails: against an S3 endpoint that accepts connections and never
// answers, every operation fails after MaxAttempts tries of TryTimeout each, with an
// error naming the store and saying that nothing answered. Before, it waited forever:
// the SDK sets no timeout of its own.
func TestSilentServiceFails(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	url := "s3://bucket/prefix?endpoint=http://" + storetest.SilentServer(t) + "&use_path_style=true&region=us-east-1"
	const tryTimeout = 200 * time.Millisecond
	s, err := store.Open(t.Context(), url, store.Options{TryTimeout: tryTimeout, MaxAttempts: 3, BaseBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ops := []struct {
		name string
		f    func(ctx context.Context) error
	}{
		{"get", func(ctx context.Context) error { _, err := s.Get(ctx, "config"); return err }},
		{"create", func(ctx context.Context) error { return s.PutIfAbsent(ctx, "data/x", make([]byte, 1000)) }},
		{"list", func(ctx context.Context) error { return s.List(ctx, "", func(store.Object) error { return nil }) }},
		{"open a stream", func(ctx context.Context) error { _, err := s.NewRangeReader(ctx, "data/x", 0, -1); return err }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			var err error
			d := within(t, 10*time.Second, func() { err = op.f(t.Context()) })
			if err == nil {
				t.Fatal("no error from a service that never answers")
			}
			if !strings.Contains(err.Error(), "s3://bucket/prefix") || !strings.Contains(err.Error(), "no answer within 2") {
				t.Errorf("error %q does not name the store and the cause", err)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
			}
			if d < 3*tryTimeout {
				t.Errorf("failed after %v, before its 3 tries of %v", d, tryTimeout)
			}
			t.Logf("failed after %v: %v", d.Round(time.Millisecond), err)
		})
	}
}

// stallingBackend serves reads whose body stops after stallAt bytes and then waits
// for the context, the first stalls times.
type stallingBackend struct {
	store.Backend
	mu      sync.Mutex
	stalls  int
	stallAt int64
	opens   int
}

func (b *stallingBackend) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	r, err := b.Backend.NewRangeReader(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opens++
	if b.stalls == 0 {
		return r, nil
	}
	b.stalls--
	return &stallingReader{r: r, ctx: ctx, left: b.stallAt}, nil
}

type stallingReader struct {
	r    io.ReadCloser
	ctx  context.Context
	left int64
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if s.left <= 0 {
		<-s.ctx.Done()
		return 0, s.ctx.Err()
	}
	p = p[:min(int64(len(p)), s.left)]
	n, err := s.r.Read(p)
	s.left -= int64(n)
	return n, err
}

func (s *stallingReader) Close() error { return s.r.Close() }

// TestStalledDownloadResumes: a download that stops delivering bytes is ended by the
// watchdog and resumed where it stopped; time the caller spends between reads does
// not count as a stall.
func TestStalledDownloadResumes(t *testing.T) {
	be := &stallingBackend{Backend: store.BucketBackend(memblob.OpenBucket(nil)), stalls: 2, stallAt: 300_000}
	s := store.NewFromBackend(be, "mem://stalling", store.Options{TryTimeout: 100 * time.Millisecond, BaseBackoff: time.Millisecond})
	defer s.Close()
	data := storetest.Data(3, 1<<20)
	storetest.MustPut(t, s, "pack", data)
	var got []byte
	var err error
	within(t, 10*time.Second, func() {
		var r io.ReadCloser
		if r, err = s.NewRangeReader(t.Context(), "pack", 0, -1); err != nil {
			return
		}
		defer r.Close()
		time.Sleep(300 * time.Millisecond) // a slow consumer is not a stalled service
		got, err = io.ReadAll(r)
	})
	if err != nil || string(got) != string(data) {
		t.Fatalf("read %d bytes, %v; want the %d bytes", len(got), err, len(data))
	}
	if be.opens != 3 {
		t.Errorf("%d opens, want 3 (two stalls resumed)", be.opens)
	}
	be.stalls = 1
	if got, err := s.Get(t.Context(), "pack"); err != nil || string(got) != string(data) {
		t.Fatalf("Get through a stall: %d bytes, %v", len(got), err)
	}
}
