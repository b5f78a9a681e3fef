package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/version"
)

func TestVersionJSON(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version", "-o", "json"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	var got version.Info
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if got != version.Get() {
		t.Errorf("got %+v, want %+v", got, version.Get())
	}
}

func TestUnknownCommandIsUsageError(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"frobnicate"}, &out, &out)
	if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("err = %v, want a usage error naming the command", err)
	}
	if !strings.Contains(out.String(), "probe") {
		t.Errorf("usage does not list the commands:\n%s", out.String())
	}
}

func TestProbeOutsideAJobSaysWhatIsMissing(t *testing.T) {
	t.Setenv("STASH_NAMESPACE", "")
	t.Setenv("STASH_JOB_NAME", "")
	var out bytes.Buffer
	err := run(context.Background(), []string{"probe"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "STASH_JOB_NAME") {
		t.Fatalf("err = %v, want one naming STASH_JOB_NAME", err)
	}
}

func TestEveryCommandHelpHasExamples(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), []string{c.name, "-h"}, &out, &out)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("-h: %v", err)
			}
			help := out.String()
			if !strings.Contains(help, "\nExamples:\n") || !strings.Contains(help[strings.Index(help, "Examples:"):], "stash-job "+c.name) {
				t.Errorf("help of %s has no examples:\n%s", c.name, out.String())
			}
		})
	}
}
