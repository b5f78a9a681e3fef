package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// streamData returns a reader of n pseudo-random bytes generated on the fly: nothing is
// held in memory, whatever n.
func streamData(seed uint64, n int64) io.Reader {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

func streamBytes(t testing.TB, seed uint64, n int64) []byte {
	t.Helper()
	b, err := io.ReadAll(streamData(seed, n))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failingReader delivers good bytes, then fails like a dump command dying mid-way.
type failingReader struct {
	r    io.Reader
	left int64
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= int64(n)
	return n, err
}

// streamProgress records the reports of a stream backup.
type streamProgress struct {
	mu      sync.Mutex
	reports []snapshot.Status
	done    *snapshot.Status
}

func (p *streamProgress) Report(s snapshot.Status) {
	p.mu.Lock()
	p.reports = append(p.reports, s)
	p.mu.Unlock()
}

func (p *streamProgress) Done(s snapshot.Status) { p.mu.Lock(); p.done = &s; p.mu.Unlock() }

func noSnapshots(t *testing.T, r *repo.Repository) {
	t.Helper()
	all, err := r.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 0 {
		t.Fatalf("%d snapshot(s) saved, want none", len(all))
	}
}

func TestBackupStreamRoundTrip(t *testing.T) {
	bg := context.Background()
	r, _ := repotest.New(t, repo.InitOptions{})
	data := streamBytes(t, 1, 20<<20)
	p := &streamProgress{}
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	sn, err := snapshot.BackupStream(bg, r, "dumpfile.sql", bytes.NewReader(data), snapshot.BackupOptions{
		Host: "db-0", Tags: []string{"pg"}, Target: &repo.Target{Kind: "StatefulSet", Name: "db"},
		Session: "s1", Program: "test", Progress: p, Interval: time.Millisecond, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if len(sn.Paths) != 1 || sn.Paths[0] != "/dumpfile.sql" || sn.Host != "db-0" || sn.Session != "s1" ||
		sn.Program != "test" || sn.Target == nil || sn.Target.Name != "db" || len(sn.Tags) != 1 || sn.Parent != nil {
		t.Fatalf("snapshot %+v", sn)
	}
	want := repo.Stats{TotalFiles: 1, NewFiles: 1, Size: int64(len(data))}
	got := sn.Stats
	if got.TotalFiles != want.TotalFiles || got.NewFiles != want.NewFiles || got.ModifiedFiles != 0 ||
		got.UnmodifiedFiles != 0 || got.Size != want.Size || got.Uploaded < int64(len(data)) || got.ProcessingTime == "" {
		t.Fatalf("stats %+v, want %+v and uploaded ≥ %d", got, want, len(data))
	}
	if d := p.done; d == nil || d.FilesDone != 1 || d.FilesTotal != 1 || d.BytesDone != int64(len(data)) ||
		d.BytesTotal != int64(len(data)) || !d.ScanDone || d.CurrentPath != "/dumpfile.sql" {
		t.Fatalf("final status %+v", p.done)
	}
	p.mu.Lock()
	for _, s := range p.reports {
		if s.ScanDone || s.BytesTotal != s.BytesDone || s.CurrentPath != "/dumpfile.sql" {
			t.Fatalf("report while reading: %+v", s)
		}
	}
	p.mu.Unlock()

	// DumpFile, from a new handle as a restore Job would
	var out bytes.Buffer
	n, err := snapshot.DumpFile(bg, r, sn, "/dumpfile.sql", &out)
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("DumpFile: %d bytes, %v; equal: %v", n, err, bytes.Equal(out.Bytes(), data))
	}

	// the snapshot is an ordinary one: Restore gives the file
	target := t.TempDir()
	if _, err := snapshot.Restore(bg, r, sn, snapshot.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	restored, err := os.ReadFile(filepath.Join(target, "dumpfile.sql"))
	if err != nil || !bytes.Equal(restored, data) {
		t.Fatalf("restored file: %v, equal: %v", err, bytes.Equal(restored, data))
	}
	fi, _ := os.Stat(filepath.Join(target, "dumpfile.sql"))
	if fi.Mode().Perm() != 0o644 || !fi.ModTime().Equal(now) {
		t.Fatalf("restored file: mode %v, mtime %v", fi.Mode(), fi.ModTime())
	}
}

func TestBackupStreamAgain(t *testing.T) {
	bg := context.Background()
	data := streamBytes(t, 2, 10<<20)
	changed := append(bytes.Clone(data[:5<<20]), streamBytes(t, 3, 5<<20)...)
	for _, tc := range []struct {
		name       string
		file       string
		data       []byte
		opts       snapshot.BackupOptions
		wantParent bool
		new, mod   int64
		unmod      int64
		maxUpload  int64
	}{
		{name: "same bytes", file: "dumpfile.sql", data: data, wantParent: true, unmod: 1, maxUpload: 64 << 10},
		{name: "changed bytes", file: "dumpfile.sql", data: changed, wantParent: true, mod: 1, maxUpload: 8 << 20},
		{name: "no parent", file: "dumpfile.sql", data: data, opts: snapshot.BackupOptions{NoParent: true}, new: 1, maxUpload: 64 << 10},
		{name: "other name", file: "other.sql", data: data, new: 1, maxUpload: 64 << 10},
		{name: "other host", file: "dumpfile.sql", data: data, opts: snapshot.BackupOptions{Host: "db-1"}, new: 1, maxUpload: 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, st := repotest.New(t, repo.InitOptions{})
			first, err := snapshot.BackupStream(bg, r, "dumpfile.sql", bytes.NewReader(data), snapshot.BackupOptions{Host: "db-0"})
			if err != nil {
				t.Fatal(err)
			}
			opts := tc.opts
			if opts.Host == "" {
				opts.Host = "db-0"
			}
			sn, err := snapshot.BackupStream(bg, r, tc.file, bytes.NewReader(tc.data), opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := sn.Parent != nil && *sn.Parent == first.ID; got != tc.wantParent || (!tc.wantParent && sn.Parent != nil) {
				t.Fatalf("parent %v, want the first snapshot: %v", sn.Parent, tc.wantParent)
			}
			s := sn.Stats
			if s.TotalFiles != 1 || s.NewFiles != tc.new || s.ModifiedFiles != tc.mod || s.UnmodifiedFiles != tc.unmod ||
				s.Size != int64(len(tc.data)) || s.Uploaded > tc.maxUpload {
				t.Fatalf("stats %+v; want new %d, modified %d, unmodified %d, uploaded ≤ %d",
					s, tc.new, tc.mod, tc.unmod, tc.maxUpload)
			}
			var out bytes.Buffer
			if _, err := snapshot.DumpFile(bg, repotest.Reopen(t, st), sn, "/"+tc.file, &out); err != nil || !bytes.Equal(out.Bytes(), tc.data) {
				t.Fatalf("DumpFile: %v, equal: %v", err, bytes.Equal(out.Bytes(), tc.data))
			}
		})
	}
}

func TestBackupStreamFailuresSaveNoSnapshot(t *testing.T) {
	errDump := errors.New("pg_dump: connection lost")
	for _, tc := range []struct {
		name    string
		file    string
		rd      func(cancel context.CancelFunc) io.Reader
		wantErr string
		is      error
	}{
		{name: "empty stream", file: "dumpfile.sql", rd: func(context.CancelFunc) io.Reader { return strings.NewReader("") },
			wantErr: "the stream for dumpfile.sql was empty: nothing was backed up"},
		{name: "reader fails after 3 MiB", file: "dumpfile.sql",
			rd: func(context.CancelFunc) io.Reader {
				return &failingReader{r: streamData(4, 1<<30), left: 3 << 20, err: errDump}
			},
			wantErr: "dumpfile.sql", is: errDump},
		{name: "reader fails at once", file: "dumpfile.sql",
			rd:      func(context.CancelFunc) io.Reader { return &failingReader{err: errDump} },
			wantErr: "dumpfile.sql", is: errDump},
		{name: "cancelled", file: "dumpfile.sql",
			rd: func(cancel context.CancelFunc) io.Reader {
				return io.MultiReader(streamData(5, 2<<20), readerFunc(func(p []byte) (int, error) {
					cancel()
					return streamData(6, int64(len(p))).Read(p)
				}))
			},
			is: context.Canceled},
		{name: "name with a slash", file: "a/b", rd: func(context.CancelFunc) io.Reader { return strings.NewReader("x") }, wantErr: "invalid entry name"},
		{name: "empty name", file: "", rd: func(context.CancelFunc) io.Reader { return strings.NewReader("x") }, wantErr: "invalid entry name"},
		{name: "dot dot", file: "..", rd: func(context.CancelFunc) io.Reader { return strings.NewReader("x") }, wantErr: "invalid entry name"},
		{name: "dot", file: ".", rd: func(context.CancelFunc) io.Reader { return strings.NewReader("x") }, wantErr: "invalid entry name"},
		{name: "absolute", file: "/dumpfile.sql", rd: func(context.CancelFunc) io.Reader { return strings.NewReader("x") }, wantErr: "invalid entry name"},
		{name: "NUL", file: "a\x00b", rd: func(context.CancelFunc) io.Reader { return strings.NewReader("x") }, wantErr: "invalid entry name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := repotest.New(t, repo.InitOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sn, err := snapshot.BackupStream(ctx, r, tc.file, tc.rd(cancel), snapshot.BackupOptions{Host: "db-0"})
			if err == nil {
				t.Fatalf("saved snapshot %v, want an error", sn.ID)
			}
			if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want it to say %q", err, tc.wantErr)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %q, want it to wrap %q", err, tc.is)
			}
			noSnapshots(t, r)
		})
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestDumpFile(t *testing.T) {
	bg := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	big := streamBytes(t, 7, 9<<20+17)
	writeStreamFile(t, filepath.Join(src, "data", "x.bin"), big)
	writeStreamFile(t, filepath.Join(src, "small.txt"), []byte("hello\n"))
	writeStreamFile(t, filepath.Join(src, "empty"), nil)
	if err := os.Symlink("small.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	r, _ := repotest.New(t, repo.InitOptions{})
	sn, err := snapshot.Backup(bg, r, []string{src}, snapshot.BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		want    []byte
		wantErr string
	}{
		{name: "file in a directory", path: src + "/data/x.bin", want: big},
		{name: "small file", path: src + "/small.txt", want: []byte("hello\n")},
		{name: "empty file", path: src + "/empty", want: []byte{}},
		{name: "unclean path", path: src + "/data/../data//x.bin", want: big},
		{name: "missing", path: src + "/data/nope.bin", wantErr: "has no path " + src + "/data/nope.bin"},
		{name: "missing at the top", path: "/nope", wantErr: "has no path /nope"},
		{name: "directory", path: src + "/data", wantErr: "is a directory, not a regular file"},
		{name: "root", path: "/", wantErr: "is a directory, not a regular file"},
		{name: "symlink", path: src + "/link", wantErr: "is a symbolic link, not a regular file"},
		{name: "below a file", path: src + "/small.txt/x", wantErr: "is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			n, err := snapshot.DumpFile(bg, r, sn, tc.path, &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to say %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), sn.ID.Short()) && tc.name != "below a file" {
					t.Fatalf("error %q does not name the snapshot", err)
				}
				return
			}
			if err != nil || n != int64(len(tc.want)) || !bytes.Equal(out.Bytes(), tc.want) {
				t.Fatalf("%d bytes, %v; equal: %v", n, err, bytes.Equal(out.Bytes(), tc.want))
			}
		})
	}
}

func writeStreamFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDumpFileDamaged(t *testing.T) {
	bg := context.Background()
	r, _ := repotest.New(t, repo.InitOptions{})
	blob, _, err := r.SaveBlob(bg, repo.DataBlob, []byte("four"))
	if err != nil {
		t.Fatal(err)
	}
	// the node says 5 bytes, its content has 4
	tree, _, err := r.SaveBlob(bg, repo.TreeBlob, []byte(`{"nodes":[{"name":"dump.sql","type":"file","mode":420,"size":5,"content":["`+blob.String()+`"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(bg); err != nil {
		t.Fatal(err)
	}
	sn := &repo.Snapshot{Time: time.Now(), Host: "h", Paths: []string{"/dump.sql"}, Tree: tree}
	if err := r.SaveSnapshot(bg, sn); err != nil {
		t.Fatal(err)
	}
	_, err = snapshot.DumpFile(bg, r, sn, "/dump.sql", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("error %v, want damaged", err)
	}
}

func TestDumpFileWriteErrorStops(t *testing.T) {
	bg := context.Background()
	r, _ := repotest.New(t, repo.InitOptions{})
	sn, err := snapshot.BackupStream(bg, r, "d.sql", streamData(8, 20<<20), snapshot.BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	errPipe := errors.New("broken pipe")
	var writes int
	n, err := snapshot.DumpFile(bg, r, sn, "/d.sql", writerFunc(func(p []byte) (int, error) {
		if writes++; writes == 3 {
			return 0, errPipe
		}
		return len(p), nil
	}))
	if !errors.Is(err, errPipe) || writes != 3 || n <= 0 || n >= 20<<20 {
		t.Fatalf("%d bytes, %d writes, %v; want the write error after 2 blobs", n, writes, err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// discardPacks is a repository backend that throws data packs away (and keeps everything
// else): a backup's memory is then the engine's alone.
type discardPacks struct {
	*store.Store
	discarded atomic.Int64
}

func (d *discardPacks) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if strings.HasPrefix(key, "data/") {
		d.discarded.Add(int64(len(data)))
		return nil
	}
	return d.Store.PutIfAbsent(ctx, key, data)
}

// peakHeap samples the heap in use until stop is called, and returns the peak.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > peak.Load() {
			peak.Store(ms.HeapInuse)
		}
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		sample()
		return peak.Load()
	}
}

func TestBackupStreamMemoryStaysFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 512 MiB")
	}
	const size = 512 << 20
	be := &discardPacks{Store: repotest.NewStore(t)}
	r := repotest.Init(t, be, repo.InitOptions{})
	// The job binary that runs stream backups (cmd/stash-job) sets GOGC=25: its heap is
	// mostly large pointer-free buffers, and collecting more often keeps the peak near
	// the live set. Measure under the same setting (unless GOGC is set).
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(25))
	}
	// The repository pools its compression buffers in sync.Pools, which keep buffers per
	// P (its pack buffers are a bounded list, see repo.packBufPool). That is the
	// repository's, not the stream's: measure with the 2 CPUs a backup Job typically gets.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	// twice: buffers pooled by earlier tests survive one collection
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("heap in use before: %.1f MiB", float64(ms.HeapInuse)/(1<<20))
	stop := peakHeap()
	start := time.Now()
	sn, err := snapshot.BackupStream(context.Background(), r, "big.sql", streamData(9, size), snapshot.BackupOptions{Host: "h"})
	elapsed := time.Since(start)
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	if sn.Stats.Size != size || be.discarded.Load() < size {
		t.Fatalf("size %d, %d bytes of packs uploaded; want %d", sn.Stats.Size, be.discarded.Load(), size)
	}
	t.Logf("512 MiB in %v (%.0f MB/s): peak heap in use %.1f MiB", elapsed.Round(time.Millisecond),
		float64(size)/1e6/elapsed.Seconds(), float64(peak)/(1<<20))
	if peak >= 128<<20 {
		t.Fatalf("peak heap in use %.1f MiB, want < 128 MiB", float64(peak)/(1<<20))
	}
}

func BenchmarkBackupStream(b *testing.B) {
	const size = 64 << 20
	b.SetBytes(size)
	be := &discardPacks{Store: repotest.NewStore(b)}
	r := repotest.Init(b, be, repo.InitOptions{})
	for i := 0; b.Loop(); i++ {
		// new bytes every time: nothing deduplicates
		if _, err := snapshot.BackupStream(context.Background(), r, "bench.sql", streamData(uint64(100+i), size),
			snapshot.BackupOptions{Host: "h", NoParent: true}); err != nil {
			b.Fatal(err)
		}
	}
}
