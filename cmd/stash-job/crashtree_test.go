//go:build crashpoints

package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// crashTree is a source directory whose content the crash test changes between backups,
// deterministically from a seed: many small compressible files in a few directories,
// some incompressible files of a MiB or two (several packs at the test's pack size), a
// symbolic link, and varied modes.
type crashTree struct {
	dir string
	rnd *rand.Rand
	gen int
}

func newCrashTree(t *testing.T, dir string, seed uint64) *crashTree {
	t.Helper()
	ct := &crashTree{dir: dir, rnd: rand.New(rand.NewPCG(seed, seed^0x5eed))}
	for d := range 6 {
		for f := range 25 {
			ct.writeSmall(t, fmt.Sprintf("small/d%02d/f%03d.txt", d, f))
		}
	}
	for i := range 3 {
		ct.writeRandom(t, fmt.Sprintf("big/b%d.bin", i), 1<<20+ct.rnd.IntN(1<<20))
	}
	if err := os.Symlink("small/d00/f000.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "small", "d01"), 0o750); err != nil {
		t.Fatal(err)
	}
	return ct
}

var crashModes = []os.FileMode{0o644, 0o600, 0o755, 0o640}

func (ct *crashTree) writeFile(t *testing.T, rel string, b []byte, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(ct.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(p) // a new mode, not the old file's
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

// writeSmall writes up to 4 KiB of text that compresses and partly repeats across files.
func (ct *crashTree) writeSmall(t *testing.T, rel string) {
	var sb strings.Builder
	n := ct.rnd.IntN(4096)
	for sb.Len() < n {
		fmt.Fprintf(&sb, "%s generation %d line %d value %x\n", rel, ct.gen, sb.Len(), ct.rnd.Uint32()&0xff)
	}
	ct.writeFile(t, rel, []byte(sb.String()[:n]), crashModes[ct.rnd.IntN(len(crashModes))])
}

func (ct *crashTree) writeRandom(t *testing.T, rel string, n int) {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := ct.rnd.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	ct.writeFile(t, rel, b, 0o644)
}

// change rewrites a few small files, replaces one big file, overwrites a stretch of
// another, creates one file, deletes one and changes a mode: every backup has new data
// for several packs, and garbage for prune once the snapshots holding the old versions go.
func (ct *crashTree) change(t *testing.T) {
	t.Helper()
	ct.gen++
	for range 12 {
		ct.writeSmall(t, fmt.Sprintf("small/d%02d/f%03d.txt", ct.rnd.IntN(6), ct.rnd.IntN(25)))
	}
	ct.writeSmall(t, fmt.Sprintf("small/new/g%03d.txt", ct.gen))
	if ct.gen > 3 {
		os.Remove(filepath.Join(ct.dir, fmt.Sprintf("small/new/g%03d.txt", ct.gen-3)))
	}
	b := ct.rnd.IntN(3)
	ct.writeRandom(t, fmt.Sprintf("big/b%d.bin", b), 1<<20+ct.rnd.IntN(1<<20))
	other := filepath.Join(ct.dir, fmt.Sprintf("big/b%d.bin", (b+1)%3))
	data, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	off := ct.rnd.IntN(len(data) / 2)
	for i := off; i < off+256<<10 && i < len(data); i++ {
		data[i] = byte(ct.rnd.Uint32())
	}
	ct.writeFile(t, fmt.Sprintf("big/b%d.bin", (b+1)%3), data, 0o644)
	p := filepath.Join(ct.dir, fmt.Sprintf("small/d%02d/f%03d.txt", ct.rnd.IntN(6), ct.rnd.IntN(25)))
	if err := os.Chmod(p, crashModes[ct.rnd.IntN(len(crashModes))]); err != nil {
		t.Fatal(err)
	}
}
