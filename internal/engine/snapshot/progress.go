package snapshot

import (
	"context"
	"sync"
	"time"
)

// Status is a progress report. Totals grow while a concurrent scan is still counting.
type Status struct {
	FilesDone, FilesTotal int64
	BytesDone, BytesTotal int64
	Errors                int64
	CurrentPath           string
	Elapsed               time.Duration
	// ScanDone says the totals are final.
	ScanDone bool
}

// Rate is bytes per second so far.
func (s Status) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.BytesDone) / s.Elapsed.Seconds()
}

// ETA estimates the time left, or 0 when unknown.
func (s Status) ETA() time.Duration {
	r := s.Rate()
	if r <= 0 || s.BytesTotal <= s.BytesDone || !s.ScanDone {
		return 0
	}
	return time.Duration(float64(s.BytesTotal-s.BytesDone) / r * float64(time.Second))
}

// Progress receives reports every Interval while a pipeline runs, and a final one. It must
// be safe for concurrent use.
type Progress interface {
	Report(Status)
	Done(Status)
}

// NoProgress discards reports.
type NoProgress struct{}

// Report does nothing.
func (NoProgress) Report(Status) {}

// Done does nothing.
func (NoProgress) Done(Status) {}

func progressOrNoop(p Progress) Progress {
	if p == nil {
		return NoProgress{}
	}
	return p
}

// every calls fn each interval until stop is called or ctx ends; stop waits for the last
// call to return, and may be called more than once.
func every(ctx context.Context, interval time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				fn()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }); wg.Wait() }
}
