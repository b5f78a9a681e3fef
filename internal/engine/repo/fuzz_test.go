package repo_test

// Fuzz tests of the repository's decoders, each through the path a program takes when it
// reads the object from a store: key files (plain JSON, opened with the password), the
// sealed config, sealed index files (decrypt, decompress, parse) and sealed snapshots.
// Anyone who can write to the bucket can put anything there; with the repository's key
// (a stolen password), anything that authenticates. Neither may crash a reader or make
// it allocate what a claimed size says. The seeds are the objects a real repository
// holds, plus testdata/fuzz/<FuzzName>; `test/soak/fuzz.sh` runs each for minutes.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/chunker"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/compress"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// fuzzAllocLimit bounds what one decode may allocate: far above what any object of the
// seeds needs, far below what a claimed size of gigabytes would cost.
const fuzzAllocLimit = 64 << 20

// fuzzRepo is a repository whose objects a fuzz test replaces one at a time.
type fuzzRepo struct {
	key     *crypto.Key
	hashing *crypto.Hashing
	objects map[string][]byte // every object of the repository, by key
	keyName string            // keys/<id> of its key file
}

// newFuzzRepo creates a repository with one backup's worth of objects: a pack of each
// type, an index file and a snapshot.
func newFuzzRepo(f *testing.F) *fuzzRepo {
	f.Helper()
	r, st := repotest.New(f, repo.InitOptions{PackSize: 64 << 10})
	data, _, err := r.SaveBlob(ctx, repo.DataBlob, bytes.Repeat([]byte("fuzz data "), 1000))
	if err != nil {
		f.Fatal(err)
	}
	tree, _, err := r.SaveBlob(ctx, repo.TreeBlob, []byte(`{"nodes":[{"name":"a","type":"file","mode":420,"size":10000,"content":["`+data.String()+`"]}]}`))
	if err != nil {
		f.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		f.Fatal(err)
	}
	parent := crypto.ID{1}
	sn := &repo.Snapshot{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Host: "host-0", Paths: []string{"/data"}, Tags: []string{"daily"},
		Target: &repo.Target{Kind: "Deployment", Name: "web", Namespace: "shop"}, Session: "s-1", Parent: &parent, Tree: tree,
		Program: "stash-job test", Stats: repo.Stats{TotalFiles: 1, NewFiles: 1, Size: 10000, Uploaded: 300, ProcessingTime: "0m0s"}}
	if err := r.SaveSnapshot(ctx, sn); err != nil {
		f.Fatal(err)
	}
	fr := &fuzzRepo{key: r.Key(), hashing: r.Hashing(), objects: map[string][]byte{}}
	err = st.List(ctx, "", func(o store.Object) error {
		b, err := st.Get(ctx, o.Key)
		fr.objects[o.Key] = b
		if strings.HasPrefix(o.Key, "keys/") {
			fr.keyName = o.Key
		}
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	return fr
}

// objectsUnder returns the objects whose keys start with prefix.
func (fr *fuzzRepo) objectsUnder(prefix string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range fr.objects {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

// store returns a fresh in-memory store holding the repository with replace applied
// (a nil value removes the object).
func (fr *fuzzRepo) store(t *testing.T, replace map[string][]byte) *store.Store {
	st := store.NewFromBucket(memblob.OpenBucket(nil), "mem://fuzz", store.Options{MaxAttempts: 1})
	t.Cleanup(func() { st.Close() })
	for k, v := range fr.objects {
		if _, ok := replace[k]; !ok {
			if err := st.Put(ctx, k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k, v := range replace {
		if v != nil {
			if err := st.Put(ctx, k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st
}

// watchdog crashes the fuzz worker when one input runs longer than d: the fuzzer then
// keeps the input as a failure, where a plain hang would only stall the run. Call the
// returned function when the input is done.
func watchdog(what string, input any, d time.Duration) (stop func() bool) {
	return time.AfterFunc(d, func() { panic(fmt.Sprintf("%s: no result after %v for input %q", what, d, input)) }).Stop
}

// allocated runs f and returns the bytes it allocated (the whole process's, which a
// fuzz worker runs one input at a time).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// FuzzOpenKeyFile: a key file is the one object a program reads unauthenticated, and
// its KDF parameters say how much memory and time the derivation takes. Whatever it
// says, Open fails with an error (or opens the real master key, when what changed does
// not matter) and allocates a bounded amount.
func FuzzOpenKeyFile(f *testing.F) {
	fr := newFuzzRepo(f)
	good := fr.objects[fr.keyName]
	f.Add(good)
	var kf map[string]any
	if err := json.Unmarshal(good, &kf); err != nil {
		f.Fatal(err)
	}
	for _, params := range [][3]float64{{1 << 24, 64, 1}, {1 << 20, 1 << 10, 1}, {1 << 10, 8, 1 << 29}, {1 << 30, 1, 1}, {1023, 8, 1}, {1 << 10, 0, 1}, {-1, -1, -1}} {
		kf["N"], kf["r"], kf["p"] = params[0], params[1], params[2]
		b, _ := json.Marshal(kf)
		f.Add(b)
	}
	f.Add([]byte(`{"kdf":"scrypt","N":1024,"r":8,"p":1,"salt":"","data":""}`))
	f.Add([]byte(`{"kdf":"scrypt","N":1024,"r":8,"p":1,"salt":null,"data":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, keyFile []byte) {
		defer watchdog("FuzzOpenKeyFile", keyFile, 2*time.Minute)()
		st := fr.store(t, map[string][]byte{fr.keyName: keyFile})
		var r *repo.Repository
		var err error
		start := time.Now()
		n := allocated(func() { r, err = repo.Open(ctx, st, []byte(repotest.Password), repo.Options{}) })
		// The most a key file may ask for is 128 MiB and 32 times the default work
		// (crypto.KDFParams.Validate); without the bound, gigabytes and hours.
		if n > 160<<20 {
			t.Fatalf("opening with key file %q allocated %d MiB", keyFile, n>>20)
		}
		if d := time.Since(start); d > time.Minute {
			t.Fatalf("opening with key file %q took %v", keyFile, d)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "mem://fuzz") {
				t.Fatalf("error does not name the repository: %v", err)
			}
			return
		}
		if r.Key().Encrypt != fr.key.Encrypt || r.Key().MAC != fr.key.MAC {
			t.Fatalf("key file %q opened a master key that is not the repository's", keyFile)
		}
	})
}

// FuzzOpenConfig: a sealed config that authenticates (its writer had the key) but says
// anything. Open either refuses it, or returns a repository whose parameters a backup can
// use: a chunker that validates, a codec it knows, a pack size that bounds its memory. A
// config that opens survives a JSON round trip, and takes a blob and a flush.
func FuzzOpenConfig(f *testing.F) {
	fr := newFuzzRepo(f)
	good, err := fr.key.Open(nil, fr.objects["config"], []byte("config"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	var cfg map[string]any
	if err := json.Unmarshal(good, &cfg); err != nil {
		f.Fatal(err)
	}
	for _, change := range []map[string]any{
		{"packSize": 1 << 62}, {"packSize": -5}, {"packSize": 0}, {"packSize": 1},
		{"chunker": map[string]any{"MinSize": 1, "AvgSize": 3, "MaxSize": 1 << 40}},
		{"chunker": map[string]any{}}, {"compression": "lz4"}, {"version": 99}, {"chunkerAlgorithm": "other"},
		{"chunkerSeed": "short"}, {"hash": "md5"}, {"hash": ""}, {"version": 1, "hash": "blake3"}, {"version": 1, "hash": nil},
	} {
		c := map[string]any{}
		for k, v := range cfg {
			c[k] = v
		}
		for k, v := range change {
			c[k] = v
		}
		b, _ := json.Marshal(c)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, plain []byte) {
		defer watchdog("FuzzOpenConfig", plain, 10*time.Second)()
		st := fr.store(t, map[string][]byte{"config": fr.key.Seal(nil, plain, []byte("config"))})
		var r *repo.Repository
		var err error
		if n := allocated(func() { r, err = repo.Open(ctx, st, []byte(repotest.Password), repo.Options{}) }); n > fuzzAllocLimit {
			t.Fatalf("opening config %q allocated %d MiB", plain, n>>20)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "mem://fuzz") {
				t.Fatalf("error does not name the repository: %v", err)
			}
			return
		}
		c := r.Config()
		if c.ChunkerAlgorithm != chunker.Algorithm || c.Version > repo.FormatVersion {
			t.Fatalf("config %q opened with algorithm %q, version %d", plain, c.ChunkerAlgorithm, c.Version)
		}
		if err := c.Chunker.Validate(); err != nil {
			t.Fatalf("config %q opened with chunker parameters a backup cannot use: %v", plain, err)
		}
		if want := map[bool]string{true: crypto.SHA256, false: c.Hash}[c.Version <= 1]; r.Hashing().Name() != want || (c.Version <= 1) != (c.Hash == "") {
			t.Fatalf("config %q (version %d, hash %q) opened with hash %q", plain, c.Version, c.Hash, r.Hashing().Name())
		}
		if _, err := compress.ParseCodec(c.Compression); err != nil {
			t.Fatalf("config %q opened with compression %q: %v", plain, c.Compression, err)
		}
		if c.PackSize <= 0 || c.PackSize > repo.MaxPackSize {
			t.Fatalf("config %q opened with pack size %d", plain, c.PackSize)
		}
		again, _ := json.Marshal(c)
		var back repo.Config
		if err := json.Unmarshal(again, &back); err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("config %+v does not survive a JSON round trip: %+v, %v", c, back, err)
		}
		if n := allocated(func() {
			if _, _, err := r.SaveBlob(ctx, repo.DataBlob, []byte("after a fuzzed config")); err == nil {
				err = r.Flush(ctx)
			}
		}); n > uint64(3*c.PackSize)+fuzzAllocLimit {
			t.Fatalf("a blob saved with config %q allocated %d MiB", plain, n>>20)
		}
	})
}

// indexDocument is the plaintext of a sealed index file: codec ‖ claimed length ‖ data.
func indexDocument(codec compress.Codec, claimed uint32, data []byte) []byte {
	b := []byte{byte(codec)}
	b = binary.LittleEndian.AppendUint32(b, claimed)
	return append(b, data...)
}

// FuzzLoadIndex: an index file that authenticates but says anything, through the
// whole read path: decompression with a claimed length, the JSON parsers, the in-memory
// index, and reads of the blobs it locates (offsets and lengths past a pack's end, or
// of gigabytes). Loading either fails naming the index file, or every blob it locates
// is read back verified or refused with an error, within a bounded allocation.
//
// With wrap set, doc is JSON that the test compresses with codec (claiming its length
// plus delta); otherwise doc is the plaintext as it stands.
func FuzzLoadIndex(f *testing.F) {
	fr := newFuzzRepo(f)
	var name string
	var good []byte
	for k, v := range fr.objectsUnder("index/") {
		name = k
		plain, err := fr.key.Open(nil, v, []byte("index"))
		if err != nil {
			f.Fatal(err)
		}
		if good, err = compress.Decompress(nil, plain[5:], compress.Codec(plain[0]), int(binary.LittleEndian.Uint32(plain[1:]))); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(good, true, uint8(compress.Zstd), int64(0))
	f.Add(good, true, uint8(compress.S2), int64(0))
	f.Add(good, true, uint8(compress.None), int64(0))
	f.Add(good, true, uint8(compress.Zstd), int64(1<<31))
	f.Add(good, true, uint8(compress.None), int64(-1))
	f.Add(bytes.Replace(good, []byte(`"offset":0`), []byte(`"offset":4294967295`), 1), true, uint8(compress.Zstd), int64(0))
	f.Add(bytes.Replace(good, []byte(`"length":`), []byte(`"length":4000000`), 1), true, uint8(compress.Zstd), int64(0))
	f.Add(bytes.Replace(good, []byte(`"raw":`), []byte(`"raw":4000`), 1), true, uint8(compress.Zstd), int64(0))
	f.Add(bytes.Replace(good, []byte(`"type":"data"`), []byte(`"type":"tree"`), 1), true, uint8(compress.Zstd), int64(0))
	f.Add(indexDocument(compress.Zstd, 1<<31, []byte{0x28, 0xb5, 0x2f, 0xfd}), false, uint8(0), int64(0))
	f.Fuzz(func(t *testing.T, doc []byte, wrap bool, codec uint8, delta int64) {
		defer watchdog("FuzzLoadIndex", doc, 10*time.Second)()
		plain := doc
		if wrap {
			c := compress.Codec(codec % 3)
			data := doc
			if c != compress.None {
				comp, err := compress.NewCompressor(c)
				if err != nil {
					t.Fatal(err)
				}
				if data, c = comp.Compress(nil, doc); c == compress.None {
					data = doc
				}
			}
			plain = indexDocument(c, uint32(int64(len(doc))+delta), data)
		}
		st := fr.store(t, map[string][]byte{name: fr.key.Seal(nil, plain, []byte("index"))})
		r, err := repo.Open(ctx, st, []byte(repotest.Password), repo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if n := allocated(func() { err = r.LoadIndex(ctx) }); n > fuzzAllocLimit+uint64(8*len(doc)) {
			t.Fatalf("loading index %q allocated %d MiB", doc, n>>20)
		}
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error does not name the index file %s: %v", name, err)
			}
			return
		}
		for _, p := range r.IndexedPacks() {
			for _, b := range p.Blobs {
				var out []byte
				if n := allocated(func() { out, err = r.LoadBlob(ctx, b.ID, nil) }); n > fuzzAllocLimit {
					t.Fatalf("loading blob %+v allocated %d MiB", b, n>>20)
				}
				if err == nil && (len(out) != int(b.Raw) || r.BlobID(out) != b.ID) {
					t.Fatalf("blob %+v loaded without an error, but is not the blob", b)
				}
			}
		}
	})
}

// FuzzLoadSnapshot: a snapshot that authenticates but says anything. Loading fails with
// an error naming it, or gives a snapshot that survives a JSON round trip and that the
// listing, filters and retention policies take.
func FuzzLoadSnapshot(f *testing.F) {
	fr := newFuzzRepo(f)
	for _, v := range fr.objectsUnder("snapshots/") {
		plain, err := fr.key.Open(nil, v, []byte("snapshot"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(plain)
		f.Add(bytes.Replace(plain, []byte(`"time":"2026-01-02T03:04:05.000000006Z"`), []byte(`"time":"0001-01-01T00:00:00Z"`), 1))
		f.Add(bytes.Replace(plain, []byte(`"paths":["/data"]`), []byte(`"paths":null,"tags":[null]`), 1))
		f.Add(bytes.Replace(plain, []byte(`"parent":"`), []byte(`"parent":null,"x":"`), 1))
	}
	f.Add([]byte(`{"version":1,"time":"9999-12-31T23:59:59+14:00","tree":"` + strings.Repeat("0", 64) + `"}`))
	f.Fuzz(func(t *testing.T, plain []byte) {
		defer watchdog("FuzzLoadSnapshot", plain, 10*time.Second)()
		sealed := fr.key.Seal(nil, plain, []byte("snapshot"))
		id := fr.hashing.Sum(sealed)
		replace := map[string][]byte{"snapshots/" + id.String(): sealed}
		for k := range fr.objectsUnder("snapshots/") {
			replace[k] = nil
		}
		st := fr.store(t, replace)
		r, err := repo.Open(ctx, st, []byte(repotest.Password), repo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			if !strings.Contains(err.Error(), id.Short()) {
				t.Fatalf("error does not name snapshot %s: %v", id.Short(), err)
			}
			if list, lerr := r.Snapshots(ctx); lerr == nil && len(list) != 0 {
				t.Fatalf("a snapshot that does not load is listed: %+v", list[0])
			}
			return
		}
		if sn.ID != id {
			t.Fatalf("snapshot loaded with id %s, stored as %s", sn.ID.Short(), id.Short())
		}
		again, err := json.Marshal(sn)
		if err != nil {
			// a time json.Unmarshal took but cannot write (a year past 9999 with an offset)
			return
		}
		var back repo.Snapshot
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("snapshot %s does not read back: %v", again, err)
		}
		back.ID = sn.ID
		if twice, _ := json.Marshal(&back); !bytes.Equal(twice, again) {
			t.Fatalf("snapshot round trip:\n%s\n%s", again, twice)
		}
		_ = sn.Listing()
		repo.Filter{Host: "host-0", Path: "/data", Tags: []string{"daily"}}.Match(sn)
		keep, remove, _ := repo.ApplyPolicy([]*repo.Snapshot{sn, &back}, repo.RetentionPolicy{Last: 1, Hourly: 1, Daily: 1, Weekly: 1, Monthly: 1, Yearly: 1, Tags: [][]string{{"daily"}}})
		if len(keep)+len(remove) != 2 || len(keep) == 0 {
			t.Fatalf("retention of two snapshots kept %d and removed %d", len(keep), len(remove))
		}
		for _, list := range [][]*repo.Snapshot{{sn}} {
			if g := repo.GroupSnapshots(list); len(g) != 1 {
				t.Fatalf("one snapshot in %d groups", len(g))
			}
		}
	})
}
