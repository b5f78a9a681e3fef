// mkimage writes the stash-job OCI image tarball (used by `make image` and `make dist`).
//
//	mkimage -ref REF -out FILE.tar [-ca BUNDLE] [-label K=V]... OS/ARCH=BINARY...
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/kubectl-stash/kubectl-stash/internal/imagebuild"
)

type kvs map[string]string

func (m kvs) String() string { return fmt.Sprint(map[string]string(m)) }
func (m kvs) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	m[k] = v
	return nil
}

func main() {
	ref := flag.String("ref", "", "image reference (required)")
	out := flag.String("out", "", "output tarball (required)")
	ca := flag.String("ca", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle to include")
	labels := kvs{}
	flag.Var(labels, "label", "config label KEY=VALUE (repeatable)")
	flag.Parse()
	if *ref == "" || *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: mkimage -ref REF -out FILE.tar [-ca BUNDLE] [-label K=V]... OS/ARCH=BINARY...")
		os.Exit(2)
	}
	spec := imagebuild.Spec{Ref: *ref, CABundle: *ca, Labels: labels}
	for _, a := range flag.Args() {
		plat, bin, ok := strings.Cut(a, "=")
		osName, arch, ok2 := strings.Cut(plat, "/")
		if !ok || !ok2 {
			fmt.Fprintf(os.Stderr, "mkimage: %q: want OS/ARCH=BINARY\n", a)
			os.Exit(2)
		}
		spec.Platforms = append(spec.Platforms, imagebuild.Platform{OS: osName, Arch: arch, Binary: bin})
	}
	tmp := *out + ".tmp"
	f, err := os.Create(tmp)
	if err == nil {
		var res imagebuild.Result
		res, err = imagebuild.Write(f, spec)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, *out)
		}
		if err == nil {
			fmt.Printf("%s %s\n", *out, res.Digest)
			return
		}
	}
	os.Remove(tmp)
	fmt.Fprintln(os.Stderr, "mkimage:", err)
	os.Exit(1)
}
