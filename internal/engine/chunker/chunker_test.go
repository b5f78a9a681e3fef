package chunker

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/kubectl-stash/kubectl-stash/internal/testutil"
	"io"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// smallParams keep the statistical tests fast while exercising the same code paths as
// DefaultParams (thousands of chunks per test input).
var smallParams = Params{MinSize: 8 << 10, AvgSize: 16 << 10, MaxSize: 128 << 10}

var testSeed = [SeedSize]byte{1, 2, 3, 4, 5, 6, 7, 8}

// chunkAll returns the chunks of r, each copied.
func chunkAll(t testing.TB, c *Chunker) [][]byte {
	t.Helper()
	var out [][]byte
	var buf []byte
	for {
		chunk, err := c.Next(buf)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, bytes.Clone(chunk))
		buf = chunk
	}
}

func mustNew(t testing.TB, r io.Reader, p Params, seed [SeedSize]byte) *Chunker {
	t.Helper()
	c, err := New(r, p, seed)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func lengths(chunks [][]byte) []int {
	out := make([]int, len(chunks))
	for i, c := range chunks {
		out[i] = len(c)
	}
	return out
}

// checkChunks asserts the chunks reproduce data and respect the size bounds.
func checkChunks(t *testing.T, chunks [][]byte, data []byte, p Params) {
	t.Helper()
	if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
		t.Fatalf("concatenated chunks (%d bytes) differ from the input (%d bytes)", len(got), len(data))
	}
	for i, c := range chunks {
		if len(c) == 0 {
			t.Fatalf("chunk %d is empty", i)
		}
		if len(c) > p.MaxSize {
			t.Fatalf("chunk %d has %d bytes, above MaxSize %d", i, len(c), p.MaxSize)
		}
		if i < len(chunks)-1 && len(c) < p.MinSize {
			t.Fatalf("chunk %d of %d has %d bytes, below MinSize %d", i, len(chunks), len(c), p.MinSize)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	d := DefaultParams
	tests := []struct {
		name string
		p    Params
		size int
	}{
		{"empty", d, 0},
		{"one byte", d, 1},
		{"one window", d, window},
		{"below min", d, d.MinSize - 1},
		{"exactly min", d, d.MinSize},
		{"exactly avg", d, d.AvgSize},
		{"exactly max", d, d.MaxSize},
		{"max plus one", d, d.MaxSize + 1},
		{"large", d, 3*d.MaxSize + 12345},
		{"small params many chunks", smallParams, 5<<20 + 7},
		{"fixed size", Params{MinSize: 4096, AvgSize: 4096, MaxSize: 4096}, 100_000},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := testutil.RandomBytes(tt.size, uint64(i))
			chunks := chunkAll(t, mustNew(t, bytes.NewReader(data), tt.p, testSeed))
			checkChunks(t, chunks, data, tt.p)
			if tt.size == 0 && len(chunks) != 0 {
				t.Fatalf("empty input gave %d chunks", len(chunks))
			}
			if tt.size > 0 && tt.size <= tt.p.MinSize && len(chunks) != 1 {
				t.Fatalf("input of %d bytes gave %d chunks, want 1", tt.size, len(chunks))
			}
		})
	}
}

// TestReadPatterns checks boundaries do not depend on how the reader splits its data:
// the chunker must resume a scan exactly where a short read stopped it.
func TestReadPatterns(t *testing.T) {
	data := testutil.RandomBytes(600<<10, 7)
	want := lengths(chunkAll(t, mustNew(t, bytes.NewReader(data), smallParams, testSeed)))
	if len(want) < 10 {
		t.Fatalf("only %d chunks; the test needs many", len(want))
	}
	tests := []struct {
		name string
		r    func(io.Reader) io.Reader
	}{
		{"one byte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
		{"data with EOF", iotest.DataErrReader},
		{"odd sizes", func(r io.Reader) io.Reader { return &choppyReader{r: r, rng: rand.New(rand.NewPCG(1, 2))} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := chunkAll(t, mustNew(t, tt.r(bytes.NewReader(data)), smallParams, testSeed))
			checkChunks(t, chunks, data, smallParams)
			if got := lengths(chunks); !slices.Equal(got, want) {
				t.Fatalf("chunk lengths %v, want %v", got, want)
			}
		})
	}
}

// choppyReader returns reads of random length, including empty ones.
type choppyReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (c *choppyReader) Read(p []byte) (int, error) {
	n := c.rng.IntN(min(len(p), 20000) + 1)
	return c.r.Read(p[:n])
}

// naiveBoundaries is the definition of the boundaries, written for clarity: hash
// every byte from the chunk start and test every length from MinSize.
func naiveBoundaries(data []byte, p Params, t *Table) []int {
	k := bits.TrailingZeros(uint(p.AvgSize))
	maskS := (uint64(1)<<(k+2) - 1) << (63 - (k + 2)) // k+2 bits below bit 63
	maskL := (uint64(1)<<(k-2) - 1) << (63 - (k - 2)) // k-2 bits below bit 63
	norm := (p.MinSize + p.AvgSize) / 2
	var out []int
	for len(data) > 0 {
		n := min(len(data), p.MaxSize)
		h := uint64(0)
		for i := range n {
			h = h<<1 + t.g[data[i]]
			l := i + 1
			mask := maskL
			if l < norm {
				mask = maskS
			}
			if l >= p.MinSize && h&mask == 0 {
				n = l
				break
			}
		}
		out = append(out, n)
		data = data[n:]
	}
	return out
}

func TestMatchesDefinition(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		data []byte
	}{
		{"random small params", smallParams, testutil.RandomBytes(4<<20, 11)},
		{"text small params", smallParams, testutil.LogText(4<<20, 12)},
		{"random tight params", Params{MinSize: 64, AvgSize: 256, MaxSize: 1024}, testutil.RandomBytes(1<<20, 13)},
		{"zeros hit max", smallParams, make([]byte, 1<<20)},
		{"odd min", Params{MinSize: 1001, AvgSize: 4096, MaxSize: 20000}, testutil.RandomBytes(2<<20, 15)},
		{"random default params", DefaultParams, testutil.RandomBytes(24<<20, 14)},
	}
	table := NewTable(testSeed)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewWithTable(bytes.NewReader(tt.data), tt.p, table)
			if err != nil {
				t.Fatal(err)
			}
			got := lengths(chunkAll(t, c))
			if want := naiveBoundaries(tt.data, tt.p, table); !slices.Equal(got, want) {
				t.Fatalf("chunk lengths\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestKnownBoundaries pins the algorithm: if this fails, existing repositories would
// stop deduplicating against new backups. Change Algorithm before changing the numbers.
func TestKnownBoundaries(t *testing.T) {
	if got, want := NewTable(testSeed).g[0], uint64(0x6d673d753470d4b6); got != want {
		t.Errorf("table word 0 = %#x, want %#x", got, want)
	}
	chunks := chunkAll(t, mustNew(t, bytes.NewReader(testutil.RandomBytes(256<<10, 99)), smallParams, testSeed))
	want := []int{14167, 17877, 18173, 14403, 12127, 13717, 8415, 14398, 14431, 13692, 12791, 16271, 16140, 14159, 8997, 13085, 13566, 14018, 11717}
	if got := lengths(chunks); !slices.Equal(got, want) {
		t.Errorf("chunk lengths %v, want %v", got, want)
	}
}

func TestAverageSize(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		data []byte
	}{
		{"default params random", DefaultParams, testutil.RandomBytes(128<<20, 21)},
		{"small params random", smallParams, testutil.RandomBytes(32<<20, 22)},
		{"small params text", smallParams, testutil.LogText(32<<20, 23)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := chunkAll(t, mustNew(t, bytes.NewReader(tt.data), tt.p, testSeed))
			body := chunks[:len(chunks)-1] // the last chunk is cut by the end of input
			total := 0
			atMax := 0
			for _, c := range body {
				total += len(c)
				if len(c) == tt.p.MaxSize {
					atMax++
				}
			}
			mean := float64(total) / float64(len(body))
			t.Logf("%d chunks, mean %.0f bytes (%.3f × AvgSize), %d at MaxSize", len(body), mean, mean/float64(tt.p.AvgSize), atMax)
			if lo, hi := 0.75*float64(tt.p.AvgSize), 1.25*float64(tt.p.AvgSize); mean < lo || mean > hi {
				t.Fatalf("mean chunk size %.0f outside [%.0f, %.0f]", mean, lo, hi)
			}
		})
	}
}

func TestSeedChangesBoundaries(t *testing.T) {
	data := testutil.RandomBytes(8<<20, 31)
	other := testSeed
	other[31] ^= 1
	a := lengths(chunkAll(t, mustNew(t, bytes.NewReader(data), smallParams, testSeed)))
	b := lengths(chunkAll(t, mustNew(t, bytes.NewReader(data), smallParams, testSeed)))
	c := lengths(chunkAll(t, mustNew(t, bytes.NewReader(data), smallParams, other)))
	if !slices.Equal(a, b) {
		t.Fatal("the same seed gave different boundaries")
	}
	// Boundaries of unrelated tables coincide only by chance, once the chunkers get
	// out of step; a few shared leading cuts would be suspicious, most is a bug.
	shared := sharedOffsets(a, c)
	if shared > len(a)/10 {
		t.Fatalf("%d of %d boundaries are shared between different seeds", shared, len(a))
	}
	if NewTable(testSeed).g == NewTable(other).g {
		t.Fatal("different seeds gave the same table")
	}
}

// sharedOffsets counts cut offsets present in both chunkings.
func sharedOffsets(a, b []int) int {
	seen := map[int]bool{}
	off := 0
	for _, n := range a {
		off += n
		seen[off] = true
	}
	shared := 0
	off = 0
	for _, n := range b {
		off += n
		if seen[off] {
			shared++
		}
	}
	return shared
}

func TestShiftResistance(t *testing.T) {
	base := testutil.RandomBytes(32<<20, 41)
	edit := func(at int, insert []byte, remove int) []byte {
		out := slices.Clone(base[:at])
		out = append(out, insert...)
		return append(out, base[at+remove:]...)
	}
	mid := len(base) / 2
	tests := []struct {
		name string
		data []byte
	}{
		{"insert 5 bytes in the middle", edit(mid, []byte("hello"), 0)},
		{"insert 1 byte near the start", edit(1000, []byte{0}, 0)},
		{"delete 3 bytes in the middle", edit(mid+12345, nil, 3)},
		{"overwrite 100 bytes", edit(mid/2, bytes.Repeat([]byte{0xAA}, 100), 100)},
		{"insert 64 KiB in the middle", edit(mid, testutil.RandomBytes(64<<10, 42), 0)},
	}
	hashes := func(data []byte) (map[[32]byte]bool, int) {
		set := map[[32]byte]bool{}
		chunks := chunkAll(t, mustNew(t, bytes.NewReader(data), DefaultParams, testSeed))
		for _, c := range chunks {
			set[sha256.Sum256(c)] = true
		}
		return set, len(chunks)
	}
	before, n := hashes(base)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after, m := hashes(tt.data)
			changed := 0
			for h := range after {
				if !before[h] {
					changed++
				}
			}
			t.Logf("%d of %d chunks new (%d before)", changed, m, n)
			if changed > 3 {
				t.Fatalf("%d chunks changed, want at most 3", changed)
			}
			if changed == 0 {
				t.Fatal("no chunk changed: the edit was not seen")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Params
		wantErr string
	}{
		{"default", DefaultParams, ""},
		{"small", smallParams, ""},
		{"all equal", Params{4096, 4096, 4096}, ""},
		{"zero", Params{}, "MinSize 0 is below 64"},
		{"min too small", Params{32, 1024, 4096}, "MinSize 32 is below 64"},
		{"avg too small", Params{64, 128, 4096}, "AvgSize 128 is below 256"},
		{"avg not power of two", Params{512, 1000, 4096}, "AvgSize 1000 is not a power of two"},
		{"max too large", Params{512 << 10, 1 << 20, 128 << 20}, "MaxSize 134217728 is above 67108864"},
		{"min above avg", Params{2048, 1024, 4096}, "MinSize 2048 is greater than AvgSize 1024"},
		{"avg above max", Params{512, 1024, 1000}, "AvgSize 1024 is greater than MaxSize 1000"},
		{"negative max", Params{512, 1024, -1}, "AvgSize 1024 is greater than MaxSize -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
			if _, nerr := New(bytes.NewReader(nil), tt.p, testSeed); nerr == nil {
				t.Fatal("New accepted invalid params")
			}
		})
	}
}

func TestReset(t *testing.T) {
	inputs := [][]byte{
		testutil.RandomBytes(3<<20, 51),
		testutil.RandomBytes(10, 52),
		nil,
		testutil.LogText(2<<20, 53),
		testutil.RandomBytes(9<<20, 54),
	}
	reused := mustNew(t, nil, DefaultParams, testSeed)
	for i, data := range inputs {
		t.Run(fmt.Sprintf("input %d", i), func(t *testing.T) {
			reused.Reset(bytes.NewReader(data))
			got := lengths(chunkAll(t, reused))
			want := lengths(chunkAll(t, mustNew(t, bytes.NewReader(data), DefaultParams, testSeed)))
			if !slices.Equal(got, want) {
				t.Fatalf("after Reset: %v, fresh chunker: %v", got, want)
			}
		})
	}
	// Reset in the middle of a stream, after a read error, must also start clean.
	data := testutil.RandomBytes(2<<20, 55)
	reused.Reset(io.MultiReader(bytes.NewReader(data[:100]), iotest.ErrReader(errBoom)))
	if _, err := reused.Next(nil); !errors.Is(err, errBoom) {
		t.Fatalf("Next = %v, want errBoom", err)
	}
	reused.Reset(bytes.NewReader(data))
	checkChunks(t, chunkAll(t, reused), data, DefaultParams)
}

var errBoom = errors.New("boom")

// badReader claims more bytes than it was given.
type badReader struct{}

func (badReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

// emptyReader never returns data nor an error.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestReadErrors(t *testing.T) {
	data := testutil.RandomBytes(12<<20, 61)
	tests := []struct {
		name string
		r    io.Reader
		want error
		// chunks that must come out before the error
		minChunks int
	}{
		{"error at once", iotest.ErrReader(errBoom), errBoom, 0},
		{"error mid chunk", io.MultiReader(bytes.NewReader(data[:700<<10]), iotest.ErrReader(errBoom)), errBoom, 0},
		{"error after data", io.MultiReader(iotest.HalfReader(bytes.NewReader(data)), iotest.ErrReader(errBoom)), errBoom, 1},
		{"timeout", iotest.TimeoutReader(bytes.NewReader(data)), iotest.ErrTimeout, 0},
		{"no progress", emptyReader{}, io.ErrNoProgress, 0},
		{"short read then unexpected EOF", io.MultiReader(bytes.NewReader(data[:10]), iotest.ErrReader(io.ErrUnexpectedEOF)), io.ErrUnexpectedEOF, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, tt.r, DefaultParams, testSeed)
			var got []byte
			n := 0
			var err error
			for {
				var chunk []byte
				chunk, err = c.Next(nil)
				if err != nil {
					break
				}
				got = append(got, chunk...)
				n++
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if n < tt.minChunks {
				t.Fatalf("%d chunks before the error, want at least %d", n, tt.minChunks)
			}
			if !bytes.Equal(got, data[:len(got)]) {
				t.Fatal("chunks before the error differ from the input")
			}
			if _, again := c.Next(nil); !errors.Is(again, tt.want) {
				t.Fatalf("second Next = %v, want the same error", again)
			}
		})
	}
	t.Run("nil reader", func(t *testing.T) {
		c := mustNew(t, nil, DefaultParams, testSeed)
		if _, err := c.Next(nil); err == nil || err == io.EOF {
			t.Fatalf("Next = %v, want an error", err)
		}
	})
	t.Run("reader overreports", func(t *testing.T) {
		c := mustNew(t, badReader{}, DefaultParams, testSeed)
		if _, err := c.Next(nil); err == nil || err == io.EOF {
			t.Fatalf("Next = %v, want an error", err)
		}
	})
}

func TestNextReusesBuffer(t *testing.T) {
	data := testutil.RandomBytes(4<<20, 71)
	c := mustNew(t, bytes.NewReader(data), DefaultParams, testSeed)
	buf := make([]byte, 0, DefaultParams.MaxSize)
	chunk, err := c.Next(buf)
	if err != nil {
		t.Fatal(err)
	}
	if &chunk[:1][0] != &buf[:1][0] {
		t.Fatal("Next allocated although buf was big enough")
	}
}

func TestNewWithTableRejectsNil(t *testing.T) {
	if _, err := NewWithTable(nil, DefaultParams, nil); err == nil {
		t.Fatal("NewWithTable accepted a nil table")
	}
}

// BenchmarkChunker reports chunking throughput over 64 MiB per iteration with
// DefaultParams. Run with -benchtime=20x or so; see doc.go for recorded numbers.
func BenchmarkChunker(b *testing.B) {
	const size = 64 << 20
	inputs := []struct {
		name string
		data []byte
	}{
		{"random", testutil.RandomBytes(size, 81)},
		{"text", testutil.LogText(size, 82)},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			c := mustNew(b, nil, DefaultParams, testSeed)
			buf := make([]byte, 0, DefaultParams.MaxSize)
			r := bytes.NewReader(in.data)
			// One pass first, so the chunker's buffer has grown and the loop measures
			// the steady state of a reused chunker.
			c.Reset(r)
			chunkAll(b, c)
			b.SetBytes(size)
			b.ReportAllocs()
			chunks := 0
			cpu := startCPUMeter()
			for b.Loop() {
				r.Reset(in.data)
				c.Reset(r)
				for {
					chunk, err := c.Next(buf)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					buf = chunk
					chunks++
				}
			}
			cpu.report(b, size)
			b.ReportMetric(float64(size)*float64(b.N)/float64(chunks), "B/chunk")
		})
	}
}

func BenchmarkNewTable(b *testing.B) {
	for b.Loop() {
		NewTable(testSeed)
	}
}

// BenchmarkScan measures the rolling hash alone, on a mask that (almost) never matches: the
// cost per hashed byte, without skipping or copying.
func BenchmarkScan(b *testing.B) {
	data := testutil.RandomBytes(1<<20, 83)
	table := NewTable(testSeed)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		h := uint64(0)
		if scan(table, &h, data, ^uint64(0)>>1) >= 0 {
			b.Fatal("a cut on an all-ones mask")
		}
	}
}

// cpuMeter reports the bytes a benchmark processed per CPU-second of the process.
type cpuMeter struct{ start float64 }

func startCPUMeter() cpuMeter {
	s, _ := testutil.ProcessCPUSeconds()
	return cpuMeter{start: s}
}

func (m cpuMeter) report(b *testing.B, bytes int64) {
	end, ok := testutil.ProcessCPUSeconds()
	if !ok || end <= m.start {
		return
	}
	b.ReportMetric(float64(bytes)*float64(b.N)/1e6/(end-m.start), "MB/cpu-s")
}

// TestNextMemory: reads go into the caller's buffer, so the Chunker itself holds at most
// one read, and a reused buffer settles at the largest chunk (plus a read), never past
// MaxSize.
func TestNextMemory(t *testing.T) {
	for _, p := range []Params{DefaultParams, {MinSize: 1 << 10, AvgSize: 4 << 10, MaxSize: 16 << 10}} {
		t.Run(fmt.Sprintf("avg %d", p.AvgSize), func(t *testing.T) {
			data := slices.Concat(testutil.RandomBytes(6*p.MaxSize, 91), make([]byte, 3*p.MaxSize), testutil.LogText(6*p.MaxSize, 92))
			c := mustNew(t, bytes.NewReader(data), p, testSeed)
			var buf, got []byte
			largest := 0
			for {
				chunk, err := c.Next(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, chunk...)
				largest = max(largest, len(chunk))
				buf = chunk
				if cap(c.pend) > c.readSize {
					t.Fatalf("the Chunker holds %d bytes, more than one read (%d)", cap(c.pend), c.readSize)
				}
				if cap(buf) > p.MaxSize {
					t.Fatalf("buffer of %d bytes, above MaxSize %d", cap(buf), p.MaxSize)
				}
			}
			if !bytes.Equal(got, data) {
				t.Fatal("chunks do not add up to the input")
			}
			if largest != p.MaxSize {
				t.Fatalf("largest chunk %d, want MaxSize %d (the zeros)", largest, p.MaxSize)
			}
		})
	}
}
