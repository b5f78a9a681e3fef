package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"gocloud.dev/gcerrors"
)

// fileBackend writes objects of a file:// bucket itself and leaves reading, listing and
// deleting to fileblob. fileblob's create-only write checks for the object and then
// renames its temporary file over it: two writers can both pass the check, so two
// racing `init`s could both "win". Here a create-only write links its temporary file to
// the object's name, which the kernel does atomically, across processes too.
//
// Temporary files live in .stash-tmp/ in the bucket directory: on the same file system
// (a rename from /tmp fails across mounts, as with a repository on a volume) and outside
// every key prefix the repository lists.
type fileBackend struct {
	Backend
	dir    string // the bucket directory
	prefix string // key prefix within it ("" or ending in "/")
}

const fileTempDir = ".stash-tmp"

var tempSeq atomic.Uint64

func (fb fileBackend) Upload(ctx context.Context, key string, data []byte, createOnly bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	path := filepath.Join(fb.dir, filepath.FromSlash(fb.prefix+key))
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return err
	}
	tmpDir := filepath.Join(fb.dir, fileTempDir)
	if err := os.MkdirAll(tmpDir, 0o777); err != nil {
		return err
	}
	tmp := filepath.Join(tmpDir, strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(tempSeq.Add(1), 10)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync() // the object is durable before it has its name
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return werr
	}
	if !createOnly {
		return os.Rename(tmp, path)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists: %w", key, gcerrors.ErrAlreadyExists)
		}
		return err
	}
	return nil
}
