package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crashpoint"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// Lock timing (docs/repository-format.md "Locks").
const (
	LockRefresh = 5 * time.Minute
	LockStale   = 30 * time.Minute
)

// LockInfo is the sealed content of a lock object.
type LockInfo struct {
	Exclusive bool      `json:"exclusive"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Time      time.Time `json:"time"`
	Refreshed time.Time `json:"refreshed"`
	// Holder identifies the holder beyond host and PID when Options.LockHolders says
	// who this process is (a pod: its ServiceAccount's UID, namespace, name and UID).
	Holder string `json:"holder,omitempty"`
	Key    string `json:"-"`
}

// LockHolders tell, beyond this machine's process table, who holds a lock and whether
// the holder of another one has ended. In a cluster a killed pod's lock would otherwise
// block every prune (and a killed prune's lock every backup) until it goes stale; the
// job image answers from the pod's own identity and the API server.
type LockHolders interface {
	// Self is the Holder this process writes into its locks ("" for none).
	Self() string
	// Gone reports that the holder of a lock has certainly ended. It must answer false
	// whenever it cannot be sure (another cluster, an unreachable API server): a lock
	// wrongly deemed gone lets a prune delete what a running backup still writes.
	Gone(ctx context.Context, holder string) bool
}

// Stale reports whether the lock's holder stopped refreshing it.
func (l LockInfo) Stale(now time.Time) bool { return now.Sub(l.Refreshed) > LockStale }

// deadHere reports whether the lock was taken on host (this machine) by a process that no
// longer exists. Locks of other machines (other pods) can only go stale.
func (l LockInfo) deadHere(host string) bool {
	return host != "" && l.Host == host && l.PID > 0 && l.PID != os.Getpid() && !processAlive(l.PID)
}

// ErrLocked means another operation holds a conflicting lock.
var ErrLocked = errors.New("repository is locked")

// Lock is a held lock; Release it when done.
type Lock struct {
	r    *Repository
	mu   sync.Mutex
	info LockInfo
	key  string
	stop chan struct{}
	done chan struct{}
	lost error
	now  func() time.Time
}

// Lock takes a shared (backup, restore, check) or exclusive (prune) lock, and refreshes it
// in the background until Release.
func (r *Repository) Lock(ctx context.Context, exclusive bool) (*Lock, error) {
	return r.lockAt(ctx, exclusive, time.Now)
}

func (r *Repository) lockAt(ctx context.Context, exclusive bool, now func() time.Time) (*Lock, error) {
	host, _ := os.Hostname()
	t := now().UTC()
	l := &Lock{r: r, now: now, info: LockInfo{Exclusive: exclusive, Host: host, PID: os.Getpid(), Time: t, Refreshed: t},
		stop: make(chan struct{}), done: make(chan struct{})}
	if r.opts.LockHolders != nil {
		l.info.Holder = r.opts.LockHolders.Self()
	}
	if err := l.write(ctx); err != nil {
		return nil, err
	}
	crashpoint.Hit(crashpoint.LockWritten)
	// Written first, checked second: of two racing operations at least one sees the other.
	others, err := r.Locks(ctx)
	if err != nil {
		_ = r.be.Delete(context.WithoutCancel(ctx), l.key)
		return nil, err
	}
	for _, o := range others {
		if o.Key == l.key || o.Stale(now()) {
			continue
		}
		if o.deadHere(host) || ((exclusive || o.Exclusive) && r.holderGone(ctx, o)) {
			// its holder ran on this machine, or in a pod, and is gone (killed): restic's
			// rule, so a backup killed with SIGKILL does not block the next prune for
			// LockStale
			_ = r.be.Delete(context.WithoutCancel(ctx), o.Key)
			continue
		}
		if exclusive || o.Exclusive {
			_ = r.be.Delete(context.WithoutCancel(ctx), l.key)
			kind := "a shared"
			if o.Exclusive {
				kind = "an exclusive"
			}
			return nil, fmt.Errorf("%s: %w: %s lock held by %s (pid %d) since %s, refreshed %s; if that process is gone, the lock goes stale %s after its last refresh",
				r.URL(), ErrLocked, kind, o.Host, o.PID, o.Time.Format(time.RFC3339), o.Refreshed.Format(time.RFC3339), LockStale)
		}
	}
	go l.refreshLoop()
	return l, nil
}

// holderGone asks Options.LockHolders whether the holder of a lock that conflicts with
// ours has ended; only conflicting locks are asked about, so a backup never waits on it.
func (r *Repository) holderGone(ctx context.Context, o LockInfo) bool {
	if o.Holder == "" || r.opts.LockHolders == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return r.opts.LockHolders.Gone(ctx, o.Holder)
}

func (l *Lock) write(ctx context.Context) error {
	plain, err := json.Marshal(l.info)
	if err != nil {
		return err
	}
	name, err := crypto.NewSalt()
	if err != nil {
		return err
	}
	key := locksPrefix + crypto.ID(name).String()
	if err := l.r.be.PutIfAbsent(ctx, key, l.r.key.Seal(nil, plain, []byte("lock"))); err != nil {
		return fmt.Errorf("write lock: %w", err)
	}
	l.key = key
	return nil
}

func (l *Lock) refreshLoop() {
	defer close(l.done)
	t := time.NewTicker(LockRefresh)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.refresh()
		}
	}
}

// refresh writes a new lock object, then removes the old one.
func (l *Lock) refresh() {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	old := l.key
	l.info.Refreshed = l.now().UTC()
	if err := l.write(ctx); err != nil {
		l.lost = err
		return
	}
	_ = l.r.be.Delete(ctx, old)
}

// Release removes the lock.
func (l *Lock) Release(ctx context.Context) error {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.r.be.Delete(ctx, l.key); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// Locks lists the repository's locks. A lock that cannot be read (damaged, or written by
// another key) is reported as stale, held by "unknown", so it never blocks forever.
func (r *Repository) Locks(ctx context.Context) ([]LockInfo, error) {
	var out []LockInfo
	err := r.be.List(ctx, locksPrefix, func(o store.Object) error {
		raw, err := r.be.Get(ctx, o.Key)
		if errors.Is(err, store.ErrNotFound) {
			return nil // released meanwhile
		}
		if err != nil {
			return err
		}
		var li LockInfo
		plain, err := r.key.Open(nil, raw, []byte("lock"))
		if err == nil {
			err = json.Unmarshal(plain, &li)
		}
		if err != nil {
			li = LockInfo{Host: "unknown", Time: o.ModTime, Refreshed: o.ModTime}
		}
		li.Key = strings.TrimSpace(o.Key)
		out = append(out, li)
		return nil
	})
	return out, err
}
