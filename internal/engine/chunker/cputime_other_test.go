//go:build !unix

package chunker

// processCPUSeconds is not available here; benchmarks then report wall-clock MB/s only.
func processCPUSeconds() (float64, bool) { return 0, false }
