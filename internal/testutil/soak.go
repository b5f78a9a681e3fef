package testutil

import (
	"os"
	"strconv"
	"testing"
)

// Soak reports whether the long versions of the reliability tests were asked for
// (`make soak` sets STASH_SOAK=1); `make test` runs their fast versions.
func Soak() bool {
	v, _ := strconv.ParseBool(os.Getenv("STASH_SOAK"))
	return v
}

// SoakOnly skips t unless Soak() is true: for tests that only have a long version.
func SoakOnly(t testing.TB) {
	t.Helper()
	if !Soak() {
		t.Skip("long test: runs in `make soak` (STASH_SOAK=1)")
	}
}

// Pick returns fast under `make test` and long under `make soak`.
func Pick[T any](fast, long T) T {
	if Soak() {
		return long
	}
	return fast
}
