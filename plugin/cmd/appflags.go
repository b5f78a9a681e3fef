package cmd

import (
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// DumpFlags make a target a database, dumped and restored through the exec API
// (docs/databases.md). backup and restore share them.
type DumpFlags struct {
	Dump           string
	DumpCommand    string
	RestoreCommand string
	DumpContainer  string
	DumpFile       string
}

func (o *DumpFlags) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Dump, "dump", "", "the target is a database: dump it inside its own pod (exec) with a preset: postgres, mysql, mongodb, redis, or auto (from the pod's image)")
	f.StringVar(&o.DumpCommand, "dump-command", "", "shell command run in the database's container whose standard output is the dump (replaces the preset's)")
	f.StringVar(&o.RestoreCommand, "restore-command", "", "shell command run in the database's container that reads the dump on its standard input (replaces the preset's)")
	f.StringVar(&o.DumpContainer, "dump-container", "", "the database's container (default: the one whose image names the preset, else the first)")
	f.StringVar(&o.DumpFile, "dump-file", "", "the dump's file name in the snapshot (default: the preset's, e.g. dumpfile.sql)")
}

// set reports whether any dump flag was given.
func (o *DumpFlags) set() bool {
	return o.Dump != "" || o.DumpCommand != "" || o.RestoreCommand != "" || o.DumpContainer != "" || o.DumpFile != ""
}

// dump builds the dump of the flags over base (a member's preset); nil when no dump flag
// was given and base is nil.
func (o *DumpFlags) dump(base *api.Dump) (*api.Dump, error) {
	if base == nil && !o.set() {
		return nil, nil
	}
	d := api.Dump{}
	if base != nil {
		d = *base
	}
	switch o.Dump {
	case "", "auto":
	default:
		p, ok := api.FindPreset(o.Dump)
		if !ok {
			return nil, fmt.Errorf("--dump %q: want one of %s, or auto", o.Dump, api.PresetNames())
		}
		d.Preset = p.Name
	}
	d.Override(api.Dump{DumpCommand: o.DumpCommand, RestoreCommand: o.RestoreCommand, Container: o.DumpContainer, FileName: o.DumpFile})
	if strings.ContainsAny(d.FileName, "/\x00") || d.FileName == "." || d.FileName == ".." {
		return nil, fmt.Errorf("--dump-file %q: want a plain file name", d.FileName)
	}
	return &d, nil
}

// HookFlags add hooks (docs/hooks.md): commands run in the target's pods, or HTTP
// requests, before and after each host's backup or restore.
type HookFlags struct {
	// MemberHooks are a batch's hooks for one member: KIND/NAME:PHASE=COMMAND.
	MemberHooks         []string
	Pre, Post           []string
	PreHTTP, PostHTTP   []string
	PostPolicy          string
	Container           string
	Timeout             time.Duration
	preName, postName   string
	prePhase, postPhase string
}

func (o *HookFlags) addFlags(f *pflag.FlagSet, backup bool) {
	o.preName, o.postName, o.prePhase, o.postPhase = "pre-backup", "post-backup", api.HookPreBackup, api.HookPostBackup
	if !backup {
		o.preName, o.postName, o.prePhase, o.postPhase = "pre-restore", "post-restore", api.HookPreRestore, api.HookPostRestore
	}
	what := "backup"
	if !backup {
		what = "restore"
	}
	f.StringArrayVar(&o.Pre, o.preName, nil, fmt.Sprintf("command run in the target's pod before each host's %s (a shell command line, or a JSON array); a failure fails the host before anything is %s; repeatable, run in order", what, map[bool]string{true: "backed up", false: "restored"}[backup]))
	f.StringArrayVar(&o.Post, o.postName, nil, fmt.Sprintf("command run in the target's pod after each host's %s, by --%s-policy; repeatable", what, o.postName))
	f.StringArrayVar(&o.PreHTTP, o.preName+"-http", nil, fmt.Sprintf("[METHOD ]URL requested before each host's %s (GET by default; http://:PORT/PATH asks the target's pod); repeatable", what))
	f.StringArrayVar(&o.PostHTTP, o.postName+"-http", nil, fmt.Sprintf("[METHOD ]URL requested after each host's %s, by --%s-policy; repeatable", what, o.postName))
	f.StringVar(&o.PostPolicy, o.postName+"-policy", "", fmt.Sprintf("when the %s hooks run: Always (default), OnSuccess or OnFailure", o.postName))
	f.StringVar(&o.Container, "hook-container", "", "container of the target's pod the hook commands run in (default: its first)")
	f.DurationVar(&o.Timeout, "hook-timeout", 0, "time limit of each hook (default 30s)")
}

func (o *HookFlags) set() bool {
	return len(o.Pre)+len(o.Post)+len(o.PreHTTP)+len(o.PostHTTP) > 0
}

// hooks builds the hooks of the flags; nil when none was given.
func (o *HookFlags) hooks() (*api.Hooks, error) {
	if !o.set() {
		if (o.PostPolicy != "" || o.Container != "" || o.Timeout != 0) && len(o.MemberHooks) == 0 {
			return nil, fmt.Errorf("--%s-policy, --hook-container and --hook-timeout need a hook: give --%s or --%s", o.postName, o.preName, o.postName)
		}
		return nil, nil
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("--hook-timeout %s: want a positive duration", o.Timeout)
	}
	base := api.Hook{Container: o.Container}
	if o.Timeout > 0 {
		base.Timeout = o.Timeout.String()
	}
	var pre, post []api.Hook
	for _, c := range o.Pre {
		h, err := commandHook(base, "--"+o.preName, c)
		if err != nil {
			return nil, err
		}
		pre = append(pre, h)
	}
	for _, c := range o.PreHTTP {
		h, err := httpHook(base, "--"+o.preName+"-http", c)
		if err != nil {
			return nil, err
		}
		pre = append(pre, h)
	}
	for _, c := range o.Post {
		h, err := commandHook(base, "--"+o.postName, c)
		if err != nil {
			return nil, err
		}
		post = append(post, h)
	}
	for _, c := range o.PostHTTP {
		h, err := httpHook(base, "--"+o.postName+"-http", c)
		if err != nil {
			return nil, err
		}
		post = append(post, h)
	}
	switch o.PostPolicy {
	case "", api.PolicyAlways, api.PolicyOnSuccess, api.PolicyOnFailure:
	default:
		return nil, fmt.Errorf("--%s-policy %q: want Always, OnSuccess or OnFailure", o.postName, o.PostPolicy)
	}
	if o.PostPolicy != "" && len(post) == 0 && len(o.MemberHooks) == 0 {
		return nil, fmt.Errorf("--%s-policy: give --%s or --%s-http too", o.postName, o.postName, o.postName)
	}
	for i := range post {
		post[i].Policy = o.PostPolicy
	}
	hs := &api.Hooks{}
	if o.prePhase == api.HookPreBackup {
		hs.PreBackup, hs.PostBackup = pre, post
	} else {
		hs.PreRestore, hs.PostRestore = pre, post
	}
	return hs, hs.Validate("")
}

// memberHooks adds the hooks of --member-hook to the members they name, after the hooks
// every member has.
func (o *HookFlags) memberHooks(members []api.Member) error {
	if len(o.MemberHooks) > 0 && o.Timeout < 0 {
		return fmt.Errorf("--hook-timeout %s: want a positive duration", o.Timeout)
	}
	base := api.Hook{Container: o.Container}
	if o.Timeout > 0 {
		base.Timeout = o.Timeout.String()
	}
	for _, spec := range o.MemberHooks {
		bad := func(why string) error {
			return fmt.Errorf("--member-hook %q: %s", spec, why)
		}
		targetPart, rest, ok := strings.Cut(spec, ":")
		phase, command, ok2 := strings.Cut(rest, "=")
		if !ok || !ok2 || strings.TrimSpace(command) == "" {
			return bad("want KIND/NAME:PHASE=COMMAND, e.g. deployment/web:pre-backup='sync'")
		}
		t, err := parseTarget(targetPart)
		if err != nil {
			return bad(err.Error())
		}
		var m *api.Member
		var names []string
		for i := range members {
			names = append(names, members[i].Target.String())
			if members[i].Target == t {
				m = &members[i]
			}
		}
		if m == nil {
			return bad(fmt.Sprintf("%s is not a member of the batch (its members: %s)", t, strings.Join(names, ", ")))
		}
		if m.Hooks == nil {
			m.Hooks = &api.Hooks{}
		}
		var h api.Hook
		switch phase {
		case "pre-backup", "post-backup":
			h, err = commandHook(base, "--member-hook", command)
		case "pre-backup-http", "post-backup-http":
			h, err = httpHook(base, "--member-hook", command)
		default:
			return bad(fmt.Sprintf("phase %q: want pre-backup, post-backup, pre-backup-http or post-backup-http", phase))
		}
		if err != nil {
			return err
		}
		if strings.HasPrefix(phase, "pre-") {
			m.Hooks.PreBackup = append(m.Hooks.PreBackup, h)
		} else {
			h.Policy = o.PostPolicy
			m.Hooks.PostBackup = append(m.Hooks.PostBackup, h)
		}
	}
	return nil
}

func commandHook(base api.Hook, flag, s string) (api.Hook, error) {
	argv, err := api.ParseHookCommand(s)
	if err != nil {
		return base, fmt.Errorf("%s %q: %v", flag, s, err)
	}
	base.Exec = argv
	return base, nil
}

// httpHook reads "[METHOD ]URL"; a URL without a host asks the target's pod.
func httpHook(base api.Hook, flag, s string) (api.Hook, error) {
	method, raw := "GET", strings.TrimSpace(s)
	if m, rest, ok := strings.Cut(raw, " "); ok {
		method, raw = strings.ToUpper(m), strings.TrimSpace(rest)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return base, fmt.Errorf("%s %q: want [METHOD ]http://[HOST]:PORT/PATH", flag, s)
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return base, fmt.Errorf("%s %q: port %q: %v", flag, s, p, err)
		}
	}
	p := u.EscapedPath()
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	base.HTTP = &api.HTTPHook{Method: method, Scheme: u.Scheme, Host: u.Hostname(), Port: port, Path: path.Clean("/" + p)}
	if strings.HasSuffix(p, "/") && p != "/" {
		base.HTTP.Path += "/"
	}
	return base, base.Validate(flag, false)
}

// parseMember reads a --member value: KIND/NAME:PATH[,PATH…] backs up paths,
// KIND/NAME:dump[=PRESET] dumps a database.
func parseMember(s string) (api.Member, error) {
	t, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return api.Member{}, fmt.Errorf("--member %q: want KIND/NAME:/path[,/path…] or KIND/NAME:dump[=PRESET]", s)
	}
	target, err := parseTarget(t)
	if err != nil {
		return api.Member{}, fmt.Errorf("--member %q: %v", s, err)
	}
	m := api.Member{Target: target}
	if rest == "dump" || strings.HasPrefix(rest, "dump=") {
		m.Dump = &api.Dump{}
		if _, preset, ok := strings.Cut(rest, "="); ok && preset != "auto" {
			p, known := api.FindPreset(preset)
			if !known {
				return api.Member{}, fmt.Errorf("--member %q: dump preset %q: want one of %s, or auto", s, preset, api.PresetNames())
			}
			m.Dump.Preset = p.Name
		}
		if target.Kind == "pvc" {
			return api.Member{}, fmt.Errorf("--member %q: a dump runs in the database's pod; a pvc has none: name its workload", s)
		}
		return m, nil
	}
	for _, p := range strings.Split(rest, ",") {
		if !path.IsAbs(p) {
			return api.Member{}, fmt.Errorf("--member %q: path %q: want an absolute path, as the workload's containers see it", s, p)
		}
		m.Paths = append(m.Paths, path.Clean(p))
	}
	if target.Kind == "pvc" {
		m.MountPath = "/data"
	}
	return m, nil
}
