package testutil

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TreeDigest maps each entry below root to its type, permissions and content hash: two
// trees with equal digests hold the same files with the same modes and bytes.
func TreeDigest(t testing.TB, root string) map[string]string {
	t.Helper()
	d := map[string]string{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := e.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		d[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// DiffTrees names the first difference between two TreeDigests ("" when equal).
func DiffTrees(want, got map[string]string) string {
	for p, w := range want {
		if g, ok := got[p]; !ok {
			return p + ": missing"
		} else if g != w {
			return fmt.Sprintf("%s: %s, want %s", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			return p + ": not in the source"
		}
	}
	return ""
}
