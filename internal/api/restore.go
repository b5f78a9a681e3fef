package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Labels and annotations of restore sessions. A restore session is a Job in session mode
// (component restore-session) and a Job per target host (component restore-host), the
// same pattern as a backup session.
const (
	// LabelRestoreSession names the restore session on the session Job and its host Jobs.
	LabelRestoreSession = Prefix + "restore-session"
	// LabelRestoreTarget is TargetLabel(target) on a restore session Job: two restores
	// into one target never run at once.
	LabelRestoreTarget = Prefix + "restore-target"

	ComponentRestoreSession = "restore-session"
	ComponentRestoreHost    = "restore-host"

	// AnnotationRestoreHostSpec carries the RestoreHostSpec (JSON) on a restore host Job's
	// pod template.
	AnnotationRestoreHostSpec = Prefix + "restore-host-spec"
	// EnvRestoreHostSpec is the RestoreHostSpec JSON of a restore host pod.
	EnvRestoreHostSpec = "STASH_RESTORE_HOST_SPEC"
	// AnnotationScaledDownFrom is written on a workload, in the same patch that scales it
	// to 0 for a restore (--scale-down), with its replica count before: the count survives
	// a crash of whoever scaled it down, and scaling back up reads it from here.
	AnnotationScaledDownFrom = Prefix + "scaled-down-from"
	// AnnotationScaledDownBy names the restore session that scaled the workload down.
	AnnotationScaledDownBy = Prefix + "scaled-down-by"
)

// TagConfig prefixes the tag every backup snapshot carries with the name of the
// configuration that made it.
const TagConfig = "config="

// TargetLabel is a target as a label value (kind.name, shortened with a hash past 63).
func TargetLabel(t Target) string {
	v := t.Kind + "." + t.Name
	if len(v) <= 63 {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return strings.TrimRight(v[:63-9], "-.") + "-" + hex.EncodeToString(sum[:4])
}

// RestoreRule is one of the seed's spec.rules.
type RestoreRule struct {
	// TargetHosts names the hosts this rule is for; empty: every host no other rule names.
	TargetHosts []string `json:"targetHosts"`
	// SourceHost is the backed-up host whose data is restored; empty: the target host's
	// own name.
	SourceHost string `json:"sourceHost"`
	// Paths are the directories restored, each from the latest snapshot of it.
	Paths []string `json:"paths,omitempty"`
	// Snapshots are snapshot ids restored whole (or, with Paths, those paths of them).
	Snapshots []string `json:"snapshots,omitempty"`
}

// VolumeMount is the seed's target.volumeMounts entry: a volume of the target mounted
// at MountPath in the restore pods.
type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
}

// RestoreConfig is one restore session, normalised from flags or a manifest. It travels
// on the session Job (AnnotationConfig).
type RestoreConfig struct {
	SchemaVersion int    `json:"schemaVersion"`
	Name          string `json:"name"`
	Target        Target `json:"target"`
	// Repository is the name of the repository Secret, in the session's namespace.
	Repository string `json:"repository"`
	// FromConfig restores the snapshots of this backup configuration (its TagConfig tag);
	// empty: the snapshots of SourceTarget, whatever configuration made them.
	FromConfig   string        `json:"fromConfig,omitempty"`
	SourceTarget Target        `json:"sourceTarget"`
	Rules        []RestoreRule `json:"rules"`
	// Paths are restored by a rule that names neither paths nor snapshots (the backup
	// configuration's paths); empty: every path the source host has a snapshot of.
	Paths     []string `json:"paths,omitempty"`
	Includes  []string `json:"includes,omitempty"`
	Excludes  []string `json:"excludes,omitempty"`
	Overwrite string   `json:"overwrite,omitempty"`
	Delete    bool     `json:"delete,omitempty"`
	// MountPath is where a pvc target is mounted in its restore pod.
	MountPath string `json:"mountPath,omitempty"`
	// Replicas, VolumeClaimTemplates and VolumeMounts describe a StatefulSet that does not
	// exist yet: host-<i> restores into the claims <template>-<name>-<i>.
	Replicas             int           `json:"replicas,omitempty"`
	VolumeClaimTemplates []string      `json:"volumeClaimTemplates,omitempty"`
	VolumeMounts         []VolumeMount `json:"volumeMounts,omitempty"`
	// ScaleDown scales the target workload to 0 for the restore and back afterwards.
	ScaleDown bool    `json:"scaleDown,omitempty"`
	Timeout   string  `json:"timeout,omitempty"`
	Image     string  `json:"image"`
	Runtime   Runtime `json:"runtime,omitempty"`
	// Alias names the target hosts as the backup configuration's alias named the hosts
	// it backed up (Stash's target.alias): rules and source hosts use these names.
	Alias string `json:"alias,omitempty"`
	// Dump makes the target a database: its one host streams the snapshot's dump file
	// into the restore command in the target's pod (docs/databases.md).
	Dump *Dump `json:"dump,omitempty"`
	// Hooks' preRestore and postRestore run in the target's pods around each host.
	Hooks *Hooks `json:"hooks,omitempty"`
}

func (s *RestoreConfig) schema() int   { return s.SchemaVersion }
func (s *RestoreHostSpec) schema() int { return s.SchemaVersion }

// RestoreHostSpec is what one restore host pod does.
type RestoreHostSpec struct {
	SchemaVersion int    `json:"schemaVersion"`
	Session       string `json:"session"`
	Hostname      string `json:"hostname"`
	// SourceHost is the backed-up host whose snapshots are restored.
	SourceHost   string `json:"sourceHost"`
	FromConfig   string `json:"fromConfig,omitempty"`
	SourceTarget Target `json:"sourceTarget"`
	// Rule is the index of the rule that matched, for messages.
	Rule      int      `json:"rule"`
	Paths     []string `json:"paths,omitempty"`
	Snapshots []string `json:"snapshots,omitempty"`
	// Mounts are the directories the pod has the target's volumes mounted at: a path
	// outside all of them cannot be restored (the pod's own filesystem is read-only).
	Mounts      []string `json:"mounts"`
	Includes    []string `json:"includes,omitempty"`
	Excludes    []string `json:"excludes,omitempty"`
	Overwrite   string   `json:"overwrite,omitempty"`
	Delete      bool     `json:"delete,omitempty"`
	Nice        *int     `json:"nice,omitempty"`
	IONiceClass int      `json:"ioniceClass,omitempty"`
	IONiceData  *int     `json:"ioniceData,omitempty"`
	// Target is what the host restores into; Pod its running pod (hooks and dumps exec
	// into it).
	Target Target `json:"target"`
	Pod    string `json:"pod,omitempty"`
	Dump   *Dump  `json:"dump,omitempty"`
	Hooks  *Hooks `json:"hooks,omitempty"`
}

// ValidateRules checks rules as the seed defines them, before anything is created.
func ValidateRules(rules []RestoreRule) error {
	catchAll := -1
	named := map[string]int{}
	for i, r := range rules {
		where := fmt.Sprintf("rules[%d]", i)
		if len(r.TargetHosts) == 0 {
			if catchAll >= 0 {
				return fmt.Errorf("%s and rules[%d] both have empty targetHosts: only one rule may apply to every other host; name the hosts of one of them (targetHosts=host-3,host-4)", where, catchAll)
			}
			catchAll = i
		}
		for _, h := range r.TargetHosts {
			if h == "" {
				return fmt.Errorf("%s.targetHosts has an empty host name", where)
			}
			if j, dup := named[h]; dup && j != i {
				// the seed says the first matching rule wins; a second mention is dead
				return fmt.Errorf("%s.targetHosts names %s, which rules[%d] already names: the first matching rule wins, so this one would never apply to it", where, h, j)
			}
			named[h] = i
		}
		for _, p := range r.Paths {
			if !path.IsAbs(p) {
				return fmt.Errorf("%s.paths: %q is not an absolute path", where, p)
			}
		}
		for _, s := range r.Snapshots {
			if s == "" || strings.ContainsAny(s, " /,;=") {
				return fmt.Errorf("%s.snapshots: %q is not a snapshot id", where, s)
			}
		}
	}
	return nil
}

// MatchRule returns the index of the rule that applies to host, as the seed says: the
// first rule whose targetHosts names it, else the rule with empty targetHosts; -1 when
// none does (the host gets nothing).
func MatchRule(rules []RestoreRule, host string) int {
	for i, r := range rules {
		if slices.Contains(r.TargetHosts, host) {
			return i
		}
	}
	for i, r := range rules {
		if len(r.TargetHosts) == 0 {
			return i
		}
	}
	return -1
}

// ParseRule parses the --rule flag: 'targetHosts=host-3,host-4;sourceHost=host-1;paths=/a,/b;snapshots=ID,ID'.
func ParseRule(s string) (RestoreRule, error) {
	var r RestoreRule
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return r, fmt.Errorf("rule %q: %q is not key=value (keys: targetHosts, sourceHost, paths, snapshots)", s, part)
		}
		k = strings.TrimSpace(k)
		if seen[k] {
			return r, fmt.Errorf("rule %q: %s is given twice", s, k)
		}
		seen[k] = true
		list := func() []string {
			var out []string
			for _, x := range strings.Split(v, ",") {
				if x = strings.TrimSpace(x); x != "" {
					out = append(out, x)
				}
			}
			return out
		}
		switch k {
		case "targetHosts":
			r.TargetHosts = list()
		case "sourceHost":
			r.SourceHost = strings.TrimSpace(v)
		case "paths":
			r.Paths = list()
		case "snapshots":
			r.Snapshots = list()
		default:
			return r, fmt.Errorf("rule %q: unknown key %q (keys: targetHosts, sourceHost, paths, snapshots)", s, k)
		}
	}
	return r, nil
}

// Source says where a restore's snapshots come from, for people.
func (c RestoreConfig) Source() string {
	if c.FromConfig != "" {
		return "backup configuration " + c.FromConfig
	}
	return c.SourceTarget.String()
}

// NoRuleMessage is what a host no rule matches says in its stats.
func NoRuleMessage(host string) string {
	return fmt.Sprintf("no restore rule matches %s: nothing was restored on it", host)
}
