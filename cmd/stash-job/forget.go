package main

import (
	"context"
	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
	"io"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
)

func runForget(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("forget", stderr)
	rf := repoFlags(fs)
	var p repo.RetentionPolicy
	host := fs.String("host", "", "only snapshots of this host")
	path := fs.String("path", "", "only snapshots that include this path")
	fs.IntVar(&p.Last, "keep-last", 0, "keep the N newest snapshots (-1: all)")
	fs.IntVar(&p.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the N newest hours that have one (-1: every hour)")
	fs.IntVar(&p.Daily, "keep-daily", 0, "keep the newest snapshot of each of the N newest days that have one (-1: every day)")
	fs.IntVar(&p.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the N newest ISO weeks that have one (-1: every week)")
	fs.IntVar(&p.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the N newest months that have one (-1: every month)")
	fs.IntVar(&p.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the N newest years that have one (-1: every year)")
	var keepTags stringList
	fs.Var(&keepTags, "keep-tag", "keep snapshots that have all these tags (comma-separated; repeatable: any of the lists)")
	dryRun := fs.Bool("dry-run", false, "list what would be removed, remove nothing")
	output := fs.String("o", "", "output format: json, or empty for a table")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("forget takes no arguments, got %q", pos)
	}
	if *output != "" && *output != "json" {
		return usagef("-o %q: want json or nothing", *output)
	}
	p.Tags = repocmd.TagLists(keepTags)
	return repocmd.Forget(ctx, *rf, *host, *path, p, *dryRun, *output == "json", stdout)
}
