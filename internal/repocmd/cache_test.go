package repocmd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "1", want: 1},
		{in: "268435456", want: 256 << 20},
		{in: "512Ki", want: 512 << 10},
		{in: "512Mi", want: 512 << 20},
		{in: "512MiB", want: 512 << 20},
		{in: "2Gi", want: 2 << 30},
		{in: "1Ti", want: 1 << 40},
		{in: "500M", want: 500e6},
		{in: "500MB", want: 500e6},
		{in: "1G", want: 1e9},
		{in: "10k", want: 10e3},
		{in: "10K", want: 10e3},
		{in: " 64Mi ", want: 64 << 20},
		{in: "", wantErr: true},
		{in: "0", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "1.5Gi", wantErr: true},
		{in: "Mi", wantErr: true},
		{in: "B", wantErr: true},
		{in: "12Xi", wantErr: true},
		{in: "9223372036854775807Ki", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCacheOptionsFromEnv(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantDir  string
		wantSize int64
		wantErr  string
	}{
		{name: "unset"},
		{name: "directory only", env: map[string]string{EnvCacheDir: "/cache"}, wantDir: "/cache"},
		{name: "both", env: map[string]string{EnvCacheDir: "/cache", EnvCacheSize: "134217728"}, wantDir: "/cache", wantSize: 128 << 20},
		{name: "suffix", env: map[string]string{EnvCacheDir: "/cache", EnvCacheSize: "1Gi"}, wantDir: "/cache", wantSize: 1 << 30},
		{name: "bad size", env: map[string]string{EnvCacheDir: "/cache", EnvCacheSize: "lots"}, wantDir: "/cache", wantErr: EnvCacheSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, size, err := CacheOptionsFromEnv(func(k string) string { return tt.env[k] })
			if dir != tt.wantDir || size != tt.wantSize {
				t.Errorf("got %q, %d; want %q, %d", dir, size, tt.wantDir, tt.wantSize)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestHostRepoOptions(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    repo.Options
		wantLog string
	}{
		{name: "no cache", want: repo.Options{}},
		{name: "cache", env: map[string]string{EnvCacheDir: "/cache", EnvCacheSize: "1000000"},
			want: repo.Options{CacheDir: "/cache", CacheSize: 1000000}},
		{name: "bad size: no cache, said once", env: map[string]string{EnvCacheDir: "/cache", EnvCacheSize: "-5"},
			want: repo.Options{}, wantLog: "no repository cache: STASH_CACHE_SIZE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			got := HostRepoOptions(func(k string) string { return tt.env[k] }, &log)
			if got != tt.want {
				t.Errorf("options %+v, want %+v", got, tt.want)
			}
			if tt.wantLog == "" && log.Len() > 0 || !strings.Contains(log.String(), tt.wantLog) {
				t.Errorf("log %q, want %q", log.String(), tt.wantLog)
			}
		})
	}
}
