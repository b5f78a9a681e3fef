package testutil

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TreeManifest describes every entry below root: a directory's permission bits, a file's
// permission bits, size and SHA-256, a symbolic link's target, the mode of anything else.
// Two trees with equal manifests hold the same files with the same modes and bytes.
func TreeManifest(root string) (map[string]string, error) {
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := e.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = "link " + target
		case fi.IsDir():
			m[rel] = fmt.Sprintf("dir %o", fi.Mode().Perm())
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = fmt.Sprintf("file %o %d %x", fi.Mode().Perm(), len(b), sha256.Sum256(b))
		default:
			m[rel] = fi.Mode().String()
		}
		return nil
	})
	return m, err
}

// TreeDigest is TreeManifest for a test that cannot go on without it.
func TreeDigest(t testing.TB, root string) map[string]string {
	t.Helper()
	m, err := TreeManifest(root)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// DiffTrees lists (at most five of) the entries where two manifests differ; "" when
// they are equal.
func DiffTrees(want, got map[string]string) string {
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing (want %s)", k, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: %s, want %s", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: unexpected %s", k, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("... %d more", len(diffs)-5))
	}
	return strings.Join(diffs, "; ")
}
