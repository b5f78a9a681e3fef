package store_test

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"

	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/store/storetest"
)

func openT(t *testing.T, rawURL string) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), rawURL, store.Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", rawURL, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func fileURL(dir string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *store.Store
	}{
		{"mem", func(t *testing.T) *store.Store { return openT(t, "mem://") }},
		{"mem with prefix", func(t *testing.T) *store.Store { return openT(t, "mem://?prefix=repos/one") }},
		{"mem from bucket", func(t *testing.T) *store.Store {
			s := store.NewFromBucket(memblob.OpenBucket(nil), "mem://", store.Options{})
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"file", func(t *testing.T) *store.Store {
			// a directory that does not exist yet: Open creates it
			return openT(t, fileURL(filepath.Join(t.TempDir(), "repo", "new")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, tc.open)
		})
	}
}

// TestConformanceFilePrefixes runs the suite in prefixes of one directory, opened
// with gocloud's ?prefix= parameter.
func TestConformanceFilePrefixes(t *testing.T) {
	dir := t.TempDir()
	t.Run("suite", func(t *testing.T) { // returns once the parallel subtests are done
		storetest.RunPrefixed(t, func(t *testing.T, prefix string) *store.Store {
			u := fileURL(dir)
			if prefix != "" {
				u += "?prefix=" + url.QueryEscape(prefix)
			}
			return openT(t, u)
		})
	})
	// The prefixes are directories below dir: nothing landed next to them.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// .stash-tmp holds the temporary files of writes in progress (fileBackend).
	if !slices.Equal(names, []string{".stash-tmp", "iso", "suite"}) {
		t.Errorf("top-level entries = %q, want [.stash-tmp iso suite]", names)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, ".stash-tmp")); len(tmp) != 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		want      []string // substrings of the error
		not       []string // must not appear
	}{
		{"unknown scheme", "ftp://host/x", []string{`unsupported repository URL scheme "ftp"`, "s3, gs, azblob, file, mem"}, nil},
		{"no scheme", "/just/a/path", []string{"unsupported repository URL scheme", "s3, gs, azblob, file, mem"}, nil},
		{"no bucket", "s3:///prefix", []string{"no bucket name"}, nil},
		{"file without dir", "file://", []string{"no directory"}, nil},
		{"dot-dot prefix", "s3://b/a/../c", []string{"prefix", ".."}, nil},
		{"single key", "mem://?key=x", []string{"key="}, nil},
		{"mem with path", "mem://host/path", []string{"mem:// URL has no path"}, nil},
		{"unparsable", "s3://b/%zz?secret=hunter2", []string{"invalid repository URL"}, []string{"hunter2"}},
		{"secret in error", "ftp://user:hunter2@host/?token=hunter3", []string{"ftp://host/"}, []string{"hunter2", "hunter3"}},
		{"bad driver parameter", "mem://?bogus=1", []string{"mem://?bogus=1: open:", "bogus"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.Open(t.Context(), tc.url, store.Options{})
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%s) succeeded", tc.url)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q shows %q", err, w)
				}
			}
		})
	}
}

func TestOpenNoDriver(t *testing.T) {
	if slices.Contains(blob.DefaultURLMux().BucketSchemes(), "gs") {
		t.Skip("the gcs driver is linked into this test binary")
	}
	_, err := store.Open(t.Context(), "gs://bucket/p", store.Options{})
	if err == nil || !strings.Contains(err.Error(), "no storage driver for gs://") || !strings.HasPrefix(err.Error(), "gs://bucket/p:") {
		t.Fatalf("Open(gs://) without the driver = %v, want a missing-driver error naming the URL", err)
	}
}

func TestURL(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, url, want string
	}{
		{"mem", "mem://", "mem://"},
		{"mem prefix", "mem://?prefix=a/b", "mem://?prefix=a/b/"},
		{"file", fileURL(dir), fileURL(dir)},
		{"file prefix", fileURL(dir) + "?prefix=/x/", fileURL(dir) + "?prefix=x/"},
		{"file keeps driver parameters", fileURL(dir) + "?no_tmp_dir=1", fileURL(dir) + "?no_tmp_dir=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := openT(t, tc.url).URL(); got != tc.want {
				t.Errorf("URL() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewFromBucketHidesSecrets(t *testing.T) {
	s := store.NewFromBucket(memblob.OpenBucket(nil), "s3://AKIA:hunter2@bucket/p?endpoint=http://u:pw@127.0.0.1:9000&X-Amz-Signature=abc&region=us-east-1", store.Options{})
	defer s.Close()
	got := s.URL()
	if want := "s3://bucket/p?endpoint=http://127.0.0.1:9000&region=us-east-1"; got != want {
		t.Errorf("URL() = %q, want %q", got, want)
	}
	_, err := s.Get(t.Context(), "k")
	if !errors.Is(err, store.ErrNotFound) || !strings.HasPrefix(err.Error(), got+`: get "k": `) {
		t.Errorf("Get error = %q, want one that starts with the display URL, the operation and the key", err)
	}
}

// TestFileListWhileDeleting: listing a file:// bucket while another process deletes
// objects under the prefix (a host removing its lock while another host lists locks/)
// neither fails nor returns an object twice. fileblob walks the directory and reads each
// entry's attributes after reading the directory, so an entry deleted in between made
// the whole listing fail with "object not found".
func TestFileListWhileDeleting(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, fileURL(dir))
	const n = 400
	for i := range n {
		storetest.MustPut(t, s, fmt.Sprintf("locks/%04d", i), []byte("x"))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if err := s.Delete(t.Context(), fmt.Sprintf("locks/%04d", i)); err != nil {
				t.Errorf("Delete: %v", err)
				return
			}
		}
	}()
	lists := 0
	for running := true; running; lists++ {
		select {
		case <-done:
			running = false
		default:
		}
		seen := map[string]bool{}
		err := s.List(t.Context(), "locks/", func(o store.Object) error {
			if seen[o.Key] {
				return fmt.Errorf("%s listed twice", o.Key)
			}
			seen[o.Key] = true
			return nil
		})
		if err != nil {
			<-done
			t.Fatalf("List while deleting (listing %d): %v", lists, err)
		}
	}
	if got := storetest.Keys(t, s, "locks/"); len(got) != 0 {
		t.Fatalf("after deleting all: %d keys left", len(got))
	}
}
