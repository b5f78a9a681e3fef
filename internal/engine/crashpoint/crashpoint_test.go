package crashpoint

import "testing"

// In a normal build a hit of any point, the one STASH_CRASH_AT names included, is
// harmless; the crashpoints build is exercised by cmd/stash-job's crash test.
func TestHitIsHarmlessWithoutTheTag(t *testing.T) {
	if Enabled {
		t.Skip("crashpoints build")
	}
	t.Setenv(EnvVar, "some.point")
	Hit("some.point")
	Hit("some.point")
}
