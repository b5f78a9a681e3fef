// Package jsonscan reads the JSON the engine writes itself (trees, index files) without
// encoding/json's reflection. It takes only the plain forms those writers produce:
// strings without escapes, non-negative integers without fraction or exponent. Whatever
// it refuses, the caller hands to encoding/json instead, so it never decides what a
// document means, only how fast the common one is read.
package jsonscan

import (
	"bytes"
	"encoding/hex"
	"unicode/utf8"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
)

// Scanner reads B from I.
type Scanner struct {
	B []byte
	I int
}

// Lit consumes s if the input continues with it.
func (p *Scanner) Lit(s string) bool {
	if len(p.B)-p.I >= len(s) && string(p.B[p.I:p.I+len(s)]) == s {
		p.I += len(s)
		return true
	}
	return false
}

// Str consumes a string without escapes or control characters, in valid UTF-8, and
// returns its contents (a slice of the input).
func (p *Scanner) Str() ([]byte, bool) {
	if p.I >= len(p.B) || p.B[p.I] != '"' {
		return nil, false
	}
	start := p.I + 1
	end := bytes.IndexByte(p.B[start:], '"')
	if end < 0 {
		return nil, false
	}
	s := p.B[start : start+end]
	ascii := true
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return nil, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(s) {
		return nil, false
	}
	p.I = start + end + 1
	return s, true
}

// Uint consumes a non-negative integer in JSON's form (no sign, fraction, exponent or
// leading zero) below 1<<bits.
func (p *Scanner) Uint(bits int) (uint64, bool) {
	start := p.I
	var v uint64
	for p.I < len(p.B) && p.B[p.I] >= '0' && p.B[p.I] <= '9' {
		d := uint64(p.B[p.I] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
		p.I++
	}
	n := p.I - start
	if n == 0 || n > 1 && p.B[start] == '0' || bits < 64 && v >= 1<<bits {
		return 0, false
	}
	if p.I < len(p.B) {
		if c := p.B[p.I]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	return v, true
}

// ID consumes an id: 64 hex digits in a string (what crypto.ID.UnmarshalText takes).
func (p *Scanner) ID(id *crypto.ID) bool {
	s, ok := p.Str()
	if !ok || len(s) != 2*crypto.IDSize {
		return false
	}
	_, err := hex.Decode(id[:], s)
	return err == nil
}
