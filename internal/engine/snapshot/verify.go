package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/chunker"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
)

// VerifyOptions say which restored tree to compare with which part of a snapshot.
type VerifyOptions struct {
	// Target is the directory the snapshot was restored into, as Restore's Target.
	Target string
	// Path and StripPath are as for Restore: with StripPath, Target holds the contents of
	// the snapshot's Path.
	Path      string
	StripPath bool
	// Owners compares uid and gid too (a restore sets them only when run as root).
	Owners bool
	// MaxMismatches bounds the mismatches kept (all are counted); default 100.
	MaxMismatches int
	Workers       int
	Progress      Progress
	Interval      time.Duration
	Now           func() time.Time
}

// Mismatch is one entry of the restored tree that differs from the snapshot.
type Mismatch struct {
	Path string // in the snapshot
	What string
}

func (m Mismatch) String() string { return m.Path + ": " + m.What }

// VerifyStats say what VerifyRestored compared.
type VerifyStats struct {
	Files, Dirs, Links, Special int64
	Bytes                       int64
	// Mismatches are the first MaxMismatches differences; MismatchCount counts them all.
	Mismatches    []Mismatch
	MismatchCount int64
}

// VerifyRestored compares a restored tree with the snapshot, entry by entry: type, mode,
// size, modification time, symbolic link target, owner (Owners), no entry missing and none
// extra; and the content of each file, read back from disk, cut with the repository's
// chunker and hashed with its key into content ids that must equal the snapshot's. It
// reads nothing from the repository but trees, so it checks what is on disk, not what a
// restore meant to write.
func VerifyRestored(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, opts VerifyOptions) (VerifyStats, error) {
	if opts.MaxMismatches <= 0 {
		opts.MaxMismatches = 100
	}
	if opts.Workers <= 0 {
		opts.Workers = max(2, runtime.GOMAXPROCS(0))
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Progress = progressOrNoop(opts.Progress)
	v := &verifier{r: r, opts: opts}
	// the tree below the verified path: Target corresponds to snapPath
	snapPath := "/"
	rootTree := sn.Tree
	var rootNode *Node
	if p := strings.Trim(path.Clean("/"+opts.Path), "/"); p != "" {
		parts := strings.Split(p, "/")
		id := sn.Tree
		for i, part := range parts {
			t, err := v.loadTree(ctx, id)
			if err != nil {
				return VerifyStats{}, err
			}
			n := t.Find(part)
			if n == nil {
				return VerifyStats{}, fmt.Errorf("snapshot %s has no path %s", sn.ID.Short(), "/"+strings.Join(parts[:i+1], "/"))
			}
			if i == len(parts)-1 {
				rootNode = n
				break
			}
			if n.Type != TypeDir {
				return VerifyStats{}, fmt.Errorf("snapshot %s: %s is not a directory", sn.ID.Short(), "/"+strings.Join(parts[:i+1], "/"))
			}
			id = *n.Subtree
		}
		snapPath = "/" + p
	}
	start := opts.Now()
	stop := every(ctx, opts.Interval, func() {
		opts.Progress.Report(Status{FilesDone: v.filesDone.Load(), FilesTotal: v.filesTotal.Load(), BytesDone: v.bytesDone.Load(),
			BytesTotal: v.bytesTotal.Load(), Elapsed: opts.Now().Sub(start)})
	})
	jobs := make(chan verifyJob, 64)
	var wg sync.WaitGroup
	errc := make(chan error, opts.Workers)
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := v.worker(ctx, jobs); err != nil {
				errc <- err
			}
		}()
	}
	var err error
	switch {
	case rootNode == nil:
		err = v.dir(ctx, jobs, snapPath, opts.Target, rootTree, nil)
	case opts.StripPath && rootNode.Type == TypeDir:
		err = v.dir(ctx, jobs, snapPath, opts.Target, *rootNode.Subtree, rootNode)
	case opts.StripPath:
		err = v.entry(ctx, jobs, snapPath, filepath.Join(opts.Target, rootNode.FileName()), rootNode)
	default:
		// the path is recreated below Target: check the directories leading to it exist
		err = v.entry(ctx, jobs, snapPath, filepath.Join(opts.Target, filepath.FromSlash(snapPath)), rootNode)
	}
	close(jobs)
	wg.Wait()
	stop()
	close(errc)
	for e := range errc {
		err = errors.Join(err, e)
	}
	opts.Progress.Done(Status{FilesDone: v.filesDone.Load(), FilesTotal: v.filesTotal.Load(), BytesDone: v.bytesDone.Load(),
		BytesTotal: v.bytesTotal.Load(), Elapsed: opts.Now().Sub(start), ScanDone: true})
	v.stats.Bytes = v.bytesDone.Load()
	sort.Slice(v.stats.Mismatches, func(i, j int) bool { return v.stats.Mismatches[i].Path < v.stats.Mismatches[j].Path })
	return v.stats, err
}

type verifyJob struct {
	snapPath, diskPath string
	node               *Node
}

type verifier struct {
	r    *repo.Repository
	opts VerifyOptions

	mu    sync.Mutex
	stats VerifyStats

	filesDone, filesTotal, bytesDone, bytesTotal atomic.Int64
}

func (v *verifier) loadTree(ctx context.Context, id crypto.ID) (*Tree, error) {
	b, err := v.r.LoadBlob(ctx, id, nil)
	if err != nil {
		return nil, err
	}
	t, err := decodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return t, nil
}

func (v *verifier) mismatch(p, format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stats.MismatchCount++
	if len(v.stats.Mismatches) < v.opts.MaxMismatches {
		v.stats.Mismatches = append(v.stats.Mismatches, Mismatch{Path: p, What: fmt.Sprintf(format, args...)})
	}
}

func (v *verifier) count(f func(s *VerifyStats)) {
	v.mu.Lock()
	f(&v.stats)
	v.mu.Unlock()
}

// dir compares directory disk (the snapshot's snapPath, tree id; self is its own node,
// nil for the snapshot's root) with the tree.
func (v *verifier) dir(ctx context.Context, jobs chan<- verifyJob, snapPath, disk string, id crypto.ID, self *Node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if self != nil {
		fi, err := os.Lstat(disk)
		if err != nil {
			v.mismatch(snapPath, "missing: %v", errors.Unwrap(err))
			return nil
		}
		v.meta(snapPath, self, fi)
	}
	t, err := v.loadTree(ctx, id)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, n := range t.Nodes {
		name := n.FileName()
		names[name] = true
		if err := v.entry(ctx, jobs, path.Join(snapPath, name), filepath.Join(disk, name), n); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(disk)
	if err != nil {
		if self == nil {
			v.mismatch(snapPath, "missing: %v", errors.Unwrap(err))
		}
		return nil
	}
	for _, e := range entries {
		if !names[e.Name()] && !(self == nil && e.Name() == "lost+found") {
			v.mismatch(path.Join(snapPath, e.Name()), "not in the snapshot")
		}
	}
	return nil
}

func (v *verifier) entry(ctx context.Context, jobs chan<- verifyJob, snapPath, disk string, n *Node) error {
	fi, err := os.Lstat(disk)
	if err != nil {
		v.mismatch(snapPath, "missing: %v", errors.Unwrap(err))
		return nil
	}
	switch n.Type {
	case TypeDir:
		if !fi.IsDir() {
			v.mismatch(snapPath, "is a %s, not a directory", kindOf(fi))
			return nil
		}
		v.count(func(s *VerifyStats) { s.Dirs++ })
		return v.dir(ctx, jobs, snapPath, disk, *n.Subtree, n)
	case TypeFile:
		if !fi.Mode().IsRegular() {
			v.mismatch(snapPath, "is a %s, not a file", kindOf(fi))
			return nil
		}
		v.meta(snapPath, n, fi)
		if uint64(fi.Size()) != n.Size {
			v.mismatch(snapPath, "size %d, snapshot has %d", fi.Size(), n.Size)
			return nil
		}
		v.count(func(s *VerifyStats) { s.Files++ })
		v.filesTotal.Add(1)
		v.bytesTotal.Add(fi.Size())
		select {
		case jobs <- verifyJob{snapPath: snapPath, diskPath: disk, node: n}:
		case <-ctx.Done():
			return ctx.Err()
		}
	case TypeSymlink:
		if fi.Mode()&fs.ModeSymlink == 0 {
			v.mismatch(snapPath, "is a %s, not a symbolic link", kindOf(fi))
			return nil
		}
		if target, err := os.Readlink(disk); err != nil || target != n.LinkTarget {
			v.mismatch(snapPath, "links to %q, snapshot has %q", target, n.LinkTarget)
		}
		v.count(func(s *VerifyStats) { s.Links++ })
	default:
		if kindOf(fi) != string(n.Type) {
			v.mismatch(snapPath, "is a %s, not a %s", kindOf(fi), n.Type)
			return nil
		}
		v.meta(snapPath, n, fi)
		v.count(func(s *VerifyStats) { s.Special++ })
	}
	return nil
}

// meta compares mode, modification time and (Owners) owner.
func (v *verifier) meta(snapPath string, n *Node, fi fs.FileInfo) {
	if fi.Mode() != n.Mode {
		v.mismatch(snapPath, "mode %s, snapshot has %s", fi.Mode(), n.Mode)
	}
	if n.Type != TypeDir && !fi.ModTime().Equal(n.ModTime) {
		// a directory's time changes as its entries are written; Restore sets it last,
		// but a verification of a live directory would see it move
		v.mismatch(snapPath, "modified %s, snapshot has %s", fi.ModTime().UTC().Format(time.RFC3339Nano), n.ModTime.UTC().Format(time.RFC3339Nano))
	}
	if v.opts.Owners {
		if st, ok := statOf(fi); ok && (st.UID != n.UID || st.GID != n.GID) {
			v.mismatch(snapPath, "owner %d:%d, snapshot has %d:%d", st.UID, st.GID, n.UID, n.GID)
		}
	}
}

func kindOf(fi fs.FileInfo) string {
	m := fi.Mode()
	switch {
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "file"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return string(TypeFIFO)
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0:
		return string(TypeCharDev)
	case m&fs.ModeDevice != 0:
		return string(TypeBlockDev)
	}
	return "special file"
}

// worker re-chunks files and compares their content ids with the snapshot's.
func (v *verifier) worker(ctx context.Context, jobs <-chan verifyJob) error {
	cfg := v.r.Config()
	ch, err := chunker.NewWithTable(nil, cfg.Chunker, chunker.NewTable(cfg.ChunkerSeed))
	if err != nil {
		for range jobs {
		}
		return err
	}
	var buf []byte // grows to the largest chunk
	for job := range jobs {
		if ctx.Err() != nil {
			continue
		}
		if err := v.content(ch, &buf, job); err != nil {
			v.mismatch(job.snapPath, "%v", err)
		}
		v.filesDone.Add(1)
	}
	return nil
}

func (v *verifier) content(ch *chunker.Chunker, buf *[]byte, job verifyJob) error {
	f, err := openForBackup(job.diskPath)
	if err != nil {
		return fmt.Errorf("cannot read: %v", errors.Unwrap(err))
	}
	defer f.Close()
	ch.Reset(f)
	i := 0
	for {
		chunk, err := ch.Next(*buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("cannot read: %v", err)
		}
		if cap(chunk) > cap(*buf) {
			*buf = chunk[:0]
		}
		v.bytesDone.Add(int64(len(chunk)))
		if i >= len(job.node.Content) || v.r.BlobID(chunk) != job.node.Content[i] {
			return fmt.Errorf("content differs from the snapshot at chunk %d (byte %d on)", i, offsetOf(job.node, i, v.r))
		}
		i++
	}
	if i != len(job.node.Content) {
		return fmt.Errorf("content ends after %d of %d chunks", i, len(job.node.Content))
	}
	return nil
}

// offsetOf is the byte offset of chunk i of n.
func offsetOf(n *Node, i int, r *repo.Repository) int64 {
	var off int64
	for _, id := range n.Content[:min(i, len(n.Content))] {
		if e, ok := r.Lookup(id); ok {
			off += int64(e.Raw)
		}
	}
	return off
}
