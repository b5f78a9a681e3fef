package repo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/compress"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
)

func randomIndexFile(rnd *rand.Rand) indexFile {
	id := func() (id crypto.ID) {
		for i := range id {
			id[i] = byte(rnd.Uint32())
		}
		return id
	}
	f := indexFile{Version: rnd.IntN(3)}
	if rnd.IntN(10) > 0 {
		f.Packs = []indexPack{}
		for range rnd.IntN(4) {
			p := indexPack{ID: id(), Type: []string{"data", "tree"}[rnd.IntN(2)], Size: rnd.Int64()}
			switch rnd.IntN(5) {
			case 0: // nil blobs
			case 1:
				p.Blobs = []indexBlob{}
			default:
				for range rnd.IntN(6) + 1 {
					p.Blobs = append(p.Blobs, indexBlob{ID: id(), Offset: rnd.Uint32(), Length: rnd.Uint32(),
						Raw: rnd.Uint32(), Codec: compress.Codec(rnd.IntN(256))})
				}
			}
			f.Packs = append(f.Packs, p)
		}
	}
	for range rnd.IntN(3) {
		f.Supersedes = append(f.Supersedes, id().String())
	}
	return f
}

// checkIndexParse: when parseIndexFile takes a document, it reads what json.Unmarshal
// reads.
func checkIndexParse(t *testing.T, data []byte) {
	t.Helper()
	var want indexFile
	wantErr := json.Unmarshal(data, &want)
	got, err := parseIndexFile(data)
	if err == errIndexSlowPath {
		return
	}
	if err != nil {
		t.Fatalf("parseIndexFile(%q): %v (not errIndexSlowPath)", data, err)
	}
	if wantErr != nil {
		t.Fatalf("parseIndexFile took %q, which json.Unmarshal refuses: %v", data, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseIndexFile(%q):\n got %+v\nwant %+v", data, got, want)
	}
}

// TestParseIndexFileIsJSON: whatever json.Marshal writes for an index file, the fast
// parser reads, and reads the same.
func TestParseIndexFileIsJSON(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		data, err := json.Marshal(randomIndexFile(rnd))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseIndexFile(data); err != nil {
			t.Fatalf("file %d: %v on %s", i, err, data)
		}
		checkIndexParse(t, data)
	}
}

// TestParseIndexFileShapes: other spellings go to encoding/json.
func TestParseIndexFileShapes(t *testing.T) {
	id := strings.Repeat("ab", 32)
	blob := `{"id":"` + id + `","offset":1,"length":2,"raw":3,"codec":1}`
	pack := func(blobs string) string { return `{"id":"` + id + `","type":"data","size":10,"blobs":` + blobs + `}` }
	for _, tt := range []struct {
		doc  string
		fast bool
	}{
		{`{"version":1,"packs":null}`, true},
		{`{"version":1,"packs":[]}`, true},
		{`{"version":1,"packs":[` + pack(`[`+blob+`,`+blob+`]`) + `]}`, true},
		{`{"version":1,"packs":[` + pack(`null`) + `],"supersedes":["x","y"]}`, true},
		{`{"version":1,"packs":[` + pack(`[]`) + `]}`, true},
		{`{"version":1, "packs":[]}`, false},
		{`{"packs":[],"version":1}`, false},
		{`{"version":-1,"packs":[]}`, false},
		{`{"version":1,"packs":[],"extra":1}`, false},
		{`{"version":1,"packs":[` + pack(`[`+strings.Replace(blob, `"codec":1`, `"codec":256`, 1)+`]`) + `]}`, false},
		{`{"version":1,"packs":[` + pack(`[`+strings.Replace(blob, `"raw":3`, `"raw":4294967296`, 1)+`]`) + `]}`, false},
		{`{"version":1,"packs":[` + pack(`[`+strings.Replace(blob, `"raw":3`, `"raw":3.0`, 1)+`]`) + `]}`, false},
		{`{"version":1,"packs":[` + pack(`[`+strings.Replace(blob, id, id[:62], 1)+`]`) + `]}`, false},
		{`{"version":1,"packs":[` + strings.Replace(pack(`[]`), `"data"`, `"d\u0061ta"`, 1) + `]}`, false},
		{`{"version":1,"packs":[]} `, false},
	} {
		_, err := parseIndexFile([]byte(tt.doc))
		if fast := err == nil; fast != tt.fast {
			t.Errorf("parseIndexFile(%s): err %v, want fast path %v", tt.doc, err, tt.fast)
		}
		checkIndexParse(t, []byte(tt.doc))
	}
}

func FuzzParseIndexFile(f *testing.F) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 10 {
		b, _ := json.Marshal(randomIndexFile(rnd))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkIndexParse(t, data) })
}

func BenchmarkIndexJSON(b *testing.B) {
	rnd := rand.New(rand.NewPCG(5, 6))
	f := indexFile{Version: 1}
	for p := range 64 {
		ip := indexPack{ID: crypto.ID{byte(p)}, Type: "data", Size: 16 << 20}
		for i := range 300 {
			ip.Blobs = append(ip.Blobs, indexBlob{ID: crypto.ID{byte(p), byte(i), byte(rnd.Uint32())}, Offset: uint32(i) << 16,
				Length: 60000, Raw: 200000, Codec: compress.Zstd})
		}
		f.Packs = append(f.Packs, ip)
	}
	data, _ := json.Marshal(f)
	b.Run(fmt.Sprintf("encoding-json/%d-blobs", 64*300), func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var g indexFile
			if err := json.Unmarshal(data, &g); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("parseIndexFile/%d-blobs", 64*300), func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := parseIndexFile(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
