package crypto

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k, err := NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("hello, repository")
	sealed := k.Seal(nil, plain, []byte("ad"))
	if len(sealed) != len(plain)+Overhead {
		t.Fatalf("sealed length %d, want %d", len(sealed), len(plain)+Overhead)
	}
	got, err := k.Open(nil, sealed, []byte("ad"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tests := []struct {
		name   string
		sealed []byte
		ad     string
	}{
		{"wrong ad", sealed, "other"},
		{"flipped bit", flip(sealed, len(sealed)/2), "ad"},
		{"truncated", sealed[:len(sealed)-1], "ad"},
		{"too short", sealed[:5], "ad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := k.Open(nil, tt.sealed, []byte(tt.ad)); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("err = %v, want ErrUnauthenticated", err)
			}
		})
	}
	other, _ := NewRandomKey()
	if _, err := other.Open(nil, sealed, []byte("ad")); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("another key opened it: %v", err)
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	k, _ := NewRandomKey()
	a := k.Seal(nil, []byte("same"), nil)
	b := k.Seal(nil, []byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical: nonce reused")
	}
}

func TestKeyJSONRoundTrip(t *testing.T) {
	k, _ := NewRandomKey()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var k2 Key
	if err := json.Unmarshal(b, &k2); err != nil {
		t.Fatal(err)
	}
	if err := k2.Init(); err != nil {
		t.Fatal(err)
	}
	got, err := k2.Open(nil, k.Seal(nil, []byte("x"), nil), nil)
	if err != nil || string(got) != "x" || k2.MAC != k.MAC {
		t.Fatalf("restored key differs: %v", err)
	}
}

func TestParseID(t *testing.T) {
	id := ID(sha256.Sum256([]byte("x")))
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"valid", id.String(), true},
		{"short", "abcd", false},
		{"not hex", string(bytes.Repeat([]byte("z"), 64)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseID(tt.in)
			if (err == nil) != tt.ok || (tt.ok && got != id) {
				t.Errorf("ParseID(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
}

func TestPasswordAEAD(t *testing.T) {
	salt := []byte("0123456789abcdef0123456789abcdef")
	cheap := KDFParams{N: 1 << 10, R: 8, P: 1}
	a, err := PasswordAEAD([]byte("pw"), salt, cheap)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := PasswordAEAD([]byte("pw"), salt, cheap)
	c, _ := PasswordAEAD([]byte("other"), salt, cheap)
	sealed := Seal(a, nil, []byte("master"), nil)
	if _, err := Open(b, nil, sealed, nil); err != nil {
		t.Fatalf("same password: %v", err)
	}
	if _, err := Open(c, nil, sealed, nil); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("other password opened it: %v", err)
	}
	if _, err := PasswordAEAD([]byte("pw"), salt, KDFParams{N: 1000, R: 8, P: 1}); err == nil {
		t.Fatal("N not a power of two accepted")
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

func BenchmarkSeal(b *testing.B) {
	k, _ := NewRandomKey()
	data := make([]byte, 1<<20)
	dst := make([]byte, 0, len(data)+Overhead)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		k.Seal(dst[:0], data, []byte("ad"))
	}
}

// TestSealOpenInPlace: sealing and opening where the bytes are give what Seal and Open
// give, and the in-place forms read each other's output.
func TestSealOpenInPlace(t *testing.T) {
	k, err := NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 100, 70000} {
		plain := bytes.Repeat([]byte{byte(n), 7, 9}, n/3+1)[:n]
		buf := make([]byte, NonceSize+n, n+Overhead)
		copy(buf[NonceSize:], plain)
		sealed := k.SealInPlace(buf, n, []byte("ad"))
		if len(sealed) != n+Overhead || &sealed[0] != &buf[0] {
			t.Fatalf("n=%d: SealInPlace returned %d bytes elsewhere, want %d in place", n, len(sealed), n+Overhead)
		}
		got, err := k.Open(nil, sealed, []byte("ad"))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: Open of SealInPlace = %v", n, err)
		}
		got, err = k.OpenInPlace(k.Seal(nil, plain, []byte("ad")), []byte("ad"))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: OpenInPlace of Seal = %v", n, err)
		}
		if _, err := k.OpenInPlace(flip(k.Seal(nil, plain, []byte("ad")), NonceSize), []byte("ad")); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("n=%d: OpenInPlace of a damaged value = %v, want ErrUnauthenticated", n, err)
		}
	}
	if _, err := k.OpenInPlace(make([]byte, Overhead-1), nil); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("OpenInPlace of a short value = %v, want ErrUnauthenticated", err)
	}
}
