package snapshot

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/jsonscan"
)

// Trees are JSON (docs/repository-format.md, "Trees"), and encoding/json's reflection
// was a third of an unchanged backup and of a restore's planning: a directory of 20,000
// files is 8 MB of JSON. appendTree and parseTree handle the JSON that encoding/json
// writes for a Tree directly.
//
// appendTree writes exactly the bytes json.Marshal writes (so tree blob ids do not
// change); a value it does not write the common way (a string that needs escaping, a
// time out of RFC 3339's range) goes through encoding/json itself.
//
// parseTree accepts only that shape: known keys in any order, each once, strings
// without escapes, plain non-negative integers. Anything else (whitespace, escapes,
// other keys, nulls where values are expected, numbers written otherwise) it leaves to
// json.Unmarshal, so what a tree means never depends on which parser read it.

// appendTree appends the JSON of {"nodes": nodes} as json.Marshal writes it.
func appendTree(b []byte, nodes []*Node) ([]byte, error) {
	if nodes == nil {
		return append(b, `{"nodes":null}`...), nil
	}
	b = append(b, `{"nodes":[`...)
	for i, n := range nodes {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendNode(b, n); err != nil {
			return nil, err
		}
	}
	return append(b, "]}"...), nil
}

func appendNode(b []byte, n *Node) ([]byte, error) {
	b = append(b, `{"name":`...)
	b = appendString(b, n.Name)
	if len(n.NameRaw) > 0 {
		b = append(b, `,"name_raw":"`...)
		b = base64.StdEncoding.AppendEncode(b, n.NameRaw)
		b = append(b, '"')
	}
	b = append(b, `,"type":`...)
	b = appendString(b, string(n.Type))
	b = append(b, `,"mode":`...)
	b = strconv.AppendUint(b, uint64(n.Mode), 10)
	b = append(b, `,"uid":`...)
	b = strconv.AppendUint(b, uint64(n.UID), 10)
	b = append(b, `,"gid":`...)
	b = strconv.AppendUint(b, uint64(n.GID), 10)
	if n.User != "" {
		b = append(b, `,"user":`...)
		b = appendString(b, n.User)
	}
	if n.Group != "" {
		b = append(b, `,"group":`...)
		b = appendString(b, n.Group)
	}
	b = appendUintField(b, `,"size":`, n.Size)
	var err error
	for i, t := range [3]*time.Time{&n.ModTime, &n.AccessTime, &n.ChangeTime} {
		b = append(b, timeKeys[i]...)
		// AppendText is MarshalJSON without the quotes: RFC 3339 with nanoseconds, and
		// an error for a year outside 0-9999.
		if b, err = t.AppendText(b); err != nil {
			return nil, err
		}
		b = append(b, '"')
	}
	b = appendUintField(b, `,"inode":`, n.Inode)
	b = appendUintField(b, `,"devid":`, n.DeviceID)
	b = appendUintField(b, `,"links":`, n.Links)
	if n.LinkTarget != "" {
		b = append(b, `,"linktarget":`...)
		b = appendString(b, n.LinkTarget)
	}
	b = appendUintField(b, `,"rdev":`, n.Rdev)
	if n.Sparse {
		b = append(b, `,"sparse":true`...)
	}
	if len(n.Content) > 0 {
		b = append(b, `,"content":[`...)
		for i, id := range n.Content {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = hex.AppendEncode(b, id[:])
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	if n.Subtree != nil {
		b = append(b, `,"subtree":"`...)
		b = hex.AppendEncode(b, n.Subtree[:])
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

var timeKeys = [3]string{`,"mtime":"`, `,"atime":"`, `,"ctime":"`}

func appendUintField(b []byte, key string, v uint64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendUint(append(b, key...), v, 10)
}

// appendString appends s as a JSON string the way encoding/json does (which escapes
// <, > and & too, and replaces invalid UTF-8): s itself when nothing needs escaping,
// which is nearly always.
func appendString(b []byte, s string) []byte {
	if plainString(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// plainString reports whether s is valid UTF-8 that encoding/json writes unescaped.
func plainString(s string) bool {
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return ascii || utf8.ValidString(s) && !strings.ContainsRune(s, '\u2028') && !strings.ContainsRune(s, '\u2029')
}

// errSlowPath sends a tree to json.Unmarshal.
var errSlowPath = errors.New("tree JSON not in the common shape")

// parseTree decodes what appendTree writes, and returns errSlowPath for anything else.
func parseTree(data []byte) (*Tree, error) {
	p := treeParser{jsonscan.Scanner{B: data}}
	if !p.Lit(`{"nodes":`) {
		return nil, errSlowPath
	}
	t := &Tree{}
	if p.Lit("null") {
		if !p.Lit("}") || p.I != len(p.B) {
			return nil, errSlowPath
		}
		return t, nil
	}
	if !p.Lit("[") {
		return nil, errSlowPath
	}
	if p.Lit("]") {
		t.Nodes = []*Node{}
	} else {
		// One node per 300 bytes or so: allocate the nodes in one go.
		t.Nodes = make([]*Node, 0, len(data)/300+1)
		nodes := make([]Node, 0, cap(t.Nodes))
		for {
			if len(nodes) == cap(nodes) {
				nodes = make([]Node, 0, cap(nodes))
			}
			nodes = nodes[:len(nodes)+1]
			n := &nodes[len(nodes)-1]
			if err := p.node(n); err != nil {
				return nil, err
			}
			t.Nodes = append(t.Nodes, n)
			if p.Lit("]") {
				break
			}
			if !p.Lit(",") {
				return nil, errSlowPath
			}
		}
	}
	if !p.Lit("}") || p.I != len(p.B) {
		return nil, errSlowPath
	}
	return t, nil
}

type treeParser struct{ jsonscan.Scanner }

// Node keys, as bits of the set of keys seen.
const (
	keyName = 1 << iota
	keyNameRaw
	keyType
	keyMode
	keyUID
	keyGID
	keyUser
	keyGroup
	keySize
	keyMtime
	keyAtime
	keyCtime
	keyInode
	keyDevid
	keyLinks
	keyLinkTarget
	keyRdev
	keySparse
	keyContent
	keySubtree
)

// nodeKey returns the bit of a key, 0 for a key that is not one of ours.
func nodeKey(k []byte) int {
	switch string(k) {
	case "name":
		return keyName
	case "name_raw":
		return keyNameRaw
	case "type":
		return keyType
	case "mode":
		return keyMode
	case "uid":
		return keyUID
	case "gid":
		return keyGID
	case "user":
		return keyUser
	case "group":
		return keyGroup
	case "size":
		return keySize
	case "mtime":
		return keyMtime
	case "atime":
		return keyAtime
	case "ctime":
		return keyCtime
	case "inode":
		return keyInode
	case "devid":
		return keyDevid
	case "links":
		return keyLinks
	case "linktarget":
		return keyLinkTarget
	case "rdev":
		return keyRdev
	case "sparse":
		return keySparse
	case "content":
		return keyContent
	case "subtree":
		return keySubtree
	}
	return 0
}

func (p *treeParser) node(n *Node) error {
	if !p.Lit("{") {
		return errSlowPath
	}
	seen := 0
	for first := true; ; first = false {
		if p.Lit("}") {
			if first {
				return errSlowPath // {} is valid, but never written
			}
			return nil
		}
		if !first && !p.Lit(",") {
			return errSlowPath
		}
		k, ok := p.Str()
		if !ok || !p.Lit(":") {
			return errSlowPath
		}
		key := nodeKey(k)
		if key == 0 || seen&key != 0 {
			return errSlowPath // unknown (or differently cased) keys, repeated keys
		}
		seen |= key
		if !p.value(n, key) {
			return errSlowPath
		}
	}
}

// value consumes the value of key into n.
func (p *treeParser) value(n *Node, key int) bool {
	var ok bool
	switch key {
	case keyName, keyType, keyUser, keyGroup, keyLinkTarget:
		var s []byte
		if s, ok = p.Str(); ok {
			v := string(s)
			switch key {
			case keyName:
				n.Name = v
			case keyType:
				n.Type = NodeType(v)
			case keyUser:
				n.User = v
			case keyGroup:
				n.Group = v
			case keyLinkTarget:
				n.LinkTarget = v
			}
		}
	case keyNameRaw:
		var s []byte
		if s, ok = p.Str(); ok {
			n.NameRaw = make([]byte, base64.StdEncoding.DecodedLen(len(s)))
			var m int
			m, err := base64.StdEncoding.Decode(n.NameRaw, s)
			n.NameRaw, ok = n.NameRaw[:m], err == nil && bytes.IndexAny(s, "\r\n") < 0
		}
	case keyMode, keyUID, keyGID:
		var v uint64
		if v, ok = p.Uint(32); ok {
			switch key {
			case keyMode:
				n.Mode = fs.FileMode(v)
			case keyUID:
				n.UID = uint32(v)
			case keyGID:
				n.GID = uint32(v)
			}
		}
	case keySize, keyInode, keyDevid, keyLinks, keyRdev:
		var v uint64
		if v, ok = p.Uint(64); ok {
			switch key {
			case keySize:
				n.Size = v
			case keyInode:
				n.Inode = v
			case keyDevid:
				n.DeviceID = v
			case keyLinks:
				n.Links = v
			case keyRdev:
				n.Rdev = v
			}
		}
	case keyMtime, keyAtime, keyCtime:
		var s []byte
		if s, ok = p.Str(); ok {
			t := &n.ModTime
			if key == keyAtime {
				t = &n.AccessTime
			} else if key == keyCtime {
				t = &n.ChangeTime
			}
			ok = t.UnmarshalText(s) == nil // what Time.UnmarshalJSON runs on the string
		}
	case keySparse:
		if p.Lit("true") {
			n.Sparse, ok = true, true
		} else {
			ok = p.Lit("false")
		}
	case keyContent:
		if !p.Lit("[") {
			return false
		}
		if p.Lit("]") {
			n.Content = []crypto.ID{}
			return true
		}
		for {
			var id crypto.ID
			if !p.ID(&id) {
				return false
			}
			n.Content = append(n.Content, id)
			if p.Lit("]") {
				return true
			}
			if !p.Lit(",") {
				return false
			}
		}
	case keySubtree:
		n.Subtree = new(crypto.ID)
		ok = p.ID(n.Subtree)
	}
	return ok
}
