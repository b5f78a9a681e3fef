package repo

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/compress"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crashpoint"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// Options tune a repository handle; the zero value gives the defaults.
type Options struct {
	// Uploads is how many packs upload at once (default 2): enough to keep a local disk or
	// a nearby object store busy while the CPUs chunk and compress. Each pack in flight
	// costs PackSize of memory, and one more fills meanwhile, except in a file://
	// repository, which writes its data packs into place as they fill (store.Spool).
	Uploads int
	// IndexEvery is how many packs an index file lists at most before it is written
	// (default 64): a killed backup leaves at most this many packs unindexed.
	IndexEvery int
	// IndexMaxBlobs is how many blobs an index file lists at most before it is written
	// (default 50,000, about 5 MB of JSON): a pack of small files holds thousands of
	// blobs, and 64 such packs in one file made a backup of a million files hold the
	// index of all of them, and encode it, in memory at once.
	IndexMaxBlobs int
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
	// LockHolders, when set, names this process in its locks and tells whether the
	// holder of a conflicting lock has ended (see LockHolders); nil: host and PID only.
	LockHolders LockHolders
}

func (o *Options) applyDefaults() {
	if o.Uploads <= 0 {
		o.Uploads = 2
	}
	if o.IndexEvery <= 0 {
		o.IndexEvery = 64
	}
	if o.IndexMaxBlobs <= 0 {
		o.IndexMaxBlobs = 50_000
	}
	if o.CacheDir != "" && o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
}

// Repository is an open repository. Its methods are safe for concurrent use.
type Repository struct {
	be      Backend
	key     *crypto.Key
	hashing *crypto.Hashing
	cfg     Config
	opts    Options
	idx     *index

	cache    *cache // nil: none
	cacheErr error  // why there is no cache although Options.CacheDir asked for one

	compressor     *compress.Compressor
	metaCompressor *compress.Compressor // trees, index files: always zstd, they compress well

	// slots are the open packs of each type: one tree pack, and one data pack, or one
	// per CPU (at most maxSpoolSlots) when data packs are spooled, so several workers
	// seal, hash and write at once.
	slots [2][]*packSlot
	// spool: data packs are written to the store as they fill (a file:// repository),
	// not kept in memory.
	spool bool
	// packBufs bounds the memory of data packs when they are not spooled: a free list of
	// at most Uploads+1 buffers (one filling, the others uploading).
	packBufs packBufPool

	uploadCh   chan *packer
	uploadWG   sync.WaitGroup
	uploadOnce sync.Once
	uploadErr  atomic.Pointer[error]

	doneMu     sync.Mutex
	donePacks  []indexPack // uploaded, not yet in an index file
	doneBlobs  int         // the blobs of donePacks
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
	hashing, err := cfg.hashing(key.MAC)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.URL(), err)
	}
	r := &Repository{be: b, key: key, hashing: hashing, cfg: cfg, opts: opts, idx: newIndex(), compressor: c, metaCompressor: mc}
	if sp, ok := b.(spoolBackend); ok && sp.CanSpool() {
		r.spool = true
	}
	nData := 1
	if r.spool {
		nData = min(runtime.GOMAXPROCS(0), maxSpoolSlots)
	}
	r.slots[TreeBlob] = []*packSlot{{}}
	for range nData {
		r.slots[DataBlob] = append(r.slots[DataBlob], &packSlot{})
	}
	r.packBufs.init(opts.Uploads+1, cfg.PackSize+cfg.PackSize/8)
	if opts.CacheDir != "" {
		r.cache, r.cacheErr = openCache(opts.CacheDir, cfg.ID, opts.CacheSize, hashing)
	}
	return r, nil
}

// LoadIndex reads the index; call it once after Open, before saving or loading blobs.
func (r *Repository) LoadIndex(ctx context.Context) error { return r.loadIndex(ctx) }

// Config returns the repository configuration.
func (r *Repository) Config() Config { return r.cfg }

// URL is the repository's display URL (no credentials).
func (r *Repository) URL() string { return r.be.URL() }

// Key returns the master key.
func (r *Repository) Key() *crypto.Key { return r.key }

// Hashing returns the hash functions of the repository's blob ids and object names.
func (r *Repository) Hashing() *crypto.Hashing { return r.hashing }

// BlobID is the id a blob with this plaintext has in the repository.
func (r *Repository) BlobID(plain []byte) crypto.ID { return r.hashing.BlobID(plain) }

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

// packer accumulates sealed blobs of one type: in memory (buf), or written to the store
// as they come (spool, with the running hash of the pack's bytes).
type packer struct {
	typ     BlobType
	buf     []byte
	spool   *store.Spool
	w       *bufio.Writer // over spool: small blobs go out in writes of spoolWrite bytes
	hash    hash.Hash
	size    int // bytes of blobs so far
	entries []indexBlob
}

// packSlot holds one open pack; its mutex orders the blobs written into it.
type packSlot struct {
	mu sync.Mutex
	p  *packer
}

// spoolWrite is the size of the writes into a spooled pack: most files are smaller
// than a chunk, and a write per blob was a system call per file.
const spoolWrite = 256 << 10

// maxSpoolSlots bounds the data packs open at once when packs are spooled: each is a
// temporary file, and at the end of a backup each is a pack smaller than PackSize.
const maxSpoolSlots = 4

// spoolBackend is a Backend that can write an object before its name is known
// (*store.Store over a file:// bucket, see store.Spool).
type spoolBackend interface {
	CanSpool() bool
	Spool(ctx context.Context) (*store.Spool, error)
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
	id := r.hashing.BlobID(plain)
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
	// One buffer takes the compressed blob after room for the nonce, so that a spooled
	// blob is sealed where it is, with no second buffer.
	buf := getBuf(crypto.Overhead + len(plain) + 64)
	out, codec := comp.Compress(buf[crypto.NonceSize:crypto.NonceSize], plain)
	if codec == compress.None {
		out = plain
	}
	e := indexBlob{ID: id, Raw: uint32(len(plain)), Codec: codec}
	ad := blobAD(t, codec, id)
	var err error
	if r.spool && t == DataBlob {
		var sealed []byte
		if codec != compress.None && len(out) > 0 && cap(buf) >= crypto.Overhead+len(out) && &out[0] == &buf[crypto.NonceSize : crypto.NonceSize+1][0] {
			sealed = r.key.SealInPlace(buf, len(out), ad)
		} else {
			sealed = r.key.Seal(buf[:0], out, ad) // raw: plain is the caller's
		}
		err = r.addToPack(ctx, t, e, sealed, nil)
	} else {
		err = r.addToPack(ctx, t, e, nil, func(dst []byte) []byte { return r.key.Seal(dst, out, ad) })
	}
	putBuf(buf)
	return true, err
}

// slot locks and returns an open pack slot of type t: a free one if there is one, so
// workers spooling into different packs do not wait for each other.
func (r *Repository) slot(t BlobType) *packSlot {
	slots := r.slots[t]
	if len(slots) == 1 {
		slots[0].mu.Lock()
		return slots[0]
	}
	for _, s := range slots {
		if s.mu.TryLock() {
			return s
		}
	}
	s := slots[rand.IntN(len(slots))]
	s.mu.Lock()
	return s
}

// addToPack adds a blob to an open pack of type t: either sealed already (a spooled
// pack, written to the store now), or sealed by seal straight into the pack's buffer,
// with no intermediate copy.
func (r *Repository) addToPack(ctx context.Context, t BlobType, e indexBlob, sealed []byte, seal func(dst []byte) []byte) error {
	s := r.slot(t)
	p := s.p
	if p == nil {
		var err error
		if p, err = r.newPacker(ctx, t); err != nil {
			s.mu.Unlock()
			return err
		}
		s.p = p
	}
	e.Offset = uint32(p.size)
	if p.spool != nil {
		if _, err := p.w.Write(sealed); err != nil {
			s.p = nil
			s.mu.Unlock()
			r.release(p)
			return fmt.Errorf("write pack: %w", err)
		}
		p.hash.Write(sealed)
		p.size += len(sealed)
	} else {
		p.buf = seal(p.buf)
		p.size = len(p.buf)
	}
	e.Length = uint32(p.size) - e.Offset
	p.entries = append(p.entries, e)
	var full *packer
	if p.size >= r.cfg.PackSize {
		full, s.p = p, nil
	}
	s.mu.Unlock()
	if t == DataBlob && full == nil {
		crashpoint.Hit(crashpoint.BackupPackPartial)
	}
	if full != nil {
		return r.upload(ctx, full)
	}
	return nil
}

// newPacker opens a pack of type t: a spool, or a buffer (for data packs, from the
// bounded free list: this waits while Uploads+1 packs are in memory).
func (r *Repository) newPacker(ctx context.Context, t BlobType) (*packer, error) {
	p := &packer{typ: t}
	switch {
	case t == TreeBlob:
		p.buf = make([]byte, 0, 256<<10) // tree packs are mostly small: let them grow
	case r.spool:
		sp, err := r.be.(spoolBackend).Spool(ctx)
		if err != nil {
			return nil, fmt.Errorf("write pack: %w", err)
		}
		p.spool, p.w, p.hash = sp, bufio.NewWriterSize(sp, spoolWrite), r.hashing.New()
	default:
		b, err := r.packBufs.get(ctx)
		if err != nil {
			return nil, err
		}
		p.buf = b
	}
	return p, nil
}

// release gives back what an unfinished pack holds: its buffer or its spool.
func (r *Repository) release(p *packer) {
	if p.spool != nil {
		p.spool.Abort()
		p.spool = nil
	} else if p.typ == DataBlob && p.buf != nil {
		r.packBufs.put(p.buf)
		p.buf = nil
	}
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
		r.release(p)
		return ctx.Err()
	}
}

func (r *Repository) uploadWorker(ctx context.Context) {
	defer r.uploadWG.Done()
	for p := range r.uploadCh {
		if r.err() != nil {
			r.release(p) // drain: the backup already failed
			continue
		}
		if err := r.storePack(ctx, p); err != nil {
			r.setErr(err)
		}
	}
}

// storePack seals the header, uploads the pack (or commits its spool) and records it
// for the next index file.
func (r *Repository) storePack(ctx context.Context, p *packer) error {
	hdr := make([]byte, 0, len(p.entries)*headerEntrySize)
	for _, e := range p.entries {
		hdr = append(hdr, byte(p.typ), byte(e.Codec))
		hdr = binary.LittleEndian.AppendUint32(hdr, e.Length)
		hdr = binary.LittleEndian.AppendUint32(hdr, e.Raw)
		hdr = append(hdr, e.ID[:]...)
	}
	sealedHdr := r.key.Seal(nil, hdr, []byte("pack-header"))
	sealedHdr = binary.LittleEndian.AppendUint32(sealedHdr, uint32(len(sealedHdr)))
	var id crypto.ID
	var size int64
	if p.spool != nil {
		sp := p.spool
		p.spool = nil
		p.hash.Write(sealedHdr)
		p.hash.Sum(id[:0])
		size = int64(p.size + len(sealedHdr))
		_, err := p.w.Write(sealedHdr)
		if err == nil {
			err = p.w.Flush()
		}
		if err != nil {
			sp.Abort()
			return fmt.Errorf("upload pack: %w", err)
		}
		if err := sp.Commit(ctx, PackKey(p.typ, id)); err != nil && !isExists(err) {
			return fmt.Errorf("upload pack: %w", err)
		}
	} else {
		data := append(p.buf, sealedHdr...)
		id = r.hashing.Sum(data)
		size = int64(len(data))
		err := r.be.PutIfAbsent(ctx, PackKey(p.typ, id), data)
		if p.typ == DataBlob {
			r.packBufs.put(data)
		} else if err == nil || isExists(err) {
			r.cache.add(cacheTree, id, data)
		}
		p.buf = nil
		if err != nil && !isExists(err) {
			return fmt.Errorf("upload pack: %w", err)
		}
	}
	crashpoint.Hit(crashpoint.BackupPackStored)
	r.uploaded.Add(size)
	ip := indexPack{ID: id, Type: p.typ.String(), Size: size, Blobs: p.entries}
	r.idx.addPack(ip)
	r.doneMu.Lock()
	r.donePacks = append(r.donePacks, ip)
	r.doneBlobs += len(ip.Blobs)
	var toWrite []indexPack
	if len(r.donePacks) >= r.opts.IndexEvery || r.doneBlobs >= r.opts.IndexMaxBlobs {
		toWrite, r.donePacks, r.doneBlobs = r.donePacks, nil, 0
	}
	r.doneMu.Unlock()
	r.packsSaved.Add(1)
	return r.writeIndex(ctx, toWrite)
}

// Flush uploads the packs still open, waits for every upload, and writes the index of
// everything uploaded: after it returns, every saved blob is durable and findable.
func (r *Repository) Flush(ctx context.Context) error {
	var err error
	for t := range r.slots {
		for _, s := range r.slots[t] {
			s.mu.Lock()
			p := s.p
			s.p = nil
			s.mu.Unlock()
			switch {
			case p == nil:
			case len(p.entries) == 0 || err != nil:
				r.release(p)
			default:
				err = r.upload(ctx, p)
			}
		}
	}
	if r.uploadCh != nil {
		close(r.uploadCh)
		r.uploadWG.Wait()
		r.uploadCh = nil
		r.uploadOnce = sync.Once{}
	}
	// The pack buffers go back to the garbage collector between backups.
	r.packBufs.drain()
	if err != nil {
		return err
	}
	if err := r.err(); err != nil {
		return err
	}
	r.doneMu.Lock()
	toWrite := r.donePacks
	r.donePacks, r.doneBlobs = nil, 0
	r.doneMu.Unlock()
	crashpoint.Hit(crashpoint.BackupPacksFlushed)
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
	if got := out[len(dst):]; len(got) != int(e.Raw) || r.hashing.BlobID(got) != id {
		return nil, fmt.Errorf("blob %s in pack %s: content does not match its id (damaged)", id.Short(), e.Pack.Short())
	}
	return out, nil
}

// OpenBlob is DecodeBlob for a caller that owns sealed and reuses its buffers: it
// decrypts sealed where it is (overwriting it) and returns the verified plaintext,
// which is a slice of sealed for a blob stored raw and otherwise decompressed into
// dst[:0] (reused when its capacity suffices). No buffer is allocated per blob.
func (r *Repository) OpenBlob(id crypto.ID, e Entry, sealed, dst []byte) ([]byte, error) {
	if len(sealed) != int(e.Length) {
		return nil, fmt.Errorf("blob %s in pack %s: read %d bytes, want %d", id.Short(), e.Pack.Short(), len(sealed), e.Length)
	}
	plain, err := r.key.OpenInPlace(sealed, blobAD(e.Type, e.Codec, id))
	if err != nil {
		return nil, fmt.Errorf("blob %s in pack %s: %w", id.Short(), e.Pack.Short(), err)
	}
	out := plain
	if e.Codec != compress.None {
		if out, err = compress.Decompress(dst[:0], plain, e.Codec, int(e.Raw)); err != nil {
			return nil, fmt.Errorf("blob %s in pack %s: %w", id.Short(), e.Pack.Short(), err)
		}
	}
	if len(out) != int(e.Raw) || r.hashing.BlobID(out) != id {
		return nil, fmt.Errorf("blob %s in pack %s: content does not match its id (damaged)", id.Short(), e.Pack.Short())
	}
	return out, nil
}

func isExists(err error) bool { return errors.Is(err, store.ErrExists) }

// packBufPool is a bounded free list of pack buffers: a backup allocates at most max
// of them, and get waits for one to come back when they are all in use. A sync.Pool
// would keep one per CPU, and keep allocating while uploads lag behind.
type packBufPool struct {
	mu      sync.Mutex
	max     int
	size    int           // capacity of a new buffer
	made    int           // buffers out or in free
	free    [][]byte      // buffers to reuse
	waiters chan struct{} // signalled when a buffer comes back
}

func (pp *packBufPool) init(max, size int) {
	pp.max, pp.size = max, size
	pp.waiters = make(chan struct{}, 1)
}

// get returns an empty buffer, waiting while max are in use.
func (pp *packBufPool) get(ctx context.Context) ([]byte, error) {
	for {
		pp.mu.Lock()
		if n := len(pp.free); n > 0 {
			b := pp.free[n-1]
			pp.free = pp.free[:n-1]
			pp.mu.Unlock()
			if n > 1 {
				pp.signal() // another waiter may take the next one
			}
			return b[:0], nil
		}
		if pp.made < pp.max {
			pp.made++
			pp.mu.Unlock()
			return make([]byte, 0, pp.size), nil
		}
		pp.mu.Unlock()
		select {
		case <-pp.waiters:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// put gives a buffer back (the one get returned, or what it grew into).
func (pp *packBufPool) put(b []byte) {
	pp.mu.Lock()
	pp.free = append(pp.free, b)
	pp.mu.Unlock()
	pp.signal()
}

func (pp *packBufPool) signal() {
	select {
	case pp.waiters <- struct{}{}:
	default:
	}
}

// drain drops the free buffers; buffers still out count until they come back.
func (pp *packBufPool) drain() {
	pp.mu.Lock()
	pp.made -= len(pp.free)
	pp.free = nil
	pp.mu.Unlock()
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
