package repo_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// at parses an RFC 3339 time; the tests name snapshots by their time.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func name(sn *repo.Snapshot) string { return sn.Time.UTC().Format(time.RFC3339) }

func names(list []*repo.Snapshot) []string {
	out := make([]string, 0, len(list))
	for _, sn := range list {
		out = append(out, name(sn))
	}
	return out
}

// twiceDailyInJanuary2026 is a snapshot at 00:30 and at 12:30 every day of January 2026
// but the 28th, oldest first.
func twiceDailyInJanuary2026() []string {
	var out []string
	for d := 1; d <= 31; d++ {
		if d == 28 {
			continue
		}
		day := time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC)
		out = append(out, day.Add(30*time.Minute).Format(time.RFC3339), day.Add(12*time.Hour+30*time.Minute).Format(time.RFC3339))
	}
	return out
}

func TestApplyPolicy(t *testing.T) {
	tests := []struct {
		name   string
		snaps  []string // RFC 3339 times, any order
		policy repo.RetentionPolicy
		// wantKeep lists the kept snapshots newest first; every other one must be
		// removed.
		wantKeep []string
		// wantReasons gives the reasons of some kept snapshots, comma-separated.
		wantReasons map[string]string
	}{
		{
			name: "keep-last keeps the newest",
			snaps: []string{"2026-03-01T01:00:00Z", "2026-03-01T05:00:00Z", "2026-03-01T02:00:00Z",
				"2026-03-01T04:00:00Z", "2026-03-01T03:00:00Z"},
			policy:      repo.RetentionPolicy{Last: 3},
			wantKeep:    []string{"2026-03-01T05:00:00Z", "2026-03-01T04:00:00Z", "2026-03-01T03:00:00Z"},
			wantReasons: map[string]string{"2026-03-01T03:00:00Z": "last"},
		},
		{
			name: "hourly keeps the newest of each hour",
			snaps: []string{"2026-03-01T10:59:00Z", "2026-03-01T10:01:00Z", "2026-03-01T09:30:00Z",
				"2026-03-01T08:00:00Z"},
			policy:   repo.RetentionPolicy{Hourly: 2},
			wantKeep: []string{"2026-03-01T10:59:00Z", "2026-03-01T09:30:00Z"},
		},
		{
			// Seven days that have snapshots: the 28th has none, so the 24th is the
			// seventh; of each day the 12:30 one.
			name:   "daily across a month skips days without snapshots",
			snaps:  twiceDailyInJanuary2026(),
			policy: repo.RetentionPolicy{Daily: 7},
			wantKeep: []string{"2026-01-31T12:30:00Z", "2026-01-30T12:30:00Z", "2026-01-29T12:30:00Z",
				"2026-01-27T12:30:00Z", "2026-01-26T12:30:00Z", "2026-01-25T12:30:00Z", "2026-01-24T12:30:00Z"},
			wantReasons: map[string]string{"2026-01-24T12:30:00Z": "daily"},
		},
		{
			// 2025-12-29 (Mon) to 2026-01-04 (Sun) is ISO week 2026-W01: 12-29 and 12-31 are
			// in the same week as 01-01 and 01-04, not in a last week of 2025.
			name: "weekly across an ISO year boundary (week 1 starts in December)",
			snaps: []string{"2025-12-21T12:00:00Z", "2025-12-22T12:00:00Z", "2025-12-27T12:00:00Z",
				"2025-12-28T12:00:00Z", "2025-12-29T12:00:00Z", "2025-12-31T12:00:00Z",
				"2026-01-01T12:00:00Z", "2026-01-04T12:00:00Z", "2026-01-05T12:00:00Z"},
			policy:   repo.RetentionPolicy{Weekly: 3},
			wantKeep: []string{"2026-01-05T12:00:00Z", "2026-01-04T12:00:00Z", "2025-12-28T12:00:00Z"},
		},
		{
			// 2026 has 53 ISO weeks: 2027-01-01 (Fri) to 2027-01-03 (Sun) are in 2026-W53
			// with 2026-12-28 (Mon).
			name: "weekly across an ISO year boundary (week 53 ends in January)",
			snaps: []string{"2026-12-27T12:00:00Z", "2026-12-28T12:00:00Z", "2027-01-01T12:00:00Z",
				"2027-01-03T12:00:00Z", "2027-01-04T12:00:00Z"},
			policy:   repo.RetentionPolicy{Weekly: 3},
			wantKeep: []string{"2027-01-04T12:00:00Z", "2027-01-03T12:00:00Z", "2026-12-27T12:00:00Z"},
		},
		{
			name: "combined rules: one snapshot kept by three of them",
			snaps: []string{"2026-01-15T09:00:00Z", "2026-02-10T09:00:00Z", "2026-02-27T09:00:00Z",
				"2026-03-01T09:00:00Z", "2026-03-02T08:00:00Z", "2026-03-02T10:00:00Z"},
			policy:   repo.RetentionPolicy{Last: 1, Daily: 2, Monthly: 2},
			wantKeep: []string{"2026-03-02T10:00:00Z", "2026-03-01T09:00:00Z", "2026-02-27T09:00:00Z"},
			wantReasons: map[string]string{
				"2026-03-02T10:00:00Z": "last,daily,monthly",
				"2026-03-01T09:00:00Z": "daily",
				"2026-02-27T09:00:00Z": "monthly",
			},
		},
		{
			name:   "yearly and weekly overlap at a year boundary",
			snaps:  []string{"2024-06-01T00:00:00Z", "2025-12-28T12:00:00Z", "2025-12-31T12:00:00Z", "2026-01-05T12:00:00Z"},
			policy: repo.RetentionPolicy{Weekly: 1, Yearly: 3},
			// 2025-12-31 is the newest of 2025 (yearly) though its ISO week is 2026-W01.
			wantKeep: []string{"2026-01-05T12:00:00Z", "2025-12-31T12:00:00Z", "2024-06-01T00:00:00Z"},
			wantReasons: map[string]string{
				"2026-01-05T12:00:00Z": "weekly,yearly",
				"2025-12-31T12:00:00Z": "yearly",
			},
		},
		{
			name:        "empty policy keeps everything",
			snaps:       []string{"2026-03-01T01:00:00Z", "2026-03-01T02:00:00Z"},
			policy:      repo.RetentionPolicy{},
			wantKeep:    []string{"2026-03-01T02:00:00Z", "2026-03-01T01:00:00Z"},
			wantReasons: map[string]string{"2026-03-01T01:00:00Z": "empty policy"},
		},
		{
			name:     "negative last is unlimited",
			snaps:    []string{"2026-03-01T01:00:00Z", "2026-03-01T02:00:00Z", "2026-03-01T03:00:00Z"},
			policy:   repo.RetentionPolicy{Last: -1},
			wantKeep: []string{"2026-03-01T03:00:00Z", "2026-03-01T02:00:00Z", "2026-03-01T01:00:00Z"},
		},
		{
			name: "negative daily keeps one per day, every day",
			snaps: []string{"2020-01-01T01:00:00Z", "2020-01-01T23:00:00Z", "2023-07-04T01:00:00Z",
				"2023-07-04T02:00:00Z", "2026-03-01T01:00:00Z", "2026-03-01T02:00:00Z"},
			policy:   repo.RetentionPolicy{Daily: -1},
			wantKeep: []string{"2026-03-01T02:00:00Z", "2023-07-04T02:00:00Z", "2020-01-01T23:00:00Z"},
		},
		{
			name:     "fewer snapshots than keep-last",
			snaps:    []string{"2026-03-01T01:00:00Z", "2026-03-02T01:00:00Z"},
			policy:   repo.RetentionPolicy{Last: 10},
			wantKeep: []string{"2026-03-02T01:00:00Z", "2026-03-01T01:00:00Z"},
		},
		{
			name:     "fewer buckets than keep-monthly",
			snaps:    []string{"2026-01-10T00:00:00Z", "2026-01-20T00:00:00Z", "2026-03-05T00:00:00Z"},
			policy:   repo.RetentionPolicy{Monthly: 12},
			wantKeep: []string{"2026-03-05T00:00:00Z", "2026-01-20T00:00:00Z"},
		},
		{
			// Recent restic would keep the oldest too, as a rule has buckets to spare;
			// this policy means one per day.
			name:     "fewer days than keep-daily keeps one per day, not the oldest as well",
			snaps:    []string{"2026-03-01T01:00:00Z", "2026-03-01T02:00:00Z", "2026-03-01T03:00:00Z"},
			policy:   repo.RetentionPolicy{Daily: 7},
			wantKeep: []string{"2026-03-01T03:00:00Z"},
		},
		{
			// 2026-03-02T01:00+02:00 is 2026-03-01T23:00Z: the same UTC day as 22:00Z.
			name:     "buckets are UTC days, not the time's own zone",
			snaps:    []string{"2026-03-02T01:00:00+02:00", "2026-03-01T22:00:00Z", "2026-02-28T12:00:00Z"},
			policy:   repo.RetentionPolicy{Daily: 2},
			wantKeep: []string{"2026-03-01T23:00:00Z", "2026-02-28T12:00:00Z"},
		},
		{
			name:     "no snapshots",
			policy:   repo.RetentionPolicy{Last: 1},
			wantKeep: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var snaps []*repo.Snapshot
			for _, s := range tt.snaps {
				snaps = append(snaps, &repo.Snapshot{Time: at(t, s), Host: "host-0", Paths: []string{"/data"}})
			}
			input := slices.Clone(snaps)
			keep, remove, reasons := repo.ApplyPolicy(snaps, tt.policy)

			if got := names(keep); !slices.Equal(got, tt.wantKeep) {
				t.Errorf("kept %q\nwant %q", got, tt.wantKeep)
			}
			var wantRemove []string
			for _, s := range names(snaps) {
				if !slices.Contains(tt.wantKeep, s) {
					wantRemove = append(wantRemove, s)
				}
			}
			slices.SortFunc(wantRemove, func(a, b string) int { return strings.Compare(b, a) }) // newest first
			if got := names(remove); !slices.Equal(got, wantRemove) {
				t.Errorf("removed %q\nwant %q", got, wantRemove)
			}
			for _, sn := range keep {
				if len(reasons[sn]) == 0 {
					t.Errorf("kept %s without a reason", name(sn))
				}
			}
			for _, sn := range remove {
				if r, ok := reasons[sn]; ok {
					t.Errorf("removed %s has reasons %q", name(sn), r)
				}
			}
			for s, want := range tt.wantReasons {
				i := slices.Index(names(keep), s)
				if i < 0 {
					t.Errorf("%s: not kept, want reasons %s", s, want)
					continue
				}
				if got := strings.Join(reasons[keep[i]], ","); got != want {
					t.Errorf("%s: reasons %s, want %s", s, got, want)
				}
			}
			if !slices.Equal(snaps, input) {
				t.Error("ApplyPolicy reordered its argument")
			}
		})
	}
}

func TestApplyPolicyEqualTimesNewestIDFirst(t *testing.T) {
	tm := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	low := &repo.Snapshot{Time: tm, ID: crypto.ID{0x01}}
	high := &repo.Snapshot{Time: tm, ID: crypto.ID{0xf0}}
	for _, order := range [][]*repo.Snapshot{{low, high}, {high, low}} {
		keep, remove, _ := repo.ApplyPolicy(order, repo.RetentionPolicy{Last: 1})
		if len(keep) != 1 || keep[0] != high || len(remove) != 1 || remove[0] != low {
			t.Errorf("kept %v, removed %v: want the higher id kept, as FindSnapshot's latest", keep, remove)
		}
	}
}

func TestRetentionPolicyEmpty(t *testing.T) {
	tests := []struct {
		name string
		p    repo.RetentionPolicy
		want bool
	}{
		{"zero", repo.RetentionPolicy{}, true},
		{"last", repo.RetentionPolicy{Last: 1}, false},
		{"unlimited yearly", repo.RetentionPolicy{Yearly: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Empty(); got != tt.want {
				t.Errorf("Empty() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGroupSnapshots(t *testing.T) {
	a := &repo.Snapshot{Host: "b", Paths: []string{"/x", "/a"}}
	b := &repo.Snapshot{Host: "b", Paths: []string{"/a", "/x"}} // same set, other order
	c := &repo.Snapshot{Host: "a", Paths: []string{"/x"}}
	d := &repo.Snapshot{Host: "b", Paths: []string{"/a"}}
	got := repo.GroupSnapshots([]*repo.Snapshot{a, b, c, d})
	want := [][]*repo.Snapshot{{c}, {d}, {a, b}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("groups %v, want %v", got, want)
	}
}

// saveSnapshots saves one snapshot per spec, with no data: a snapshot's tree is not read
// by forget. It returns the snapshots by label.
func saveSnapshots(t *testing.T, r *repo.Repository, specs []snapSpec) map[string]*repo.Snapshot {
	t.Helper()
	out := map[string]*repo.Snapshot{}
	for _, s := range specs {
		sn := &repo.Snapshot{Time: at(t, s.time), Host: s.host, Paths: []string{s.path}, Tags: []string{s.label}}
		if err := r.SaveSnapshot(ctx, sn); err != nil {
			t.Fatal(err)
		}
		out[s.label] = sn
	}
	return out
}

type snapSpec struct{ label, host, path, time string }

// labels returns the snapshots' labels, sorted.
func labels(list []*repo.Snapshot) []string {
	var out []string
	for _, sn := range list {
		out = append(out, sn.Tags[0])
	}
	slices.Sort(out)
	return out
}

func TestForget(t *testing.T) {
	r, st := repotest.New(t, repo.InitOptions{})
	saveSnapshots(t, r, []snapSpec{
		{"h0-data-1", "host-0", "/data", "2026-03-01T10:00:00Z"},
		{"h0-data-2", "host-0", "/data", "2026-03-02T10:00:00Z"},
		{"h0-data-3", "host-0", "/data", "2026-03-03T10:00:00Z"},
		{"h0-data-4", "host-0", "/data", "2026-03-03T11:00:00Z"},
		{"h0-other-1", "host-0", "/other", "2026-03-01T10:00:00Z"},
		{"h0-other-2", "host-0", "/other", "2026-03-01T11:00:00Z"},
		{"h1-data-1", "host-1", "/data", "2026-03-01T10:00:00Z"},
		{"h1-data-2", "host-1", "/data", "2026-03-02T10:00:00Z"},
		{"h1-data-3", "host-1", "/data", "2026-03-03T10:00:00Z"},
	})
	all := []string{"h0-data-1", "h0-data-2", "h0-data-3", "h0-data-4", "h0-other-1", "h0-other-2", "h1-data-1", "h1-data-2", "h1-data-3"}
	// host-0's groups are forgotten separately: /data keeps its newest of the two newest
	// days, /other its only day's newest.
	policy := repo.RetentionPolicy{Daily: 2}
	wantKept := []string{"h0-data-2", "h0-data-4", "h0-other-2"}
	wantRemoved := []string{"h0-data-1", "h0-data-3", "h0-other-1"}
	remaining := func() []string {
		t.Helper()
		list, err := r.Snapshots(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return labels(list)
	}

	t.Run("dry run removes nothing", func(t *testing.T) {
		kept, removed, err := r.Forget(ctx, repo.Filter{Host: "host-0"}, policy, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := labels(kept); !slices.Equal(got, wantKept) {
			t.Errorf("kept %q, want %q", got, wantKept)
		}
		if got := labels(removed); !slices.Equal(got, wantRemoved) {
			t.Errorf("would remove %q, want %q", got, wantRemoved)
		}
		if got := remaining(); !slices.Equal(got, all) {
			t.Errorf("after a dry run the repository has %q, want all of %q", got, all)
		}
	})

	t.Run("a shared lock blocks forget but not its dry run", func(t *testing.T) {
		l, err := r.Lock(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(ctx)
		if _, _, err := r.Forget(ctx, repo.Filter{Host: "host-0"}, policy, false); !errors.Is(err, repo.ErrLocked) {
			t.Fatalf("forget beside a shared lock: %v, want ErrLocked", err)
		}
		if _, _, err := r.Forget(ctx, repo.Filter{Host: "host-0"}, policy, true); err != nil {
			t.Fatalf("dry run beside a shared lock: %v", err)
		}
		if got := remaining(); !slices.Equal(got, all) {
			t.Errorf("the repository has %q, want all of %q", got, all)
		}
	})

	t.Run("forget removes only the filtered host's snapshots", func(t *testing.T) {
		kept, removed, err := r.Forget(ctx, repo.Filter{Host: "host-0"}, policy, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := labels(kept); !slices.Equal(got, wantKept) {
			t.Errorf("kept %q, want %q", got, wantKept)
		}
		if got := labels(removed); !slices.Equal(got, wantRemoved) {
			t.Errorf("removed %q, want %q", got, wantRemoved)
		}
		want := []string{"h0-data-2", "h0-data-4", "h0-other-2", "h1-data-1", "h1-data-2", "h1-data-3"}
		if got := remaining(); !slices.Equal(got, want) {
			t.Errorf("the repository has %q, want %q", got, want)
		}
		// Another process sees the same.
		list, err := repotest.Reopen(t, st).Snapshots(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := labels(list); !slices.Equal(got, want) {
			t.Errorf("reopened, the repository has %q, want %q", got, want)
		}
		var locks int
		st.List(ctx, "locks/", func(store.Object) error { locks++; return nil })
		if locks != 0 {
			t.Errorf("%d lock objects left after forget", locks)
		}
	})

	t.Run("forget again removes nothing more", func(t *testing.T) {
		_, removed, err := r.Forget(ctx, repo.Filter{Host: "host-0"}, policy, false)
		if err != nil || len(removed) != 0 {
			t.Fatalf("second forget removed %q (%v), want nothing", labels(removed), err)
		}
	})

	t.Run("removing a missing snapshot is ErrNotFound", func(t *testing.T) {
		err := r.RemoveSnapshot(ctx, crypto.ID{0xde, 0xad})
		if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "dead0000") {
			t.Fatalf("RemoveSnapshot of a missing id: %v, want ErrNotFound naming it", err)
		}
	})
}

// Tags keeps every snapshot carrying all tags of one list, besides what the other rules
// keep; the other rules still count those snapshots.
func TestApplyPolicyKeepTags(t *testing.T) {
	mk := func(ts string, tags ...string) *repo.Snapshot {
		return &repo.Snapshot{Time: at(t, ts), Tags: tags}
	}
	snaps := []*repo.Snapshot{
		mk("2026-01-01T00:00:00Z", "config=web", "release"),
		mk("2026-01-02T00:00:00Z", "config=web"),
		mk("2026-01-03T00:00:00Z", "release"),
		mk("2026-01-04T00:00:00Z", "config=web", "release", "audit"),
		mk("2026-01-05T00:00:00Z", "config=web"),
	}
	keep, remove, reasons := repo.ApplyPolicy(snaps, repo.RetentionPolicy{Last: 1, Tags: [][]string{{"config=web", "release"}, {"audit"}}})
	if got := strings.Join(names(keep), " "); got != "2026-01-05T00:00:00Z 2026-01-04T00:00:00Z 2026-01-01T00:00:00Z" {
		t.Errorf("kept %s", got)
	}
	if got := strings.Join(names(remove), " "); got != "2026-01-03T00:00:00Z 2026-01-02T00:00:00Z" {
		t.Errorf("removed %s: a snapshot with only one of a list's tags is not kept by it", got)
	}
	if got := strings.Join(reasons[keep[0]], ","); got != "last" {
		t.Errorf("newest kept for %s", got)
	}
	if got := strings.Join(reasons[keep[1]], ","); got != "tags" {
		t.Errorf("tagged kept for %s", got)
	}
	if (repo.RetentionPolicy{Tags: [][]string{{"a"}}}).Empty() {
		t.Error("a tags-only policy is not empty")
	}
}
