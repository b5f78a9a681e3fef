// Package crypto holds the repository's cryptography: the master key (an AES-256-GCM key
// for sealing and a mac key for blob ids), the hash functions of ids and object names
// (Hashing), sealing with associated data, and the memory-hard derivation of a key from a
// password. See docs/repository-format.md.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// IDSize is the size of every id in a repository.
const IDSize = 32

// ID names a blob (keyed hash of its plaintext) or a stored object (hash of its bytes),
// with the repository's Hashing.
type ID [IDSize]byte

// String is the lowercase hex form used in object names and JSON.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short is the first 8 hex characters, for people.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsNull reports whether id is all zeros (unset).
func (id ID) IsNull() bool { return id == ID{} }

// MarshalText encodes the id as hex.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hex id.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID decodes a 64-character hex id.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("invalid id %q: want %d hex characters", s, 2*IDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid id %q: %w", s, err)
	}
	return id, nil
}

// Overhead is what Seal adds to a plaintext: nonce and tag.
const Overhead = nonceSize + tagSize

// NonceSize is the length of the nonce at the start of a sealed value.
const NonceSize = nonceSize

const (
	nonceSize = 12
	tagSize   = 16
)

// ErrUnauthenticated means a sealed value failed authentication: wrong key, or the
// ciphertext or its associated data was changed.
var ErrUnauthenticated = errors.New("ciphertext verification failed")

// Key is a repository's master key.
type Key struct {
	Encrypt [32]byte `json:"encrypt"`
	MAC     [32]byte `json:"mac"`

	aead cipher.AEAD
}

// NewRandomKey returns a fresh master key.
func NewRandomKey() (*Key, error) {
	k := &Key{}
	if _, err := rand.Read(k.Encrypt[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(k.MAC[:]); err != nil {
		return nil, err
	}
	return k, k.Init()
}

// Init prepares a key built from its fields (after unmarshalling).
func (k *Key) Init() error {
	block, err := aes.NewCipher(k.Encrypt[:])
	if err != nil {
		return err
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return err
	}
	return nil
}

// Seal appends nonce ‖ ciphertext ‖ tag of plain, bound to ad, to dst.
func (k *Key) Seal(dst, plain, ad []byte) []byte {
	return Seal(k.aead, dst, plain, ad)
}

// SealInPlace seals the n bytes at buf[NonceSize:] where they are: it writes the nonce
// before them and the tag after them, so buf needs a capacity of at least n+Overhead.
// It returns buf[:n+Overhead], which holds what Seal would have appended.
func (k *Key) SealInPlace(buf []byte, n int, ad []byte) []byte {
	buf = buf[:nonceSize+n]
	_, _ = rand.Read(buf[:nonceSize])
	// Seal appends to its first argument; the plaintext's own storage is the
	// destination, which cipher.AEAD allows for an exact overlap.
	return k.aead.Seal(buf[:nonceSize], buf[:nonceSize], buf[nonceSize:], ad)
}

// OpenInPlace authenticates and decrypts sealed (as written by Seal with the same ad)
// where it is, overwriting it: the plaintext is returned as a slice of sealed.
func (k *Key) OpenInPlace(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrUnauthenticated, len(sealed))
	}
	ct := sealed[nonceSize:]
	out, err := k.aead.Open(ct[:0], sealed[:nonceSize], ct, ad)
	if err != nil {
		return nil, ErrUnauthenticated
	}
	return out, nil
}

// Open authenticates and decrypts sealed (as written by Seal with the same ad), appending
// the plaintext to dst.
func (k *Key) Open(dst, sealed, ad []byte) ([]byte, error) {
	return Open(k.aead, dst, sealed, ad)
}

// Seal seals plain with aead and a random nonce.
func Seal(aead cipher.AEAD, dst, plain, ad []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, nonceSize)...)
	// crypto/rand.Read never fails (Go 1.24+): on a broken random source the program
	// crashes rather than returning, so there is no error to handle here.
	_, _ = rand.Read(dst[n : n+nonceSize])
	return aead.Seal(dst, dst[n:n+nonceSize], plain, ad)
}

// Open reverses Seal.
func Open(aead cipher.AEAD, dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrUnauthenticated, len(sealed))
	}
	out, err := aead.Open(dst, sealed[:nonceSize], sealed[nonceSize:], ad)
	if err != nil {
		return nil, ErrUnauthenticated
	}
	return out, nil
}

// KDFParams are scrypt's cost parameters.
type KDFParams struct {
	N int `json:"N"`
	R int `json:"r"`
	P int `json:"p"`
}

// DefaultKDF is scrypt over 64 MiB for about 0.2 s: expensive to guess, cheap to open
// once per job. (This program computes it in 16 MiB, see scryptKey; a guesser can too.)
var DefaultKDF = KDFParams{N: 1 << 16, R: 8, P: 1}

// Bounds of the cost a key file may ask for. A key file is the one object a program
// reads without authenticating it, so its parameters are whatever a writer to the bucket
// put there: unbounded, r alone could ask for gigabytes (scrypt takes 128·N·r bytes) and p
// for days of work, before the password is even tried. 8 times DefaultKDF's memory
// (128 MiB as this program computes it) and 32 times its work leave room to raise the
// default.
const (
	maxKDFMemory = 1 << 22 // N·r
	maxKDFWork   = 1 << 24 // N·r·p
)

// Validate rejects parameters scrypt refuses, so low they protect nothing, or so high
// that deriving the key would exhaust memory or time.
func (p KDFParams) Validate() error {
	if p.N < 1<<10 || p.N&(p.N-1) != 0 || p.R < 1 || p.P < 1 || p.N > 1<<24 {
		return fmt.Errorf("invalid scrypt parameters N=%d r=%d p=%d (N a power of two between 2^10 and 2^24, r and p at least 1)", p.N, p.R, p.P)
	}
	if mem := uint64(p.N) * uint64(p.R); mem > maxKDFMemory || mem*uint64(p.P) > maxKDFWork {
		return fmt.Errorf("invalid scrypt parameters N=%d r=%d p=%d: N·r at most 2^22 and N·r·p at most 2^24", p.N, p.R, p.P)
	}
	return nil
}

// NewSalt returns a random 32-byte salt.
func NewSalt() ([]byte, error) {
	s := make([]byte, 32)
	_, err := rand.Read(s)
	return s, err
}

// PasswordAEAD derives the key-wrapping AEAD from a password.
func PasswordAEAD(password, salt []byte, p KDFParams) (cipher.AEAD, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	dk, err := scryptKey(password, salt, p.N, p.R, p.P, 32)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	block, err := aes.NewCipher(dk)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
