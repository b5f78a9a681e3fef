//go:build unix

package testutil

import "syscall"

// ProcessCPUSeconds returns the user and system CPU time of the process. Benchmarks
// divide by it to report MB per CPU-second, which, unlike wall-clock MB/s, stays
// meaningful when other work shares the machine.
func ProcessCPUSeconds() (float64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9, true
}
