package storetest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// RandomKind is a kind of fault a Random backend injects.
type RandomKind string

// The faults of a Random backend, each chosen with the same probability.
const (
	// RandomError fails the call before it reaches the bucket, with a transient
	// error: a 500, a refused or reset connection, a failed upload.
	RandomError RandomKind = "error"
	// RandomLost runs the call and then fails it with a transient error: the
	// operation took effect, its response was lost.
	RandomLost RandomKind = "lost"
	// RandomDelay holds the call for up to MaxDelay, then runs it.
	RandomDelay RandomKind = "delay"
	// RandomTruncated (reads only) opens the object and breaks the body after a
	// random number of bytes with io.ErrUnexpectedEOF, as an HTTP client reports a
	// connection that closed before Content-Length bytes arrived. Other calls get
	// RandomError instead.
	RandomTruncated RandomKind = "truncated"
)

var randomKinds = []RandomKind{RandomError, RandomLost, RandomDelay, RandomTruncated}

// RandomOptions configure a Random backend.
type RandomOptions struct {
	// Rate is the probability that a call gets a fault, 0 to 1.
	Rate float64
	// Seed makes the sequence of choices repeatable.
	Seed uint64
	// MaxDelay bounds a RandomDelay. Default 5ms: enough to reorder concurrent calls
	// and keep tests fast.
	MaxDelay time.Duration
}

// Random is a store.Backend that passes calls through to another Backend and makes
// a random share of them fail, each in one of the RandomKind ways. Its errors are the
// ones the Store retries. It counts what it injected. It is safe for concurrent use.
type Random struct {
	be   store.Backend
	opts RandomOptions

	mu     sync.Mutex
	rng    *rand.Rand
	rate   float64
	calls  int
	counts map[RandomKind]int
}

// NewRandom returns a Random over be.
func NewRandom(be store.Backend, opts RandomOptions) *Random {
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 5 * time.Millisecond
	}
	return &Random{be: be, opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 0x7a11)), rate: opts.Rate,
		counts: map[RandomKind]int{}}
}

// SetRate changes the fault rate for the calls that follow (0 turns faults off).
func (f *Random) SetRate(rate float64) {
	f.mu.Lock()
	f.rate = rate
	f.mu.Unlock()
}

// Counts returns how many faults of each kind were injected.
func (f *Random) Counts() map[RandomKind]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.counts)
}

// String summarises calls and faults, for test logs.
func (f *Random) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var parts []string
	total := 0
	for k, v := range f.counts {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
		total += v
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d calls, %d faults (%s)", f.calls, total, strings.Join(parts, ", "))
}

// pick returns the fault for one call ("" for none) and a random number for its
// parameters. read tells whether the call is a read, the only one that can be
// truncated.
func (f *Random) pick(read bool) (RandomKind, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	r := f.rng.Uint64()
	if f.rng.Float64() >= f.rate {
		return "", r
	}
	k := randomKinds[f.rng.IntN(len(randomKinds))]
	if k == RandomTruncated && !read {
		k = RandomError
	}
	f.counts[k]++
	return k, r
}

// errInjected is the error of an injected fault.
func errInjected(op string, k RandomKind) error {
	return fmt.Errorf("injected %s fault in %s: %w", k, op, ErrTransient)
}

// do runs call under a random fault.
func (f *Random) do(ctx context.Context, op string, call func() error) error {
	k, r := f.pick(false)
	switch k {
	case RandomError:
		return errInjected(op, k)
	case RandomLost:
		if err := call(); err != nil {
			return err
		}
		return errInjected(op, k)
	case RandomDelay:
		if err := delay(ctx, time.Duration(r%uint64(f.opts.MaxDelay))); err != nil {
			return err
		}
	}
	return call()
}

func delay(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Stat implements store.Backend.
func (f *Random) Stat(ctx context.Context, key string) (store.Object, error) {
	var o store.Object
	err := f.do(ctx, "Stat", func() (err error) { o, err = f.be.Stat(ctx, key); return err })
	return o, err
}

// NewRangeReader implements store.Backend.
func (f *Random) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	k, r := f.pick(true)
	switch k {
	case RandomError:
		return nil, errInjected("NewRangeReader", k)
	case RandomDelay:
		if err := delay(ctx, time.Duration(r%uint64(f.opts.MaxDelay))); err != nil {
			return nil, err
		}
	}
	rd, err := f.be.NewRangeReader(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	switch k {
	case RandomLost:
		return nil, closeAnd(rd, errInjected("NewRangeReader", k))
	case RandomTruncated:
		// Break somewhere in the first 64 KiB or the requested length, whichever is less.
		n := int64(64 << 10)
		if length >= 0 && length < n {
			n = length
		}
		return &brokenReader{r: rd, left: int64(r % uint64(n+1)),
			err: fmt.Errorf("injected truncated body of %s: %w", key, io.ErrUnexpectedEOF)}, nil
	}
	return rd, nil
}

// Upload implements store.Backend.
func (f *Random) Upload(ctx context.Context, key string, data []byte, createOnly bool) error {
	return f.do(ctx, "Upload", func() error { return f.be.Upload(ctx, key, data, createOnly) })
}

// Delete implements store.Backend.
func (f *Random) Delete(ctx context.Context, key string) error {
	return f.do(ctx, "Delete", func() error { return f.be.Delete(ctx, key) })
}

// ListPage implements store.Backend.
func (f *Random) ListPage(ctx context.Context, prefix string, token []byte, pageSize int) ([]store.Object, []byte, error) {
	var objs []store.Object
	var next []byte
	err := f.do(ctx, "ListPage", func() (err error) {
		objs, next, err = f.be.ListPage(ctx, prefix, token, pageSize)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return objs, next, nil
}

// Close implements store.Backend.
func (f *Random) Close() error { return f.be.Close() }
