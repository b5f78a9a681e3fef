// Package testutil holds helpers shared by the tests of several packages: deterministic
// test data and CPU-time measurement for benchmarks. Only tests import it.
package testutil

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
)

// RandomBytes returns n bytes from a PRNG seeded with seed: incompressible, like
// media, archives and ciphertext, and the same on every run.
func RandomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	rand.NewChaCha8(s).Read(b)
	return b
}

// LogText returns n bytes of synthetic log lines: timestamps, levels, words and
// numbers.
func LogText(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	levels := []string{"INFO", "WARN", "DEBUG", "ERROR"}
	words := strings.Fields("request served user cache miss hit backend pod node volume " +
		"snapshot upload retry timeout connection reset bytes latency checksum ok failed " +
		"GET PUT POST /api/v1/namespaces /healthz /metrics status=200 status=404 status=500")
	var b bytes.Buffer
	b.Grow(n + 256)
	ts := int64(1_700_000_000_000)
	for b.Len() < n {
		ts += rng.Int64N(5000)
		fmt.Fprintf(&b, "2024-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s [%s] ",
			1+ts/1000%12, 1+ts/100000%28, ts/3600000%24, ts/60000%60, ts/1000%60, ts%1000,
			levels[rng.IntN(len(levels))], words[rng.IntN(len(words))])
		for range 3 + rng.IntN(8) {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "id=%08x took=%dms bytes=%d\n", rng.Uint32(), rng.IntN(2000), rng.IntN(1<<20))
	}
	return b.Bytes()[:n]
}
