package jobimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
)

// stderrTail is how much of a dump or restore command's standard error its failure quotes.
const stderrTail = 4096

// backupDump runs the dump command in the database's pod and streams its standard output
// into the repository as the snapshot's one file: nothing is held on disk or in memory
// beyond a chunk. A command that exits with a code other than 0, or writes nothing, fails
// the host with the end of its standard error, and no snapshot is saved.
func (s *hostState) backupDump(ctx context.Context, r *repo.Repository, all []*repo.Snapshot, configTag string) error {
	spec := s.run.Spec
	d := *spec.Dump
	if spec.Pod == "" {
		return fmt.Errorf("%s has no running pod to dump from", spec.Target)
	}
	if s.run.Exec == nil {
		return errors.New("no exec client to run the dump with")
	}
	path := d.Path()
	parent := parentOf(all, spec.Hostname, path, configTag)
	fmt.Fprintf(s.run.Log, "host %s: dumping %s (pod %s, container %s) into %s\n", spec.Hostname, spec.Target, spec.Pod, d.Container, path)
	var sn *repo.Snapshot
	err := whenUnlocked(ctx, s.run.Log, "dump of "+spec.Target.String(), func() error {
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		pr, pw := io.Pipe()
		stderr := newTail(stderrTail)
		var wrote atomic.Int64
		done := make(chan error, 1)
		go func() {
			err := s.run.Exec.Exec(dctx, spec.Pod, d.Container, api.ShellHook(d.DumpCommand), nil, countWriter{pw, &wrote}, stderr)
			if err != nil {
				err = commandError("dump command", err, stderr)
			}
			pw.CloseWithError(err) // nil: the end of the dump
			done <- err
		}()
		var berr error
		sn, berr = snapshot.BackupStream(dctx, r, d.FileName, pr, s.backupOptions(ctx, parent, configTag, path))
		// the command cannot be left writing into a pipe nobody reads
		pr.CloseWithError(errors.New("the backup stopped reading the dump"))
		cancel()
		cmdErr := <-done
		switch {
		case errors.Is(berr, repo.ErrLocked):
			return berr // another operation holds the repository: wait, and dump again
		case cmdErr != nil && (berr == nil || errors.Is(berr, cmdErr)):
			return cmdErr // the command failed: its own words say why
		case berr != nil && wrote.Load() == 0:
			return fmt.Errorf("the dump command wrote nothing to its standard output%s", prefixed("; stderr: ", stderr.String()))
		}
		return berr
	})
	if err != nil {
		return fmt.Errorf("%s: %w", spec.Target, err)
	}
	return s.recordSnapshot(ctx, sn, path)
}

// commandError is a failed command with the end of its standard error.
func commandError(what string, err error, stderr *tailBuffer) error {
	var exit *ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("%s exited with code %d%s", what, exit.Code, prefixed(": ", stderr.String()))
	}
	return fmt.Errorf("%s: %w%s", what, err, prefixed("; stderr: ", stderr.String()))
}

type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// restoreDump streams the snapshot's dump file into the standard input of the restore
// command in the database's pod. The command's failure (a code other than 0) fails the
// host with the end of its standard error.
func restoreDump(ctx context.Context, h RestoreHostRun, s *hostState, r *repo.Repository, sn *repo.Snapshot, path string) (int64, error) {
	spec := h.Spec
	d := *spec.Dump
	if spec.Pod == "" {
		return 0, fmt.Errorf("%s has no running pod to restore the dump into", spec.Target)
	}
	if h.Exec == nil {
		return 0, errors.New("no exec client to run the restore command with")
	}
	fmt.Fprintf(h.Log, "host %s: restoring %s of snapshot %s into %s (pod %s, container %s)\n", spec.Hostname, path, sn.ID.Short(),
		spec.Target, spec.Pod, d.Container)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	var n int64
	fed := make(chan error, 1)
	go func() {
		var err error
		n, err = snapshot.DumpFile(rctx, r, sn, path, pw)
		pw.CloseWithError(err)
		fed <- err
	}()
	out := newTail(stderrTail)
	err := h.Exec.Exec(rctx, spec.Pod, d.Container, api.ShellHook(d.RestoreCommand), pr, out, out)
	pr.CloseWithError(errors.New("the restore command stopped reading"))
	cancel()
	feedErr := <-fed
	if err != nil {
		// the command's own words first: a command that stops reading breaks the feed
		return n, commandError("restore command", err, out)
	}
	if feedErr != nil {
		return n, fmt.Errorf("read %s from snapshot %s: %w", path, sn.ID.Short(), feedErr)
	}
	return n, nil
}
