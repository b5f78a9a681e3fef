package snapshot_test

// Repositories crafted, with the repository's real key, to attack restore: sizes and
// lengths that claim far more than is stored, index entries pointing past a pack's end,
// decompression bombs, names that leave the target. Restore must fail naming the file,
// write nothing outside its target, and allocate a bounded amount whatever the claims.
// TestHostileSnapshotsWriteNothingOutsideTarget (snapshot_test.go) covers the names
// that traverse; this file covers the rest.

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/compress"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// restoreAllocLimit bounds what one restore of a crafted snapshot may allocate in all:
// a bound on the total is a bound on the peak.
const restoreAllocLimit = 256 << 20

// hostileBlob is a data blob placed in a pack by hand, with the index entry a test wants.
type hostileBlob struct {
	id      crypto.ID
	codec   compress.Codec
	payload []byte // as stored before sealing (compressed or not)
	// entry overrides what the index says of the blob; zero fields keep the truth.
	offset, length, raw *uint32
}

func u32(v uint32) *uint32 { return &v }

// blobAD is the associated data a blob is sealed with (docs/repository-format.md).
func blobAD(t repo.BlobType, c compress.Codec, id crypto.ID) []byte {
	return append([]byte{'b', 'l', 'o', 'b', byte(t), byte(c)}, id[:]...)
}

// putHostilePack writes one data pack holding b and an index file listing it as b says.
func putHostilePack(t *testing.T, r *repo.Repository, st *store.Store, b hostileBlob, raw uint32) {
	t.Helper()
	sealed := r.Key().Seal(nil, b.payload, blobAD(repo.DataBlob, b.codec, b.id))
	hdr := []byte{byte(repo.DataBlob), byte(b.codec)}
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(sealed)))
	hdr = binary.LittleEndian.AppendUint32(hdr, raw)
	hdr = append(hdr, b.id[:]...)
	sealedHdr := r.Key().Seal(nil, hdr, []byte("pack-header"))
	pack := append(append(bytes.Clone(sealed), sealedHdr...), binary.LittleEndian.AppendUint32(nil, uint32(len(sealedHdr)))...)
	packID := r.Hashing().Sum(pack)
	if err := st.Put(ctx, repo.PackKey(repo.DataBlob, packID), pack); err != nil {
		t.Fatal(err)
	}
	off, length := uint32(0), uint32(len(sealed))
	for _, o := range []struct {
		dst *uint32
		src *uint32
	}{{&off, b.offset}, {&length, b.length}, {&raw, b.raw}} {
		if o.src != nil {
			*o.dst = *o.src
		}
	}
	doc, _ := json.Marshal(map[string]any{"version": 1, "packs": []any{map[string]any{
		"id": packID.String(), "type": "data", "size": len(pack),
		"blobs": []any{map[string]any{"id": b.id.String(), "offset": off, "length": length, "raw": raw, "codec": b.codec}},
	}}})
	plain := append([]byte{byte(compress.None)}, binary.LittleEndian.AppendUint32(nil, uint32(len(doc)))...)
	sealedIdx := r.Key().Seal(nil, append(plain, doc...), []byte("index"))
	if err := st.Put(ctx, "index/"+r.Hashing().Sum(sealedIdx).String(), sealedIdx); err != nil {
		t.Fatal(err)
	}
}

// saveRoot stores a root tree of the given raw JSON nodes and a snapshot of it.
func saveRoot(t *testing.T, r *repo.Repository, nodes string) *repo.Snapshot {
	t.Helper()
	root, _, err := r.SaveBlob(ctx, repo.TreeBlob, []byte(`{"nodes":[`+nodes+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sn := &repo.Snapshot{Time: time.Now(), Host: "evil", Paths: []string{"/x"}, Tree: root}
	if err := r.SaveSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	return sn
}

func fileNode(name string, size uint64, sparse bool, ids ...crypto.ID) string {
	n, _ := json.Marshal(name)
	var content []string
	for _, id := range ids {
		content = append(content, `"`+id.String()+`"`)
	}
	return fmt.Sprintf(`{"name":%s,"type":"file","mode":420,"size":%d,"sparse":%v,"content":[%s]}`, n, size, sparse, strings.Join(content, ","))
}

// listing is every path under dir with its type and size, for telling what a restore
// touched.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, _ := d.Info()
		if info != nil {
			out[p] = fmt.Sprintf("%v %d", info.Mode(), info.Size())
		}
		return nil
	})
	return out
}

// zstdLyingFrame compresses n zero bytes into one frame, then rewrites the content size
// its header states to claim, keeping the checksum of the real content.
func zstdLyingFrame(t *testing.T, n int, claim uint32) []byte {
	t.Helper()
	c, err := compress.NewCompressor(compress.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	frame, codec := c.Compress(nil, make([]byte, n))
	if codec != compress.Zstd {
		t.Fatalf("zeros were not compressed (codec %v)", codec)
	}
	fhd := frame[4]
	if fhd>>6 != 2 {
		t.Fatalf("frame header descriptor %#x: want a 4-byte content size field", fhd)
	}
	pos := 5
	if fhd&0x20 == 0 {
		pos++ // window descriptor
	}
	pos += []int{0, 1, 2, 4}[fhd&3] // dictionary id
	binary.LittleEndian.PutUint32(frame[pos:], claim)
	return frame
}

// TestHostileRepositoryRestore crafts one attack per case and restores it into a
// target inside a directory of its own: restore must fail with an error naming the
// file, leave that directory as it was outside the target, and allocate less than
// restoreAllocLimit.
func TestHostileRepositoryRestore(t *testing.T) {
	evil := []byte("evil")
	text := bytes.Repeat([]byte("restore me "), 400)
	tests := []struct {
		name string
		// build crafts the attack and returns the root tree's nodes; the file under
		// attack is called "victim".
		build func(t *testing.T, r *repo.Repository, st *store.Store) string
		// wantErr is a part of the error besides the path.
		wantErr string
	}{
		{"size of 1 PiB with one small chunk", func(t *testing.T, r *repo.Repository, st *store.Store) string {
			id, _, _ := r.SaveBlob(ctx, repo.DataBlob, evil)
			return fileNode("victim", 1<<50, false, id)
		}, "size says"},
		{"sparse file of 1 PiB with one small chunk", func(t *testing.T, r *repo.Repository, st *store.Store) string {
			id, _, _ := r.SaveBlob(ctx, repo.DataBlob, evil)
			return fileNode("victim", 1<<50, true, id, id)
		}, "size says"},
		{"size of 2^64-1 with no content", func(t *testing.T, r *repo.Repository, st *store.Store) string {
			return fileNode("victim", 1<<64-1, false)
		}, "size says"},
		{"content list of 300,000 chunks nobody stored", func(t *testing.T, r *repo.Repository, st *store.Store) string {
			ids := make([]crypto.ID, 300000)
			for i := range ids {
				binary.LittleEndian.PutUint64(ids[i][:], uint64(i)+1)
			}
			return fileNode("victim", 300000*4, false, ids...)
		}, "missing"},
		{"index entry 4 GiB long in a small pack", func(t *testing.T, r *repo.Repository, st *store.Store) string {
			id := r.BlobID(text)
			putHostilePack(t, r, st, hostileBlob{id: id, codec: compress.None, payload: text, length: u32(1<<32 - 64)}, uint32(len(text)))
			return fileNode("victim", uint64(len(text)), false, id)
		}, "reading"},
		{"index entry past the pack's end", func(t *testing.T, r *repo.Repository, st *store.Store) string {
			id := r.BlobID(text)
			putHostilePack(t, r, st, hostileBlob{id: id, codec: compress.None, payload: text, offset: u32(1 << 31)}, uint32(len(text)))
			return fileNode("victim", uint64(len(text)), false, id)
		}, "victim"},
		{"index entry whose offset plus length passes 2^32", func(t *testing.T, r *repo.Repository, st *store.Store) string {
			id := r.BlobID(text)
			putHostilePack(t, r, st, hostileBlob{id: id, codec: compress.None, payload: text, offset: u32(1<<32 - 16), length: u32(64)}, uint32(len(text)))
			return fileNode("victim", uint64(len(text)), false, id)
		}, "victim"},
		{"decompression bomb: 64 MiB of zeros in a frame claiming 4 KiB", func(t *testing.T, r *repo.Repository, st *store.Store) string {
			id := r.BlobID(make([]byte, 4096))
			putHostilePack(t, r, st, hostileBlob{id: id, codec: compress.Zstd, payload: zstdLyingFrame(t, 64<<20, 4096)}, 4096)
			return fileNode("victim", 4096, false, id)
		}, "zstd"},
		{"decompression bomb: 64 MiB of zeros, the index says 4 KiB", func(t *testing.T, r *repo.Repository, st *store.Store) string {
			id := r.BlobID(make([]byte, 4096))
			putHostilePack(t, r, st, hostileBlob{id: id, codec: compress.Zstd, payload: zstdLyingFrame(t, 64<<20, 64<<20)}, 4096)
			return fileNode("victim", 4096, false, id)
		}, "zstd"},
		{"uncompressed length of 3 GiB claimed", func(t *testing.T, r *repo.Repository, st *store.Store) string {
			id := r.BlobID(make([]byte, 4096))
			putHostilePack(t, r, st, hostileBlob{id: id, codec: compress.Zstd, payload: zstdLyingFrame(t, 1<<20, 3<<30)}, 3<<30)
			return fileNode("victim", 3<<30, false, id)
		}, "above"},
		{"blob stored under another blob's id", func(t *testing.T, r *repo.Repository, st *store.Store) string {
			id := r.BlobID(text)
			putHostilePack(t, r, st, hostileBlob{id: id, codec: compress.None, payload: evil, raw: u32(uint32(len(text)))}, uint32(len(evil)))
			return fileNode("victim", uint64(len(text)), false, id)
		}, "damaged"},
		{"blob sealed for another id", func(t *testing.T, r *repo.Repository, st *store.Store) string {
			id := r.BlobID(text)
			other := hostileBlob{id: r.BlobID(evil), codec: compress.None, payload: text}
			putHostilePack(t, r, st, other, uint32(len(text)))
			// the index entry names id, the seal names the other id
			sealed := r.Key().Seal(nil, text, blobAD(repo.DataBlob, compress.None, other.id))
			pack := append(sealed, 0, 0, 0, 0)
			packID := r.Hashing().Sum(pack)
			st.Put(ctx, repo.PackKey(repo.DataBlob, packID), pack)
			doc := fmt.Sprintf(`{"version":1,"packs":[{"id":"%s","type":"data","size":%d,"blobs":[{"id":"%s","offset":0,"length":%d,"raw":%d,"codec":0}]}]}`,
				packID, len(pack), id, len(sealed), len(text))
			plain := append([]byte{0}, binary.LittleEndian.AppendUint32(nil, uint32(len(doc)))...)
			sealedIdx := r.Key().Seal(nil, append(plain, doc...), []byte("index"))
			st.Put(ctx, "index/"+r.Hashing().Sum(sealedIdx).String(), sealedIdx)
			return fileNode("victim", uint64(len(text)), false, id)
		}, "verification failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, st := repotest.New(t, repo.InitOptions{})
			nodes := tt.build(t, r, st)
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			r = repotest.Reopen(t, st) // the crafted index files are read as a new process reads them
			sn := saveRoot(t, r, nodes)

			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			os.WriteFile(filepath.Join(base, "keep.txt"), []byte("keep"), 0o644)
			os.MkdirAll(outside, 0o755)
			target := filepath.Join(base, "target")
			before := listing(t, base)

			var err error
			runtime.GC()
			alloc := allocatedBy(func() {
				_, err = snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target})
			})
			t.Logf("restore allocated %.1f MiB: %v", float64(alloc)/(1<<20), err)
			if err == nil || !strings.Contains(err.Error(), "victim") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("restore: %v; want an error naming victim and saying %q", err, tt.wantErr)
			}
			if alloc > restoreAllocLimit {
				t.Fatalf("restore allocated %d MiB, more than %d", alloc>>20, restoreAllocLimit>>20)
			}
			after := listing(t, base)
			for p, v := range after {
				if p != target && !strings.HasPrefix(p, target+string(filepath.Separator)) && before[p] != v {
					t.Fatalf("restore changed %s outside its target (%s, was %q)", p, v, before[p])
				}
			}
			if fi, err := os.Stat(filepath.Join(target, "victim")); err == nil && fi.Size() > 64<<20 {
				t.Fatalf("restore left a file of %d bytes", fi.Size())
			}
		})
	}
}

// TestHostileNamesStayInsideTarget: names that are not single path components in
// name_raw (the bytes restore uses), and entries named like the target and its parent,
// never reach outside the target.
func TestHostileNamesStayInsideTarget(t *testing.T) {
	raw := func(name, rawName string) string {
		return `{"name":"` + name + `","name_raw":"` + base64.StdEncoding.EncodeToString([]byte(rawName)) + `","type":"file","mode":420,"size":4,"content":["FILEID"]}`
	}
	for _, tt := range []struct {
		name, nodes string
		refused     bool // restore must fail (the name is invalid)
	}{
		{"name_raw with ..", raw("ok", "../outside/pwned"), true},
		{"name_raw absolute", raw("ok", "/tmp/pwned"), true},
		{"name_raw with NUL", raw("ok", "a\x00b"), true},
		{"name_raw is ..", raw("ok", ".."), true},
		{"directory named like the target, symlink named like its parent", `{"name":"base","type":"symlink","mode":134218239,"linktarget":".."},{"name":"target","type":"dir","mode":2147484141,"subtree":"SUBID"}`, false},
		{"symlink to the parent, a file beside it", `{"name":"a","type":"symlink","mode":134218239,"linktarget":"../outside"},{"name":"b","type":"file","mode":420,"size":4,"content":["FILEID"]}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			target := filepath.Join(base, "target")
			os.MkdirAll(outside, 0o755)
			before := listing(t, base)
			r, _ := repotest.New(t, repo.InitOptions{})
			sn := craft(t, r, tt.nodes)
			_, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target})
			if tt.refused != (err != nil) {
				t.Fatalf("restore: %v, want refused %v", err, tt.refused)
			}
			for p, v := range listing(t, base) {
				if p != target && !strings.HasPrefix(p, target+string(filepath.Separator)) && before[p] != v {
					t.Fatalf("restore changed %s outside its target", p)
				}
			}
		})
	}
}

func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
