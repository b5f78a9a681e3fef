//go:build !unix

package testutil

// ProcessCPUSeconds is not available here; benchmarks then report wall-clock MB/s only.
func ProcessCPUSeconds() (float64, bool) { return 0, false }
