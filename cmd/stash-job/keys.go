package main

import (
	"context"
	"fmt"
	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
	"io"
	"time"
)

// runKey dispatches `key list|add|remove|passwd`. The subcommands share the "key" help
// and examples: they are four small verbs on one kind of object.
func runKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("key", stderr)
	sub := ""
	if len(args) > 0 {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "list", "add", "remove", "passwd":
	default:
		// `key -h` prints the help; anything else is a usage error
		if err := fs.Parse(append([]string{sub}, args...)); err != nil {
			return err
		}
		return usagef("key: want a subcommand: list, add, remove ID or passwd")
	}
	rf := repoLocationFlags(fs)
	newPwFile := ""
	if sub == "add" || sub == "passwd" {
		fs.StringVar(&newPwFile, "new-password-file", "", "file holding the new password (default: $"+repocmd.EnvNewPassword+")")
	}
	output := ""
	if sub == "list" {
		fs.StringVar(&output, "o", "", "output format: json, or empty for a table")
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if output != "" && output != "json" {
		return usagef("-o %q: want json or nothing", output)
	}
	if sub == "remove" {
		if len(pos) != 1 {
			return usagef("key remove takes one key ID (or a unique prefix of one), got %q", pos)
		}
		return repocmd.KeyRemove(ctx, *rf, pos[0], stdout)
	}
	if len(pos) != 0 {
		return usagef("key %s takes no arguments, got %q", sub, pos)
	}
	switch sub {
	case "list":
		return repocmd.KeyList(ctx, *rf, output == "json", stdout)
	case "add", "passwd":
		pw, err := repocmd.ReadNewPassword(newPwFile)
		if err != nil {
			return err
		}
		if sub == "add" {
			return repocmd.KeyAdd(ctx, *rf, pw, stdout)
		}
		return repocmd.KeyPasswd(ctx, *rf, pw, stdout)
	default:
		return fmt.Errorf("key %s: not handled", sub)
	}
}

// runLock is `lock list`, named like key list so that `unlock` reads as its counterpart.
func runLock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("lock", stderr)
	if len(args) == 0 || args[0] != "list" {
		if err := fs.Parse(args); err != nil {
			return err
		}
		return usagef("lock: want the subcommand list")
	}
	rf := repoLocationFlags(fs)
	output := fs.String("o", "", "output format: json, or empty for a table")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("lock list takes no arguments, got %q", pos)
	}
	if *output != "" && *output != "json" {
		return usagef("-o %q: want json or nothing", *output)
	}
	return repocmd.LockList(ctx, *rf, time.Now(), *output == "json", stdout)
}

func runUnlock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("unlock", stderr)
	rf := repoLocationFlags(fs)
	force := fs.Bool("force", false, "remove every lock, not only stale ones (only when their holders are known to be gone)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unlock takes no arguments, got %q", pos)
	}
	return repocmd.Unlock(ctx, *rf, time.Now(), *force, stdout, stderr)
}
