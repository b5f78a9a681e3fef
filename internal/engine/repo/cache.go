package repo

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
)

// DefaultCacheSize is the cache budget when Options.CacheDir is set and CacheSize is not:
// about the index and tree packs of a repository of a million files (some 150 bytes of
// tree and as much of index per file), and small enough for a pod's emptyDir.
const DefaultCacheSize = 256 << 20

// cacheBlock is the unit the cache counts in: a file of 1 byte takes a file-system block,
// and an emptyDir's sizeLimit is measured in blocks, not in bytes.
const cacheBlock = 4096

// What the cache holds: both are immutable and named by the SHA-256 of their bytes.
const (
	cacheIndex = "index"
	cacheTree  = "tree"
)

// tmpPrefix starts the name of a file being written; it is renamed into place when
// complete, so a killed process never leaves a truncated entry under a real name.
const tmpPrefix = ".tmp-"

// CacheStats describe the local cache of a repository handle. Hits and misses count reads
// of index files and tree blobs: a hit needed no request to the store, a miss made one
// (the download of a whole index file or tree pack, or a ranged read of one tree blob
// when the pack could not be cached).
type CacheStats struct {
	// Dir is the cache directory; empty when the handle has no cache.
	Dir string `json:"dir,omitempty"`
	// Hits and HitBytes: reads served without a request to the store, and their bytes.
	Hits     int64 `json:"hits"`
	HitBytes int64 `json:"hitBytes"`
	// Misses and MissBytes: requests made to the store for cached kinds, and the bytes
	// they downloaded.
	Misses    int64 `json:"misses"`
	MissBytes int64 `json:"missBytes"`
	// Evicted is how many files this handle removed to stay within Budget.
	Evicted int64 `json:"evicted"`
	// Files and Size are what the whole cache directory holds now (Size in whole blocks).
	Files  int   `json:"files"`
	Size   int64 `json:"size"`
	Budget int64 `json:"budget"`
}

// CacheStats returns the cache's counters; the zero value when the handle has no cache.
func (r *Repository) CacheStats() CacheStats { return r.cache.stats() }

// CacheError says why a handle opened with Options.CacheDir runs without a cache (the
// directory cannot be created or written); nil when it has one or none was asked for.
// Nothing else reports it: a cache is never a reason to fail.
func (r *Repository) CacheError() error { return r.cacheErr }

// cache keeps index files and tree packs in a local directory, as
// <root>/<repository id>/<kind>/<object id>, within a byte budget that covers the whole
// root (several repositories may share it). It is safe for concurrent use; a nil *cache
// is a cache that holds nothing.
type cache struct {
	root   string
	repo   string // the repository's config id: this handle's entries are under root/repo
	budget int64
	// hashing names objects as the repository does: a cached file is used only while
	// it still hashes to its name.
	hashing *crypto.Hashing

	mu      sync.Mutex
	entries map[string]*list.Element // key "<repo>/<kind>/<id>" → element holding *cacheEntry
	lru     *list.List               // front: used most recently
	used    int64
	// skip lists objects this handle does not cache again: evicted (a working set larger
	// than the budget would otherwise download whole packs over and over), larger than
	// the budget, or not writable. Their blobs are read with ranged requests, as uncached.
	skip map[string]struct{}

	flight singleflight.Group

	hits, hitBytes, misses, missBytes, evicted atomic.Int64
}

type cacheEntry struct {
	key  string
	size int64 // in whole blocks
	// ready: the file is in place (false while it is being written; eviction skips it).
	ready bool
	// verified: its content was hashed against its name by this handle (or written by
	// it), so reads of single blobs need no more than their AEAD check.
	verified bool
}

func blocks(n int64) int64 { return (n + cacheBlock - 1) / cacheBlock * cacheBlock }

// openCache opens (creating it if need be) the cache of repository repoID under root,
// scans what it holds, and evicts down to budget if the budget shrank since.
func openCache(root, repoID string, budget int64, hashing *crypto.Hashing) (*cache, error) {
	if _, err := crypto.ParseID(repoID); err != nil {
		return nil, fmt.Errorf("repository id %q is not a cache directory name: %w", repoID, err)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	c := &cache{root: root, repo: repoID, budget: budget, hashing: hashing, entries: map[string]*list.Element{}, lru: list.New(),
		skip: map[string]struct{}{}}
	for _, kind := range []string{cacheIndex, cacheTree} {
		if err := os.MkdirAll(filepath.Join(root, repoID, kind), 0o700); err != nil {
			return nil, err
		}
	}
	// A directory can exist and still refuse writes (a read-only mount, another owner).
	f, err := os.CreateTemp(filepath.Join(root, repoID, cacheTree), tmpPrefix+"probe-*")
	if err != nil {
		return nil, err
	}
	f.Close()
	os.Remove(f.Name())
	c.scan()
	c.mu.Lock()
	c.evictLocked(0) // the budget may be smaller than the last process's
	clear(c.skip)    // what that evicted may be cached again
	c.mu.Unlock()
	return c, nil
}

// scan accounts for the files already in the cache, least recently used (oldest
// modification time: a hit touches its file) at the back. Only names of the cache's own
// layout are counted, and only they are ever removed: a cache pointed at a directory
// holding other things leaves those alone. Temporary files are leftovers of a killed
// process (or, rarely, of one writing now: it then just does not cache that object).
func (c *cache) scan() {
	type found struct {
		key   string
		size  int64
		mtime time.Time
	}
	var all []found
	repos, _ := os.ReadDir(c.root)
	for _, rd := range repos {
		if !rd.IsDir() {
			continue
		}
		if _, err := crypto.ParseID(rd.Name()); err != nil {
			continue
		}
		for _, kind := range []string{cacheIndex, cacheTree} {
			dir := filepath.Join(c.root, rd.Name(), kind)
			files, _ := os.ReadDir(dir)
			for _, fe := range files {
				if !fe.Type().IsRegular() {
					continue
				}
				if strings.HasPrefix(fe.Name(), tmpPrefix) {
					os.Remove(filepath.Join(dir, fe.Name()))
					continue
				}
				if _, err := crypto.ParseID(fe.Name()); err != nil {
					continue
				}
				fi, err := fe.Info()
				if err != nil {
					continue
				}
				all = append(all, found{key: rd.Name() + "/" + kind + "/" + fe.Name(), size: blocks(fi.Size()), mtime: fi.ModTime()})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mtime.After(all[j].mtime) })
	for _, f := range all {
		c.entries[f.key] = c.lru.PushBack(&cacheEntry{key: f.key, size: f.size, ready: true})
		c.used += f.size
	}
}

func (c *cache) key(kind string, id crypto.ID) string { return c.repo + "/" + kind + "/" + id.String() }

func (c *cache) path(key string) string { return filepath.Join(c.root, filepath.FromSlash(key)) }

// evictLocked removes least recently used files until need more bytes fit in the budget;
// false if they cannot (files being written are not evicted).
func (c *cache) evictLocked(need int64) bool {
	for el := c.lru.Back(); el != nil && c.used+need > c.budget; {
		e := el.Value.(*cacheEntry)
		prev := el.Prev()
		if e.ready {
			os.Remove(c.path(e.key))
			c.lru.Remove(el)
			delete(c.entries, e.key)
			c.used -= e.size
			c.skip[e.key] = struct{}{}
			c.evicted.Add(1)
		}
		el = prev
	}
	return c.used+need <= c.budget
}

// add stores data as kind/id, unless it is cached already, too large, or the directory
// refuses it. It goes in at the cold end: an object this handle wrote (an index file, a
// tree pack of the backup running) is worth keeping for the next run, but not at the
// price of a pack the running backup has read and may read again.
func (c *cache) add(kind string, id crypto.ID, data []byte) {
	if c == nil {
		return
	}
	_ = c.store(c.key(kind, id), int64(len(data)), false, func(w io.Writer) error { // not cached: only a later miss
		_, err := w.Write(data)
		return err
	})
}

// reserve makes room for size bytes under key and enters key, not ready yet, so that the
// budget holds while its file is written; nil if key is there already or cannot fit.
func (c *cache) reserve(key string, size int64, hot bool) *cacheEntry {
	size = blocks(size)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return nil
	}
	if size <= 0 || size > c.budget || !c.evictLocked(size) {
		c.skip[key] = struct{}{}
		return nil
	}
	e := &cacheEntry{key: key, size: size}
	if hot {
		c.entries[key] = c.lru.PushFront(e)
	} else {
		c.entries[key] = c.lru.PushBack(e)
	}
	c.used += size
	return e
}

// store writes size bytes under key with write (temporary file, then rename). An error
// (errNotCached when there is no room) leaves nothing behind, and the object is not
// tried again by this handle.
func (c *cache) store(key string, size int64, hot bool, write func(io.Writer) error) error {
	e := c.reserve(key, size, hot)
	if e == nil {
		return errNotCached
	}
	err := writeFileAtomic(c.path(key), write)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.lru.Remove(c.entries[key])
		delete(c.entries, key)
		c.used -= e.size
		c.skip[key] = struct{}{}
		return err
	}
	e.ready, e.verified = true, true
	return nil
}

var errNotCached = errors.New("not cached")

// writeFileAtomic writes a temporary file next to p with write and renames it to p.
// There is no fsync: after a crash of the machine a file may be short or zeroed, and
// the hash check of its first read finds it and drops it.
func writeFileAtomic(p string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(p), tmpPrefix+"*")
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// drop removes a damaged or vanished file from the cache; unlike eviction it may be
// cached again, from the store. Only the entry that was read is dropped: a reader that
// met the damage late must not remove the good copy another reader fetched since.
func (c *cache) drop(e *cacheEntry) {
	if e == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[e.key]; ok && el.Value.(*cacheEntry) == e {
		c.dropLocked(e.key)
	}
}

func (c *cache) dropLocked(key string) {
	el, ok := c.entries[key]
	if !ok || !el.Value.(*cacheEntry).ready {
		return
	}
	os.Remove(c.path(key))
	c.lru.Remove(el)
	delete(c.entries, key)
	c.used -= el.Value.(*cacheEntry).size
}

// ready returns the entry of key if its file is in place.
func (c *cache) ready(key string) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok && el.Value.(*cacheEntry).ready {
		return el.Value.(*cacheEntry)
	}
	return nil
}

// verified marks e as checked against its name by this handle and as used now. The
// modification time orders the files for the next process's scan.
func (c *cache) verified(e *cacheEntry) {
	c.mu.Lock()
	e.verified = true
	if el, ok := c.entries[e.key]; ok && el.Value.(*cacheEntry) == e {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	now := time.Now()
	os.Chtimes(c.path(e.key), now, now)
}

// object returns the index file kind/id: the cached file when it is intact, else what
// fetch returns (which must be the verified content), stored for next time. A damaged
// cached file is removed.
func (c *cache) object(ctx context.Context, kind string, id crypto.ID, fetch func(context.Context) ([]byte, error)) ([]byte, error) {
	key := c.key(kind, id)
	if e := c.ready(key); e != nil {
		b, err := os.ReadFile(c.path(key))
		if err == nil && c.hashing.Sum(b) == id {
			c.verified(e)
			c.hit(len(b))
			return b, nil
		}
		c.drop(e)
	}
	b, err := fetch(ctx)
	c.miss(len(b))
	if err != nil {
		return nil, err
	}
	_ = c.store(key, int64(len(b)), true, func(w io.Writer) error { // not cached: downloaded again next time
		_, err := w.Write(b)
		return err
	})
	return b, nil
}

// treeBlob returns the sealed bytes of the tree blob e read from its pack's file in the
// cache. A pack not there yet is downloaded whole, straight to its file (one request,
// which concurrent callers wait for; memory holds no pack); one there but not yet
// verified by this handle is hashed first. from is the entry read, for drop. ok is false
// when the pack is not to be cached or could not be fetched: the caller then reads the
// blob with a ranged request, as without a cache.
func (c *cache) treeBlob(ctx context.Context, e Entry, packSize int64, open func(context.Context) (io.ReadCloser, error)) (sealed []byte, from *cacheEntry, ok bool) {
	key := c.key(cacheTree, e.Pack)
	c.mu.Lock()
	var ent *cacheEntry
	if el, ok := c.entries[key]; ok && el.Value.(*cacheEntry).ready && el.Value.(*cacheEntry).verified {
		ent = el.Value.(*cacheEntry)
		c.lru.MoveToFront(el)
	}
	_, skip := c.skip[key]
	c.mu.Unlock()
	downloaded := false
	if ent == nil {
		if skip {
			return nil, nil, false
		}
		leader := false
		v, err, _ := c.flight.Do(key, func() (any, error) {
			leader = true
			return c.fill(ctx, key, e.Pack, packSize, open)
		})
		if err != nil {
			return nil, nil, false
		}
		downloaded = leader && v.(bool)
		if ent = c.ready(key); ent == nil {
			return nil, nil, false // evicted already: a budget too small for the readers at work
		}
	}
	b, err := c.readAt(key, int64(e.Offset), int64(e.Length))
	if err != nil {
		c.drop(ent) // vanished or cut short: fetched again next time
		return nil, nil, false
	}
	if !downloaded {
		c.hit(len(b))
	}
	return b, ent, true
}

// fill makes the file of tree pack key intact and verified: it hashes a file a previous
// process left, and downloads the pack if there is none or it is damaged. downloaded
// says whether it made a request to the store.
func (c *cache) fill(ctx context.Context, key string, id crypto.ID, size int64, open func(context.Context) (io.ReadCloser, error)) (downloaded bool, err error) {
	if e := c.ready(key); e != nil {
		if e.verified {
			return false, nil
		}
		if c.hashFile(c.path(key)) == id {
			c.verified(e)
			return false, nil
		}
		c.drop(e)
	}
	var n int64
	err = c.store(key, size, true, func(w io.Writer) error {
		rd, err := open(ctx)
		if err != nil {
			return err
		}
		defer rd.Close()
		h := c.hashing.New()
		// One byte more than the index says: a longer object is damaged, and the budget
		// is never exceeded by what the store sends.
		n, err = io.Copy(io.MultiWriter(w, h), io.LimitReader(rd, size+1))
		if err != nil {
			return err
		}
		if n != size || crypto.ID(h.Sum(nil)) != id {
			return fmt.Errorf("pack %s: content does not match its name (damaged)", id.Short())
		}
		return nil
	})
	if n > 0 || !errors.Is(err, errNotCached) {
		c.miss(int(n))
	}
	return true, err
}

// hashFile is the object name of the file at p (hashing.Sum), read in pieces; the zero
// id if it cannot be read.
func (c *cache) hashFile(p string) crypto.ID {
	f, err := os.Open(p)
	if err != nil {
		return crypto.ID{}
	}
	defer f.Close()
	h := c.hashing.New()
	if _, err := io.Copy(h, f); err != nil {
		return crypto.ID{}
	}
	return crypto.ID(h.Sum(nil))
}

func (c *cache) readAt(key string, off, n int64) ([]byte, error) {
	f, err := os.Open(c.path(key))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// retainIndex removes cached index files of this repository that are not in names (the
// index files the store lists): prune replaced them.
func (c *cache) retainIndex(names []string) {
	if c == nil {
		return
	}
	listed := make(map[string]bool, len(names))
	for _, n := range names {
		listed[c.repo+"/"+cacheIndex+"/"+strings.TrimPrefix(n, indexPrefix)] = true
	}
	prefix := c.repo + "/" + cacheIndex + "/"
	c.mu.Lock()
	defer c.mu.Unlock()
	for key := range c.entries {
		if strings.HasPrefix(key, prefix) && !listed[key] {
			c.dropLocked(key)
		}
	}
}

func (c *cache) hit(n int) {
	c.hits.Add(1)
	c.hitBytes.Add(int64(n))
}

func (c *cache) miss(n int) {
	c.misses.Add(1)
	c.missBytes.Add(int64(n))
}

func (c *cache) stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	files, size := len(c.entries), c.used
	c.mu.Unlock()
	return CacheStats{Dir: c.root, Hits: c.hits.Load(), HitBytes: c.hitBytes.Load(), Misses: c.misses.Load(),
		MissBytes: c.missBytes.Load(), Evicted: c.evicted.Load(), Files: files, Size: size, Budget: c.budget}
}

// loadCachedTreeBlob is LoadBlob of a tree blob through the cache; ok is false when the
// caller must read the blob from the store itself.
func (r *Repository) loadCachedTreeBlob(ctx context.Context, id crypto.ID, e Entry, dst []byte) ([]byte, bool) {
	sealed, from, ok := r.cache.treeBlob(ctx, e, r.idx.packSize(e.Pack), func(ctx context.Context) (io.ReadCloser, error) {
		return r.be.NewRangeReader(ctx, PackKey(TreeBlob, e.Pack), 0, -1)
	})
	if !ok {
		return nil, false
	}
	out, err := r.DecodeBlob(id, e, sealed, dst)
	if err != nil {
		// The pack matched its name when this handle first read it, so the file changed
		// since (a bad disk, a stray write): drop it, the store has the real one.
		r.cache.drop(from)
		return nil, false
	}
	return out, true
}

// readIndexFile returns the verified content of the index file name (index/<id>).
func (r *Repository) readIndexFile(ctx context.Context, name string) ([]byte, error) {
	fetch := func(ctx context.Context) ([]byte, error) {
		raw, err := r.be.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		if r.hashing.Sum(raw).String() != name[len(indexPrefix):] {
			return raw, damagedIndex{fmt.Errorf("index %s: content does not match its name (damaged)", name)}
		}
		return raw, nil
	}
	id, err := crypto.ParseID(name[len(indexPrefix):])
	if r.cache == nil || err != nil {
		return fetch(ctx)
	}
	return r.cache.object(ctx, cacheIndex, id, fetch)
}
