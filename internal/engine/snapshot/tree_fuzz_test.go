package snapshot

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
)

// FuzzDecodeTree: decodeTree is what restore, check and the next backup act on. Whatever
// a tree blob says, it is refused, or every entry it returns has a single path
// component for a name, a known type, a subtree if it is a directory, and a name no
// other entry has, in order; and what it returns encodes to a tree that decodes to the
// same entries. (FuzzParseTree checks the fast parser against encoding/json.)
func FuzzDecodeTree(f *testing.F) {
	rnd := rand.New(rand.NewPCG(7, 8))
	for range 20 {
		b, _ := json.Marshal(Tree{Nodes: []*Node{randomNode(rnd), randomNode(rnd), randomNode(rnd)}})
		f.Add(b)
	}
	file := `{"name":"a","type":"file","mode":420,"uid":0,"gid":0,"mtime":"2026-01-02T03:04:05Z","atime":"2026-01-02T03:04:05Z","ctime":"2026-01-02T03:04:05Z"}`
	f.Add([]byte(`{"nodes":[` + file + `]}`))
	f.Add([]byte(`{"nodes":[` + file + `,` + file + `]}`))
	f.Add([]byte(`{"nodes":[{"name":"..","type":"file"},{"name":"a/b","type":"dir"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"x","name_raw":"Li4=","type":"file"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"d","type":"dir","subtree":null}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := decodeTree(data)
		if err != nil {
			return
		}
		for i, n := range tr.Nodes {
			name := n.FileName()
			if err := ValidName(name); err != nil {
				t.Fatalf("decodeTree(%q) returned entry %q: %v", data, name, err)
			}
			switch n.Type {
			case TypeFile, TypeDir, TypeSymlink, TypeFIFO, TypeCharDev, TypeBlockDev:
			default:
				t.Fatalf("decodeTree(%q) returned type %q", data, n.Type)
			}
			if n.Type == TypeDir && n.Subtree == nil {
				t.Fatalf("decodeTree(%q) returned directory %q without a subtree", data, name)
			}
			if i > 0 && tr.Nodes[i-1].FileName() >= name {
				t.Fatalf("decodeTree(%q): %q after %q", data, name, tr.Nodes[i-1].FileName())
			}
		}
		enc, err := encodeTree(tr)
		if err != nil {
			return // a time encoding/json cannot write (a year past 9999), read from a damaged tree
		}
		back, err := decodeTree(enc)
		if err != nil {
			t.Fatalf("tree %q decoded from %q does not decode: %v", enc, data, err)
		}
		if g, w := fmt.Sprintf("%#v", nodeValues(back.Nodes)), fmt.Sprintf("%#v", nodeValues(tr.Nodes)); g != w {
			t.Fatalf("round trip of %q:\n got %s\nwant %s", data, g, w)
		}
	})
}
