package crypto

// salsa8 sets out to Salsa20/8(x xor in), all three in salsaOrder; out may be x. SSE2,
// which every amd64 processor has: the four columns (then rows) of a round at once.
//
//go:noescape
func salsa8(out, x, in *[16]uint32)
