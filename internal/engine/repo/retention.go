package repo

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crashpoint"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
)

// RetentionPolicy says which snapshots forget keeps, with the meaning of restic's
// `forget --keep-*` flags. Each field counts snapshots (Last) or buckets of time (the
// others); 0 turns a rule off and a negative value keeps every snapshot or bucket (restic's
// -1). A snapshot is kept when any rule keeps it.
type RetentionPolicy struct {
	Last    int // the N newest snapshots
	Hourly  int // the newest snapshot of each of the N newest hours that have one
	Daily   int // … days
	Weekly  int // … ISO 8601 weeks (Monday to Sunday; the week's year may differ from the date's)
	Monthly int // … calendar months
	Yearly  int // … calendar years
	// Tags keeps every snapshot that has all the tags of one of these lists (restic's
	// --keep-tag a,b --keep-tag c).
	Tags [][]string
}

// Empty reports whether no rule is set: such a policy keeps every snapshot.
func (p RetentionPolicy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 && p.Yearly == 0 && len(p.Tags) == 0
}

// hasTags reports whether sn carries every tag of want.
func hasTags(sn *Snapshot, want []string) bool {
	for _, w := range want {
		found := false
		for _, t := range sn.Tags {
			found = found || t == w
		}
		if !found {
			return false
		}
	}
	return len(want) > 0
}

// Reasons ApplyPolicy gives for keeping a snapshot, one per rule that kept it.
const (
	ReasonEmptyPolicy = "empty policy"
	ReasonLast        = "last"
	ReasonHourly      = "hourly"
	ReasonDaily       = "daily"
	ReasonWeekly      = "weekly"
	ReasonMonthly     = "monthly"
	ReasonYearly      = "yearly"
	ReasonTags        = "tags"
)

// Buckets are computed from the snapshot's time in UTC, where restic uses the local time
// zone of the machine running forget: the job image runs in pods whose zone is whatever
// the node or image says, and the same repository must give the same answer from any of
// them. Near midnight (or an hour boundary in half-hour zones) a snapshot may therefore
// fall into another day than its local time suggests.
func hourBucket(t time.Time) string  { return t.UTC().Format("2006-01-02 15") }
func dayBucket(t time.Time) string   { return t.UTC().Format("2006-01-02") }
func monthBucket(t time.Time) string { return t.UTC().Format("2006-01") }
func yearBucket(t time.Time) string  { return t.UTC().Format("2006") }
func weekBucket(t time.Time) string {
	y, w := t.UTC().ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

// ApplyPolicy splits snaps into those p keeps and those it removes, both newest first, with
// the rules that keep each kept snapshot in reasons. It is pure: it reads no clock and
// does not reorder snaps. The caller groups snapshots first (Forget groups by host and
// paths): a policy applied to a mixed list would let one host's snapshots push out
// another's.
//
// The semantics are those of restic's forget: snapshots are taken newest first; Last
// keeps the first N; each bucketed rule keeps a snapshot when its bucket differs from the
// bucket of the previous snapshot the rule kept, until the rule has kept N — so it keeps
// the newest snapshot of each of the N newest buckets that have snapshots, however far
// apart those buckets are. Snapshots with equal times are ordered by id, highest first,
// as FindSnapshot's "latest" picks them. Unlike recent restic (restic/restic#3624), a
// rule with buckets to spare does not also keep the oldest snapshot: --keep-daily 7 on
// three snapshots of one day keeps one of them, not two.
func ApplyPolicy(snaps []*Snapshot, p RetentionPolicy) (keep, remove []*Snapshot, reasons map[*Snapshot][]string) {
	list := make([]*Snapshot, len(snaps))
	copy(list, snaps)
	sort.SliceStable(list, func(i, j int) bool {
		if !list[i].Time.Equal(list[j].Time) {
			return list[i].Time.After(list[j].Time)
		}
		return list[i].ID.String() > list[j].ID.String()
	})
	reasons = make(map[*Snapshot][]string)
	if p.Empty() {
		for _, sn := range list {
			reasons[sn] = []string{ReasonEmptyPolicy}
		}
		return list, nil, reasons
	}

	type rule struct {
		left   int // buckets still to keep; negative: unlimited
		bucket func(time.Time) string
		last   string // bucket of the snapshot this rule kept last
		reason string
	}
	rules := []*rule{
		{left: p.Hourly, bucket: hourBucket, reason: ReasonHourly},
		{left: p.Daily, bucket: dayBucket, reason: ReasonDaily},
		{left: p.Weekly, bucket: weekBucket, reason: ReasonWeekly},
		{left: p.Monthly, bucket: monthBucket, reason: ReasonMonthly},
		{left: p.Yearly, bucket: yearBucket, reason: ReasonYearly},
	}
	for i, sn := range list {
		var why []string
		if p.Last < 0 || i < p.Last {
			why = append(why, ReasonLast)
		}
		for _, tags := range p.Tags {
			if hasTags(sn, tags) {
				why = append(why, ReasonTags)
				break
			}
		}
		for _, r := range rules {
			if r.left == 0 {
				continue
			}
			// The empty string is no bucket, so the first snapshot a rule sees always
			// starts one.
			if b := r.bucket(sn.Time); b != r.last {
				r.last = b
				if r.left > 0 {
					r.left--
				}
				why = append(why, r.reason)
			}
		}
		if len(why) == 0 {
			remove = append(remove, sn)
			continue
		}
		keep = append(keep, sn)
		reasons[sn] = why
	}
	return keep, remove, reasons
}

// GroupSnapshots splits snaps by host and set of paths (the unit a policy applies to, as
// restic's default --group-by host,paths), in order of host, then paths; each group keeps
// the order of snaps.
func GroupSnapshots(snaps []*Snapshot) [][]*Snapshot {
	byKey := map[string][]*Snapshot{}
	var keys []string
	for _, sn := range snaps {
		k := groupKey(sn)
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], sn)
	}
	sort.Strings(keys)
	out := make([][]*Snapshot, 0, len(keys))
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out
}

// groupKey joins host and sorted paths with NUL, which neither can contain, so distinct
// groups never share a key.
func groupKey(sn *Snapshot) string {
	paths := append([]string(nil), sn.Paths...)
	sort.Strings(paths)
	return sn.Host + "\x00" + strings.Join(paths, "\x00")
}

// RemoveSnapshot deletes one snapshot object. It takes no lock: the caller holds the
// exclusive lock that forget needs (docs/repository-format.md "Locks"). Removing a
// snapshot deletes no data; its packs stay until prune finds them unreferenced.
func (r *Repository) RemoveSnapshot(ctx context.Context, id crypto.ID) error {
	if err := r.be.Delete(ctx, snapPrefix+id.String()); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", id.Short(), err)
	}
	return nil
}

// Forget applies p to the snapshots that match f, per group of host and paths
// (GroupSnapshots), and removes the snapshots it does not keep. It returns the kept and
// removed snapshots group by group, newest first within a group; with dryRun it removes
// nothing and returns what it would remove. An empty policy keeps everything.
//
// Forget deletes snapshot objects only, never data: the packs that only the removed
// snapshots referenced stay in the repository, and their space is reclaimed by prune.
//
// It holds an exclusive lock while it lists and removes, because a snapshot deleted under
// a concurrent operation breaks it: a backup or check listing snapshots would fail to
// load one listed a moment earlier, and two forgets with different policies could each
// remove what the other kept. A dry run deletes nothing, so it takes a shared lock: it
// may run beside backups, and a concurrent forget makes it fail with ErrLocked instead
// of listing snapshots as they vanish.
func (r *Repository) Forget(ctx context.Context, f Filter, p RetentionPolicy, dryRun bool) (kept, removed []*Snapshot, err error) {
	lock, err := r.Lock(ctx, !dryRun)
	if err != nil {
		return nil, nil, err
	}
	defer lock.Release(context.WithoutCancel(ctx))

	all, err := r.Snapshots(ctx)
	if err != nil {
		return nil, nil, err
	}
	var matching []*Snapshot
	for _, sn := range all {
		if f.Match(sn) {
			matching = append(matching, sn)
		}
	}
	var toRemove []*Snapshot
	for _, g := range GroupSnapshots(matching) {
		k, rm, _ := ApplyPolicy(g, p)
		kept = append(kept, k...)
		toRemove = append(toRemove, rm...)
	}
	if dryRun {
		return kept, toRemove, nil
	}

	// Deletions are independent, and an object store answers each in tens of
	// milliseconds: a few at once make forgetting hundreds of snapshots quick.
	done := make([]bool, len(toRemove))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, sn := range toRemove {
		g.Go(func() error {
			if err := r.RemoveSnapshot(gctx, sn.ID); err != nil {
				return err
			}
			crashpoint.Hit(crashpoint.ForgetSnapshotRemoved)
			done[i] = true
			return nil
		})
	}
	werr := g.Wait()
	for i, sn := range toRemove {
		if done[i] {
			removed = append(removed, sn)
		}
	}
	if werr != nil {
		return kept, removed, fmt.Errorf("%s: forget removed %d of %d snapshots, then: %w", r.URL(), len(removed), len(toRemove), werr)
	}
	return kept, removed, nil
}
