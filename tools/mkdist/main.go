// mkdist writes the release files of kubectl-stash (`make dist`, `make krew-manifest`) so
// that the same commit always gives the same bytes: archive entries in name order, owned
// by 0:0, all with the commit's time, gzip without a name or time; and it serves a
// directory on 127.0.0.1 for the Krew tests.
//
//	mkdist archive   -dist DIR -version V -platform OS/ARCH -mtime UNIX -binary F -completion-dir D -license F -readme F
//	mkdist checksums -out FILE FILE...
//	mkdist manifest  -template T -out FILE -version V -dist DIR -release-url URL -platforms "OS/ARCH ..."
//	mkdist serve     -dir DIR -url-file FILE
//
// Every name an archive or the manifest uses (kubectl-stash_v1.2.3_linux_amd64.tar.gz,
// kubectl-stash.exe, kubectl_complete-stash.cmd) is decided here, in one place.
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/template"
	"time"
)

const usage = `usage:
  mkdist archive   -dist DIR -version V -platform OS/ARCH -mtime UNIX -binary F -completion-dir D -license F -readme F
  mkdist checksums -out FILE FILE...
  mkdist manifest  -template T -out FILE -version V -dist DIR -release-url URL -platforms "OS/ARCH ..."
  mkdist serve     -dir DIR -url-file FILE`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "archive":
		err = runArchive(args)
	case "checksums":
		err = runChecksums(args)
	case "manifest":
		err = runManifest(args)
	case "serve":
		err = runServe(args)
	default:
		fmt.Fprintf(os.Stderr, "mkdist: unknown command %q\n%s\n", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdist:", err)
		os.Exit(1)
	}
}

// Platform is one os/arch the plugin is released for.
type Platform struct{ OS, Arch string }

// ParsePlatform reads "linux/amd64".
func ParsePlatform(s string) (Platform, error) {
	o, a, ok := strings.Cut(s, "/")
	if !ok || o == "" || a == "" || strings.Contains(a, "/") {
		return Platform{}, fmt.Errorf("platform %q: want OS/ARCH, like linux/amd64", s)
	}
	return Platform{OS: o, Arch: a}, nil
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

func (p Platform) windows() bool { return p.OS == "windows" }

// Archive is the file name of the plugin's archive for this platform: a zip for Windows,
// a tar.gz elsewhere, as Krew users expect.
func (p Platform) Archive(version string) string {
	ext := "tar.gz"
	if p.windows() {
		ext = "zip"
	}
	return fmt.Sprintf("kubectl-stash_%s_%s_%s.%s", version, p.OS, p.Arch, ext)
}

// Bin is the plugin's executable in the archive.
func (p Platform) Bin() string {
	if p.windows() {
		return "kubectl-stash.exe"
	}
	return "kubectl-stash"
}

// Completion is the script kubectl runs to complete `kubectl stash …`: kubectl looks it up
// on PATH as kubectl_complete-stash, which on Windows means a file with a PATHEXT suffix.
func (p Platform) Completion() string {
	if p.windows() {
		return "kubectl_complete-stash.cmd"
	}
	return "kubectl_complete-stash"
}

// Entry is one file of an archive.
type Entry struct {
	Name string
	Mode int64 // 0o755 or 0o644
	Body []byte
}

// WriteArchive writes entries as a tar.gz, or a zip when zipped, in name order, every entry
// with mtime and owner 0:0. The same entries and mtime always give the same bytes.
func WriteArchive(w io.Writer, entries []Entry, mtime time.Time, zipped bool) error {
	sorted := append([]Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	mtime = mtime.UTC().Truncate(time.Second)
	if zipped {
		zw := zip.NewWriter(w)
		zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
			return flate.NewWriter(out, flate.DefaultCompression)
		})
		for _, e := range sorted {
			h := &zip.FileHeader{Name: e.Name, Method: zip.Deflate, Modified: mtime}
			h.SetMode(os.FileMode(e.Mode))
			f, err := zw.CreateHeader(h)
			if err != nil {
				return err
			}
			if _, err := f.Write(e.Body); err != nil {
				return err
			}
		}
		return zw.Close()
	}
	gz, err := gzip.NewWriterLevel(w, gzip.DefaultCompression) // no name, no time: the header is fixed
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, e := range sorted {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: e.Name, Mode: e.Mode, Size: int64(len(e.Body)),
			ModTime: mtime, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(e.Body); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// ArchiveNames lists the entry names of a tar.gz or zip archive.
func ArchiveNames(path string) ([]string, error) {
	var names []string
	if strings.HasSuffix(path, ".zip") {
		zr, err := zip.OpenReader(path)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		return names, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		names = append(names, h.Name)
	}
}

func runArchive(args []string) error {
	fs := flag.NewFlagSet("archive", flag.ContinueOnError)
	dist := fs.String("dist", "", "directory the archive is written to")
	version := fs.String("version", "", "release version, with its v")
	platform := fs.String("platform", "", "OS/ARCH the binary is built for")
	mtime := fs.Int64("mtime", 0, "time of every entry, in Unix seconds (the commit's time)")
	binary := fs.String("binary", "", "the kubectl-stash binary built for the platform")
	completionDir := fs.String("completion-dir", "", "directory holding kubectl_complete-stash and kubectl_complete-stash.cmd")
	license := fs.String("license", "", "LICENSE file")
	readme := fs.String("readme", "", "README file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for name, v := range map[string]string{"dist": *dist, "version": *version, "platform": *platform, "binary": *binary,
		"completion-dir": *completionDir, "license": *license, "readme": *readme} {
		if v == "" {
			return fmt.Errorf("archive: -%s is required", name)
		}
	}
	p, err := ParsePlatform(*platform)
	if err != nil {
		return err
	}
	var entries []Entry
	for _, f := range []struct {
		name, src string
		mode      int64
	}{
		{p.Bin(), *binary, 0o755},
		{p.Completion(), filepath.Join(*completionDir, p.Completion()), 0o755},
		{"LICENSE", *license, 0o644},
		{"README.md", *readme, 0o644},
	} {
		b, err := os.ReadFile(f.src)
		if err != nil {
			return err
		}
		entries = append(entries, Entry{Name: f.name, Mode: f.mode, Body: b})
	}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, entries, time.Unix(*mtime, 0), p.windows()); err != nil {
		return err
	}
	out := filepath.Join(*dist, p.Archive(*version))
	if err := writeFileAtomic(out, buf.Bytes()); err != nil {
		return err
	}
	fmt.Println(out)
	return nil
}

// Checksums renders files as sha256sum does ("HEX  NAME" per line), by base name, sorted.
func Checksums(files []string) ([]byte, error) {
	type line struct{ name, sum string }
	var lines []line
	for _, f := range files {
		sum, err := fileSHA256(f)
		if err != nil {
			return nil, err
		}
		lines = append(lines, line{filepath.Base(f), sum})
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].name < lines[j].name })
	var b bytes.Buffer
	for _, l := range lines {
		fmt.Fprintf(&b, "%s  %s\n", l.sum, l.name)
	}
	return b.Bytes(), nil
}

func runChecksums(args []string) error {
	fs := flag.NewFlagSet("checksums", flag.ContinueOnError)
	out := fs.String("out", "", "checksums file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return fmt.Errorf("checksums: want -out FILE and the files to sum")
	}
	b, err := Checksums(fs.Args())
	if err != nil {
		return err
	}
	return writeFileAtomic(*out, b)
}

// ManifestData is what krew/stash.yaml.tmpl is rendered with.
type ManifestData struct {
	TagName   string // the release tag and plugin version: v1.2.3
	Version   string // the same without its v: 1.2.3
	Platforms []ManifestPlatform
}

// ManifestPlatform is one spec.platforms entry.
type ManifestPlatform struct {
	OS, Arch   string
	Archive    string // file name of the archive
	URI        string // where Krew downloads it
	SHA256     string // of the archive
	Bin        string // the executable Krew links as kubectl-stash
	Completion string // the completion script beside it
}

// RenderManifest fills in the template with the archives found in dist, checking that
// each holds the files the manifest names.
func RenderManifest(tmpl []byte, version, dist, releaseURL string, platforms []Platform) ([]byte, error) {
	if !strings.HasPrefix(version, "v") {
		return nil, fmt.Errorf("version %q: Krew wants a semantic version with its v, like v1.2.3", version)
	}
	d := ManifestData{TagName: version, Version: strings.TrimPrefix(version, "v")}
	for _, p := range platforms {
		archive := filepath.Join(dist, p.Archive(version))
		sum, err := fileSHA256(archive)
		if err != nil {
			return nil, fmt.Errorf("%w (make dist writes it)", err)
		}
		names, err := ArchiveNames(archive)
		if err != nil {
			return nil, err
		}
		for _, want := range []string{p.Bin(), p.Completion(), "LICENSE"} {
			if !slices.Contains(names, want) {
				return nil, fmt.Errorf("%s has no %s (it holds %s)", archive, want, strings.Join(names, ", "))
			}
		}
		d.Platforms = append(d.Platforms, ManifestPlatform{OS: p.OS, Arch: p.Arch, Archive: p.Archive(version),
			URI: strings.TrimSuffix(releaseURL, "/") + "/" + p.Archive(version), SHA256: sum, Bin: p.Bin(), Completion: p.Completion()})
	}
	t, err := template.New("manifest").Option("missingkey=error").Parse(string(tmpl))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func runManifest(args []string) error {
	fs := flag.NewFlagSet("manifest", flag.ContinueOnError)
	tmplPath := fs.String("template", "", "manifest template (krew/stash.yaml.tmpl)")
	out := fs.String("out", "", "manifest to write (its file name must be the plugin's name: stash.yaml)")
	version := fs.String("version", "", "release version, with its v")
	dist := fs.String("dist", "", "directory holding the archives")
	releaseURL := fs.String("release-url", "", "URL the archives are downloaded from (the release's download directory)")
	platforms := fs.String("platforms", "", "space-separated OS/ARCH list")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tmplPath == "" || *out == "" || *version == "" || *dist == "" || *releaseURL == "" || *platforms == "" {
		return fmt.Errorf("manifest: -template, -out, -version, -dist, -release-url and -platforms are required")
	}
	var ps []Platform
	for _, s := range strings.Fields(*platforms) {
		p, err := ParsePlatform(s)
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	tmpl, err := os.ReadFile(*tmplPath)
	if err != nil {
		return err
	}
	b, err := RenderManifest(tmpl, *version, *dist, *releaseURL, ps)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(*out, b); err != nil {
		return err
	}
	fmt.Println(*out)
	return nil
}

// runServe serves a directory over HTTP on 127.0.0.1 (a free port) until it is stopped, and
// writes its URL to a file once it listens: the Krew tests download archives from it.
func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory to serve")
	urlFile := fs.String("url-file", "", "file to write http://127.0.0.1:PORT to once listening")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *urlFile == "" {
		return fmt.Errorf("serve: -dir and -url-file are required")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: logRequests(http.FileServer(http.Dir(*dir))), ReadHeaderTimeout: 10 * time.Second}
	if err := writeFileAtomic(*urlFile, []byte("http://"+ln.Addr().String()+"\n")); err != nil {
		return err
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() { <-stop; srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(os.Stderr, "serve: %s %s\n", r.Method, r.URL.Path)
		h.ServeHTTP(w, r)
	})
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
