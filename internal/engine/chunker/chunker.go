package chunker

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync/atomic"
)

// Algorithm names the boundary function implemented here. The repository config stores
// it next to the Params: chunks cut by a different algorithm do not deduplicate.
const Algorithm = "fastcdc-gear64-nc2-v1"

// SeedSize is the size of the per-repository secret the gear table is derived from.
const SeedSize = 32

// Limits on Params. The lower ones keep the rolling window (64 bytes) and the large
// mask (log2(AvgSize)-2 bits) meaningful; MaxLimit bounds the per-chunker buffer and
// keeps every chunk length well inside the uint32 fields of the pack format.
const (
	MinLimit    = 64
	MinAvgLimit = 256
	MaxLimit    = 64 << 20
)

// window is the number of bytes a gear hash depends on: one per bit of the word.
const window = 64

// Params are the chunk size bounds, in bytes.
type Params struct {
	MinSize int `json:"minSize"` // no chunk (but the last) is shorter
	AvgSize int `json:"avgSize"` // the target mean chunk size; a power of two
	MaxSize int `json:"maxSize"` // no chunk is longer
}

// DefaultParams are restic's bounds (512 KiB to 8 MiB around 1 MiB): chunks big enough
// to keep the index and the per-blob overhead small, small enough to deduplicate
// edited files well.
var DefaultParams = Params{MinSize: 512 << 10, AvgSize: 1 << 20, MaxSize: 8 << 20}

// Validate reports whether the params are usable, naming the first bad field.
func (p Params) Validate() error {
	switch {
	case p.MinSize < MinLimit:
		return fmt.Errorf("chunker: MinSize %d is below %d bytes", p.MinSize, MinLimit)
	case p.AvgSize < MinAvgLimit:
		return fmt.Errorf("chunker: AvgSize %d is below %d bytes", p.AvgSize, MinAvgLimit)
	case p.AvgSize&(p.AvgSize-1) != 0:
		return fmt.Errorf("chunker: AvgSize %d is not a power of two", p.AvgSize)
	case p.MaxSize > MaxLimit:
		return fmt.Errorf("chunker: MaxSize %d is above %d bytes", p.MaxSize, MaxLimit)
	case p.MinSize > p.AvgSize:
		return fmt.Errorf("chunker: MinSize %d is greater than AvgSize %d", p.MinSize, p.AvgSize)
	case p.AvgSize > p.MaxSize:
		return fmt.Errorf("chunker: AvgSize %d is greater than MaxSize %d", p.AvgSize, p.MaxSize)
	}
	return nil
}

// Table is the gear table derived from a repository seed. It is read-only once built
// and may be shared by any number of concurrent Chunkers.
type Table struct {
	g  [256]uint64
	g2 [256]uint64 // g[i]<<1, for scan
}

// tableLabel separates this use of the seed from any other derivation from it.
const tableLabel = "kubectl-stash chunker gear table v1"

// NewTable derives the gear table for seed: word i is bytes 8(i%4)..8(i%4)+7 of
// HMAC-SHA-256(seed, label ‖ uint32(i/4)) read little-endian. A keyed PRF makes the
// table unpredictable without the seed, and the label leaves other derivations from
// the same seed independent.
func NewTable(seed [SeedSize]byte) *Table {
	t := new(Table)
	mac := hmac.New(sha256.New, seed[:])
	msg := make([]byte, len(tableLabel)+4)
	copy(msg, tableLabel)
	var sum [sha256.Size]byte
	for block := range len(t.g) / 4 {
		binary.BigEndian.PutUint32(msg[len(tableLabel):], uint32(block))
		mac.Reset()
		mac.Write(msg)
		mac.Sum(sum[:0])
		for j := range 4 {
			t.g[block*4+j] = binary.LittleEndian.Uint64(sum[8*j:])
		}
	}
	for i, w := range t.g {
		t.g2[i] = w << 1
	}
	return t
}

type cachedTable struct {
	seed  [SeedSize]byte
	table *Table
}

// lastTable remembers the most recent table New derived. A process nearly always
// works on one repository, so this makes New as cheap as NewWithTable without asking
// callers to carry the table around.
var lastTable atomic.Pointer[cachedTable]

func tableFor(seed [SeedSize]byte) *Table {
	if c := lastTable.Load(); c != nil && c.seed == seed {
		return c.table
	}
	t := NewTable(seed)
	lastTable.Store(&cachedTable{seed: seed, table: t})
	return t
}

// Chunker splits the bytes of a reader into content-defined chunks. A Chunker is not
// safe for concurrent use; run one per goroutine and share the Table.
type Chunker struct {
	r     io.Reader
	t     *Table
	p     Params
	norm  int    // chunk length from which maskL applies
	maskS uint64 // log2(AvgSize)+2 bits below bit 63: used below norm
	maskL uint64 // log2(AvgSize)-2 bits below bit 63: used from norm on

	// pend holds the bytes read past the last cut: the start of the next chunk. Reads go
	// straight into the caller's buffer, so only this tail (at most one read) is ever
	// copied, and the Chunker's own memory stays at one read whatever MaxSize is.
	pend []byte
	// next is the length of the current chunk that the next scan tests first: everything
	// shorter was tested without a cut on an earlier, short buffer.
	next int
	eof  bool
	err  error // sticky read error
	// readSize is how much a read asks for once a chunk has reached MinSize.
	readSize int
}

// maxReadSize is how much Next reads at a time once a chunk has reached MinSize (the
// first read of a chunk asks for MinSize at once: no cut can come earlier), for
// DefaultParams; smaller average sizes read AvgSize/8 at a time. Large enough that the
// system calls cost nothing next to hashing, small enough that the tail read past a cut,
// which is copied twice, is a small fraction of a chunk and stays in the cache.
const maxReadSize = 128 << 10

// initialBuf is the least Next allocates when buf is too small: small files then never
// pay for a MaxSize allocation, while large ones reach MaxSize after a few doublings.
const initialBuf = 64 << 10

// New returns a Chunker reading r. The gear table for seed is derived once and reused
// while the seed stays the same.
func New(r io.Reader, p Params, seed [SeedSize]byte) (*Chunker, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return newChunker(r, p, tableFor(seed)), nil
}

// NewWithTable returns a Chunker reading r with a table from NewTable.
func NewWithTable(r io.Reader, p Params, t *Table) (*Chunker, error) {
	if t == nil {
		return nil, errors.New("chunker: nil table")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return newChunker(r, p, t), nil
}

func newChunker(r io.Reader, p Params, t *Table) *Chunker {
	b := bits.TrailingZeros(uint(p.AvgSize))
	// The masks select the high bits, which depend on the most bytes, but leave bit 63
	// out so that scan can test them shifted left by one.
	c := &Chunker{
		t:        t,
		p:        p,
		norm:     p.MinSize + (p.AvgSize-p.MinSize)/2,
		maskS:    ^uint64(0) << (64 - (b + 2)) >> 1,
		maskL:    ^uint64(0) << (64 - (b - 2)) >> 1,
		readSize: min(maxReadSize, max(4<<10, p.AvgSize/8)),
	}
	// The tail past a cut is at most one read: this never grows.
	c.pend = make([]byte, 0, c.readSize)
	c.Reset(r)
	return c
}

// Reset makes c read r from the start, keeping its buffer, params and table.
func (c *Chunker) Reset(r io.Reader) {
	c.r = r
	c.pend = c.pend[:0]
	c.next = c.p.MinSize
	c.eof = false
	c.err = nil
}

// Next returns the next chunk. The chunk is read into buf, which is reused when its
// capacity suffices (it grows up to MaxSize); it never aliases the Chunker's own
// buffer, so it stays valid until the caller reuses buf (typically by passing it to the
// next call). After the last chunk Next returns io.EOF; an empty stream has no chunks.
// A read error is returned as is and again by every later call.
func (c *Chunker) Next(buf []byte) ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	data := append(buf[:0], c.pend...)
	c.pend = c.pend[:0]
	for {
		n := c.cut(data)
		if n == 0 && c.eof && len(data) > 0 {
			n = len(data)
		}
		if n > 0 {
			c.pend = append(c.pend, data[n:]...)
			c.next = c.p.MinSize
			return data[:n], nil
		}
		if c.eof {
			return nil, io.EOF
		}
		var err error
		if data, err = c.read(data); err != nil {
			c.err = err
			return nil, err
		}
	}
}

// cut returns the length of the chunk at the start of data, or 0 when data is too short
// to decide. It records how far it got, so the next call after more data arrives does
// not test the same lengths again.
func (c *Chunker) cut(data []byte) int {
	if len(data) >= c.p.MaxSize {
		data = data[:c.p.MaxSize]
	}
	n := len(data)
	if n < c.next {
		return 0
	}
	// Restart the hash a window before the first length to test: h then equals the
	// hash a scan from the chunk start would have, since older bytes are shifted out.
	from := c.next
	h := uint64(0)
	g := &c.t.g
	for _, b := range data[max(0, from-window) : from-1] {
		h = h<<1 + g[b]
	}
	// Testing length L means testing h after byte L-1.
	if from < c.norm {
		end := min(c.norm, n+1)
		if i := scan(c.t, &h, data[from-1:end-1], c.maskS); i >= 0 {
			return from + i
		}
		from = end
	}
	if from <= n {
		if i := scan(c.t, &h, data[from-1:n], c.maskL); i >= 0 {
			return from + i
		}
	}
	if n == c.p.MaxSize {
		return n
	}
	c.next = n + 1
	return 0
}

// scan rolls h over data and returns the index of the first byte after which the
// masked bits of h are zero, or -1.
//
// It consumes two bytes per step (the "rolling two bytes" trick of FastCDC 2020), which
// shortens the dependency chain on h from four operations per two bytes to three:
// h<<2 + (g[b0]<<1) is the hash after b0 shifted left once, so the first test uses the
// mask shifted left once too. That needs a mask clear of bit 63, see newChunker.
func scan(t *Table, hp *uint64, data []byte, mask uint64) int {
	g, g2 := &t.g, &t.g2
	mask2 := mask << 1
	h := *hp
	i := 0
	for ; i+2 <= len(data); i += 2 {
		d := data[i : i+2 : i+2]
		h = h<<2 + g2[d[0]]
		if h&mask2 == 0 {
			return i
		}
		h += g[d[1]]
		if h&mask == 0 {
			return i + 1
		}
	}
	if i < len(data) {
		h = h<<1 + g[data[i]]
		if h&mask == 0 {
			return i
		}
	}
	*hp = h
	return -1
}

// maxEmptyReads matches bufio: a reader that keeps returning nothing is broken.
const maxEmptyReads = 100

// read appends the next read to data, which cut could not decide: up to the length the
// next cut test needs (MinSize for a fresh chunk) or readSize, whichever is more, and
// never past MaxSize. It grows data's buffer by doubling, so a reused buffer settles at
// the largest chunk plus one read.
func (c *Chunker) read(data []byte) ([]byte, error) {
	if c.r == nil {
		return data, errors.New("chunker: no reader; call Reset")
	}
	want := min(max(c.next-len(data), c.readSize), c.p.MaxSize-len(data))
	if cap(data)-len(data) < want {
		nb := make([]byte, len(data), min(max(2*cap(data), len(data)+want, initialBuf), c.p.MaxSize))
		copy(nb, data)
		data = nb
	}
	for empty := 0; ; {
		free := data[len(data) : len(data)+want]
		n, err := c.r.Read(free)
		if n < 0 || n > len(free) {
			return data, fmt.Errorf("chunker: reader returned %d bytes for a %d byte buffer", n, len(free))
		}
		data = data[:len(data)+n]
		if err == io.EOF {
			c.eof = true
			return data, nil
		}
		if err != nil {
			return data, err
		}
		if n > 0 {
			return data, nil
		}
		if empty++; empty >= maxEmptyReads {
			return data, io.ErrNoProgress
		}
	}
}
