package repocmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
)

// errEmptyPolicy is returned before the repository is opened: forget without a rule is
// almost always a forgotten flag, and restic's answer (keep everything) would hide it.
var errEmptyPolicy = errors.New("no --keep-* flag given: forget would remove nothing; give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly (-1 keeps all of that kind), --keep-tag")

type forgetKept struct {
	snapshotOut
	Reasons []string `json:"reasons"`
}

type forgetGroup struct {
	Host   string        `json:"host"`
	Paths  []string      `json:"paths"`
	Keep   []forgetKept  `json:"keep"`
	Remove []snapshotOut `json:"remove"`
}

type forgetOut struct {
	DryRun bool          `json:"dry_run"`
	Groups []forgetGroup `json:"groups"`
}

// Forget applies a retention policy to the snapshots of host and path (empty: all), per
// group of host and paths, and removes the snapshots it does not keep (with dryRun, only
// lists them). It prints each snapshot with its action and the rules that keep it.
// Only snapshots are removed: the data they alone referenced stays in the repository.
func Forget(ctx context.Context, f RepoFlags, host, path string, p repo.RetentionPolicy, dryRun, asJSON bool, out io.Writer) error {
	if p.Empty() {
		return errEmptyPolicy
	}
	r, closeFn, err := OpenRepository(ctx, f)
	if err != nil {
		return err
	}
	defer closeFn()
	kept, removed, err := r.Forget(ctx, repo.Filter{Host: host, Path: path}, p, dryRun)
	if err != nil {
		return err
	}
	res := forgetOut{DryRun: dryRun, Groups: forgetGroups(kept, removed, p)}
	if asJSON {
		return writeJSON(out, res)
	}
	if len(res.Groups) == 0 {
		_, err := fmt.Fprintln(out, "no snapshots match: nothing to forget")
		return err
	}
	// Times are UTC, as the policy's days and weeks are (repo.ApplyPolicy). The table
	// goes through a buffer to drop the padding that tabwriter leaves after a removed
	// snapshot's empty REASONS cell.
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME (UTC)\tHOST\tPATHS\tACTION\tREASONS")
	removeAction := "remove"
	if dryRun {
		removeAction = "would remove"
	}
	for _, g := range res.Groups {
		// Newest first within a group, kept and removed interleaved, so a removed
		// snapshot sits next to the kept one that made it redundant.
		var rows []forgetRow
		for _, k := range g.Keep {
			rows = append(rows, forgetRow{k.snapshotOut, "keep", k.Reasons})
		}
		for _, s := range g.Remove {
			rows = append(rows, forgetRow{s, removeAction, nil})
		}
		sort.SliceStable(rows, func(i, j int) bool { return newer(rows[i].s, rows[j].s) })
		for _, row := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.s.ShortID, row.s.Time.UTC().Format("2006-01-02 15:04:05"), row.s.Host,
				strings.Join(row.s.Paths, ","), row.action, strings.Join(row.why, ", "))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if _, err := fmt.Fprintln(out, strings.TrimRight(line, " ")); err != nil {
			return err
		}
	}
	verb := "removed"
	if dryRun {
		verb = "would remove"
	}
	_, err = fmt.Fprintf(out, "%s %d of %d snapshots (%s); their data stays in the repository until prune\n",
		verb, len(removed), len(kept)+len(removed), policyString(p))
	return err
}

// forgetGroups regroups Forget's result for display, and recomputes each kept
// snapshot's reasons: ApplyPolicy is pure, so the same group gives the same answer
// Forget acted on.
func forgetGroups(kept, removed []*repo.Snapshot, p repo.RetentionPolicy) []forgetGroup {
	groups := []forgetGroup{}
	for _, g := range repo.GroupSnapshots(append(append([]*repo.Snapshot(nil), kept...), removed...)) {
		k, rm, reasons := repo.ApplyPolicy(g, p)
		fg := forgetGroup{Host: g[0].Host, Paths: g[0].Paths, Keep: []forgetKept{}, Remove: []snapshotOut{}}
		for _, sn := range k {
			fg.Keep = append(fg.Keep, forgetKept{snapshotJSON(sn), reasons[sn]})
		}
		for _, sn := range rm {
			fg.Remove = append(fg.Remove, snapshotJSON(sn))
		}
		groups = append(groups, fg)
	}
	return groups
}

type forgetRow struct {
	s      snapshotOut
	action string
	why    []string
}

// newer orders rows as repo.ApplyPolicy does: by time, then id, both descending.
func newer(a, b snapshotOut) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	return a.ID > b.ID
}

// policyString describes p in the words of its flags.
func policyString(p repo.RetentionPolicy) string {
	var parts []string
	for _, r := range []struct {
		n    int
		flag string
	}{{p.Last, "last"}, {p.Hourly, "hourly"}, {p.Daily, "daily"}, {p.Weekly, "weekly"}, {p.Monthly, "monthly"}, {p.Yearly, "yearly"}} {
		switch {
		case r.n < 0:
			parts = append(parts, "keep-"+r.flag+" all")
		case r.n > 0:
			parts = append(parts, fmt.Sprintf("keep-%s %d", r.flag, r.n))
		}
	}
	for _, tags := range p.Tags {
		parts = append(parts, "keep-tag "+strings.Join(tags, ","))
	}
	return strings.Join(parts, ", ")
}

// TagLists splits "a,b" entries into tag lists, dropping empty ones.
func TagLists(entries []string) [][]string {
	var out [][]string
	for _, e := range entries {
		var list []string
		for _, t := range strings.Split(e, ",") {
			if t = strings.TrimSpace(t); t != "" {
				list = append(list, t)
			}
		}
		if len(list) > 0 {
			out = append(out, list)
		}
	}
	return out
}
