// gen writes the deterministic data set of the backup benchmark (test/bench/bench.sh) and
// applies its "5 % change" step.
//
//	gen -dir D -seed S [-scale F]   write the tree into D (which must not exist or be empty)
//	gen -dir D -seed S -change      change the tree in D in place
//
// At scale 1 the tree holds about 1.4 GB:
//
//	small/gNN/dNN/*.log   20,000 log-like text files of 1-64 KiB in 100 directories
//	large/random-NN.bin   10 files of 50 MiB of random (incompressible) bytes
//	large/text-NN.log     5 files of 50 MiB of log-like text
//
// -scale multiplies the number of small files and the size of the large files (their number
// stays the same: the change step needs at least two of each kind). The text compresses
// about 3-5x with zstd: timestamps, levels, component names, words from a skewed vocabulary,
// numbers, paths and request ids, the way application logs look.
//
// The same seed and scale give a byte-identical tree: contents, names, modes and
// modification times (a fixed base time plus the file's index). Every file's content comes
// from its own generator seeded by (seed, file), so the parallel writers do not affect it.
//
// The change step, also determined by the seed alone: a few log lines are appended to 1 in
// 20 small files; 1/50 of its size (1 MiB at scale 1) is appended to one random and one text
// large file; 4/50 of its size (4 MiB) is overwritten in the middle of another random and
// another text large file. Changed files get a fixed later modification time, so change
// detection by size, mtime or ctime sees every one of them.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	smallFiles   = 20000
	dirGroups    = 10 // small/gNN
	dirsPerGroup = 10 // small/gNN/dNN
	randomFiles  = 10
	textFiles    = 5
	largeSize    = 50 << 20
	minSmall     = 1 << 10
	maxSmall     = 64 << 10
	chunk        = 4 << 20 // write size for the large files
)

var (
	baseTime   = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	changeTime = time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
)

// Stream keys: every file's generator is seeded with (seed, key).
const (
	keySmall  = 1 << 40
	keyRandom = 2 << 40
	keyText   = 3 << 40
	keyChange = 4 << 40
)

func main() {
	dir := flag.String("dir", "", "directory of the data set (required)")
	seed := flag.Uint64("seed", 1, "seed: the same seed and scale give a byte-identical tree")
	scale := flag.Float64("scale", 1, "multiplies the number of small files and the size of the large files")
	change := flag.Bool("change", false, "apply the change step to the tree in -dir instead of writing it")
	verbose := flag.Bool("v", false, "list every file the change step touches")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage:\n  gen -dir D -seed S [-scale F]\n  gen -dir D -seed S -change [-v]\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	if *change {
		err = applyChange(*dir, *seed, *verbose)
	} else {
		if *scale <= 0 || math.IsNaN(*scale) || math.IsInf(*scale, 0) {
			fmt.Fprintln(os.Stderr, "gen: -scale must be a positive number")
			os.Exit(2)
		}
		err = generate(*dir, *seed, *scale)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// job writes one file.
type job struct {
	path  string
	size  int64
	mtime time.Time
	write func(f *os.File, size int64, r *rand.Rand) error
	key   uint64
}

func generate(dir string, seed uint64, scale float64) error {
	start := time.Now()
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s is not empty: remove it first", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	nSmall := max(1, int(math.Round(smallFiles*scale)))
	nDirs := dirGroups * dirsPerGroup
	bigSize := max(int64(64<<10), int64(math.Round(largeSize*scale)))

	dirs := []string{dir, filepath.Join(dir, "small"), filepath.Join(dir, "large")}
	for g := range dirGroups {
		dirs = append(dirs, filepath.Join(dir, "small", fmt.Sprintf("g%02d", g)))
		for d := range dirsPerGroup {
			dirs = append(dirs, filepath.Join(dir, "small", fmt.Sprintf("g%02d", g), fmt.Sprintf("d%02d", d)))
		}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	var jobs []job
	idx := 0
	next := func() time.Time { idx++; return baseTime.Add(time.Duration(idx) * time.Second) }
	// The large files first: they take longest and should not be left for last.
	for k := range randomFiles {
		jobs = append(jobs, job{path: filepath.Join(dir, "large", fmt.Sprintf("random-%02d.bin", k)),
			size: bigSize, mtime: next(), write: writeRandom, key: keyRandom + uint64(k)})
	}
	for k := range textFiles {
		jobs = append(jobs, job{path: filepath.Join(dir, "large", fmt.Sprintf("text-%02d.log", k)),
			size: bigSize, mtime: next(), write: writeText, key: keyText + uint64(k)})
	}
	for i := range nSmall {
		d := i * nDirs / nSmall
		r := newRand(seed, keySmall+uint64(i))
		size := int64(minSmall + r.IntN(maxSmall-minSmall+1))
		name := fmt.Sprintf("%s-%05d.log", components[r.IntN(len(components))], i)
		jobs = append(jobs, job{path: filepath.Join(dir, "small", fmt.Sprintf("g%02d", d/dirsPerGroup), fmt.Sprintf("d%02d", d%dirsPerGroup), name),
			size: size, mtime: next(), write: writeText, key: keySmall + uint64(i) + 1<<32})
	}

	var total int64
	for _, j := range jobs {
		total += j.size
	}
	err := runJobs(jobs, func(j job) error {
		f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if err := j.write(f, j.size, newRand(seed, j.key)); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", j.path, err)
		}
		if err := f.Chmod(0o644); err != nil { // whatever the umask
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Chtimes(j.path, j.mtime, j.mtime)
	})
	if err != nil {
		return err
	}
	// Directories last (creating files changes their mtime), deepest first.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i], 0o755); err != nil {
			return err
		}
		if err := os.Chtimes(dirs[i], baseTime, baseTime); err != nil {
			return err
		}
	}
	el := time.Since(start)
	fmt.Printf("gen: wrote %d files, %d bytes (%.1f MiB) into %s in %.1fs (%.0f MiB/s)\n",
		len(jobs), total, float64(total)/(1<<20), dir, el.Seconds(), float64(total)/(1<<20)/el.Seconds())
	return nil
}

// runJobs runs fn on every job on GOMAXPROCS workers and returns the first error.
func runJobs(jobs []job, fn func(job) error) error {
	ch := make(chan job)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				if err := fn(j); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	return first
}

func newRand(seed, key uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, key))
}

// newChaCha returns a fast source of random bytes derived from r.
func newChaCha(r *rand.Rand) *rand.ChaCha8 {
	var s [32]byte
	for i := 0; i < 32; i += 8 {
		binary.LittleEndian.PutUint64(s[i:], r.Uint64())
	}
	return rand.NewChaCha8(s)
}

func writeRandom(f *os.File, size int64, r *rand.Rand) error {
	c := newChaCha(r)
	buf := make([]byte, min(size, chunk))
	for size > 0 {
		b := buf[:min(size, int64(len(buf)))]
		_, _ = c.Read(b)
		if _, err := f.Write(b); err != nil {
			return err
		}
		size -= int64(len(b))
	}
	return nil
}

func writeText(f *os.File, size int64, r *rand.Rand) error {
	g := newLogGen(r, baseTime.Add(time.Duration(r.IntN(86400))*time.Second))
	buf := make([]byte, 0, min(size, chunk)+4096)
	for size > 0 {
		buf = g.fill(buf[:0], min(size, chunk))
		if _, err := f.Write(buf); err != nil {
			return err
		}
		size -= int64(len(buf))
	}
	return nil
}

// logGen produces log-like text lines.
type logGen struct {
	r    *rand.Rand
	t    time.Time
	comp string
	reqs [8][16]byte // recent request ids: a request logs several lines
	nreq int
}

func newLogGen(r *rand.Rand, t time.Time) *logGen {
	return &logGen{r: r, t: t, comp: components[r.IntN(len(components))]}
}

// fill appends whole lines to b until it holds n bytes, cutting the last line so that b is
// exactly n bytes long and ends with a newline.
func (g *logGen) fill(b []byte, n int64) []byte {
	for int64(len(b)) < n {
		b = g.line(b)
	}
	b = b[:n]
	b[n-1] = '\n'
	return b
}

const hexDigits = "0123456789abcdef"

func (g *logGen) line(b []byte) []byte {
	r := g.r
	g.t = g.t.Add(time.Duration(r.IntN(400)) * time.Millisecond)
	b = g.t.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	lvl := levels[pickLevel(r)]
	b = append(b, ' ')
	b = append(b, lvl...)
	b = append(b, " ["...)
	if r.IntN(10) < 7 {
		b = append(b, g.comp...)
	} else {
		b = append(b, components[skew(r, len(components))]...)
	}
	b = append(b, "] req="...)
	var id [16]byte
	if g.nreq > 0 && r.IntN(3) > 0 {
		id = g.reqs[r.IntN(min(g.nreq, len(g.reqs)))]
	} else {
		v := r.Uint64()
		for i := range id {
			id[i] = hexDigits[v>>(4*i)&15]
		}
		g.reqs[g.nreq%len(g.reqs)] = id
		g.nreq++
	}
	b = append(b, id[:]...)
	b = append(b, " msg=\""...)
	b = g.message(b, templates[skew(r, len(templates))])
	b = append(b, '"')
	if r.IntN(4) > 0 {
		b = append(b, " dur="...)
		b = strconv.AppendFloat(b, float64(r.IntN(50000))/1000*float64(1+r.IntN(3)), 'f', 3, 64)
		b = append(b, "ms"...)
	}
	if r.IntN(2) == 0 {
		b = append(b, " bytes="...)
		b = strconv.AppendInt(b, int64(r.IntN(1<<uint(6+r.IntN(14)))), 10)
	}
	b = append(b, '\n')
	if lvl == "ERROR" && r.IntN(3) == 0 {
		for range 3 + r.IntN(5) {
			fn := stackFrames[skew(r, len(stackFrames))]
			b = append(b, "\tat "...)
			b = append(b, fn...)
			b = append(b, ".go:"...)
			b = strconv.AppendInt(b, int64(20+r.IntN(900)), 10)
			b = append(b, '\n')
		}
	}
	return b
}

// message expands a template: %w word, %n small number, %N id-like number, %p URL path,
// %i IP address, %h short hex, %s status code, %c component, %m HTTP method.
func (g *logGen) message(b []byte, t string) []byte {
	r := g.r
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '%' || i+1 == len(t) {
			b = append(b, c)
			continue
		}
		i++
		switch t[i] {
		case 'w':
			b = append(b, words[skew(r, len(words))]...)
		case 'n':
			b = strconv.AppendInt(b, int64(r.IntN(100)), 10)
		case 'N':
			b = strconv.AppendInt(b, int64(r.IntN(1000000)), 10)
		case 'p':
			b = append(b, "/api/v"...)
			b = strconv.AppendInt(b, int64(1+r.IntN(2)), 10)
			b = append(b, '/')
			b = append(b, resources[skew(r, len(resources))]...)
			if r.IntN(2) == 0 {
				b = append(b, '/')
				b = strconv.AppendInt(b, int64(r.IntN(100000)), 10)
			}
		case 'i':
			b = append(b, "10."...)
			b = strconv.AppendInt(b, int64(r.IntN(4)), 10)
			b = append(b, '.')
			b = strconv.AppendInt(b, int64(r.IntN(256)), 10)
			b = append(b, '.')
			b = strconv.AppendInt(b, int64(1+r.IntN(254)), 10)
		case 'h':
			v := r.Uint32()
			for k := range 8 {
				b = append(b, hexDigits[v>>(4*k)&15])
			}
		case 's':
			b = strconv.AppendInt(b, int64(statuses[skew(r, len(statuses))]), 10)
		case 'c':
			b = append(b, components[skew(r, len(components))]...)
		case 'm':
			b = append(b, methods[skew(r, len(methods))]...)
		default:
			b = append(b, '%', t[i])
		}
	}
	return b
}

// skew picks an index in [0, n) with a strong bias to small ones, like word frequencies.
func skew(r *rand.Rand, n int) int {
	u := r.Float64()
	return int(float64(n) * u * u * u)
}

func pickLevel(r *rand.Rand) int {
	switch v := r.IntN(100); {
	case v < 68:
		return 0
	case v < 88:
		return 1
	case v < 96:
		return 2
	case v < 99:
		return 3
	default:
		return 4
	}
}

var levels = []string{"INFO", "DEBUG", "WARN", "ERROR", "TRACE"}

var components = strings.Fields(`api-gateway orders billing auth scheduler db-pool cache
	inventory notifier search payments shipping users sessions metrics ingest worker
	reports audit mailer storage config-watcher rate-limiter webhooks`)

var resources = strings.Fields(`orders users items carts payments invoices sessions tokens
	products shipments reports webhooks accounts events`)

var methods = []string{"GET", "POST", "PUT", "DELETE", "PATCH"}

var statuses = []int{200, 200, 201, 204, 304, 400, 401, 403, 404, 409, 429, 500, 502, 503}

var stackFrames = strings.Fields(`main.main runtime.goexit net/http.(*conn).serve
	net/http.HandlerFunc.ServeHTTP service/api.(*Server).handle service/api.(*Server).ServeHTTP
	service/store.(*DB).Query service/store.(*DB).Exec database/sql.(*DB).QueryContext
	service/cache.(*Client).Get service/queue.(*Consumer).loop service/billing.charge
	service/orders.(*Handler).create encoding/json.Unmarshal service/auth.verifyToken`)

var templates = []string{
	"handled request %m %p status=%s",
	"GET %p from %i status=%s",
	"cache miss for key %w:%N",
	"cache hit for key %w:%N",
	"POST %p from %i status=%s",
	"connection from %i accepted",
	"query took longer than expected: select %w from %w where id=%N",
	"user %N logged in from %i",
	"retrying %w request after %n attempts",
	"processed batch of %n %w events in queue %w",
	"scheduled job %w-%h for tenant %N",
	"%w %w %w for %w %N",
	"upstream %c responded %s in %nms",
	"token for user %N expires in %n minutes",
	"failed to %w %w: %w %w (code %n)",
	"payment %h for order %N %w",
	"flushed %n %w records to %w",
	"lock acquired on %w/%N by %c",
	"config key %w.%w changed to %n",
	"rate limit reached for client %i: %n requests in %n s",
	"health check of %c ok, latency %nms",
	"slow consumer on topic %w partition %n lag %N",
	"deadline exceeded calling %c after %nms",
	"evicted %n entries from %w cache",
	"opened connection %h to %i port %N",
	"session %h closed after %n minutes idle",
	"DELETE %p from %i status=%s",
	"unexpected %w in %w: %w %w %w",
}

var words = strings.Fields(`the request user order cache session token error value key
	timeout connection server client database query record event message queue worker job
	task item account payment invoice product customer tenant service update create delete
	read write send receive start stop retry fail success pending active expired invalid
	missing duplicate completed processing scheduled cancelled accepted rejected blocked
	allowed new old primary replica leader follower shard partition topic offset batch stream
	buffer index table row column field schema version config setting flag feature limit quota
	rate latency throughput memory disk network cpu thread pool lock mutex channel signal
	handler router middleware proxy upstream downstream backend frontend endpoint route path
	header body payload response status code reason context deadline cancel done closed open
	ready healthy unhealthy degraded unknown internal external public private secure insecure
	valid unauthorized forbidden found conflict gone large small empty full partial complete
	first last next previous current default custom system admin guest anonymous member owner
	group role permission policy rule filter sort page cursor snapshot backup restore archive
	export import sync async local remote cluster node pod container image volume mount
	storage bucket object blob file directory folder link certificate secret password hash
	signature nonce salt cipher encrypt decrypt compress decompress encode decode parse
	validate normalize transform merge split join append prepend insert upsert select fetch
	load save flush commit rollback abort resume pause wait notify publish subscribe consume
	produce emit dispatch route forward redirect rewrite reject drop ignore skip accept
	billing shipping checkout cart wishlist review rating comment notification email sms push
	webhook callback listener watcher observer monitor metric gauge counter histogram summary
	trace span log audit report dashboard alert incident outage maintenance migration upgrade
	downgrade deploy rollout canary release build artifact registry repository branch tag`)

// applyChange applies the change step to the tree in dir.
func applyChange(dir string, seed uint64, verbose bool) error {
	start := time.Now()
	small, err := listFiles(filepath.Join(dir, "small"), "")
	if err != nil {
		return err
	}
	randoms, err := listFiles(filepath.Join(dir, "large"), "random-")
	if err != nil {
		return err
	}
	texts, err := listFiles(filepath.Join(dir, "large"), "text-")
	if err != nil {
		return err
	}
	if len(small) == 0 || len(randoms) < 2 || len(texts) < 2 {
		return fmt.Errorf("%s does not look like a generated tree (small files: %d, random files: %d, text files: %d)",
			dir, len(small), len(randoms), len(texts))
	}
	r := newRand(seed, keyChange)
	idx := 0
	touch := func(p string) error {
		idx++
		t := changeTime.Add(time.Duration(idx) * time.Second)
		return os.Chtimes(p, t, t)
	}

	// 1 in 20 small files: a few lines appended.
	pick := r.Perm(len(small))[:max(1, len(small)/20)]
	sort.Ints(pick)
	var smallAdded int64
	for _, i := range pick {
		g := newLogGen(newRand(seed, keyChange+1<<32+uint64(i)), changeTime)
		var b []byte
		for range 3 + g.r.IntN(8) {
			b = g.line(b)
		}
		if err := appendFile(small[i], b); err != nil {
			return err
		}
		if err := touch(small[i]); err != nil {
			return err
		}
		smallAdded += int64(len(b))
		if verbose {
			fmt.Printf("append %7d bytes  %s\n", len(b), small[i])
		}
	}
	fmt.Printf("gen: appended %d bytes to %d of %d small files\n", smallAdded, len(pick), len(small))

	// Large files: one of each kind grows, another of each kind is overwritten in the middle.
	two := func(n int) (int, int) {
		a := r.IntN(n)
		b := (a + 1 + r.IntN(n-1)) % n
		return a, b
	}
	ra, rb := two(len(randoms))
	ta, tb := two(len(texts))
	cr := newChaCha(r)
	randomBytes := func(n int64) []byte { b := make([]byte, n); _, _ = cr.Read(b); return b }
	textBytes := func(n int64) []byte {
		return newLogGen(newRand(seed, keyChange+2<<32+uint64(n)), changeTime).fill(nil, n)
	}
	for _, c := range []struct {
		path      string
		overwrite bool
		gen       func(int64) []byte
	}{
		{randoms[ra], false, randomBytes},
		{texts[ta], false, textBytes},
		{randoms[rb], true, randomBytes},
		{texts[tb], true, textBytes},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			return err
		}
		size := fi.Size()
		if c.overwrite {
			n := max(1, 4*size/50)
			off := (size - n) / 2
			if err := overwriteFile(c.path, off, c.gen(n)); err != nil {
				return err
			}
			fmt.Printf("gen: overwrote %d bytes at offset %d of %s\n", n, off, c.path)
		} else {
			n := max(1, size/50)
			if err := appendFile(c.path, c.gen(n)); err != nil {
				return err
			}
			fmt.Printf("gen: appended %d bytes to %s\n", n, c.path)
		}
		if err := touch(c.path); err != nil {
			return err
		}
	}
	fmt.Printf("gen: change step done in %.1fs\n", time.Since(start).Seconds())
	return nil
}

// listFiles returns the regular files under root whose names start with prefix, sorted.
func listFiles(root, prefix string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasPrefix(d.Name(), prefix) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

func appendFile(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func overwriteFile(p string, off int64, b []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, off); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
