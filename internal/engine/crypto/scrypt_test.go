package crypto

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/scrypt"
)

// TestScryptVectors: the test vectors of RFC 7914 §12 (the last one, N=2^20, costs 1 GiB
// and is left to -run with the long tests).
func TestScryptVectors(t *testing.T) {
	for _, tt := range []struct {
		password, salt string
		N, r, p        int
		want           string
	}{
		{"", "", 16, 1, 1, "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"},
		{"password", "NaCl", 1024, 8, 16, "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"},
		{"pleaseletmein", "SodiumChloride", 16384, 8, 1, "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887"},
	} {
		got, err := scryptKey([]byte(tt.password), []byte(tt.salt), tt.N, tt.r, tt.p, 64)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != tt.want {
			t.Errorf("scrypt(%q, %q, N=%d, r=%d, p=%d) = %x, want %s", tt.password, tt.salt, tt.N, tt.r, tt.p, got, tt.want)
		}
	}
}

// TestScryptMatchesReference: the same output as golang.org/x/crypto/scrypt over a
// range of parameters, odd and even key lengths.
func TestScryptMatchesReference(t *testing.T) {
	for _, tt := range []struct{ N, r, p, keyLen int }{
		{2, 1, 1, 32}, {4, 1, 1, 32}, {1024, 1, 1, 32}, {1024, 8, 1, 32}, {2048, 3, 2, 17}, {1 << 14, 8, 1, 32}, {1024, 2, 3, 64},
	} {
		t.Run(fmt.Sprintf("N=%d r=%d p=%d", tt.N, tt.r, tt.p), func(t *testing.T) {
			pw, salt := []byte("correct horse"), []byte("battery staple salt 0123456789ab")
			want, err := scrypt.Key(pw, salt, tt.N, tt.r, tt.p, tt.keyLen)
			if err != nil {
				t.Fatal(err)
			}
			for _, keep := range []int{1, 2, 4, 8} {
				got, err := scryptKeyKeep(pw, salt, tt.N, tt.r, tt.p, tt.keyLen, keep)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("keeping 1 block in %d: got %x, %v; want %x", keep, got, err, want)
				}
			}
		})
	}
}

func TestScryptRejectsBadParams(t *testing.T) {
	for _, tt := range []struct{ N, r, p int }{{0, 8, 1}, {1, 8, 1}, {1000, 8, 1}, {1024, 0, 1}, {1024, 8, 0}} {
		if _, err := scryptKey([]byte("x"), []byte("y"), tt.N, tt.r, tt.p, 32); err == nil {
			t.Errorf("N=%d r=%d p=%d: no error", tt.N, tt.r, tt.p)
		}
	}
}

// BenchmarkScrypt: DefaultKDF with the trade-off (half the memory) and with
// golang.org/x/crypto/scrypt (the textbook algorithm).
func BenchmarkScrypt(b *testing.B) {
	p := DefaultKDF
	pw, salt := []byte("password"), []byte("0123456789abcdef0123456789abcdef")
	for _, keep := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("keep-1-in-%d", keep), func(b *testing.B) {
			for b.Loop() {
				if _, err := scryptKeyKeep(pw, salt, p.N, p.R, p.P, 32, keep); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("x-crypto", func(b *testing.B) {
		for b.Loop() {
			if _, err := scrypt.Key(pw, salt, p.N, p.R, p.P, 32); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSalsa8MatchesGeneric: the platform's salsa8 (SSE2 on amd64) and the portable one
// agree, also when the output overwrites x. (GOARCH=386 go test runs the portable one
// through the RFC vectors.)
func TestSalsa8MatchesGeneric(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	for range 2000 {
		var x, in, got, want [16]uint32
		for i := range x {
			x[i], in[i] = rnd.Uint32(), rnd.Uint32()
		}
		salsa8(&got, &x, &in)
		salsa8Generic(&want, &x, &in)
		if got != want {
			t.Fatalf("salsa8(%x, %x) = %x, portable %x", x, in, got, want)
		}
		salsa8(&x, &x, &in)
		if x != want {
			t.Fatalf("salsa8 in place = %x, want %x", x, want)
		}
	}
}
