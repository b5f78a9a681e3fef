//go:build crashpoints

package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Enabled reports whether this build can crash at a point.
const Enabled = true

var (
	parseOnce sync.Once
	target    string
	nth       int64
	hits      atomic.Int64
)

func parse() {
	v := os.Getenv(EnvVar)
	if v == "" {
		return
	}
	name, n, hasN := strings.Cut(v, "#")
	nth = 1
	if hasN {
		var err error
		if nth, err = strconv.ParseInt(n, 10, 64); err != nil || nth < 1 {
			fmt.Fprintf(os.Stderr, "%s=%q: want name or name#N with N >= 1\n", EnvVar, v)
			os.Exit(2)
		}
	}
	target = name
}

// Hit kills the process with SIGKILL when it is the N-th hit of the point named in
// STASH_CRASH_AT.
func Hit(name string) {
	parseOnce.Do(parse)
	if name != target || hits.Add(1) != nth {
		return
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is delivered asynchronously: go no further meanwhile
}
