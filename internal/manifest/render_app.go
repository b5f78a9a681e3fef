package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// Writing back what app.go reads: database tasks, hooks, and BackupBatch, as Stash
// manifests and as flags; KubeStash has no form of them here.

// ---- Stash ----

// memberOf is a configuration's target part, as a batch's member holds it.
func memberOf(c api.BackupConfig) api.Member {
	return api.Member{Target: c.Target, Paths: c.Paths, Excludes: c.Excludes, MountPath: c.MountPath, VolumeMounts: c.VolumeMounts,
		Alias: c.Alias, Dump: c.Dump, Hooks: c.Hooks}
}

// stashTemplate is the BackupConfigurationTemplateSpec of a configuration or member but
// its runtime settings: the task, the target and the hooks.
func (r *renderer) stashTemplate(what string, m api.Member) stashTemplateSpec {
	var s stashTemplateSpec
	tg := &stashBackupTarget{Alias: m.Alias, Ref: targetRef(m.Target)}
	switch {
	case m.Dump != nil:
		s.Task.Name = presetTask(m.Dump, "backup")
		if len(m.Paths)+len(m.Excludes)+len(m.VolumeMounts) > 0 || m.MountPath != "" {
			r.cannot("%s: %s is dumped, and a Stash database task takes no paths, exclude patterns or volume mounts", what, m.Target)
		}
	case m.Target.Kind == "pvc":
		s.Task.Name = "pvc-backup"
		tg.Paths, tg.Exclude = m.Paths, m.Excludes
		tg.VolumeMounts = []corev1.VolumeMount{{Name: m.Target.Name, MountPath: m.MountPath}}
	default:
		tg.Paths, tg.Exclude, tg.VolumeMounts = m.Paths, m.Excludes, k8sVolumeMounts(m.VolumeMounts)
	}
	s.Target = tg
	s.Hooks = r.stashBackupHooks(what, m.Hooks)
	return s
}

// stashBackupHooks are the Stash form of a configuration's hooks: one preBackup and one
// postBackup handler.
func (r *renderer) stashBackupHooks(what string, hs *api.Hooks) *stashBackupHooks {
	if hs.Empty() {
		return nil
	}
	if len(hs.PreRestore)+len(hs.PostRestore) > 0 {
		r.cannot("%s: restore hooks have no place in a Stash backup configuration", what)
	}
	pre, post := r.stashHookPair(what, api.HookPreBackup, api.HookPostBackup, hs.PreBackup, hs.PostBackup)
	if pre == nil && post == nil {
		return nil
	}
	return &stashBackupHooks{PreBackup: pre, PostBackup: post}
}

// stashRestoreHooks are the Stash form of a restore's hooks.
func (r *renderer) stashRestoreHooks(what string, hs *api.Hooks) *stashRestoreHooks {
	if hs.Empty() {
		return nil
	}
	if len(hs.PreBackup)+len(hs.PostBackup) > 0 {
		r.cannot("%s: backup hooks have no place in a Stash RestoreSession", what)
	}
	pre, post := r.stashHookPair(what, api.HookPreRestore, api.HookPostRestore, hs.PreRestore, hs.PostRestore)
	if pre == nil && post == nil {
		return nil
	}
	return &stashRestoreHooks{PreRestore: pre, PostRestore: post}
}

func (r *renderer) stashHookPair(what, preName, postName string, pre, post []api.Hook) (*proberHandler, *postHook) {
	var ph *proberHandler
	var po *postHook
	for _, g := range []struct {
		name  string
		hooks []api.Hook
	}{{preName, pre}, {postName, post}} {
		if len(g.hooks) > 1 {
			r.cannot("%s: %d %s hooks: a Stash manifest has one %s handler", what, len(g.hooks), g.name, g.name)
		}
	}
	if len(pre) > 0 {
		h := r.stashHandlerOf(what, preName, pre[0])
		ph = &h
	}
	if len(post) > 0 {
		po = &postHook{proberHandler: r.stashHandlerOf(what, postName, post[0]), ExecutionPolicy: post[0].Policy}
	}
	return ph, po
}

// stashHandlerOf is a hook as a prober handler.
func (r *renderer) stashHandlerOf(what, phase string, h api.Hook) proberHandler {
	ph := proberHandler{ContainerName: h.Container}
	if h.Name != "" {
		r.cannot("%s: the %s hook's name %q has no Stash field", what, phase, h.Name)
	}
	switch {
	case len(h.Exec) > 0:
		ph.Exec = &corev1.ExecAction{Command: h.Exec}
	case h.HTTP != nil:
		x := h.HTTP
		scheme := corev1.URIScheme(strings.ToUpper(x.Scheme))
		if scheme != corev1.URISchemeHTTP && scheme != corev1.URISchemeHTTPS {
			r.cannot("%s: the %s hook's scheme %q: a Stash hook's is HTTP or HTTPS", what, phase, x.Scheme)
		}
		if hookPath(x.Path) != x.Path {
			r.cannot("%s: the %s hook's path %q would be read back as %q", what, phase, x.Path, hookPath(x.Path))
		}
		var headers []corev1.HTTPHeader
		for _, k := range sortedKeys(x.Headers) {
			headers = append(headers, corev1.HTTPHeader{Name: k, Value: x.Headers[k]})
		}
		switch x.Method {
		case "GET":
			ph.HTTPGet = &corev1.HTTPGetAction{Path: x.Path, Port: intstr.FromInt(x.Port), Host: x.Host, Scheme: scheme, HTTPHeaders: headers}
			if x.Body != "" {
				r.cannot("%s: the %s hook sends a body with GET, which a Stash httpGet has no field for", what, phase)
			}
		case "POST":
			ph.HTTPPost = &httpPostAction{Path: x.Path, Port: intstr.FromInt(x.Port), Host: x.Host, Scheme: scheme, HTTPHeaders: headers, Body: x.Body}
		default:
			r.cannot("%s: the %s hook's method %s: a Stash hook sends GET (httpGet) or POST (httpPost)", what, phase, x.Method)
		}
	default:
		r.cannot("%s: the %s hook has no action", what, phase)
	}
	return ph
}

// appAnnotations are the annotations of what the dumps and hooks of an object say and
// Stash has no field for: the dump's commands, container and file (the same for every
// dump of the object), and the hooks' time limit (the same for every hook). add holds
// annotations already made, nil for none.
func (r *renderer) appAnnotations(what string, add map[string]string, dumps []*api.Dump, hooks []*api.Hooks) map[string]string {
	a := map[string]string{}
	for k, v := range add {
		a[k] = v
	}
	if len(dumps) > 0 {
		for _, f := range []struct {
			key string
			get func(*api.Dump) string
		}{{AnnotationDumpCommand, func(d *api.Dump) string { return d.DumpCommand }}, {AnnotationRestoreCommand, func(d *api.Dump) string { return d.RestoreCommand }},
			{AnnotationDumpContainer, func(d *api.Dump) string { return d.Container }}, {AnnotationDumpFile, func(d *api.Dump) string { return d.FileName }}} {
			v := f.get(dumps[0])
			for _, d := range dumps[1:] {
				if f.get(d) != v {
					r.cannot("%s: the database members differ in %s, and a Stash manifest says it once for all of them (the annotation %s)", what, strings.TrimPrefix(f.key, api.Prefix), f.key)
					v = ""
					break
				}
			}
			if v != "" {
				a[f.key] = v
			}
		}
	}
	var timeouts []string
	for _, hs := range hooks {
		if hs == nil {
			continue
		}
		for _, list := range [][]api.Hook{hs.PreBackup, hs.PostBackup, hs.PreRestore, hs.PostRestore} {
			for _, h := range list {
				if !slices.Contains(timeouts, h.Timeout) {
					timeouts = append(timeouts, h.Timeout)
				}
			}
		}
	}
	switch {
	case len(timeouts) > 1:
		r.cannot("%s: the hooks have different time limits (%s), and a Stash manifest gives one for all of them (the annotation %s)", what, strings.Join(timeouts, ", "), AnnotationHookTimeout)
	case len(timeouts) == 1 && timeouts[0] != "":
		a[AnnotationHookTimeout] = timeouts[0]
	}
	if len(a) == 0 {
		return nil
	}
	return a
}

// dumpsOf lists the dumps of a configuration: its own or its database members'.
func dumpsOf(c api.BackupConfig) []*api.Dump {
	var out []*api.Dump
	for _, m := range c.MemberConfigs() {
		if m.Dump != nil {
			out = append(out, m.Dump)
		}
	}
	return out
}

// hooksOf lists the hooks of a configuration: its own or its members'.
func hooksOf(c api.BackupConfig) []*api.Hooks {
	var out []*api.Hooks
	for _, m := range c.MemberConfigs() {
		out = append(out, m.Hooks)
	}
	return out
}

// stashRetentionOf is a configuration's retention policy as Stash writes it.
func stashRetentionOf(c api.BackupConfig) stashRetentionPolicy {
	rp := c.Retention
	return stashRetentionPolicy{Name: c.Name, KeepLast: int64(rp.KeepLast), KeepHourly: int64(rp.KeepHourly), KeepDaily: int64(rp.KeepDaily),
		KeepWeekly: int64(rp.KeepWeekly), KeepMonthly: int64(rp.KeepMonthly), KeepYearly: int64(rp.KeepYearly), KeepTags: rp.KeepTags, Prune: c.Prune}
}

// stashBatch writes a batch as a BackupBatch: the members, each with the batch's tempDir,
// and the batch's runtime settings, schedule, repository and retention.
func (r *renderer) stashBatch(c api.BackupConfig) {
	what := "backupbatch " + c.Name
	bb := &stashBackupBatch{APIVersion: StashV1beta1, Kind: "BackupBatch", Metadata: r.meta(c.Name)}
	bb.Metadata.Annotations = r.appAnnotations(what, nil, dumpsOf(c), hooksOf(c))
	if c.Target != (api.Target{}) || len(c.Paths)+len(c.Excludes)+len(c.VolumeMounts) > 0 || c.MountPath != "" || c.Alias != "" || c.Dump != nil || !c.Hooks.Empty() {
		r.cannot("%s: a batch's target, paths, dump and hooks are its members'", what)
	}
	if c.Session != "" {
		r.cannot("%s: the KubeStash session %q has no Stash field", what, c.Session)
	}
	s := &bb.Spec
	td := tempDirOf(c.Runtime)
	for _, m := range c.Members {
		t := r.stashTemplate(what+" member "+m.Target.String(), m)
		t.TempDir = td
		s.Members = append(s.Members, t)
	}
	s.Schedule = c.Schedule
	s.RuntimeSettings = runtimeSettingsOf(c.Runtime)
	s.Repository = stashObjectRef{Name: c.Repository}
	s.RetentionPolicy = stashRetentionOf(c)
	s.Paused = c.Paused
	s.BackupHistoryLimit = int32p(c.HistoryLimit)
	s.ExecutionOrder = c.ExecutionOrder
	s.TimeOut = c.Timeout
	r.add(bb)
}

// ---- KubeStash ----

// ksCannotApp says what of a configuration or restore KubeStash has no form of here.
func (r *renderer) ksCannotApp(what string, dump *api.Dump, hooks *api.Hooks) {
	if dump != nil {
		r.cannot("%s: a database dumped inside its pod has no KubeStash form (KubeStash dumps databases with KubeDB's addons); write it with -o stash", what)
	}
	if !hooks.Empty() {
		r.cannot("%s: KubeStash hooks are HookTemplate objects, which kubectl-stash does not write; write them with -o stash", what)
	}
}

// ---- flags ----

// dumpFlags writes a dump as --dump and the flags that change it.
func (f *flagRenderer) dumpFlags(c *command, d *api.Dump) {
	preset := d.Preset
	if preset == "" {
		preset = "auto"
	}
	c.flag("dump", preset)
	f.dumpOverrideFlags(c, d)
}

func (f *flagRenderer) dumpOverrideFlags(c *command, d *api.Dump) {
	for _, x := range []struct{ flag, v string }{{"dump-command", d.DumpCommand}, {"restore-command", d.RestoreCommand},
		{"dump-container", d.Container}, {"dump-file", d.FileName}} {
		if x.v != "" {
			c.flag(x.flag, x.v)
		}
	}
}

// hookFlags writes hooks as --pre-backup, --post-backup-http… (or the restore's), when the
// flags can say them: commands before requests in each phase, one container, one time
// limit and one post policy for all of them.
func (f *flagRenderer) hookFlags(c *command, what string, hs *api.Hooks, backup bool) {
	if hs.Empty() {
		return
	}
	pre, post, preName, postName := hs.PreBackup, hs.PostBackup, "pre-backup", "post-backup"
	other := len(hs.PreRestore) + len(hs.PostRestore)
	if !backup {
		pre, post, preName, postName = hs.PreRestore, hs.PostRestore, "pre-restore", "post-restore"
		other = len(hs.PreBackup) + len(hs.PostBackup)
	}
	if other > 0 {
		f.cannot("%s: its %s hooks have no flag", what, map[bool]string{true: "restore", false: "backup"}[backup])
	}
	all := append(append([]api.Hook(nil), pre...), post...)
	if len(all) == 0 {
		return
	}
	// one container, one time limit and one post policy for all the hooks, written after them
	var shared [][2]string
	for _, x := range []struct {
		what string
		flag string
		get  func(api.Hook) string
		list []api.Hook
	}{{"policies", postName + "-policy", func(h api.Hook) string { return h.Policy }, post},
		{"containers", "hook-container", func(h api.Hook) string { return h.Container }, all},
		{"time limits", "hook-timeout", func(h api.Hook) string { return h.Timeout }, all}} {
		if len(x.list) == 0 {
			continue
		}
		v := x.get(x.list[0])
		for _, h := range x.list[1:] {
			if x.get(h) != v {
				f.cannot("%s: the hooks have different %s, and --%s gives one for all of them", what, x.what, x.flag)
				v = ""
				break
			}
		}
		if v != "" {
			shared = append(shared, [2]string{x.flag, v})
		}
	}
	for _, g := range []struct {
		name  string
		hooks []api.Hook
	}{{preName, pre}, {postName, post}} {
		http := false
		for _, h := range g.hooks {
			if h.Name != "" {
				f.cannot("%s: the hook's name %q has no flag", what, h.Name)
			}
			switch {
			case len(h.Exec) > 0:
				if http {
					f.cannot("%s: a %s command comes after a request, and the flags run the commands (--%s) before the requests (--%s-http)", what, g.name, g.name, g.name)
					continue
				}
				c.flag(g.name, hookCommandFlag(h.Exec))
			case h.HTTP != nil:
				http = true
				s, why := httpFlag(*h.HTTP)
				if why != "" {
					f.cannot("%s: the %s request %s %s:%d%s: %s", what, g.name, h.HTTP.Method, h.HTTP.Host, h.HTTP.Port, h.HTTP.Path, why)
					continue
				}
				c.flag(g.name+"-http", s)
			}
		}
	}
	for _, x := range shared {
		c.flag(x[0], x[1])
	}
}

// hookCommandFlag is a command as --pre-backup reads it: the shell command line of
// /bin/sh -c, or the JSON array of the argv.
func hookCommandFlag(argv []string) string {
	if len(argv) == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" {
		if got, err := api.ParseHookCommand(argv[2]); err == nil && slices.Equal(got, argv) {
			return argv[2]
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(argv)
	return strings.TrimSpace(b.String())
}

// httpFlag is a request as --pre-backup-http reads it ("[METHOD ]URL"), or why the flag
// cannot say it.
func httpFlag(h api.HTTPHook) (string, string) {
	if len(h.Headers) > 0 {
		return "", "headers have no flag"
	}
	if h.Body != "" {
		return "", "a body has no flag"
	}
	s := h.Scheme + "://" + net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) + h.Path
	if h.Method != "GET" {
		s = h.Method + " " + s
	}
	if got, ok := parseHTTPFlag(s); !ok || !reflect.DeepEqual(got, h) {
		return "", "the flag would read it otherwise"
	}
	return s, ""
}

// parseHTTPFlag reads "[METHOD ]URL" as the --*-http flags do (plugin/cmd httpHook), to
// check that what is written is read back the same.
func parseHTTPFlag(s string) (api.HTTPHook, bool) {
	method, raw := "GET", strings.TrimSpace(s)
	if m, rest, ok := strings.Cut(raw, " "); ok {
		method, raw = strings.ToUpper(m), strings.TrimSpace(rest)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return api.HTTPHook{}, false
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if ps := u.Port(); ps != "" {
		if port, err = strconv.Atoi(ps); err != nil {
			return api.HTTPHook{}, false
		}
	}
	p := u.EscapedPath()
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	h := api.HTTPHook{Method: method, Scheme: u.Scheme, Host: u.Hostname(), Port: port, Path: path.Clean("/" + p)}
	if strings.HasSuffix(p, "/") && p != "/" {
		h.Path += "/"
	}
	return h, true
}

// batch writes a batch configuration as backup --batch NAME --member …: the flags give
// every member the same exclude patterns and hooks, and every database member the same
// dump commands, container and file.
func (f *flagRenderer) batch(cfg api.BackupConfig) {
	what := "backup " + cfg.Name
	c := f.cmd("backup")
	c.flag("batch", cfg.Name)
	c.flag("repo", cfg.Repository)
	var dumps []*api.Dump
	for _, m := range cfg.Members {
		mw := fmt.Sprintf("%s member %s", what, m.Target)
		if m.Alias != "" {
			f.cannot("%s: the alias %q has no flag in a batch (--member KIND/NAME:PATHS)", mw, m.Alias)
		}
		if len(m.VolumeMounts) > 0 {
			f.cannot("%s: volume mounts have no flag in a batch (--member KIND/NAME:PATHS)", mw)
		}
		if m.Dump != nil {
			spec := "dump"
			if m.Dump.Preset != "" {
				spec += "=" + m.Dump.Preset
			}
			if len(m.Paths) > 0 || m.MountPath != "" {
				f.cannot("%s: a database member has no paths", mw)
			}
			c.flag("member", m.Target.String()+":"+spec)
			dumps = append(dumps, m.Dump)
			continue
		}
		if m.Target.Kind == "pvc" && m.MountPath != "/data" {
			f.cannot("%s: the claim is mounted at %s, and --member mounts it at /data", mw, m.MountPath)
		}
		if len(m.Paths) == 0 {
			f.cannot("%s: no paths", mw)
		}
		f.noComma(mw, "member", m.Paths)
		c.flag("member", m.Target.String()+":"+strings.Join(m.Paths, ","))
	}
	// what the flags give every member: written when every member has the same
	first := cfg.Members[0]
	sameExcludes := true
	for _, m := range cfg.Members[1:] {
		sameExcludes = sameExcludes && slices.Equal(m.Excludes, first.Excludes)
	}
	if sameExcludes {
		c.flag("exclude", first.Excludes...)
	} else {
		f.cannot("%s: the members have different exclude patterns, and --exclude gives every member the same", what)
	}
	f.batchHooks(c, what, cfg.Members)
	if len(dumps) > 0 {
		same := true
		for _, d := range dumps[1:] {
			same = same && d.Container == dumps[0].Container && d.DumpCommand == dumps[0].DumpCommand && d.RestoreCommand == dumps[0].RestoreCommand && d.FileName == dumps[0].FileName
		}
		if same {
			f.dumpOverrideFlags(c, dumps[0])
		} else {
			f.cannot("%s: the database members have different dump commands, containers or files, and the dump flags give every database member the same", what)
		}
	}
	if cfg.ExecutionOrder != "" {
		c.flag("execution-order", cfg.ExecutionOrder)
	}
	if cfg.Target != (api.Target{}) || len(cfg.Paths)+len(cfg.Excludes)+len(cfg.VolumeMounts) > 0 || cfg.MountPath != "" || cfg.Alias != "" || cfg.Dump != nil || !cfg.Hooks.Empty() {
		f.cannot("%s: a batch's target, paths, dump and hooks are its members'", what)
	}
	f.configFlags(c, what, cfg)
	f.emit(c)
}

// batchHooks writes a batch's hooks: those every member has first (the hook flags), then
// each member's own after them (--member-hook KIND/NAME:PHASE=…), as the flags read them
// back. One container, time limit and post policy hold for all of them.
func (f *flagRenderer) batchHooks(c *command, what string, members []api.Member) {
	phase := func(m api.Member, post bool) []api.Hook {
		switch {
		case m.Hooks == nil:
			return nil
		case post:
			return m.Hooks.PostBackup
		}
		return m.Hooks.PreBackup
	}
	// the longest run of hooks every member starts each phase with
	prefix := func(post bool) []api.Hook {
		common := phase(members[0], post)
		for _, m := range members[1:] {
			hs, n := phase(m, post), 0
			for n < len(common) && n < len(hs) && reflect.DeepEqual(common[n], hs[n]) {
				n++
			}
			common = common[:n]
		}
		return common
	}
	common := &api.Hooks{PreBackup: prefix(false), PostBackup: prefix(true)}
	for _, m := range members {
		if m.Hooks != nil && len(m.Hooks.PreRestore)+len(m.Hooks.PostRestore) > 0 {
			f.cannot("%s member %s: its restore hooks have no flag", what, m.Target)
		}
	}
	f.hookFlags(c, what, common, true)
	// the settings the flags give every hook: those of the shared hooks, else of the first
	// member's own
	var all, posts []api.Hook
	all = append(append(all, common.PreBackup...), common.PostBackup...)
	posts = append(posts, common.PostBackup...)
	sharedAll, sharedPosts := len(all), len(posts)
	for _, m := range members {
		all = append(all, phase(m, false)[len(common.PreBackup):]...)
		own := phase(m, true)[len(common.PostBackup):]
		all, posts = append(all, own...), append(posts, own...)
	}
	if len(all) == sharedAll {
		return // no member has hooks of its own
	}
	for _, x := range []struct {
		what, flag string
		get        func(api.Hook) string
		list       []api.Hook
		written    bool
	}{{"time limits", "hook-timeout", func(h api.Hook) string { return h.Timeout }, all, sharedAll > 0},
		{"containers", "hook-container", func(h api.Hook) string { return h.Container }, all, sharedAll > 0},
		{"policies", "post-backup-policy", func(h api.Hook) string { return h.Policy }, posts, sharedPosts > 0}} {
		if len(x.list) == 0 {
			continue
		}
		v := x.get(x.list[0])
		for _, h := range x.list[1:] {
			if x.get(h) != v {
				f.cannot("%s: the members' hooks have different %s, and --%s gives one for all of them", what, x.what, x.flag)
				break
			}
		}
		if !x.written && v != "" {
			c.flag(x.flag, v)
		}
	}
	for _, m := range members {
		for _, g := range []struct {
			name  string
			hooks []api.Hook
		}{{"pre-backup", phase(m, false)[len(common.PreBackup):]}, {"post-backup", phase(m, true)[len(common.PostBackup):]}} {
			for _, h := range g.hooks {
				if h.Name != "" {
					f.cannot("%s member %s: the hook's name %q has no flag", what, m.Target, h.Name)
				}
				if len(h.Exec) > 0 {
					c.flag("member-hook", m.Target.String()+":"+g.name+"="+hookCommandFlag(h.Exec))
					continue
				}
				s, why := httpFlag(*h.HTTP)
				if why != "" {
					f.cannot("%s member %s: the %s request %s %s:%d%s: %s", what, m.Target, g.name, h.HTTP.Method, h.HTTP.Host, h.HTTP.Port, h.HTTP.Path, why)
					continue
				}
				c.flag("member-hook", m.Target.String()+":"+g.name+"-http="+s)
			}
		}
	}
}
