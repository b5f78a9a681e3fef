package repo

import (
	"context"
	"sort"
	"strings"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// IndexedPack is one pack as the loaded index knows it, for check.
type IndexedPack struct {
	ID crypto.ID
	// Size is the pack's size as its index entry recorded it.
	Size int64
	// Blobs are the blobs the index finds in this pack. A blob stored twice is found in
	// the pack indexed first only, so a pack can list fewer blobs than it holds.
	Blobs []IndexedBlob
}

// IndexedBlob is one blob of an IndexedPack.
type IndexedBlob struct {
	ID crypto.ID
	Entry
}

// IndexedPacks returns every pack of the loaded index, ordered by id, each with the blobs
// the index locates in it.
func (r *Repository) IndexedPacks() []IndexedPack {
	x := r.idx
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]IndexedPack, len(x.packs))
	for i, id := range x.packs {
		out[i] = IndexedPack{ID: id, Size: x.sizes[i]}
	}
	for id, e := range x.blobs {
		out[e.pack].Blobs = append(out[e.pack].Blobs, IndexedBlob{ID: id,
			Entry: Entry{Pack: x.packs[e.pack], Type: e.typ, Codec: e.codec, Offset: e.offset, Length: e.length, Raw: e.raw}})
	}
	for i := range out {
		b := out[i].Blobs
		sort.Slice(b, func(i, j int) bool { return b[i].Offset < b[j].Offset })
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID.String() < out[j].ID.String() })
	return out
}

// StoredPack is a pack object found in storage.
type StoredPack struct {
	ID   crypto.ID
	Type BlobType
	Size int64
	Key  string
}

// StoredPacks lists the pack objects in storage, whether an index lists them or not.
// Objects under data/ and tree/ whose names are not pack ids are skipped: they are not
// ours to judge.
func (r *Repository) StoredPacks(ctx context.Context) ([]StoredPack, error) {
	var out []StoredPack
	for _, t := range []BlobType{DataBlob, TreeBlob} {
		err := r.be.List(ctx, t.packPrefix(), func(o store.Object) error {
			name := o.Key[strings.LastIndexByte(o.Key, '/')+1:]
			id, err := crypto.ParseID(name)
			if err != nil || o.Key != PackKey(t, id) {
				return nil
			}
			out = append(out, StoredPack{ID: id, Type: t, Size: o.Size, Key: o.Key})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReadPack downloads a whole pack object.
func (r *Repository) ReadPack(ctx context.Context, t BlobType, id crypto.ID) ([]byte, error) {
	return r.be.Get(ctx, PackKey(t, id))
}

// SnapshotIDs lists the names of the snapshot objects without reading them, so a check
// can load each on its own and report a damaged one without stopping.
func (r *Repository) SnapshotIDs(ctx context.Context) ([]crypto.ID, error) {
	var ids []crypto.ID
	err := r.be.List(ctx, snapPrefix, func(o store.Object) error {
		if id, err := crypto.ParseID(strings.TrimPrefix(o.Key, snapPrefix)); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	return ids, err
}
