package snapshot_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
)

// listTree lists every entry below root, sorted: directories end in "/", symlinks in "@".
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.IsDir():
			rel += "/"
		case d.Type()&fs.ModeSymlink != 0:
			rel += "@"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// backupOne backs up src into a new in-memory repository.
func backupOne(t *testing.T, src string) (*repo.Repository, *repo.Snapshot) {
	t.Helper()
	r, _ := repotest.New(t, repo.InitOptions{})
	sn, err := snapshot.Backup(ctx, r, []string{src}, snapshot.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	return r, sn
}

// TestRestoreStripPathIsBitIdentical restores the directory of a backup into a target
// that takes its place: the same tree as the source, every kind of entry and metadata,
// the target's own mode, owner and times those of the source directory, and nothing
// created outside the target (a restore pod's root filesystem is read-only).
func TestRestoreStripPathIsBitIdentical(t *testing.T) {
	src := fixture(t)
	when := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := os.Chmod(src, 0o750|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(src, 4321, 8765); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(src, when, when); err != nil {
		t.Fatal(err)
	}
	want := describe(t, src)
	if want["."].mode != fs.ModeDir|fs.ModeSetgid|0o750 {
		t.Fatalf("source dir mode %v: the fixture did not take", want["."].mode)
	}
	r, sn := backupOne(t, src)

	for _, tt := range []struct {
		name, path string
	}{
		{"clean path", src},
		{"trailing slash and dots", src + "/./"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			target := filepath.Join(parent, "volume")
			if err := os.Mkdir(target, 0o700); err != nil {
				t.Fatal(err)
			}
			st, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Path: tt.path, StripPath: true})
			if err != nil {
				t.Fatal(err)
			}
			got := describe(t, target)
			compareTrees(t, want, got)
			if got["."].mode != want["."].mode || got["."].mtime != want["."].mtime || got["."].uid != want["."].uid {
				t.Errorf("target metadata %+v, want the source directory's %+v", got["."], want["."])
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 1 {
				t.Errorf("restore created %d entries beside the target, want only the target", len(entries)-1)
			}
			if st.Files == 0 || st.Links != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestRestoreStripPathOfAFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "source", "data")
	writeFile(t, filepath.Join(src, "conf", "app.yaml"), []byte("replicas: 3\n"), 0o640)
	writeFile(t, filepath.Join(src, "other.txt"), []byte("other"), 0o644)
	r, sn := backupOne(t, src)
	target := filepath.Join(t.TempDir(), "out") // created by the restore
	if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Path: src + "/conf/app.yaml", StripPath: true}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(listTree(t, target), " "); got != "app.yaml" {
		t.Fatalf("target holds %q, want only app.yaml", got)
	}
	fi, err := os.Stat(filepath.Join(target, "app.yaml"))
	if err != nil || fi.Mode() != 0o640 || readString(t, filepath.Join(target, "app.yaml")) != "replicas: 3\n" {
		t.Fatalf("app.yaml: %v %v", fi, err)
	}
}

// TestRestoreStripPathOverwriteAndDelete restores over a target changed since the
// backup: a file rewritten later, one touched back in time, one removed, a file and a
// directory added.
func TestRestoreStripPathOverwriteAndDelete(t *testing.T) {
	src := filepath.Join(t.TempDir(), "source", "data")
	snapTime := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	for name, content := range map[string]string{"newer.txt": "snap newer", "older.txt": "snap older", "removed.txt": "snap removed", "same.txt": "snap same", "sub/deep.txt": "snap deep"} {
		p := filepath.Join(src, name)
		writeFile(t, p, []byte(content), 0o644)
		os.Chtimes(p, snapTime, snapTime)
	}
	r, sn := backupOne(t, src)
	opts := func(target string) snapshot.RestoreOptions {
		return snapshot.RestoreOptions{Target: target, Path: src, StripPath: true}
	}
	prepare := func(t *testing.T) string {
		target := t.TempDir()
		if _, err := snapshot.Restore(ctx, r, sn, opts(target)); err != nil {
			t.Fatal(err)
		}
		later, earlier := snapTime.Add(time.Hour), snapTime.Add(-time.Hour)
		writeFile(t, filepath.Join(target, "newer.txt"), []byte("local newer, changed"), 0o644)
		os.Chtimes(filepath.Join(target, "newer.txt"), later, later)
		writeFile(t, filepath.Join(target, "older.txt"), []byte("local older, changed"), 0o644)
		os.Chtimes(filepath.Join(target, "older.txt"), earlier, earlier)
		os.Remove(filepath.Join(target, "removed.txt"))
		writeFile(t, filepath.Join(target, "added.txt"), []byte("added"), 0o644)
		writeFile(t, filepath.Join(target, "addeddir", "x.txt"), []byte("added"), 0o644)
		writeFile(t, filepath.Join(target, "sub", "added.txt"), []byte("added"), 0o644)
		return target
	}
	tests := []struct {
		mode               snapshot.Overwrite
		del                bool
		wantNewer          string
		wantOlder          string
		wantAdded          bool
		kept, deleted      int64
		files, skippedSame int64
	}{
		{snapshot.OverwriteNever, false, "local newer, changed", "local older, changed", true, 2, 0, 1, 2},
		{snapshot.OverwriteIfNewer, false, "local newer, changed", "snap older", true, 1, 0, 2, 2},
		{snapshot.OverwriteAlways, false, "snap newer", "snap older", true, 0, 0, 3, 2},
		{snapshot.OverwriteNever, true, "local newer, changed", "local older, changed", false, 2, 3, 1, 2},
		{snapshot.OverwriteIfNewer, true, "local newer, changed", "snap older", false, 1, 3, 2, 2},
		{snapshot.OverwriteAlways, true, "snap newer", "snap older", false, 0, 3, 3, 2},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode)+map[bool]string{true: " delete"}[tt.del], func(t *testing.T) {
			target := prepare(t)
			o := opts(target)
			o.Overwrite, o.Delete = tt.mode, tt.del
			st, err := snapshot.Restore(ctx, r, sn, o)
			if err != nil {
				t.Fatal(err)
			}
			if got := readString(t, filepath.Join(target, "newer.txt")); got != tt.wantNewer {
				t.Errorf("newer.txt = %q, want %q", got, tt.wantNewer)
			}
			if got := readString(t, filepath.Join(target, "older.txt")); got != tt.wantOlder {
				t.Errorf("older.txt = %q, want %q", got, tt.wantOlder)
			}
			if got := readString(t, filepath.Join(target, "removed.txt")); got != "snap removed" {
				t.Errorf("removed.txt = %q: not restored", got)
			}
			for _, p := range []string{"added.txt", "addeddir", "sub/added.txt"} {
				if _, err := os.Lstat(filepath.Join(target, p)); (err == nil) != tt.wantAdded {
					t.Errorf("%s exists = %v, want %v", p, err == nil, tt.wantAdded)
				}
			}
			if st.Kept != tt.kept || st.Deleted != tt.deleted || st.Files != tt.files || st.Skipped != tt.skippedSame {
				t.Errorf("stats %+v, want kept %d, deleted %d, files %d, skipped %d", st, tt.kept, tt.deleted, tt.files, tt.skippedSame)
			}
		})
	}
	t.Run("dry run", func(t *testing.T) {
		target := prepare(t)
		var actions []string
		o := opts(target)
		o.Delete, o.DryRun = true, true
		o.Report = func(a, p string) { actions = append(actions, a+" "+p) }
		if _, err := snapshot.Restore(ctx, r, sn, o); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(actions, ", ")
		want := "overwrite newer.txt, overwrite older.txt, create removed.txt, skip same.txt, skip sub/deep.txt, delete sub/added.txt, delete added.txt, delete addeddir"
		if got != want {
			t.Errorf("dry run actions:\n%s\nwant:\n%s", got, want)
		}
		if _, err := os.Stat(filepath.Join(target, "added.txt")); err != nil {
			t.Error("dry run deleted added.txt")
		}
	})
}

// filterSource is a tree to restore with includes and excludes.
func filterSource(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "source", "data")
	for _, f := range []string{"app.log", "data/a.txt", "data/b.log", "data/cache/c.tmp", "data/cache/d.txt", "logs/x.log", "logs/old/y.log"} {
		writeFile(t, filepath.Join(src, f), []byte(f), 0o644)
	}
	if err := os.MkdirAll(filepath.Join(src, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("data/a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	return src
}

func TestRestoreIncludeExclude(t *testing.T) {
	src := filterSource(t)
	r, sn := backupOne(t, src)
	all := []string{"app.log", "data/", "data/a.txt", "data/b.log", "data/cache/", "data/cache/c.tmp", "data/cache/d.txt",
		"empty/", "link@", "logs/", "logs/old/", "logs/old/y.log", "logs/x.log"}
	tests := []struct {
		name               string
		includes, excludes []string
		want               []string
	}{
		{"no patterns", nil, nil, all},
		{"exclude a base name glob", nil, []string{"*.log"},
			[]string{"data/", "data/a.txt", "data/cache/", "data/cache/c.tmp", "data/cache/d.txt", "empty/", "link@", "logs/", "logs/old/"}},
		{"exclude a directory drops what is below it", nil, []string{"cache"},
			[]string{"app.log", "data/", "data/a.txt", "data/b.log", "empty/", "link@", "logs/", "logs/old/", "logs/old/y.log", "logs/x.log"}},
		{"exclude a full path", nil, []string{src + "/data/cache/*.tmp"},
			[]string{"app.log", "data/", "data/a.txt", "data/b.log", "data/cache/", "data/cache/d.txt", "empty/", "link@", "logs/", "logs/old/", "logs/old/y.log", "logs/x.log"}},
		{"full path pattern must match the whole path", nil, []string{"data/cache/*.tmp"}, all},
		{"include files: only their directories are created", []string{"*.log"}, nil,
			[]string{"app.log", "data/", "data/b.log", "logs/", "logs/old/", "logs/old/y.log", "logs/x.log"}},
		{"include a directory takes everything below it", []string{"logs"}, nil,
			[]string{"logs/", "logs/old/", "logs/old/y.log", "logs/x.log"}},
		{"exclude wins inside an included directory", []string{"logs"}, []string{"old"},
			[]string{"logs/", "logs/x.log"}},
		{"an included empty directory is created", []string{"empty"}, nil, []string{"empty/"}},
		{"include a full path", []string{src + "/data/*"}, nil,
			[]string{"data/", "data/a.txt", "data/b.log", "data/cache/", "data/cache/c.tmp", "data/cache/d.txt"}},
		{"include a symlink", []string{"link"}, nil, []string{"link@"}},
		{"include nothing that exists", []string{"*.nothing"}, nil, nil},
		{"several includes", []string{"a.txt", "y.log"}, nil, []string{"data/", "data/a.txt", "logs/", "logs/old/", "logs/old/y.log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := t.TempDir()
			var reported []string
			st, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Path: src, StripPath: true,
				Includes: tt.includes, Excludes: tt.excludes, Report: func(a, p string) { reported = append(reported, p) }})
			if err != nil {
				t.Fatal(err)
			}
			got := listTree(t, target)
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("restored:\n  %s\nwant:\n  %s", strings.Join(got, " "), strings.Join(tt.want, " "))
			}
			if len(reported) != len(tt.want) || int(st.Files+st.Special+st.Dirs) != len(tt.want) {
				t.Errorf("reported %q, stats %+v: want %d entries", reported, st, len(tt.want))
			}
		})
	}
	t.Run("without strip, only the directories leading to what is restored", func(t *testing.T) {
		for _, tt := range []struct {
			includes []string
			want     []string
		}{
			{[]string{"y.log"}, []string{"logs/", "logs/old/", "logs/old/y.log"}},
			{[]string{"*.nothing"}, nil},
		} {
			target := t.TempDir()
			if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Includes: tt.includes}); err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if got := listTree(t, target); len(got) != 0 {
					t.Errorf("include %v matching nothing created %q", tt.includes, got)
				}
				continue
			}
			if got := listTree(t, filepath.Join(target, src)); strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("include %v restored %q, want %q", tt.includes, got, tt.want)
			}
		}
	})
}

// TestRestoreDeleteSparesFilteredOut: --delete removes only what the patterns select and
// the snapshot lacks.
func TestRestoreDeleteSparesFilteredOut(t *testing.T) {
	src := filterSource(t)
	r, sn := backupOne(t, src)
	prepare := func(t *testing.T) string {
		target := t.TempDir()
		if _, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Path: src, StripPath: true}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"extra.log", "extra.txt", "data/cache/new.tmp", "newdir/n.log", "newdir/n.txt", "tmpdir/keep.tmp", "tmpdir/go.txt", "logdir/only.log"} {
			writeFile(t, filepath.Join(target, f), []byte("local"), 0o644)
		}
		writeFile(t, filepath.Join(target, "data", "a.txt"), []byte("changed locally"), 0o644)
		return target
	}
	tests := []struct {
		name               string
		includes, excludes []string
		gone, kept         []string
	}{
		{"no patterns", nil, nil,
			[]string{"extra.log", "extra.txt", "data/cache/new.tmp", "newdir", "tmpdir", "logdir"}, nil},
		{"include", []string{"*.log"}, nil,
			[]string{"extra.log", "newdir/n.log", "logdir/only.log"},
			[]string{"extra.txt", "data/cache/new.tmp", "newdir/n.txt", "tmpdir/keep.tmp", "tmpdir/go.txt", "logdir"}},
		{"exclude", nil, []string{"*.tmp"},
			[]string{"extra.log", "extra.txt", "newdir", "tmpdir/go.txt", "logdir"},
			[]string{"data/cache/new.tmp", "tmpdir/keep.tmp"}},
		{"include a directory, exclude inside it", []string{"tmpdir", "cache"}, []string{"keep.tmp"},
			[]string{"tmpdir/go.txt", "data/cache/new.tmp"},
			[]string{"tmpdir/keep.tmp", "extra.log", "extra.txt", "newdir/n.log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := prepare(t)
			st, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Path: src, StripPath: true, Delete: true,
				Includes: tt.includes, Excludes: tt.excludes, Overwrite: snapshot.OverwriteNever})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.gone {
				if _, err := os.Lstat(filepath.Join(target, p)); err == nil {
					t.Errorf("%s was not deleted", p)
				}
			}
			for _, p := range tt.kept {
				if _, err := os.Lstat(filepath.Join(target, p)); err != nil {
					t.Errorf("%s was deleted: the patterns leave it out", p)
				}
			}
			if got := readString(t, filepath.Join(target, "data", "a.txt")); got != "changed locally" {
				t.Errorf("data/a.txt = %q: a file in the snapshot was deleted or replaced", got)
			}
			if st.Deleted == 0 {
				t.Errorf("stats %+v: nothing counted as deleted", st)
			}
		})
	}
}

func TestRestoreFilterErrors(t *testing.T) {
	src := filterSource(t)
	r, sn := backupOne(t, src)
	tests := []struct {
		name               string
		path               string
		includes, excludes []string
		want               string
	}{
		{"bad include", src, []string{"ok", "[a-"}, nil, `invalid include pattern "[a-"`},
		{"bad exclude", src, nil, []string{"a\\"}, `invalid exclude pattern "a\\"`},
		{"empty pattern", src, []string{""}, nil, "empty include pattern"},
		{"path excluded", src + "/logs/old", nil, []string{"logs"}, `path ` + src + `/logs is excluded by pattern "logs"`},
		{"path missing", src + "/nope", nil, nil, "has no path " + src + "/nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "target")
			_, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Path: tt.path, StripPath: true,
				Includes: tt.includes, Excludes: tt.excludes})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(tt.name, "bad") || strings.Contains(tt.name, "empty") {
				if _, err := os.Lstat(target); err == nil {
					t.Error("the target was created before the patterns were checked")
				}
			}
		})
	}
}

// TestRestoreSkipsIdenticalSymlinks: a resumed restore leaves a symlink with the same
// target and time alone in every mode; one pointing elsewhere follows the mode.
func TestRestoreSkipsIdenticalSymlinks(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	r, sn := backupOne(t, src)
	target := t.TempDir()
	opts := snapshot.RestoreOptions{Target: target, Path: src, StripPath: true, Overwrite: snapshot.OverwriteNever}
	if _, err := snapshot.Restore(ctx, r, sn, opts); err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.Restore(ctx, r, sn, opts)
	if err != nil || st.Skipped != 2 || st.Kept != 0 || st.Special != 0 {
		t.Fatalf("second restore: %+v, %v; want the file and the symlink skipped", st, err)
	}
	os.Remove(filepath.Join(target, "link"))
	os.Symlink("elsewhere", filepath.Join(target, "link"))
	for _, tt := range []struct {
		mode       snapshot.Overwrite
		wantTarget string
	}{{snapshot.OverwriteNever, "elsewhere"}, {snapshot.OverwriteAlways, "a.txt"}} {
		opts.Overwrite = tt.mode
		if _, err := snapshot.Restore(ctx, r, sn, opts); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.Readlink(filepath.Join(target, "link")); got != tt.wantTarget {
			t.Errorf("%s: link -> %q, want %q", tt.mode, got, tt.wantTarget)
		}
	}
}

// --delete into a volume's root spares its file system's lost+found, and only that one.
func TestRestoreDeleteSparesTheVolumesLostAndFound(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	writeFile(t, filepath.Join(src, "sub", "b.txt"), []byte("b"), 0o644)
	r, sn := backupOne(t, src)
	target := t.TempDir()
	writeFile(t, filepath.Join(target, "lost+found", "#1234"), []byte("fsck"), 0o600)
	writeFile(t, filepath.Join(target, "sub", "lost+found", "x"), []byte("x"), 0o600)
	writeFile(t, filepath.Join(target, "extra.txt"), []byte("x"), 0o600)
	st, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{Target: target, Path: src, StripPath: true, Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "lost+found", "#1234")); err != nil {
		t.Errorf("the volume's lost+found was deleted: %v", err)
	}
	for _, gone := range []string{"extra.txt", "sub/lost+found"} {
		if _, err := os.Lstat(filepath.Join(target, gone)); err == nil {
			t.Errorf("%s survived --delete", gone)
		}
	}
	if st.Deleted != 2 {
		t.Errorf("deleted %d, want 2", st.Deleted)
	}
}
