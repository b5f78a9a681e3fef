package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testMtime = time.Unix(1795308189, 0)

func testEntries() []Entry {
	return []Entry{
		{Name: "kubectl-stash", Mode: 0o755, Body: []byte("binary")},
		{Name: "LICENSE", Mode: 0o644, Body: []byte("Apache License")},
		{Name: "kubectl_complete-stash", Mode: 0o755, Body: []byte("#!/bin/sh\n")},
		{Name: "README.md", Mode: 0o644, Body: []byte("# kubectl-stash\n")},
	}
}

func TestPlatformNames(t *testing.T) {
	tests := []struct {
		name, platform, archive, bin, completion string
	}{
		{"linux", "linux/amd64", "kubectl-stash_v1.2.3_linux_amd64.tar.gz", "kubectl-stash", "kubectl_complete-stash"},
		{"darwin arm", "darwin/arm64", "kubectl-stash_v1.2.3_darwin_arm64.tar.gz", "kubectl-stash", "kubectl_complete-stash"},
		{"windows", "windows/amd64", "kubectl-stash_v1.2.3_windows_amd64.zip", "kubectl-stash.exe", "kubectl_complete-stash.cmd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePlatform(tt.platform)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Archive("v1.2.3"); got != tt.archive {
				t.Errorf("Archive = %q, want %q", got, tt.archive)
			}
			if p.Bin() != tt.bin || p.Completion() != tt.completion {
				t.Errorf("Bin, Completion = %q, %q; want %q, %q", p.Bin(), p.Completion(), tt.bin, tt.completion)
			}
		})
	}
	for _, bad := range []string{"linux", "linux/", "/amd64", "linux/amd64/v2"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) accepted it", bad)
		}
	}
}

func TestWriteArchiveIsReproducible(t *testing.T) {
	for _, zipped := range []bool{false, true} {
		var a, b bytes.Buffer
		if err := WriteArchive(&a, testEntries(), testMtime, zipped); err != nil {
			t.Fatal(err)
		}
		rev := testEntries()
		for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
			rev[i], rev[j] = rev[j], rev[i]
		}
		// the same entries in another order, and the same time in another zone
		if err := WriteArchive(&b, rev, testMtime.In(time.FixedZone("X", 5*3600)), zipped); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("zipped=%v: two writes of the same entries differ", zipped)
		}
	}
}

func TestTarGzHeadersAreFixed(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteArchive(&buf, testEntries(), testMtime, false); err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if gz.Name != "" || !gz.ModTime.IsZero() {
		t.Errorf("gzip header carries name %q, time %v; want neither", gz.Name, gz.ModTime)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d (%q:%q), want 0:0 with no names", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(testMtime) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, testMtime)
		}
		wantMode := int64(0o644)
		if h.Name == "kubectl-stash" || h.Name == "kubectl_complete-stash" {
			wantMode = 0o755
		}
		if h.Mode != wantMode {
			t.Errorf("%s: mode %o, want %o", h.Name, h.Mode, wantMode)
		}
	}
	if got, want := strings.Join(names, " "), "LICENSE README.md kubectl-stash kubectl_complete-stash"; got != want {
		t.Errorf("entries %q, want %q (name order)", got, want)
	}
}

func TestZipHeadersAreFixed(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteArchive(&buf, testEntries(), testMtime, true); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if !f.Modified.Equal(testMtime) {
			t.Errorf("%s: modified %v, want %v", f.Name, f.Modified, testMtime)
		}
		if f.Name == "kubectl-stash" && f.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want 0755", f.Name, f.Mode())
		}
	}
}

// writeTestArchive writes the archive of p into dir with the given entries.
func writeTestArchive(t *testing.T, dir, version string, p Platform, entries []Entry) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteArchive(&buf, entries, testMtime, p.windows()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, p.Archive(version))
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:])
}

func platformEntries(p Platform) []Entry {
	return []Entry{{Name: p.Bin(), Mode: 0o755, Body: []byte(p.String())}, {Name: p.Completion(), Mode: 0o755},
		{Name: "LICENSE", Mode: 0o644}, {Name: "README.md", Mode: 0o644}}
}

func TestRenderManifest(t *testing.T) {
	tmpl, err := os.ReadFile("../../krew/stash.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	linux, windows := Platform{"linux", "amd64"}, Platform{"windows", "amd64"}
	linuxSum := writeTestArchive(t, dir, "v1.2.3", linux, platformEntries(linux))
	windowsSum := writeTestArchive(t, dir, "v1.2.3", windows, platformEntries(windows))

	out, err := RenderManifest(tmpl, "v1.2.3", dir, "https://github.com/kubectl-stash/kubectl-stash/releases/download/v1.2.3", []Platform{linux, windows})
	if err != nil {
		t.Fatal(err)
	}
	m := string(out)
	for _, want := range []string{
		"  name: stash\n",
		"  version: v1.2.3\n",
		"  homepage: https://github.com/kubectl-stash/kubectl-stash\n",
		"    uri: https://github.com/kubectl-stash/kubectl-stash/releases/download/v1.2.3/kubectl-stash_v1.2.3_linux_amd64.tar.gz\n    sha256: " + linuxSum + "\n    bin: kubectl-stash\n",
		"    uri: https://github.com/kubectl-stash/kubectl-stash/releases/download/v1.2.3/kubectl-stash_v1.2.3_windows_amd64.zip\n    sha256: " + windowsSum + "\n    bin: kubectl-stash.exe\n",
		"    - from: kubectl_complete-stash.cmd\n      to: .\n",
		"store/stash/v1.2.3/kubectl_complete-stash",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("manifest lacks %q:\n%s", want, m)
		}
	}
	if strings.Contains(m, "{{") || strings.Contains(m, "\t") {
		t.Errorf("manifest has template left-overs or tabs:\n%s", m)
	}
	if n := strings.Count(m, "shortDescription:"); n != 1 {
		t.Errorf("%d shortDescriptions", n)
	}
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(line, "  shortDescription: ") && len(line) > 2+len("shortDescription: ")+60 {
			t.Errorf("shortDescription is long for krew-index: %q", line)
		}
	}

	// a test rendering points the uris somewhere else
	out, err = RenderManifest(tmpl, "v1.2.3", dir, "http://127.0.0.1:8080/", []Platform{linux})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "uri: http://127.0.0.1:8080/kubectl-stash_v1.2.3_linux_amd64.tar.gz\n") {
		t.Errorf("release URL not used:\n%s", out)
	}
}

func TestRenderManifestRefuses(t *testing.T) {
	tmpl, err := os.ReadFile("../../krew/stash.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	linux := Platform{"linux", "amd64"}
	writeTestArchive(t, dir, "v1.2.3", linux, platformEntries(linux)[:1]) // the binary alone
	tests := []struct {
		name, version string
		platforms     []Platform
		want          string
	}{
		{"no v", "1.2.3", []Platform{linux}, "with its v"},
		{"archive missing", "v1.2.3", []Platform{{"darwin", "arm64"}}, "make dist writes it"},
		{"completion missing", "v1.2.3", []Platform{linux}, "has no kubectl_complete-stash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := RenderManifest(tmpl, tt.version, dir, "http://127.0.0.1", tt.platforms)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestChecksums(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"b.zip": "b", "a.tar.gz": "a"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Checksums([]string{filepath.Join(dir, "b.zip"), filepath.Join(dir, "a.tar.gz")})
	if err != nil {
		t.Fatal(err)
	}
	want := "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb  a.tar.gz\n" +
		"3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d  b.zip\n"
	if string(got) != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}
