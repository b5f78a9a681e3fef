package snapshot_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
)

// A restored tree verifies clean; each kind of damage is found, named by its path.
func TestVerifyRestored(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	big := make([]byte, 5<<20)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	writeFile(t, filepath.Join(src, "big.bin"), big, 0o644)
	writeFile(t, filepath.Join(src, "conf", "app.yaml"), []byte("port: 1\n"), 0o600)
	writeFile(t, filepath.Join(src, "empty"), nil, 0o644)
	if err := os.Symlink("conf/app.yaml", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	r, sn := backupOne(t, src)
	restore := func() string {
		t.Helper()
		target := t.TempDir()
		if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Path: src, StripPath: true}); err != nil {
			t.Fatal(err)
		}
		return target
	}
	verify := func(target string) snapshot.VerifyStats {
		t.Helper()
		st, err := snapshot.VerifyRestored(ctx, r, sn, snapshot.VerifyOptions{Target: target, Path: src, StripPath: true, Owners: os.Geteuid() == 0})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := verify(restore())
	if st.MismatchCount != 0 || st.Files != 3 || st.Links != 1 || st.Dirs != 1 || st.Bytes != int64(len(big))+8 {
		t.Fatalf("clean restore: %+v", st)
	}
	// without StripPath, the snapshot's path recreated below the target
	whole := t.TempDir()
	if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: whole}); err != nil {
		t.Fatal(err)
	}
	if st, err := snapshot.VerifyRestored(ctx, r, sn, snapshot.VerifyOptions{Target: whole}); err != nil || st.MismatchCount != 0 || st.Files != 3 {
		t.Fatalf("whole snapshot: %+v %v", st, err)
	}

	for _, c := range []struct {
		name   string
		damage func(dir string)
		want   string
	}{
		{"one byte flipped in the middle", func(d string) {
			f, _ := os.OpenFile(filepath.Join(d, "big.bin"), os.O_WRONLY, 0)
			f.WriteAt([]byte{big[3<<20] ^ 1}, 3<<20)
			f.Close()
			os.Chtimes(filepath.Join(d, "big.bin"), time.Time{}, fileTime(t, src, "big.bin"))
		}, "/big.bin: content differs from the snapshot at chunk"},
		{"truncated", func(d string) { os.Truncate(filepath.Join(d, "big.bin"), 10) }, "/big.bin: size 10, snapshot has 5242880"},
		{"mode", func(d string) { os.Chmod(filepath.Join(d, "conf", "app.yaml"), 0o644) }, "/conf/app.yaml: mode -rw-r--r--, snapshot has -rw-------"},
		{"time", func(d string) { os.Chtimes(filepath.Join(d, "empty"), time.Time{}, time.Unix(1, 0)) }, "/empty: modified 1970-01-01T00:00:01Z"},
		{"missing", func(d string) { os.Remove(filepath.Join(d, "empty")) }, "/empty: missing"},
		{"extra", func(d string) { os.WriteFile(filepath.Join(d, "conf", "stray"), nil, 0o644) }, "/conf/stray: not in the snapshot"},
		{"link", func(d string) { os.Remove(filepath.Join(d, "link")); os.Symlink("elsewhere", filepath.Join(d, "link")) }, `/link: links to "elsewhere"`},
		{"type", func(d string) { os.Remove(filepath.Join(d, "empty")); os.Mkdir(filepath.Join(d, "empty"), 0o755) }, "/empty: is a directory, not a file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := restore()
			c.damage(d)
			st := verify(d)
			var got []string
			for _, m := range st.Mismatches {
				got = append(got, strings.TrimPrefix(m.String(), src))
			}
			if st.MismatchCount == 0 || !strings.Contains(strings.Join(got, "\n"), c.want) {
				t.Errorf("mismatches %q, want one with %q", got, c.want)
			}
		})
	}
}

func fileTime(t *testing.T, dir, name string) time.Time {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}
