package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"

	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
)

// EnvTerminationMessage asks prune to leave its last line as the container's termination
// message, where a session that cannot read logs finds the summary.
const envTerminationMessage = "STASH_TERMINATION_MESSAGE"

func runPrune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("prune", stderr)
	rf := repoFlags(fs)
	maxUnused := fs.Float64("max-unused-percent", 10, "repack a pack that holds used data when more than this percent of it is unused (100: never repack)")
	dryRun := fs.Bool("dry-run", false, "compute and print what prune would delete, delete nothing")
	output := fs.String("o", "", "output format: json, or empty for text")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("prune takes no arguments, got %q", pos)
	}
	if *output != "" && *output != "json" {
		return usagef("-o %q: want json or nothing", *output)
	}
	// 0 would mean "the engine's default" to the engine, not "repack everything".
	if *maxUnused <= 0 || *maxUnused > 100 {
		return usagef("--max-unused-percent %v: want a number above 0 and at most 100", *maxUnused)
	}
	if os.Getenv(envTerminationMessage) == "" {
		return repocmd.Prune(ctx, *rf, *maxUnused, *dryRun, *output == "json", stdout)
	}
	var out bytes.Buffer
	err = repocmd.Prune(ctx, *rf, *maxUnused, *dryRun, *output == "json", io.MultiWriter(stdout, &out))
	if err == nil {
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		_ = os.WriteFile(os.Getenv(envTerminationMessage), []byte(lines[len(lines)-1]), 0o644)
	}
	return err
}
