package repo

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPackBufPoolBound: the pool hands out at most max buffers; the next get waits
// for a put (or its context), and buffers put back wake every waiter in turn.
func TestPackBufPoolBound(t *testing.T) {
	var pp packBufPool
	pp.init(2, 1024)
	ctx := context.Background()
	a, err := pp.get(ctx)
	if err != nil || cap(a) != 1024 {
		t.Fatalf("first get: cap %d, %v", cap(a), err)
	}
	b, _ := pp.get(ctx)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := pp.get(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third get with two out = %v, want to wait until the deadline", err)
	}
	got := make(chan []byte, 2)
	for range 2 {
		go func() {
			buf, err := pp.get(ctx)
			if err != nil {
				t.Error(err)
			}
			got <- buf
		}()
	}
	time.Sleep(10 * time.Millisecond) // let both wait (the test passes without it too)
	pp.put(a)
	pp.put(append(b, 1)) // what a buffer grew into is taken back
	for range 2 {
		select {
		case buf := <-got:
			if len(buf) != 0 {
				t.Fatalf("get returned %d bytes, want an empty buffer", len(buf))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a waiter was not woken by a buffer put back")
		}
	}
	if pp.made != 2 {
		t.Fatalf("%d buffers made, want 2", pp.made)
	}
	pp.drain()
	if pp.made != 2 {
		t.Fatalf("drain with both out: made = %d, want 2", pp.made)
	}
}
