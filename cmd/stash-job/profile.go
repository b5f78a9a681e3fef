package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// startProfiles writes profiles when environment variables name files: how the
// benchmark's figures are explained.
//
//	STASH_CPUPROFILE  CPU profile (go tool pprof -top FILE)
//	STASH_MEMPROFILE  allocations and, at exit, live heap (go tool pprof -sample_index=alloc_space FILE)
//	STASH_TRACE       execution trace (go tool trace FILE): where the CPUs idle, what blocks
func startProfiles() (stop func()) {
	var cpu, tr *os.File
	if p := os.Getenv("STASH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
			}
		}
		if err == nil {
			cpu = f
		} else {
			fmt.Fprintln(os.Stderr, "stash-job: cpu profile:", err)
		}
	}
	if p := os.Getenv("STASH_TRACE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			if err = trace.Start(f); err != nil {
				f.Close()
			}
		}
		if err == nil {
			tr = f
		} else {
			fmt.Fprintln(os.Stderr, "stash-job: trace:", err)
		}
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
		if tr != nil {
			trace.Stop()
			tr.Close()
		}
		if p := os.Getenv("STASH_MEMPROFILE"); p != "" {
			if f, err := os.Create(p); err == nil {
				runtime.GC()
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}
	}
}
