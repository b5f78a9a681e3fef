package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/chunker"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
)

// streamFileMode is the mode of the file a streamed backup records.
const streamFileMode = 0o644

// BackupStream backs up everything read from rd as one regular file called name (a single
// path component) at the root of a new snapshot, whose only path is "/"+name: a database
// dump piped from a command's stdout. Memory stays flat whatever the stream's size: one
// chunk buffer and the repository's packs (and the file's list of blob ids, 32 bytes per
// chunk). Of opts, Host, Tags, Target, Session, Program, Parent, NoParent, Progress,
// Interval and Now apply.
//
// A read error from rd (the dump failed) fails the backup and saves no snapshot; so does
// an empty stream, which must never look like a successful backup of nothing. Cancelling
// ctx stops the backup between reads: a Read blocked in rd returns only when its writer
// ends (for a command, start it with exec.CommandContext on the same ctx).
func BackupStream(ctx context.Context, r *repo.Repository, name string, rd io.Reader, opts BackupOptions) (*repo.Snapshot, error) {
	opts.applyDefaults()
	start := opts.Now()
	if err := ValidName(name); err != nil {
		return nil, fmt.Errorf("stream backup: the file name must be a plain name: %w", err)
	}
	if rd == nil {
		return nil, fmt.Errorf("stream backup of %s: no reader", name)
	}
	paths := []string{"/" + name}

	parent, release, err := lockAndParent(ctx, r, opts, paths)
	if err != nil {
		return nil, err
	}
	defer release()
	var old *Node // the parent's file of the same name
	if parent != nil {
		b, err := r.LoadBlob(ctx, parent.Tree, nil)
		if err != nil {
			return nil, fmt.Errorf("parent snapshot %s: %w", parent.ID.Short(), err)
		}
		t, err := decodeTree(b)
		if err != nil {
			return nil, fmt.Errorf("parent snapshot %s: tree %s: %w", parent.ID.Short(), parent.Tree.Short(), err)
		}
		if n := t.Find(name); n != nil && n.Type == TypeFile {
			old = n
		}
	}

	ch, err := chunker.NewWithTable(nil, r.Config().Chunker, chunker.NewTable(r.Config().ChunkerSeed))
	if err != nil {
		return nil, err
	}
	uploadedBefore := r.Uploaded()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	current := paths[0]
	var bytesDone, filesDone atomic.Int64
	status := func(done bool) Status {
		s := Status{FilesDone: filesDone.Load(), FilesTotal: 1, BytesDone: bytesDone.Load(),
			CurrentPath: current, Elapsed: opts.Now().Sub(start), ScanDone: done}
		s.BytesTotal = s.BytesDone // unknown until the stream ends
		return s
	}
	stopProgress := every(ctx, opts.Interval, func() { opts.Progress.Report(status(false)) })
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopProgress()
		}
	}
	defer stop()

	ch.Reset(&ctxReader{ctx: ctx, r: rd})
	var buf []byte // grows to the largest chunk
	var content []crypto.ID
	var size uint64
	for {
		chunk, err := ch.Next(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			if cerr := context.Cause(ctx); cerr != nil && errors.Is(err, cerr) {
				return nil, fmt.Errorf("stream backup of %s: %w", name, err)
			}
			return nil, fmt.Errorf("reading the stream for %s: %w", name, err)
		}
		if cap(chunk) > cap(buf) {
			buf = chunk[:0]
		}
		id := r.BlobID(chunk)
		if !r.Has(id) {
			if _, err := r.SaveBlobWithID(ctx, repo.DataBlob, id, chunk); err != nil {
				return nil, fmt.Errorf("stream backup of %s: %w", name, err)
			}
		}
		content = append(content, id)
		size += uint64(len(chunk))
		bytesDone.Add(int64(len(chunk)))
	}
	if size == 0 {
		return nil, fmt.Errorf("the stream for %s was empty: nothing was backed up", name)
	}

	now := opts.Now()
	n := &Node{Type: TypeFile, Mode: streamFileMode, Size: size, ModTime: now, AccessTime: now,
		ChangeTime: now, Content: content}
	setName(n, name)
	tb, err := encodeTree(&Tree{Nodes: []*Node{n}})
	if err != nil {
		return nil, err
	}
	root, _, err := r.SaveBlob(ctx, repo.TreeBlob, tb)
	if err != nil {
		return nil, fmt.Errorf("stream backup of %s: %w", name, err)
	}
	if err := r.Flush(ctx); err != nil {
		return nil, err
	}
	filesDone.Store(1)
	stop()

	sn := &repo.Snapshot{
		Time: start.UTC(), Host: opts.Host, Paths: paths, Tags: opts.Tags, Target: opts.Target,
		Session: opts.Session, Tree: root, Program: opts.Program,
		Stats: repo.Stats{TotalFiles: 1, Size: int64(size), Uploaded: r.Uploaded() - uploadedBefore},
	}
	switch {
	case old == nil:
		sn.Stats.NewFiles = 1
	case old.Size == size && slices.Equal(old.Content, content):
		sn.Stats.UnmodifiedFiles = 1
	default:
		sn.Stats.ModifiedFiles = 1
	}
	if parent != nil {
		id := parent.ID
		sn.Parent = &id
	}
	sn.Stats.ProcessingTime = opts.Now().Sub(start).Round(time.Millisecond).String()
	if err := r.SaveSnapshot(ctx, sn); err != nil {
		return nil, err
	}
	opts.Progress.Done(status(true))
	return sn, nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := context.Cause(c.ctx); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// dumpReadAhead is how many blobs DumpFile fetches ahead of the one it writes: enough to
// hide an object store's latency, each costs one blob (at most Chunker.MaxSize) of memory.
const dumpReadAhead = 4

// DumpFile writes the content of the regular file at p (an absolute path in the
// snapshot, as "/dumpfile.sql") to w, in order, and returns the bytes written: the
// restore of a streamed backup into a command's stdin. Memory stays at the few blobs read
// ahead.
func DumpFile(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, p string, w io.Writer) (int64, error) {
	lock, err := r.Lock(ctx, false)
	if err != nil {
		return 0, err
	}
	defer lock.Release(context.WithoutCancel(ctx))

	n, full, err := findNode(ctx, r, sn, p)
	if err != nil {
		return 0, err
	}
	if n.Type != TypeFile {
		return 0, fmt.Errorf("snapshot %s: %s is a %s, not a regular file", sn.ID.Short(), full, typeWord(n.Type))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		b   []byte
		err error
	}
	var queue []chan result
	// On an early return, cancel the fetches in flight and wait for them: nothing of
	// DumpFile runs after it returns.
	defer func() {
		cancel()
		for _, c := range queue {
			<-c
		}
	}()
	fetch := func(id crypto.ID, dst []byte) chan result {
		c := make(chan result, 1)
		go func() {
			b, err := r.LoadBlob(ctx, id, dst[:0])
			c <- result{b, err}
		}()
		return c
	}
	next := 0
	for ; next < len(n.Content) && next < dumpReadAhead; next++ {
		queue = append(queue, fetch(n.Content[next], nil))
	}
	var written int64
	for len(queue) > 0 {
		res := <-queue[0]
		queue = queue[1:]
		if res.err != nil {
			return written, fmt.Errorf("%s: %w", full, res.err)
		}
		k, err := w.Write(res.b)
		written += int64(k)
		if err != nil {
			return written, fmt.Errorf("%s: write: %w", full, err)
		}
		if next < len(n.Content) {
			// the buffer just written holds the next blob fetched
			queue = append(queue, fetch(n.Content[next], res.b))
			next++
		}
	}
	if uint64(written) != n.Size {
		return written, fmt.Errorf("%s is damaged: its content has %d bytes, its size is %d", full, written, n.Size)
	}
	return written, nil
}

// findNode walks the trees of sn to the entry at p and returns it with its cleaned path.
func findNode(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, p string) (*Node, string, error) {
	clean := strings.Trim(path.Clean("/"+p), "/")
	if clean == "" {
		return &Node{Type: TypeDir, Subtree: &sn.Tree}, "/", nil
	}
	parts := strings.Split(clean, "/")
	id := sn.Tree
	for i, part := range parts {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		b, err := r.LoadBlob(ctx, id, nil)
		if err != nil {
			return nil, "", err
		}
		t, err := decodeTree(b)
		if err != nil {
			return nil, "", fmt.Errorf("tree %s: %w", id.Short(), err)
		}
		full := "/" + strings.Join(parts[:i+1], "/")
		n := t.Find(part)
		if n == nil {
			return nil, "", fmt.Errorf("snapshot %s has no path %s", sn.ID.Short(), full)
		}
		if i == len(parts)-1 {
			return n, full, nil
		}
		if n.Type != TypeDir {
			return nil, "", fmt.Errorf("snapshot %s: %s is not a directory", sn.ID.Short(), full)
		}
		id = *n.Subtree
	}
	panic("unreachable")
}

func typeWord(t NodeType) string {
	switch t {
	case TypeDir:
		return "directory"
	case TypeSymlink:
		return "symbolic link"
	case TypeFIFO:
		return "named pipe"
	case TypeCharDev:
		return "character device"
	case TypeBlockDev:
		return "block device"
	}
	return string(t)
}
