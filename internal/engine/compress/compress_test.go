package compress

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/kubectl-stash/kubectl-stash/internal/testutil"
	"runtime"
	"strconv"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// mixBlob returns blob i of the "mix" corpus, a volume with some text and some media:
// two in five blobs are text, two random, one half text and half random.
func mixBlob(i, n int) []byte {
	switch i % 5 {
	case 0, 1:
		return testutil.LogText(n, uint64(i))
	case 2, 3:
		return testutil.RandomBytes(n, uint64(i))
	}
	return append(testutil.LogText(n/2, uint64(i)), testutil.RandomBytes(n-n/2, uint64(i))...)
}

func mustCompressor(t testing.TB, c Codec) *Compressor {
	t.Helper()
	comp, err := NewCompressor(c)
	if err != nil {
		t.Fatalf("NewCompressor(%v): %v", c, err)
	}
	return comp
}

var codecs = []Codec{None, Zstd, S2}

func TestRoundTrip(t *testing.T) {
	inputs := []struct {
		name string
		data []byte
		// want is the codec Compress must pick for a compressing codec.
		compresses bool
	}{
		{"empty", nil, false},
		{"one byte", []byte{'x'}, false},
		{"short text", []byte("hello, hello, hello, hello, hello, hello, hello"), true},
		{"text 1 MiB", testutil.LogText(1<<20, 1), true},
		{"text 5 MiB", testutil.LogText(5<<20+3, 2), true},
		{"zeros", make([]byte, 100_000), true},
		{"random 1 MiB", testutil.RandomBytes(1<<20, 3), false},
		{"random small", testutil.RandomBytes(1000, 4), false},
		{"zeros then random", append(make([]byte, 512<<10), testutil.RandomBytes(512<<10, 5)...), true},
	}
	for _, codec := range codecs {
		comp := mustCompressor(t, codec)
		for _, in := range inputs {
			t.Run(codec.String()+"/"+in.name, func(t *testing.T) {
				src := bytes.Clone(in.data)
				out, used := comp.Compress(nil, src)
				want := None
				if in.compresses && codec != None {
					want = codec
				}
				if used != want {
					t.Fatalf("used %v, want %v (%d → %d bytes)", used, want, len(src), len(out))
				}
				if used == None && !bytes.Equal(out, src) {
					t.Fatal("used None but the output differs from the input")
				}
				if used != None && len(out) > len(src)-len(src)/32 {
					t.Fatalf("kept %d → %d bytes, saving under 3%%", len(src), len(out))
				}
				got, err := Decompress(nil, out, used, len(src))
				if err != nil {
					t.Fatalf("Decompress: %v", err)
				}
				if !bytes.Equal(got, in.data) {
					t.Fatal("round trip changed the data")
				}
				if !bytes.Equal(src, in.data) {
					t.Fatal("Compress modified its input")
				}
			})
		}
	}
}

// TestIncompressibleSkipsWork checks that random input never reaches the encoder: the
// sample decides, so dst stays untouched.
func TestIncompressibleSkipsWork(t *testing.T) {
	src := testutil.RandomBytes(1<<20, 6)
	for _, codec := range []Codec{Zstd, S2} {
		t.Run(codec.String(), func(t *testing.T) {
			dst := make([]byte, 0, 2<<20)
			sentinel := dst[:1]
			sentinel[0] = 0xA5
			out, used := mustCompressor(t, codec).Compress(dst, src)
			if used != None || &out[0] != &src[0] {
				t.Fatalf("used %v, want None with out being src", used)
			}
			if sentinel[0] != 0xA5 {
				t.Fatal("dst was written: the encoder ran on random data")
			}
		})
	}
}

func TestLooksIncompressible(t *testing.T) {
	base64ish := make([]byte, 256<<10)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i, b := range testutil.RandomBytes(len(base64ish), 7) {
		base64ish[i] = alphabet[b%64]
	}
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"random", testutil.RandomBytes(1<<20, 8), true},
		{"random 64 KiB", testutil.RandomBytes(64<<10, 9), true},
		{"random below the sample minimum", testutil.RandomBytes(60<<10, 10), false},
		{"text", testutil.LogText(1<<20, 11), false},
		{"base64", base64ish, false},
		{"zeros", make([]byte, 1<<20), false},
		{"random with a zero tail", append(testutil.RandomBytes(768<<10, 12), make([]byte, 256<<10)...), false},
		{"alternating halves", mixBlob(4, 1<<20), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := looksIncompressible(tt.data); got != tt.want {
				t.Fatalf("looksIncompressible = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecompressRejectsBadInput(t *testing.T) {
	text := testutil.LogText(256<<10, 13)
	for _, codec := range []Codec{Zstd, S2} {
		comp := mustCompressor(t, codec)
		blob, used := comp.Compress(nil, text)
		if used != codec {
			t.Fatalf("%v: text was not compressed", codec)
		}
		n := len(text)
		tests := []struct {
			name   string
			src    []byte
			rawLen int
		}{
			{"rawLen too small", blob, n - 1},
			{"rawLen too large", blob, n + 1},
			{"rawLen zero", blob, 0},
			{"rawLen negative", blob, -1},
			{"rawLen huge", blob, MaxRawLen + 1},
			{"truncated by one", blob[:len(blob)-1], n},
			{"truncated to half", blob[:len(blob)/2], n},
			{"truncated to three bytes", blob[:3], n},
			{"empty", nil, n},
			{"bit flipped in the middle", flip(blob, len(blob)/2, 0x10), n},
			{"bit flipped near the end", flip(blob, len(blob)-6, 0x01), n},
			{"last byte flipped", flip(blob, len(blob)-1, 0x80), n},
			{"first byte flipped", flip(blob, 0, 0x01), n},
			{"trailing garbage", append(bytes.Clone(blob), 1, 2, 3, 4, 5, 6, 7, 8), n},
			{"doubled", append(bytes.Clone(blob), blob...), n},
		}
		for _, tt := range tests {
			t.Run(codec.String()+"/"+tt.name, func(t *testing.T) {
				got, err := Decompress(nil, tt.src, codec, tt.rawLen)
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Decompress = %d bytes, %v; want ErrCorrupt", len(got), err)
				}
			})
		}
	}
	t.Run("none/wrong length", func(t *testing.T) {
		if _, err := Decompress(nil, text, None, len(text)-1); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
	t.Run("unknown codec", func(t *testing.T) {
		if _, err := Decompress(nil, text, Codec(9), len(text)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
	t.Run("wrong codec", func(t *testing.T) {
		blob, _ := mustCompressor(t, Zstd).Compress(nil, text)
		if _, err := Decompress(nil, blob, S2, len(text)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
}

// TestDecompressNeverReturnsWrongData flips every bit of small blobs, one at a time:
// each corruption must fail, or (for bits the format does not use) decode to the
// original. Wrong data without an error would be silent corruption of a restore.
func TestDecompressNeverReturnsWrongData(t *testing.T) {
	src := testutil.LogText(4<<10, 14)
	for _, codec := range []Codec{Zstd, S2} {
		t.Run(codec.String(), func(t *testing.T) {
			blob, used := mustCompressor(t, codec).Compress(nil, src)
			if used != codec {
				t.Fatal("text was not compressed")
			}
			failed, harmless := 0, 0
			for i := range len(blob) * 8 {
				got, err := Decompress(nil, flip(blob, i/8, 1<<(i%8)), codec, len(src))
				switch {
				case err != nil:
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("bit %d: error %v does not wrap ErrCorrupt", i, err)
					}
					failed++
				case bytes.Equal(got, src):
					harmless++
				default:
					t.Fatalf("bit %d: wrong data without an error", i)
				}
			}
			t.Logf("%d bits: %d rejected, %d harmless", len(blob)*8, failed, harmless)
		})
	}
}

// TestHostileZstdFrame feeds frames whose header lies about their size: Decompress must
// refuse them without allocating what they claim.
func TestHostileZstdFrame(t *testing.T) {
	big := make([]byte, 4<<20)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	bomb := enc.EncodeAll(big, nil) // a few hundred bytes that expand to 4 MiB
	noCRC, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(false))
	tests := []struct {
		name   string
		src    []byte
		rawLen int
	}{
		{"expands past rawLen", bomb, 1 << 10},
		{"two frames", append(bytes.Clone(bomb), bomb...), len(big)},
		{"no checksum", noCRC.EncodeAll(big, nil), len(big)},
		{"skippable frame", []byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4}, 0},
	}
	// Warm the shared decoder up, so its own buffers are not counted below.
	warm, _ := mustCompressor(t, Zstd).Compress(nil, testutil.LogText(64<<10, 17))
	if _, err := Decompress(nil, warm, Zstd, 64<<10); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Decompress(nil, tt.src, Zstd, tt.rawLen)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			// rawLen for the output plus slack for the decoder's per-call state.
			if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(tt.rawLen)+1<<20; got > limit {
				t.Fatalf("allocated %d bytes, want at most %d", got, limit)
			}
		})
	}
	// The s2 equivalent: a block that states a length other than rawLen.
	s2blob := append(s2.Encode(nil, big), 0, 0, 0, 0)
	if _, err := Decompress(nil, s2blob, S2, 1<<10); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("s2: err = %v, want ErrCorrupt", err)
	}
}

func TestDecompressReusesDst(t *testing.T) {
	text := testutil.LogText(300<<10, 15)
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			comp := mustCompressor(t, codec)
			blob, used := comp.Compress(nil, text)
			dst := make([]byte, 0, 1<<20)
			got, err := Decompress(dst, blob, used, len(text))
			if err != nil {
				t.Fatal(err)
			}
			if &got[0] != &dst[:1][0] {
				t.Fatal("Decompress allocated although dst was big enough")
			}
			if cap(got) != cap(dst) {
				t.Fatalf("cap(out) = %d, want dst's %d", cap(got), cap(dst))
			}
			if !bytes.Equal(got, text) {
				t.Fatal("round trip changed the data")
			}
		})
	}
}

func TestCompressReusesDst(t *testing.T) {
	text := testutil.LogText(300<<10, 16)
	for _, codec := range []Codec{Zstd, S2} {
		t.Run(codec.String(), func(t *testing.T) {
			dst := make([]byte, 10, 1<<20) // len > 0: Compress must start at dst[:0]
			out, used := mustCompressor(t, codec).Compress(dst, text)
			if used != codec {
				t.Fatal("text was not compressed")
			}
			if &out[0] != &dst[0] {
				t.Fatal("Compress allocated although dst was big enough")
			}
			if got, err := Decompress(nil, out, used, len(text)); err != nil || !bytes.Equal(got, text) {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	for _, codec := range []Codec{Zstd, S2} {
		comp := mustCompressor(t, codec)
		t.Run(codec.String(), func(t *testing.T) {
			for i := range 8 {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					t.Parallel()
					src := mixBlob(i, 200<<10)
					out, used := comp.Compress(nil, src)
					got, err := Decompress(nil, out, used, len(src))
					if err != nil || !bytes.Equal(got, src) {
						t.Fatalf("round trip: %v", err)
					}
				})
			}
		})
	}
}

func TestParseCodec(t *testing.T) {
	tests := []struct {
		name    string
		want    Codec
		wantErr bool
	}{
		{"none", None, false},
		{"zstd", Zstd, false},
		{"s2", S2, false},
		{"auto", Default, false},
		{"ZSTD", Zstd, false},
		{" s2 ", S2, false},
		{"", 0, true},
		{"gzip", 0, true},
		{"off", 0, true},
		{"zstd-fastest", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCodec(tt.name)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseCodec(%q) error = %v, wantErr %v", tt.name, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("ParseCodec(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestCodecValuesAreStable(t *testing.T) {
	tests := []struct {
		c     Codec
		value uint8
		name  string
	}{
		{None, 0, "none"},
		{Zstd, 1, "zstd"},
		{S2, 2, "s2"},
		{Codec(7), 7, "codec(7)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if uint8(tt.c) != tt.value || tt.c.String() != tt.name {
				t.Fatalf("codec %d is %q, want %d %q", uint8(tt.c), tt.c.String(), tt.value, tt.name)
			}
			if tt.value <= 2 {
				if back, err := ParseCodec(tt.name); err != nil || back != tt.c {
					t.Fatalf("ParseCodec(%q) = %v, %v", tt.name, back, err)
				}
			}
		})
	}
	if _, err := NewCompressor(Codec(7)); err == nil {
		t.Fatal("NewCompressor accepted an unknown codec")
	}
}

// FuzzDecompress checks that no input makes Decompress panic or return a length other
// than rawLen. Run it with -fuzz=FuzzDecompress; without, it runs the seeds.
func FuzzDecompress(f *testing.F) {
	text := testutil.LogText(8<<10, 18)
	for _, codec := range []Codec{Zstd, S2} {
		blob, _ := mustCompressor(f, codec).Compress(nil, text)
		f.Add(blob, uint8(codec), len(text))
		f.Add(blob[:len(blob)/2], uint8(codec), len(text))
	}
	f.Add([]byte{}, uint8(None), 0)
	f.Fuzz(func(t *testing.T, src []byte, codec uint8, rawLen int) {
		if rawLen > 1<<20 {
			rawLen %= 1 << 20 // keep each run cheap; the limit itself is tested elsewhere
		}
		out, err := Decompress(nil, src, Codec(codec), rawLen)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(out) != rawLen {
			t.Fatalf("decoded %d bytes without an error, want %d", len(out), rawLen)
		}
	})
}

func flip(b []byte, i int, mask byte) []byte {
	out := bytes.Clone(b)
	out[i] ^= mask
	return out
}

// Benchmarks. Each iteration compresses a 16 MiB corpus as 1 MiB blobs, the average
// chunk size. MB/s is raw bytes per second on one goroutine; "ratio" is raw bytes over
// stored bytes (blobs left uncompressed count at their raw size). Run with
// -benchtime=10x; doc.go records the numbers the default is based on.

const (
	benchBlob  = 1 << 20
	benchBlobs = 16
)

func benchCorpora() []struct {
	name  string
	blobs [][]byte
} {
	mk := func(f func(i int) []byte) [][]byte {
		blobs := make([][]byte, benchBlobs)
		for i := range blobs {
			blobs[i] = f(i)
		}
		return blobs
	}
	return []struct {
		name  string
		blobs [][]byte
	}{
		{"text", mk(func(i int) []byte { return testutil.LogText(benchBlob, uint64(100+i)) })},
		{"random", mk(func(i int) []byte { return testutil.RandomBytes(benchBlob, uint64(200+i)) })},
		{"mix", mk(func(i int) []byte { return mixBlob(300+i, benchBlob) })},
	}
}

type benchCodec struct {
	name string
	new  func() (*Compressor, error)
}

func benchCodecs() []benchCodec {
	noSample := func(c *Compressor, err error) (*Compressor, error) {
		if c != nil {
			c.sample = false
		}
		return c, err
	}
	return []benchCodec{
		{"zstd-fastest", func() (*Compressor, error) { return NewCompressor(Zstd) }},
		{"zstd-fastest-nosample", func() (*Compressor, error) { return noSample(NewCompressor(Zstd)) }},
		// restic's "auto" compression: zstd at its default level on every blob, with no
		// sampling. The reference for the size and speed targets.
		{"restic-auto", func() (*Compressor, error) { return noSample(newCompressor(Zstd, zstd.SpeedDefault, nil)) }},
		{"s2", func() (*Compressor, error) { return NewCompressor(S2) }},
		{"s2-nosample", func() (*Compressor, error) { return noSample(NewCompressor(S2)) }},
		{"s2-better", func() (*Compressor, error) { return newCompressor(S2, 0, s2.EncodeBetter) }},
	}
}

func BenchmarkCompress(b *testing.B) {
	corpora := benchCorpora()
	for _, bc := range benchCodecs() {
		comp, err := bc.new()
		if err != nil {
			b.Fatal(err)
		}
		for _, corpus := range corpora {
			b.Run(bc.name+"/"+corpus.name, func(b *testing.B) {
				dst := make([]byte, 0, 2*benchBlob)
				b.SetBytes(benchBlob * benchBlobs)
				var raw, stored int
				cpu := startCPUMeter()
				for b.Loop() {
					for _, blob := range corpus.blobs {
						out, _ := comp.Compress(dst, blob)
						raw += len(blob)
						stored += len(out)
					}
				}
				cpu.report(b, benchBlob*benchBlobs)
				b.ReportMetric(float64(raw)/float64(stored), "ratio")
			})
		}
	}
}

func BenchmarkDecompress(b *testing.B) {
	corpora := benchCorpora()
	for _, codec := range []Codec{Zstd, S2} {
		comp := mustCompressor(b, codec)
		for _, corpus := range corpora {
			type stored struct {
				data []byte
				used Codec
				raw  int
			}
			var blobs []stored
			for _, blob := range corpus.blobs {
				out, used := comp.Compress(nil, blob)
				blobs = append(blobs, stored{bytes.Clone(out), used, len(blob)})
			}
			b.Run(codec.String()+"/"+corpus.name, func(b *testing.B) {
				dst := make([]byte, 0, benchBlob)
				b.SetBytes(benchBlob * benchBlobs)
				cpu := startCPUMeter()
				for b.Loop() {
					for _, s := range blobs {
						if _, err := Decompress(dst, s.data, s.used, s.raw); err != nil {
							b.Fatal(err)
						}
					}
				}
				cpu.report(b, benchBlob*benchBlobs)
			})
		}
	}
}

// BenchmarkDecompressSmall decodes text blobs of 32 KiB, the size of the files most
// volumes hold many of, each into a buffer reused from blob to blob, as restore does.
func BenchmarkDecompressSmall(b *testing.B) {
	comp := mustCompressor(b, Zstd)
	const n, size = 64, 32 << 10
	var blobs [][]byte
	for i := range n {
		out, used := comp.Compress(nil, testutil.LogText(size, uint64(500+i)))
		if used != Zstd {
			b.Fatal("text did not compress")
		}
		blobs = append(blobs, bytes.Clone(out))
	}
	var dst []byte
	b.SetBytes(n * size)
	cpu := startCPUMeter()
	for b.Loop() {
		for _, blob := range blobs {
			out, err := Decompress(dst, blob, Zstd, size)
			if err != nil {
				b.Fatal(err)
			}
			dst = out[:0]
		}
	}
	cpu.report(b, n*size)
}

// BenchmarkSample measures the incompressibility test alone on a 1 MiB blob: the
// price every blob pays before it is compressed or skipped.
func BenchmarkSample(b *testing.B) {
	src := testutil.RandomBytes(benchBlob, 400)
	b.SetBytes(benchBlob)
	cpu := startCPUMeter()
	for b.Loop() {
		if !looksIncompressible(src) {
			b.Fatal("random data looked compressible")
		}
	}
	cpu.report(b, benchBlob)
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

// TestRedundantDataTheFastestLevelMisses: zstd's fastest level stores a column of
// increasing numbers raw; such data must still be compressed.
func TestRedundantDataTheFastestLevelMisses(t *testing.T) {
	var b []byte
	for i := 1; i <= 50000; i++ {
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '\n')
	}
	c, err := NewCompressor(Zstd)
	if err != nil {
		t.Fatal(err)
	}
	out, used := c.Compress(nil, b)
	if used != Zstd || len(out) > len(b)/2 {
		t.Fatalf("%d bytes of numbers stored as %d bytes with %v; want zstd, under half", len(b), len(out), used)
	}
	got, err := Decompress(nil, out, used, len(b))
	if err != nil || string(got) != string(b) {
		t.Fatalf("round trip: %v", err)
	}
}
