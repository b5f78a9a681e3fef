package compress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Codec identifies how a blob is stored. The values are written into pack headers and
// indexes: never renumber them, only add.
type Codec uint8

const (
	None Codec = 0 // stored as is
	Zstd Codec = 1 // one zstd frame with content size and checksum
	S2   Codec = 2 // an s2 block followed by the CRC-32C of the raw bytes
)

// Default is the codec new repositories use; doc.go records the measurements behind it.
const Default = Zstd

// MaxRawLen bounds the uncompressed size of a compressed blob. It is far above any
// chunk (the chunker caps them at 64 MiB) and any metadata blob, and it stops a
// corrupted length from driving an allocation.
const MaxRawLen = 256 << 20

// ErrCorrupt is wrapped by every error Decompress returns for bad input.
var ErrCorrupt = errors.New("compress: corrupt blob")

// String returns the name ParseCodec accepts.
func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Zstd:
		return "zstd"
	case S2:
		return "s2"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// ParseCodec maps a name to a codec. It accepts "none", "zstd" and "s2", in any case,
// and "auto", which means Default: the name users know from restic. "auto" is only an
// input: the repository config records the concrete codec (Default.String()), so a
// later change of Default cannot change how an existing repository is read or written.
func ParseCodec(name string) (Codec, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "none":
		return None, nil
	case "zstd":
		return Zstd, nil
	case "s2":
		return S2, nil
	case "auto":
		return Default, nil
	}
	return 0, fmt.Errorf("compress: unknown codec %q (want none, zstd, s2 or auto)", name)
}

// Compressor compresses blobs with one codec. It is safe for concurrent use; share one
// per repository.
type Compressor struct {
	codec Codec
	zenc  *zstd.Encoder // Zstd only
	// zencDefault is zstd's default level, tried only when the fastest level fails on
	// data whose byte statistics say it must compress (see Compress).
	zencDefault func() (*zstd.Encoder, error)
	s2Encode    func(dst, src []byte) []byte // S2 only
	// sample enables the incompressibility test; benchmarks turn it off to measure
	// what it saves.
	sample bool
}

// NewCompressor returns a Compressor for c. For Zstd it uses the fastest level; for S2
// the default (not "better") encoder. The measurements behind both choices are in
// doc.go.
func NewCompressor(c Codec) (*Compressor, error) {
	return newCompressor(c, zstd.SpeedFastest, s2.Encode)
}

func newCompressor(c Codec, level zstd.EncoderLevel, s2Encode func(dst, src []byte) []byte) (*Compressor, error) {
	comp := &Compressor{codec: c, sample: true}
	switch c {
	case None:
	case Zstd:
		// EncodeAll keeps one encoder state per concurrent call, up to GOMAXPROCS by
		// default, so compressing goroutines do not queue behind each other. A single
		// segment frame always states its content size, even below 256 bytes, which
		// lets Decompress check the size before decoding.
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(level),
			zstd.WithEncoderCRC(true),
			zstd.WithSingleSegment(true),
		)
		if err != nil {
			return nil, fmt.Errorf("compress: zstd encoder: %w", err)
		}
		comp.zenc = enc
		comp.zencDefault = sync.OnceValues(func() (*zstd.Encoder, error) {
			return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault),
				zstd.WithEncoderCRC(true), zstd.WithSingleSegment(true))
		})
	case S2:
		comp.s2Encode = s2Encode
	default:
		return nil, fmt.Errorf("compress: unknown codec %d", uint8(c))
	}
	return comp, nil
}

// Codec returns the codec c was created for.
func (c *Compressor) Codec() Codec { return c.codec }

// Compress compresses src. When it does, it returns the compressed bytes, appended to
// dst[:0], and the codec. When compressing is not worth it — the codec is None, src is
// empty or larger than MaxRawLen, a sample of src looks random, or the result does not
// save at least 1/32 (about 3%) of src — it returns src itself (not a copy; dst may
// have been written) and None. dst and src must not overlap.
func (c *Compressor) Compress(dst, src []byte) (out []byte, used Codec) {
	if c.codec == None || len(src) == 0 || len(src) > MaxRawLen {
		return src, None
	}
	if c.sample && looksIncompressible(src) {
		return src, None
	}
	switch c.codec {
	case Zstd:
		out = c.zenc.EncodeAll(src, dst[:0])
		// zstd's fastest level finds no matches in some plainly redundant data (a column
		// of increasing numbers, say) and then stores it raw, entropy coding included.
		// When the byte statistics promise at least a quarter off, the default level
		// gets it; this costs a second pass only on such blobs.
		if len(out) > len(src)-len(src)/32 && sampleEntropy(src) < lowEntropy {
			if enc, err := c.zencDefault(); err == nil {
				out = enc.EncodeAll(src, out[:0])
			}
		}
	case S2:
		out = c.s2Encode(dst[:0], src)
		out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(src, castagnoli))
	}
	// Below about 3% the saving is not worth the decompression on every restore.
	if len(out) > len(src)-len(src)/32 {
		return src, None
	}
	return out, c.codec
}

// lowEntropy, in bits per byte, promises a saving of at least 25% from entropy coding
// alone.
const lowEntropy = 6.0

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sampling parameters for looksIncompressible. 16 windows of 1 KiB spread over the
// input see every region of a chunk (a chunk of zeros followed by random data still
// compresses) for the price of hashing 16 KiB, about 1.6% of an average chunk.
const (
	sampleMinLen  = 64 << 10
	sampleWindows = 16
	sampleWindow  = 1 << 10
	// maxEntropy is the order-0 entropy, in bits per byte, above which a sample counts
	// as random. A random 16 KiB sample measures about 7.99 (the estimate is biased
	// low by about 0.01); compressed media and ciphertext measure the same. Anything a
	// codec could shrink by 3% or more measures well below 7.9, and the threshold
	// leaves room for the LZ stage to find what the byte histogram cannot.
	maxEntropy = 7.9
)

// looksIncompressible estimates the order-0 entropy of a sample of src. It only sees
// byte frequencies: data whose bytes are uniform but which repeats itself at a
// distance (the same random block twice in one chunk) is misjudged, and stored as is.
// Deduplication catches repeats across chunks; within one chunk they are rare enough
// that skipping the test is not worth its cost on the common case, random data.
// Inputs below sampleMinLen are always compressed: they are cheap to try.
func looksIncompressible(src []byte) bool {
	if len(src) < sampleMinLen {
		return false
	}
	return sampleEntropy(src) > maxEntropy
}

// sampleEntropy estimates the order-0 entropy of src in bits per byte from
// sampleWindows windows of sampleWindow bytes (all of src when it is shorter).
func sampleEntropy(src []byte) float64 {
	// Four histograms, so consecutive equal bytes do not serialise on one counter.
	var hist [4][256]uint32
	count := func(win []byte) {
		for i := 0; i+4 <= len(win); i += 4 {
			q := win[i : i+4 : i+4]
			hist[0][q[0]]++
			hist[1][q[1]]++
			hist[2][q[2]]++
			hist[3][q[3]]++
		}
	}
	n := 0
	if len(src) < sampleWindows*sampleWindow {
		count(src)
		n = len(src) &^ 3
	} else {
		step := (len(src) - sampleWindow) / (sampleWindows - 1)
		for w := range sampleWindows {
			count(src[w*step : w*step+sampleWindow])
		}
		n = sampleWindows * sampleWindow
	}
	if n == 0 {
		return 8
	}
	// H = log2(n) - Σ c·log2(c) / n
	sum := 0.0
	for b := range 256 {
		if c := hist[0][b] + hist[1][b] + hist[2][b] + hist[3][b]; c > 1 {
			sum += float64(c) * math.Log2(float64(c))
		}
	}
	return math.Log2(float64(n)) - sum/float64(n)
}

// decoder is shared by every Decompress call: DecodeAll is safe for concurrent use
// and keeps one decoding state per concurrent call, up to GOMAXPROCS. The limits make
// a hostile frame fail rather than allocate; Decompress also caps each call at rawLen.
var decoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(MaxRawLen),
		zstd.WithDecoderMaxWindow(MaxRawLen),
		zstd.WithDecodeAllCapLimit(true),
	)
})

// Decompress decodes src, stored with codec c, into dst[:0] (reused when its capacity
// is at least rawLen, plus 32 bytes for zstd) and checks that it yields exactly rawLen
// bytes. The result never aliases src. Bad input returns an error wrapping ErrCorrupt,
// never a panic, and never allocates more than rawLen+32 bytes of output.
func Decompress(dst, src []byte, c Codec, rawLen int) ([]byte, error) {
	if rawLen < 0 {
		return nil, fmt.Errorf("%w: negative length %d", ErrCorrupt, rawLen)
	}
	if c != None && rawLen > MaxRawLen {
		return nil, fmt.Errorf("%w: length %d is above %d", ErrCorrupt, rawLen, MaxRawLen)
	}
	switch c {
	case None:
		if len(src) != rawLen {
			return nil, fmt.Errorf("%w: stored blob has %d bytes, want %d", ErrCorrupt, len(src), rawLen)
		}
		return append(dst[:0], src...), nil
	case Zstd:
		return decodeZstd(dst, src, rawLen)
	case S2:
		return decodeS2(dst, src, rawLen)
	}
	return nil, fmt.Errorf("%w: unknown codec %d", ErrCorrupt, uint8(c))
}

// zstdSlack is the room the zstd decoder needs past the end of its output to decode
// with its fast copies (github.com/klauspost/compress/zstd: 16 bytes, see
// useSafeDecodeSync). With a buffer of exactly the blob's size, every blob below 128 KiB
// was decoded by the careful variant, at a third of the speed.
const zstdSlack = 32

func decodeZstd(dst, src []byte, rawLen int) ([]byte, error) {
	// Compress writes exactly one frame that states its size and carries a checksum;
	// insist on both before decoding, so the length check happens before any work and
	// a flipped bit cannot go unnoticed.
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return nil, fmt.Errorf("%w: zstd header: %v", ErrCorrupt, err)
	}
	switch {
	case h.Skippable:
		return nil, fmt.Errorf("%w: zstd: skippable frame", ErrCorrupt)
	case !h.HasFCS || h.FrameContentSize != uint64(rawLen):
		return nil, fmt.Errorf("%w: zstd frame states %d bytes, want %d", ErrCorrupt, h.FrameContentSize, rawLen)
	case !h.HasCheckSum:
		return nil, fmt.Errorf("%w: zstd frame has no checksum", ErrCorrupt)
	}
	dec, err := decoder()
	if err != nil {
		return nil, fmt.Errorf("compress: zstd decoder: %w", err)
	}
	// The capacity limit is what stops a frame from growing the output past rawLen
	// (and zstdSlack). The slack lets the decoder use its fast copies, which may write
	// a little past the end of what they produce, up to the last byte of a frame.
	var buf []byte
	if need := rawLen + zstdSlack; cap(dst) >= need {
		buf = dst[:0:need]
	} else {
		buf = make([]byte, 0, need)
	}
	out, err := dec.DecodeAll(src, buf)
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
	}
	if len(out) != rawLen {
		return nil, fmt.Errorf("%w: zstd decoded %d bytes, want %d", ErrCorrupt, len(out), rawLen)
	}
	if cap(dst) >= rawLen+zstdSlack && rawLen > 0 && &out[0] == &dst[:1][0] {
		// Hand back dst with its full capacity, so a caller reusing it does not see it
		// shrink to the largest blob so far.
		out = dst[:rawLen]
	}
	return out, nil
}

func decodeS2(dst, src []byte, rawLen int) ([]byte, error) {
	if len(src) < 5 { // a length varint and the checksum
		return nil, fmt.Errorf("%w: s2 blob of %d bytes is too short", ErrCorrupt, len(src))
	}
	block, sum := src[:len(src)-4], binary.LittleEndian.Uint32(src[len(src)-4:])
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, fmt.Errorf("%w: s2: %v", ErrCorrupt, err)
	}
	if n != rawLen {
		return nil, fmt.Errorf("%w: s2 block states %d bytes, want %d", ErrCorrupt, n, rawLen)
	}
	if cap(dst) < rawLen {
		dst = make([]byte, rawLen)
	}
	out, err := s2.Decode(dst[:rawLen], block)
	if err != nil {
		return nil, fmt.Errorf("%w: s2: %v", ErrCorrupt, err)
	}
	if crc32.Checksum(out, castagnoli) != sum {
		return nil, fmt.Errorf("%w: s2: checksum mismatch", ErrCorrupt)
	}
	return out, nil
}
