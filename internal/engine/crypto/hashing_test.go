package crypto

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Known answers: RFC 4231 test case 2 (HMAC-SHA-256 with the key "Jefe": a key shorter
// than the block is zero-padded, so it equals the 32-byte mac key "Jefe" ‖ 28 zeros),
// FIPS 180-2's SHA-256("abc"), and the BLAKE3 reference test vectors (input byte i is
// i mod 251; the keyed vectors use the key "whats the Elvish word for friend").
func TestHashingKnownAnswers(t *testing.T) {
	var jefe [32]byte
	copy(jefe[:], "Jefe")
	var elvish [32]byte
	copy(elvish[:], "whats the Elvish word for friend")
	vector := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i % 251)
		}
		return b
	}
	tests := []struct {
		name, hash string
		key        [32]byte
		data       []byte
		blobID     string // "" to skip
		sum        string // "" to skip
	}{
		{"hmac-sha256 rfc4231", SHA256, jefe, []byte("what do ya want for nothing?"),
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", ""},
		{"sha256 abc", SHA256, jefe, []byte("abc"),
			"", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"blake3 empty", BLAKE3, elvish, nil,
			"92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26",
			"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{"blake3 1 byte", BLAKE3, elvish, vector(1),
			"6d7878dfff2f485635d39013278ae14f1454b8c0a3a2d34bc1ab38228a80c95b",
			"2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHashing(tt.hash, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if id := h.BlobID(tt.data); tt.blobID != "" && id.String() != tt.blobID {
				t.Errorf("BlobID = %s, want %s", id, tt.blobID)
			}
			if id := h.Sum(tt.data); tt.sum != "" && id.String() != tt.sum {
				t.Errorf("Sum = %s, want %s", id, tt.sum)
			}
		})
	}
}

func TestHashing(t *testing.T) {
	data := []byte(strings.Repeat("content ", 10000)) // several BLAKE3 chunks
	for _, name := range []string{SHA256, BLAKE3} {
		t.Run(name, func(t *testing.T) {
			k1, k2 := [32]byte{1}, [32]byte{2}
			h1, err := NewHashing(name, k1)
			if err != nil {
				t.Fatal(err)
			}
			h2, _ := NewHashing(name, k2)
			if h1.Name() != name {
				t.Errorf("Name = %q", h1.Name())
			}
			if h1.BlobID(data) != h1.BlobID(data) {
				t.Fatal("blob id not deterministic")
			}
			if h1.BlobID(data) == h2.BlobID(data) || h1.BlobID(data) == h1.Sum(data) {
				t.Fatal("blob id does not depend on the key")
			}
			if h1.Sum(data) != h2.Sum(data) {
				t.Fatal("object names depend on the key: check could not verify them without it")
			}
			s := h1.New()
			s.Write(data[:1000])
			s.Write(data[1000:])
			if got := ID(s.Sum(nil)); got != h1.Sum(data) {
				t.Errorf("streaming %s, Sum %s", got, h1.Sum(data))
			}
			// Pooled keyed states are reset between uses, from any goroutine.
			want := h1.BlobID(data)
			var wg sync.WaitGroup
			errs := make(chan string, 8)
			for i := range 8 {
				wg.Go(func() {
					for j := range 50 {
						if got := h1.BlobID(data[:len(data)-i-j]); j == 0 && i == 0 && got != want {
							errs <- fmt.Sprintf("goroutine %d: %s, want %s", i, got, want)
						}
						h1.BlobID([]byte{byte(j)})
					}
				})
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
			if h1.BlobID(data) != want {
				t.Error("blob id changed after concurrent use")
			}
		})
	}
	if _, err := NewHashing("md5", [32]byte{}); err == nil || !strings.Contains(err.Error(), `"md5"`) {
		t.Errorf("unknown hash: err = %v", err)
	}
}

// BenchmarkBlobID compares the two hashes at the average chunk (1 MiB) and a typical
// small file (32 KiB). BLAKE3 is the default because it is over twice as fast here.
func BenchmarkBlobID(b *testing.B) {
	for _, name := range []string{SHA256, BLAKE3} {
		for _, n := range []int{32 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%s/%dKiB", name, n>>10), func(b *testing.B) {
				h, _ := NewHashing(name, [32]byte{7})
				data := make([]byte, n)
				b.SetBytes(int64(n))
				for b.Loop() {
					h.BlobID(data)
				}
			})
		}
	}
}
