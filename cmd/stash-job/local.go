package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
	"io"
	"os"
	"strconv"
	"strings"
)

// parseInterspersed parses flags anywhere among the arguments (`restore latest --target D`
// as well as `restore --target D latest`), returning the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, checkEnvDefaults(fs)
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), checkEnvDefaults(fs)
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// repoLocationFlags are where a repository is and its password.
func repoLocationFlags(fs *flag.FlagSet) *repocmd.RepoFlags {
	f := &repocmd.RepoFlags{}
	fs.StringVar(&f.URL, "repo", "", "repository URL: file:///dir, s3://bucket/prefix?…, gs://bucket/prefix, azblob://container/prefix, mem://")
	fs.StringVar(&f.PasswordFile, "password-file", "", "file holding the repository password (default: $STASH_PASSWORD)")
	return f
}

// repoFlags are repoLocationFlags and the local cache of a command that reads the
// repository. The cache's defaults come from the environment a host pod has.
func repoFlags(fs *flag.FlagSet) *repocmd.RepoFlags {
	f := repoLocationFlags(fs)
	dir, size, envErr := repocmd.CacheOptionsFromEnv(os.Getenv)
	fs.StringVar(&f.CacheDir, "cache-dir", dir, "keep index files and tree packs in this directory, so reading a remote repository again downloads less (default: $"+repocmd.EnvCacheDir+", else no cache)")
	f.CacheSize = size
	fs.Var(&sizeValue{n: &f.CacheSize, envErr: envErr}, "cache-size", "the most the cache directory may hold: a `size` in bytes, or with a suffix such as 512Mi or 2Gi (default: $"+repocmd.EnvCacheSize+", else 256Mi)")
	fs.BoolVar(&f.NoCache, "no-cache", false, "use no cache, whatever --cache-dir or $"+repocmd.EnvCacheDir+" say")
	return f
}

// sizeValue is a flag holding a byte count (repocmd.ParseSize).
type sizeValue struct {
	n *int64
	// envErr is a bad default from the environment: an error unless the flag is given.
	envErr error
}

func (s *sizeValue) String() string {
	if s.n == nil || *s.n == 0 {
		return ""
	}
	return strconv.FormatInt(*s.n, 10)
}

func (s *sizeValue) Set(v string) error {
	n, err := repocmd.ParseSize(v)
	if err != nil {
		return err
	}
	*s.n, s.envErr = n, nil
	return nil
}

// checkEnvDefaults fails on a bad default a flag took from the environment and no
// command-line value replaced (--no-cache makes the cache's moot).
func checkEnvDefaults(fs *flag.FlagSet) error {
	if nc := fs.Lookup("no-cache"); nc != nil && nc.Value.String() == "true" {
		return nil
	}
	if fl := fs.Lookup("cache-size"); fl != nil {
		if sv, ok := fl.Value.(*sizeValue); ok && sv.envErr != nil {
			return usageError{sv.envErr.Error() + " (or give --cache-size)"}
		}
	}
	return nil
}

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("init", stderr)
	rf := repoLocationFlags(fs)
	compression := fs.String("compression", "", "compression codec: zstd, s2 or none (default: the engine's default)")
	hash := fs.String("hash", "", "hash of blob ids and object names: blake3 (default), or sha256 for a format 1 repository that older programs read")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("init takes no arguments, got %q", pos)
	}
	return repocmd.InitRepository(ctx, *rf, repocmd.InitFlags{Compression: *compression, Hash: *hash}, stdout)
}

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", stderr)
	rf := repoFlags(fs)
	var bf repocmd.BackupFlags
	var tags, excludes stringList
	fs.StringVar(&bf.Host, "host", "", "host name recorded in the snapshot (default: this machine's)")
	fs.Var(&tags, "tag", "tag the snapshot (repeatable)")
	fs.Var(&excludes, "exclude", "skip paths matching this glob; with a '/' it matches the full path, else the name (repeatable)")
	fs.StringVar(&bf.Parent, "parent", "", "snapshot whose unchanged files are not read again (default: the latest of this host and paths)")
	fs.BoolVar(&bf.NoParent, "no-parent", false, "read every file")
	fs.BoolVar(&bf.TolerateReadErrors, "tolerate-read-errors", false, "save the snapshot even if some files cannot be read (they are counted)")
	asJSON := fs.Bool("json", false, "print the snapshot as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("backup needs at least one PATH")
	}
	bf.Tags, bf.Excludes, bf.JSON = tags, excludes, *asJSON
	return repocmd.Backup(ctx, *rf, bf, pos, stdout, stderr)
}

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", stderr)
	rf := repoFlags(fs)
	var o repocmd.RestoreFlags
	var includes, excludes stringList
	fs.StringVar(&o.Host, "host", "", "with latest: the latest snapshot of this host")
	fs.StringVar(&o.Path, "path", "", "restore only this path of the snapshot (and what is below it)")
	fs.StringVar(&o.Target, "target", "", "directory to restore into (required); the snapshot's paths are recreated below it")
	fs.StringVar(&o.Overwrite, "overwrite", "always", "existing files that differ: never, if-newer or always")
	fs.Var(&includes, "include", "restore only paths matching this glob, and what is below them; with a '/' it matches the full path in the snapshot, else the name (repeatable)")
	fs.Var(&excludes, "exclude", "do not restore paths matching this glob, nor what is below them; with a '/' it matches the full path in the snapshot, else the name (repeatable)")
	fs.BoolVar(&o.Delete, "delete", false, "delete files in the restored directories that are not in the snapshot (never those --include/--exclude leave out)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "list what would change, change nothing")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("restore needs one SNAPSHOT (an id, or latest)")
	}
	o.Includes, o.Excludes = includes, excludes
	return repocmd.Restore(ctx, *rf, o, pos[0], stdout, stderr)
}

func runSnapshots(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("snapshots", stderr)
	rf := repoFlags(fs)
	host := fs.String("host", "", "only snapshots of this host")
	output := fs.String("o", "", "output format: json, or empty for a table")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("snapshots takes no arguments, got %q", pos)
	}
	if *output != "" && *output != "json" {
		return usagef("-o %q: want json or nothing", *output)
	}
	return repocmd.Snapshots(ctx, *rf, *host, *output == "json", stdout)
}

func runLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ls", stderr)
	rf := repoFlags(fs)
	host := fs.String("host", "", "with latest: the latest snapshot of this host")
	long := fs.Bool("l", false, "long listing: mode, owner, size, modification time")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usagef("ls needs a SNAPSHOT (an id, or latest) and optionally a DIR")
	}
	dir := ""
	if len(pos) == 2 {
		dir = pos[1]
	}
	return repocmd.Ls(ctx, *rf, *host, pos[0], dir, *long, stdout)
}
