package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/testutil"
)

// The scale tests back up generated trees of up to a million files, and a file of
// tens of GiB, with the real stash-job binary, and measure its peak RSS and wall
// time. They only run in `make soak` (test/soak/scale.sh). STASH_SCALE_DIR puts the
// generated data elsewhere than the temporary directory.

// scaleDir returns a fresh directory for generated data, removed at the end, and the
// free bytes and inodes of its file system.
func scaleDir(t *testing.T) (dir string, freeBytes, freeInodes uint64) {
	t.Helper()
	base := os.Getenv("STASH_SCALE_DIR")
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "stash-scale-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		start := time.Now()
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing the generated data: %v", err)
		}
		t.Logf("removed the generated data in %v", time.Since(start).Round(time.Second))
	})
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return dir, st.Bavail * uint64(st.Bsize), st.Ffree
}

// buildStashJob builds the stash-job binary into dir, as the image ships it.
func buildStashJob(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "stash-job")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// run is one measured run of the binary.
type measured struct {
	wall   time.Duration
	maxRSS int64 // bytes
	out    string
}

func (r measured) String() string {
	return fmt.Sprintf("%v wall, peak RSS %.1f MiB", r.wall.Round(100*time.Millisecond), float64(r.maxRSS)/(1<<20))
}

// measure runs bin with args and returns its wall time and peak RSS (getrusage of
// the child).
func measure(t *testing.T, bin string, args ...string) measured {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("stash-job %s: %v\n%s", strings.Join(args, " "), err, lastLines(out.String(), 20))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return measured{wall: wall, maxRSS: ru.Maxrss * 1024, out: out.String()}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// genTree adds directories d<from>..d<to-1> of filesPerDir files each below root:
// 0-2 KiB, every file different (its number, then bytes of a PRNG seeded with it),
// so neither compression nor deduplication makes them trivial.
func genTree(t *testing.T, root string, from, to, filesPerDir int) {
	t.Helper()
	dirs := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 2048+8)
			for d := range dirs {
				dir := filepath.Join(root, fmt.Sprintf("d%04d", d))
				if err := os.MkdirAll(dir, 0o755); err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				for f := range filesPerDir {
					n := uint64(d)*uint64(filesPerDir) + uint64(f)
					rng := rand.New(rand.NewPCG(n, 0x5ca1e))
					size := rng.IntN(2049)
					binary.LittleEndian.PutUint64(buf, n)
					for i := 8; i < 8+size; i += 8 {
						binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
					}
					if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", f)), buf[:min(8+size, len(buf))], 0o644); err != nil {
						select {
						case errs <- err:
						default:
						}
						break
					}
				}
			}
		}()
	}
	for d := from; d < to; d++ {
		dirs <- d
	}
	close(dirs)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("generating the tree: %v", err)
	default:
	}
}

// figure prints a line scale.sh collects into its report.
func figure(t *testing.T, format string, a ...any) {
	t.Helper()
	line := fmt.Sprintf(format, a...)
	t.Log(line)
	fmt.Printf("FIGURE %s\n", line)
}

// TestScaleManyFiles backs up 100,000 and then 1,000,000 small files, each into a
// fresh repository, and the million again unchanged: peak RSS must not grow with the
// number of files (it may grow with the number of directories' entries held at once,
// and with the index, not per file).
func TestScaleManyFiles(t *testing.T) {
	testutil.SoakOnly(t)
	const filesPerDir = 1000
	small := envInt(t, "STASH_SCALE_SMALL_FILES", 100_000) / filesPerDir
	large := envInt(t, "STASH_SCALE_FILES", 1_000_000) / filesPerDir
	dir, free, inodes := scaleDir(t)
	// a 0-2 KiB file takes one 4 KiB block; the repository about half the tree again
	if need := uint64(large*filesPerDir) * 6 << 10; free < need || inodes < uint64(large*(filesPerDir+1))+1000 {
		t.Skipf("%s: %d MiB and %d inodes free, the tree needs about %d MiB and %d inodes", dir, free>>20, inodes, need>>20, large*(filesPerDir+1))
	}
	bin := buildStashJob(t, dir)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("scale test password\n"), 0o600)
	tree := filepath.Join(dir, "tree")

	backup := func(label, repoName string, files int, extra ...string) measured {
		t.Helper()
		repoURL := "file://" + filepath.Join(dir, repoName)
		if _, err := os.Stat(filepath.Join(dir, repoName)); err != nil {
			measure(t, bin, "init", "--repo", repoURL, "--password-file", pw)
		}
		args := append([]string{"backup", "--repo", repoURL, "--password-file", pw, "--host", "scale"}, extra...)
		r := measure(t, bin, append(args, tree)...)
		if want := fmt.Sprintf("(%d total)", files); !strings.Contains(r.out, want) {
			t.Fatalf("%s: the backup did not report %s:\n%s", label, want, lastLines(r.out, 10))
		}
		figure(t, "%s: %s", label, r)
		return r
	}

	start := time.Now()
	genTree(t, tree, 0, small, filesPerDir)
	figure(t, "generated %d files in %v", small*filesPerDir, time.Since(start).Round(time.Second))
	rSmall := backup(fmt.Sprintf("backup of %d files", small*filesPerDir), "repo-small", small*filesPerDir)

	start = time.Now()
	genTree(t, tree, small, large, filesPerDir)
	figure(t, "generated %d more files in %v", (large-small)*filesPerDir, time.Since(start).Round(time.Second))
	rLarge := backup(fmt.Sprintf("backup of %d files", large*filesPerDir), "repo-large", large*filesPerDir)
	rAgain := backup(fmt.Sprintf("backup of %d files again, unchanged", large*filesPerDir), "repo-large", large*filesPerDir)
	if !strings.Contains(rAgain.out, fmt.Sprintf("0 new, 0 modified, %d unmodified", large*filesPerDir)) {
		t.Errorf("the unchanged backup did not find every file unmodified:\n%s", lastLines(rAgain.out, 5))
	}
	if st, err := dirSize(filepath.Join(dir, "repo-large")); err == nil {
		figure(t, "repository of %d files: %.1f MiB", large*filesPerDir, float64(st)/(1<<20))
	}

	ratio := float64(rLarge.maxRSS) / float64(rSmall.maxRSS)
	figure(t, "peak RSS %d files / %d files: %.2f (x%d files)", large*filesPerDir, small*filesPerDir, ratio, large/small)
	if rLarge.maxRSS >= 3*rSmall.maxRSS {
		t.Errorf("peak RSS grows with the number of files: %.1f MiB for %d files, %.1f MiB for %d",
			float64(rLarge.maxRSS)/(1<<20), large*filesPerDir, float64(rSmall.maxRSS)/(1<<20), small*filesPerDir)
	}
}

// TestScaleBigFile backs up a 1 GiB file and a 20 GiB one (STASH_SCALE_BIG_FILE_GIB)
// of generated data (STASH_SCALE_BIG_FILE_DATA, see bigFileKinds): peak RSS must be
// flat, at most 64 MiB more for the big one.
func TestScaleBigFile(t *testing.T) {
	testutil.SoakOnly(t)
	gib := envInt(t, "STASH_SCALE_BIG_FILE_GIB", 20)
	kind := bigFileKindFromEnv(t)
	dir, free, _ := scaleDir(t)
	if need := kind.need(int64(gib) << 30); free < need {
		t.Skipf("%s: %.2f GiB free, a %d GiB file of %s data and its repository need %.2f GiB: skipped (STASH_SCALE_DIR "+
			"names another file system, STASH_SCALE_BIG_FILE_GIB a smaller file, STASH_SCALE_BIG_FILE_DATA=hex "+
			"data whose repository is about two thirds of it)", dir, float64(free)/(1<<30), gib, kind.name, float64(need)/(1<<30))
	}
	bin := buildStashJob(t, dir)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("scale test password\n"), 0o600)

	var base measured
	for _, size := range []int{1, gib} {
		file := filepath.Join(dir, "big.bin")
		start := time.Now()
		if err := kind.write(file, int64(size)<<30, uint64(size)); err != nil {
			t.Fatal(err)
		}
		figure(t, "generated a %d GiB file of %s data in %v", size, kind.name, time.Since(start).Round(time.Second))
		repoDir := filepath.Join(dir, "repo")
		repoURL := "file://" + repoDir
		measure(t, bin, "init", "--repo", repoURL, "--password-file", pw)
		r := measure(t, bin, "backup", "--repo", repoURL, "--password-file", pw, "--host", "big", file)
		if !strings.Contains(r.out, "1 new") {
			t.Fatalf("backup of the %d GiB file:\n%s", size, lastLines(r.out, 5))
		}
		repoSize, _ := dirSize(repoDir)
		figure(t, "backup of a %d GiB file of %s data: %s, %.2f GiB/s, repository %.2f GiB (%.0f%% of the file)", size, kind.name, r,
			float64(size)/r.wall.Seconds(), float64(repoSize)/(1<<30), 100*float64(repoSize)/float64(int64(size)<<30))
		if least := int64(float64(int64(size)<<30) * kind.minRepo); repoSize < least {
			t.Errorf("the repository holds %d bytes for %d GiB of %s data, less than %.0f%%: deduplication or compression made the test trivial",
				repoSize, size, kind.name, 100*kind.minRepo)
		}
		os.RemoveAll(repoDir)
		os.Remove(file)
		if size == 1 {
			base = r
			continue
		}
		figure(t, "peak RSS %d GiB file - 1 GiB file: %+.1f MiB", size, float64(r.maxRSS-base.maxRSS)/(1<<20))
		if r.maxRSS > base.maxRSS+64<<20 {
			t.Errorf("peak RSS grows with the file: %.1f MiB for %d GiB, %.1f MiB for 1 GiB",
				float64(r.maxRSS)/(1<<20), size, float64(base.maxRSS)/(1<<20))
		}
	}
}

// bigFileKind is what TestScaleBigFile's file holds, and how large a repository that
// makes.
type bigFileKind struct {
	name string
	// repo is the expected repository size as a fraction of the file's, minRepo the
	// least the test accepts (less means deduplication or compression made it trivial).
	repo, minRepo float64
	write         func(path string, n int64, seed uint64) error
}

// bigFileKinds are the values of STASH_SCALE_BIG_FILE_DATA; the first is the default.
var bigFileKinds = []bigFileKind{
	// random bytes neither compress nor deduplicate: the repository is as large as the file
	{name: "random", repo: 1, minRepo: 0.9, write: writeRandomFile},
	// random hexadecimal text never deduplicates and compresses to about half (4 bits of
	// 8 per byte; the repository measured 64% of the file), for a disk with room for the
	// file and two thirds of it, not twice the file; test/soak/scale.sh picks it then
	{name: "hex", repo: 0.65, minRepo: 0.4, write: writeHexFile},
}

func bigFileKindFromEnv(t *testing.T) bigFileKind {
	t.Helper()
	v := os.Getenv("STASH_SCALE_BIG_FILE_DATA")
	if v == "" {
		return bigFileKinds[0]
	}
	var names []string
	for _, k := range bigFileKinds {
		if k.name == v {
			return k
		}
		names = append(names, k.name)
	}
	t.Fatalf("STASH_SCALE_BIG_FILE_DATA=%q: want one of %s", v, strings.Join(names, ", "))
	return bigFileKind{}
}

// need is the free space a file of n bytes needs: the file, its repository and a
// sixteenth of the file to spare. test/soak/scale.sh computes the same.
func (k bigFileKind) need(n int64) uint64 {
	return uint64(n) + uint64(float64(n)*k.repo) + uint64(n)/16
}

// writeRandomFile writes n bytes of ChaCha8 output seeded with seed: no two blocks
// alike, nothing to compress.
func writeRandomFile(path string, n int64, seed uint64) error {
	return writeGenerated(path, n, seed, func(rng *rand.ChaCha8, b []byte) { rng.Read(b) })
}

// writeHexFile writes n bytes of lowercase hexadecimal text encoding ChaCha8 output
// seeded with seed (a different stream than writeRandomFile's): no two blocks alike,
// 4 bits of entropy per byte.
func writeHexFile(path string, n int64, seed uint64) error {
	var raw []byte
	return writeGenerated(path, n, seed^0x6865780000000000, func(rng *rand.ChaCha8, b []byte) {
		if cap(raw) < (len(b)+1)/2 {
			raw = make([]byte, (len(b)+1)/2)
		}
		r := raw[:(len(b)+1)/2]
		rng.Read(r)
		hex.Encode(b[:len(b)&^1], r[:len(b)/2])
		if len(b)%2 == 1 {
			b[len(b)-1] = "0123456789abcdef"[r[len(r)-1]&0xf]
		}
	})
}

// writeGenerated writes n bytes that fill produces, 4 MiB at a time, from a ChaCha8
// generator seeded with seed.
func writeGenerated(path string, n int64, seed uint64, fill func(rng *rand.ChaCha8, b []byte)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	rng := rand.NewChaCha8(s)
	buf := make([]byte, 4<<20)
	for left := n; left > 0; left -= int64(len(buf)) {
		b := buf[:min(int64(len(buf)), left)]
		fill(rng, b)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	return n, err
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
