package crypto

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"
)

// scryptKey is scrypt (RFC 7914), computed in a quarter of the memory the textbook
// algorithm takes: the same function, the same output as any scrypt, for a little more
// time.
//
// ROMix fills a table V of N blocks (128·r bytes each: 64 MiB for DefaultKDF), then
// reads N of them back in an order that depends on the data. Keeping only every fourth
// block, and computing the others from the kept one before them (up to three BlockMix
// calls, 1.5 on average) when they are asked for, makes V 16 MiB and the work 3.5N
// BlockMix calls instead of 2N; a smaller table also misses the caches less, so the
// time grows by about a third (BenchmarkScrypt: 0.14 s keeping every block, 0.15 s every
// second, 0.19 s every fourth, 0.28 s every eighth). The derivation is the peak memory
// of every command that does little else: 48 MiB less is most of the difference
// between an unchanged backup's footprint and restic's. This is the time-memory
// trade-off scrypt's design admits; it does not weaken the function: an attacker has it
// anyway.
func scryptKey(password, salt []byte, N, r, p, keyLen int) ([]byte, error) {
	return scryptKeyKeep(password, salt, N, r, p, keyLen, scryptKeep)
}

// scryptKeep is how sparsely scryptKey keeps ROMix's table: every fourth block.
const scryptKeep = 4

// scryptKeyKeep is scryptKey keeping every keep-th block (a power of two).
func scryptKeyKeep(password, salt []byte, N, r, p, keyLen, keep int) ([]byte, error) {
	if N < 2 || N&(N-1) != 0 {
		return nil, errors.New("scrypt: N must be a power of two above 1")
	}
	if r < 1 || p < 1 || uint64(r)*uint64(p) >= 1<<30 || r > 1<<20 || N > 1<<30/r {
		return nil, errors.New("scrypt: parameters out of range")
	}
	keep = min(keep, N)
	R := 32 * r // words in a block
	b, err := pbkdf2.Key(sha256.New, string(password), salt, 1, p*128*r)
	if err != nil {
		return nil, err
	}
	v := make([]uint32, (N/keep)*R)
	xyt := make([]uint32, 3*R)
	for i := range p {
		romix(b[i*128*r:(i+1)*128*r], r, N, keep, v, xyt)
	}
	return pbkdf2.Key(sha256.New, string(password), b, 1, keyLen)
}

// romix is scryptROMix (RFC 7914 §5) over the block b, in place, keeping every keep-th
// block of V in v; xyt is scratch space for three blocks.
func romix(b []byte, r, N, keep int, v, xyt []uint32) {
	R := 32 * r
	x, y, t := xyt[:R], xyt[R:2*R], xyt[2*R:3*R]
	// Blocks are kept with the words of each 64-byte sub-block in the order salsa8
	// works in (see salsaOrder); XOR and copies do not care.
	for i := range x {
		x[i&^15|salsaPos[i&15]] = binary.LittleEndian.Uint32(b[4*i:])
	}
	for i := range N {
		if i%keep == 0 {
			copy(v[(i/keep)*R:], x)
		}
		blockMix(x, y, r)
		x, y = y, x
	}
	for range N {
		// Integerify: words 0 and 1 of the last sub-block.
		j := int(uint64(x[R-16+salsaPos[0]])|uint64(x[R-16+salsaPos[1]])<<32) & (N - 1)
		stored := v[(j/keep)*R : (j/keep+1)*R]
		if j%keep == 0 {
			xorBlock(x, stored)
		} else {
			// V[j] is BlockMix applied j%keep times to the stored block before it.
			copy(t, stored)
			for range j % keep {
				blockMix(t, y, r)
				t, y = y, t
			}
			xorBlock(x, t)
		}
		blockMix(x, y, r)
		x, y = y, x
	}
	for i := range x {
		binary.LittleEndian.PutUint32(b[4*i:], x[i&^15|salsaPos[i&15]])
	}
}

func xorBlock(dst, src []uint32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// blockMix is scryptBlockMix (RFC 7914 §4) with Salsa20/8, from in to out: the
// 2r 64-byte sub-blocks of the result go even ones first, then odd ones. Each
// Salsa20/8 reads the previous one's output where it wrote it.
func blockMix(in, out []uint32, r int) {
	prev := (*[16]uint32)(in[(2*r-1)*16:])
	for i := 0; i < 2*r; i += 2 {
		even := (*[16]uint32)(out[i*8:])
		salsa8(even, prev, (*[16]uint32)(in[i*16:]))
		odd := (*[16]uint32)(out[i*8+r*16:])
		salsa8(odd, even, (*[16]uint32)(in[i*16+16:]))
		prev = odd
	}
}

// salsaOrder is the order of the words of a 64-byte sub-block in memory: the four
// diagonals of the 4x4 Salsa20 matrix, each rotated so that a column round works
// lane by lane on four vectors, (x0 x5 x10 x15) (x4 x9 x14 x3) (x8 x13 x2 x7)
// (x12 x1 x6 x11). The vector code (salsa8 on amd64) needs it; the portable code reads
// the words through salsaPos.
var salsaOrder = [16]int{0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11}

// salsaPos[i] is where word i of a sub-block is kept.
var salsaPos = func() (p [16]int) {
	for pos, w := range salsaOrder {
		p[w] = pos
	}
	return p
}()

// salsa8Generic sets out to Salsa20/8(x xor in), all three in salsaOrder; out may be x.
func salsa8Generic(out, x, in *[16]uint32) {
	// positions of words 0..15: 0 13 10 7 4 1 14 11 8 5 2 15 12 9 6 3
	w0, w1, w2, w3 := x[0]^in[0], x[13]^in[13], x[10]^in[10], x[7]^in[7]
	w4, w5, w6, w7 := x[4]^in[4], x[1]^in[1], x[14]^in[14], x[11]^in[11]
	w8, w9, w10, w11 := x[8]^in[8], x[5]^in[5], x[2]^in[2], x[15]^in[15]
	w12, w13, w14, w15 := x[12]^in[12], x[9]^in[9], x[6]^in[6], x[3]^in[3]
	a0, a1, a2, a3, a4, a5, a6, a7 := w0, w1, w2, w3, w4, w5, w6, w7
	a8, a9, a10, a11, a12, a13, a14, a15 := w8, w9, w10, w11, w12, w13, w14, w15
	for range 4 { // 8 rounds: 4 double rounds, columns then rows
		a4 ^= bits.RotateLeft32(a0+a12, 7)
		a8 ^= bits.RotateLeft32(a4+a0, 9)
		a12 ^= bits.RotateLeft32(a8+a4, 13)
		a0 ^= bits.RotateLeft32(a12+a8, 18)
		a9 ^= bits.RotateLeft32(a5+a1, 7)
		a13 ^= bits.RotateLeft32(a9+a5, 9)
		a1 ^= bits.RotateLeft32(a13+a9, 13)
		a5 ^= bits.RotateLeft32(a1+a13, 18)
		a14 ^= bits.RotateLeft32(a10+a6, 7)
		a2 ^= bits.RotateLeft32(a14+a10, 9)
		a6 ^= bits.RotateLeft32(a2+a14, 13)
		a10 ^= bits.RotateLeft32(a6+a2, 18)
		a3 ^= bits.RotateLeft32(a15+a11, 7)
		a7 ^= bits.RotateLeft32(a3+a15, 9)
		a11 ^= bits.RotateLeft32(a7+a3, 13)
		a15 ^= bits.RotateLeft32(a11+a7, 18)

		a1 ^= bits.RotateLeft32(a0+a3, 7)
		a2 ^= bits.RotateLeft32(a1+a0, 9)
		a3 ^= bits.RotateLeft32(a2+a1, 13)
		a0 ^= bits.RotateLeft32(a3+a2, 18)
		a6 ^= bits.RotateLeft32(a5+a4, 7)
		a7 ^= bits.RotateLeft32(a6+a5, 9)
		a4 ^= bits.RotateLeft32(a7+a6, 13)
		a5 ^= bits.RotateLeft32(a4+a7, 18)
		a11 ^= bits.RotateLeft32(a10+a9, 7)
		a8 ^= bits.RotateLeft32(a11+a10, 9)
		a9 ^= bits.RotateLeft32(a8+a11, 13)
		a10 ^= bits.RotateLeft32(a9+a8, 18)
		a12 ^= bits.RotateLeft32(a15+a14, 7)
		a13 ^= bits.RotateLeft32(a12+a15, 9)
		a14 ^= bits.RotateLeft32(a13+a12, 13)
		a15 ^= bits.RotateLeft32(a14+a13, 18)
	}
	out[0], out[13], out[10], out[7] = a0+w0, a1+w1, a2+w2, a3+w3
	out[4], out[1], out[14], out[11] = a4+w4, a5+w5, a6+w6, a7+w7
	out[8], out[5], out[2], out[15] = a8+w8, a9+w9, a10+w10, a11+w11
	out[12], out[9], out[6], out[3] = a12+w12, a13+w13, a14+w14, a15+w15
}
