package snapshot

import (
	"errors"
	"sync/atomic"
	"testing"
)

// TestWritebacksCloseEverything: every file handed over is closed, once, by the time
// stop returns, whether it waited in the queue or the queue was full; the first close
// error comes back from stop, and a second stop is harmless.
func TestWritebacksCloseEverything(t *testing.T) {
	w := startWritebacks()
	var closed atomic.Int64
	errBoom := errors.New("close failed")
	for i := range 3 * writebackQueue {
		b := writeback{fd: ^uintptr(0), close: func() error { // an fd nothing has: the writeback call fails, ignored
			closed.Add(1)
			if i == 5 {
				return errBoom
			}
			return nil
		}}
		if err := w.closeAfter(b); err != nil && !errors.Is(err, errBoom) {
			t.Fatal(err)
		}
	}
	err := w.stop()
	if got := closed.Load(); got != 3*writebackQueue {
		t.Fatalf("%d files closed, want %d", got, 3*writebackQueue)
	}
	if canStartWriteback && !errors.Is(err, errBoom) {
		t.Fatalf("stop = %v, want the close error", err)
	}
	if err2 := w.stop(); err2 != err {
		t.Fatalf("second stop = %v, want %v again", err2, err)
	}
}
