package store

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	const ep = "endpoint=http://127.0.0.1:7070&region=us-east-1&use_path_style=true"
	for _, tc := range []struct {
		name                  string
		raw                   string
		open, prefix, display string
	}{
		{"s3 bucket", "s3://b?" + ep,
			"s3://b?endpoint=http%3A%2F%2F127.0.0.1%3A7070&region=us-east-1&use_path_style=true", "", "s3://b?" + ep},
		{"s3 path prefix", "s3://b/a/b/?" + ep,
			"s3://b?endpoint=http%3A%2F%2F127.0.0.1%3A7070&region=us-east-1&use_path_style=true", "a/b/", "s3://b/a/b?" + ep},
		{"s3 prefix parameter", "s3://b?prefix=x/", "s3://b", "x/", "s3://b/x"},
		{"path and prefix parameter", "s3://b/a?prefix=b", "s3://b", "a/b/", "s3://b/a/b"},
		{"gs", "gs://bucket", "gs://bucket", "", "gs://bucket"},
		{"gs prefix", "gs://bucket/repo", "gs://bucket", "repo/", "gs://bucket/repo"},
		{"azblob prefix", "azblob://container/team/repo/", "azblob://container", "team/repo/", "azblob://container/team/repo"},
		{"upper-case scheme", "S3://b/p", "s3://b", "p/", "s3://b/p"},
		{"file", "file:///srv/backups", "file:///srv/backups?create_dir=true", "", "file:///srv/backups"},
		{"file create_dir given", "file:///srv/backups?create_dir=1", "file:///srv/backups?create_dir=1", "", "file:///srv/backups?create_dir=1"},
		{"file prefix", "file:///srv/backups?prefix=a", "file:///srv/backups?create_dir=true", "a/", "file:///srv/backups?prefix=a/"},
		{"mem", "mem://", "mem://", "", "mem://"},
		{"mem prefix", "mem://?prefix=p/q/", "mem://", "p/q/", "mem://?prefix=p/q/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseURL(tc.raw)
			if err != nil {
				t.Fatalf("parseURL(%q): %v", tc.raw, err)
			}
			if got.open != tc.open || got.prefix != tc.prefix || got.display != tc.display {
				t.Errorf("parseURL(%q) =\n  open %q prefix %q display %q\nwant\n  open %q prefix %q display %q",
					tc.raw, got.open, got.prefix, got.display, tc.open, tc.prefix, tc.display)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, tc := range []struct{ name, raw, want string }{
		{"empty prefix element", "s3://b/a//c", "empty"},
		{"dot", "gs://b/./c", "element"},
		{"dot-dot in parameter", "azblob://c?prefix=../x", "element"},
		{"key parameter", "s3://b?key=k", "key="},
		{"http", "https://example.com/b", "supported: s3, gs, azblob, file, mem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseURL(tc.raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseURL(%q) = %v, want an error containing %q", tc.raw, err, tc.want)
			}
		})
	}
}

// TestDisplayURL: user info and every parameter that may carry a secret are gone,
// from the URL and from URLs in parameter values; the rest stays.
func TestDisplayURL(t *testing.T) {
	for _, tc := range []struct{ name, raw, want string }{
		{"user info", "s3://AKIAEXAMPLE:hunter2@bucket/p", "s3://bucket/p"},
		{"aws secret parameters", "s3://b?access_key_id=A&secret_access_key=S&session_token=T&region=r", "s3://b?region=r"},
		{"sas token", "azblob://c?sv=2022-11-02&ss=b&sig=abc%3D&se=2030", "azblob://c?se=2030&ss=b&sv=2022-11-02"},
		{"signed url", "gs://b?X-Goog-Signature=x&X-Goog-Credential=y&GoogleAccessId=z", "gs://b?GoogleAccessId=z"},
		{"password", "s3://b?Password=1&passwd=2&pwd=3&auth=4&apikey=5", "s3://b"},
		{"endpoint user info", "s3://b?endpoint=https://u:p@minio.local:9000", "s3://b?endpoint=https://minio.local:9000"},
		{"fragment", "s3://b#secret", "s3://b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bu, err := parseURL(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if bu.display != tc.want {
				t.Errorf("display of %q = %q, want %q", tc.raw, bu.display, tc.want)
			}
		})
	}
}
