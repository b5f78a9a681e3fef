package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"
	"google.golang.org/api/googleapi"

	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/store/storetest"
)

// sleeper records the waits a Store asks for and returns at once.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
	hook  func() // called on every wait, e.g. to cancel a context
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return ctx.Err()
}

func (s *sleeper) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waits)
}

// faultyStore returns a Store on memblob behind a Faulty, with sleeps recorded.
func faultyStore(t *testing.T, opts store.Options) (*store.Store, *storetest.Faulty, *sleeper) {
	t.Helper()
	f := storetest.NewFaulty(store.BucketBackend(memblob.OpenBucket(nil)))
	sl := &sleeper{}
	opts.Sleep = sl.sleep
	s := store.NewFromBackend(f, "mem://faulty", opts)
	t.Cleanup(func() { _ = s.Close() })
	return s, f, sl
}

// httpError stands for an SDK's HTTP response error (AWS's exposes the status this way).
type httpError int

func (e httpError) Error() string       { return fmt.Sprintf("http status %d", int(e)) }
func (e httpError) HTTPStatusCode() int { return int(e) }

func connReset() error {
	return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
}

// TestRetryClassification: which errors are retried, how often, and what the caller
// gets back.
func TestRetryClassification(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		times     int   // failing calls (-1: all)
		wantCalls int   // Upload calls made
		wantErr   error // nil: Put succeeds
	}{
		{"transient, then success", storetest.ErrTransient, 2, 3, nil},
		{"transient forever", storetest.ErrTransient, -1, 5, gcerrors.ErrInternal},
		{"resource exhausted", fmt.Errorf("throttled: %w", gcerrors.ErrResourceExhausted), 4, 5, nil},
		{"sdk deadline", fmt.Errorf("per-try timeout: %w", context.DeadlineExceeded), 1, 2, nil},
		{"connection reset", connReset(), 1, 2, nil},
		{"connection refused", os.NewSyscallError("connect", syscall.ECONNREFUSED), 1, 2, nil},
		{"truncated response", io.ErrUnexpectedEOF, 1, 2, nil},
		{"http 503", httpError(503), 1, 2, nil},
		{"http 429", httpError(429), 1, 2, nil},
		{"http 403", httpError(403), 1, 1, store.ErrPermission},
		{"azure 503", &azcore.ResponseError{StatusCode: 503, ErrorCode: "ServerBusy"}, 1, 2, nil},
		{"azure authorization failure", &azcore.ResponseError{StatusCode: 403, ErrorCode: "AuthorizationFailure"}, 1, 1, store.ErrPermission},
		{"gcs 500", &googleapi.Error{Code: 500}, 1, 2, nil},
		{"gcs 403 reported as NotFound", fmt.Errorf("%w: %w", gcerrors.ErrNotFound, &googleapi.Error{Code: 403}), 1, 1, store.ErrPermission},
		{"permission denied", fmt.Errorf("no: %w", gcerrors.ErrPermissionDenied), 1, 1, store.ErrPermission},
		{"not found", fmt.Errorf("gone: %w", gcerrors.ErrNotFound), 1, 1, store.ErrNotFound},
		{"invalid argument", fmt.Errorf("bad: %w", gcerrors.ErrInvalidArgument), 1, 1, gcerrors.ErrInvalidArgument},
		{"unknown host", &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}, 1, 1, &net.DNSError{}},
		{"unclassified", errors.New("something else"), 1, 1, errors.New("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f, sl := faultyStore(t, store.Options{})
			f.Add(storetest.OpUpload, storetest.Fault{Err: tc.err, Times: tc.times})
			err := s.Put(t.Context(), "k", []byte("v"))
			if got := f.Calls(storetest.OpUpload); got != tc.wantCalls {
				t.Errorf("Upload called %d times, want %d", got, tc.wantCalls)
			}
			if sl.count() != tc.wantCalls-1 {
				t.Errorf("slept %d times, want %d", sl.count(), tc.wantCalls-1)
			}
			switch want := tc.wantErr.(type) {
			case nil:
				if err != nil {
					t.Fatalf("Put = %v, want success", err)
				}
				if got, gerr := s.Get(t.Context(), "k"); gerr != nil || string(got) != "v" {
					t.Fatalf("Get after retried Put = %q, %v", got, gerr)
				}
			case *net.DNSError:
				var de *net.DNSError
				if !errors.As(err, &de) {
					t.Fatalf("Put = %v, want the DNS error", err)
				}
			default:
				if err == nil {
					t.Fatalf("Put succeeded, want an error")
				}
				if want.Error() != "" && !errors.Is(err, want) {
					t.Fatalf("Put = %v, want an error wrapping %v", err, want)
				}
				if !strings.HasPrefix(err.Error(), `mem://faulty: put "k": `) {
					t.Fatalf("Put error %q does not name store, operation and key", err)
				}
			}
		})
	}
}

// TestBackoff: waits grow exponentially with jitter in the upper half of each step,
// are capped by MaxBackoff, and the number of tries is bounded by MaxAttempts.
func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts store.Options
		want []time.Duration // upper bound of each wait; the lower bound is half
	}{
		{"defaults", store.Options{}, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}},
		{"capped", store.Options{MaxAttempts: 6, BaseBackoff: time.Second, MaxBackoff: 3 * time.Second},
			[]time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second}},
		{"no retries", store.Options{MaxAttempts: 1}, nil},
		{"max below base", store.Options{MaxAttempts: 3, BaseBackoff: time.Second, MaxBackoff: time.Millisecond}, []time.Duration{time.Second, time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f, sl := faultyStore(t, tc.opts)
			f.Add(storetest.OpStat, storetest.Fault{Err: storetest.ErrTransient, Times: -1})
			if _, err := s.Stat(t.Context(), "k"); !errors.Is(err, gcerrors.ErrInternal) {
				t.Fatalf("Stat = %v, want the transient error after the last try", err)
			}
			if got := f.Calls(storetest.OpStat); got != len(tc.want)+1 {
				t.Errorf("%d tries, want %d", got, len(tc.want)+1)
			}
			if len(sl.waits) != len(tc.want) {
				t.Fatalf("waits %v, want %d of them", sl.waits, len(tc.want))
			}
			for i, w := range sl.waits {
				if w < tc.want[i]/2 || w > tc.want[i] {
					t.Errorf("wait %d = %v, want within [%v, %v]", i, w, tc.want[i]/2, tc.want[i])
				}
			}
		})
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	s, f, sl := faultyStore(t, store.Options{MaxAttempts: 10})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sl.hook = cancel
	f.Add(storetest.OpUpload, storetest.Fault{Err: storetest.ErrTransient, Times: -1})
	err := s.Put(ctx, "k", []byte("v"))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, gcerrors.ErrInternal) {
		t.Fatalf("Put = %v, want context.Canceled along with the last failure", err)
	}
	if got := f.Calls(storetest.OpUpload); got != 1 {
		t.Fatalf("%d tries after the context was cancelled in the first wait, want 1", got)
	}
}

// TestPutIfAbsentLostResponse: a create-only write that landed but whose response was
// lost is retried; the retry finds the key taken and must tell "taken by me" from
// "taken by another writer" by content.
func TestPutIfAbsentLostResponse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		existing  string // stored before the call; "" for none
		fault     storetest.Fault
		wantErr   error
		wantReads int // reads to compare content
		want      string
	}{
		{"landed, response lost", "", storetest.Fault{Err: storetest.ErrTransient, After: true}, nil, 1, "mine"},
		{"landed, connection reset", "", storetest.Fault{Err: connReset(), After: true}, nil, 1, "mine"},
		{"another writer won meanwhile", "theirs", storetest.Fault{Err: storetest.ErrTransient}, store.ErrExists, 1, "theirs"},
		{"taken at the first try: no read", "theirs", storetest.Fault{Err: storetest.ErrTransient, Times: 0, Key: "other"}, store.ErrExists, 0, "theirs"},
		{"same content by another writer", "mine", storetest.Fault{Err: storetest.ErrTransient}, nil, 1, "mine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f, _ := faultyStore(t, store.Options{})
			if tc.existing != "" {
				storetest.MustPut(t, s, "lock", []byte(tc.existing))
			}
			f.Add(storetest.OpUpload, tc.fault)
			err := s.PutIfAbsent(t.Context(), "lock", []byte("mine"))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("PutIfAbsent = %v, want %v", err, tc.wantErr)
			}
			if got := f.Calls(storetest.OpRead); got != tc.wantReads {
				t.Errorf("%d reads, want %d", got, tc.wantReads)
			}
			if got := string(storetest.MustGet(t, s, "lock")); got != tc.want {
				t.Errorf("stored %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDeleteLostResponse(t *testing.T) {
	s, f, _ := faultyStore(t, store.Options{})
	storetest.MustPut(t, s, "k", []byte("v"))
	f.Add(storetest.OpDelete, storetest.Fault{Err: storetest.ErrTransient, After: true})
	if err := s.Delete(t.Context(), "k"); err != nil {
		t.Fatalf("Delete whose first response was lost = %v, want success", err)
	}
	if got := f.Calls(storetest.OpDelete); got != 2 {
		t.Errorf("%d Delete calls, want 2", got)
	}
	if err := s.Delete(t.Context(), "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
}

// TestReadRetries: a download that breaks mid-stream is read again from the start.
// (Streaming readers resume instead: TestStreamingReadResumes.)
func TestReadRetries(t *testing.T) {
	s, f, _ := faultyStore(t, store.Options{})
	data := storetest.Data(7, 1<<20)
	storetest.MustPut(t, s, "pack", data)

	f.Add(storetest.OpRead, storetest.Fault{Err: io.ErrUnexpectedEOF, ReadBytes: 4096})
	got, err := s.Get(t.Context(), "pack")
	if err != nil || len(got) != len(data) || string(got) != string(data) {
		t.Fatalf("Get after a broken download = %d bytes, %v; want the %d bytes", len(got), err, len(data))
	}
	if n := f.Calls(storetest.OpRead); n != 2 {
		t.Errorf("%d downloads, want 2", n)
	}

	f.Add(storetest.OpRead, storetest.Fault{Err: io.ErrUnexpectedEOF, Times: 2})
	if got, err := s.GetRange(t.Context(), "pack", 10, 5); err != nil || string(got) != string(data[10:15]) {
		t.Fatalf("GetRange after two failed opens = %q, %v", got, err)
	}

}

// TestListRetriesPage: a failed page is fetched again, without repeating the pages
// before it.
func TestListRetriesPage(t *testing.T) {
	s, f, _ := faultyStore(t, store.Options{})
	for i := range storetest.ListCount {
		storetest.MustPut(t, s, fmt.Sprintf("d/%05d", i), nil)
	}
	f.Add(storetest.OpList, storetest.Fault{Err: storetest.ErrTransient, Skip: 1})
	if got := storetest.Keys(t, s, "d/"); len(got) != storetest.ListCount {
		t.Fatalf("List = %d keys, want %d", len(got), storetest.ListCount)
	}
	if n := f.Calls(storetest.OpList); n != 3 {
		t.Errorf("%d page requests, want 3 (page 1, page 2 failing, page 2 again)", n)
	}
	f.Add(storetest.OpList, storetest.Fault{Err: fmt.Errorf("no: %w", gcerrors.ErrPermissionDenied)})
	if err := s.List(t.Context(), "d/", func(store.Object) error { return nil }); !errors.Is(err, store.ErrPermission) ||
		!strings.HasPrefix(err.Error(), `mem://faulty: list "d/": access denied`) {
		t.Fatalf("List = %v, want ErrPermission naming store, operation and prefix", err)
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		wantErr error
	}{
		{"ok", nil, nil},
		{"no bucket", fmt.Errorf("404: %w", gcerrors.ErrNotFound), store.ErrNoBucket},
		{"denied", fmt.Errorf("403: %w", gcerrors.ErrPermissionDenied), store.ErrPermission},
		{"bad signature", httpError(403), store.ErrPermission},
		{"flaky", storetest.ErrTransient, nil}, // retried once, then fine
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f, _ := faultyStore(t, store.Options{})
			if tc.err != nil {
				f.Add(storetest.OpList, storetest.Fault{Err: tc.err})
			}
			err := s.Check(t.Context())
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Check = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.HasPrefix(err.Error(), "mem://faulty: check: ") {
				t.Fatalf("Check = %v, want %v naming the store", err, tc.wantErr)
			}
		})
	}
}

// TestFaultyKeyAndTimes: faults hit only their key, as often as told, in order.
func TestFaultyKeyAndTimes(t *testing.T) {
	s, f, _ := faultyStore(t, store.Options{MaxAttempts: 1})
	f.Add(storetest.OpUpload, storetest.Fault{Key: "b", Err: storetest.ErrTransient, Times: 2})
	ctx := t.Context()
	results := []error{
		s.Put(ctx, "a", nil), s.Put(ctx, "b", nil), s.Put(ctx, "b", nil), s.Put(ctx, "b", nil),
	}
	for i, want := range []bool{true, false, false, true} {
		if (results[i] == nil) != want {
			t.Errorf("call %d: %v, want success %v", i, results[i], want)
		}
	}
}
