package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
)

// Object describes a stored object.
type Object struct {
	Key     string // relative to the Store's root
	Size    int64
	ModTime time.Time
}

// listPageSize is the number of objects one List request asks for: the largest page
// S3 and Azure return.
const listPageSize = 1000

// Store is a repository's object storage: one bucket, optionally narrowed to a key
// prefix. It is safe for concurrent use.
type Store struct {
	be   Backend
	url  string
	opts Options
}

// Open opens the bucket at rawURL (see the package documentation for the URL forms).
// The driver for the URL's scheme must be linked into the program. Open does no
// I/O on remote buckets; Check verifies that the bucket is reachable.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	bu, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(blob.DefaultURLMux().BucketSchemes(), bu.scheme) {
		return nil, fmt.Errorf("%s: no storage driver for %s:// in this program", bu.display, bu.scheme)
	}
	b, err := blob.OpenBucket(ctx, bu.open)
	if err != nil {
		// Driver messages may quote the URL they were given; the display form stands first.
		return nil, fmt.Errorf("%s: open: %w", bu.display, err)
	}
	if bu.prefix != "" {
		b = blob.PrefixedBucket(b, bu.prefix)
	}
	var be Backend = BucketBackend(b)
	if bu.scheme == "file" {
		u, err := url.Parse(bu.open)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", bu.display, err)
		}
		be = fileBackend{Backend: be, dir: u.Path, prefix: bu.prefix}
	}
	return newStore(be, bu.display, opts), nil
}

// NewFromBucket returns a Store over b, which it takes over (Close closes b).
// displayURL names the bucket in errors; secrets in it are not shown.
func NewFromBucket(b *blob.Bucket, displayURL string, opts Options) *Store {
	return NewFromBackend(BucketBackend(b), displayURL, opts)
}

// NewFromBackend returns a Store over be, which it takes over. Tests use it to put a
// fault-injecting Backend between a Store and its bucket.
func NewFromBackend(be Backend, displayURL string, opts Options) *Store {
	return newStore(be, sanitize(displayURL), opts)
}

func newStore(be Backend, display string, opts Options) *Store {
	return &Store{be: be, url: display, opts: opts.applyDefaults()}
}

// sanitize returns the display form of a URL given by a caller.
func sanitize(raw string) string {
	if bu, err := parseURL(raw); err == nil {
		return bu.display
	}
	if u, err := url.Parse(raw); err == nil {
		return displayURL(u)
	}
	return "(invalid URL)"
}

// URL returns the Store's URL for display: without credentials, SAS tokens or
// other secret parameters, with the key prefix as a path (or as ?prefix=).
func (s *Store) URL() string { return s.url }

// Check verifies that the bucket exists and that the credentials can list it. The
// error wraps ErrNoBucket or ErrPermission when that is the cause.
func (s *Store) Check(ctx context.Context) error {
	err := s.retry(ctx, func(ctx context.Context, _ int) error {
		_, _, err := s.be.ListPage(ctx, "", nil, 1)
		return err
	})
	if err != nil {
		return s.fail(ctx, opCheck, "", err, false)
	}
	return nil
}

// Get returns the content of key.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	return s.getRange(ctx, opGet, key, 0, -1)
}

// GetRange returns length bytes of key from offset, fewer when the object ends
// first; length < 0 reads to the end.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if offset < 0 {
		return nil, fmt.Errorf("%s: %s %q: negative offset %d", s.url, opGet, key, offset)
	}
	return s.getRange(ctx, opGet, key, offset, length)
}

func (s *Store) getRange(ctx context.Context, op, key string, offset, length int64) ([]byte, error) {
	var data []byte
	err := s.retrySized(ctx, 0, func(ctx context.Context, _ int, w *watchdog) (bool, error) {
		r, err := s.be.NewRangeReader(ctx, key, offset, length)
		if err != nil {
			return false, err
		}
		data, err = io.ReadAll(progressReader{r, w})
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		return false, err
	})
	if err != nil {
		return nil, s.fail(ctx, op, key, err, false)
	}
	return data, nil
}

// NewRangeReader opens length bytes of key from offset for streaming (length < 0:
// to the end). Opening is retried; so is a download that breaks with a transient
// error (a reset connection, a body cut short), by opening the rest of the range
// again, at most MaxAttempts-1 times per reader: repository objects are written once,
// so the rest is the rest of the same bytes. Errors name the Store and key. The
// caller must Close the reader.
func (s *Store) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("%s: %s %q: negative offset %d", s.url, opRead, key, offset)
	}
	rd := &reader{s: s, ctx: ctx, key: key, offset: offset, length: length}
	if err := rd.open(); err != nil {
		return nil, s.fail(ctx, opRead, key, err, false)
	}
	return rd, nil
}

// open opens the rest of the range, with retries, under a watchdog that the reads
// keep restarting.
func (r *reader) open() error {
	return r.s.retrySized(r.ctx, 0, func(ctx context.Context, _ int, w *watchdog) (bool, error) {
		rc, err := r.s.be.NewRangeReader(ctx, r.key, r.offset, r.length)
		if err != nil {
			return false, err
		}
		r.r, r.w = progressReader{rc, w}, w
		w.pause() // until the first Read
		return true, nil
	})
}

// reader resumes a streaming read that breaks, and names the Store and key in its
// errors.
type reader struct {
	r   io.ReadCloser
	s   *Store
	ctx context.Context
	key string
	// offset and length are the part of the range not read yet (length < 0: to the end).
	offset, length int64
	// resumes counts the times the rest of the range was opened again.
	resumes int
	// err is the error that ended the read, returned again by every later Read.
	err error
	// w is the watchdog of the open download.
	w *watchdog
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for {
		n, err := r.r.Read(p)
		r.offset += int64(n)
		if r.length > 0 {
			r.length -= int64(n)
		}
		if err == nil || err == io.EOF {
			return n, err
		}
		if r.length == 0 {
			return n, io.EOF // every byte asked for arrived; the break came after them
		}
		if r.resumes+1 >= r.s.opts.MaxAttempts || !transient(r.ctx, err) {
			r.err = r.s.fail(r.ctx, opRead, r.key, err, false)
			return n, r.err
		}
		r.resumes++
		_ = r.r.Close() // broken already; its error says nothing more
		r.w.stop()
		if serr := r.s.opts.Sleep(r.ctx, r.s.opts.backoff(r.resumes-1)); serr != nil && r.ctx.Err() != nil {
			r.r = io.NopCloser(strings.NewReader("")) // the broken one is closed
			r.err = r.s.fail(r.ctx, opRead, r.key, err, false)
			return n, r.err
		}
		if oerr := r.open(); oerr != nil {
			r.r = io.NopCloser(strings.NewReader(""))
			r.err = r.s.fail(r.ctx, opRead, r.key, fmt.Errorf("resuming at %d after %w: %w", r.offset, err, oerr), false)
			return n, r.err
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (r *reader) Close() error {
	defer r.w.stop()
	if err := r.r.Close(); err != nil {
		return r.s.fail(r.ctx, opRead, r.key, err, false)
	}
	return nil
}

// Put writes data to key, replacing any object there.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	err := s.retrySized(ctx, int64(len(data)), func(ctx context.Context, _ int, _ *watchdog) (bool, error) {
		return false, s.be.Upload(ctx, key, data, false)
	})
	if err != nil {
		return s.fail(ctx, opPut, key, err, false)
	}
	return nil
}

// PutIfAbsent writes data to key only if key does not exist; otherwise it returns an
// error wrapping ErrExists. Of concurrent writers to one key, exactly one succeeds.
//
// If a try fails in a way that may hide a write that landed (the response was
// lost), the next try finds the key taken. PutIfAbsent then reads the object: when it
// holds exactly data, the earlier try won and PutIfAbsent succeeds.
func (s *Store) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	var retried bool
	err := s.retrySized(ctx, int64(len(data)), func(ctx context.Context, try int, _ *watchdog) (bool, error) {
		err := s.be.Upload(ctx, key, data, true)
		if err != nil && try > 0 && isPrecondition(err) {
			retried = true
		}
		return false, err
	})
	if err == nil {
		return nil
	}
	if retried {
		got, gerr := s.getRange(ctx, opCreate, key, 0, -1)
		if gerr == nil && bytes.Equal(got, data) {
			return nil
		}
		if gerr != nil && !errors.Is(gerr, ErrNotFound) {
			return gerr
		}
	}
	return s.fail(ctx, opCreate, key, err, true)
}

// Delete removes key; a missing key is an error wrapping ErrNotFound. When a try
// fails transiently and the next one finds the key gone, the earlier try is taken to
// have deleted it.
func (s *Store) Delete(ctx context.Context, key string) error {
	err := s.retry(ctx, func(ctx context.Context, try int) error {
		err := s.be.Delete(ctx, key)
		if err != nil && try > 0 && isNotFound(err) {
			// An earlier try deleted it and its response was lost.
			return nil
		}
		return err
	})
	if err != nil {
		return s.fail(ctx, opDelete, key, err, false)
	}
	return nil
}

// Stat returns the size and modification time of key.
func (s *Store) Stat(ctx context.Context, key string) (Object, error) {
	var o Object
	err := s.retry(ctx, func(ctx context.Context, _ int) error {
		var err error
		o, err = s.be.Stat(ctx, key)
		return err
	})
	if err != nil {
		return Object{}, s.fail(ctx, opStat, key, err, false)
	}
	o.Key = key
	return o, nil
}

// List calls fn for every object whose key starts with prefix, at any depth, in the
// order the service returns them (lexicographic for all supported services). Keys
// are relative to the Store's root. An error from fn ends the listing and is
// returned as it is.
func (s *Store) List(ctx context.Context, prefix string, fn func(Object) error) error {
	var token []byte
	for {
		var page []Object
		var next []byte
		err := s.retry(ctx, func(ctx context.Context, _ int) error {
			var err error
			page, next, err = s.be.ListPage(ctx, prefix, token, listPageSize)
			return err
		})
		if err != nil {
			return s.fail(ctx, opList, prefix, err, false)
		}
		for _, o := range page {
			if err := ctx.Err(); err != nil {
				return s.fail(ctx, opList, prefix, err, false)
			}
			if err := fn(o); err != nil {
				return err
			}
		}
		if len(next) == 0 {
			return nil
		}
		token = next
	}
}

// Close releases the bucket. The Store must not be used afterwards.
func (s *Store) Close() error {
	if err := s.be.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", s.url, err)
	}
	return nil
}
