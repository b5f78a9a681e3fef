package cmd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo/repotest"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/snapshot"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

// downloadTest runs `kubectl stash download` on a fake clientset.
type downloadTest struct {
	cs *fake.Clientset
	// terminal makes stderr a terminal; progress, if set, replaces the progress line.
	terminal bool
	progress snapshot.Progress
}

func (dt downloadTest) run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-kubeconfig"))
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	g := &GlobalOptions{ConfigFlags: genericclioptions.NewConfigFlags(true)}
	root := &cobra.Command{Use: "kubectl-stash", SilenceUsage: true, SilenceErrors: true,
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl stash"}}
	root.SetOut(out)
	root.SetErr(errOut)
	g.ConfigFlags.AddFlags(root.PersistentFlags())
	o := NewDownloadOptions(g, streams)
	o.newClient = func() (kubernetes.Interface, error) { return dt.cs, nil }
	o.terminal = func(any) bool { return dt.terminal }
	o.progressInterval = time.Millisecond
	if dt.progress != nil {
		o.newProgress = func(io.Writer) snapshot.Progress { return dt.progress }
	}
	root.AddCommand(newCmdDownload(o))
	root.SetArgs(append([]string{"download"}, args...))
	err = root.Execute()
	return out.String(), errOut.String(), err
}

var downloadT0 = time.Date(2024, 11, 5, 8, 30, 0, 123456789, time.UTC)

// downloadSource is a tree with the entries and metadata download must carry over:
// content, modes (setgid, sticky), a private file, an empty file and directory, a file
// of several chunks, symbolic links (one dangling), a hard link, a FIFO, and set times.
func downloadSource(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "source", "data")
	big := make([]byte, 3<<20+17)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	files := []struct {
		name string
		data []byte
		mode fs.FileMode
	}{
		{"index.html", []byte("<h1>shop</h1>\n"), 0o644},
		{"secret.key", []byte("k3y"), 0o600},
		{"empty", nil, 0o640},
		{"uploads/big.bin", big, 0o644},
		{"logs/app.log", []byte("started\n"), 0o644},
		{"logs/old/app.1.log", []byte("older\n"), 0o644},
		{"bin/run.sh", []byte("#!/bin/sh\n"), 0o755},
	}
	for _, f := range files {
		p := filepath.Join(src, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []struct {
		name string
		mode fs.FileMode
	}{{"emptydir", 0o750}, {"shared", 0o775 | fs.ModeSetgid}, {"tmp", 0o777 | fs.ModeSticky}} {
		if err := os.MkdirAll(filepath.Join(src, d.name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(src, d.name), d.mode); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("index.html", filepath.Join(src, "home.html")))
	must(os.Symlink("/nowhere/at/all", filepath.Join(src, "dangling")))
	must(os.Link(filepath.Join(src, "index.html"), filepath.Join(src, "shared", "index-hardlink.html")))
	must(syscall.Mkfifo(filepath.Join(src, "tmp", "fifo"), 0o620))
	if os.Geteuid() == 0 {
		must(os.Lchown(filepath.Join(src, "secret.key"), 1234, 5678))
		must(os.Lchown(filepath.Join(src, "home.html"), 4321, 8765))
	}
	// times, deepest first so that no directory's changes after it was set
	var paths []string
	must(filepath.WalkDir(src, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	sort.Sort(sort.Reverse(sort.StringSlice(paths)))
	for i, p := range paths {
		at := downloadT0.Add(time.Duration(i) * time.Minute)
		ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(at.UnixNano())}
		must(unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)) // a symlink's own times
	}
	return src
}

// entryState is what a restore must reproduce of one entry.
type entryState struct {
	Mode     fs.FileMode
	UID, GID uint32
	Size     int64
	MTime    int64
	Content  string // sha256 of a regular file
	Target   string // of a symlink
	Links    uint64 // of a regular file
	LinkOf   string // the first path with the same inode (hard links)
}

// treeState describes every entry below root, keyed by path relative to root.
func treeState(t *testing.T, root string) map[string]entryState {
	t.Helper()
	out := map[string]entryState{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entryState{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid, MTime: fi.ModTime().UnixNano()}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Size, e.Content, e.Links = fi.Size(), fmt.Sprintf("%x", sha256.Sum256(b)), uint64(st.Nlink)
			if first, ok := inodes[st.Ino]; ok {
				e.LinkOf = first
			} else {
				inodes[st.Ino] = rel
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Target, _ = os.Readlink(p)
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTreeStates(t *testing.T, want, got map[string]entryState) {
	t.Helper()
	var names []string
	for k := range want {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: not restored", k)
			continue
		}
		if g != want[k] {
			t.Errorf("%s: restored as %+v, want %+v", k, g, want[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: restored, but not in the source", k)
		}
	}
}

// downloadRepo is a file:// repository with snapshots of srcA by host-0 (two of them:
// latest must pick the second) and of srcB by host-1, in Secret "shop" of namespace
// "prod", beside Secret "solo" of a repository with host-0's only and Secret "onpvc" of a
// pvc:// repository.
type downloadRepo struct {
	dt             downloadTest
	srcA, srcB     string
	first, latestA repository.Snapshot
	snapB          repository.Snapshot
}

func newDownloadRepo(t *testing.T) downloadRepo {
	t.Helper()
	ctx := context.Background()
	srcA := downloadSource(t)
	srcB := filepath.Join(t.TempDir(), "source", "db")
	if err := os.MkdirAll(srcB, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(srcB, "dump.sql"), []byte("CREATE TABLE t;\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	backup := func(url string, host string, at time.Time, src string) repository.Snapshot {
		t.Helper()
		r, err := repository.FromSecret(repository.NewSecret("x", "prod", url, "s3cret", nil))
		if err != nil {
			t.Fatal(err)
		}
		rp, closeFn, err := r.Open(ctx)
		if errors.Is(err, repo.ErrNoRepository) {
			if _, err := r.Init(ctx, repo.InitOptions{KDF: repotest.CheapKDF}); err != nil {
				t.Fatal(err)
			}
			rp, closeFn, err = r.Open(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer closeFn()
		if err := rp.LoadIndex(ctx); err != nil {
			t.Fatal(err)
		}
		sn, err := snapshot.Backup(ctx, rp, []string{src}, snapshot.BackupOptions{Host: host, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		return repository.FromEngine(sn)
	}
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	solo := "file://" + filepath.Join(t.TempDir(), "solo")
	dr := downloadRepo{srcA: srcA, srcB: srcB}
	dr.first = backup(url, "host-0", downloadT0, srcA)
	dr.latestA = backup(url, "host-0", downloadT0.Add(time.Hour), srcA)
	dr.snapB = backup(url, "host-1", downloadT0.Add(2*time.Hour), srcB)
	backup(solo, "host-0", downloadT0, srcA)
	dr.dt = downloadTest{cs: fake.NewClientset(
		repository.NewSecret("shop", "prod", url, "s3cret", nil),
		repository.NewSecret("solo", "prod", solo, "s3cret", nil),
		repository.NewSecret("onpvc", "prod", "pvc://backup-volume/repo", "s3cret", nil),
	)}
	return dr
}

var summaryRE = regexp.MustCompile(`^(restored|would restore) snapshot ([0-9a-f]{8}) \((\S+) (\S+)\) to (\S+): (\d+) files, (\d+) dirs, ([^;]+); skipped (\d+), kept (\d+), deleted (\d+)\n$`)

func TestDownloadRestoresTheTreeBitIdentical(t *testing.T) {
	dr := newDownloadRepo(t)
	want := treeState(t, dr.srcA)
	to := filepath.Join(t.TempDir(), "restore")
	out, errOut, err := dr.dt.run(t, "latest", "--repo", "shop", "-n", "prod", "--host", "host-0", "--to", to)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	m := summaryRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("summary %q", out)
	}
	// 8 regular files (the hard link among them), 2 symlinks, 1 FIFO; the directories
	// leading to the snapshot's path, the path, and the 7 below it
	dirs := fmt.Sprint(strings.Count(dr.srcA, "/") + 7)
	if m[1] != "restored" || m[2] != dr.latestA.ShortID || m[3] != "host-0" || m[4] != dr.srcA || m[5] != to ||
		m[6] != "11" || m[7] != dirs || m[8] != "3.000 MiB" || m[9] != "0" || m[10] != "0" || m[11] != "0" {
		t.Errorf("summary %q", out)
	}
	if errOut != "" {
		t.Errorf("stderr is not a terminal, yet: %q", errOut)
	}
	got := treeState(t, filepath.Join(to, dr.srcA))
	compareTreeStates(t, want, got)
	if h := got["shared/index-hardlink.html"]; h.LinkOf != "index.html" || h.Links != 2 {
		t.Errorf("hard link restored as %+v: not the inode of index.html", h)
	}

	t.Run("again: everything identical is skipped", func(t *testing.T) {
		out, _, err := dr.dt.run(t, "latest", "--repo", "shop", "-n", "prod", "--host", "host-0", "--to", to)
		if m := summaryRE.FindStringSubmatch(out); err != nil || m == nil || m[6] != "2" || m[9] != "9" {
			// the 7 regular files and 2 symlinks are skipped; the hard link and FIFO are made again
			t.Fatalf("%v: %q", err, out)
		}
		compareTreeStates(t, want, treeState(t, filepath.Join(to, dr.srcA)))
	})
	t.Run("changed since: --overwrite never keeps, --delete removes", func(t *testing.T) {
		dst := filepath.Join(to, dr.srcA)
		later := time.Now()
		os.WriteFile(filepath.Join(dst, "index.html"), []byte("edited here"), 0o644)
		os.Chtimes(filepath.Join(dst, "index.html"), later, later)
		os.WriteFile(filepath.Join(dst, "logs", "new.log"), []byte("new"), 0o644)
		out, _, err := dr.dt.run(t, "latest", "--repo", "shop", "-n", "prod", "--host", "host-0", "--to", to,
			"--overwrite", "never", "--delete", "--exclude", "old")
		// kept: index.html, and the FIFO (never replaced in this mode)
		if m := summaryRE.FindStringSubmatch(out); err != nil || m == nil || m[10] != "2" || m[11] != "1" {
			t.Fatalf("%v: %q", err, out)
		}
		if b, _ := os.ReadFile(filepath.Join(dst, "index.html")); string(b) != "edited here" {
			t.Errorf("--overwrite never replaced index.html: %q", b)
		}
		if _, err := os.Stat(filepath.Join(dst, "logs", "new.log")); err == nil {
			t.Error("--delete left logs/new.log")
		}
		if _, err := os.Stat(filepath.Join(dst, "logs", "old", "app.1.log")); err != nil {
			t.Error("--delete removed logs/old, which --exclude leaves out")
		}
	})
}

func TestDownloadSelects(t *testing.T) {
	dr := newDownloadRepo(t)
	list := func(root string) string {
		var out []string
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(root, p)
				out = append(out, rel)
			}
			return nil
		})
		return strings.Join(out, " ")
	}
	tests := []struct {
		name      string
		args      []string
		below     func(dr downloadRepo) string // the directory of the target to list
		wantFiles string
		wantID    func(dr downloadRepo) string
	}{
		{"latest --path picks the latest snapshot holding it, of any host", []string{"latest", "--repo", "shop", "--path", "SRCB"},
			func(dr downloadRepo) string { return dr.srcB }, "dump.sql", func(dr downloadRepo) string { return dr.snapB.ShortID }},
		{"an id prefix, and --path of a directory, kept at its full path", []string{"FIRST", "--repo", "shop", "--path", "SRCA/logs"},
			func(dr downloadRepo) string { return dr.srcA }, "logs/app.log logs/old/app.1.log", func(dr downloadRepo) string { return dr.first.ShortID }},
		{"--include and --exclude", []string{"latest", "--repo", "shop", "--host", "host-0", "--include", "*.log", "--include", "SRCA/bin", "--exclude", "old"},
			func(dr downloadRepo) string { return dr.srcA }, "bin/run.sh logs/app.log", func(dr downloadRepo) string { return dr.latestA.ShortID }},
		{"latest without --host when one host has snapshots", []string{"latest", "--repo", "solo", "--path", "SRCA/secret.key"},
			func(dr downloadRepo) string { return dr.srcA }, "secret.key", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := t.TempDir()
			args := []string{"-n", "prod", "--to", to}
			for _, a := range tt.args {
				a = strings.ReplaceAll(a, "SRCA", dr.srcA)
				a = strings.ReplaceAll(a, "SRCB", dr.srcB)
				a = strings.ReplaceAll(a, "FIRST", dr.first.ShortID[:6])
				args = append(args, a)
			}
			out, errOut, err := dr.dt.run(t, args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			if got := list(filepath.Join(to, tt.below(dr))); got != tt.wantFiles {
				t.Errorf("restored %q, want %q", got, tt.wantFiles)
			}
			if tt.wantID != nil {
				if m := summaryRE.FindStringSubmatch(out); m == nil || m[2] != tt.wantID(dr) {
					t.Errorf("summary %q, want snapshot %s", out, tt.wantID(dr))
				}
			}
		})
	}
}

func TestDownloadDryRunListsAndWritesNothing(t *testing.T) {
	dr := newDownloadRepo(t)
	to := filepath.Join(t.TempDir(), "restore")
	out, _, err := dr.dt.run(t, "latest", "-n", "prod", "--repo", "shop", "--host", "host-0", "--to", to, "--path", dr.srcA+"/logs", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(to, dr.srcA)
	want := strings.Join([]string{
		"create    " + dst + "/logs/",
		"create    " + dst + "/logs/app.log",
		"create    " + dst + "/logs/old/",
		"create    " + dst + "/logs/old/app.1.log",
		"would restore snapshot " + dr.latestA.ShortID + " (host-0 " + dr.srcA + ") to " + to + ": 2 files, 2 dirs, 14 B; skipped 0, kept 0, deleted 0",
	}, "\n") + "\n"
	if out != want {
		t.Errorf("dry run:\n%s\nwant:\n%s", out, want)
	}
	if _, err := os.Lstat(to); err == nil {
		t.Error("a dry run created --to")
	}
}

// recordingProgress records what the engine reports.
type recordingProgress struct {
	mu   sync.Mutex
	done *snapshot.Status
}

func (p *recordingProgress) Report(snapshot.Status) {}
func (p *recordingProgress) Done(s snapshot.Status) { p.mu.Lock(); p.done = &s; p.mu.Unlock() }

func TestDownloadProgressOnlyOnATerminal(t *testing.T) {
	dr := newDownloadRepo(t)
	for _, terminal := range []bool{true, false} {
		rec := &recordingProgress{}
		dt := dr.dt
		dt.terminal, dt.progress = terminal, rec
		if _, _, err := dt.run(t, "latest", "-n", "prod", "--repo", "shop", "--host", "host-0", "--to", t.TempDir()); err != nil {
			t.Fatal(err)
		}
		if terminal && (rec.done == nil || rec.done.BytesDone != 3<<20+17+14+3+8+6+10 || rec.done.BytesDone != rec.done.BytesTotal) {
			t.Errorf("terminal: final progress %+v", rec.done)
		}
		if !terminal && rec.done != nil {
			t.Errorf("no terminal, yet progress was reported: %+v", rec.done)
		}
	}
}

func TestProgressLine(t *testing.T) {
	tests := []struct {
		name string
		s    snapshot.Status
		want string
	}{
		{"start", snapshot.Status{FilesTotal: 10, BytesTotal: 10 << 20},
			"[>                   ]   0%  0 B / 10.000 MiB  0/10 files  0 B/s  ETA --"},
		{"halfway", snapshot.Status{FilesDone: 4, FilesTotal: 10, BytesDone: 5 << 20, BytesTotal: 10 << 20, Elapsed: 5 * time.Second, ScanDone: true},
			"[==========>         ]  50%  5.000 MiB / 10.000 MiB  4/10 files  1.000 MiB/s  ETA 5s"},
		{"done", snapshot.Status{FilesDone: 10, FilesTotal: 10, BytesDone: 10 << 20, BytesTotal: 10 << 20, Elapsed: 4 * time.Second, ScanDone: true},
			"[====================] 100%  10.000 MiB / 10.000 MiB  10/10 files  2.500 MiB/s  ETA 0s"},
		{"nothing to write", snapshot.Status{ScanDone: true},
			"[====================] 100%  0 B / 0 B  0/0 files  0 B/s  ETA 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatProgress(tt.s); got != tt.want {
				t.Errorf("\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	var buf bytes.Buffer
	p := &progressLine{w: &buf}
	p.Done(snapshot.Status{})
	if buf.Len() != 0 {
		t.Errorf("Done without a line drawn printed %q", buf.String())
	}
	p.Report(tests[1].s)
	p.Report(tests[2].s)
	p.Done(tests[2].s)
	if want := "\r" + tests[1].want + "\033[K\r" + tests[2].want + "\033[K\r\033[K"; buf.String() != want {
		t.Errorf("line drawn as %q, want %q", buf.String(), want)
	}
}

func TestDownloadErrors(t *testing.T) {
	dr := newDownloadRepo(t)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown snapshot", []string{"nosuch", "--repo", "shop"},
			[]string{`snapshot "nosuch" not found in repository shop: see kubectl stash snapshots --repo shop`}},
		{"latest of several hosts", []string{"latest", "--repo", "shop"},
			[]string{`"latest" is ambiguous`, "2 hosts (host-0, host-1)", "pass --host"}},
		{"latest of a host without snapshots", []string{"latest", "--repo", "shop", "--host", "host-9"},
			[]string{"repository shop has no snapshot of host host-9", "see kubectl stash snapshots --repo shop"}},
		{"path outside the snapshot", []string{"LATESTA", "--repo", "shop", "--path", "/etc"},
			[]string{"snapshot LATESTA (host-0 SRCA) has no path /etc"}},
		{"path inside the snapshot's directory, not in it", []string{"LATESTA", "--repo", "shop", "--path", "SRCA/nope"},
			[]string{"snapshot LATESTA has no path SRCA/nope"}},
		{"id of another host", []string{"LATESTA", "--repo", "shop", "--host", "host-1"},
			[]string{"snapshot LATESTA (host-0 SRCA) is of host host-0, not host-1"}},
		{"pvc repository", []string{"latest", "--repo", "onpvc"},
			[]string{`repository "onpvc" (pvc://backup-volume/repo) is on PersistentVolumeClaim "backup-volume", which this machine cannot read`, "file://"}},
		{"missing secret", []string{"latest", "--repo", "nope"}, []string{`secret "nope" not found in namespace "prod"`}},
		{"no --repo", []string{"latest"}, []string{"--repo is required"}},
		{"no --to", []string{"latest", "--repo", "shop", "--to", ""}, []string{"--to is required"}},
		{"bad --overwrite", []string{"latest", "--repo", "shop", "--overwrite", "sometimes"}, []string{`--overwrite: invalid overwrite mode "sometimes"`}},
		{"bad --include", []string{"latest", "--repo", "shop", "--include", "[x"}, []string{`invalid --include pattern "[x"`}},
		{"bad --exclude", []string{"latest", "--repo", "shop", "--exclude", `x\`}, []string{`invalid --exclude pattern "x\\"`}},
		{"no snapshot argument", []string{"--repo", "shop"}, []string{"download takes 1 argument(s), SNAPSHOT|latest; got 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := filepath.Join(t.TempDir(), "restore")
			args := []string{"-n", "prod", "--to", to}
			for _, a := range tt.args {
				a = strings.ReplaceAll(a, "LATESTA", dr.latestA.ShortID)
				args = append(args, strings.ReplaceAll(a, "SRCA", dr.srcA))
			}
			_, _, err := dr.dt.run(t, args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				w = strings.ReplaceAll(strings.ReplaceAll(w, "LATESTA", dr.latestA.ShortID), "SRCA", dr.srcA)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.name == "pvc repository" && !errors.Is(err, repository.ErrInCluster) {
				t.Errorf("error %v does not wrap ErrInCluster", err)
			}
			if _, err := os.Lstat(to); err == nil {
				t.Errorf("a failed download left %s", to)
			}
		})
	}
}
