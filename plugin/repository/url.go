package repository

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Schemes are the URL schemes a repository Secret may hold, in the order messages list them.
var Schemes = []string{"s3", "gs", "azblob", "file", "pvc"}

// ValidateURL checks a repository URL without contacting anything: a known scheme, a
// bucket (or container, or claim) where the scheme needs one, a directory for file://,
// and no empty, . or .. elements in the path.
func ValidateURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return errors.New("the repository URL is empty: give s3://BUCKET/prefix, gs://BUCKET/prefix, azblob://CONTAINER/prefix, file:///dir or pvc://CLAIM/dir")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, secrets included
		}
		return fmt.Errorf("invalid repository URL: %w", err)
	}
	show := DisplayURL(raw)
	scheme := strings.ToLower(u.Scheme)
	if u.Opaque != "" {
		return fmt.Errorf("repository URL %s: want %s://…", show, scheme)
	}
	switch scheme {
	case "s3", "gs", "azblob":
		if u.Host == "" {
			what := "BUCKET"
			if scheme == "azblob" {
				what = "CONTAINER"
			}
			return fmt.Errorf("repository URL %s: no bucket name (want %s://%s/optional/prefix)", show, scheme, what)
		}
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return fmt.Errorf("repository URL %s: a file:// URL has no host (want file:///absolute/dir, three slashes)", show)
		}
		if strings.Trim(u.Path, "/") == "" {
			return fmt.Errorf("repository URL %s: no directory (want file:///absolute/dir)", show)
		}
	case "pvc":
		if u.Host == "" {
			return fmt.Errorf("repository URL %s: no claim (want pvc://CLAIM/optional/sub/dir)", show)
		}
		if errs := validation.IsDNS1123Subdomain(u.Host); len(errs) > 0 {
			return fmt.Errorf("repository URL %s: %q is not a PersistentVolumeClaim name: %s", show, u.Host, strings.Join(errs, "; "))
		}
		if u.RawQuery != "" {
			return fmt.Errorf("repository URL %s: a pvc:// URL takes no parameters", show)
		}
	case "":
		return fmt.Errorf("repository URL %s has no scheme: use one of %s (e.g. s3://bucket/prefix)", show, strings.Join(Schemes, ", "))
	default:
		return fmt.Errorf("repository URL %s: unsupported scheme %q: use one of %s", show, scheme, strings.Join(Schemes, ", "))
	}
	for _, p := range []string{u.Path, u.Query().Get("prefix")} {
		if p = strings.Trim(p, "/"); p == "" {
			continue
		}
		for _, el := range strings.Split(p, "/") {
			if el == "" || el == "." || el == ".." {
				return fmt.Errorf("repository URL %s: path %q has an empty, . or .. element", show, p)
			}
		}
	}
	if u.Query().Has("key") {
		return fmt.Errorf("repository URL %s: the key= parameter (a single-object bucket) cannot hold a repository", show)
	}
	return nil
}

// secretWords mark query parameters whose values DisplayURL leaves out.
var secretWords = []string{"secret", "key", "token", "password", "passwd", "pwd", "sig", "credential", "auth", "session"}

// DisplayURL returns raw without user info and without parameters whose names suggest a
// secret (SAS signatures, tokens), so it can be printed.
func DisplayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User = nil
	q := u.Query()
	for name := range q {
		lower := strings.ToLower(name)
		for _, w := range secretWords {
			if strings.Contains(lower, w) {
				q.Del(name)
				break
			}
		}
	}
	// ":" and "/" may stand unescaped in a query; endpoint=http://… reads better so.
	u.RawQuery = strings.NewReplacer("%2F", "/", "%3A", ":").Replace(q.Encode())
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}
