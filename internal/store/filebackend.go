package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
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
	f, tmp, err := fb.createTemp()
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
	if createOnly {
		return fb.link(tmp, key)
	}
	path := filepath.Join(fb.dir, filepath.FromSlash(fb.prefix+key))
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ListPage lists the bucket directory itself rather than through fileblob: fileblob
// reads a directory and then each entry's attributes, and fails the whole listing when
// an entry was deleted in between, which happens whenever another host removes its
// lock or a prune deletes packs while someone lists. An entry that vanished was
// deleted, so it is left out, as an object store's listing would. Keys come back in
// lexicographic order (the walk's order is by path, where "a/b" precedes "a-c"), paged
// after token, like fileblob's. Keys are written unescaped by Upload, and fileblob's
// escaping leaves the repository's keys as they are.
func (fb fileBackend) ListPage(ctx context.Context, prefix string, token []byte, pageSize int) ([]Object, []byte, error) {
	full := fb.prefix + prefix
	root := fb.dir
	if i := strings.LastIndex(full, "/"); i >= 0 {
		root = filepath.Join(fb.dir, filepath.FromSlash(full[:i]))
	}
	var objs []Object
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // the root or a directory deleted meanwhile: nothing in it
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if path == fb.dir {
			return nil
		}
		rel, err := filepath.Rel(fb.dir, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if key == fileTempDir || !strings.HasPrefix(key+"/", full) && !strings.HasPrefix(full, key+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(key, full) || strings.HasSuffix(key, attrsSuffix) {
			return nil
		}
		key = key[len(fb.prefix):]
		if token != nil && key <= string(token) {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		objs = append(objs, Object{Key: key, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	if pageSize > 0 && len(objs) > pageSize {
		objs = objs[:pageSize]
		return objs, []byte(objs[pageSize-1].Key), nil
	}
	return objs, nil, nil
}

// attrsSuffix marks fileblob's attribute files beside the objects it wrote.
const attrsSuffix = ".attrs"
