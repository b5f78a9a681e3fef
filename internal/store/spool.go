package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gocloud.dev/gcerrors"
)

// A Spool is an object written piece by piece before its key is known, then stored
// under a key at once: how a repository writes a pack, whose name is the hash of all
// its bytes, without holding the pack in memory. Only a file:// bucket can spool (the
// pieces go to a temporary file in the bucket directory, which Commit links into place,
// as Upload does with its single piece); Store.Spool says errors.ErrUnsupported for the
// others, which take whole objects (PutIfAbsent).
//
// A Spool is not safe for concurrent use. Exactly one of Commit and Abort ends it.
type Spool struct {
	s   *Store
	sp  spoolFile
	n   int64
	err error // sticky write error
}

// spooler is implemented by the Backends that can spool.
type spooler interface {
	spool(ctx context.Context) (spoolFile, error)
}

// spoolFile is a Backend's side of a Spool.
type spoolFile interface {
	write(p []byte) error
	// commit makes the bytes durable and gives them the name key, create-only (an
	// existing key is an error carrying gcerrors.AlreadyExists). It ends the file.
	commit(ctx context.Context, key string) error
	abort()
}

// CanSpool reports whether Spool works on this Store.
func (s *Store) CanSpool() bool {
	_, ok := s.be.(spooler)
	return ok
}

// Spool starts an object of unknown name; see Spool. The error is
// errors.ErrUnsupported when the bucket cannot spool.
func (s *Store) Spool(ctx context.Context) (*Spool, error) {
	sb, ok := s.be.(spooler)
	if !ok {
		return nil, fmt.Errorf("%s: spool: %w", s.url, errors.ErrUnsupported)
	}
	sp, err := sb.spool(ctx)
	if err != nil {
		return nil, s.fail(ctx, opCreate, "(spool)", err, false)
	}
	return &Spool{s: s, sp: sp}, nil
}

// Write appends p. An error is kept: Commit returns it too.
func (w *Spool) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if err := w.sp.write(p); err != nil {
		w.err = w.s.fail(context.Background(), opCreate, "(spool)", err, false)
		return 0, w.err
	}
	w.n += int64(len(p))
	return len(p), nil
}

// Len is the number of bytes written so far.
func (w *Spool) Len() int64 { return w.n }

// Commit stores what was written under key, create-only, as PutIfAbsent does: the
// error wraps ErrExists when key is taken. It ends the Spool, also on an error.
func (w *Spool) Commit(ctx context.Context, key string) error {
	if w.err != nil {
		w.sp.abort()
		return w.err
	}
	if err := ctx.Err(); err != nil {
		w.sp.abort()
		return w.s.fail(ctx, opCreate, key, err, true)
	}
	if err := w.sp.commit(ctx, key); err != nil {
		return w.s.fail(ctx, opCreate, key, err, true)
	}
	return nil
}

// Abort discards what was written and ends the Spool.
func (w *Spool) Abort() { w.sp.abort() }

// fileSpool is a temporary file in the bucket's .stash-tmp directory.
type fileSpool struct {
	fb   fileBackend
	f    *os.File
	path string
}

func (fb fileBackend) spool(ctx context.Context) (spoolFile, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, tmp, err := fb.createTemp()
	if err != nil {
		return nil, err
	}
	return &fileSpool{fb: fb, f: f, path: tmp}, nil
}

// createTemp creates a new temporary file in the bucket's temporary directory.
func (fb fileBackend) createTemp() (*os.File, string, error) {
	tmpDir := filepath.Join(fb.dir, fileTempDir)
	if err := os.MkdirAll(tmpDir, 0o777); err != nil {
		return nil, "", err
	}
	tmp := filepath.Join(tmpDir, strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(tempSeq.Add(1), 10)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, "", err
	}
	return f, tmp, nil
}

func (fs *fileSpool) write(p []byte) error {
	_, err := fs.f.Write(p)
	return err
}

func (fs *fileSpool) commit(ctx context.Context, key string) error {
	defer os.Remove(fs.path)
	err := fs.f.Sync() // the object is durable before it has its name
	if cerr := fs.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return fs.fb.link(fs.path, key)
}

func (fs *fileSpool) abort() {
	fs.f.Close()
	os.Remove(fs.path)
}

// link gives the complete temporary file tmp the name key, create-only.
func (fb fileBackend) link(tmp, key string) error {
	path := filepath.Join(fb.dir, filepath.FromSlash(fb.prefix+key))
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists: %w", key, gcerrors.ErrAlreadyExists)
		}
		return err
	}
	return nil
}
