package repo

import (
	"bytes"
	"errors"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/compress"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/jsonscan"
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
	p := jsonParser{jsonscan.Scanner{B: data}}
	var f indexFile
	if !p.Lit(`{"version":`) {
		return f, errIndexSlowPath
	}
	v, ok := p.Uint(63)
	if !ok || !p.Lit(`,"packs":`) {
		return f, errIndexSlowPath
	}
	f.Version = int(v)
	switch {
	case p.Lit("null"):
	case p.Lit("[]"):
		f.Packs = []indexPack{}
	case p.Lit("["):
		for {
			var ip indexPack
			if !p.pack(&ip) {
				return f, errIndexSlowPath
			}
			f.Packs = append(f.Packs, ip)
			if p.Lit("]") {
				break
			}
			if !p.Lit(",") {
				return f, errIndexSlowPath
			}
		}
	default:
		return f, errIndexSlowPath
	}
	if p.Lit(`,"supersedes":[`) {
		for {
			s, ok := p.Str()
			if !ok {
				return f, errIndexSlowPath
			}
			f.Supersedes = append(f.Supersedes, string(s))
			if p.Lit("]") {
				break
			}
			if !p.Lit(",") {
				return f, errIndexSlowPath
			}
		}
	}
	if !p.Lit("}") || p.I != len(p.B) {
		return f, errIndexSlowPath
	}
	return f, nil
}

// pack consumes {"id":…,"type":…,"size":…,"blobs":[…]}, the keys in this order.
func (p *jsonParser) pack(ip *indexPack) bool {
	if !p.Lit(`{"id":`) || !p.ID(&ip.ID) || !p.Lit(`,"type":`) {
		return false
	}
	t, ok := p.Str()
	if !ok || !p.Lit(`,"size":`) {
		return false
	}
	ip.Type = string(t)
	size, ok := p.Uint(63)
	if !ok || !p.Lit(`,"blobs":`) {
		return false
	}
	ip.Size = int64(size)
	switch {
	case p.Lit("null"):
	case p.Lit("[]"):
		ip.Blobs = []indexBlob{}
	case p.Lit("["):
		// Blob entries are about 130 bytes: size the slice once, from what is left of
		// the document's bytes in this pack.
		n := 1
		if end := bytes.IndexByte(p.B[p.I:], ']'); end > 0 {
			n = end/120 + 1
		}
		ip.Blobs = make([]indexBlob, 0, n)
		for {
			var b indexBlob
			if !p.blob(&b) {
				return false
			}
			ip.Blobs = append(ip.Blobs, b)
			if p.Lit("]") {
				break
			}
			if !p.Lit(",") {
				return false
			}
		}
	default:
		return false
	}
	return p.Lit("}")
}

// blob consumes {"id":…,"offset":…,"length":…,"raw":…,"codec":…}, in this order.
func (p *jsonParser) blob(b *indexBlob) bool {
	if !p.Lit(`{"id":`) || !p.ID(&b.ID) || !p.Lit(`,"offset":`) {
		return false
	}
	var v [3]uint64
	var ok bool
	if v[0], ok = p.Uint(32); !ok || !p.Lit(`,"length":`) {
		return false
	}
	if v[1], ok = p.Uint(32); !ok || !p.Lit(`,"raw":`) {
		return false
	}
	if v[2], ok = p.Uint(32); !ok || !p.Lit(`,"codec":`) {
		return false
	}
	c, ok := p.Uint(8)
	if !ok {
		return false
	}
	b.Offset, b.Length, b.Raw, b.Codec = uint32(v[0]), uint32(v[1]), uint32(v[2]), compress.Codec(c)
	return p.Lit("}")
}

// jsonParser reads the few JSON forms the fast paths accept.
type jsonParser struct{ jsonscan.Scanner }
