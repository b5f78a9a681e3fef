package store

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// schemes are the URL schemes a repository can live at, in the order error
// messages list them.
var schemes = []string{"s3", "gs", "azblob", "file", "mem"}

// bucketURL is a repository URL taken apart.
type bucketURL struct {
	open    string // what blob.OpenBucket gets: no key prefix
	prefix  string // key prefix, "" or ending in "/"
	display string // URL without secrets, for messages
	scheme  string
}

// parseURL splits rawURL into the URL of the bucket and the key prefix in it.
//
// For s3, gs and azblob the path after the bucket name is a key prefix. For file it
// is the directory (created when missing). A prefix= parameter, which gocloud
// itself would apply, is taken out and appended to the path prefix instead, so the
// Store applies one prefix in one place.
func parseURL(rawURL string) (bucketURL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the URL, secrets included; give the reason only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bucketURL{}, fmt.Errorf("invalid repository URL: %w", err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	q := u.Query()
	var prefix string
	switch u.Scheme {
	case "s3", "gs", "azblob":
		if u.Host == "" {
			return bucketURL{}, fmt.Errorf("%s: no bucket name (want %s://BUCKET/optional/prefix)", displayURL(u), u.Scheme)
		}
		prefix = u.Path
	case "file":
		if strings.Trim(u.Path, "/") == "" {
			return bucketURL{}, fmt.Errorf("%s: no directory (want file:///absolute/dir)", displayURL(u))
		}
	case "mem":
		if strings.Trim(u.Path, "/") != "" {
			return bucketURL{}, fmt.Errorf("%s: a mem:// URL has no path (use ?prefix=)", displayURL(u))
		}
	default:
		return bucketURL{}, fmt.Errorf("%s: unsupported repository URL scheme %q (supported: %s)",
			displayURL(u), u.Scheme, strings.Join(schemes, ", "))
	}
	if q.Has("key") {
		return bucketURL{}, fmt.Errorf("%s: the key= parameter (a single-object bucket) cannot hold a repository", displayURL(u))
	}
	var parts []string
	for _, p := range []string{prefix, q.Get("prefix")} {
		if p = strings.Trim(p, "/"); p == "" {
			continue
		}
		for _, el := range strings.Split(p, "/") {
			if el == "" || el == "." || el == ".." {
				return bucketURL{}, fmt.Errorf("%s: key prefix %q has an empty, . or .. element", displayURL(u), p)
			}
		}
		parts = append(parts, p)
	}
	prefix = strings.Join(parts, "/")
	q.Del("prefix")

	// The display form: the prefix as a path where the scheme has one, else as ?prefix=.
	d := *u
	dq := url.Values{}
	for k, v := range q {
		dq[k] = v
	}
	if prefix != "" {
		if u.Scheme == "file" || u.Scheme == "mem" {
			dq.Set("prefix", prefix+"/")
		} else {
			d.Path, d.RawPath = "/"+prefix, ""
		}
	}
	d.RawQuery = dq.Encode()

	// The URL to open: bucket only; fileblob creates a missing directory.
	if u.Scheme != "file" && u.Scheme != "mem" {
		u.Path, u.RawPath = "", ""
	}
	if u.Scheme == "file" && q.Get("create_dir") == "" {
		q.Set("create_dir", "true")
	}
	u.RawQuery = q.Encode()
	if prefix != "" {
		prefix += "/"
	}
	return bucketURL{open: urlString(u), prefix: prefix, display: displayURL(&d), scheme: u.Scheme}, nil
}

// secretWords mark query parameters whose value must not be shown: credentials,
// SAS tokens (sig=…), signed-URL signatures, passwords.
var secretWords = []string{"secret", "key", "token", "password", "passwd", "pwd", "sig", "credential", "auth", "session"}

// displayURL returns u without user info and without secret-looking parameters.
// URLs in the remaining parameter values (endpoint=…) lose their user info too.
func displayURL(u *url.URL) string {
	d := *u
	d.User = nil
	q := d.Query()
	for name, vals := range q {
		lower := strings.ToLower(name)
		for _, w := range secretWords {
			if strings.Contains(lower, w) {
				q.Del(name)
				break
			}
		}
		if _, ok := q[name]; !ok {
			continue
		}
		for i, v := range vals {
			if vu, err := url.Parse(v); err == nil && vu.User != nil {
				vu.User = nil
				vals[i] = vu.String()
			}
		}
	}
	// ":" and "/" may stand unescaped in a query; endpoint=http://… reads better so.
	d.RawQuery = strings.NewReplacer("%2F", "/", "%3A", ":").Replace(q.Encode())
	d.Fragment, d.RawFragment = "", ""
	return urlString(&d)
}

// urlString is u.String(), except that a URL without host and path keeps its "//":
// mem:// rather than mem:.
func urlString(u *url.URL) string {
	if u.Host != "" || u.Path != "" || u.Opaque != "" || u.User != nil {
		return u.String()
	}
	s := u.Scheme + "://"
	if u.RawQuery != "" {
		s += "?" + u.RawQuery
	}
	return s
}
