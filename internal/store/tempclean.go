package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// RemoveStaleTemp deletes the temporary files of a file:// bucket that nothing has
// written for longer than olderThan, and returns how many it deleted. A process killed
// while it wrote leaves its temporary file behind (a backup's spooled pack is up to a
// pack in size), and no listing shows it, so without this the space is lost for good.
// The caller decides when no live writer can own such a file (prune, under its exclusive
// lock, with the age at which a lock goes stale). Other buckets have no temporary
// files: 0, nil.
func (s *Store) RemoveStaleTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	fb, ok := s.be.(fileBackend)
	if !ok {
		return 0, nil
	}
	entries, err := os.ReadDir(filepath.Join(fb.dir, fileTempDir))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	cutoff := time.Now().Add(-olderThan)
	n := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || !info.ModTime().Before(cutoff) {
			continue // gone meanwhile, not ours, or possibly still being written
		}
		if err := os.Remove(filepath.Join(fb.dir, fileTempDir, e.Name())); err == nil {
			n++
		}
	}
	return n, nil
}
