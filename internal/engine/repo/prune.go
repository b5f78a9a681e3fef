package repo

// The low-level steps of prune (docs/repository-format.md "Prune"). The orchestration,
// which needs the tree walk of internal/engine/snapshot (an importer of this package),
// is internal/engine/maintenance.Prune. None of these methods takes a lock: the caller
// holds the exclusive one.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crashpoint"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// PackBlob is one blob of a pack, as an index file lists it.
type PackBlob struct {
	ID    crypto.ID
	Entry Entry
}

// PackInfo is one pack as the index files list it, every blob included (the in-memory
// index keeps one location per blob; prune needs all of them).
type PackInfo struct {
	ID    crypto.ID
	Type  BlobType
	Size  int64
	Blobs []PackBlob
}

// PackObject is a pack object in the store.
type PackObject struct {
	ID   crypto.ID
	Type BlobType
	Size int64
}

// PackListing is what the index files say and what the store holds.
type PackListing struct {
	IndexFiles []string                 // keys of the index files read
	Indexed    []PackInfo               // packs listed by the index files, each once
	Stored     map[crypto.ID]PackObject // packs in the store
}

// ListPacks reads every index file in full and lists the packs in the store.
func (r *Repository) ListPacks(ctx context.Context) (*PackListing, error) {
	out := &PackListing{Stored: map[crypto.ID]PackObject{}}
	names, err := r.indexNames(ctx)
	if err != nil {
		return nil, err
	}
	out.IndexFiles = names
	files := make([]indexFile, len(out.IndexFiles))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, name := range out.IndexFiles {
		g.Go(func() error {
			f, err := r.decodeIndexFile(gctx, name)
			files[i] = f
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	seen := map[crypto.ID]bool{}
	for _, f := range files {
		for _, p := range f.Packs {
			if seen[p.ID] {
				continue // listed again by an index written after a crash: same content
			}
			seen[p.ID] = true
			t := TreeBlob
			if p.Type == "data" {
				t = DataBlob
			}
			pi := PackInfo{ID: p.ID, Type: t, Size: p.Size, Blobs: make([]PackBlob, 0, len(p.Blobs))}
			for _, b := range p.Blobs {
				pi.Blobs = append(pi.Blobs, PackBlob{ID: b.ID, Entry: Entry{Pack: p.ID, Type: t, Codec: b.Codec,
					Offset: b.Offset, Length: b.Length, Raw: b.Raw}})
			}
			out.Indexed = append(out.Indexed, pi)
		}
	}
	for _, t := range []BlobType{DataBlob, TreeBlob} {
		if err := r.be.List(ctx, t.packPrefix(), func(o store.Object) error {
			name := o.Key[strings.LastIndex(o.Key, "/")+1:]
			id, err := crypto.ParseID(name)
			if err != nil || o.Key != PackKey(t, id) {
				return nil // not ours
			}
			out.Stored[id] = PackObject{ID: id, Type: t, Size: o.Size}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Repack copies the blobs (all of type t) out of their packs into new packs, returning the
// new packs; no index lists them yet. Each pack is read once, whole, and each blob is
// authenticated and its id checked before it is copied: repacking must not carry damage
// into a pack that looks new. The sealed bytes are copied as they are (a blob's seal
// does not depend on its pack), so nothing is compressed or encrypted again.
func (r *Repository) Repack(ctx context.Context, t BlobType, blobs []PackBlob) ([]PackInfo, error) {
	byPack := map[crypto.ID][]PackBlob{}
	var order []crypto.ID
	for _, b := range blobs {
		if b.Entry.Type != t {
			return nil, fmt.Errorf("repack: blob %s is %s, not %s", b.ID.Short(), b.Entry.Type, t)
		}
		if _, ok := byPack[b.Entry.Pack]; !ok {
			order = append(order, b.Entry.Pack)
		}
		byPack[b.Entry.Pack] = append(byPack[b.Entry.Pack], b)
	}
	var out []PackInfo
	var buf []byte
	var entries []indexBlob
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		pi, err := r.writePack(ctx, t, buf, entries)
		if err != nil {
			return err
		}
		out = append(out, pi)
		buf, entries = nil, nil
		return nil
	}
	for _, pack := range order {
		data, err := r.be.Get(ctx, PackKey(t, pack))
		if err != nil {
			return out, fmt.Errorf("repack: read pack %s: %w", pack.Short(), err)
		}
		for _, b := range byPack[pack] {
			end := int(b.Entry.Offset) + int(b.Entry.Length)
			if end > len(data) {
				return out, fmt.Errorf("repack: blob %s lies beyond the end of pack %s (damaged)", b.ID.Short(), pack.Short())
			}
			sealed := data[b.Entry.Offset:end]
			if _, err := r.DecodeBlob(b.ID, b.Entry, sealed, nil); err != nil {
				return out, fmt.Errorf("repack: %w", err)
			}
			entries = append(entries, indexBlob{ID: b.ID, Offset: uint32(len(buf)), Length: b.Entry.Length, Raw: b.Entry.Raw, Codec: b.Entry.Codec})
			buf = append(buf, sealed...)
			if len(buf) >= r.cfg.PackSize {
				if err := flush(); err != nil {
					return out, err
				}
			}
		}
	}
	return out, flush()
}

// writePack appends the sealed header to blobs (sealed blobs back to back, as entries
// place them) and uploads the pack. It is storePack without the bookkeeping of a backup
// (the pending index file): prune writes its own index once every pack is in place.
func (r *Repository) writePack(ctx context.Context, t BlobType, blobs []byte, entries []indexBlob) (PackInfo, error) {
	hdr := make([]byte, 0, len(entries)*headerEntrySize)
	for _, e := range entries {
		hdr = append(hdr, byte(t), byte(e.Codec))
		hdr = binary.LittleEndian.AppendUint32(hdr, e.Length)
		hdr = binary.LittleEndian.AppendUint32(hdr, e.Raw)
		hdr = append(hdr, e.ID[:]...)
	}
	sealedHdr := r.key.Seal(nil, hdr, []byte("pack-header"))
	data := append(blobs, sealedHdr...)
	data = binary.LittleEndian.AppendUint32(data, uint32(len(sealedHdr)))
	id := r.hashing.Sum(data)
	if err := r.be.PutIfAbsent(ctx, PackKey(t, id), data); err != nil && !isExists(err) {
		return PackInfo{}, fmt.Errorf("upload pack: %w", err)
	}
	crashpoint.Hit(crashpoint.PrunePackRepacked)
	if t == TreeBlob {
		r.cache.add(cacheTree, id, data)
	}
	pi := PackInfo{ID: id, Type: t, Size: int64(len(data)), Blobs: make([]PackBlob, 0, len(entries))}
	for _, e := range entries {
		pi.Blobs = append(pi.Blobs, PackBlob{ID: e.ID, Entry: Entry{Pack: id, Type: t, Codec: e.Codec, Offset: e.Offset, Length: e.Length, Raw: e.Raw}})
	}
	return pi, nil
}

// pruneIndexPacks is how many packs one index file written by prune lists: large enough
// that a big repository has few index files to load, small enough that one stays a few
// MiB (a pack of 16 MiB holds ~16 data blobs, ~1.3 KiB of JSON).
const pruneIndexPacks = 2048

// WriteIndexFiles writes index files that list packs (in files of pruneIndexPacks), each
// naming the index files it supersedes, and returns their keys. The old files stay: the
// caller deletes them once every new one is written.
func (r *Repository) WriteIndexFiles(ctx context.Context, packs []PackInfo, supersedes []string) ([]string, error) {
	sup := make([]string, 0, len(supersedes))
	for _, s := range supersedes {
		sup = append(sup, strings.TrimPrefix(s, indexPrefix))
	}
	var names []string
	for start := 0; start < len(packs); start += pruneIndexPacks {
		f := indexFile{Version: 1, Supersedes: sup}
		for _, p := range packs[start:min(start+pruneIndexPacks, len(packs))] {
			ip := indexPack{ID: p.ID, Type: p.Type.String(), Size: p.Size, Blobs: make([]indexBlob, 0, len(p.Blobs))}
			for _, b := range p.Blobs {
				ip.Blobs = append(ip.Blobs, indexBlob{ID: b.ID, Offset: b.Entry.Offset, Length: b.Entry.Length, Raw: b.Entry.Raw, Codec: b.Entry.Codec})
			}
			f.Packs = append(f.Packs, ip)
		}
		plain, err := json.Marshal(f)
		if err != nil {
			return names, err
		}
		sealed := r.key.Seal(nil, r.encodeCompressed(plain), []byte("index"))
		id := r.hashing.Sum(sealed)
		if err := r.be.PutIfAbsent(ctx, indexPrefix+id.String(), sealed); err != nil && !isExists(err) {
			return names, fmt.Errorf("write index: %w", err)
		}
		r.cache.add(cacheIndex, id, sealed)
		names = append(names, indexPrefix+id.String())
	}
	return names, nil
}

// DeleteIndexFiles deletes index files by key (as ListPacks returns them), and their
// cached copies. One already gone counts as deleted: a prune that crashed may have
// deleted it.
func (r *Repository) DeleteIndexFiles(ctx context.Context, keys []string) error {
	return r.deleteAll(ctx, keys, func(k string) {
		crashpoint.Hit(crashpoint.PruneIndexDeleted)
		if id, err := crypto.ParseID(strings.TrimPrefix(k, indexPrefix)); err == nil {
			r.cache.remove(cacheIndex, id)
		}
	})
}

// DeletePacks deletes packs, and the cached copies of tree packs. One already gone counts
// as deleted.
func (r *Repository) DeletePacks(ctx context.Context, packs []PackObject) error {
	keys := make([]string, len(packs))
	byKey := make(map[string]PackObject, len(packs))
	for i, p := range packs {
		keys[i] = PackKey(p.Type, p.ID)
		byKey[keys[i]] = p
	}
	return r.deleteAll(ctx, keys, func(k string) {
		crashpoint.Hit(crashpoint.PrunePackDeleted)
		if p := byKey[k]; p.Type == TreeBlob {
			r.cache.remove(cacheTree, p.ID)
		}
	})
}

// deleteAll deletes keys a few at a time (an object store answers each delete in tens of
// milliseconds), calling done for each one deleted or already gone.
func (r *Repository) deleteAll(ctx context.Context, keys []string, done func(string)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, k := range keys {
		g.Go(func() error {
			if err := r.be.Delete(gctx, k); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("delete %s: %w", k, err)
			}
			done(k)
			return nil
		})
	}
	return g.Wait()
}

// ReloadIndex replaces the in-memory index with what the index files say now: prune calls
// it after taking its lock (a backup may have added index files since the handle was
// opened) and after it rewrote the index, so the handle reads only packs that exist.
func (r *Repository) ReloadIndex(ctx context.Context) error {
	r.resetIndex()
	return r.loadIndex(ctx)
}

// remove deletes the cached copy of kind/id, if there is one.
func (c *cache) remove(kind string, id crypto.ID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(c.key(kind, id))
}
