package store

import (
	"os"
	"testing"
)

func TestInlineGCPCredentials(t *testing.T) {
	const key = `{"type":"service_account","project_id":"p"}`
	tests := []struct {
		name     string
		value    *string
		wantFile bool
	}{
		{"key inline", ptrTo(key), true},
		{"key inline with leading space", ptrTo("  \n" + key), true},
		{"a path", ptrTo("/var/run/secrets/gcp/key.json"), false},
		{"unset", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.value != nil {
				t.Setenv(EnvGCPCredentials, *tt.value)
			} else {
				t.Setenv(EnvGCPCredentials, "")
				os.Unsetenv(EnvGCPCredentials)
			}
			cleanup, err := InlineGCPCredentials()
			if err != nil {
				t.Fatal(err)
			}
			got := os.Getenv(EnvGCPCredentials)
			if !tt.wantFile {
				if tt.value != nil && got != *tt.value {
					t.Errorf("value changed to %q", got)
				}
				cleanup()
				return
			}
			b, err := os.ReadFile(got)
			if err != nil || string(b) != *tt.value {
				t.Fatalf("file %q holds %q (%v)", got, b, err)
			}
			if fi, _ := os.Stat(got); fi.Mode().Perm() != 0o600 {
				t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
			}
			cleanup()
			if _, err := os.Stat(got); !os.IsNotExist(err) {
				t.Errorf("cleanup left %s", got)
			}
			if os.Getenv(EnvGCPCredentials) != *tt.value {
				t.Errorf("cleanup did not restore the variable")
			}
		})
	}
}

func ptrTo(s string) *string { return &s }
