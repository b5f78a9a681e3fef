package repo

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/compress"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crashpoint"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// BlobType separates file content from directory listings: they never share a pack.
type BlobType uint8

// Blob types, as stored in pack headers.
const (
	DataBlob BlobType = 0
	TreeBlob BlobType = 1
)

func (t BlobType) String() string {
	if t == TreeBlob {
		return "tree"
	}
	return "data"
}

// packPrefix is where packs of type t live.
func (t BlobType) packPrefix() string { return t.String() + "/" }

// PackKey is the object name of pack id of type t.
func PackKey(t BlobType, id crypto.ID) string {
	s := id.String()
	return t.packPrefix() + s[:2] + "/" + s
}

// Entry locates one blob.
type Entry struct {
	Pack   crypto.ID
	Type   BlobType
	Codec  compress.Codec
	Offset uint32
	Length uint32 // sealed length in the pack
	Raw    uint32 // plaintext length
}

// index is the in-memory map of every blob to its pack.
type index struct {
	mu      sync.RWMutex
	packs   []crypto.ID // entry.pack indexes this
	sizes   []int64     // of each pack, as its index entry says: the cache checks its budget before it downloads
	packIdx map[crypto.ID]uint32
	blobs   map[crypto.ID]entry
	pending map[crypto.ID]struct{} // being saved by this process, not yet in an uploaded pack
}

type entry struct {
	pack                uint32
	typ                 BlobType
	codec               compress.Codec
	offset, length, raw uint32
}

func newIndex() *index {
	return &index{packIdx: map[crypto.ID]uint32{}, blobs: map[crypto.ID]entry{}, pending: map[crypto.ID]struct{}{}}
}

func (x *index) lookup(id crypto.ID) (Entry, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.blobs[id]
	if !ok {
		return Entry{}, false
	}
	return Entry{Pack: x.packs[e.pack], Type: e.typ, Codec: e.codec, Offset: e.offset, Length: e.length, Raw: e.raw}, true
}

// packSize returns the size of a pack the index lists (0 if it does not).
func (x *index) packSize(id crypto.ID) int64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if n, ok := x.packIdx[id]; ok {
		return x.sizes[n]
	}
	return 0
}

// has reports whether a blob is stored.
func (x *index) has(id crypto.ID) bool {
	x.mu.RLock()
	_, ok := x.blobs[id]
	x.mu.RUnlock()
	return ok
}

// reserve marks id as being saved; false if it is stored or being saved already.
func (x *index) reserve(id crypto.ID) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.blobs[id]; ok {
		return false
	}
	if _, ok := x.pending[id]; ok {
		return false
	}
	x.pending[id] = struct{}{}
	return true
}

func (x *index) addPack(p indexPack) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n, ok := x.packIdx[p.ID]
	if !ok {
		n = uint32(len(x.packs))
		x.packs = append(x.packs, p.ID)
		x.sizes = append(x.sizes, p.Size)
		x.packIdx[p.ID] = n
	}
	t := TreeBlob
	if p.Type == "data" {
		t = DataBlob
	}
	for _, b := range p.Blobs {
		if _, ok := x.blobs[b.ID]; !ok {
			x.blobs[b.ID] = entry{pack: n, typ: t, codec: b.Codec, offset: b.Offset, length: b.Length, raw: b.Raw}
		}
		delete(x.pending, b.ID)
	}
}

func (x *index) count() (packs, blobs int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.packs), len(x.blobs)
}

// indexFile is the JSON of an index object.
type indexFile struct {
	Version    int         `json:"version"`
	Packs      []indexPack `json:"packs"`
	Supersedes []string    `json:"supersedes,omitempty"`
}

type indexPack struct {
	ID    crypto.ID   `json:"id"`
	Type  string      `json:"type"`
	Size  int64       `json:"size"`
	Blobs []indexBlob `json:"blobs"`
}

type indexBlob struct {
	ID     crypto.ID      `json:"id"`
	Offset uint32         `json:"offset"`
	Length uint32         `json:"length"`
	Raw    uint32         `json:"raw"`
	Codec  compress.Codec `json:"codec"`
}

// encodeCompressed is codec (1 byte) ‖ raw length (uint32 LE) ‖ compressed bytes.
func (r *Repository) encodeCompressed(plain []byte) []byte {
	out, used := r.metaCompressor.Compress(make([]byte, 0, len(plain)/3+64), plain)
	buf := make([]byte, 5, 5+len(out))
	buf[0] = byte(used)
	binary.LittleEndian.PutUint32(buf[1:], uint32(len(plain)))
	return append(buf, out...)
}

func decodeCompressed(b []byte) ([]byte, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("compressed document too short")
	}
	return compress.Decompress(nil, b[5:], compress.Codec(b[0]), int(binary.LittleEndian.Uint32(b[1:])))
}

// writeIndex stores an index file for packs (already uploaded).
func (r *Repository) writeIndex(ctx context.Context, packs []indexPack) error {
	if len(packs) == 0 {
		return nil
	}
	plain, err := json.Marshal(indexFile{Version: 1, Packs: packs})
	if err != nil {
		return err
	}
	sealed := r.key.Seal(nil, r.encodeCompressed(plain), []byte("index"))
	id := r.hashing.Sum(sealed)
	if err := r.be.PutIfAbsent(ctx, indexPrefix+id.String(), sealed); err != nil && !isExists(err) {
		return fmt.Errorf("write index: %w", err)
	}
	crashpoint.Hit(crashpoint.BackupIndexWritten)
	r.cache.add(cacheIndex, id, sealed)
	r.markIndexSeen(indexPrefix + id.String())
	return nil
}

// indexNames lists the index files in the store.
func (r *Repository) indexNames(ctx context.Context) ([]string, error) {
	var names []string
	err := r.be.List(ctx, indexPrefix, func(o store.Object) error {
		names = append(names, o.Key)
		return nil
	})
	return names, err
}

// IndexFileError is an index file whose content is damaged: it does not match its name,
// does not decrypt, or does not parse.
type IndexFileError struct {
	Name string
	Err  error
}

func (e *IndexFileError) Error() string { return e.Err.Error() }
func (e *IndexFileError) Unwrap() error { return e.Err }

// decodeIndexFile reads, opens and parses one index file. A damaged file is an
// *IndexFileError; a storage error is returned as it is.
func (r *Repository) decodeIndexFile(ctx context.Context, name string) (indexFile, error) {
	f, err := r.decodeIndexFileErr(ctx, name)
	var d damagedIndex
	if errors.As(err, &d) {
		return f, &IndexFileError{Name: name, Err: d.err}
	}
	return f, err
}

// damagedIndex marks an error of decodeIndexFileErr as the content's, not the storage's.
type damagedIndex struct{ err error }

func (d damagedIndex) Error() string { return d.err.Error() }

func (r *Repository) decodeIndexFileErr(ctx context.Context, name string) (indexFile, error) {
	var f indexFile
	raw, err := r.readIndexFile(ctx, name)
	if err != nil {
		return f, err // a damagedIndex when it does not match its name
	}
	plain, err := r.key.Open(nil, raw, []byte("index"))
	if err != nil {
		return f, damagedIndex{fmt.Errorf("index %s: %w", name, err)}
	}
	if plain, err = decodeCompressed(plain); err != nil {
		return f, damagedIndex{fmt.Errorf("index %s: %w", name, err)}
	}
	f, err = parseIndexFile(plain)
	if err == errIndexSlowPath {
		f = indexFile{}
		err = json.Unmarshal(plain, &f)
	}
	if err != nil {
		return f, damagedIndex{fmt.Errorf("index %s: %w", name, err)}
	}
	return f, nil
}

// LoadIndexSkipDamaged is LoadIndex for a command that only reads (check, restore): an
// index file whose content is damaged is left out, and returned, instead of failing the
// load, so that what the other index files list stays reachable. The packs only it
// listed then look unreferenced, and their blobs missing. Never for a command that
// deletes (prune): those packs would look unused.
func (r *Repository) LoadIndexSkipDamaged(ctx context.Context) ([]*IndexFileError, error) {
	var mu sync.Mutex
	var damaged []*IndexFileError
	err := r.loadIndex(ctx, func(e *IndexFileError) {
		mu.Lock()
		damaged = append(damaged, e)
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	// a load that started over after a concurrent prune met a file twice
	sort.Slice(damaged, func(i, j int) bool { return damaged[i].Name < damaged[j].Name })
	damaged = slices.CompactFunc(damaged, func(a, b *IndexFileError) bool { return a.Name == b.Name })
	return damaged, nil
}

// loadIndex reads every index file into memory. With skip, a damaged index file is
// given to skip instead of failing the load.
func (r *Repository) loadIndex(ctx context.Context, skip ...func(*IndexFileError)) error {
	for attempt := 1; ; attempt++ {
		names, err := r.indexNames(ctx)
		if err != nil {
			return err
		}
		err = r.loadIndexFiles(ctx, names, skip...)
		if err == nil {
			r.cache.retainIndex(names)
			return nil
		}
		// Loading runs before the lock is taken (the lock's refresh catches up), so a
		// prune may replace index files between the listing and the reads: it writes
		// the new index before deleting the old, so listing again finds a complete set.
		if !errors.Is(err, store.ErrNotFound) || attempt == indexLoadAttempts || ctx.Err() != nil {
			return err
		}
		r.resetIndex()
	}
}

// indexLoadAttempts bounds how often loadIndex starts over after an index file it
// listed was deleted by a concurrent prune.
const indexLoadAttempts = 5

// resetIndex forgets every pack and blob the in-memory index knows and the index files
// it was read from.
func (r *Repository) resetIndex() {
	x := r.idx
	x.mu.Lock()
	x.packs, x.sizes = nil, nil
	clear(x.packIdx)
	clear(x.blobs)
	x.mu.Unlock()
	r.indexSeenMu.Lock()
	r.indexSeen = nil
	r.indexSeenMu.Unlock()
}

// loadIndexFiles reads the named index files into memory; skip as loadIndex's.
func (r *Repository) loadIndexFiles(ctx context.Context, names []string, skip ...func(*IndexFileError)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, name := range names {
		g.Go(func() error {
			f, err := r.decodeIndexFile(gctx, name)
			var damaged *IndexFileError
			if len(skip) > 0 && errors.As(err, &damaged) {
				skip[0](damaged)
				return nil
			}
			if err != nil {
				return err
			}
			for _, p := range f.Packs {
				r.idx.addPack(p)
			}
			r.markIndexSeen(name)
			return nil
		})
	}
	return g.Wait()
}
