//go:build !crashpoints

package crashpoint

// Hit marks a crash point; it does nothing in a build without the crashpoints tag.
func Hit(string) {}

// Enabled reports whether this build can crash at a point.
const Enabled = false
