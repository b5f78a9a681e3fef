package repo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/compress"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// Options tune a repository handle; the zero value gives the defaults.
type Options struct {
	// Uploads is how many packs upload at once (default 2): enough to keep a local disk or
	// a nearby object store busy while the CPUs chunk and compress, and each pack in flight
	// costs PackSize of memory.
	Uploads int
	// IndexEvery is how many packs an index file lists at most before it is written
	// (default 64): a killed backup leaves at most this many packs unindexed.
	IndexEvery int
	// CacheDir is a local directory that keeps index files and whole tree packs
	// (docs/repository-format.md, "Local cache"), so a backup reading its parent's trees
	// from a remote store makes one request per tree pack instead of one per directory,
	// and index files are downloaded once. Empty: no cache. A directory that cannot be
	// written leaves the handle uncached, without an error (see CacheError).
	CacheDir string
	// CacheSize is the most the files in CacheDir may take, in bytes counted in whole
	// 4 KiB blocks (default DefaultCacheSize): the cache usually lives on an emptyDir whose
	// sizeLimit evicts the pod that exceeds it, so the budget is kept at all times.
	CacheSize int64
}

func (o *Options) applyDefaults() {
	if o.Uploads <= 0 {
		o.Uploads = 2
	}
	if o.IndexEvery <= 0 {
		o.IndexEvery = 64
	}
	if o.CacheDir != "" && o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
}

// Repository is an open repository. Its methods are safe for concurrent use.
type Repository struct {
	be   Backend
	key  *crypto.Key
	cfg  Config
	opts Options
	idx  *index

	cache    *cache // nil: none
	cacheErr error  // why there is no cache although Options.CacheDir asked for one

	compressor     *compress.Compressor
	metaCompressor *compress.Compressor // trees, index files: always zstd, they compress well

	packMu  [2]sync.Mutex
	packers [2]*packer

	uploadCh   chan *packer
	uploadWG   sync.WaitGroup
	uploadOnce sync.Once
	uploadErr  atomic.Pointer[error]

	doneMu     sync.Mutex
	donePacks  []indexPack // uploaded, not yet in an index file
	uploaded   atomic.Int64
	packsSaved atomic.Int64

	// indexSeen are the index files this handle has read or written: RefreshIndex loads
	// only others, unless one of these is gone (a prune rewrote the index).
	indexSeenMu sync.Mutex
	indexSeen   map[string]bool
}

func newRepository(b Backend, key *crypto.Key, cfg Config, opts Options) (*Repository, error) {
	opts.applyDefaults()
	codec, err := compress.ParseCodec(cfg.Compression)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", b.URL(), err)
	}
	c, err := compress.NewCompressor(codec)
	if err != nil {
		return nil, err
	}
	mc, err := compress.NewCompressor(compress.Zstd)
	if err != nil {
		return nil, err
	}
	if cfg.PackSize <= 0 {
		cfg.PackSize = DefaultPackSize
	}
	r := &Repository{be: b, key: key, cfg: cfg, opts: opts, idx: newIndex(), compressor: c, metaCompressor: mc}
	if opts.CacheDir != "" {
		r.cache, r.cacheErr = openCache(opts.CacheDir, cfg.ID, opts.CacheSize)
	}
	return r, nil
}

// LoadIndex reads the index; call it once after Open, before saving or loading blobs.
func (r *Repository) LoadIndex(ctx context.Context) error { return r.loadIndex(ctx) }

// Config returns the repository configuration.
func (r *Repository) Config() Config { return r.cfg }

// URL is the repository's display URL (no credentials).
func (r *Repository) URL() string { return r.be.URL() }

// Key returns the master key (for blob ids).
func (r *Repository) Key() *crypto.Key { return r.key }

// Backend returns the storage the repository lives in.
func (r *Repository) Backend() Backend { return r.be }

// Uploaded is the number of bytes this handle has stored in packs.
func (r *Repository) Uploaded() int64 { return r.uploaded.Load() }

// Has reports whether a blob is stored (or being stored by this handle).
func (r *Repository) Has(id crypto.ID) bool { return r.idx.has(id) }

// Lookup locates a stored blob.
func (r *Repository) Lookup(id crypto.ID) (Entry, bool) { return r.idx.lookup(id) }

// IndexCounts returns how many packs and blobs the index knows.
func (r *Repository) IndexCounts() (packs, blobs int) { return r.idx.count() }

// packer accumulates sealed blobs of one type.
type packer struct {
	typ     BlobType
	buf     []byte
	entries []indexBlob
}

// headerEntrySize is type ‖ codec ‖ length ‖ raw ‖ id.
const headerEntrySize = 1 + 1 + 4 + 4 + crypto.IDSize

func blobAD(t BlobType, c compress.Codec, id crypto.ID) []byte {
	ad := make([]byte, 0, 6+crypto.IDSize)
	ad = append(ad, "blob"...)
	ad = append(ad, byte(t), byte(c))
	return append(ad, id[:]...)
}

// SaveBlob stores plain as a blob of type t unless it is stored already; it returns the
// blob's id and whether this call stored it. The blob is durable only after Flush.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, plain []byte) (crypto.ID, bool, error) {
	id := r.key.BlobID(plain)
	saved, err := r.SaveBlobWithID(ctx, t, id, plain)
	return id, saved, err
}

// SaveBlobWithID is SaveBlob for a caller that computed the id already.
func (r *Repository) SaveBlobWithID(ctx context.Context, t BlobType, id crypto.ID, plain []byte) (bool, error) {
	if err := r.err(); err != nil {
		return false, err
	}
	if !r.idx.reserve(id) {
		return false, nil
	}
	comp := r.compressor
	if t == TreeBlob {
		comp = r.metaCompressor
	}
	buf := getBuf(len(plain) + crypto.Overhead + 64)
	out, codec := comp.Compress(buf[:0], plain)
	if codec == compress.None {
		out = plain
	}
	err := r.addToPack(ctx, t, indexBlob{ID: id, Raw: uint32(len(plain)), Codec: codec}, out)
	putBuf(buf)
	return true, err
}

// addToPack seals a (compressed) blob straight into the open pack of its type: no
// intermediate copy, so memory stays at the packs themselves.
func (r *Repository) addToPack(ctx context.Context, t BlobType, e indexBlob, compressed []byte) error {
	r.packMu[t].Lock()
	p := r.packers[t]
	if p == nil {
		p = &packer{typ: t}
		if t == DataBlob {
			p.buf = r.getPackBuf()
		} else {
			p.buf = make([]byte, 0, 256<<10) // tree packs are mostly small: let them grow
		}
		r.packers[t] = p
	}
	e.Offset = uint32(len(p.buf))
	p.buf = r.key.Seal(p.buf, compressed, blobAD(t, e.Codec, e.ID))
	e.Length = uint32(len(p.buf)) - e.Offset
	p.entries = append(p.entries, e)
	var full *packer
	if len(p.buf) >= r.cfg.PackSize {
		full, r.packers[t] = p, nil
	}
	r.packMu[t].Unlock()
	if full != nil {
		return r.upload(ctx, full)
	}
	return nil
}

// upload hands a finished pack to the upload workers (blocking while they are all busy,
// which bounds the memory of packs in flight).
func (r *Repository) upload(ctx context.Context, p *packer) error {
	r.uploadOnce.Do(func() {
		r.uploadCh = make(chan *packer)
		for i := 0; i < r.opts.Uploads; i++ {
			r.uploadWG.Add(1)
			go r.uploadWorker(ctx)
		}
	})
	select {
	case r.uploadCh <- p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Repository) uploadWorker(ctx context.Context) {
	defer r.uploadWG.Done()
	for p := range r.uploadCh {
		if r.err() != nil {
			continue // drain: the backup already failed
		}
		if err := r.storePack(ctx, p); err != nil {
			r.setErr(err)
		}
	}
}

// storePack seals the header, uploads the pack and records it for the next index file.
func (r *Repository) storePack(ctx context.Context, p *packer) error {
	hdr := make([]byte, 0, len(p.entries)*headerEntrySize)
	for _, e := range p.entries {
		hdr = append(hdr, byte(p.typ), byte(e.Codec))
		hdr = binary.LittleEndian.AppendUint32(hdr, e.Length)
		hdr = binary.LittleEndian.AppendUint32(hdr, e.Raw)
		hdr = append(hdr, e.ID[:]...)
	}
	sealedHdr := r.key.Seal(nil, hdr, []byte("pack-header"))
	data := append(p.buf, sealedHdr...)
	data = binary.LittleEndian.AppendUint32(data, uint32(len(sealedHdr)))
	id := crypto.Hash(data)
	if err := r.be.PutIfAbsent(ctx, PackKey(p.typ, id), data); err != nil && !isExists(err) {
		return fmt.Errorf("upload pack: %w", err)
	}
	if p.typ == DataBlob {
		r.putPackBuf(data)
	} else {
		r.cache.add(cacheTree, id, data)
	}
	r.uploaded.Add(int64(len(data)))
	ip := indexPack{ID: id, Type: p.typ.String(), Size: int64(len(data)), Blobs: p.entries}
	r.idx.addPack(ip)
	r.doneMu.Lock()
	r.donePacks = append(r.donePacks, ip)
	var toWrite []indexPack
	if len(r.donePacks) >= r.opts.IndexEvery {
		toWrite, r.donePacks = r.donePacks, nil
	}
	r.doneMu.Unlock()
	r.packsSaved.Add(1)
	return r.writeIndex(ctx, toWrite)
}

// Flush uploads the packs still open, waits for every upload, and writes the index of
// everything uploaded: after it returns, every saved blob is durable and findable.
func (r *Repository) Flush(ctx context.Context) error {
	for t := range r.packers {
		r.packMu[t].Lock()
		p := r.packers[t]
		r.packers[t] = nil
		r.packMu[t].Unlock()
		if p != nil && len(p.entries) > 0 {
			if err := r.upload(ctx, p); err != nil {
				return err
			}
		}
	}
	if r.uploadCh != nil {
		close(r.uploadCh)
		r.uploadWG.Wait()
		r.uploadCh = nil
		r.uploadOnce = sync.Once{}
	}
	if err := r.err(); err != nil {
		return err
	}
	r.doneMu.Lock()
	toWrite := r.donePacks
	r.donePacks = nil
	r.doneMu.Unlock()
	return r.writeIndex(ctx, toWrite)
}

func (r *Repository) err() error {
	if p := r.uploadErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (r *Repository) setErr(err error) { r.uploadErr.CompareAndSwap(nil, &err) }

// LoadBlob reads, authenticates, decompresses and verifies one blob, appending its
// plaintext to dst.
func (r *Repository) LoadBlob(ctx context.Context, id crypto.ID, dst []byte) ([]byte, error) {
	e, ok := r.idx.lookup(id)
	if !ok {
		return nil, fmt.Errorf("blob %s is not in the index", id.Short())
	}
	if e.Type == TreeBlob && r.cache != nil {
		if out, ok := r.loadCachedTreeBlob(ctx, id, e, dst); ok {
			return out, nil
		}
	}
	sealed, err := r.be.GetRange(ctx, PackKey(e.Type, e.Pack), int64(e.Offset), int64(e.Length))
	if e.Type == TreeBlob && r.cache != nil {
		r.cache.miss(len(sealed))
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s in pack %s: %w", id.Short(), e.Pack.Short(), err)
	}
	return r.DecodeBlob(id, e, sealed, dst)
}

// DecodeBlob turns the sealed bytes of a blob (as read from its pack) into its verified
// plaintext, appended to dst.
func (r *Repository) DecodeBlob(id crypto.ID, e Entry, sealed, dst []byte) ([]byte, error) {
	if len(sealed) != int(e.Length) {
		return nil, fmt.Errorf("blob %s in pack %s: read %d bytes, want %d", id.Short(), e.Pack.Short(), len(sealed), e.Length)
	}
	buf := getBuf(len(sealed))
	plain, err := r.key.Open(buf[:0], sealed, blobAD(e.Type, e.Codec, id))
	if err != nil {
		putBuf(buf)
		return nil, fmt.Errorf("blob %s in pack %s: %w", id.Short(), e.Pack.Short(), err)
	}
	var out []byte
	if e.Codec == compress.None {
		out = append(dst, plain...)
	} else {
		out, err = compress.Decompress(dst, plain, e.Codec, int(e.Raw))
	}
	putBuf(buf)
	if err != nil {
		return nil, fmt.Errorf("blob %s in pack %s: %w", id.Short(), e.Pack.Short(), err)
	}
	if got := out[len(dst):]; len(got) != int(e.Raw) || r.key.BlobID(got) != id {
		return nil, fmt.Errorf("blob %s in pack %s: content does not match its id (damaged)", id.Short(), e.Pack.Short())
	}
	return out, nil
}

func isExists(err error) bool { return errors.Is(err, store.ErrExists) }

// Pack buffers are reused: a backup allocates a few, not one per pack.
var packBufs sync.Pool

func (r *Repository) getPackBuf() []byte {
	want := r.cfg.PackSize + r.cfg.PackSize/8
	if b, ok := packBufs.Get().(*[]byte); ok && cap(*b) >= want {
		return (*b)[:0]
	}
	return make([]byte, 0, want)
}

func (r *Repository) putPackBuf(b []byte) {
	if cap(b) >= r.cfg.PackSize {
		packBufs.Put(&b)
	}
}

// Buffers for compression and decryption, by size class, so a backup of a million small
// files does not allocate a million buffers.
var bufPools [8]sync.Pool // 64 KiB << class, up to 8 MiB

func poolClass(n int) int {
	c, size := 0, 64<<10
	for size < n && c < len(bufPools)-1 {
		c++
		size <<= 1
	}
	if size < n {
		return -1
	}
	return c
}

func getBuf(n int) []byte {
	c := poolClass(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	if b, ok := bufPools[c].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, (64<<10)<<c)
}

func putBuf(b []byte) {
	c := poolClass(cap(b))
	if c < 0 || (64<<10)<<c != cap(b) {
		return
	}
	bufPools[c].Put(&b)
}
