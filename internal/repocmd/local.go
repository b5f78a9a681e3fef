package repocmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/version"
)

// RepoFlags locate and unlock a repository.
type RepoFlags struct {
	URL          string
	PasswordFile string // empty: STASH_PASSWORD
	// Password, when set, is the password itself (the plugin has it from the Secret).
	Password []byte
	// CacheDir keeps index files and tree packs locally (empty: no cache), within
	// CacheSize bytes (0: the engine's default). NoCache overrides both.
	CacheDir  string
	CacheSize int64
	NoCache   bool
}

func (f RepoFlags) open(ctx context.Context) (*store.Store, []byte, error) {
	if f.URL == "" {
		return nil, nil, fmt.Errorf("no repository: give --repo URL (file:///dir, s3://bucket/prefix, gs://…, azblob://…)")
	}
	pw := f.Password
	if pw == nil {
		var err error
		if pw, err = repo.ReadPassword(f.PasswordFile); err != nil {
			return nil, nil, err
		}
	}
	st, err := store.Open(ctx, f.URL, store.Options{})
	if err != nil {
		return nil, nil, err
	}
	return st, pw, nil
}

// OpenRepository opens the repository and loads its index.
func OpenRepository(ctx context.Context, f RepoFlags) (*repo.Repository, func(), error) {
	st, pw, err := f.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	r, err := repo.Open(ctx, st, pw, f.repoOptions())
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	if err := r.LoadIndex(ctx); err != nil {
		st.Close()
		return nil, nil, err
	}
	return r, func() { st.Close() }, nil
}

// InitFlags choose a new repository's parameters; empty means the engine's default.
type InitFlags struct {
	Compression string // zstd, s2 or none
	Hash        string // blake3 or sha256 (format 1, for programs before format 2)
}

// InitRepository creates a repository.
func InitRepository(ctx context.Context, f RepoFlags, flags InitFlags, out io.Writer) error {
	st, pw, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Check(ctx); err != nil {
		return err
	}
	r, err := repo.Init(ctx, st, pw, repo.InitOptions{Compression: flags.Compression, Hash: flags.Hash}, repo.Options{})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "created repository %s at %s (compression %s, hash %s)\n", r.Config().ID[:8], r.URL(), r.Config().Compression, r.Hashing().Name())
	return nil
}

// BackupFlags are the options of a local backup.
type BackupFlags struct {
	Host               string
	Tags               []string
	Excludes           []string
	Parent             string
	NoParent           bool
	TolerateReadErrors bool
	JSON               bool
}

// Backup backs up paths and prints the snapshot's stats.
func Backup(ctx context.Context, f RepoFlags, bf BackupFlags, paths []string, out, errOut io.Writer) error {
	r, closeFn, err := OpenRepository(ctx, f)
	if err != nil {
		return err
	}
	defer closeFn()
	opts := snapshot.BackupOptions{Host: bf.Host, Tags: bf.Tags, Excludes: bf.Excludes, NoParent: bf.NoParent,
		TolerateReadErrors: bf.TolerateReadErrors, Program: "stash-job " + version.Version(),
		Progress: newTextProgress(errOut, "backup")}
	if bf.Parent != "" {
		p, err := r.FindSnapshot(ctx, bf.Parent, repo.Filter{})
		if err != nil {
			return err
		}
		opts.Parent = p
	}
	sn, err := snapshot.Backup(ctx, r, paths, opts)
	if err != nil {
		return err
	}
	if bf.JSON {
		return writeJSON(out, snapshotJSON(sn))
	}
	s := sn.Stats
	fmt.Fprintf(out, "snapshot %s saved (host %s, %s)\n", sn.ID.Short(), sn.Host, strings.Join(sn.Paths, ", "))
	fmt.Fprintf(out, "files: %d new, %d modified, %d unmodified (%d total)\n", s.NewFiles, s.ModifiedFiles, s.UnmodifiedFiles, s.TotalFiles)
	fmt.Fprintf(out, "size: %s, uploaded: %s, processing time: %s\n", humanBytes(s.Size), humanBytes(s.Uploaded), s.ProcessingTime)
	if s.Errors > 0 || s.Skipped > 0 {
		fmt.Fprintf(out, "unreadable files: %d, skipped (sockets): %d\n", s.Errors, s.Skipped)
	}
	PrintCacheStats(out, f, r)
	return nil
}

// RestoreFlags are the options of a local restore.
type RestoreFlags struct {
	Host      string
	Path      string
	Target    string
	Overwrite string
	// Includes and Excludes are glob patterns (snapshot.RestoreOptions).
	Includes []string
	Excludes []string
	Delete   bool
	DryRun   bool
}

// Restore restores a snapshot ("latest" or an id prefix) into a directory.
func Restore(ctx context.Context, f RepoFlags, rf RestoreFlags, ref string, out, errOut io.Writer) error {
	mode, err := snapshot.ParseOverwrite(rf.Overwrite)
	if err != nil {
		return err
	}
	if rf.Target == "" {
		return fmt.Errorf("no restore target: give --target DIR")
	}
	if err := snapshot.CheckPatterns("--include", rf.Includes); err != nil {
		return err
	}
	if err := snapshot.CheckPatterns("--exclude", rf.Excludes); err != nil {
		return err
	}
	// A damaged index file need not stop a restore: the files whose data only it listed
	// fail, naming their paths, and the others restore.
	r, damaged, closeFn, err := OpenRepositorySkipDamagedIndex(ctx, f)
	if err != nil {
		return err
	}
	defer closeFn()
	for _, d := range damaged {
		fmt.Fprintf(errOut, "warning: %v; left out of the index: files whose data only it listed cannot be restored (see check)\n", d)
	}
	sn, err := r.FindSnapshot(ctx, ref, repo.Filter{Host: rf.Host, Path: rf.Path})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	report := func(string, string) {}
	if rf.DryRun {
		report = func(action, p string) {
			mu.Lock()
			fmt.Fprintf(out, "%-9s %s\n", action, p)
			mu.Unlock()
		}
	}
	start := time.Now()
	stats, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: rf.Target, Path: rf.Path,
		Includes: rf.Includes, Excludes: rf.Excludes, Overwrite: mode, Delete: rf.Delete, DryRun: rf.DryRun, Report: report, Progress: newTextProgress(errOut, "restore")})
	if err != nil {
		return err
	}
	verb := "restored"
	if rf.DryRun {
		verb = "would restore"
	}
	fmt.Fprintf(out, "%s snapshot %s to %s: %d files (%s), %d dirs, %d links, %d special; %d identical skipped, %d kept, %d deleted in %s\n",
		verb, sn.ID.Short(), rf.Target, stats.Files, humanBytes(stats.Bytes), stats.Dirs, stats.Links, stats.Special,
		stats.Skipped, stats.Kept, stats.Deleted, time.Since(start).Round(time.Millisecond))
	return nil
}

// snapshotOut is a snapshot as the listings print it.
type snapshotOut = repo.Listing

func snapshotJSON(sn *repo.Snapshot) snapshotOut { return sn.Listing() }

// Snapshots lists snapshots, optionally of one host.
func Snapshots(ctx context.Context, f RepoFlags, host string, asJSON bool, out io.Writer) error {
	// Listing reads snapshot objects only: no index, so a damaged index file, which
	// check reports, does not hide which snapshots there are.
	st, pw, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := repo.Open(ctx, st, pw, f.repoOptions())
	if err != nil {
		return err
	}
	all, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	filter := repo.Filter{Host: host}
	list := []snapshotOut{}
	for _, sn := range all {
		if filter.Match(sn) {
			list = append(list, snapshotJSON(sn))
		}
	}
	if asJSON {
		return writeJSON(out, list)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tHOST\tPATHS\tFILES\tSIZE\tUPLOADED")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.ShortID, s.Time.Local().Format("2006-01-02 15:04:05"), s.Host,
			strings.Join(s.Paths, ","), s.Stats.TotalFiles, humanBytes(s.Stats.Size), humanBytes(s.Stats.Uploaded))
	}
	return tw.Flush()
}

// Ls lists the files of a snapshot, below dir if given.
func Ls(ctx context.Context, f RepoFlags, host, ref, dir string, long bool, out io.Writer) error {
	r, closeFn, err := OpenRepository(ctx, f)
	if err != nil {
		return err
	}
	defer closeFn()
	sn, err := r.FindSnapshot(ctx, ref, repo.Filter{Host: host})
	if err != nil {
		return err
	}
	prefix := path.Clean("/" + dir)
	return snapshot.Walk(ctx, r, sn.Tree, func(p string, n *snapshot.Node) error {
		if prefix != "/" && p != prefix && !strings.HasPrefix(p, prefix+"/") {
			return nil
		}
		if !long {
			_, err := fmt.Fprintln(out, p)
			return err
		}
		_, err := fmt.Fprintf(out, "%s %5d %5d %12d %s %s\n", n.Mode, n.UID, n.GID, n.Size, n.ModTime.Local().Format("2006-01-02 15:04:05"), p)
		return err
	})
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// textProgress prints a status line to a terminal; to anything else it prints nothing
// but the final stats (which the caller prints).
type textProgress struct {
	w    io.Writer
	verb string
	tty  bool
	mu   sync.Mutex
}

func newTextProgress(w io.Writer, verb string) snapshot.Progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &textProgress{w: w, verb: verb, tty: tty}
}

func (p *textProgress) Report(s snapshot.Status) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	eta := ""
	if d := s.ETA(); d > 0 {
		eta = ", ETA " + d.Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r\033[K%s: %d/%d files, %s/%s, %s/s%s", p.verb, s.FilesDone, s.FilesTotal,
		humanBytes(s.BytesDone), humanBytes(s.BytesTotal), humanBytes(int64(s.Rate())), eta)
}

func (p *textProgress) Done(snapshot.Status) {
	if p.tty {
		p.mu.Lock()
		fmt.Fprint(p.w, "\r\033[K")
		p.mu.Unlock()
	}
}
