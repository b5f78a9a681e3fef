package snapshot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
)

// treeStrings are names, users and link targets that encoding/json writes differently
// from their bytes, and some it does not.
var treeStrings = []string{
	"a.txt", "", "ünïcødé ✓", "with space", `quote"d`, `back\slash`, "<html>&amp;", "tab\there",
	"nl\n", "\x01ctl", "\x7f", "bad\xffutf8", "line\u2028sep", "para\u2029sep", "emoji 😀", "\u00e9",
	"/abs/target", "../rel", "\x00nul",
}

func randomNode(rnd *rand.Rand) *Node {
	pick := func() string { return treeStrings[rnd.IntN(len(treeStrings))] }
	zones := []*time.Location{time.UTC, time.FixedZone("", 3600), time.FixedZone("X", -5*3600-30*60), time.Local}
	tm := func() time.Time {
		switch rnd.IntN(5) {
		case 0:
			return time.Time{}
		case 1:
			return time.Unix(rnd.Int64N(1<<32), 0).In(zones[rnd.IntN(len(zones))])
		default:
			return time.Unix(rnd.Int64N(1<<32), rnd.Int64N(1e9)).In(zones[rnd.IntN(len(zones))])
		}
	}
	maybe := func(v uint64) uint64 {
		if rnd.IntN(3) == 0 {
			return 0
		}
		return v
	}
	n := &Node{
		Name: pick(), Type: []NodeType{TypeFile, TypeDir, TypeSymlink, TypeFIFO, "odd<type>"}[rnd.IntN(5)],
		Mode: fs.FileMode(rnd.Uint32()), UID: rnd.Uint32(), GID: uint32(maybe(uint64(rnd.Uint32()))),
		Size: maybe(rnd.Uint64()), ModTime: tm(), AccessTime: tm(), ChangeTime: tm(),
		Inode: maybe(rnd.Uint64()), DeviceID: maybe(uint64(rnd.IntN(100))), Links: maybe(uint64(rnd.IntN(5))),
		Rdev: maybe(rnd.Uint64()), Sparse: rnd.IntN(4) == 0,
	}
	if rnd.IntN(3) == 0 {
		n.User, n.Group = pick(), pick()
	}
	if rnd.IntN(4) == 0 {
		n.LinkTarget = pick()
	}
	if rnd.IntN(5) == 0 {
		n.NameRaw = []byte(pick() + "\xfe")
	}
	switch rnd.IntN(4) {
	case 0:
		n.Content = []crypto.ID{}
	case 1, 2:
		for range rnd.IntN(4) + 1 {
			var id crypto.ID
			for i := range id {
				id[i] = byte(rnd.Uint32())
			}
			n.Content = append(n.Content, id)
		}
	}
	if rnd.IntN(3) == 0 {
		var id crypto.ID
		id[0], id[31] = byte(rnd.Uint32()), 0xab
		n.Subtree = &id
	}
	return n
}

// TestAppendTreeIsJSONMarshal: appendTree writes the bytes json.Marshal writes, so tree
// blob ids do not depend on which of them wrote a tree.
func TestAppendTreeIsJSONMarshal(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		var nodes []*Node
		if i%50 != 0 {
			nodes = []*Node{}
			for range rnd.IntN(5) + i%2 {
				nodes = append(nodes, randomNode(rnd))
			}
		}
		want, wantErr := json.Marshal(Tree{Nodes: nodes})
		got, err := appendTree(nil, nodes)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("tree %d: appendTree error %v, json.Marshal error %v", i, err, wantErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("tree %d:\nappendTree   %s\njson.Marshal %s", i, got, want)
		}
		checkParse(t, want)
	}
	// A time json.Marshal refuses is refused.
	_, err := appendTree(nil, []*Node{{Name: "x", ModTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}})
	if err == nil {
		t.Fatal("appendTree wrote a year past 9999")
	}
}

// checkParse: when parseTree takes a document, it reads what json.Unmarshal reads.
func checkParse(t *testing.T, data []byte) {
	t.Helper()
	var want Tree
	wantErr := json.Unmarshal(data, &want)
	got, err := parseTree(data)
	if err == errSlowPath {
		return
	}
	if err != nil {
		t.Fatalf("parseTree(%q): %v (not errSlowPath)", data, err)
	}
	if wantErr != nil {
		t.Fatalf("parseTree took %q, which json.Unmarshal refuses: %v", data, wantErr)
	}
	if g, w := fmt.Sprintf("%#v", nodeValues(got.Nodes)), fmt.Sprintf("%#v", nodeValues(want.Nodes)); g != w {
		t.Fatalf("parseTree(%q):\n got %s\nwant %s", data, g, w)
	}
}

// nodeValues is what a tree says, in a form %#v prints completely (times as their
// instant and offset, since two parses of one offset give distinct Locations).
func nodeValues(nodes []*Node) any {
	type val struct {
		N                Node
		M, A, C, Sub     string
		NilTree, NilCont bool
	}
	if nodes == nil {
		return nil
	}
	out := []val{}
	for _, n := range nodes {
		v := val{N: *n, NilCont: n.Content == nil}
		if n.Subtree != nil {
			v.Sub, v.N.Subtree = n.Subtree.String(), nil
		}
		for i, tm := range []*time.Time{&v.N.ModTime, &v.N.AccessTime, &v.N.ChangeTime} {
			name, off := tm.Zone()
			s := fmt.Sprintf("%d %s %d", tm.UnixNano(), name, off)
			if tm.IsZero() {
				s = "zero"
			}
			*[]*string{&v.M, &v.A, &v.C}[i] = s
			*tm = time.Time{}
		}
		out = append(out, v)
	}
	return out
}

// TestParseTreeShapes: the fast path takes what appendTree writes and leaves every other
// spelling to json.Unmarshal.
func TestParseTreeShapes(t *testing.T) {
	id := `"` + string(bytes.Repeat([]byte("ab"), 32)) + `"`
	base := `{"name":"a","type":"file","mode":420,"uid":1,"gid":2,"mtime":"2026-01-02T03:04:05.123456789Z","atime":"2026-01-02T03:04:05Z","ctime":"2026-01-02T03:04:05+01:00"`
	for _, tt := range []struct {
		doc  string
		fast bool
	}{
		{`{"nodes":null}`, true},
		{`{"nodes":[]}`, true},
		{`{"nodes":[` + base + `}]}`, true},
		{`{"nodes":[` + base + `,"content":[` + id + `,` + id + `],"size":5}]}`, true},
		{`{"nodes":[` + base + `,"content":[]}]}`, true},
		{`{"nodes":[` + base + `,"subtree":` + id + `,"sparse":true}]}`, true},
		{`{"nodes":[` + base + `,"name_raw":"YWL+"}]}`, true},
		{`{"nodes":[` + base + `}` + `,` + base + `}]}`, true},
		// every other spelling goes to encoding/json (which takes or refuses it)
		{` {"nodes":null}`, false},
		{`{"nodes" :[]}`, false},
		{`{"nodes":[]} `, false},
		{`{"nodes":[],"extra":1}`, false},
		{`{"Nodes":[]}`, false},
		{`{"nodes":[{}]}`, false},
		{`{"nodes":[` + base + `,"Name":"b"}]}`, false},
		{`{"nodes":[` + base + `,"name":"b"}]}`, false},
		{`{"nodes":[` + base + `,"other":"b"}]}`, false},
		{`{"nodes":[` + base + `,"size":1.0}]}`, false},
		{`{"nodes":[` + base + `,"size":-1}]}`, false},
		{`{"nodes":[` + base + `,"size":01}]}`, false},
		{`{"nodes":[` + base + `,"size":1e3}]}`, false},
		{`{"nodes":[` + base + `,"size":18446744073709551616}]}`, false},
		{`{"nodes":[` + base + `,"uid":4294967296}]}`, false},
		{`{"nodes":[` + base + `,"linktarget":"a\"b"}]}`, false},
		{`{"nodes":[` + base + `,"linktarget":"a\u003cb"}]}`, false},
		{`{"nodes":[` + base + `,"linktarget":"a` + "\xff" + `b"}]}`, false},
		{`{"nodes":[` + base + `,"linktarget":null}]}`, false},
		{`{"nodes":[` + base + `,"content":null}]}`, false},
		{`{"nodes":[` + base + `,"content":["abc"]}]}`, false},
		{`{"nodes":[` + base + `,"subtree":null}]}`, false},
		{`{"nodes":[` + base + `,"sparse":1}]}`, false},
		{`{"nodes":[` + base + `,"mtime":"2026-01-02 03:04:05Z"}]}`, false},
		{`{"nodes":[` + base + `,"name_raw":"!!"}]}`, false},
		{`{"nodes":[` + base + `}`, false},
		{`{"nodes":[` + base + `]}`, false},
	} {
		_, err := parseTree([]byte(tt.doc))
		if fast := err == nil; fast != tt.fast {
			t.Errorf("parseTree(%s): err %v, want fast path %v", tt.doc, err, tt.fast)
		}
		checkParse(t, []byte(tt.doc))
	}
}

// FuzzParseTree: whatever parseTree takes, json.Unmarshal reads the same way.
func FuzzParseTree(f *testing.F) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		b, _ := json.Marshal(Tree{Nodes: []*Node{randomNode(rnd), randomNode(rnd)}})
		f.Add(b)
	}
	f.Add([]byte(`{"nodes":null}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, data) })
}

func BenchmarkTreeJSON(b *testing.B) {
	rnd := rand.New(rand.NewPCG(5, 6))
	nodes := make([]*Node, 20000)
	for i := range nodes {
		n := &Node{Name: fmt.Sprintf("file-%05d.log", i), Type: TypeFile, Mode: 0o644, UID: 1000, GID: 1000,
			Size: rnd.Uint64N(1 << 16), ModTime: time.Unix(1.7e9+int64(i), 123456789).UTC(), Inode: rnd.Uint64N(1 << 30),
			DeviceID: 2049, Links: 1, Content: []crypto.ID{{byte(i), byte(i >> 8), 1}}}
		n.AccessTime, n.ChangeTime = n.ModTime, n.ModTime
		nodes[i] = n
	}
	data, _ := json.Marshal(Tree{Nodes: nodes})
	b.Run("encode/encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			json.Marshal(Tree{Nodes: nodes})
		}
	})
	b.Run("encode/appendTree", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			appendTree(nil, nodes)
		}
	})
	b.Run("decode/encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var t Tree
			json.Unmarshal(data, &t)
		}
	})
	b.Run("decode/parseTree", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := parseTree(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDecodeTreeOrderAndDuplicates: a tree not in name order (never written so) is
// sorted, and a name listed twice is refused wherever the two entries are.
func TestDecodeTreeOrderAndDuplicates(t *testing.T) {
	node := func(name string) string {
		return `{"name":"` + name + `","type":"file","mode":420,"uid":0,"gid":0,"mtime":"2026-01-02T03:04:05Z","atime":"2026-01-02T03:04:05Z","ctime":"2026-01-02T03:04:05Z"}`
	}
	tr, err := decodeTree([]byte(`{"nodes":[` + node("c") + "," + node("a") + "," + node("b") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{tr.Nodes[0].Name, tr.Nodes[1].Name, tr.Nodes[2].Name}; fmt.Sprint(got) != "[a b c]" {
		t.Fatalf("order %v, want [a b c]", got)
	}
	if _, err := decodeTree([]byte(`{"nodes":[` + node("b") + "," + node("a") + "," + node("b") + `]}`)); err == nil {
		t.Fatal("a name listed twice was accepted")
	}
}
