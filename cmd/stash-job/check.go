package main

import (
	"context"
	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
	"io"
	"strconv"
	"strings"
)

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	rf := repoFlags(fs)
	var cf repocmd.CheckFlags
	fs.BoolVar(&cf.ReadData, "read-data", false, "download every pack and verify every blob in it")
	subset := fs.String("read-data-subset", "", "download and verify a random `N%` of the packs (a different subset each run)")
	output := fs.String("o", "", "output format: json, or empty for text")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("check takes no arguments, got %q", pos)
	}
	if *output != "" && *output != "json" {
		return usagef("-o %q: want json or nothing", *output)
	}
	if *subset != "" {
		if cf.ReadData {
			return usagef("give --read-data or --read-data-subset, not both")
		}
		if cf.SubsetPercent, err = parsePercent(*subset); err != nil {
			return err
		}
	}
	return repocmd.Check(ctx, *rf, cf, *output == "json", stdout)
}

// parsePercent reads "N%" with 0 < N <= 100.
func parsePercent(s string) (float64, error) {
	num, ok := strings.CutSuffix(s, "%")
	n, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || n <= 0 || n > 100 {
		return 0, usagef("--read-data-subset %q: want a percentage such as 10%%, above 0 and at most 100", s)
	}
	return n, nil
}
