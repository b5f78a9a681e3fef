// Package chunker cuts a byte stream into content-defined chunks, so that an edit in
// the middle of a large file changes only the chunks around the edit and every other
// chunk deduplicates against earlier snapshots.
//
// # Algorithm
//
// The chunker belongs to the FastCDC family (Xia et al., USENIX ATC 2016):
//
//   - Rolling hash: a gear hash, h = h<<1 + G[b], where G is a table of 256 64-bit
//     words. Older bytes are shifted out of the word, so bit k of h depends only on the
//     last k+1 bytes and the top bit on the last 64: the hash needs no explicit window
//     and costs a shift, a table load and an add per byte.
//   - Cut condition: a chunk ends after byte i when the bits of h selected by a mask are
//     all zero. The mask takes the high bits, which depend on the most bytes, but not
//     bit 63: with bit 63 free the loop can consume two bytes per step ("rolling two
//     bytes", FastCDC 2020) by testing the first byte's hash shifted left by one.
//   - Cut-point skipping: no cut is tested before MinSize. Hashing restarts 64 bytes
//     before MinSize, which yields exactly the hash a full scan would have had there, so
//     skipping changes speed, not boundaries.
//   - Normalized chunking (level 2): lengths below the normal point are tested with a
//     mask of log2(AvgSize)+2 bits (cuts are 4× rarer), lengths from the normal point on
//     with log2(AvgSize)-2 bits (4× likelier). This squeezes the size distribution
//     towards the average, so fewer chunks hit MaxSize or sit just above MinSize.
//     The normal point is halfway between MinSize and AvgSize rather than at AvgSize as
//     in the paper: with cut-point skipping, a normal point at AvgSize gives a mean
//     chunk of about 1.2×AvgSize when MinSize is AvgSize/2, while the midpoint gives
//     about 0.98×AvgSize, so AvgSize means what it says.
//   - A chunk that reaches MaxSize without a cut is cut there. The last chunk of a
//     stream may be shorter than MinSize.
//
// # Secret gear table
//
// The table G is derived from the repository's 32-byte secret seed (HMAC-SHA-256 in
// counter mode, see NewTable). With a public table, chunk boundaries, and hence the
// sizes of stored blobs, would reveal which known files a repository holds, as
// restic's per-repository random polynomial prevents for Rabin fingerprints. Deriving
// a table costs 64 HMAC computations; build one Table per repository and share it:
// it is read-only and safe for concurrent use.
//
// # Compatibility
//
// The boundaries are a pure function of the input, the Params, the seed and this
// algorithm, identified by the constant Algorithm, which the repository config records
// with the params. Any change that moves a boundary must come with a new Algorithm
// name, or existing repositories stop deduplicating against new backups.
//
// # Performance
//
// The inner loop is a range loop over a byte slice with the table behind fixed-size
// array pointers, so it has no bounds checks or calls, and it takes two bytes per step.
// Cut-point skipping means only about half of the bytes are hashed with DefaultParams.
// Data is read straight into the caller's buffer (which grows on demand up to the
// largest chunk, so small files stay cheap), 128 KiB at a time once a chunk has reached
// MinSize. Only the tail read past a cut is copied, into the Chunker's own buffer of one
// read and back at the next call, so the Chunker allocates nothing in the steady state,
// holds 128 KiB whatever MaxSize is, and copies about an eighth of the data instead of
// all of it (which, with the reads into an 8 MiB buffer it replaced, gained 15-20% in
// BenchmarkChunker).
//
// BenchmarkChunker, DefaultParams, 64 MiB per iteration, one goroutine, AMD EPYC
// (2 cores, shared with other work), medians of 4 runs: random data 2.0 GB and
// synthetic log text 2.1–2.8 GB per CPU-second, mean chunk 1.00 MiB and 0.97 MiB.
// The rolling hash alone (BenchmarkScan) runs at about 1.6 GB/s. Unrolling the
// one-byte loop by four gained nothing measurable; the two-byte step gained 15–25%.
// NewTable takes about 14 µs.
package chunker
