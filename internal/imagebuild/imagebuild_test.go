package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testSpec(t *testing.T) Spec {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "stash-job")
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(bin, []byte("\x7fELF not really"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Spec{
		Ref:       "ghcr.io/kubectl-stash/stash-job:v1.0.0",
		Platforms: []Platform{{OS: "linux", Arch: "amd64", Binary: bin}, {OS: "linux", Arch: "arm64", Binary: bin}},
		CABundle:  ca,
		Labels:    map[string]string{"org.opencontainers.image.version": "v1.0.0"},
	}
}

func TestReproducible(t *testing.T) {
	spec := testSpec(t)
	var a, b bytes.Buffer
	ra, err := Write(&a, spec)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Write(&b, spec)
	if err != nil {
		t.Fatal(err)
	}
	if ra.Digest != rb.Digest || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("two builds differ: %s vs %s", ra.Digest, rb.Digest)
	}
	if len(ra.Manifests) != 2 {
		t.Errorf("manifests = %v, want linux/amd64 and linux/arm64", ra.Manifests)
	}
}

func TestLayoutAndRootfs(t *testing.T) {
	var out bytes.Buffer
	res, err := Write(&out, testSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	files := untar(t, out.Bytes())
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"].body, &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Digest != res.Digest.String() ||
		index.Manifests[0].Annotations["io.containerd.image.name"] != "ghcr.io/kubectl-stash/stash-job:v1.0.0" ||
		index.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "v1.0.0" {
		t.Fatalf("index.json = %s", files["index.json"].body)
	}
	if _, ok := files["oci-layout"]; !ok {
		t.Fatal("no oci-layout file")
	}

	// Find the layer of the amd64 manifest and check its files.
	var manifest struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	d := res.Manifests["linux/amd64"]
	if err := json.Unmarshal(files["blobs/sha256/"+d.Hex].body, &manifest); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Architecture string
		Config       struct {
			User       string
			Entrypoint []string
		}
	}
	if err := json.Unmarshal(files["blobs/sha256/"+strings.TrimPrefix(manifest.Config.Digest, "sha256:")].body, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || cfg.Architecture != "amd64" || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != BinaryPath {
		t.Errorf("config = %+v", cfg)
	}
	gz, err := gzip.NewReader(bytes.NewReader(files["blobs/sha256/"+strings.TrimPrefix(manifest.Layers[0].Digest, "sha256:")].body))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	root := untar(t, layer)
	if root["tmp/"].mode != 0o1777 {
		t.Errorf("/tmp mode = %o, want 1777", root["tmp/"].mode)
	}
	if !strings.Contains(string(root["etc/passwd"].body), ":65532:65532:") {
		t.Errorf("/etc/passwd has no user 65532:\n%s", root["etc/passwd"].body)
	}
	if root["usr/local/bin/stash-job"].mode != 0o755 || root["etc/ssl/certs/ca-certificates.crt"].body == nil {
		t.Errorf("binary or CA bundle missing: %v", root)
	}
}

func TestMissingCABundleSaysSo(t *testing.T) {
	spec := testSpec(t)
	spec.CABundle = "/nonexistent/ca.crt"
	_, err := Write(io.Discard, spec)
	if err == nil || !strings.Contains(err.Error(), "CA bundle") {
		t.Fatalf("err = %v", err)
	}
}

type tarFile struct {
	mode int64
	body []byte
}

func untar(t *testing.T, b []byte) map[string]tarFile {
	t.Helper()
	out := map[string]tarFile{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = tarFile{mode: h.Mode, body: body}
	}
}
