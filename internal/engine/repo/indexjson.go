package repo

import (
	"bytes"
	"encoding/hex"
	"errors"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/compress"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
)

// Every command reads the whole index, and encoding/json's reflection was most of
// that: 40-60 ms for the 20,000 blobs of the benchmark, on the critical path of an
// unchanged backup. parseIndexFile reads the JSON json.Marshal writes for an indexFile
// directly, and hands anything else (other spellings, keys or whitespace, escapes,
// numbers written otherwise, values out of range) to json.Unmarshal, so what an index
// file means never depends on which parser read it.

// errIndexSlowPath sends an index file to json.Unmarshal.
var errIndexSlowPath = errors.New("index JSON not in the common shape")

func parseIndexFile(data []byte) (indexFile, error) {
	p := jsonParser{b: data}
	var f indexFile
	if !p.lit(`{"version":`) {
		return f, errIndexSlowPath
	}
	v, ok := p.uint(63)
	if !ok || !p.lit(`,"packs":`) {
		return f, errIndexSlowPath
	}
	f.Version = int(v)
	switch {
	case p.lit("null"):
	case p.lit("[]"):
		f.Packs = []indexPack{}
	case p.lit("["):
		for {
			var ip indexPack
			if !p.pack(&ip) {
				return f, errIndexSlowPath
			}
			f.Packs = append(f.Packs, ip)
			if p.lit("]") {
				break
			}
			if !p.lit(",") {
				return f, errIndexSlowPath
			}
		}
	default:
		return f, errIndexSlowPath
	}
	if p.lit(`,"supersedes":[`) {
		for {
			s, ok := p.str()
			if !ok {
				return f, errIndexSlowPath
			}
			f.Supersedes = append(f.Supersedes, string(s))
			if p.lit("]") {
				break
			}
			if !p.lit(",") {
				return f, errIndexSlowPath
			}
		}
	}
	if !p.lit("}") || p.i != len(p.b) {
		return f, errIndexSlowPath
	}
	return f, nil
}

// pack consumes {"id":…,"type":…,"size":…,"blobs":[…]}, the keys in this order.
func (p *jsonParser) pack(ip *indexPack) bool {
	if !p.lit(`{"id":`) || !p.id(&ip.ID) || !p.lit(`,"type":`) {
		return false
	}
	t, ok := p.str()
	if !ok || !p.lit(`,"size":`) {
		return false
	}
	ip.Type = string(t)
	size, ok := p.uint(63)
	if !ok || !p.lit(`,"blobs":`) {
		return false
	}
	ip.Size = int64(size)
	switch {
	case p.lit("null"):
	case p.lit("[]"):
		ip.Blobs = []indexBlob{}
	case p.lit("["):
		// Blob entries are about 130 bytes: size the slice once, from what is left of
		// the document's bytes in this pack.
		n := 1
		if end := bytes.IndexByte(p.b[p.i:], ']'); end > 0 {
			n = end/120 + 1
		}
		ip.Blobs = make([]indexBlob, 0, n)
		for {
			var b indexBlob
			if !p.blob(&b) {
				return false
			}
			ip.Blobs = append(ip.Blobs, b)
			if p.lit("]") {
				break
			}
			if !p.lit(",") {
				return false
			}
		}
	default:
		return false
	}
	return p.lit("}")
}

// blob consumes {"id":…,"offset":…,"length":…,"raw":…,"codec":…}, in this order.
func (p *jsonParser) blob(b *indexBlob) bool {
	if !p.lit(`{"id":`) || !p.id(&b.ID) || !p.lit(`,"offset":`) {
		return false
	}
	var v [3]uint64
	var ok bool
	if v[0], ok = p.uint(32); !ok || !p.lit(`,"length":`) {
		return false
	}
	if v[1], ok = p.uint(32); !ok || !p.lit(`,"raw":`) {
		return false
	}
	if v[2], ok = p.uint(32); !ok || !p.lit(`,"codec":`) {
		return false
	}
	c, ok := p.uint(8)
	if !ok {
		return false
	}
	b.Offset, b.Length, b.Raw, b.Codec = uint32(v[0]), uint32(v[1]), uint32(v[2]), compress.Codec(c)
	return p.lit("}")
}

// jsonParser reads the few JSON forms the fast paths accept.
type jsonParser struct {
	b []byte
	i int
}

// lit consumes s if the input continues with it.
func (p *jsonParser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// str consumes a string of printable ASCII without escapes and returns its contents (a
// slice of the input). Index files hold nothing else.
func (p *jsonParser) str() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	end := bytes.IndexByte(p.b[start:], '"')
	if end < 0 {
		return nil, false
	}
	s := p.b[start : start+end]
	for _, c := range s {
		if c < 0x20 || c == '\\' || c >= 0x80 {
			return nil, false
		}
	}
	p.i = start + end + 1
	return s, true
}

// uint consumes a non-negative integer in JSON's form (no sign, fraction, exponent or
// leading zero) below 1<<bits.
func (p *jsonParser) uint(bits int) (uint64, bool) {
	start := p.i
	var v uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
		p.i++
	}
	n := p.i - start
	if n == 0 || n > 1 && p.b[start] == '0' || bits < 64 && v >= 1<<bits {
		return 0, false
	}
	if p.i < len(p.b) {
		if c := p.b[p.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	return v, true
}

// id consumes an id: 64 hex digits in a string (what crypto.ID.UnmarshalText takes).
func (p *jsonParser) id(id *crypto.ID) bool {
	s, ok := p.str()
	if !ok || len(s) != 2*crypto.IDSize {
		return false
	}
	_, err := hex.Decode(id[:], s)
	return err == nil
}
