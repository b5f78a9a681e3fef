package crypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"sync"

	"github.com/zeebo/blake3"
)

// Hash functions a repository can be written with; the config names one (format version
// 2 and later; version 1 repositories are SHA256). See docs/repository-format.md.
const (
	// SHA256: blob ids are HMAC-SHA-256 with the master key's mac key, object names
	// SHA-256 of the stored bytes.
	SHA256 = "sha256"
	// BLAKE3: blob ids are BLAKE3-256 in keyed mode with the mac key, object names
	// BLAKE3-256 of the stored bytes. Over twice SHA-256's speed here, even with the
	// SHA instructions (hashing_test.go), and every byte a backup reads or a restore
	// writes is hashed once for its id.
	BLAKE3 = "blake3"
)

// Hashing computes a repository's ids with the hash function its config names. Safe for
// concurrent use.
type Hashing struct {
	name string
	// sum is the plain hash, newHash its streaming form; keyed states are pooled
	// because setting up a key costs about as much as hashing a small blob.
	sum     func(data []byte) ID
	newHash func() hash.Hash
	keyed   sync.Pool
}

// NewHashing returns the Hashing named name (SHA256 or BLAKE3), keyed with macKey for
// blob ids.
func NewHashing(name string, macKey [32]byte) (*Hashing, error) {
	h := &Hashing{name: name}
	switch name {
	case SHA256:
		h.sum = func(data []byte) ID { return sha256.Sum256(data) }
		h.newHash = sha256.New
		h.keyed.New = func() any { return hmac.New(sha256.New, macKey[:]) }
	case BLAKE3:
		h.sum = func(data []byte) ID { return blake3.Sum256(data) }
		h.newHash = func() hash.Hash { return blake3.New() }
		h.keyed.New = func() any {
			k, err := blake3.NewKeyed(macKey[:])
			if err != nil {
				panic(err) // only for a key that is not 32 bytes
			}
			return k
		}
	default:
		return nil, fmt.Errorf("unknown hash %q (this program knows %s and %s)", name, SHA256, BLAKE3)
	}
	return h, nil
}

// Name is the name NewHashing was given.
func (h *Hashing) Name() string { return h.name }

// BlobID is the keyed id of a blob's plaintext.
func (h *Hashing) BlobID(data []byte) ID {
	k := h.keyed.Get().(hash.Hash)
	k.Reset()
	k.Write(data)
	var id ID
	k.Sum(id[:0])
	h.keyed.Put(k)
	return id
}

// Sum is the name of a stored object: the hash of its bytes as stored.
func (h *Hashing) Sum(data []byte) ID { return h.sum(data) }

// New returns a streaming hash whose Sum is what Sum would return for the bytes
// written to it.
func (h *Hashing) New() hash.Hash { return h.newHash() }
