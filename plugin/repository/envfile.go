package repository

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// ParseEnvFile reads backend credentials in the format of kubectl's --from-env-file: one
// KEY=VALUE per line, blank lines and lines starting with # ignored, the value taken as it
// stands (quotes included, as kubectl and docker do). name is the file's name, for errors,
// which give the line. A key must be a C identifier ([A-Za-z_][A-Za-z0-9_]*), the names
// shells, SDKs and Kubernetes' $(VAR) references all handle; it may not be
// STASH_REPOSITORY or STASH_PASSWORD (the --url and password flags set those), and may
// appear once.
func ParseEnvFile(name string, r io.Reader) (map[string]string, error) {
	env := map[string]string{}
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // a byte order mark from some editors
		}
		line = strings.TrimRight(line, "\r")
		trimmed := strings.TrimLeft(line, " \t")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		key, value, ok := strings.Cut(trimmed, "=")
		if !ok {
			// The line is not quoted: it may be a secret pasted on its own.
			return nil, fmt.Errorf("%s:%d: want KEY=VALUE, found no '=' on this line", name, n)
		}
		if errs := validation.IsCIdentifier(key); len(errs) > 0 {
			hint := ""
			if strings.HasPrefix(key, "export ") {
				hint = " (drop the leading \"export\")"
			}
			return nil, fmt.Errorf("%s:%d: %q is not a valid environment variable name%s: it must match [A-Za-z_][A-Za-z0-9_]*", name, n, key, hint)
		}
		if key == api.SecretKeyRepository || key == api.SecretKeyPassword {
			return nil, fmt.Errorf("%s:%d: %s is set by kubectl stash itself (--url, --password-file or --generate-password): remove it from the file", name, n, key)
		}
		if prev, dup := seen[key]; dup {
			return nil, fmt.Errorf("%s:%d: %s is already set on line %d", name, n, key, prev)
		}
		seen[key] = n
		env[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return env, nil
}

// GeneratePassword returns 32 random bytes, base64url-encoded without padding (43 characters).
func GeneratePassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
