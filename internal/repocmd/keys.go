package repocmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
)

// EnvNewPassword holds the new password of key add and key passwd when no
// --new-password-file is given.
const EnvNewPassword = "STASH_NEW_PASSWORD"

// openForKeys opens the repository without its index (key and lock commands read no
// blobs) and returns the password it was opened with.
func openForKeys(ctx context.Context, f RepoFlags) (*repo.Repository, []byte, func(), error) {
	st, pw, err := f.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := repo.Open(ctx, st, pw, repo.Options{})
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return r, pw, func() { st.Close() }, nil
}

// ReadNewPassword reads the new password of key add / key passwd from file or, with file
// empty, from STASH_NEW_PASSWORD.
func ReadNewPassword(file string) ([]byte, error) {
	if file != "" {
		return repo.ReadPassword(file)
	}
	if p := os.Getenv(EnvNewPassword); p != "" {
		return []byte(p), nil
	}
	return nil, errors.New("no new password: give --new-password-file FILE or set " + EnvNewPassword)
}

// KeyList prints the key files, marking the one the password opens.
func KeyList(ctx context.Context, f RepoFlags, asJSON bool, out io.Writer) error {
	r, pw, closeFn, err := openForKeys(ctx, f)
	if err != nil {
		return err
	}
	defer closeFn()
	keys, err := r.Keys(ctx, pw)
	if err != nil {
		return err
	}
	if asJSON {
		if keys == nil {
			keys = []repo.KeyInfo{}
		}
		return writeJSON(out, keys)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, " \tID\tCREATED (UTC)\tHOST\tUSER")
	for _, k := range keys {
		mark := " "
		if k.Current {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mark, k.ID[:min(8, len(k.ID))], k.Created.UTC().Format("2006-01-02 15:04:05"), dash(k.Host), dash(k.Username))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, "* the key the given password opens")
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// KeyAdd adds a key file for newPassword, with the key derivation cost of the key in use.
func KeyAdd(ctx context.Context, f RepoFlags, newPassword []byte, out io.Writer) error {
	r, pw, closeFn, err := openForKeys(ctx, f)
	if err != nil {
		return err
	}
	defer closeFn()
	cur, err := r.CurrentKey(ctx, pw)
	if err != nil {
		return err
	}
	id, err := r.AddPassword(ctx, newPassword, cur.KDF)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "added key %s\n", id[:8])
	return err
}

// KeyRemove removes the key whose id starts with ref; never the last one, nor the one the
// password opens.
func KeyRemove(ctx context.Context, f RepoFlags, ref string, out io.Writer) error {
	r, pw, closeFn, err := openForKeys(ctx, f)
	if err != nil {
		return err
	}
	defer closeFn()
	keys, err := r.Keys(ctx, pw)
	if err != nil {
		return err
	}
	var match []repo.KeyInfo
	cur := ""
	for _, k := range keys {
		if strings.HasPrefix(k.ID, ref) {
			match = append(match, k)
		}
		if k.Current {
			cur = k.ID
		}
	}
	switch len(match) {
	case 0:
		return fmt.Errorf("key %s: %w", ref, repo.ErrKeyNotFound)
	case 1:
	default:
		return fmt.Errorf("key %s: the prefix matches %d keys: give more of the id", ref, len(match))
	}
	if err := r.RemoveKey(ctx, match[0].ID, cur); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "removed key %s\n", match[0].ID[:8])
	return err
}

// KeyPasswd replaces the key the password opens by one for newPassword.
func KeyPasswd(ctx context.Context, f RepoFlags, newPassword []byte, out io.Writer) error {
	r, pw, closeFn, err := openForKeys(ctx, f)
	if err != nil {
		return err
	}
	defer closeFn()
	id, err := r.ChangePassword(ctx, pw, newPassword)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "password changed: key %s replaces the old one\n", id[:8])
	return err
}

type lockOut struct {
	Kind      string    `json:"kind"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Created   time.Time `json:"created"`
	Refreshed time.Time `json:"refreshed"`
	Stale     bool      `json:"stale"`
	Object    string    `json:"object"`
}

func lockJSON(l repo.LockInfo, now time.Time) lockOut {
	kind := "shared"
	if l.Exclusive {
		kind = "exclusive"
	}
	return lockOut{Kind: kind, Host: l.Host, PID: l.PID, Created: l.Time, Refreshed: l.Refreshed, Stale: l.Stale(now), Object: l.Key}
}

// LockList prints the repository's locks.
func LockList(ctx context.Context, f RepoFlags, now time.Time, asJSON bool, out io.Writer) error {
	r, _, closeFn, err := openForKeys(ctx, f)
	if err != nil {
		return err
	}
	defer closeFn()
	locks, err := r.Locks(ctx)
	if err != nil {
		return err
	}
	list := make([]lockOut, 0, len(locks))
	for _, l := range locks {
		list = append(list, lockJSON(l, now))
	}
	if asJSON {
		return writeJSON(out, list)
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(out, "no locks")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tHOST\tPID\tCREATED (UTC)\tREFRESHED (UTC)\tSTALE")
	for _, l := range list {
		stale := "no"
		if l.Stale {
			stale = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", l.Kind, l.Host, l.PID, l.Created.UTC().Format("2006-01-02 15:04:05"),
			l.Refreshed.UTC().Format("2006-01-02 15:04:05"), stale)
	}
	return tw.Flush()
}

// Unlock removes the stale locks, or with force all of them after a warning on errOut.
func Unlock(ctx context.Context, f RepoFlags, now time.Time, force bool, out, errOut io.Writer) error {
	r, _, closeFn, err := openForKeys(ctx, f)
	if err != nil {
		return err
	}
	defer closeFn()
	if force {
		fmt.Fprintln(errOut, "warning: --force removes every lock, also those of operations still running: a prune may then delete data a running backup needs")
	}
	removed, err := r.RemoveLocks(ctx, now, force)
	for _, l := range removed {
		lo := lockJSON(l, now)
		fmt.Fprintf(out, "removed %s lock of %s (pid %d), refreshed %s\n", lo.Kind, lo.Host, lo.PID, lo.Refreshed.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "removed %d lock(s)\n", len(removed))
	return err
}
