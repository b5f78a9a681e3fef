package snapshot

import (
	"fmt"
	"path"
	"strings"
)

// CheckPatterns reports the first malformed glob pattern of a list of includes or
// excludes, naming it; what names the list (include, exclude) prefixes the message.
func CheckPatterns(what string, patterns []string) error {
	for _, p := range patterns {
		if p == "" {
			return fmt.Errorf("empty %s pattern", what)
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("invalid %s pattern %q: %w", what, p, err)
		}
	}
	return nil
}

// restoreFilter selects the entries of a restore by their absolute path in the snapshot,
// with the rule of BackupOptions.Excludes: a pattern holding a '/' matches the full
// path, any other the base name.
type restoreFilter struct {
	includes, excludes []string
}

func newRestoreFilter(includes, excludes []string) (*restoreFilter, error) {
	if err := CheckPatterns("include", includes); err != nil {
		return nil, err
	}
	if err := CheckPatterns("exclude", excludes); err != nil {
		return nil, err
	}
	return &restoreFilter{includes: includes, excludes: excludes}, nil
}

// matchPattern applies one (valid) pattern to the snapshot path p.
func matchPattern(pat, p string) bool {
	target := path.Base(p)
	if strings.Contains(pat, "/") {
		target = p
	}
	ok, _ := path.Match(pat, target)
	return ok
}

// excludedBy returns the exclude pattern matching p, or "".
func (f *restoreFilter) excludedBy(p string) string {
	for _, pat := range f.excludes {
		if matchPattern(pat, p) {
			return pat
		}
	}
	return ""
}

func (f *restoreFilter) excluded(p string) bool { return f.excludedBy(p) != "" }

// included reports whether p matches an include; with no includes, everything is.
func (f *restoreFilter) included(p string) bool {
	if len(f.includes) == 0 {
		return true
	}
	for _, pat := range f.includes {
		if matchPattern(pat, p) {
			return true
		}
	}
	return false
}
