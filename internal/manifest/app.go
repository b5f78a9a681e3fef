package manifest

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// Application-aware manifests: Stash's database tasks (dumped here inside the database's
// own pod), Stash's hooks, and BackupBatch (one configuration of several members).

// Annotations of a Stash BackupConfiguration, BackupBatch or RestoreSession for what the
// model has and Stash has no field for. The dump annotations change the dump of the
// configuration, or of every database member of a batch, as --dump-command,
// --restore-command, --dump-container and --dump-file do; the hook timeout bounds every
// hook of the object, as --hook-timeout does.
const (
	AnnotationDumpCommand    = api.Prefix + "dump-command"
	AnnotationRestoreCommand = api.Prefix + "restore-command"
	AnnotationDumpContainer  = api.Prefix + "dump-container"
	AnnotationDumpFile       = api.Prefix + "dump-file"
	AnnotationHookTimeout    = api.Prefix + "hook-timeout"
)

// dumpAnnotations are the annotations that change a dump, in the order they are written.
var dumpAnnotations = []string{AnnotationDumpCommand, AnnotationRestoreCommand, AnnotationDumpContainer, AnnotationDumpFile}

// The kubectl-stash.io/ annotations each kind reads; another is refused (a misspelt one
// would otherwise be dropped without a word).
var (
	backupAnnotationKeys    = append(slices.Clone(dumpAnnotations), AnnotationHookTimeout)
	ksRestoreAnnotationKeys = []string{AnnotationFromConfig, AnnotationSourceTarget, AnnotationOverwrite, AnnotationDelete, AnnotationScaleDown, AnnotationPaths}
	restoreAnnotationKeys   = append(slices.Clone(ksRestoreAnnotationKeys), backupAnnotationKeys...)
)

// checkAnnotations refuses the kubectl-stash.io/ annotations the kind does not read.
func checkAnnotations(d *doc, ann map[string]string, known []string) {
	for _, k := range sortedKeys(ann) {
		if !strings.HasPrefix(k, api.Prefix) || slices.Contains(known, k) {
			continue
		}
		hint := didYouMean(k, known)
		if hint == "" {
			if len(known) == 0 {
				hint = fmt.Sprintf(" (a %s reads none)", d.kind)
			} else {
				hint = fmt.Sprintf(" (a %s reads %s)", d.kind, strings.Join(known, ", "))
			}
		}
		d.fail(join("metadata.annotations", k), "unknown annotation %s%s", k, hint)
	}
}

// didYouMean names the known value closest to a misspelt one: ": did you mean "X"?", or "".
func didYouMean(v string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := distance(strings.ToLower(v), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(": did you mean %q?", best)
}

// ---- database tasks ----

// dbTaskRE is a Stash database task: <database>-backup or <database>-restore, with the
// addon's version after it (pg-backup-14.1, mysql-restore-8.0.14), or without one as
// kubectl-stash writes it.
var dbTaskRE = regexp.MustCompile(`^([a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*?)-(backup|restore)(-[0-9a-zA-Z][0-9a-zA-Z._+-]*)?$`)

// taskDatabaseAuto is the database of kubectl-stash's own task database-backup (and
// database-restore): a dump whose database the pod's image says, or whose commands the
// annotations give (--dump without a preset).
const taskDatabaseAuto = "database"

// taskAliases are the database names of Stash's tasks that are not the presets' own.
var taskAliases = map[string]string{"pg": "postgres", "postgresql": "postgres", "mariadb": "mysql", "mongo": "mongodb"}

// taskPreset is the preset of a task's database name.
func taskPreset(db string) (string, bool) {
	if a, ok := taskAliases[db]; ok {
		db = a
	}
	p, ok := api.FindPreset(db)
	return p.Name, ok
}

// taskDatabases lists the database names of tasks, for messages.
func taskDatabases() string {
	var out []string
	for _, p := range api.DumpPresets {
		names := []string{p.Name}
		for _, a := range sortedKeys(taskAliases) {
			if taskAliases[a] == p.Name {
				names = append(names, a)
			}
		}
		out = append(out, strings.Join(names, "/"))
	}
	return strings.Join(out, ", ")
}

// presetTask is the task kubectl-stash writes for a dump: <preset>-backup, or
// database-backup when the dump names no preset.
func presetTask(d *api.Dump, verb string) string {
	if d.Preset == "" {
		return taskDatabaseAuto + "-" + verb
	}
	return d.Preset + "-" + verb
}

// stashTask checks a Stash task (verb backup or restore): none, or a workload or PVC task,
// is a file backup (nil dump); a database task is a dump of that database inside its own
// pod; another task names an addon image kubectl-stash does not have, and is refused
// (what is skipped then, says skipped).
func stashTask(d *doc, path string, t stashTaskRef, verb, skipped string) (*api.Dump, bool) {
	var dump *api.Dump
	switch {
	case t.Name == "" || stashTasks[t.Name]:
	default:
		m := dbTaskRE.FindStringSubmatch(t.Name)
		preset, known := "", false
		if m != nil {
			if m[1] == taskDatabaseAuto {
				known = true
			} else {
				preset, known = taskPreset(m[1])
			}
		}
		does := map[string]string{"backup": "backs up", "restore": "restores"}[verb]
		if !known {
			d.unsup(path+".name", "task %s refers to an addon image kubectl-stash does not have: it %s the volumes of workloads and PVCs (tasks workload-%s, pvc-%s, or none), and dumps databases inside their own pods (tasks <database>-%s[-<version>] of %s, or %s-%s with the %s annotation); %s",
				t.Name, does, verb, verb, verb, taskDatabases(), taskDatabaseAuto, verb, AnnotationDumpCommand, skipped)
			return nil, false
		}
		if m[2] != verb {
			d.fail(path+".name", "task %s is a %s task, and a %s %s: want %s-%s%s", t.Name, m[2], d.kind, does, m[1], verb, m[3])
			return nil, false
		}
		dump = &api.Dump{Preset: preset}
	}
	if len(t.Params) > 0 {
		d.unsup(path+".params", "task parameters are not read: the workload and PVC tasks take none, and a dump's commands are changed with the %s and %s annotations; remove them", AnnotationDumpCommand, AnnotationRestoreCommand)
	}
	return dump, true
}

// readDumpAnnotations reads the annotations that change a dump.
func readDumpAnnotations(d *doc, ann map[string]string) (api.Dump, string) {
	at := func(k string) string { return join("metadata.annotations", k) }
	var o api.Dump
	first := ""
	for _, k := range dumpAnnotations {
		v, ok := ann[k]
		if !ok {
			continue
		}
		if first == "" {
			first = k
		}
		if strings.TrimSpace(v) == "" {
			d.fail(at(k), "empty: give the value, or remove the annotation")
			continue
		}
		switch k {
		case AnnotationDumpCommand:
			o.DumpCommand = v
		case AnnotationRestoreCommand:
			o.RestoreCommand = v
		case AnnotationDumpContainer:
			if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
				d.fail(at(k), "%q is not a container name", v)
			}
			o.Container = v
		case AnnotationDumpFile:
			if strings.ContainsAny(v, "/\x00") || v == "." || v == ".." {
				d.fail(at(k), "%q: want a plain file name (the dump's file in the snapshot)", v)
			}
			o.FileName = v
		}
	}
	return o, first
}

// applyDumpAnnotations gives the dumps (of the configuration, or of each database member)
// what the annotations change; without a dump, an annotation is a mistake.
func applyDumpAnnotations(d *doc, ann map[string]string, dumps []*api.Dump, none string) {
	o, first := readDumpAnnotations(d, ann)
	if first == "" {
		return
	}
	if len(dumps) == 0 {
		d.fail(join("metadata.annotations", first), "%s changes a database's dump, and %s", first, none)
		return
	}
	for _, dp := range dumps {
		dp.Override(o)
	}
}

// applyHookTimeout gives every hook the annotation's timeout; declared says the manifest
// has hooks (some may have been skipped, with --ignore-unsupported).
func applyHookTimeout(d *doc, ann map[string]string, hooks []*api.Hooks, declared bool) {
	v, ok := ann[AnnotationHookTimeout]
	if !ok {
		return
	}
	at := join("metadata.annotations", AnnotationHookTimeout)
	t, err := time.ParseDuration(v)
	if err != nil || t <= 0 {
		d.fail(at, "%q: want a positive duration such as 30s or 5m (the time limit of each hook)", v)
		return
	}
	n := 0
	for _, hs := range hooks {
		if hs == nil {
			continue
		}
		for _, list := range [][]api.Hook{hs.PreBackup, hs.PostBackup, hs.PreRestore, hs.PostRestore} {
			for i := range list {
				list[i].Timeout = t.String()
				n++
			}
		}
	}
	if n == 0 && !declared {
		d.fail(at, "the %s has no hooks for this time limit to bound: add hooks, or remove the annotation", d.kind)
	}
}

// ---- hooks ----

// stashHooks maps Stash's hooks (a pre and a post handler of a phase); nil when there are
// none.
func stashHooks(d *doc, path, prePhase, postPhase string, pre *proberHandler, post *postHook) *api.Hooks {
	var preList, postList []api.Hook
	if pre != nil {
		if h, ok := stashHandler(d, path+"."+prePhase, pre); ok {
			preList = []api.Hook{h}
		}
	}
	if post != nil {
		h, ok := stashHandler(d, path+"."+postPhase, &post.proberHandler)
		pp := path + "." + postPhase + ".executionPolicy"
		switch pol := post.ExecutionPolicy; pol {
		case "", api.PolicyAlways, api.PolicyOnSuccess, api.PolicyOnFailure:
			h.Policy = pol
		case "OnFinalRetryFailure":
			if postPhase == api.HookPostBackup {
				d.unsup(pp, "OnFinalRetryFailure: there are no retries here (a failed session is recorded, never re-run), so every failure is final: use OnFailure; the hook is skipped")
				ok = false
				break
			}
			fallthrough
		default:
			d.fail(pp, "%q: want Always, OnSuccess or OnFailure%s", pol, didYouMean(pol, []string{api.PolicyAlways, api.PolicyOnSuccess, api.PolicyOnFailure}))
			ok = false
		}
		if ok {
			postList = []api.Hook{h}
		}
	}
	if len(preList)+len(postList) == 0 {
		return nil
	}
	hs := &api.Hooks{}
	switch prePhase {
	case api.HookPreBackup:
		hs.PreBackup, hs.PostBackup = preList, postList
	default:
		hs.PreRestore, hs.PostRestore = preList, postList
	}
	if err := hs.Validate(""); err != nil {
		d.fail(path, "%v", err)
	}
	return hs
}

// stashHandler maps a prober handler: an exec command, or an HTTP request; ok is false
// when it has no action kubectl-stash runs (reported).
func stashHandler(d *doc, path string, h *proberHandler) (api.Hook, bool) {
	hk := api.Hook{Container: h.ContainerName}
	n := 0
	for _, set := range []bool{h.Exec != nil, h.HTTPGet != nil, h.HTTPPost != nil, h.TCPSocket != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		d.fail(path, "missing: the hook's action: exec (a command run in the pod), httpGet or httpPost")
		return hk, false
	case n > 1:
		d.fail(path, "give one action of exec, httpGet, httpPost and tcpSocket (%d are given)", n)
		return hk, false
	case h.TCPSocket != nil:
		return hk, false // refused by the decoder
	}
	if c := h.ContainerName; c != "" {
		if errs := validation.IsDNS1123Label(c); len(errs) > 0 {
			d.fail(path+".containerName", "%q is not a container name", c)
		}
	}
	ok := true
	switch {
	case h.Exec != nil:
		if len(h.Exec.Command) == 0 {
			d.fail(path+".exec.command", "missing: the command and its arguments, run in the pod without a shell (e.g. [/bin/sh, -c, \"sync\"])")
			return hk, false
		}
		hk.Exec = h.Exec.Command
	case h.HTTPGet != nil:
		g := h.HTTPGet
		hk.HTTP, ok = httpHook(d, path+".httpGet", "GET", g.Scheme, g.Host, g.Port, g.Path, g.HTTPHeaders)
	case h.HTTPPost != nil:
		pa := h.HTTPPost
		hk.HTTP, ok = httpHook(d, path+".httpPost", "POST", pa.Scheme, pa.Host, pa.Port, pa.Path, pa.HTTPHeaders)
		if hk.HTTP != nil {
			hk.HTTP.Body = pa.Body
		}
		if len(pa.Form) > 0 {
			ok = false // refused by the decoder
		}
	}
	return hk, ok
}

// httpHook maps an httpGet or httpPost: the scheme (HTTP by default), the host (the
// pod's IP when empty), the port's number, the path and the headers.
func httpHook(d *doc, path, method string, scheme corev1.URIScheme, host string, port intstr.IntOrString, p string, headers []corev1.HTTPHeader) (*api.HTTPHook, bool) {
	h := &api.HTTPHook{Method: method, Host: host, Path: hookPath(p)}
	ok := true
	switch scheme {
	case "", corev1.URISchemeHTTP:
		h.Scheme = "http"
	case corev1.URISchemeHTTPS:
		h.Scheme = "https"
	default:
		d.fail(path+".scheme", "%q: want HTTP or HTTPS", scheme)
		ok = false
	}
	if strings.ContainsAny(host, "/?#@ ") {
		d.fail(path+".host", "%q: want a host name or IP address (the pod's own IP when empty)", host)
		ok = false
	}
	switch port.Type {
	case intstr.Int:
		h.Port = int(port.IntVal)
	case intstr.String:
		n, err := strconv.Atoi(port.StrVal)
		if err != nil {
			d.unsup(path+".port", "the named port %q is found by Stash among the container's ports, which kubectl-stash does not look up: give its number (port: 8080); the hook is skipped", port.StrVal)
			return h, false
		}
		h.Port = n
	}
	if h.Port < 1 || h.Port > 65535 {
		d.fail(path+".port", "%d: want the port's number, 1-65535", h.Port)
		ok = false
	}
	for i, hd := range headers {
		hp := fmt.Sprintf("%s.httpHeaders[%d]", path, i)
		if hd.Name == "" {
			d.fail(hp+".name", "missing: the header's name")
			ok = false
			continue
		}
		for k := range h.Headers {
			if strings.EqualFold(k, hd.Name) {
				d.unsup(hp+".name", "the header %s is given twice: kubectl-stash sends each header once; give it once", hd.Name)
				ok = false
			}
		}
		if h.Headers == nil {
			h.Headers = map[string]string{}
		}
		h.Headers[hd.Name] = hd.Value
	}
	return h, ok
}

// hookPath is a request's path as the --*-http flags make it: absolute and clean (a
// trailing slash kept), the query as it is.
func hookPath(p string) string {
	q := ""
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p, q = p[:i], p[i:]
	}
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c + q
}

// ---- BackupBatch ----

// executionOrder checks a batch's executionOrder.
func executionOrder(d *doc, path, v string) string {
	switch v {
	case "", api.OrderParallel, api.OrderSequential:
		return v
	}
	d.fail(path, "%q: want Parallel (the default: every member at once) or Sequential (one after another, in the members' order)%s", v, didYouMean(v, []string{api.OrderParallel, api.OrderSequential}))
	return ""
}

// stashBatch maps a BackupBatch: one configuration whose members are backed up in one
// session, with the batch's repository, schedule, retention and runtime.
func (p *parser) stashBatch(d *doc, bb *stashBackupBatch) {
	s := &bb.Spec
	cfg := api.BackupConfig{SchemaVersion: api.SchemaVersion, Name: d.name, HistoryLimit: 1}
	checkName(d, d.name, 40, "session and host Jobs append to it")
	ann := bb.Metadata.Annotations
	checkAnnotations(d, ann, backupAnnotationKeys)
	if !driver(d, s.Driver) {
		return
	}
	cfg.ExecutionOrder = executionOrder(d, "spec.executionOrder", s.ExecutionOrder)
	if len(s.Members) == 0 {
		d.fail("spec.members", "missing: the batch's targets; add members [{target: {ref: {apiVersion, kind, name}, paths: [...]}}], a database's with its task (task.name: postgres-backup)")
		return
	}
	runtime(d, "spec.runtimeSettings", s.RuntimeSettings, &cfg.Runtime)
	batchRuntime := !isZeroRuntime(cfg.Runtime)
	// the model has one runtime per configuration: the members' own settings are
	// honoured when every member gives the same
	type memberRuntime struct {
		i        int
		settings api.Runtime // runtimeSettings
		tempDir  api.Runtime // tempDir
	}
	var rts []memberRuntime
	seen := map[api.Target]int{}
	for i := range s.Members {
		mp := fmt.Sprintf("spec.members[%d]", i)
		ms := &s.Members[i]
		dump, ok := stashTask(d, mp+".task", ms.Task, "backup", "the member is skipped")
		if !ok {
			continue
		}
		m, ok := p.backupTemplate(d, mp, ms, dump)
		if !ok {
			continue
		}
		if j, dup := seen[m.Target]; dup {
			d.fail(mp+".target.ref", "%s is the target of members[%d] too: give each target once (one member backs up all its paths)", m.Target, j)
			continue
		}
		seen[m.Target] = i
		mr := memberRuntime{i: i}
		runtime(d, mp+".runtimeSettings", ms.RuntimeSettings, &mr.settings)
		tempDir(d, mp+".tempDir", ms.TempDir, &mr.tempDir)
		if batchRuntime && !isZeroRuntime(mr.settings) {
			d.unsup(mp+".runtimeSettings", "the batch's spec.runtimeSettings are its host pods' runtime settings: give them there only (a batch's host pods run with one runtime)")
			mr.settings = api.Runtime{}
		}
		rts = append(rts, mr)
		cfg.Members = append(cfg.Members, m)
	}
	if len(cfg.Members) == 0 {
		return // every member was refused
	}
	first := rts[0]
	for _, mr := range rts[1:] {
		if !batchRuntime && !sameRuntime(mr.settings, first.settings) {
			d.unsup(fmt.Sprintf("spec.members[%d].runtimeSettings", mr.i), "members[%d] and members[%d] have different runtime settings, and a batch's host pods run with one runtime: give them once, in spec.runtimeSettings", first.i, mr.i)
		}
		if !sameRuntime(mr.tempDir, first.tempDir) {
			d.unsup(fmt.Sprintf("spec.members[%d].tempDir", mr.i), "members[%d] and members[%d] have a different tempDir, and a batch's host pods run with one runtime: give every member the same tempDir", first.i, mr.i)
		}
	}
	if !batchRuntime {
		cfg.Runtime = first.settings
	}
	cfg.Runtime.TempDirMedium, cfg.Runtime.CacheSize, cfg.Runtime.NoCache = first.tempDir.TempDirMedium, first.tempDir.CacheSize, first.tempDir.NoCache

	var dumps []*api.Dump
	var hooks []*api.Hooks
	for i := range cfg.Members {
		if cfg.Members[i].Dump != nil {
			dumps = append(dumps, cfg.Members[i].Dump)
		}
		hooks = append(hooks, cfg.Members[i].Hooks)
	}
	applyDumpAnnotations(d, ann, dumps, "no member of the BackupBatch is a database (a task such as postgres-backup)")
	declared := false
	for i := range s.Members {
		declared = declared || preBackupOf(s.Members[i].Hooks) != nil || postBackupOf(s.Members[i].Hooks) != nil
	}
	applyHookTimeout(d, ann, hooks, declared)

	cfg.Repository = stashRepositoryRef(d, s.Repository)
	cfg.Schedule = schedule(d, "spec.schedule", s.Schedule)
	cfg.Retention = stashRetention(d, "spec.retentionPolicy", s.RetentionPolicy)
	cfg.Prune = s.RetentionPolicy.Prune && !s.RetentionPolicy.DryRun
	cfg.Paused = s.Paused
	if h := s.BackupHistoryLimit; h != nil {
		if *h < 0 {
			d.fail("spec.backupHistoryLimit", "%d: want 0 or more", *h)
		}
		cfg.HistoryLimit = int(*h)
	}
	cfg.Timeout = duration(d, "spec.timeOut", s.TimeOut)
	if err := cfg.ValidateMembers(); err != nil {
		d.fail("spec.members", "%v", err)
		return
	}
	p.set.Backups = append(p.set.Backups, Backup{Config: cfg, Origin: origin(d)})
}

// sameRuntime reports whether two runtimes say the same.
func sameRuntime(a, b api.Runtime) bool {
	return string(jsonOf(a)) == string(jsonOf(b))
}

// dumpTargetChecks refuses a target a database's restore cannot go into: it streams the
// dump into the restore command in the database's running pod, as restore --dump does.
func dumpTargetChecks(d *doc, task string, t api.Target, tg *stashRestoreTarget) bool {
	why := fmt.Sprintf("the target is a database (task %s), restored through its running pod", task)
	switch {
	case t.Kind == "pvc":
		d.fail("spec.target.ref.kind", "%s, and a PersistentVolumeClaim has none: name the database's StatefulSet or Deployment", why)
	case len(tg.VolumeClaimTemplates) > 0:
		d.fail("spec.target.volumeClaimTemplates", "%s: a StatefulSet about to be created has none; create the database first, then restore into it", why)
	case tg.Replicas != nil:
		d.fail("spec.target.replicas", "%s: replicas are for a StatefulSet about to be created, which has none; create the database first, then restore into it", why)
	case len(tg.VolumeMounts) > 0:
		d.fail("spec.target.volumeMounts", "%s: volumeMounts do not apply; remove them", why)
	default:
		return true
	}
	return false
}

// dumpRestoreChecks refuses the restore settings of files a database's restore has no use
// for: it restores the dump whole, with the restore command.
func dumpRestoreChecks(d *doc, task, rulesPath string, cfg *api.RestoreConfig) {
	why := fmt.Sprintf("the target is a database (task %s), restored through its running pod", task)
	at := func(k string) string { return join("metadata.annotations", k) }
	if len(cfg.Includes) > 0 {
		d.fail(rulesPath+"[0].include", "%s: include patterns are for files; a dump is restored whole", why)
	}
	if len(cfg.Excludes) > 0 {
		d.fail(rulesPath+"[0].exclude", "%s: exclude patterns are for files; a dump is restored whole", why)
	}
	if cfg.Delete {
		d.fail(at(AnnotationDelete), "%s: delete is for files; the restore command says what becomes of the data there", why)
	}
	if cfg.ScaleDown {
		d.fail(at(AnnotationScaleDown), "%s, which must run: it cannot be scaled down", why)
	}
}
