package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/chunker"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crashpoint"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
)

// BackupOptions say what a backup records; the zero value backs up with defaults.
type BackupOptions struct {
	Host    string
	Tags    []string
	Target  *repo.Target
	Session string
	Program string
	// Excludes are glob patterns: one with a '/' matches the full path, else the base name.
	Excludes []string
	// Parent is the snapshot whose unchanged files are not read again. Nil: the newest
	// snapshot of the same host and paths, if any.
	Parent *repo.Snapshot
	// NoParent reads every file.
	NoParent bool
	// TolerateReadErrors records unreadable files as errors in the stats and writes the
	// snapshot anyway; by default an unreadable file fails the backup.
	TolerateReadErrors bool
	// Workers read and process files in parallel (default: the number of CPUs, at least 2).
	Workers  int
	Progress Progress
	// Interval between progress reports (default 1s).
	Interval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *BackupOptions) applyDefaults() {
	if o.Workers <= 0 {
		o.Workers = max(2, runtime.GOMAXPROCS(0))
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	o.Progress = progressOrNoop(o.Progress)
}

// ReadError lists the files a backup could not read.
type ReadError struct {
	Paths []string
	Errs  []error
}

func (e *ReadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d file(s) could not be read:", len(e.Paths))
	for i, err := range e.Errs {
		if i == 20 {
			fmt.Fprintf(&b, "\n  … and %d more", len(e.Errs)-20)
			break
		}
		fmt.Fprintf(&b, "\n  %s: %v", e.Paths[i], unwrapPath(err))
	}
	return b.String()
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Backup backs up paths into r and returns the saved snapshot.
func Backup(ctx context.Context, r *repo.Repository, paths []string, opts BackupOptions) (*repo.Snapshot, error) {
	opts.applyDefaults()
	start := opts.Now()
	if len(paths) == 0 {
		return nil, errors.New("nothing to back up: give at least one path")
	}
	abs := make([]string, 0, len(paths))
	for _, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		if _, err := os.Lstat(a); err != nil {
			return nil, fmt.Errorf("backup path: %w", err)
		}
		abs = append(abs, a)
	}
	sort.Strings(abs)
	abs = dedupNested(abs)

	parent, release, err := lockAndParent(ctx, r, opts, abs)
	if err != nil {
		return nil, err
	}
	defer release()
	uploadedBefore := r.Uploaded()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a := &archiver{r: r, opts: opts, names: newNameCache(), jobs: make(chan fileJob, 64), cancel: cancel,
		start: start, prefetchSem: make(chan struct{}, 2)}
	var parentRoot *Tree
	if parent != nil {
		if parentRoot, err = a.loadTree(ctx, parent.Tree); err != nil {
			return nil, fmt.Errorf("parent snapshot %s: %w", parent.ID.Short(), err)
		}
	}
	// Count totals concurrently, for progress.
	go a.scan(ctx, abs)
	stopProgress := a.reportProgress(ctx)

	var wg sync.WaitGroup
	for i := 0; i < opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.fileWorker(ctx)
		}()
	}
	walkErr := a.walkRoots(ctx, abs, parentRoot)
	close(a.jobs)
	wg.Wait() // the last file done saves the root tree
	// Progress goes on until the packs are stored: on a slow link most of a backup's time
	// is the upload of what was read long before, and a host that reports nothing for
	// that long looks hung.
	defer stopProgress()
	if walkErr == nil {
		walkErr = context.Cause(ctx)
	}
	if walkErr != nil {
		return nil, walkErr
	}
	if a.rootTree.Load() == nil {
		return nil, errors.New("backup finished without a root tree")
	}
	if len(a.readErrs.Paths) > 0 && !opts.TolerateReadErrors {
		return nil, &a.readErrs
	}
	if err := r.Flush(ctx); err != nil {
		return nil, err
	}
	stopProgress()
	sn := &repo.Snapshot{
		Time: start.UTC(), Host: opts.Host, Paths: abs, Tags: opts.Tags, Target: opts.Target,
		Session: opts.Session, Tree: *a.rootTree.Load(), Program: opts.Program,
		Stats: repo.Stats{
			TotalFiles: a.total.Load(), NewFiles: a.newFiles.Load(), ModifiedFiles: a.modified.Load(),
			UnmodifiedFiles: a.unmodified.Load(), Size: a.size.Load(), Uploaded: r.Uploaded() - uploadedBefore,
			Errors: int64(len(a.readErrs.Paths)), Skipped: a.skipped.Load(),
		},
	}
	if parent != nil {
		id := parent.ID
		sn.Parent = &id
	}
	sn.Stats.ProcessingTime = opts.Now().Sub(start).Round(time.Millisecond).String()
	if err := r.SaveSnapshot(ctx, sn); err != nil {
		return nil, err
	}
	crashpoint.Hit(crashpoint.BackupSnapshotSaved)
	st := a.status()
	st.ScanDone = true
	opts.Progress.Done(st)
	return sn, nil
}

// lockAndParent takes the shared lock a backup holds while it writes (release it with
// the returned function), brings the index up to date under it, and finds the parent
// snapshot: opts.Parent, else the newest of the same host and paths unless NoParent.
func lockAndParent(ctx context.Context, r *repo.Repository, opts BackupOptions, paths []string) (parent *repo.Snapshot, release func(), err error) {
	lock, err := r.Lock(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	release = func() { lock.Release(context.WithoutCancel(ctx)) }
	// what a prune deleted before the lock was taken must not be deduplicated against
	if err := r.RefreshIndex(ctx); err != nil {
		release()
		return nil, nil, fmt.Errorf("refresh the index: %w", err)
	}
	parent = opts.Parent
	if parent == nil && !opts.NoParent {
		if parent, err = findParent(ctx, r, opts.Host, paths); err != nil {
			release()
			return nil, nil, err
		}
	}
	return parent, release, nil
}

// dedupNested drops paths inside another given path (sorted input).
func dedupNested(paths []string) []string {
	out := paths[:0]
	for _, p := range paths {
		if len(out) > 0 {
			last := out[len(out)-1]
			if p == last || strings.HasPrefix(p, strings.TrimSuffix(last, "/")+"/") {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

func findParent(ctx context.Context, r *repo.Repository, host string, paths []string) (*repo.Snapshot, error) {
	all, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		sn := all[i]
		if sn.Host == host && slices.Equal(sn.Paths, paths) {
			return sn, nil
		}
	}
	return nil, nil
}

type archiver struct {
	r      *repo.Repository
	opts   BackupOptions
	names  *nameCache
	jobs   chan fileJob
	cancel context.CancelCauseFunc
	start  time.Time

	rootTree atomic.Pointer[crypto.ID]

	errMu    sync.Mutex
	readErrs ReadError

	total, newFiles, modified, unmodified, size, skipped atomic.Int64
	filesDone, bytesDone                                 atomic.Int64
	scanFiles, scanBytes                                 atomic.Int64
	scanDone                                             atomic.Bool
	current                                              atomic.Pointer[string]

	// parentTrees holds the parent snapshot's trees from when they are fetched (ahead
	// of the walker, see prefetch) until the walker takes them: only the trees around the
	// walker's position are in memory, however large the parent snapshot.
	parentTrees sync.Map // crypto.ID -> *treeFetch
	prefetchSem chan struct{}
}

type fileJob struct {
	path string
	node *Node
	old  *Node // the parent snapshot's node, if any
	dir  *dirState
}

// dirState collects a directory's nodes until every child is done, then saves its tree.
type dirState struct {
	node    *Node // nil for the root
	parent  *dirState
	nodes   []*Node
	pending atomic.Int64 // children not done, +1 while listing
}

func (a *archiver) fail(err error) { a.cancel(err) }

type treeFetch struct {
	once sync.Once
	t    *Tree
	err  error
}

func (f *treeFetch) do(ctx context.Context, r *repo.Repository, id crypto.ID) {
	f.once.Do(func() {
		b, err := r.LoadBlob(ctx, id, nil)
		if err != nil {
			f.err = err
			return
		}
		if f.t, err = decodeTree(b); err != nil {
			f.err = fmt.Errorf("tree %s: %w", id.Short(), err)
		}
	})
}

// loadTree returns a parent tree (fetched ahead if prefetch got to it first), and starts
// fetching the trees of its subdirectories, which the walker visits next.
func (a *archiver) loadTree(ctx context.Context, id crypto.ID) (*Tree, error) {
	v, _ := a.parentTrees.LoadOrStore(id, &treeFetch{})
	f := v.(*treeFetch)
	f.do(ctx, a.r, id)
	a.parentTrees.Delete(id)
	if f.err != nil {
		return nil, f.err
	}
	for _, n := range f.t.Nodes {
		if n.Type == TypeDir && n.Subtree != nil {
			a.prefetch(ctx, *n.Subtree)
		}
	}
	return f.t, nil
}

// prefetch fetches a parent tree in the background when a fetcher is free; otherwise the
// walker fetches it itself when it gets there.
func (a *archiver) prefetch(ctx context.Context, id crypto.ID) {
	select {
	case a.prefetchSem <- struct{}{}:
	default:
		return
	}
	v, loaded := a.parentTrees.LoadOrStore(id, &treeFetch{})
	if loaded {
		<-a.prefetchSem
		return
	}
	go func() {
		defer func() { <-a.prefetchSem }()
		v.(*treeFetch).do(ctx, a.r, id)
	}()
}

func (a *archiver) excluded(path string) bool {
	base := filepath.Base(path)
	for _, pat := range a.opts.Excludes {
		target := base
		if strings.Contains(pat, "/") {
			target = path
		}
		if ok, _ := filepath.Match(pat, target); ok {
			return true
		}
	}
	return false
}

// walkRoots builds the virtual root: the directories leading to each backed-up path.
func (a *archiver) walkRoots(ctx context.Context, paths []string, parentRoot *Tree) error {
	root := &dirState{}
	root.pending.Store(1)
	type vdir struct {
		state    *dirState
		children map[string]*vdir
		old      *Tree
	}
	top := &vdir{state: root, children: map[string]*vdir{}, old: parentRoot}
	// Intermediate directories are listed as we meet them; their own entries besides the
	// backed-up paths are not included.
	var finishers []*dirState
	for _, p := range paths {
		parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
		cur := top
		for i, part := range parts {
			full := "/" + strings.Join(parts[:i+1], "/")
			fi, err := os.Lstat(full)
			if err != nil {
				return err
			}
			var oldNode *Node
			if cur.old != nil {
				oldNode = cur.old.Find(part)
			}
			if i == len(parts)-1 {
				if err := a.addEntry(ctx, cur.state, full, part, fi, oldNode); err != nil {
					return err
				}
				break
			}
			next, ok := cur.children[part]
			if !ok {
				n, _ := nodeFromInfo(part, fi, a.names)
				st := &dirState{node: n, parent: cur.state}
				st.pending.Store(1)
				cur.state.nodes = append(cur.state.nodes, n)
				cur.state.pending.Add(1)
				var oldTree *Tree
				if oldNode != nil && oldNode.Type == TypeDir && oldNode.Subtree != nil {
					oldTree, _ = a.loadTree(ctx, *oldNode.Subtree)
				}
				next = &vdir{state: st, children: map[string]*vdir{}, old: oldTree}
				cur.children[part] = next
				finishers = append(finishers, st)
			}
			cur = next
		}
	}
	// Deepest first: a directory's listing is done once all its paths were added.
	for i := len(finishers) - 1; i >= 0; i-- {
		a.childDone(ctx, finishers[i])
	}
	a.childDone(ctx, root)
	return context.Cause(ctx)
}

// addEntry records one directory entry of dir; directories are walked recursively.
func (a *archiver) addEntry(ctx context.Context, dir *dirState, path, name string, fi os.FileInfo, old *Node) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if a.excluded(path) {
		return nil
	}
	n, ok := nodeFromInfo(name, fi, a.names)
	if !ok {
		a.skipped.Add(1)
		return nil
	}
	dir.nodes = append(dir.nodes, n)
	switch n.Type {
	case TypeFile:
		a.total.Add(1)
		a.size.Add(int64(n.Size))
		dir.pending.Add(1)
		if old != nil && old.Type == TypeFile && old.Size == n.Size && old.ModTime.Equal(n.ModTime) &&
			old.ChangeTime.Equal(n.ChangeTime) && old.Inode == n.Inode && a.allStored(old.Content) {
			n.Content = old.Content
			a.unmodified.Add(1)
			a.filesDone.Add(1)
			a.bytesDone.Add(int64(n.Size))
			a.childDone(ctx, dir)
			return nil
		}
		select {
		case a.jobs <- fileJob{path: path, node: n, old: old, dir: dir}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	case TypeDir:
		child := &dirState{node: n, parent: dir}
		child.pending.Store(1)
		dir.pending.Add(1)
		var oldTree *Tree
		if old != nil && old.Type == TypeDir && old.Subtree != nil {
			t, err := a.loadTree(ctx, *old.Subtree)
			if err == nil {
				oldTree = t
			}
		}
		if err := a.walkDir(ctx, path, child, oldTree); err != nil {
			return err
		}
		a.childDone(ctx, child)
	case TypeSymlink:
		target, err := os.Readlink(path)
		if err != nil {
			a.readError(path, err)
			n.skip = true
			return nil
		}
		n.LinkTarget = target
	}
	return nil
}

func (a *archiver) walkDir(ctx context.Context, path string, d *dirState, old *Tree) error {
	f, err := os.Open(path)
	if err != nil {
		a.readError(path, err)
		d.node.skip = true
		return nil
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		a.readError(path, err)
		d.node.skip = true
		return nil
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(path, name)
		fi, err := os.Lstat(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed while we walked
			}
			a.readError(p, err)
			continue
		}
		var oldNode *Node
		if old != nil {
			oldNode = old.Find(name)
		}
		if err := a.addEntry(ctx, d, p, name, fi, oldNode); err != nil {
			return err
		}
	}
	return nil
}

func (a *archiver) allStored(ids []crypto.ID) bool {
	for _, id := range ids {
		if !a.r.Has(id) {
			return false
		}
	}
	return true
}

// childDone counts one child of d as done; the last one saves d's tree and reports to
// d's parent.
func (a *archiver) childDone(ctx context.Context, d *dirState) {
	if d.pending.Add(-1) != 0 {
		return
	}
	b, err := encodeTree(&Tree{Nodes: d.nodes})
	if err != nil {
		a.fail(err)
		return
	}
	id, _, err := a.r.SaveBlob(ctx, repo.TreeBlob, b)
	if err != nil {
		a.fail(err)
		return
	}
	if d.node != nil {
		d.node.Subtree = &id
	}
	if d.parent == nil {
		a.rootTree.Store(&id)
		return
	}
	a.childDone(ctx, d.parent)
}

func (a *archiver) readError(path string, err error) {
	a.errMu.Lock()
	a.readErrs.Paths = append(a.readErrs.Paths, path)
	a.readErrs.Errs = append(a.readErrs.Errs, err)
	a.errMu.Unlock()
}

func (a *archiver) fileWorker(ctx context.Context) {
	ch, err := chunker.NewWithTable(nil, a.r.Config().Chunker, chunker.NewTable(a.r.Config().ChunkerSeed))
	if err != nil {
		a.fail(err)
		for range a.jobs {
		}
		return
	}
	var buf []byte // grows to the largest chunk
	for job := range a.jobs {
		if context.Cause(ctx) == nil {
			if err := a.saveFile(ctx, ch, &buf, job); err != nil {
				if ctx.Err() != nil {
					// cancelled: the cause is reported by Backup
				} else if isRepoErr(err) {
					a.fail(err)
				} else {
					a.readError(job.path, err)
					job.node.skip = true
				}
			}
		}
		a.filesDone.Add(1)
		a.childDone(ctx, job.dir)
	}
}

// repoError marks errors of the repository (not of the file being read): they fail the
// whole backup.
type repoError struct{ err error }

func (e repoError) Error() string { return e.err.Error() }
func (e repoError) Unwrap() error { return e.err }

func isRepoErr(err error) bool {
	var re repoError
	return errors.As(err, &re)
}

func (a *archiver) saveFile(ctx context.Context, ch *chunker.Chunker, buf *[]byte, job fileJob) error {
	a.current.Store(&job.path)
	f, err := openForBackup(job.path)
	if err != nil {
		return err
	}
	defer f.Close()
	ch.Reset(f)
	var content []crypto.ID
	var read uint64
	for {
		chunk, err := ch.Next(*buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if cap(chunk) > cap(*buf) {
			*buf = chunk[:0]
		}
		id := a.r.BlobID(chunk)
		if !a.r.Has(id) {
			if _, err := a.r.SaveBlobWithID(ctx, repo.DataBlob, id, chunk); err != nil {
				return repoError{err}
			}
		}
		crashpoint.Hit(crashpoint.BackupChunk)
		content = append(content, id)
		read += uint64(len(chunk))
		a.bytesDone.Add(int64(len(chunk)))
	}
	// The file may have changed while read: record what was read.
	job.node.Size = read
	job.node.Content = content
	if job.old != nil && job.old.Type == TypeFile {
		a.modified.Add(1)
	} else {
		a.newFiles.Add(1)
	}
	return nil
}

// scan counts files and bytes ahead of the backup, for progress totals.
func (a *archiver) scan(ctx context.Context, paths []string) {
	defer a.scanDone.Store(true)
	for _, p := range paths {
		_ = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil || d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			if fi, err := d.Info(); err == nil {
				a.scanFiles.Add(1)
				a.scanBytes.Add(fi.Size())
			}
			return nil
		})
	}
}

func (a *archiver) status() Status {
	s := Status{
		FilesDone: a.filesDone.Load(), BytesDone: a.bytesDone.Load(),
		FilesTotal: a.scanFiles.Load(), BytesTotal: a.scanBytes.Load(),
		ScanDone: a.scanDone.Load(), Elapsed: a.opts.Now().Sub(a.start),
	}
	a.errMu.Lock()
	s.Errors = int64(len(a.readErrs.Paths))
	a.errMu.Unlock()
	if p := a.current.Load(); p != nil {
		s.CurrentPath = *p
	}
	s.FilesTotal = max(s.FilesTotal, s.FilesDone)
	s.BytesTotal = max(s.BytesTotal, s.BytesDone)
	return s
}

func (a *archiver) reportProgress(ctx context.Context) (stop func()) {
	return every(ctx, a.opts.Interval, func() { a.opts.Progress.Report(a.status()) })
}
