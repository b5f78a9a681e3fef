package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A spool abandoned by a killed process is a temporary file no listing shows: only
// RemoveStaleTemp reclaims it, and only once it is older than asked, so a file still
// being written stays.
func TestRemoveStaleTemp(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, "file://"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	abandoned, err := s.Spool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	abandoned.Write([]byte("half a pack"))
	live, err := s.Spool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	live.Write([]byte("being written"))
	abandonedPath := abandoned.sp.(*fileSpool).path
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(abandonedPath, old, old); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIfAbsent(ctx, "data/x", []byte("object")); err != nil {
		t.Fatal(err)
	}

	n, err := s.RemoveStaleTemp(ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("RemoveStaleTemp = %d, %v; want 1 file removed", n, err)
	}
	if _, err := os.Stat(abandonedPath); !os.IsNotExist(err) {
		t.Errorf("the abandoned spool is still there: %v", err)
	}
	if err := live.Commit(ctx, "data/y"); err != nil {
		t.Fatalf("the spool still being written was removed: %v", err)
	}
	if b, err := s.Get(ctx, "data/x"); err != nil || string(b) != "object" {
		t.Errorf("an object was touched: %q, %v", b, err)
	}
	left, _ := os.ReadDir(filepath.Join(dir, fileTempDir))
	if len(left) != 0 {
		t.Errorf("%d temporary files left", len(left))
	}

	mem, err := Open(ctx, "mem://", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if n, err := mem.RemoveStaleTemp(ctx, 0); n != 0 || err != nil {
		t.Errorf("mem:// RemoveStaleTemp = %d, %v", n, err)
	}
}
