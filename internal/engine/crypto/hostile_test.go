package crypto

import (
	"testing"
	"time"
)

// TestHostileKDFParamsAreRefusedAtOnce: key files are read unauthenticated, so their
// scrypt parameters are whatever a writer to the bucket chose. Parameters that would
// take gigabytes or hours are refused before any work; the default and cheaper ones
// are not.
func TestHostileKDFParamsAreRefusedAtOnce(t *testing.T) {
	salt := make([]byte, 32)
	for _, tt := range []struct {
		name string
		p    KDFParams
		ok   bool
	}{
		{"default", DefaultKDF, true},
		{"cheap", KDFParams{N: 1 << 10, R: 8, P: 1}, true},
		{"8 times the default memory", KDFParams{N: 1 << 19, R: 8, P: 1}, true},
		{"32 times the default work", KDFParams{N: 1 << 16, R: 8, P: 32}, true},
		{"8 GiB through r", KDFParams{N: 1 << 24, R: 64, P: 1}, false},
		{"16 GiB through N and r", KDFParams{N: 1 << 20, R: 1 << 10, P: 1}, false},
		{"days of work through p", KDFParams{N: 1 << 10, R: 8, P: 1 << 29}, false},
		{"work just above the bound", KDFParams{N: 1 << 16, R: 8, P: 33}, false},
		{"memory just above the bound", KDFParams{N: 1 << 20, R: 8, P: 1}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok %v", tt.p, err, tt.ok)
			}
			if tt.ok {
				return
			}
			start := time.Now()
			if _, err := PasswordAEAD([]byte("pw"), salt, tt.p); err == nil {
				t.Fatalf("PasswordAEAD(%+v) derived a key", tt.p)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("refusing %+v took %v", tt.p, d)
			}
		})
	}
}
