package api

import (
	"reflect"
	"strings"
	"testing"
)

// The seed's sample rules: host-3 and host-4 get host-1's data, every other host its own.
var seedRules = []RestoreRule{
	{TargetHosts: []string{"host-3", "host-4"}, SourceHost: "host-1", Paths: []string{"/source/data"}},
	{TargetHosts: []string{}, SourceHost: "", Paths: []string{"/source/data"}},
}

func TestMatchRule(t *testing.T) {
	onlyNamed := []RestoreRule{{TargetHosts: []string{"host-1"}, SourceHost: "host-0"}}
	cases := []struct {
		rules []RestoreRule
		host  string
		want  int
	}{
		{seedRules, "host-0", 1},
		{seedRules, "host-2", 1},
		{seedRules, "host-3", 0},
		{seedRules, "host-4", 0},
		// the catch-all may come first: a rule naming the host still wins
		{[]RestoreRule{seedRules[1], seedRules[0]}, "host-3", 1},
		{[]RestoreRule{seedRules[1], seedRules[0]}, "host-0", 0},
		{onlyNamed, "host-1", 0},
		{onlyNamed, "host-2", -1}, // no rule: the host gets nothing
		{nil, "host-0", -1},
	}
	for _, c := range cases {
		if got := MatchRule(c.rules, c.host); got != c.want {
			t.Errorf("MatchRule(%v, %s) = %d, want %d", c.rules, c.host, got, c.want)
		}
	}
}

func TestValidateRules(t *testing.T) {
	cases := []struct {
		name  string
		rules []RestoreRule
		want  string // "" valid
	}{
		{"seed sample", seedRules, ""},
		{"none", nil, ""},
		{"two catch-alls", []RestoreRule{{SourceHost: "host-0"}, {Paths: []string{"/a"}}}, "rules[1] and rules[0] both have empty targetHosts"},
		{"host named twice", []RestoreRule{{TargetHosts: []string{"host-1"}}, {TargetHosts: []string{"host-2", "host-1"}}}, "rules[1].targetHosts names host-1, which rules[0] already names"},
		{"relative path", []RestoreRule{{Paths: []string{"data"}}}, `rules[0].paths: "data" is not an absolute path`},
		{"bad snapshot", []RestoreRule{{Snapshots: []string{"a b"}}}, `rules[0].snapshots: "a b"`},
	}
	for _, c := range cases {
		err := ValidateRules(c.rules)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

func TestParseRule(t *testing.T) {
	cases := []struct {
		in   string
		want RestoreRule
		err  string
	}{
		{"targetHosts=host-3,host-4;sourceHost=host-1;paths=/source/data", seedRules[0], ""},
		{"sourceHost=;paths=/source/data", RestoreRule{Paths: []string{"/source/data"}}, ""},
		{" snapshots = 1a2b3c4d , 5e6f ; paths=/a,/b ", RestoreRule{Snapshots: []string{"1a2b3c4d", "5e6f"}, Paths: []string{"/a", "/b"}}, ""},
		{"hosts=host-1", RestoreRule{}, `unknown key "hosts"`},
		{"paths", RestoreRule{}, "is not key=value"},
		{"paths=/a;paths=/b", RestoreRule{}, "paths is given twice"},
	}
	for _, c := range cases {
		got, err := ParseRule(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseRule(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRule(%q): %v", c.in, err)
			continue
		}
		if len(got.TargetHosts) == 0 && len(c.want.TargetHosts) == 0 {
			got.TargetHosts, c.want.TargetHosts = nil, nil
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseRule(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestTargetLabel(t *testing.T) {
	if got := TargetLabel(Target{Kind: "statefulset", Name: "web"}); got != "statefulset.web" {
		t.Errorf("TargetLabel = %q", got)
	}
	long := TargetLabel(Target{Kind: "statefulset", Name: strings.Repeat("a", 70)})
	if len(long) > 63 || long == TargetLabel(Target{Kind: "statefulset", Name: strings.Repeat("a", 71)}) {
		t.Errorf("long TargetLabel %q (%d) not bounded or not distinct", long, len(long))
	}
}
