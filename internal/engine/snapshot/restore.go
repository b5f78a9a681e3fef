package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/compress"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
)

// Overwrite says what restore does with a file that exists in the target and differs.
type Overwrite string

// Overwrite modes.
const (
	OverwriteNever   Overwrite = "never"    // leave it
	OverwriteIfNewer Overwrite = "if-newer" // replace it if the snapshot's copy is newer
	OverwriteAlways  Overwrite = "always"   // replace it
)

// ParseOverwrite checks a mode name.
func ParseOverwrite(s string) (Overwrite, error) {
	switch o := Overwrite(s); o {
	case OverwriteNever, OverwriteIfNewer, OverwriteAlways:
		return o, nil
	case "":
		return OverwriteAlways, nil
	}
	return "", fmt.Errorf("invalid overwrite mode %q: use never, if-newer or always", s)
}

// RestoreOptions say what and how to restore.
type RestoreOptions struct {
	// Target is the directory restored into; the snapshot's paths are recreated below it.
	Target string
	// Path restores only this path of the snapshot (and what is below it).
	Path string
	// StripPath restores the contents of the directory Path directly into Target, which
	// takes the place of Path: it gets Path's mode, owner and times at the end, and Delete
	// applies to Target itself. A Path naming a file restores it into Target/<base name>.
	// A restore into a mounted volume uses it: the volume is the directory backed up.
	StripPath bool
	// Includes and Excludes are glob patterns (path.Match) matched against an entry's
	// absolute path in the snapshot when they hold a '/', else against its base name, as
	// BackupOptions.Excludes are. An excluded entry is left out with everything below it.
	// With Includes, only entries whose path or an ancestor directory's path matches one
	// are restored, and other directories are created only to hold those. Delete never
	// removes an entry these patterns leave out: it is not selected, not absent.
	Includes, Excludes []string
	// Overwrite is the mode for existing files (default always). Files that are identical
	// (same size and modification time; for symbolic links, same target and modification
	// time) are skipped in every mode: a restore resumes.
	Overwrite Overwrite
	// Delete removes files in the restored directories that are not in the snapshot
	// (and that Includes and Excludes select).
	Delete bool
	// DryRun plans and reports, and changes nothing.
	DryRun bool
	// Report receives each action ("create", "overwrite", "skip", "keep", "delete") and
	// the path it applies to (relative to Target). Optional.
	Report func(action, path string)
	// Workers restore packs in parallel (default: the number of CPUs, at least 2).
	Workers  int
	Progress Progress
	Interval time.Duration
	Now      func() time.Time
}

// RestoreStats count what a restore did.
type RestoreStats struct {
	Files, Dirs, Links, Special int64
	Skipped, Kept, Deleted      int64
	Bytes                       int64
}

func (o *RestoreOptions) applyDefaults() {
	if o.Workers <= 0 {
		o.Workers = max(2, runtime.GOMAXPROCS(0))
	}
	if o.Overwrite == "" {
		o.Overwrite = OverwriteAlways
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Report == nil {
		o.Report = func(string, string) {}
	}
	o.Progress = progressOrNoop(o.Progress)
}

type restoreFile struct {
	rel       string
	node      *Node
	remaining atomic.Int64 // blobs still to write

	// Files are created by the first pack worker that writes to them, so creation runs in
	// parallel with everything else.
	create    sync.Once
	createErr error
}

type blobTarget struct {
	file   *restoreFile
	offset int64
}

type packWork struct {
	pack  crypto.ID
	typ   repo.BlobType
	blobs map[crypto.ID]*blobNeed
}

type blobNeed struct {
	entry   repo.Entry
	targets []blobTarget
}

type restorer struct {
	r      *repo.Repository
	opts   RestoreOptions
	root   *os.Root
	stats  RestoreStats
	filter *restoreFilter
	// prefix is the snapshot path of the target's top: "/", or with StripPath the path
	// restored (its parent directory for a file).
	prefix string
	// umask is the process's umask when the restore started (processUmask): a file
	// created with its permission bits needs no chmod when the umask keeps them all.
	umask uint32
	// pending are directories entered but not planned yet: with Includes, a directory is
	// created only once something below it is restored (materialize).
	pending []pendingDir

	files    []*restoreFile
	dirList  []dirMeta // in creation order (parents first)
	dirs     *dirCache
	links    [][2]string
	special  []*restoreFile
	symlinks []*restoreFile
	packs    map[crypto.ID]*packWork
	keep     map[string]map[string]bool // dir rel -> names in snapshot (for --delete)
	hardlink map[[2]uint64]string

	bytesDone, filesDone atomic.Int64
	bytesTotal           int64

	writeback *writebacks
}

// writebacks start the kernel writing each restored file to disk as soon as it is
// written (startWriteback), from a goroutine of their own that then closes the file.
// Without it the data of a restore waits in the page cache for the kernel's own
// writeback, half a minute later, or for a sync: the disk sat idle while restore
// worked, and did all its writing afterwards (0.7-0.9 s for the benchmark's 1.4 GB).
// The goroutine also keeps the submission, which can block on the device, off the
// workers. Nothing waits for the writes to complete: this is no fsync.
type writebacks struct {
	ch   chan writeback
	done chan struct{}
	once sync.Once
	err  error // of the first close that failed; read after done
}

// writeback is a restored file whose range off+n was just written.
type writeback struct {
	fd     uintptr
	close  func() error
	off, n int64
}

// writebackQueue bounds the restored files held open for their writeback.
const writebackQueue = 128

func startWritebacks() *writebacks {
	w := &writebacks{done: make(chan struct{})}
	if !canStartWriteback {
		close(w.done)
		return w
	}
	w.ch = make(chan writeback, writebackQueue)
	go func() {
		defer close(w.done)
		for b := range w.ch {
			startWriteback(b.fd, b.off, b.n)
			if err := b.close(); err != nil && w.err == nil {
				w.err = err
			}
		}
	}()
	return w
}

// closeAfter hands b's file to the writeback goroutine, which closes it; when that one
// is behind (or there is none on this system), the file is closed at once.
func (w *writebacks) closeAfter(b writeback) error {
	if w.ch != nil {
		select {
		case w.ch <- b:
			return nil
		default:
		}
	}
	return b.close()
}

// stop waits for the queued files and returns the first error closing one of them.
func (w *writebacks) stop() error {
	w.once.Do(func() {
		if w.ch != nil {
			close(w.ch)
		}
	})
	<-w.done
	return w.err
}

// dirCache keeps directories of the target open, so each file costs one openat relative
// to its directory instead of a walk from the root for every operation. Directories are
// opened through the os.Root, and names are single validated components opened with
// O_NOFOLLOW, so nothing escapes the target.
type dirCache struct {
	root *os.Root
	mu   sync.Mutex
	fds  map[string]*os.File
}

const maxCachedDirs = 512

// get returns the open directory and a release function. Cached fds are never closed
// while a phase runs (another goroutine may be using them); past maxCachedDirs a
// directory is opened for this caller only and closed by release.
func (c *dirCache) get(dir string) (*os.File, func(), error) {
	if dir == "" {
		dir = "."
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.fds[dir]; ok {
		return f, func() {}, nil
	}
	f, err := c.root.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	if len(c.fds) >= maxCachedDirs {
		return f, func() { f.Close() }, nil
	}
	c.fds[dir] = f
	return f, func() {}, nil
}

// closeAll closes every cached directory; restore calls it only between phases.
func (c *dirCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
}

func (c *dirCache) closeLocked() {
	for _, f := range c.fds {
		f.Close()
	}
	c.fds = map[string]*os.File{}
}

type dirMeta struct {
	rel  string // "": the target itself (StripPath)
	node *Node
}

type pendingDir struct {
	rel    string
	node   *Node
	exists bool // in the target already
	// lead is a directory leading to Path: created with its metadata, but neither
	// reported nor counted.
	lead bool
}

// materialize plans the pending directories (parents first): something below them is
// restored.
func (rs *restorer) materialize() {
	for _, d := range rs.pending {
		rs.dirList = append(rs.dirList, dirMeta{rel: d.rel, node: d.node})
		if d.lead {
			continue
		}
		if !d.exists {
			rs.opts.Report("create", d.rel+"/")
		}
		rs.stats.Dirs++
	}
	rs.pending = rs.pending[:0]
}

// leave drops directory rel from the pending ones if nothing below it was restored.
func (rs *restorer) leave(rel string) {
	if n := len(rs.pending); n > 0 && rs.pending[n-1].rel == rel {
		rs.pending = rs.pending[:n-1]
	}
}

// Restore restores sn into opts.Target.
func Restore(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, opts RestoreOptions) (RestoreStats, error) {
	opts.applyDefaults()
	if opts.Target == "" {
		return RestoreStats{}, errors.New("no restore target: give --target DIR")
	}
	filter, err := newRestoreFilter(opts.Includes, opts.Excludes)
	if err != nil {
		return RestoreStats{}, err
	}
	if !opts.DryRun {
		if err := os.MkdirAll(opts.Target, 0o700); err != nil {
			return RestoreStats{}, fmt.Errorf("restore target: %w", err)
		}
	}
	rs := &restorer{r: r, opts: opts, filter: filter, prefix: "/", packs: map[crypto.ID]*packWork{},
		keep: map[string]map[string]bool{}, hardlink: map[[2]uint64]string{}}
	if !opts.DryRun {
		root, err := os.OpenRoot(opts.Target)
		if err != nil {
			return RestoreStats{}, fmt.Errorf("restore target: %w", err)
		}
		defer root.Close()
		rs.root = root
	} else if fi, err := os.Stat(opts.Target); err == nil && fi.IsDir() {
		if root, err := os.OpenRoot(opts.Target); err == nil {
			defer root.Close()
			rs.root = root
		}
	}
	lock, err := r.Lock(ctx, false)
	if err != nil {
		return RestoreStats{}, err
	}
	defer lock.Release(context.WithoutCancel(ctx))

	start := opts.Now()
	tree, err := rs.loadTree(ctx, sn.Tree)
	if err != nil {
		return RestoreStats{}, fmt.Errorf("snapshot %s: its root directory: %w", sn.ID.Short(), err)
	}
	if err := rs.planPath(ctx, sn, tree); err != nil {
		return rs.stats, err
	}
	if opts.DryRun {
		return rs.stats, nil
	}
	stop := rs.reportProgress(ctx, start)
	err = rs.execute(ctx)
	stop()
	st := Status{FilesDone: rs.filesDone.Load(), FilesTotal: int64(len(rs.files)), BytesDone: rs.bytesDone.Load(),
		BytesTotal: rs.bytesTotal, Elapsed: opts.Now().Sub(start), ScanDone: true}
	opts.Progress.Done(st)
	return rs.stats, err
}

// planPath plans the restore of opts.Path (the whole snapshot when empty) from the
// snapshot's root tree: without StripPath the directories leading to it are recreated
// below the target; with it, the target takes the place of Path.
func (rs *restorer) planPath(ctx context.Context, sn *repo.Snapshot, tree *Tree) error {
	p := strings.Trim(path.Clean("/"+rs.opts.Path), "/")
	if p == "" {
		return rs.plan(ctx, "", tree, rs.opts.Delete, false, false)
	}
	parts := strings.Split(p, "/")
	rel := ""
	inc := false // an ancestor of the entry at hand is selected (matches an include)
	for i, part := range parts {
		full := "/" + strings.Join(parts[:i+1], "/")
		n := tree.Find(part)
		if n == nil {
			return fmt.Errorf("snapshot %s has no path %s", sn.ID.Short(), full)
		}
		if pat := rs.filter.excludedBy(full); pat != "" {
			return fmt.Errorf("snapshot %s: path %s is excluded by pattern %q: nothing to restore", sn.ID.Short(), full, pat)
		}
		if i == len(parts)-1 {
			switch {
			case !rs.opts.StripPath:
				return rs.plan(ctx, rel, &Tree{Nodes: []*Node{n}}, false, inc, false)
			case n.Type == TypeDir:
				rs.prefix = full
				// The target plays the part of the directory: its metadata goes last.
				rs.dirList = append(rs.dirList, dirMeta{rel: "", node: n})
				sub, err := rs.loadTree(ctx, *n.Subtree)
				if err != nil {
					return fmt.Errorf("snapshot %s: %s: %w", sn.ID.Short(), full, err)
				}
				return rs.plan(ctx, "", sub, rs.opts.Delete, inc || rs.filter.included(full), false)
			default:
				rs.prefix = path.Dir(full)
				return rs.plan(ctx, "", &Tree{Nodes: []*Node{n}}, false, inc, false)
			}
		}
		if n.Type != TypeDir {
			return fmt.Errorf("snapshot %s: %s is not a directory", sn.ID.Short(), full)
		}
		inc = inc || rs.filter.included(full)
		if !rs.opts.StripPath {
			rel = path.Join(rel, part)
			rs.pending = append(rs.pending, pendingDir{rel: rel, node: n, lead: true})
			if inc {
				rs.materialize()
			}
		}
		var err error
		if tree, err = rs.loadTree(ctx, *n.Subtree); err != nil {
			return fmt.Errorf("snapshot %s: %s: %w", sn.ID.Short(), full, err)
		}
	}
	return nil
}

func (rs *restorer) loadTree(ctx context.Context, id crypto.ID) (*Tree, error) {
	b, err := rs.r.LoadBlob(ctx, id, nil)
	if err != nil {
		return nil, err
	}
	t, err := decodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return t, nil
}

// plan walks a tree and decides what to do with each entry. dir is the tree's place in
// the target; inc says an ancestor directory is selected (matches an include, or there
// are none), and with it everything below that is not excluded.
//
// absent says dir is not in the target (it will be created): nothing below it is
// either, so entries are not looked up one by one.
func (rs *restorer) plan(ctx context.Context, dir string, t *Tree, del, inc, absent bool) error {
	names := map[string]bool{}
	for _, n := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := n.FileName()
		if err := ValidName(name); err != nil {
			return err
		}
		names[name] = true // filtered out or not: never deleted
		rel := path.Join(dir, name)
		sp := path.Join(rs.prefix, rel)
		if rs.filter.excluded(sp) {
			continue
		}
		selected := inc || rs.filter.included(sp)
		if !selected && n.Type != TypeDir {
			continue
		}
		var existing fs.FileInfo
		exErr := fs.ErrNotExist
		if !absent {
			existing, exErr = rs.lstat(rel)
		}
		switch n.Type {
		case TypeDir:
			if exErr == nil && !existing.IsDir() {
				if err := rs.replaceable(rel, n, existing); err != nil {
					continue
				}
			}
			rs.pending = append(rs.pending, pendingDir{rel: rel, node: n, exists: exErr == nil})
			if selected {
				rs.materialize()
			}
			sub, err := rs.loadTree(ctx, *n.Subtree)
			if err != nil {
				// a damaged listing: name the directory whose content is lost
				return fmt.Errorf("%s: %w", rel, err)
			}
			if err := rs.plan(ctx, rel, sub, rs.opts.Delete, selected, errors.Is(exErr, fs.ErrNotExist)); err != nil {
				return err
			}
			rs.leave(rel)
		case TypeFile:
			rs.materialize()
			if n.Links > 1 {
				k := [2]uint64{n.DeviceID, n.Inode}
				if first, ok := rs.hardlink[k]; ok {
					rs.links = append(rs.links, [2]string{first, rel})
					rs.opts.Report("link", rel)
					rs.stats.Links++
					continue
				}
				rs.hardlink[k] = rel
			}
			if exErr == nil {
				if existing.Mode().IsRegular() && uint64(existing.Size()) == n.Size && existing.ModTime().Equal(n.ModTime) {
					rs.opts.Report("skip", rel)
					rs.stats.Skipped++
					continue
				}
			}
			if !rs.decide(rel, n, existing, exErr) {
				continue
			}
			f := &restoreFile{rel: rel, node: n}
			rs.files = append(rs.files, f)
			rs.stats.Files++
			rs.stats.Bytes += int64(n.Size)
			rs.bytesTotal += int64(n.Size)
			var off int64
			for _, id := range n.Content {
				e, ok := rs.r.Lookup(id)
				if !ok {
					return fmt.Errorf("%s: blob %s is missing from the repository", rel, id.Short())
				}
				pw := rs.packs[e.Pack]
				if pw == nil {
					pw = &packWork{pack: e.Pack, typ: e.Type, blobs: map[crypto.ID]*blobNeed{}}
					rs.packs[e.Pack] = pw
				}
				bn := pw.blobs[id]
				if bn == nil {
					bn = &blobNeed{entry: e}
					pw.blobs[id] = bn
				}
				bn.targets = append(bn.targets, blobTarget{file: f, offset: off})
				off += int64(e.Raw)
				f.remaining.Add(1)
			}
			// A backup records the bytes it read as the size, so the two agree; a tree
			// where they do not is damaged or crafted, and its size (up to 2^64) must
			// not become a file's length.
			if uint64(off) != n.Size {
				return fmt.Errorf("%s: its content has %d bytes, its size says %d: the tree is damaged", rel, off, n.Size)
			}
		case TypeSymlink, TypeFIFO, TypeCharDev, TypeBlockDev:
			rs.materialize()
			if n.Type == TypeSymlink && exErr == nil && existing.Mode()&fs.ModeSymlink != 0 && existing.ModTime().Equal(n.ModTime) {
				if target, err := rs.root.Readlink(rel); err == nil && target == n.LinkTarget {
					rs.opts.Report("skip", rel)
					rs.stats.Skipped++
					continue
				}
			}
			if !rs.decide(rel, n, existing, exErr) {
				continue
			}
			f := &restoreFile{rel: rel, node: n}
			if n.Type == TypeSymlink {
				rs.symlinks = append(rs.symlinks, f)
			} else {
				rs.special = append(rs.special, f)
			}
			rs.stats.Special++
		}
	}
	if del {
		rs.keep[dir] = names
		if err := rs.planDelete(dir, names, inc); err != nil {
			return err
		}
	}
	return nil
}

// decide reports create or overwrite for an entry and says whether to restore it, given
// what (if anything) is at its place in the target.
func (rs *restorer) decide(rel string, n *Node, existing fs.FileInfo, statErr error) bool {
	if statErr != nil {
		rs.opts.Report("create", rel)
		return true
	}
	if err := rs.replaceable(rel, n, existing); err != nil {
		return false
	}
	rs.opts.Report("overwrite", rel)
	return true
}

// replaceable applies the overwrite mode to an existing entry; an error means keep it.
func (rs *restorer) replaceable(rel string, n *Node, existing fs.FileInfo) error {
	switch rs.opts.Overwrite {
	case OverwriteNever:
	case OverwriteIfNewer:
		if n.ModTime.After(existing.ModTime()) {
			return nil
		}
	default:
		return nil
	}
	rs.opts.Report("keep", rel)
	rs.stats.Kept++
	return errors.New("kept")
}

// planDelete deletes (or with DryRun reports) the entries of the target directory dir
// that are not in the snapshot (names) and that the filter selects; inc says an ancestor
// of dir matches an include.
func (rs *restorer) planDelete(dir string, names map[string]bool, inc bool) error {
	if rs.root == nil {
		return nil
	}
	entries, err := rs.readDir(dir)
	if err != nil || entries == nil {
		return err
	}
	for _, e := range entries {
		if dir == "" && rs.opts.StripPath && e == "lost+found" {
			// the target is a volume's root: its file system's lost+found is not data
			continue
		}
		if !names[e] {
			if _, err := rs.deleteExtra(path.Join(dir, e), inc); err != nil {
				return err
			}
		}
	}
	return nil
}

// readDir lists a directory of the target, sorted; nil when there is no directory there
// (not yet, or something else that restore replaces).
func (rs *restorer) readDir(dir string) ([]string, error) {
	d := dir
	if d == "" {
		d = "."
	}
	if fi, err := rs.root.Lstat(d); err != nil || !fi.IsDir() {
		return nil, nil
	}
	f, err := rs.root.Open(d)
	if err != nil {
		return nil, nil
	}
	entries, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	sort.Strings(entries)
	return entries, nil
}

// deleteExtra deletes rel, which is in the target and not in the snapshot, if the filter
// selects it. A directory the filter might leave something of is walked, and removed
// only when all it held went. It reports whether rel is gone (would be, with DryRun).
func (rs *restorer) deleteExtra(rel string, inc bool) (bool, error) {
	fi, err := rs.root.Lstat(rel)
	if err != nil {
		return true, nil // gone meanwhile
	}
	sp := path.Join(rs.prefix, rel)
	if rs.filter.excluded(sp) {
		return false, nil
	}
	selected := inc || rs.filter.included(sp)
	remove := func(all bool) (bool, error) {
		rs.opts.Report("delete", rel)
		rs.stats.Deleted++
		if rs.opts.DryRun {
			return true, nil
		}
		if all {
			return true, rs.root.RemoveAll(rel)
		}
		return true, rs.root.Remove(rel)
	}
	if !fi.IsDir() {
		if !selected {
			return false, nil
		}
		return remove(false)
	}
	if selected && len(rs.filter.excludes) == 0 {
		return remove(true)
	}
	entries, err := rs.readDir(rel)
	if err != nil {
		return false, err
	}
	all := true
	for _, e := range entries {
		gone, err := rs.deleteExtra(path.Join(rel, e), selected)
		if err != nil {
			return false, err
		}
		all = all && gone
	}
	if !selected || !all {
		return false, nil
	}
	return remove(true)
}

func (rs *restorer) lstat(rel string) (fs.FileInfo, error) {
	if rs.root == nil {
		return nil, os.ErrNotExist
	}
	return rs.root.Lstat(rel)
}

// execute creates directories, writes file contents pack by pack, then links, special
// files, and finally metadata (directories last, deepest first, so their times stick).
func (rs *restorer) execute(ctx context.Context) error {
	rs.dirs = &dirCache{root: rs.root, fds: map[string]*os.File{}}
	defer rs.dirs.closeAll()
	rs.writeback = startWritebacks()
	defer rs.writeback.stop() // after an error; a second stop is a no-op
	rs.umask = processUmask()
	for _, d := range rs.dirList {
		if d.rel == "" {
			continue // the target itself
		}
		if fi, err := rs.root.Lstat(d.rel); err == nil && !fi.IsDir() {
			if err := rs.root.Remove(d.rel); err != nil {
				return err
			}
		}
		if err := rs.root.MkdirAll(d.rel, 0o700); err != nil {
			return err
		}
	}
	// Files without content are created here; the others by the pack workers, which
	// also set each file's metadata as soon as its last blob is written.
	for _, f := range rs.files {
		if len(f.node.Content) == 0 {
			if err := rs.ensureCreated(f); err != nil {
				return err
			}
		}
	}
	packs := make([]*packWork, 0, len(rs.packs))
	for _, p := range rs.packs {
		packs = append(packs, p)
	}
	sort.Slice(packs, func(i, j int) bool { return packs[i].pack.String() < packs[j].pack.String() })
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rs.opts.Workers)
	// One set of buffers per worker, reused from pack to pack.
	bufs := make(chan *packBufs, rs.opts.Workers)
	for range rs.opts.Workers {
		bufs <- &packBufs{}
	}
	for _, p := range packs {
		g.Go(func() error {
			b := <-bufs
			defer func() { bufs <- b }()
			return rs.restorePack(gctx, p, b)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	errs := []error{rs.writeback.stop()}
	for _, f := range rs.files {
		if len(f.node.Content) == 0 {
			errs = append(errs, rs.setMeta(f.rel, f.node))
		}
	}
	for _, l := range rs.links {
		_ = rs.root.Remove(l[1])
		errs = append(errs, rs.root.Link(l[0], l[1]))
	}
	for _, f := range rs.symlinks {
		_ = rs.root.Remove(f.rel)
		if err := rs.root.Symlink(f.node.LinkTarget, f.rel); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, rs.setMeta(f.rel, f.node))
	}
	for _, f := range rs.special {
		errs = append(errs, rs.mknod(f))
	}
	// Directory times last, deepest first, with nothing cached below them any more.
	rs.dirs.closeAll()
	for i := len(rs.dirList) - 1; i >= 0; i-- {
		errs = append(errs, rs.setMeta(rs.dirList[i].rel, rs.dirList[i].node))
	}
	return errors.Join(errs...)
}

func (rs *restorer) ensureCreated(f *restoreFile) error {
	f.create.Do(func() { f.createErr = rs.createFile(f) })
	return f.createErr
}

// openNew creates (or truncates) the file at f's place. O_NOFOLLOW: never write through
// a symlink planted there; a symlink or directory in the way is replaced.
func (rs *restorer) openNew(f *restoreFile) (*os.File, error) {
	fh, err := rs.openat(f.rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if inTheWay(err) {
		if err := rs.root.RemoveAll(f.rel); err != nil {
			return nil, err
		}
		fh, err = rs.openat(f.rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	}
	return fh, err
}

// writeWhole creates a file whose content is exactly data, with its metadata.
func (rs *restorer) writeWhole(f *restoreFile, data []byte) error {
	inWay, err := rs.writeNew(f.rel, data, f.node)
	if inWay {
		// a symlink or directory at the file's place is replaced
		if err := rs.root.RemoveAll(f.rel); err != nil {
			return err
		}
		_, err = rs.writeNew(f.rel, data, f.node)
	}
	return err
}

func (rs *restorer) createFile(f *restoreFile) error {
	fh, err := rs.openNew(f)
	if err != nil {
		return err
	}
	if err := fh.Truncate(int64(f.node.Size)); err != nil {
		fh.Close()
		return err
	}
	if f.node.Size == 0 || len(f.node.Content) == 0 {
		rs.filesDone.Add(1)
	}
	return fh.Close()
}

var zeroBlock [4096]byte

// packBufs are a restore worker's buffers: a read buffer over the pack, the sealed
// blob at hand (decrypted where it is), and its decompressed plaintext. They grow to
// the largest blob and are reused for every pack the worker restores.
type packBufs struct {
	rd     *bufio.Reader
	sealed []byte
	plain  []byte
}

// packReadBuffer is the read buffer over a pack: small blobs (most files) come out of
// it, larger ones are read straight into the sealed buffer.
const packReadBuffer = 256 << 10

// restorePack reads the span of a pack holding the needed blobs in one request, blob
// by blob, verifies each blob, and writes it wherever it is needed.
func (rs *restorer) restorePack(ctx context.Context, p *packWork, b *packBufs) error {
	type item struct {
		id crypto.ID
		bn *blobNeed
	}
	items := make([]item, 0, len(p.blobs))
	lo, hi := int64(1<<32-1), int64(0) // in 64 bits: offset+length of an index entry may pass 2^32
	for id, bn := range p.blobs {
		items = append(items, item{id, bn})
		lo = min(lo, int64(bn.entry.Offset))
		hi = max(hi, int64(bn.entry.Offset)+int64(bn.entry.Length))
	}
	sort.Slice(items, func(i, j int) bool { return items[i].bn.entry.Offset < items[j].bn.entry.Offset })
	// Errors name the files a blob was for: who reads them needs to know what is lost.
	paths := func(bn *blobNeed) string {
		var paths []string
		for _, t := range bn.targets {
			paths = append(paths, t.file.rel)
		}
		return strings.Join(paths, ", ")
	}
	rd, err := rs.r.Backend().NewRangeReader(ctx, repo.PackKey(p.typ, p.pack), lo, hi-lo)
	if err != nil {
		return fmt.Errorf("%s: pack %s: %w", paths(items[0].bn), p.pack.Short(), err)
	}
	defer rd.Close()
	if b.rd == nil {
		b.rd = bufio.NewReaderSize(rd, packReadBuffer)
	} else {
		b.rd.Reset(rd)
	}
	defer b.rd.Reset(nil)
	pos := lo
	for _, it := range items {
		e := it.bn.entry
		if int64(e.Offset) < pos {
			return fmt.Errorf("%s: pack %s: blob %s overlaps the one before it in the index", paths(it.bn), p.pack.Short(), it.id.Short())
		}
		if _, err := b.rd.Discard(int(int64(e.Offset) - pos)); err != nil { // blobs not needed
			return fmt.Errorf("%s: pack %s: reading at %d: %w", paths(it.bn), p.pack.Short(), pos, err)
		}
		sealed, err := readSealed(b.rd, int(e.Length), b.sealed)
		if cap(sealed) > cap(b.sealed) {
			b.sealed = sealed[:0]
		}
		if err != nil {
			return fmt.Errorf("%s: pack %s: reading %d bytes at %d: %w", paths(it.bn), p.pack.Short(), e.Length, e.Offset, err)
		}
		pos = int64(e.Offset) + int64(e.Length)
		plain, err := rs.r.OpenBlob(it.id, e, sealed, b.plain)
		if err != nil {
			return fmt.Errorf("%s: %w", paths(it.bn), err)
		}
		if e.Codec != compress.None && cap(plain) > cap(b.plain) {
			b.plain = plain[:0]
		}
		for _, t := range it.bn.targets {
			if len(t.file.node.Content) == 1 && !t.file.node.Sparse {
				// The whole file in one blob (most small files): create and write it
				// with a single open, and set its metadata on the open file.
				if err := rs.writeWhole(t.file, plain); err != nil {
					return err
				}
				rs.bytesDone.Add(int64(len(plain)))
				t.file.remaining.Add(-1)
				rs.filesDone.Add(1)
				continue
			}
			if err := rs.ensureCreated(t.file); err != nil {
				return err
			}
			if err := rs.writeAt(t.file, plain, t.offset); err != nil {
				return err
			}
			rs.bytesDone.Add(int64(len(plain)))
			if t.file.remaining.Add(-1) == 0 {
				rs.filesDone.Add(1)
				if err := rs.setMeta(t.file.rel, t.file.node); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sealedPrealloc is the most readSealed allocates before bytes arrive: above the
// largest blob a backup writes (a chunk of at most 8 MiB, sealed).
const sealedPrealloc = 9 << 20

// readSealed reads the n bytes of a sealed blob into buf, which it grows as needed. Past
// sealedPrealloc the buffer grows with what arrives, not with what the index claims: an
// entry claiming 4 GiB in a pack of a few MiB fails at the pack's end having allocated
// what the pack holds.
func readSealed(rd io.Reader, n int, buf []byte) ([]byte, error) {
	if cap(buf) < min(n, sealedPrealloc) {
		buf = make([]byte, 0, min(n, sealedPrealloc))
	}
	buf = buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n-len(buf), len(buf)))
		}
		m, err := io.ReadFull(rd, buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

func (rs *restorer) writeAt(f *restoreFile, data []byte, off int64) error {
	fh, err := rs.openat(f.rel, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if !f.node.Sparse {
		if _, err := fh.WriteAt(data, off); err != nil {
			fh.Close()
			return fmt.Errorf("%s: %w", f.rel, err)
		}
		return rs.writeback.closeAfter(writeback{fd: fh.Fd(), close: fh.Close, off: off, n: int64(len(data))})
	}
	defer fh.Close()
	// Sparse file: leave all-zero blocks as holes (the file was truncated to its size).
	for i := 0; i < len(data); {
		n := min(len(zeroBlock), len(data)-i)
		if n == len(zeroBlock) && bytes.Equal(data[i:i+n], zeroBlock[:]) {
			i += n
			continue
		}
		if _, err := fh.WriteAt(data[i:i+n], off+int64(i)); err != nil {
			return fmt.Errorf("%s: %w", f.rel, err)
		}
		i += n
	}
	return nil
}

// parentFD opens the directory holding rel inside the root, for the *at system calls
// os.Root does not offer (they then cannot escape the root either).
func (rs *restorer) parentFD(rel string) (*os.File, string, func(), error) {
	if rel == "" {
		// the target itself (StripPath): "." relative to it
		d, release, err := rs.dirs.get("")
		if err != nil {
			return nil, "", nil, err
		}
		return d, ".", release, nil
	}
	dir, name := path.Split(rel)
	d, release, err := rs.dirs.get(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return nil, "", nil, err
	}
	return d, name, release, nil
}

func (rs *restorer) reportProgress(ctx context.Context, start time.Time) (stop func()) {
	return every(ctx, rs.opts.Interval, func() {
		rs.opts.Progress.Report(Status{FilesDone: rs.filesDone.Load(), FilesTotal: int64(len(rs.files)),
			BytesDone: rs.bytesDone.Load(), BytesTotal: rs.bytesTotal, Elapsed: rs.opts.Now().Sub(start), ScanDone: true})
	})
}
