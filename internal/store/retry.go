package store

import (
	"context"
	"math/rand/v2"
	"time"
)

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// MaxAttempts bounds how often an operation is tried in total, the first try
	// included, when it keeps failing with transient errors. Default 5: with the
	// default backoff that rides out about 1.5s of trouble (0.1+0.2+0.4+0.8s before
	// jitter), enough for a restarting endpoint or a throttling burst, and gives up
	// long before a job's deadline would. 1 disables retries.
	MaxAttempts int
	// BaseBackoff is the wait before the second try; it doubles before each further
	// try. Default 100ms: well above a loopback or in-region round trip, so a retry
	// does not hit a service that is still shedding load.
	BaseBackoff time.Duration
	// MaxBackoff caps the wait between two tries. Default 5s, so a larger
	// MaxAttempts adds tries at a steady pace instead of waiting for minutes.
	MaxBackoff time.Duration
	// TryTimeout ends a try that makes no progress for this long: a request whose
	// answer does not begin, a download that stops delivering bytes. An upload gets
	// the time to send its data at 256 KiB/s on top. The try then counts as a
	// transient failure. Default 30s: far above the first-byte latency of any object
	// store, and a service that accepts connections and never answers makes an
	// operation fail after about MaxAttempts·30s instead of hanging forever.
	TryTimeout time.Duration
	// Sleep waits for d or until ctx is done, whichever is first, and returns
	// ctx.Err() in the latter case. Default: a timer. Tests inject a fake that
	// records the waits and returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (o Options) applyDefaults() Options {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.MaxBackoff < o.BaseBackoff {
		o.MaxBackoff = o.BaseBackoff
	}
	if o.TryTimeout <= 0 {
		o.TryTimeout = 30 * time.Second
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return o
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff returns the wait after the given failed try (0 for the first): the
// exponential step min(MaxBackoff, BaseBackoff·2^try) with "equal jitter", a random
// point in its upper half, so that writers that failed together do not retry
// together, yet every wait grows.
func (o Options) backoff(try int) time.Duration {
	d := o.BaseBackoff
	for i := 0; i < try && d < o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, o.MaxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

// retry calls f until it succeeds, fails with an error that is not transient, or has
// been tried MaxAttempts times, sleeping with backoff between tries. It returns the
// last error of f, or the context's error if the context ends first. Each try runs
// under a watchdog (TryTimeout) whose context f gets and which ends with the try.
func (s *Store) retry(ctx context.Context, f func(ctx context.Context, try int) error) error {
	return s.retrySized(ctx, 0, func(ctx context.Context, try int, _ *watchdog) (bool, error) {
		return false, f(ctx, try)
	})
}

// retrySized is retry for a try that sends size bytes (the watchdog allows for them),
// whose f may use the watchdog and may keep it running after a successful try (keep
// true: a streaming read owns it from then on and must stop it).
func (s *Store) retrySized(ctx context.Context, size int64, f func(ctx context.Context, try int, w *watchdog) (keep bool, err error)) error {
	var err error
	for try := 0; ; try++ {
		if cerr := ctx.Err(); cerr != nil {
			if err != nil {
				return err // fail adds ctx.Err() to it
			}
			return cerr
		}
		w := s.newWatchdog(ctx, size)
		var keep bool
		keep, err = f(w.ctx, try, w)
		err = w.explain(err)
		if !keep || err != nil {
			w.stop()
		}
		if err == nil || try+1 >= s.opts.MaxAttempts || !transient(ctx, err) {
			return err
		}
		if serr := s.opts.Sleep(ctx, s.opts.backoff(try)); serr != nil && ctx.Err() != nil {
			return err
		}
	}
}
