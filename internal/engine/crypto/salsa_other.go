//go:build !amd64

package crypto

// salsa8 sets out to Salsa20/8(x xor in), all three in salsaOrder; out may be x.
func salsa8(out, x, in *[16]uint32) { salsa8Generic(out, x, in) }
