// Package storetest holds the conformance suite every kind of bucket a repository
// can live in must pass, and a fault-injecting store.Backend for unit tests.
//
// The suite runs against memblob and fileblob in the unit tests of internal/store,
// and against real S3, GCS and Azure servers with the objectstores build tag (see
// test/objectstores).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// ListCount is the number of objects the pagination test writes: more than the
// 1000 that one List request returns, few enough that slow emulators stay quick.
const ListCount = 1100

// Run runs the conformance suite, one subtest per property. open is called once per
// subtest and must return a Store over an empty namespace (a fresh bucket, directory
// or prefix); it should close the Store with t.Cleanup. The subtests run in parallel:
// they finish before t's Cleanup functions run, but not before Run returns.
func Run(t *testing.T, open func(t *testing.T) *store.Store) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// RunPrefixed runs the suite with every subtest in a key prefix of its own, then the
// tests that need several prefixes of one bucket. open(t, prefix) must return a
// Store rooted at prefix (a relative slash-separated path, "" for the root) of one
// namespace that is empty when RunPrefixed starts and that nothing else writes to.
func RunPrefixed(t *testing.T, open func(t *testing.T, prefix string) *store.Store) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	Run(t, func(t *testing.T) *store.Store {
		mu.Lock()
		n++
		p := fmt.Sprintf("suite/%03d", n)
		mu.Unlock()
		return open(t, p)
	})
	t.Run("prefixes are isolated", func(t *testing.T) { testPrefixes(t, open) })
}

var tests = []struct {
	name string
	fn   func(t *testing.T, s *store.Store)
}{
	{"round trip", testRoundTrip},
	{"empty object", testEmpty},
	{"large object", testLarge},
	{"key names", testKeyNames},
	{"missing keys", testMissing},
	{"create-only", testCreateOnly},
	{"create-only race", testCreateOnlyRace},
	{"ranges", testRanges},
	{"list prefix", testListPrefix},
	{"list pages", testListPages},
	{"overwrite", testOverwrite},
	{"delete", testDelete},
	{"cancelled context", testCancelled},
	{"check", testCheck},
	{"spool", testSpool},
}

// Data returns n deterministic pseudo-random bytes for seed.
func Data(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	_, _ = r.Read(b) // ChaCha8.Read never fails
	return b
}

// MustPut writes data to key or fails the test.
func MustPut(t *testing.T, s *store.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, data); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// MustGet reads key or fails the test.
func MustGet(t *testing.T, s *store.Store, key string) []byte {
	t.Helper()
	b, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return b
}

// Keys lists prefix in s and returns the keys, sorted, or fails the test.
func Keys(t *testing.T, s *store.Store, prefix string) []string {
	t.Helper()
	var keys []string
	if err := s.List(t.Context(), prefix, func(o store.Object) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	sort.Strings(keys)
	return keys
}

func wantBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		if len(got) > 64 || len(want) > 64 {
			t.Fatalf("%s: got %d bytes, want %d bytes (contents differ)", what, len(got), len(want))
		}
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

func testRoundTrip(t *testing.T, s *store.Store) {
	data := []byte("hello, repository")
	MustPut(t, s, "config", data)
	wantBytes(t, "Get", MustGet(t, s, "config"), data)
	o, err := s.Stat(t.Context(), "config")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if o.Key != "config" || o.Size != int64(len(data)) || o.ModTime.IsZero() {
		t.Fatalf("Stat = %+v, want key config, size %d, a modification time", o, len(data))
	}
}

func testEmpty(t *testing.T, s *store.Store) {
	MustPut(t, s, "empty", nil)
	got := MustGet(t, s, "empty")
	if len(got) != 0 {
		t.Fatalf("Get(empty) = %d bytes, want 0", len(got))
	}
	o, err := s.Stat(t.Context(), "empty")
	if err != nil || o.Size != 0 {
		t.Fatalf("Stat(empty) = %+v, %v; want size 0", o, err)
	}
	var listed []store.Object
	if err := s.List(t.Context(), "", func(o store.Object) error { listed = append(listed, o); return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(listed) != 1 || listed[0].Key != "empty" || listed[0].Size != 0 {
		t.Fatalf("List = %+v, want the one empty object", listed)
	}
}

// testLarge writes a 20 MiB object (multipart on S3) and a 12 MiB create-only one:
// a create-only write that needs several parts must still refuse a taken key.
func testLarge(t *testing.T, s *store.Store) {
	ctx := t.Context()
	data := Data(1, 20<<20)
	MustPut(t, s, "packs/big", data)
	wantBytes(t, "Get(big)", MustGet(t, s, "packs/big"), data)
	if o, err := s.Stat(ctx, "packs/big"); err != nil || o.Size != int64(len(data)) {
		t.Fatalf("Stat(big) = %+v, %v; want size %d", o, err, len(data))
	}
	mid := int64(len(data)/2 - 1000)
	got, err := s.GetRange(ctx, "packs/big", mid, 5<<20)
	if err != nil {
		t.Fatalf("GetRange(big): %v", err)
	}
	wantBytes(t, "GetRange(big)", got, data[mid:mid+5<<20])
	r, err := s.NewRangeReader(ctx, "packs/big", 0, -1)
	if err != nil {
		t.Fatalf("NewRangeReader(big): %v", err)
	}
	streamed, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("reading big: %v", err)
	}
	wantBytes(t, "streamed big", streamed, data)

	once := Data(2, 12<<20)
	if err := s.PutIfAbsent(ctx, "packs/once", once); err != nil {
		t.Fatalf("PutIfAbsent(once): %v", err)
	}
	if err := s.PutIfAbsent(ctx, "packs/once", data[:12<<20]); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second PutIfAbsent(once) = %v, want ErrExists", err)
	}
	wantBytes(t, "Get(once)", MustGet(t, s, "packs/once"), once)
}

func testKeyNames(t *testing.T, s *store.Store) {
	keys := []string{
		"a/b/c/d/e/f",
		"data/00/00ff3e9a",
		"ünïcødé/日本語/ß.bin",
		"with space/and+plus=equals",
		"percent%20literal",
		"dots.in.name/x.y",
	}
	for i, k := range keys {
		MustPut(t, s, k, []byte(fmt.Sprint("object ", i)))
	}
	for i, k := range keys {
		wantBytes(t, "Get("+k+")", MustGet(t, s, k), []byte(fmt.Sprint("object ", i)))
	}
	got := Keys(t, s, "")
	want := slices.Clone(keys)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
}

func testMissing(t *testing.T, s *store.Store) {
	ctx := t.Context()
	MustPut(t, s, "present", []byte("x"))
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "absent"); return err }},
		{"GetRange", func() error { _, err := s.GetRange(ctx, "absent", 1, 2); return err }},
		{"NewRangeReader", func() error {
			r, err := s.NewRangeReader(ctx, "absent", 0, -1)
			if err == nil {
				_, err = io.ReadAll(r)
				_ = r.Close()
			}
			return err
		}},
		{"Stat", func() error { _, err := s.Stat(ctx, "absent"); return err }},
		{"Delete", func() error { return s.Delete(ctx, "absent") }},
		{"Get of a prefix of a key", func() error { _, err := s.Get(ctx, "pres"); return err }},
	} {
		err := tc.call()
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s(absent) = %v, want ErrNotFound", tc.name, err)
			continue
		}
		if msg := err.Error(); !bytes.Contains([]byte(msg), []byte(s.URL())) {
			t.Errorf("%s error %q does not name the store %s", tc.name, msg, s.URL())
		}
	}
}

func testCreateOnly(t *testing.T, s *store.Store) {
	ctx := t.Context()
	if err := s.PutIfAbsent(ctx, "locks/exclusive", []byte("first")); err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	err := s.PutIfAbsent(ctx, "locks/exclusive", []byte("second"))
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second PutIfAbsent = %v, want ErrExists", err)
	}
	wantBytes(t, "after the lost write", MustGet(t, s, "locks/exclusive"), []byte("first"))
	// Identical content is no exception: the key is taken.
	if err := s.PutIfAbsent(ctx, "locks/exclusive", []byte("first")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("PutIfAbsent with the same content = %v, want ErrExists", err)
	}
	// Once deleted, the key is free again.
	if err := s.Delete(ctx, "locks/exclusive"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.PutIfAbsent(ctx, "locks/exclusive", []byte("third")); err != nil {
		t.Fatalf("PutIfAbsent after Delete: %v", err)
	}
	wantBytes(t, "after the third write", MustGet(t, s, "locks/exclusive"), []byte("third"))
}

// testCreateOnlyRace: of 8 writers racing for one key, exactly one wins, and the key
// holds what the winner wrote.
func testCreateOnlyRace(t *testing.T, s *store.Store) {
	const writers = 8
	ctx := t.Context()
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.PutIfAbsent(ctx, "locks/race", []byte(fmt.Sprintf("writer %d", i)))
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrExists):
			t.Errorf("writer %d: %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer won: %v", errs)
	}
	wantBytes(t, "the winner's content", MustGet(t, s, "locks/race"), []byte(fmt.Sprintf("writer %d", winner)))
}

func testRanges(t *testing.T, s *store.Store) {
	data := []byte("0123456789")
	MustPut(t, s, "r", data)
	for _, tc := range []struct {
		name           string
		offset, length int64
		want           string
	}{
		{"middle", 2, 3, "234"},
		{"to the end", 7, -1, "789"},
		{"whole", 0, -1, "0123456789"},
		{"zero length", 4, 0, ""},
		{"first byte", 0, 1, "0"},
		{"last byte", 9, 1, "9"},
		{"length past the end", 8, 10, "89"},
	} {
		got, err := s.GetRange(t.Context(), "r", tc.offset, tc.length)
		if err != nil {
			t.Errorf("%s: GetRange(%d, %d): %v", tc.name, tc.offset, tc.length, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s: GetRange(%d, %d) = %q, want %q", tc.name, tc.offset, tc.length, got, tc.want)
		}
		r, err := s.NewRangeReader(t.Context(), "r", tc.offset, tc.length)
		if err != nil {
			t.Errorf("%s: NewRangeReader: %v", tc.name, err)
			continue
		}
		got, err = io.ReadAll(r)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: NewRangeReader read %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if _, err := s.GetRange(t.Context(), "r", -1, 2); err == nil {
		t.Errorf("GetRange with a negative offset succeeded")
	}
}

func testListPrefix(t *testing.T, s *store.Store) {
	for _, k := range []string{"a/1", "a/2/3", "a/2/4", "ab/1", "abc", "b/1", "0"} {
		MustPut(t, s, k, []byte(k))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"a/", []string{"a/1", "a/2/3", "a/2/4"}},
		{"a/2/", []string{"a/2/3", "a/2/4"}},
		{"ab", []string{"ab/1", "abc"}},
		{"ab/", []string{"ab/1"}},
		{"b/", []string{"b/1"}},
		{"c/", nil},
		{"", []string{"0", "a/1", "a/2/3", "a/2/4", "ab/1", "abc", "b/1"}},
	} {
		if got := Keys(t, s, tc.prefix); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	var sizes []int64
	if err := s.List(t.Context(), "a/2/", func(o store.Object) error { sizes = append(sizes, o.Size); return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	if !slices.Equal(sizes, []int64{5, 5}) {
		t.Errorf("List(a/2/) sizes = %v, want [5 5]", sizes)
	}
	// An error from the callback ends the listing and comes back unchanged.
	stop := errors.New("stop")
	calls := 0
	err := s.List(t.Context(), "", func(store.Object) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("List with a failing callback = %v after %d calls, want the callback's error after 1", err, calls)
	}
}

func testListPages(t *testing.T, s *store.Store) {
	g, ctx := errgroup.WithContext(t.Context())
	g.SetLimit(16)
	want := make([]string, ListCount)
	for i := range ListCount {
		want[i] = fmt.Sprintf("many/%05d", i)
		g.Go(func() error { return s.Put(ctx, want[i], []byte{byte(i)}) })
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("writing %d objects: %v", ListCount, err)
	}
	// Siblings that sort before and after "many/" ("-" < "/" < "0"). A key "many"
	// itself cannot sit next to "many/…" in a file system directory.
	MustPut(t, s, "many-1/x", []byte("a sibling prefix"))
	MustPut(t, s, "many0", []byte("a sibling key"))
	MustPut(t, s, "manyother/x", []byte("a sibling prefix"))
	got := Keys(t, s, "many/")
	if !slices.Equal(got, want) {
		t.Fatalf("List(many/) returned %d keys, want %d distinct keys many/00000…many/%05d", len(got), ListCount, ListCount-1)
	}
}

func testOverwrite(t *testing.T, s *store.Store) {
	MustPut(t, s, "index/latest", []byte("version one, longer"))
	MustPut(t, s, "index/latest", []byte("v2"))
	wantBytes(t, "Get", MustGet(t, s, "index/latest"), []byte("v2"))
	if o, err := s.Stat(t.Context(), "index/latest"); err != nil || o.Size != 2 {
		t.Fatalf("Stat = %+v, %v; want size 2", o, err)
	}
	if got := Keys(t, s, ""); !slices.Equal(got, []string{"index/latest"}) {
		t.Fatalf("List = %q, want one key", got)
	}
}

func testDelete(t *testing.T, s *store.Store) {
	ctx := t.Context()
	MustPut(t, s, "doomed", []byte("x"))
	MustPut(t, s, "kept", []byte("y"))
	if err := s.Delete(ctx, "doomed"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "doomed"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "doomed"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
	if got := Keys(t, s, ""); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("List after Delete = %q, want [kept]", got)
	}
}

// testCancelled: every operation fails with the context's error and leaves nothing
// behind; a listing stops as soon as its callback cancels.
func testCancelled(t *testing.T, s *store.Store) {
	MustPut(t, s, "present", []byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Put", func() error { return s.Put(ctx, "new", []byte("x")) }},
		{"PutIfAbsent", func() error { return s.PutIfAbsent(ctx, "new", []byte("x")) }},
		{"Get", func() error { _, err := s.Get(ctx, "present"); return err }},
		{"GetRange", func() error { _, err := s.GetRange(ctx, "present", 0, 1); return err }},
		{"NewRangeReader", func() error { _, err := s.NewRangeReader(ctx, "present", 0, -1); return err }},
		{"Stat", func() error { _, err := s.Stat(ctx, "present"); return err }},
		{"Delete", func() error { return s.Delete(ctx, "present") }},
		{"List", func() error { return s.List(ctx, "", func(store.Object) error { return nil }) }},
		{"Check", func() error { return s.Check(ctx) }},
	} {
		if err := tc.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", tc.name, err)
		}
	}
	if got := Keys(t, s, ""); !slices.Equal(got, []string{"present"}) {
		t.Fatalf("after cancelled calls List = %q, want [present]", got)
	}

	for i := range 3 {
		MustPut(t, s, fmt.Sprintf("more/%d", i), []byte("x"))
	}
	lctx, lcancel := context.WithCancel(t.Context())
	defer lcancel()
	calls := 0
	err := s.List(lctx, "", func(store.Object) error { calls++; lcancel(); return nil })
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("List cancelled in its callback = %v after %d calls, want context.Canceled after 1", err, calls)
	}
}

func testCheck(t *testing.T, s *store.Store) {
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check on an empty store: %v", err)
	}
	MustPut(t, s, "x", []byte("x"))
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// testPrefixes: Stores on sibling prefixes ("p/a" and "p/ab") do not see each other's
// keys, and a Store on their parent sees both, below their prefixes.
func testPrefixes(t *testing.T, open func(t *testing.T, prefix string) *store.Store) {
	a, ab, parent := open(t, "iso/a"), open(t, "iso/ab"), open(t, "iso")
	MustPut(t, a, "k", []byte("in a"))
	MustPut(t, ab, "k", []byte("in ab"))
	MustPut(t, ab, "only-ab", []byte("x"))
	wantBytes(t, "a.Get(k)", MustGet(t, a, "k"), []byte("in a"))
	wantBytes(t, "ab.Get(k)", MustGet(t, ab, "k"), []byte("in ab"))
	if _, err := a.Get(t.Context(), "only-ab"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a.Get(only-ab) = %v, want ErrNotFound", err)
	}
	if got := Keys(t, a, ""); !slices.Equal(got, []string{"k"}) {
		t.Errorf("a.List = %q, want [k]", got)
	}
	if got := Keys(t, ab, ""); !slices.Equal(got, []string{"k", "only-ab"}) {
		t.Errorf("ab.List = %q, want [k only-ab]", got)
	}
	if got := Keys(t, parent, ""); !slices.Equal(got, []string{"a/k", "ab/k", "ab/only-ab"}) {
		t.Errorf("parent.List = %q, want [a/k ab/k ab/only-ab]", got)
	}
	wantBytes(t, "parent.Get(a/k)", MustGet(t, parent, "a/k"), []byte("in a"))
	if a.URL() == ab.URL() {
		t.Errorf("both prefixes display as %s", a.URL())
	}
	// A create-only write in one prefix does not see the other's key.
	if err := a.PutIfAbsent(t.Context(), "only-ab", []byte("now in a")); err != nil {
		t.Errorf("a.PutIfAbsent(only-ab): %v", err)
	}
}

// testSpool: an object written piece by piece is stored whole under the key its Commit
// names, create-only, and nothing of an aborted or failed one is listed. Buckets that
// cannot spool must say so with errors.ErrUnsupported.
func testSpool(t *testing.T, s *store.Store) {
	ctx := t.Context()
	sp, err := s.Spool(ctx)
	if !s.CanSpool() {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("Spool on a store that cannot spool = %v, want ErrUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Spool: %v", err)
	}
	data := Data(7, 3<<20+17)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1<<20-3)
		if _, err := sp.Write(rest[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		rest = rest[n:]
	}
	if sp.Len() != int64(len(data)) {
		t.Fatalf("Len = %d, want %d", sp.Len(), len(data))
	}
	if err := sp.Commit(ctx, "data/ab/spooled"); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	wantBytes(t, "the spooled object", MustGet(t, s, "data/ab/spooled"), data)

	// Commit is create-only: the key is taken, and keeps the first object.
	sp2, err := s.Spool(ctx)
	if err != nil {
		t.Fatalf("Spool: %v", err)
	}
	if _, err := sp2.Write([]byte("other")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := sp2.Commit(ctx, "data/ab/spooled"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("Commit to a taken key = %v, want ErrExists", err)
	}
	wantBytes(t, "after the lost commit", MustGet(t, s, "data/ab/spooled"), data)

	// An aborted spool, and one committed with a cancelled context, leave nothing.
	sp3, err := s.Spool(ctx)
	if err != nil {
		t.Fatalf("Spool: %v", err)
	}
	if _, err := sp3.Write([]byte("discarded")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	sp3.Abort()
	sp4, err := s.Spool(ctx)
	if err != nil {
		t.Fatalf("Spool: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := sp4.Commit(cctx, "data/cd/cancelled"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with a cancelled context = %v, want context.Canceled", err)
	}
	if keys := Keys(t, s, ""); !slices.Equal(keys, []string{"data/ab/spooled"}) {
		t.Fatalf("keys after the spools = %q, want only data/ab/spooled", keys)
	}
}
