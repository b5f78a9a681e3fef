package repository

import (
	"strings"
	"testing"
)

func TestValidateURL(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr string // "" = valid
	}{
		{"s3 with prefix and parameters", "s3://my-bucket/shop/db?region=eu-west-1&endpoint=http://127.0.0.1:9000&use_path_style=true", ""},
		{"s3 bucket only", "s3://my-bucket", ""},
		{"gs", "gs://my-bucket/prefix", ""},
		{"azblob", "azblob://container/prefix", ""},
		{"file", "file:///srv/backups/repo", ""},
		{"file on localhost", "file://localhost/srv/backups", ""},
		{"pvc with sub dir", "pvc://backup-volume/repo/shop", ""},
		{"pvc claim only", "pvc://backup-volume", ""},
		{"upper-case scheme", "S3://my-bucket/x", ""},
		{"empty", "", "the repository URL is empty"},
		{"no scheme", "my-bucket/prefix", "has no scheme: use one of s3, gs, azblob, file, pvc"},
		{"unknown scheme", "ftp://host/dir", `unsupported scheme "ftp": use one of s3, gs, azblob, file, pvc`},
		{"mem is not persistent", "mem://", `unsupported scheme "mem"`},
		{"s3 without bucket", "s3:///prefix", "no bucket name (want s3://BUCKET/optional/prefix)"},
		{"azblob without container", "azblob://", "want azblob://CONTAINER/optional/prefix"},
		{"file with a host", "file://srv/backups", "a file:// URL has no host"},
		{"file root", "file:///", "no directory"},
		{"pvc without claim", "pvc:///dir", "no claim (want pvc://CLAIM/optional/sub/dir)"},
		{"pvc invalid claim", "pvc://Backup_Volume/dir", `"Backup_Volume" is not a PersistentVolumeClaim name`},
		{"pvc with parameters", "pvc://claim/dir?x=1", "takes no parameters"},
		{"dot-dot element", "s3://bucket/a/../b", `path "a/../b" has an empty, . or .. element`},
		{"empty element", "gs://bucket/a//b", "has an empty, . or .. element"},
		{"bad prefix parameter", "s3://bucket?prefix=a/../b", "has an empty, . or .. element"},
		{"single-object bucket", "s3://bucket/x?key=obj", "the key= parameter"},
		{"opaque", "s3:bucket", "want s3://"},
		{"unparsable", "s3://bucket/%zz", "invalid repository URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateURL(tt.url)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateURL(%q) = %v, want nil", tt.url, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateURL(%q) = %v, want an error containing %q", tt.url, err, tt.wantErr)
			}
		})
	}
}

func TestDisplayURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "s3://bucket/prefix", "s3://bucket/prefix"},
		{"endpoint kept readable", "s3://bucket/p?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=us-east-1", "s3://bucket/p?endpoint=http://127.0.0.1:9000&region=us-east-1"},
		{"user info dropped", "s3://user:pass@bucket/p", "s3://bucket/p"},
		{"SAS signature dropped", "azblob://c/p?sig=abc&sv=2020", "azblob://c/p?sv=2020"},
		{"token dropped", "gs://b/p?access_token=xyz", "gs://b/p"},
		{"pvc", "pvc://claim/dir", "pvc://claim/dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DisplayURL(tt.in); got != tt.want {
				t.Errorf("DisplayURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
