package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

// DownloadOptions are the options of `kubectl stash download`.
type DownloadOptions struct {
	Global *GlobalOptions

	// Snapshot is the argument: a snapshot id (or a unique prefix), or latest.
	Snapshot  string
	Repo      string
	Host      string
	Path      string
	To        string
	Includes  []string
	Excludes  []string
	Overwrite string
	Delete    bool
	DryRun    bool

	newClient clientsetFunc
	// terminal reports whether a stream is a terminal (tests: always or never).
	terminal func(any) bool
	// newProgress draws the progress on a terminal (tests: a recorder).
	newProgress func(io.Writer) snapshot.Progress
	// progressInterval is how often the progress line is redrawn.
	progressInterval time.Duration

	overwrite snapshot.Overwrite
	namespace string
	client    kubernetes.Interface
	genericiooptions.IOStreams
}

// NewDownloadOptions returns options with defaults.
func NewDownloadOptions(g *GlobalOptions, streams genericiooptions.IOStreams) *DownloadOptions {
	return &DownloadOptions{Global: g, Overwrite: string(snapshot.OverwriteAlways), newClient: clientsetFromFlags(g),
		terminal: isTerminal, newProgress: newProgressLine, progressInterval: 250 * time.Millisecond, IOStreams: streams}
}

// NewCmdDownload returns `kubectl stash download`.
func NewCmdDownload(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdDownload(NewDownloadOptions(g, streams))
}

func newCmdDownload(o *DownloadOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "download SNAPSHOT|latest --repo NAME --to DIR [--host HOST] [--path PATH] [--include GLOB]... [--exclude GLOB]... [--overwrite never|if-newer|always] [--delete] [--dry-run]",
		Short: "Restore a snapshot to a directory of this machine",
		Long: `Restore a snapshot of the repository of Secret --repo into the directory --to of this
machine. The repository is read from here with the Secret's credentials, as kubectl stash
snapshots does: no pod runs, nothing is written in the cluster. A repository on a
PersistentVolumeClaim (pvc://) can be read only by pods, so it cannot be downloaded.

The snapshot's absolute paths are recreated below --to: /source/data/a.txt of the
snapshot becomes DIR/source/data/a.txt. --path restores one path of the snapshot, again
below --to at its full path. latest is the newest snapshot of --host (with --path, the
newest that includes the path); without --host it works only when one host has snapshots.

--include and --exclude take glob patterns: one holding a '/' matches the full path in
the snapshot (/source/data/logs/*.log), any other the name of a file or directory
(*.log, cache). What an exclude matches is left out with everything below it. With
--include, only what matches, or is below a directory that matches, is restored.
--delete removes what the snapshot lacks from the restored directories, but never what
--include or --exclude leave out.

Modes, owners (when run as root), times, symbolic links, hard links, sparse files and
special files are restored. Files already there with the same size and modification
time are skipped, so an interrupted download resumes.`,
		Example: `  # The latest snapshot of host-0, below ./restore (./restore/source/data/...)
  kubectl stash download latest --repo shop-backups --host host-0 --to ./restore

  # One directory of a given snapshot
  kubectl stash download 1a2b3c4d --repo shop-backups --path /source/data/uploads --to ./restore

  # Only the logs, keeping files changed here since
  kubectl stash download latest --repo shop-backups --host host-0 --to ./restore \
    --include '*.log' --exclude /source/data/logs/old --overwrite if-newer

  # What would change to make ./restore match the snapshot, without changing it
  kubectl stash download latest --repo shop-backups --host host-0 --to ./restore --delete --dry-run`,
		Args: exactArgsNamed("SNAPSHOT|latest"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Repo, "repo", "", "name of the repository Secret (required)")
	f.StringVar(&o.Host, "host", "", "with latest: the host whose latest snapshot to restore (host-0, a StatefulSet's host-N, a node name)")
	f.StringVar(&o.Path, "path", "", "restore only this path of the snapshot, recreated below --to at its full path")
	f.StringVar(&o.To, "to", "", "directory to restore into (required; created if missing)")
	f.StringArrayVar(&o.Includes, "include", nil, "restore only paths matching this glob, and what is below them (repeatable)")
	f.StringArrayVar(&o.Excludes, "exclude", nil, "leave out paths matching this glob, and what is below them (repeatable)")
	f.StringVar(&o.Overwrite, "overwrite", o.Overwrite, "existing files that differ: never, if-newer or always")
	f.BoolVar(&o.Delete, "delete", false, "delete files in the restored directories that are not in the snapshot")
	f.BoolVar(&o.DryRun, "dry-run", false, "list what would be done, change nothing")
	_ = cmd.RegisterFlagCompletionFunc("repo", o.Global.complete(completeRepositories))
	_ = cmd.RegisterFlagCompletionFunc("overwrite", cobra.FixedCompletions([]string{"never", "if-newer", "always"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagDirname("to")
	return cmd
}

// Complete takes the snapshot argument and the namespace, and builds the client.
func (o *DownloadOptions) Complete(args []string) error {
	o.Snapshot = args[0]
	return completeClient(o.Global, o.newClient, &o.namespace, &o.client)
}

// Validate checks the arguments and flags.
func (o *DownloadOptions) Validate() error {
	if o.Snapshot == "" {
		return errors.New("give a snapshot id (kubectl stash snapshots --repo NAME lists them) or latest")
	}
	if o.Repo == "" {
		return errors.New("--repo is required: the name of the repository Secret (kubectl stash repo list shows them)")
	}
	if err := validateSecretName(o.Repo); err != nil {
		return fmt.Errorf("--repo: %w", err)
	}
	if o.To == "" {
		return errors.New("--to is required: the directory to restore into")
	}
	mode, err := snapshot.ParseOverwrite(o.Overwrite)
	if err != nil {
		return fmt.Errorf("--overwrite: %w", err)
	}
	o.overwrite = mode
	if err := snapshot.CheckPatterns("--include", o.Includes); err != nil {
		return err
	}
	return snapshot.CheckPatterns("--exclude", o.Excludes)
}

// Run reads the repository Secret and restores the snapshot from here.
func (o *DownloadOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	r, err := repository.Get(ctx, o.client, o.namespace, o.Repo)
	if err != nil {
		return err
	}
	if r.Claim != "" {
		return &hintError{err: repository.ErrInCluster, msg: fmt.Sprintf("repository %q (%s) is on PersistentVolumeClaim %q, which this machine cannot read: download reads the repository from here, so it works with s3://, gs://, azblob:// and file:// repositories; restore into the cluster with kubectl stash restore instead",
			r.Name, r.URL, r.Claim)}
	}
	req := repository.DownloadRequest{Snapshot: o.Snapshot, Host: o.Host, Path: o.Path, To: o.To,
		Includes: o.Includes, Excludes: o.Excludes, Overwrite: o.overwrite, Delete: o.Delete, DryRun: o.DryRun,
		ProgressInterval: o.progressInterval}
	var mu sync.Mutex
	if o.DryRun {
		req.Report = func(action, p string) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(o.Out, "%-9s %s\n", action, displayPath(o.To, p))
		}
	} else if o.terminal(o.ErrOut) {
		req.Progress = o.newProgress(o.ErrOut)
	}
	res, err := r.Download(ctx, req)
	if err != nil {
		return err
	}
	verb := "restored"
	if o.DryRun {
		verb = "would restore"
	}
	s, sn := res.Stats, res.Snapshot
	fmt.Fprintf(o.Out, "%s snapshot %s (%s %s) to %s: %d files, %d dirs, %s; skipped %d, kept %d, deleted %d\n",
		verb, sn.ShortID, sn.Host, strings.Join(sn.Paths, ","), o.To, s.Files+s.Links+s.Special, s.Dirs,
		api.FormatBytes(s.Bytes), s.Skipped, s.Kept, s.Deleted)
	return nil
}

// hintError is a message of its own around a sentinel error (errors.Is finds it).
type hintError struct {
	msg string
	err error
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Unwrap() error { return e.err }

// displayPath is where an action's path (relative to the target, "/" ending a directory)
// is on this machine.
func displayPath(to, rel string) string {
	p := filepath.Join(to, filepath.FromSlash(rel))
	if strings.HasSuffix(rel, "/") {
		p += string(filepath.Separator)
	}
	return p
}

// progressLine draws the restore's progress on one terminal line, redrawn in place:
// a bar, bytes done and total, files, rate and time left. It is safe for concurrent use.
type progressLine struct {
	mu    sync.Mutex
	w     io.Writer
	drawn bool
}

func newProgressLine(w io.Writer) snapshot.Progress { return &progressLine{w: w} }

const progressBarWidth = 20

// Report redraws the line.
func (p *progressLine) Report(s snapshot.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r"+formatProgress(s)+"\033[K")
	p.drawn = true
}

// Done clears the line: the summary follows on stdout.
func (p *progressLine) Done(snapshot.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// formatProgress is one progress line, without control characters.
func formatProgress(s snapshot.Status) string {
	frac := 1.0
	if s.BytesTotal > 0 {
		frac = min(1, float64(s.BytesDone)/float64(s.BytesTotal))
	}
	full := int(frac * progressBarWidth)
	bar := strings.Repeat("=", full) + strings.Repeat(" ", progressBarWidth-full)
	if full < progressBarWidth {
		bar = bar[:full] + ">" + bar[full+1:]
	}
	eta := "--"
	if d := s.ETA(); d > 0 {
		eta = d.Round(time.Second).String()
	} else if s.BytesDone >= s.BytesTotal {
		eta = "0s"
	}
	return fmt.Sprintf("[%s] %3.0f%%  %s / %s  %d/%d files  %s/s  ETA %s", bar, frac*100,
		api.FormatBytes(s.BytesDone), api.FormatBytes(s.BytesTotal), s.FilesDone, s.FilesTotal,
		api.FormatBytes(int64(s.Rate())), eta)
}
