// Package compress compresses blobs one at a time, before they are sealed, and skips
// data that will not compress.
//
// # Stored form
//
// The codec a blob was stored with is recorded next to it (pack header and index, see
// docs/repository-format.md) together with its uncompressed length, so Decompress
// needs both and checks the result against the length. Codec values are part of the
// format and never change:
//
//	0 none  the raw bytes
//	1 zstd  one zstd frame (RFC 8878), single segment, so it states its content size,
//	        with the 32-bit content checksum; any zstd decoder reads it
//	2 s2    an s2 block (github.com/klauspost/compress/s2: a varint length, then
//	        Snappy-style tags) followed by the CRC-32C (Castagnoli) of the raw bytes,
//	        4 bytes little-endian; s2 blocks carry no checksum of their own
//
// Sealing already authenticates every blob, so the checksums do not defend against
// tampering. They make a codec bug, or a blob decoded with the wrong codec, fail loudly
// instead of restoring wrong bytes, for about 5% of the decoding time (CRC-32C runs at
// ~20 GB/s here, s2 decodes text at ~1 GB/s).
//
// # Skipping incompressible data
//
// Media, archives, and encrypted or already compressed files make up much of a typical
// volume, and compressing them wastes CPU. Before compressing a blob of 64 KiB or more,
// Compress estimates the order-0 entropy of 16 windows of 1 KiB spread over it; above
// 7.9 bits per byte the blob is stored as is. A blob is also stored as is when
// compression saves less than 1/32 (about 3%) of it. Compress then returns the input
// slice itself, so no copy is made.
//
// The estimate costs about 13 µs per blob whatever its size (BenchmarkSample: 16 KiB of
// a 1 MiB blob, 75–90 GB/s measured on the blob). That is 6% of what zstd at its
// fastest level spends to find out for itself that 1 MiB of random data does not
// compress (~200 µs), 3% of what restic's zstd default level spends (~450 µs), and
// 0.25% of the cost of compressing 1 MiB of text. It never changed a ratio in the
// benchmarks below: it skips only what the codecs would have stored raw anyway.
//
// # Choosing the default
//
// The engine's targets: at least 2.5× restic's backup throughput on 2 cores, with a
// repository at most 1.15× the size of restic's. restic compresses every blob with zstd
// at its default level ("auto"). BenchmarkCompress and BenchmarkDecompress, 1 MiB blobs
// (the average chunk), one goroutine, AMD EPYC, medians of 4 runs, in MB of raw data
// per CPU-second; ratio is raw size over stored size; "mix" is two in five blobs of
// text, two random, one half and half:
//
//	                      text            random         mix            decode
//	                      MB/s   ratio    MB/s   ratio   MB/s   ratio   text / mix MB/s
//	restic-auto (zstd 3)   132   3.54     2350   1.00     269   1.62
//	zstd fastest           194   3.31    >75000  1.00     333   1.59    577 / 1158
//	zstd fastest, no skip  210   3.31     5150   1.00     328   1.59
//	s2                     494   2.34    >75000  1.00     745   1.44   1066 / 2022
//	s2 better              238   2.57    >68000  1.00     441   1.48
//
// Relative to restic, zstd at its fastest level stores 1.07× the bytes on text and
// 1.02× on the mix while compressing 1.5× and 1.2× faster, and it skips random data
// over 30× faster than restic compresses it. s2 is 3.7× (text) and 2.8× (mix) faster but
// stores 1.51× the bytes on text and 1.13× on the mix; s2's better mode still stores
// 1.38× on text. Only zstd meets the size bound on text-heavy volumes (logs, JSON,
// databases of text), and the throughput target can be met elsewhere: the chunker
// runs at over 2 GB per CPU-second and incompressible data costs almost nothing here.
// So Default is Zstd at its fastest level.
//
// What the numbers also say: on a volume of nothing but compressible text,
// compression bounds the backup at roughly 200 MB per CPU-second, 1.5× restic's
// compressor. Where speed matters more than the last third of the space, choose s2
// when creating the repository.
package compress
