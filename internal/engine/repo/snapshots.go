package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// Target names the Kubernetes object a snapshot was taken of (empty for local backups).
type Target struct {
	Kind      string `json:"kind,omitempty"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// Stats are a snapshot's statistics, named as the seeds name them.
type Stats struct {
	TotalFiles      int64  `json:"totalFiles"`
	NewFiles        int64  `json:"newFiles"`
	ModifiedFiles   int64  `json:"modifiedFiles"`
	UnmodifiedFiles int64  `json:"unmodifiedFiles"`
	Size            int64  `json:"size"`     // bytes of all files in the snapshot
	Uploaded        int64  `json:"uploaded"` // bytes this backup stored
	ProcessingTime  string `json:"processingTime"`
	Errors          int64  `json:"errors,omitempty"`  // unreadable files, when tolerated
	Skipped         int64  `json:"skipped,omitempty"` // sockets and other unrecordable entries
}

// Snapshot is one backup of one host.
type Snapshot struct {
	Version int        `json:"version"`
	Time    time.Time  `json:"time"`
	Host    string     `json:"host"`
	Paths   []string   `json:"paths"`
	Tags    []string   `json:"tags,omitempty"`
	Target  *Target    `json:"target,omitempty"`
	Session string     `json:"session,omitempty"`
	Parent  *crypto.ID `json:"parent,omitempty"`
	Tree    crypto.ID  `json:"tree"`
	Program string     `json:"program,omitempty"`
	Stats   Stats      `json:"stats"`
	ID      crypto.ID  `json:"-"` // the object name; set when saved or loaded
}

// SaveSnapshot stores sn (after Flush: every blob it references must be durable) and sets
// sn.ID.
func (r *Repository) SaveSnapshot(ctx context.Context, sn *Snapshot) error {
	sn.Version = 1
	plain, err := json.Marshal(sn)
	if err != nil {
		return err
	}
	sealed := r.key.Seal(nil, plain, []byte("snapshot"))
	id := r.hashing.Sum(sealed)
	if err := r.be.PutIfAbsent(ctx, snapPrefix+id.String(), sealed); err != nil && !isExists(err) {
		return fmt.Errorf("write snapshot: %w", err)
	}
	sn.ID = id
	return nil
}

// LoadSnapshot reads one snapshot.
func (r *Repository) LoadSnapshot(ctx context.Context, id crypto.ID) (*Snapshot, error) {
	raw, err := r.be.Get(ctx, snapPrefix+id.String())
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id.Short(), err)
	}
	if r.hashing.Sum(raw) != id {
		return nil, fmt.Errorf("snapshot %s: content does not match its name (damaged)", id.Short())
	}
	plain, err := r.key.Open(nil, raw, []byte("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id.Short(), err)
	}
	var sn Snapshot
	if err := json.Unmarshal(plain, &sn); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id.Short(), err)
	}
	sn.ID = id
	return &sn, nil
}

// Snapshots lists every snapshot, oldest first.
func (r *Repository) Snapshots(ctx context.Context) ([]*Snapshot, error) {
	var ids []crypto.ID
	err := r.be.List(ctx, snapPrefix, func(o store.Object) error {
		id, err := crypto.ParseID(strings.TrimPrefix(o.Key, snapPrefix))
		if err != nil {
			return nil // not ours
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	out := make([]*Snapshot, 0, len(ids))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, id := range ids {
		g.Go(func() error {
			sn, err := r.LoadSnapshot(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				// forgotten between the listing and the read (another host's retention
				// policy): it is gone, as if the listing had come a moment later
				return nil
			}
			if err != nil {
				return err
			}
			mu.Lock()
			out = append(out, sn)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out, nil
}

// Filter selects snapshots; empty fields match everything.
type Filter struct {
	Host string
	Path string // the snapshot must include this path (or a path above it)
	Tags []string
}

// Match reports whether sn passes f.
func (f Filter) Match(sn *Snapshot) bool {
	if f.Host != "" && sn.Host != f.Host {
		return false
	}
	if f.Path != "" {
		found := false
		for _, p := range sn.Paths {
			if p == f.Path || strings.HasPrefix(f.Path, strings.TrimSuffix(p, "/")+"/") {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	for _, t := range f.Tags {
		has := false
		for _, st := range sn.Tags {
			has = has || st == t
		}
		if !has {
			return false
		}
	}
	return true
}

// FindSnapshot resolves "latest" (the newest matching f) or an id or unique id prefix.
func (r *Repository) FindSnapshot(ctx context.Context, ref string, f Filter) (*Snapshot, error) {
	all, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	if ref == "latest" || ref == "" {
		for i := len(all) - 1; i >= 0; i-- {
			if f.Match(all[i]) {
				return all[i], nil
			}
		}
		return nil, fmt.Errorf("%s: no snapshot matches %s", r.URL(), f.describe())
	}
	var found *Snapshot
	for _, sn := range all {
		if strings.HasPrefix(sn.ID.String(), ref) {
			if found != nil {
				return nil, fmt.Errorf("snapshot id prefix %q is ambiguous: give more characters", ref)
			}
			found = sn
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%s: no snapshot %q", r.URL(), ref)
	}
	return found, nil
}

func (f Filter) describe() string {
	var parts []string
	if f.Host != "" {
		parts = append(parts, "host "+f.Host)
	}
	if f.Path != "" {
		parts = append(parts, "path "+f.Path)
	}
	if len(f.Tags) > 0 {
		parts = append(parts, "tags "+strings.Join(f.Tags, ","))
	}
	if len(parts) == 0 {
		return "(the repository has no snapshots)"
	}
	return strings.Join(parts, ", ")
}

// Listing is a snapshot as listings print it (`stash-job snapshots -o json`, which the
// plugin also reads back from a Job's log): ids as strings, the short id beside the full one.
type Listing struct {
	ID      string    `json:"id"`
	ShortID string    `json:"short_id"`
	Time    time.Time `json:"time"`
	Host    string    `json:"host"`
	Paths   []string  `json:"paths"`
	Tags    []string  `json:"tags,omitempty"`
	Target  *Target   `json:"target,omitempty"`
	Session string    `json:"session,omitempty"`
	Parent  string    `json:"parent,omitempty"`
	Tree    string    `json:"tree"`
	Stats   Stats     `json:"stats"`
}

// Listing returns sn in its listing form.
func (sn *Snapshot) Listing() Listing {
	l := Listing{ID: sn.ID.String(), ShortID: sn.ID.Short(), Time: sn.Time, Host: sn.Host, Paths: sn.Paths,
		Tags: sn.Tags, Target: sn.Target, Session: sn.Session, Tree: sn.Tree.String(), Stats: sn.Stats}
	if sn.Parent != nil {
		l.Parent = sn.Parent.String()
	}
	return l
}
