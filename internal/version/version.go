// Package version holds the build facts stamped into both binaries with -ldflags, and the job
// image reference the plugin derives from them.
//
// The plugin pins the job image to its own version, so upgrading the plugin never silently
// keeps running an older job image (and vice versa).
package version

import (
	"fmt"
	"regexp"
)

// Set with -ldflags "-X github.com/kubectl-stash/kubectl-stash/internal/version.version=…".
var (
	version   = "v0.0.0-dev"
	gitCommit = "unknown"
)

// ImageRepository is where released job images are published.
const ImageRepository = "ghcr.io/kubectl-stash/stash-job"

// Info is what `version` prints.
type Info struct {
	Version   string `json:"version"`
	GitCommit string `json:"gitCommit"`
	JobImage  string `json:"jobImage"`
}

// Get returns the build facts of this binary.
func Get() Info {
	return Info{Version: version, GitCommit: gitCommit, JobImage: DefaultImage()}
}

// Version is the semantic version (with a leading v) of this build.
func Version() string { return version }

// GitCommit is the full commit hash this build was made from.
func GitCommit() string { return gitCommit }

// DefaultImage is the job image reference pinned to this build's version.
func DefaultImage() string { return ImageRepository + ":" + ImageTag(version) }

// tagInvalid matches characters an OCI tag may not hold ([A-Za-z0-9_.-], first not . or -).
var tagInvalid = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// ImageTag turns a version into a valid image tag: a build-metadata "+" and anything else
// a registry refuses become "-"; tags are at most 128 characters.
func ImageTag(v string) string {
	t := tagInvalid.ReplaceAllString(v, "-")
	if len(t) > 128 {
		t = t[:128]
	}
	if t == "" || t[0] == '.' || t[0] == '-' {
		t = "v" + t
	}
	return t
}

// String renders the three facts on one line each, as `version` prints them.
func (i Info) String() string {
	return fmt.Sprintf("Version:   %s\nGitCommit: %s\nJobImage:  %s\n", i.Version, i.GitCommit, i.JobImage)
}
