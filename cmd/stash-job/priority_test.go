package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// threadNices reads the nice value of every thread of this process.
func threadNices(t *testing.T) []string {
	tasks, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var nices []string
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		// fields after "(comm)": state is field 3; nice is field 19
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		nices = append(nices, fields[16])
	}
	return nices
}

// TestPriorityAppliesToEveryThread runs itself as a child that applies --nice 7 and then
// reports the nice value of all its threads, busy ones included.
func TestPriorityAppliesToEveryThread(t *testing.T) {
	if os.Getenv("STASH_TEST_PRIORITY_CHILD") == "1" {
		nice := 7
		if err := applyPriority(&nice, 3, nil); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		// only the re-executed child gets here: make the runtime use several threads
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				end := time.Now().Add(50 * time.Millisecond)
				for time.Now().Before(end) {
				}
			}()
		}
		wg.Wait()
		fmt.Println("NICES", strings.Join(threadNices(t), " "))
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPriorityAppliesToEveryThread$")
	cmd.Env = append(os.Environ(), "STASH_TEST_PRIORITY_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var line string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "NICES ") {
			line = strings.TrimPrefix(l, "NICES ")
		}
	}
	nices := strings.Fields(line)
	if len(nices) < 2 {
		t.Fatalf("child reported %q; want several threads:\n%s", line, out)
	}
	for _, n := range nices {
		if n != "7" {
			t.Fatalf("thread nice values %v: want every thread at 7", nices)
		}
	}
	t.Logf("%d threads, all at nice 7", len(nices))
}
