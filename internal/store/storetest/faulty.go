package storetest

import (
	"context"
	"fmt"
	"io"
	"sync"

	"gocloud.dev/gcerrors"

	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// Op names a Backend method that a Fault can be attached to.
type Op string

// The operations of store.Backend.
const (
	OpStat   Op = "Stat"
	OpRead   Op = "NewRangeReader"
	OpUpload Op = "Upload"
	OpDelete Op = "Delete"
	OpList   Op = "ListPage"
)

// ErrTransient is a fault the Store retries: it carries the gcerrors Internal code,
// as a driver's error for a failing service does.
var ErrTransient = fmt.Errorf("injected fault: %w", gcerrors.ErrInternal)

// Fault makes calls of one operation fail.
type Fault struct {
	// Err is the error the call returns.
	Err error
	// Times is how many matching calls fail before the fault is used up; 0 means
	// once, a negative number means every call.
	Times int
	// Skip is how many matching calls pass before the fault starts failing them.
	Skip int
	// Key limits the fault to calls for this key (for ListPage: this prefix); empty
	// matches every call.
	Key string
	// After runs the real call first and returns Err only then: the operation took
	// effect but its response was lost.
	After bool
	// ReadBytes, for NewRangeReader only, opens the object for real and returns a
	// reader that delivers this many bytes and then fails with Err: a connection
	// that breaks mid-download.
	ReadBytes int64
}

// Faulty is a store.Backend that passes calls through to another Backend and makes
// some fail as told, in the spirit of kopia's blobtesting.FaultyStorage. It counts
// the calls of each operation. It is safe for concurrent use.
type Faulty struct {
	be store.Backend

	mu     sync.Mutex
	faults map[Op][]*Fault
	calls  map[Op]int
}

// NewFaulty returns a Faulty over be, with no faults yet.
func NewFaulty(be store.Backend) *Faulty {
	return &Faulty{be: be, faults: map[Op][]*Fault{}, calls: map[Op]int{}}
}

// Add makes calls of op fail as f says. Faults of one op are used in the order added.
func (f *Faulty) Add(op Op, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fault.Times == 0 {
		fault.Times = 1
	}
	f.faults[op] = append(f.faults[op], &fault)
}

// Calls returns how often op was called, failed calls included.
func (f *Faulty) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// take counts a call of op for key and returns the fault it hits, if any.
func (f *Faulty) take(op Op, key string) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	for i, ft := range f.faults[op] {
		if ft.Key != "" && ft.Key != key {
			continue
		}
		if ft.Skip > 0 {
			ft.Skip--
			return nil
		}
		hit := *ft
		if ft.Times > 0 {
			ft.Times--
			if ft.Times == 0 {
				f.faults[op] = append(f.faults[op][:i:i], f.faults[op][i+1:]...)
			}
		}
		return &hit
	}
	return nil
}

// do runs call under the fault for op and key, if any.
func (f *Faulty) do(op Op, key string, call func() error) error {
	ft := f.take(op, key)
	if ft == nil {
		return call()
	}
	if ft.After {
		if err := call(); err != nil {
			return err
		}
	}
	return ft.Err
}

// Stat implements store.Backend.
func (f *Faulty) Stat(ctx context.Context, key string) (store.Object, error) {
	var o store.Object
	err := f.do(OpStat, key, func() (err error) { o, err = f.be.Stat(ctx, key); return err })
	return o, err
}

// NewRangeReader implements store.Backend.
func (f *Faulty) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	ft := f.take(OpRead, key)
	if ft == nil {
		return f.be.NewRangeReader(ctx, key, offset, length)
	}
	if ft.ReadBytes == 0 && !ft.After {
		return nil, ft.Err
	}
	r, err := f.be.NewRangeReader(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	if ft.ReadBytes == 0 {
		return nil, closeAnd(r, ft.Err)
	}
	return &brokenReader{r: r, left: ft.ReadBytes, err: ft.Err}, nil
}

func closeAnd(c io.Closer, err error) error {
	_ = c.Close() // the injected error is what the caller must see
	return err
}

// brokenReader delivers left bytes of r, then fails with err.
type brokenReader struct {
	r    io.ReadCloser
	left int64
	err  error
}

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, b.err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *brokenReader) Close() error { return b.r.Close() }

// Upload implements store.Backend.
func (f *Faulty) Upload(ctx context.Context, key string, data []byte, createOnly bool) error {
	return f.do(OpUpload, key, func() error { return f.be.Upload(ctx, key, data, createOnly) })
}

// Delete implements store.Backend.
func (f *Faulty) Delete(ctx context.Context, key string) error {
	return f.do(OpDelete, key, func() error { return f.be.Delete(ctx, key) })
}

// ListPage implements store.Backend.
func (f *Faulty) ListPage(ctx context.Context, prefix string, token []byte, pageSize int) ([]store.Object, []byte, error) {
	var objs []store.Object
	var next []byte
	err := f.do(OpList, prefix, func() (err error) {
		objs, next, err = f.be.ListPage(ctx, prefix, token, pageSize)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return objs, next, nil
}

// Close implements store.Backend.
func (f *Faulty) Close() error { return f.be.Close() }
