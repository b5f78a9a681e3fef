package store

import (
	"fmt"
	"os"
	"strings"
)

// EnvGCPCredentials is where the GCS driver looks for a service account key: the path of a
// JSON file.
const EnvGCPCredentials = "GOOGLE_APPLICATION_CREDENTIALS"

// InlineGCPCredentials lets GOOGLE_APPLICATION_CREDENTIALS hold the key itself (JSON), as a
// repository Secret passed to a pod as environment variables does: the key is written to a
// private temporary file and the variable pointed at it. A path, or no variable, is left
// alone. cleanup removes the file and puts the variable back.
func InlineGCPCredentials() (cleanup func(), err error) {
	v, ok := os.LookupEnv(EnvGCPCredentials)
	if !ok || !strings.HasPrefix(strings.TrimSpace(v), "{") {
		return func() {}, nil
	}
	f, err := os.CreateTemp("", "stash-gcp-*.json") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("%s holds a key: write it to a file: %w", EnvGCPCredentials, err)
	}
	_, werr := f.WriteString(v)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Setenv(EnvGCPCredentials, f.Name())
	}
	if werr != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("%s holds a key: write it to a file: %w", EnvGCPCredentials, werr)
	}
	return func() {
		os.Remove(f.Name())
		os.Setenv(EnvGCPCredentials, v)
	}, nil
}
