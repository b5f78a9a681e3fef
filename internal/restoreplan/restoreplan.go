// Package restoreplan decides which snapshot paths a restore host receives, from the
// repository's snapshot list and the host's rule. The restore host pod runs it to do the
// work, and the plugin runs it before it creates anything, so bad input (an unknown
// snapshot, a path no snapshot holds) is one error on the user's terminal rather than a
// failed pod.
package restoreplan

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
)

// Source says whose snapshots a host restores.
type Source struct {
	Host string
	// Config keeps the snapshots tagged with this configuration; empty: those of Target.
	Config string
	Target api.Target
}

func (s Source) String() string {
	what := s.Target.String()
	if s.Config != "" {
		what = "backup configuration " + s.Config
	}
	return fmt.Sprintf("%s of %s", s.Host, what)
}

// Match reports whether sn is one of the source's snapshots.
func (s Source) Match(sn *repo.Snapshot) bool {
	if sn.Host != s.Host {
		return false
	}
	if s.Config != "" {
		// the members of a batch share its tag and may share host names: the target tells
		// them apart
		return slices.Contains(sn.Tags, api.TagConfig+s.Config) &&
			(s.Target.Kind == "" || sn.Target == nil || (sn.Target.Kind == s.Target.Kind && sn.Target.Name == s.Target.Name))
	}
	return sn.Target != nil && sn.Target.Kind == s.Target.Kind && sn.Target.Name == s.Target.Name
}

// Item is one path of one snapshot to restore, into the same path on the target host.
type Item struct {
	Snapshot *repo.Snapshot
	Path     string
}

// Resolver finds a snapshot by id (or unique prefix), as repo.FindSnapshot does.
type Resolver func(id string) (*repo.Snapshot, error)

// Plan picks what a host restores. all is every snapshot of the repository, oldest first.
// With snapshot ids, those snapshots are restored (only paths of them, if paths are given;
// a path one of them does not hold fails the host, as the seed says). Otherwise each path
// (paths, else defaultPaths, else every path the source has snapshots of) comes from the
// source's latest snapshot holding it.
func Plan(all []*repo.Snapshot, find Resolver, src Source, paths, snapshots, defaultPaths []string) ([]Item, error) {
	if len(snapshots) > 0 {
		var items []Item
		for _, id := range snapshots {
			sn, err := find(id)
			if err != nil {
				return nil, err
			}
			if len(paths) == 0 {
				for _, p := range sn.Paths {
					items = append(items, Item{Snapshot: sn, Path: p})
				}
				continue
			}
			for _, p := range paths {
				if !holds(sn, p) {
					return nil, fmt.Errorf("path %s is not in snapshot %s (it holds %s)", p, sn.ID.Short(), strings.Join(sn.Paths, ", "))
				}
				items = append(items, Item{Snapshot: sn, Path: p})
			}
		}
		return items, nil
	}
	var mine []*repo.Snapshot
	for _, sn := range all {
		if src.Match(sn) {
			mine = append(mine, sn)
		}
	}
	if len(mine) == 0 {
		return nil, fmt.Errorf("the repository has no snapshot of %s", src)
	}
	if len(paths) == 0 {
		paths = defaultPaths
	}
	if len(paths) == 0 {
		seen := map[string]bool{}
		for _, sn := range mine {
			for _, p := range sn.Paths {
				if !seen[p] {
					seen[p] = true
					paths = append(paths, p)
				}
			}
		}
		sort.Strings(paths)
	}
	var items []Item
	for _, p := range paths {
		var latest *repo.Snapshot
		for _, sn := range mine {
			if holds(sn, p) && (latest == nil || !sn.Time.Before(latest.Time)) {
				latest = sn
			}
		}
		if latest == nil {
			return nil, fmt.Errorf("no snapshot of %s holds %s (its snapshots hold %s)", src, p, strings.Join(pathsOf(mine), ", "))
		}
		items = append(items, Item{Snapshot: latest, Path: p})
	}
	return items, nil
}

// holds reports whether p is one of the snapshot's paths or lies below one.
func holds(sn *repo.Snapshot, p string) bool {
	p = path.Clean(p)
	for _, sp := range sn.Paths {
		sp = path.Clean(sp)
		if p == sp || sp == "/" || strings.HasPrefix(p, sp+"/") {
			return true
		}
	}
	return false
}

func pathsOf(sns []*repo.Snapshot) []string {
	seen := map[string]bool{}
	var out []string
	for _, sn := range sns {
		for _, p := range sn.Paths {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Under reports whether p is dir or below it.
func Under(p, dir string) bool {
	p, dir = path.Clean(p), path.Clean(dir)
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// Find resolves a snapshot id, or a unique prefix of one, among all.
func Find(all []*repo.Snapshot, ref string) (*repo.Snapshot, error) {
	var found *repo.Snapshot
	for _, sn := range all {
		if strings.HasPrefix(sn.ID.String(), ref) {
			if found != nil {
				return nil, fmt.Errorf("snapshot id prefix %q is ambiguous: give more characters", ref)
			}
			found = sn
		}
	}
	if found == nil {
		return nil, fmt.Errorf("snapshot %q is not in the repository", ref)
	}
	return found, nil
}
