package repo

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// KeyInfo describes one key file (keys/<id>): a password that opens the master key.
type KeyInfo struct {
	ID       string           `json:"id"`
	Created  time.Time        `json:"created"`
	Host     string           `json:"host,omitempty"`
	Username string           `json:"username,omitempty"`
	KDF      crypto.KDFParams `json:"-"`
	// Current marks the key file the password given to Keys opens.
	Current bool `json:"current"`
}

// Errors of key management callers tell apart.
var (
	ErrLastKey      = errors.New("it is the repository's only key: without it the repository cannot be opened")
	ErrCurrentKey   = errors.New("it is the key in use: open the repository with another password to remove it")
	ErrKeyNotFound  = errors.New("no such key")
	ErrNoCurrentKey = errors.New("no key file opens the repository with this password")
)

// Keys lists the key files, oldest first, marking the one password opens. Finding it
// derives the password's key once per key file (there is no other way to tell which one
// it opens), so this costs a key derivation per key.
func (r *Repository) Keys(ctx context.Context, password []byte) ([]KeyInfo, error) {
	var names []string
	if err := r.be.List(ctx, keysPrefix, func(o store.Object) error {
		names = append(names, o.Key)
		return nil
	}); err != nil {
		return nil, err
	}
	var out []KeyInfo
	for _, name := range names {
		raw, err := r.be.Get(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		var kf keyFile
		if err := json.Unmarshal(raw, &kf); err != nil {
			continue // not a key file this version understands
		}
		ki := KeyInfo{ID: strings.TrimPrefix(name, keysPrefix), Created: kf.Created, Host: kf.Host, Username: kf.Username, KDF: kf.KDFParams}
		ki.Current = password != nil && r.opensMaster(kf, password)
		out = append(out, ki)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// opensMaster reports whether password opens kf to this repository's master key (a stray
// key file of an interrupted init opens to another).
func (r *Repository) opensMaster(kf keyFile, password []byte) bool {
	if kf.KDF != "scrypt" {
		return false
	}
	aead, err := crypto.PasswordAEAD(password, kf.Salt, kf.KDFParams)
	if err != nil {
		return false
	}
	mk, err := crypto.Open(aead, nil, kf.Data, []byte("key"))
	if err != nil {
		return false
	}
	var k crypto.Key
	if err := json.Unmarshal(mk, &k); err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(k.Encrypt[:], r.key.Encrypt[:]) == 1 && subtle.ConstantTimeCompare(k.MAC[:], r.key.MAC[:]) == 1
}

// CurrentKey returns the key file that password opens.
func (r *Repository) CurrentKey(ctx context.Context, password []byte) (KeyInfo, error) {
	keys, err := r.Keys(ctx, password)
	if err != nil {
		return KeyInfo{}, err
	}
	for _, k := range keys {
		if k.Current {
			return k, nil
		}
	}
	return KeyInfo{}, ErrNoCurrentKey
}

// AddPassword writes a new key file that opens the same master key with password, with
// the key derivation cost kdf, and returns its id. Nothing else changes: data, index and
// snapshots stay sealed with the master key.
func (r *Repository) AddPassword(ctx context.Context, password []byte, kdf crypto.KDFParams) (string, error) {
	if len(password) == 0 {
		return "", errors.New("the new password is empty")
	}
	if err := kdf.Validate(); err != nil {
		return "", err
	}
	return AddKey(ctx, r.be, r.key, password, kdf)
}

// RemoveKey removes key file id. It refuses the key currentID (the one this handle was
// opened with: removing it mid-operation would leave the caller unable to reopen) and the
// last key.
func (r *Repository) RemoveKey(ctx context.Context, id, currentID string) error {
	keys, err := r.Keys(ctx, nil)
	if err != nil {
		return err
	}
	found := false
	for _, k := range keys {
		found = found || k.ID == id
	}
	switch {
	case !found:
		return fmt.Errorf("key %s: %w", id, ErrKeyNotFound)
	case len(keys) == 1:
		return fmt.Errorf("key %s: %w", id, ErrLastKey)
	case id == currentID:
		return fmt.Errorf("key %s: %w", id, ErrCurrentKey)
	}
	return r.be.Delete(ctx, keysPrefix+id)
}

// ChangePassword adds a key file for newPassword, then removes the key file of
// oldPassword, in that order: a failure in between leaves both passwords working, never
// neither. It returns the new key's id.
func (r *Repository) ChangePassword(ctx context.Context, oldPassword, newPassword []byte) (string, error) {
	cur, err := r.CurrentKey(ctx, oldPassword)
	if err != nil {
		return "", err
	}
	id, err := r.AddPassword(ctx, newPassword, cur.KDF)
	if err != nil {
		return "", err
	}
	if err := r.be.Delete(ctx, keysPrefix+cur.ID); err != nil {
		return id, fmt.Errorf("new key %s added, but removing the old key %s failed (both passwords work): %w", id, cur.ID, err)
	}
	return id, nil
}

// RemoveLocks removes stale locks (those whose holder stopped refreshing them by now),
// or with force every lock, and returns the ones removed. Forcing is for a holder known
// to be gone before its lock went stale: removing a live operation's lock lets a prune
// run beside it.
func (r *Repository) RemoveLocks(ctx context.Context, now time.Time, force bool) ([]LockInfo, error) {
	locks, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	var removed []LockInfo
	for _, l := range locks {
		if !force && !l.Stale(now) {
			continue
		}
		if err := r.be.Delete(ctx, l.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return removed, err
		}
		removed = append(removed, l)
	}
	return removed, nil
}
