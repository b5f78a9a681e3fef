package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

const openNoATime = 0

// statOf: Windows has no POSIX owners, inodes or change times; a node keeps what
// FileInfo says (mode bits, size, modification time).
func statOf(fs.FileInfo) (statFields, bool) { return statFields{}, false }

// openat opens rel inside the target through the os.Root, which refuses to leave it.
func (rs *restorer) openat(rel string, flags int, perm uint32) (*os.File, error) {
	return rs.root.OpenFile(rel, flags, fs.FileMode(perm))
}

func inTheWay(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && errors.Is(err, fs.ErrExist)
}

func (rs *restorer) mknod(f *restoreFile) error {
	return fmt.Errorf("%s: special files (FIFOs, devices) cannot be restored on Windows", f.rel)
}

// setMeta restores what Windows keeps: the permission bits as far as they map, and
// the times. Owners are not restored.
func (rs *restorer) setMeta(rel string, n *Node) error {
	if n.Type == TypeSymlink {
		return nil
	}
	p := rel
	if p == "" {
		p = "."
	}
	if err := rs.root.Chmod(p, n.Mode.Perm()); err != nil {
		return fmt.Errorf("%s: chmod: %w", rel, err)
	}
	if err := rs.root.Chtimes(p, n.AccessTime, n.ModTime); err != nil {
		return fmt.Errorf("%s: times: %w", rel, err)
	}
	return nil
}

// writeNew creates (or truncates) the file rel, writes data into it and restores n's
// metadata; the bool says something in the way (a directory) kept it from being opened.
func (rs *restorer) writeNew(rel string, data []byte, n *Node) (bool, error) {
	fh, err := rs.openat(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return inTheWay(err), err
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return false, fmt.Errorf("%s: %w", rel, err)
	}
	if err := fh.Close(); err != nil {
		return false, err
	}
	return false, rs.setMeta(rel, n)
}

// canStartWriteback: no sync_file_range here; the kernel writes restored files back on
// its own.
const canStartWriteback = false

func startWriteback(uintptr, int64, int64) {}

// processUmask: Windows has none; writeNew does not use it here.
func processUmask() uint32 { return 0 }
