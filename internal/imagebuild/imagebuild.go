// Package imagebuild writes the job image as an OCI image-layout tarball without Docker:
// an empty base plus one layer holding the static stash-job binary, a CA bundle, an
// /etc/passwd with the non-root user 65532 and a world-writable /tmp.
//
// Every input that could vary between builds (file times, owners, order, the config's
// creation time) is fixed, so the same binaries give the same digest on every build.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// UID and GID of the non-root user the image runs as.
const (
	UID = 65532
	GID = 65532
)

// BinaryPath is where the binary lives in the image; it is also the entrypoint.
const BinaryPath = "/usr/local/bin/stash-job"

// epoch is the time every file and the config carry, for reproducibility.
var epoch = time.Unix(0, 0).UTC()

// Platform is one architecture of the image and the binary built for it.
type Platform struct {
	OS, Arch string
	Binary   string // path of the static binary on this machine
}

// Spec says what to build.
type Spec struct {
	Ref       string // full reference, e.g. ghcr.io/kubectl-stash/stash-job:v1.2.3
	Platforms []Platform
	CABundle  string            // path of a PEM CA bundle, copied to /etc/ssl/certs/ca-certificates.crt
	Labels    map[string]string // OCI config labels (version, revision, source, licenses)
}

// Result names what was written.
type Result struct {
	// Digest is the digest of the image index: what a registry would serve for Ref.
	Digest v1.Hash
	// Manifests maps "os/arch" to that platform's manifest digest.
	Manifests map[string]v1.Hash
}

// Write builds the image and writes an OCI image-layout tarball to w.
func Write(w io.Writer, spec Spec) (Result, error) {
	if spec.Ref == "" || len(spec.Platforms) == 0 {
		return Result{}, fmt.Errorf("image spec needs a reference and at least one platform")
	}
	ca, err := os.ReadFile(spec.CABundle)
	if err != nil {
		return Result{}, fmt.Errorf("CA bundle: %w (install ca-certificates, or pass another bundle)", err)
	}
	idx := v1.ImageIndex(empty.Index)
	idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	res := Result{Manifests: map[string]v1.Hash{}}
	var images []v1.Image
	for _, p := range spec.Platforms {
		img, err := platformImage(p, ca, spec.Labels)
		if err != nil {
			return Result{}, err
		}
		d, err := img.Digest()
		if err != nil {
			return Result{}, err
		}
		res.Manifests[p.OS+"/"+p.Arch] = d
		images = append(images, img)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}},
		})
	}
	if res.Digest, err = idx.Digest(); err != nil {
		return Result{}, err
	}
	return res, writeLayout(w, spec.Ref, idx, images)
}

func platformImage(p Platform, ca []byte, labels map[string]string) (v1.Image, error) {
	bin, err := os.ReadFile(p.Binary)
	if err != nil {
		return nil, fmt.Errorf("binary for %s/%s: %w", p.OS, p.Arch, err)
	}
	layerTar, err := rootfs(bin, ca)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "kubectl-stash imagebuild", Comment: "stash-job, CA bundle, passwd, /tmp"}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Arch
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = []string{BinaryPath}
	cf.Config.User = fmt.Sprintf("%d:%d", UID, GID)
	cf.Config.WorkingDir = "/tmp"
	cf.Config.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		"HOME=/tmp",
	}
	cf.Config.Labels = labels
	return mutate.ConfigFile(img, cf)
}

// rootfs is the single layer's tar: directories first, in a fixed order.
func rootfs(bin, ca []byte) ([]byte, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/tmp:/sbin/nologin\n", UID, GID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID)
	type entry struct {
		name string
		mode int64
		body []byte
		dir  bool
	}
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, body: []byte(group)},
		{name: "etc/passwd", mode: 0o644, body: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: ca},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: "usr/local/bin/", mode: 0o755, dir: true},
		{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, body: bin},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: epoch, Format: tar.FormatPAX,
			Uname: "root", Gname: "root"}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeLayout writes an OCI image layout (oci-layout, index.json, blobs/sha256/…) as a tar.
// index.json points at the image index and names it with both the OCI ref-name annotation
// and containerd's image-name annotation, so `ctr images import` registers it under ref.
func writeLayout(w io.Writer, ref string, idx v1.ImageIndex, images []v1.Image) error {
	blobs := map[string][]byte{}
	add := func(d v1.Hash, b []byte) { blobs["blobs/"+d.Algorithm+"/"+d.Hex] = b }

	for _, img := range images {
		m, err := img.RawManifest()
		if err != nil {
			return err
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		add(d, m)
		c, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		cn, err := img.ConfigName()
		if err != nil {
			return err
		}
		add(cn, c)
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			ld, err := l.Digest()
			if err != nil {
				return err
			}
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return err
			}
			add(ld, b)
		}
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	add(d, raw)
	tag := ref
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		tag = ref[i+1:]
	}
	top := map[string]any{
		"schemaVersion": 2,
		"mediaType":     string(types.OCIImageIndex),
		"manifests": []map[string]any{{
			"mediaType": string(types.OCIImageIndex),
			"digest":    d.String(),
			"size":      len(raw),
			"annotations": map[string]string{
				"io.containerd.image.name":          ref,
				"org.opencontainers.image.ref.name": tag,
			},
		}},
	}
	indexJSON, err := json.Marshal(top)
	if err != nil {
		return err
	}

	names := make([]string, 0, len(blobs))
	for n := range blobs {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	file := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX})
	}
	if err := file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := file("index.json", indexJSON); err != nil {
		return err
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	for _, n := range names {
		if err := file(n, blobs[n]); err != nil {
			return err
		}
	}
	return tw.Close()
}
