package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// uploadRate is the slowest upload speed a try is given time for, on top of
// Options.TryTimeout: 256 KiB/s gives a 16 MiB pack another 64s.
const uploadRate = 256 << 10

// errStalled is the cause of a try's context when its watchdog ended it.
var errStalled = errors.New("stalled")

// stallError is the error of a try that made no progress within its timeout. It is
// transient (it wraps context.DeadlineExceeded, while the caller's context is not
// done), and it does not wrap the driver's error, which only says the try's context
// was cancelled.
type stallError struct {
	d   time.Duration
	err error
}

func (e *stallError) Error() string {
	return fmt.Sprintf("no answer within %v (%v)", e.d.Round(time.Millisecond), e.err)
}

func (e *stallError) Unwrap() error { return context.DeadlineExceeded }

// watchdog ends a try that makes no progress for d: a service that accepts the
// connection and never answers, or stops sending a body, would otherwise hold the
// caller forever (the SDKs set no such timeout).
type watchdog struct {
	d      time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
}

func (s *Store) newWatchdog(ctx context.Context, size int64) *watchdog {
	d := s.opts.TryTimeout + time.Duration(size)*time.Second/uploadRate
	wctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{d: d, ctx: wctx, cancel: cancel}
	w.timer = time.AfterFunc(d, func() { cancel(errStalled) })
	return w
}

// wait restarts the timeout: the caller waits for the service again.
func (w *watchdog) wait() { w.timer.Reset(w.d) }

// pause stops the timeout while the caller does something else than wait for the
// service (a restore writing what it read): only the service's silence counts.
func (w *watchdog) pause() { w.timer.Stop() }

// explain returns err, or a stallError when the watchdog ended the try.
func (w *watchdog) explain(err error) error {
	if err != nil && errors.Is(context.Cause(w.ctx), errStalled) {
		return &stallError{d: w.d, err: err}
	}
	return err
}

// stop ends the watchdog and the try's context.
func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(nil)
}

// progressReader runs a watchdog's timeout only while a Read waits for bytes.
type progressReader struct {
	io.ReadCloser
	w *watchdog
}

func (r progressReader) Read(p []byte) (int, error) {
	r.w.wait()
	n, err := r.ReadCloser.Read(p)
	r.w.pause()
	return n, r.w.explain(err)
}
