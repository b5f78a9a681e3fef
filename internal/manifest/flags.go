package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// RenderFlags writes a Set as the kubectl stash commands that make the same objects: a
// shell script, files (a claim template, a password) written by here-documents. What no
// flag can say is a *RenderError, unless ignoreUnsupported: then it is returned as
// warnings and left out.
func RenderFlags(set *Set, ignoreUnsupported bool) (string, []string, error) {
	f := &flagRenderer{renderer: renderer{format: "the command line"}, ns: set.Namespace}
	for _, r := range set.Repositories {
		f.repository(r)
	}
	for _, b := range set.Backups {
		f.backup(b.Config)
	}
	for _, r := range set.Restores {
		f.restore(r)
	}
	for _, t := range set.Triggers {
		c := f.cmd("trigger", t.Config)
		if t.Name != "" {
			f.cannot("backupsession %s: the trigger verb names sessions itself (<config>-<random suffix>)", t.Name)
		}
		if t.Session != "" {
			c.add("# KubeStash session " + t.Session)
		}
		f.emit(c)
	}
	for _, v := range set.Verifications {
		f.cannot("backupverificationsession %s: verification has no command line here yet", v.Config.Name)
	}
	if len(f.problems) > 0 && !ignoreUnsupported {
		return "", nil, &RenderError{Format: "The command line", Problems: f.problems}
	}
	return f.out.String(), f.problems, nil
}

type flagRenderer struct {
	renderer
	ns  string
	out bytes.Buffer
}

// command is one kubectl stash command being written.
type command struct {
	words []string
	notes []string
}

func (c *command) flag(name string, values ...string) {
	for _, v := range values {
		c.words = append(c.words, "--"+name, shellQuote(v))
	}
}

func (c *command) add(note string) { c.notes = append(c.notes, note) }

func (f *flagRenderer) cmd(verb string, args ...string) *command {
	c := &command{words: append([]string{"kubectl", "stash", verb}, args...)}
	if f.ns != "" {
		c.words = append(c.words, "-n", shellQuote(f.ns))
	}
	return c
}

func (f *flagRenderer) emit(c *command) {
	for _, n := range c.notes {
		fmt.Fprintln(&f.out, n)
	}
	// one flag and its value per line, as the examples are written
	line := strings.Join(c.words[:3], " ")
	rest := c.words[3:]
	for len(rest) > 0 && !strings.HasPrefix(rest[0], "--") {
		line += " " + rest[0]
		rest = rest[1:]
	}
	fmt.Fprint(&f.out, line)
	for i := 0; i < len(rest); i++ {
		w := rest[i]
		if i+1 < len(rest) && strings.HasPrefix(w, "--") && !strings.HasPrefix(rest[i+1], "--") {
			w += " " + rest[i+1]
			i++
		}
		fmt.Fprintf(&f.out, " \\\n    %s", w)
	}
	fmt.Fprintln(&f.out)
}

// file writes a here-document that makes a file.
func (f *flagRenderer) file(name, content string) {
	if !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	marker := "EOF"
	for strings.Contains(content, marker+"\n") {
		marker += "_"
	}
	fmt.Fprintf(&f.out, "cat > %s <<'%s'\n%s%s\n", shellQuote(name), marker, content, marker)
}

var shellSafe = func(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+", r)
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !shellSafe(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (f *flagRenderer) repository(r Repository) {
	c := f.cmd("repo", "create", r.Name)
	c.flag("url", r.URL)
	f.file(r.Name+".password", r.Password)
	c.flag("password-file", r.Name+".password")
	if len(r.Env) > 0 {
		var b strings.Builder
		for _, k := range sortedEnv(r.Env) {
			if strings.ContainsAny(r.Env[k], "\n") {
				f.cannot("repository %s: the value of %s spans lines, which an env file cannot hold: create the Secret from a manifest instead", r.Name, k)
				continue
			}
			fmt.Fprintf(&b, "%s=%s\n", k, r.Env[k])
		}
		f.file(r.Name+".env", b.String())
		c.flag("from-env-file", r.Name+".env")
	}
	c.words = append(c.words, "--init")
	f.emit(c)
}

// runtimeFlags writes the runtime settings the flags can say.
func (f *flagRenderer) runtimeFlags(c *command, what string, rt api.Runtime) {
	if res := unmarshalRaw[corev1.ResourceRequirements](rt.Resources); res != nil {
		for _, q := range []struct {
			flag string
			list corev1.ResourceList
			name corev1.ResourceName
		}{{"cpu-request", res.Requests, corev1.ResourceCPU}, {"cpu-limit", res.Limits, corev1.ResourceCPU},
			{"memory-request", res.Requests, corev1.ResourceMemory}, {"memory-limit", res.Limits, corev1.ResourceMemory}} {
			if v, ok := q.list[q.name]; ok {
				c.flag(q.flag, v.String())
			}
		}
		for _, l := range []corev1.ResourceList{res.Requests, res.Limits} {
			for name := range l {
				if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
					f.cannot("%s: the resource %s has no flag (--cpu-* and --memory-* only)", what, name)
				}
			}
		}
		if len(res.Claims) > 0 {
			f.cannot("%s: resource claims have no flag", what)
		}
	}
	if rt.Nice != nil {
		c.flag("nice", fmt.Sprint(*rt.Nice))
	}
	if rt.IONiceClass != 0 {
		c.flag("ionice-class", fmt.Sprint(rt.IONiceClass))
	}
	if rt.IONiceData != nil {
		c.flag("ionice-data", fmt.Sprint(*rt.IONiceData))
	}
	for _, k := range sortedEnv(rt.NodeSelector) {
		c.flag("node-selector", k+"="+rt.NodeSelector[k])
	}
	if tols := unmarshalRaw[[]corev1.Toleration](rt.Tolerations); tols != nil {
		for _, t := range *tols {
			s, ok := tolerationFlag(t)
			if !ok {
				f.cannot("%s: the toleration %+v has no flag form (KEY=VALUE:EFFECT, KEY:EFFECT, :Exists)", what, t)
				continue
			}
			c.flag("toleration", s)
		}
	}
	if rt.ServiceAccount != "" {
		c.flag("service-account", rt.ServiceAccount)
	}
	if sc := unmarshalRaw[corev1.SecurityContext](rt.SecurityContext); sc != nil {
		uid, gid, ok := runAsFlags(*sc)
		if !ok {
			f.cannot("%s: the container securityContext has no flag form (--run-as-user and --run-as-group make one that drops every capability)", what)
		} else {
			if uid != nil {
				c.flag("run-as-user", fmt.Sprint(*uid))
			}
			if gid != nil {
				c.flag("run-as-group", fmt.Sprint(*gid))
			}
		}
	}
	if rt.CacheSize != "" {
		c.flag("cache-size", rt.CacheSize)
	}
	if rt.NoCache {
		c.words = append(c.words, "--no-cache")
	}
	for _, x := range []struct {
		name string
		set  bool
	}{{"pod securityContext", len(rt.PodSecurityContext) > 0}, {"env", len(rt.Env) > 0}, {"envFrom", len(rt.EnvFrom) > 0},
		{"affinity", len(rt.Affinity) > 0}, {"imagePullSecrets", len(rt.ImagePullSecrets) > 0},
		{"topologySpreadConstraints", len(rt.TopologySpreadConstraints) > 0}, {"priorityClassName", rt.PriorityClassName != ""},
		{"schedulerName", rt.SchedulerName != ""}, {"runtimeClassName", rt.RuntimeClassName != ""}, {"enableServiceLinks", rt.EnableServiceLinks != nil},
		{"serviceAccountAnnotations", len(rt.ServiceAccountAnnotations) > 0}, {"tempDir medium", rt.TempDirMedium != ""}} {
		if x.set {
			f.cannot("%s: %s has no flag: use the manifest (kubectl stash %s -f)", what, x.name, strings.Fields(what)[0])
		}
	}
}

// tolerationFlag is a toleration in --toleration's syntax.
func tolerationFlag(t corev1.Toleration) (string, bool) {
	if t.TolerationSeconds != nil {
		return "", false
	}
	switch {
	case t.Operator == corev1.TolerationOpExists && t.Key == "" && t.Effect == "":
		return ":Exists", true
	case t.Operator == corev1.TolerationOpExists && t.Key != "" && t.Value == "":
		return t.Key + ":" + string(t.Effect), true
	case (t.Operator == corev1.TolerationOpEqual || t.Operator == "") && t.Key != "":
		return t.Key + "=" + t.Value + ":" + string(t.Effect), true
	}
	return "", false
}

// runAsFlags finds the --run-as-user and --run-as-group that make sc, if they do.
func runAsFlags(sc corev1.SecurityContext) (uid, gid *int64, ok bool) {
	no := false
	want := corev1.SecurityContext{AllowPrivilegeEscalation: &no, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		RunAsUser: sc.RunAsUser, RunAsGroup: sc.RunAsGroup}
	a, _ := json.Marshal(sc)
	b, _ := json.Marshal(want)
	return sc.RunAsUser, sc.RunAsGroup, string(a) == string(b) && (sc.RunAsUser != nil || sc.RunAsGroup != nil)
}

func (f *flagRenderer) backup(cfg api.BackupConfig) {
	if cfg.IsBatch() {
		f.batch(cfg)
		return
	}
	what := "backup " + cfg.Name
	c := f.cmd("backup", cfg.Target.String())
	c.flag("name", cfg.Name)
	c.flag("repo", cfg.Repository)
	if len(cfg.Paths) > 0 {
		f.noComma(what, "paths", cfg.Paths)
		c.flag("paths", strings.Join(cfg.Paths, ","))
	}
	c.flag("exclude", cfg.Excludes...)
	if cfg.Target.Kind == "pvc" {
		c.flag("mount-path", cfg.MountPath)
	}
	for _, m := range cfg.VolumeMounts {
		c.flag("volume-mount", m.Name+":"+m.MountPath)
	}
	if cfg.Alias != "" {
		c.flag("alias", cfg.Alias)
	}
	if cfg.Dump != nil {
		f.dumpFlags(c, cfg.Dump)
	}
	f.hookFlags(c, what, cfg.Hooks, true)
	f.configFlags(c, what, cfg)
	if cfg.Session != "" {
		c.add(fmt.Sprintf("# the KubeStash session %s of %s", cfg.Session, cfg.Name))
	}
	f.emit(c)
}

// configFlags writes what a configuration and a batch share: the schedule, the
// retention, the history, the time limit and the runtime settings.
func (f *flagRenderer) configFlags(c *command, what string, cfg api.BackupConfig) {
	if cfg.Schedule != "" {
		c.flag("schedule", cfg.Schedule)
	}
	if cfg.Paused {
		c.words = append(c.words, "--paused")
	}
	r := cfg.Retention
	for _, k := range []struct {
		flag string
		v    int
	}{{"keep-last", r.KeepLast}, {"keep-hourly", r.KeepHourly}, {"keep-daily", r.KeepDaily}, {"keep-weekly", r.KeepWeekly},
		{"keep-monthly", r.KeepMonthly}, {"keep-yearly", r.KeepYearly}} {
		if k.v != 0 {
			c.flag(k.flag, fmt.Sprint(k.v))
		}
	}
	c.flag("keep-tag", r.KeepTags...)
	if cfg.Prune {
		c.words = append(c.words, "--prune")
	}
	c.flag("history-limit", fmt.Sprint(cfg.HistoryLimit))
	if cfg.Timeout != "" {
		c.flag("timeout", cfg.Timeout)
	}
	f.runtimeFlags(c, what, cfg.Runtime)
}

func (f *flagRenderer) noComma(what, flag string, list []string) {
	for _, s := range list {
		if strings.Contains(s, ",") {
			f.cannot("%s: %q has a comma, which --%s separates values with", what, s, flag)
		}
	}
}

func (f *flagRenderer) restore(r Restore) {
	cfg := r.Config
	what := "restore " + cfg.Name
	c := f.cmd("restore", cfg.Target.String())
	c.flag("name", cfg.Name)
	c.flag("repo", cfg.Repository)
	switch {
	case cfg.FromConfig != "":
		c.flag("from-config", cfg.FromConfig)
	case r.SourceFromRepository:
		f.cannot("%s: the manifest restores the snapshots of whichever backup configuration writes to repository %s, which the plugin finds when it runs; give --from-config CONFIG", what, cfg.Repository)
	case cfg.SourceTarget != cfg.Target:
		c.flag("source-target", cfg.SourceTarget.String())
	}
	for _, rule := range cfg.Rules {
		var parts []string
		parts = append(parts, "targetHosts="+strings.Join(rule.TargetHosts, ","), "sourceHost="+rule.SourceHost)
		if len(rule.Paths) > 0 {
			parts = append(parts, "paths="+strings.Join(rule.Paths, ","))
		}
		if len(rule.Snapshots) > 0 {
			parts = append(parts, "snapshots="+strings.Join(rule.Snapshots, ","))
		}
		for _, p := range rule.Paths {
			if strings.ContainsAny(p, ",;") {
				f.cannot("%s: the path %q has a comma or semicolon, which --rule cannot hold", what, p)
			}
		}
		c.flag("rule", strings.Join(parts, ";"))
	}
	if len(cfg.Paths) > 0 {
		f.noComma(what, "paths", cfg.Paths)
		c.flag("paths", strings.Join(cfg.Paths, ","))
	}
	c.flag("include", cfg.Includes...)
	c.flag("exclude", cfg.Excludes...)
	if cfg.Overwrite != "" && cfg.Overwrite != "always" {
		c.flag("overwrite", cfg.Overwrite)
	}
	if cfg.Delete {
		c.words = append(c.words, "--delete")
	}
	if cfg.Target.Kind == "pvc" {
		c.flag("mount-path", cfg.MountPath)
	}
	if cfg.Replicas > 0 {
		c.flag("replicas", fmt.Sprint(cfg.Replicas))
	}
	switch len(r.ClaimTemplates) {
	case 0:
	case 1:
		ct := r.ClaimTemplates[0]
		b, err := yaml.Marshal(claimFile(ct))
		if err != nil {
			f.cannot("%s: %v", what, err)
			break
		}
		name := ct.Name + "-claim.yaml"
		f.file(name, string(b))
		c.flag("volume-claim-template", name)
	default:
		f.cannot("%s: %d claim templates: --volume-claim-template takes one", what, len(r.ClaimTemplates))
	}
	for _, m := range cfg.VolumeMounts {
		c.flag("volume-mount", m.Name+":"+m.MountPath)
	}
	if cfg.Alias != "" {
		c.flag("alias", cfg.Alias)
	}
	if cfg.ScaleDown {
		c.words = append(c.words, "--scale-down")
	}
	if cfg.Dump != nil {
		f.dumpFlags(c, cfg.Dump)
	}
	f.hookFlags(c, what, cfg.Hooks, false)
	if cfg.Timeout != "" {
		c.flag("timeout", cfg.Timeout)
	}
	f.runtimeFlags(c, what, cfg.Runtime)
	f.emit(c)
}

// claimFile is a claim template as --volume-claim-template reads it.
func claimFile(ct corev1.PersistentVolumeClaim) any {
	type meta struct {
		Name        string            `json:"name"`
		Labels      map[string]string `json:"labels,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	return struct {
		APIVersion string                           `json:"apiVersion"`
		Kind       string                           `json:"kind"`
		Metadata   meta                             `json:"metadata"`
		Spec       corev1.PersistentVolumeClaimSpec `json:"spec"`
	}{"v1", "PersistentVolumeClaim", meta{ct.Name, ct.Labels, ct.Annotations}, ct.Spec}
}

// SortedWarnings returns warnings in a stable order.
func SortedWarnings(w []string) []string {
	out := append([]string(nil), w...)
	sort.Strings(out)
	return out
}
