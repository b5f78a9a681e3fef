package manifest

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// stashGroup is the API group of a Stash target ref's apiVersion.
func stashGroup(apiVersion string) string {
	if g, _, ok := strings.Cut(apiVersion, "/"); ok {
		return g
	}
	return "" // v1, or empty
}

// driver checks Stash's driver: Restic is what kubectl-stash does.
func driver(d *doc, drv string) bool {
	switch drv {
	case "", "Restic":
		return true
	case "VolumeSnapshotter":
		d.unsup("spec.driver", "VolumeSnapshotter is not supported: kubectl-stash backs up files into its repository and takes no CSI VolumeSnapshots; use driver: Restic (or remove the field); the %s is skipped", d.kind)
	default:
		d.fail("spec.driver", "%q: want Restic", drv)
	}
	return false
}

// stashTasks are the Stash tasks of workloads and stand-alone PVCs: kubectl-stash does
// their work itself.
var stashTasks = map[string]bool{"workload-backup": true, "workload-restore": true, "pvc-backup": true, "pvc-restore": true}

// stashRepositoryRef maps spec.repository: the repository Secret of that name (made from
// a Stash Repository given with it, or made before with kubectl stash repo create).
func stashRepositoryRef(d *doc, ref stashObjectRef) string {
	if ref.Name == "" {
		d.fail("spec.repository", "missing: the %s names the Repository its snapshots %s; add spec.repository.name (a Stash Repository in the same files, or a repository Secret made with kubectl stash repo create NAME --url URL)",
			d.kind, map[string]string{"BackupConfiguration": "go to", "RestoreSession": "come from"}[d.kind])
		return ""
	}
	if ref.Namespace != "" && d.ns != "" && ref.Namespace != d.ns {
		d.unsup("spec.repository.namespace", "the repository is in namespace %s, the %s in %s: kubectl-stash reads a repository Secret of the %s's own namespace", ref.Namespace, d.kind, d.ns, d.kind)
	}
	return ref.Name
}

func (p *parser) stashBackup(d *doc, bc *stashBackupConfiguration) {
	s := &bc.Spec
	cfg := api.BackupConfig{SchemaVersion: api.SchemaVersion, Name: d.name}
	checkName(d, d.name, 40, "session and host Jobs append to it")
	ann := bc.Metadata.Annotations
	checkAnnotations(d, ann, backupAnnotationKeys)
	if !driver(d, s.Driver) {
		return
	}
	dump, ok := stashTask(d, "spec.task", s.Task, "backup", "the BackupConfiguration is skipped")
	if !ok {
		return
	}
	m, ok := p.backupTemplate(d, "spec", &s.stashTemplateSpec, dump)
	if !ok {
		return
	}
	cfg.Target, cfg.Alias, cfg.Paths, cfg.Excludes, cfg.MountPath, cfg.VolumeMounts = m.Target, m.Alias, m.Paths, m.Excludes, m.MountPath, m.VolumeMounts
	cfg.Dump, cfg.Hooks = m.Dump, m.Hooks
	runtime(d, "spec.runtimeSettings", s.RuntimeSettings, &cfg.Runtime)
	tempDir(d, "spec.tempDir", s.TempDir, &cfg.Runtime)
	var dumps []*api.Dump
	if cfg.Dump != nil {
		dumps = append(dumps, cfg.Dump)
	}
	applyDumpAnnotations(d, ann, dumps, fmt.Sprintf("the BackupConfiguration is not one (name the database's task: task.name: <database>-backup, one of %s)", taskDatabases()))
	applyHookTimeout(d, ann, []*api.Hooks{cfg.Hooks}, preBackupOf(s.Hooks) != nil || postBackupOf(s.Hooks) != nil)
	cfg.Repository = stashRepositoryRef(d, s.Repository)
	cfg.Schedule = schedule(d, "spec.schedule", s.Schedule)
	cfg.Retention = stashRetention(d, "spec.retentionPolicy", s.RetentionPolicy)
	// prune: after a session whose hosts all succeeded, in a Job of the session
	cfg.Prune = s.RetentionPolicy.Prune && !s.RetentionPolicy.DryRun
	cfg.Paused = s.Paused
	cfg.HistoryLimit = 1 // Stash's default
	if h := s.BackupHistoryLimit; h != nil {
		if *h < 0 {
			d.fail("spec.backupHistoryLimit", "%d: want 0 or more", *h)
		}
		cfg.HistoryLimit = int(*h)
	}
	cfg.Timeout = duration(d, "spec.timeOut", s.TimeOut)
	p.set.Backups = append(p.set.Backups, Backup{Config: cfg, Origin: origin(d)})
}

// backupTemplate maps BackupConfigurationTemplateSpec but its runtime settings and
// tempDir (which a batch's members share): the target, its paths or, for a database
// (dump non-nil, from the task), its dump, and the hooks.
func (p *parser) backupTemplate(d *doc, path string, s *stashTemplateSpec, dump *api.Dump) (api.Member, bool) {
	tg := s.Target
	if tg == nil {
		d.fail(path+".target", "missing: the workload or PVC to back up; add target.ref (apiVersion, kind, name) and target.paths")
		return api.Member{}, false
	}
	t, ok := target(d, path+".target.ref", stashGroup(tg.Ref.APIVersion), tg.Ref.Kind, tg.Ref.Name, tg.Ref.Namespace)
	if !ok {
		return api.Member{}, false
	}
	m := api.Member{Target: t, Dump: dump}
	m.Alias = alias(d, path+".target.alias", tg.Alias)
	if tg.Replicas != nil {
		d.unsup(path+".target.replicas", "the replicas of a backup target are for driver VolumeSnapshotter: kubectl-stash backs up every replica of a StatefulSet (host-0 .. host-N-1); remove it")
	}
	m.Hooks = stashHooks(d, path+".hooks", api.HookPreBackup, api.HookPostBackup, preBackupOf(s.Hooks), postBackupOf(s.Hooks))
	if dump != nil {
		// a database: dumped inside its own pod, as one stream
		if t.Kind == "pvc" {
			d.fail(path+".target.ref.kind", "task %s dumps a database inside its pod, and a PersistentVolumeClaim has none: name the database's StatefulSet or Deployment", s.Task.Name)
			return m, false
		}
		for _, f := range []struct {
			name string
			set  bool
		}{{"paths", len(tg.Paths) > 0}, {"volumeMounts", len(tg.VolumeMounts) > 0}, {"exclude", len(tg.Exclude) > 0}} {
			if f.set {
				d.fail(path+".target."+f.name, "the target is a database (task %s), dumped whole inside its pod: %s do not apply; remove them (back up files in another configuration)", s.Task.Name, f.name)
			}
		}
		return m, true
	}
	m.Paths = absPaths(d, path+".target.paths", tg.Paths, "the paths to back up")
	m.Excludes = globs(d, path+".target.exclude", tg.Exclude)
	mounts := volumeMounts(d, path+".target.volumeMounts", tg.VolumeMounts, false)
	if t.Kind == "pvc" {
		m.MountPath = "/data"
		switch len(mounts) {
		case 0:
		case 1:
			m.MountPath = mounts[0].MountPath
		default:
			d.fail(path+".target.volumeMounts", "a PersistentVolumeClaim is one volume: give one mount (where its paths lie)")
		}
		if len(m.Paths) == 0 && len(tg.Paths) == 0 {
			m.Paths = []string{m.MountPath}
		}
	} else {
		m.VolumeMounts = mounts
	}
	if len(tg.Paths) == 0 && t.Kind != "pvc" {
		d.fail(path+".target.paths", "missing: the absolute paths to back up, as %s's containers mount them (one snapshot each)", t)
	}
	return m, true
}

// preBackupOf and postBackupOf are a BackupConfiguration's hook handlers, nil when none.
func preBackupOf(h *stashBackupHooks) *proberHandler {
	if h == nil {
		return nil
	}
	return h.PreBackup
}

func postBackupOf(h *stashBackupHooks) *postHook {
	if h == nil {
		return nil
	}
	return h.PostBackup
}

var aliasRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func alias(d *doc, path, a string) string {
	if a != "" && (!aliasRE.MatchString(a) || len(a) > 40) {
		d.fail(path, "%q: want a DNS label of at most 40 characters (hosts are named <alias>, <alias>-<ordinal> or <alias>-<node>)", a)
	}
	return a
}

func stashRetention(d *doc, path string, r stashRetentionPolicy) api.Retention {
	out := api.Retention{KeepTags: r.KeepTags}
	for _, k := range []struct {
		name string
		v    int64
		to   *int
	}{{"keepLast", r.KeepLast, &out.KeepLast}, {"keepHourly", r.KeepHourly, &out.KeepHourly}, {"keepDaily", r.KeepDaily, &out.KeepDaily},
		{"keepWeekly", r.KeepWeekly, &out.KeepWeekly}, {"keepMonthly", r.KeepMonthly, &out.KeepMonthly}, {"keepYearly", r.KeepYearly, &out.KeepYearly}} {
		if k.v < 0 || k.v > 1<<30 {
			d.fail(path+"."+k.name, "%d: want 0 or more", k.v)
			continue
		}
		*k.to = int(k.v)
	}
	if r.DryRun {
		d.unsup(path+".dryRun", "dryRun: true is not supported: a session applies the policy it is given; without it, the policy is not applied at all and every snapshot is kept")
		return api.Retention{}
	}
	return out
}

func (p *parser) stashTrigger(d *doc, bs *stashBackupSession) {
	s := bs.Spec
	config, batch := "", false
	switch {
	case s.Invoker != nil && s.BackupConfiguration != nil:
		d.fail("spec.backupConfiguration", "spec.invoker and spec.backupConfiguration both name the configuration: keep spec.invoker")
		return
	case s.Invoker != nil:
		switch s.Invoker.Kind {
		case "", "BackupConfiguration":
		case "BackupBatch":
			batch = true
		default:
			d.fail("spec.invoker.kind", "%q: want BackupConfiguration or BackupBatch%s", s.Invoker.Kind, didYouMean(s.Invoker.Kind, []string{"BackupConfiguration", "BackupBatch"}))
			return
		}
		if s.Invoker.APIGroup != "" && s.Invoker.APIGroup != "stash.appscode.com" {
			d.fail("spec.invoker.apiGroup", "%q: want stash.appscode.com", s.Invoker.APIGroup)
		}
		config = s.Invoker.Name
	case s.BackupConfiguration != nil:
		config = s.BackupConfiguration.Name
	}
	if config == "" {
		d.fail("spec.invoker", "missing: the BackupConfiguration (or BackupBatch) to back up now; add spec.invoker {apiGroup: stash.appscode.com, kind: BackupConfiguration, name: NAME}")
		return
	}
	if s.RetryLeft > 0 {
		d.unsup("spec.retryLeft", "retries are not supported: a failed session is recorded as Failed, and the next schedule or trigger is the retry; remove retryLeft")
	}
	p.set.Triggers = append(p.set.Triggers, Trigger{Config: config, Batch: batch, Name: d.name, Origin: origin(d)})
}

// stashSnapshotID is the engine's id in a Stash snapshot name, <repository>-<id>.
func stashSnapshotID(repo, name string) string {
	return strings.TrimPrefix(name, repo+"-")
}

func (p *parser) stashRestore(d *doc, rs *stashRestoreSession) {
	s := &rs.Spec
	cfg := api.RestoreConfig{SchemaVersion: api.SchemaVersion, Name: d.name, Overwrite: "always"}
	checkName(d, d.name, 52, "host Jobs append the host name")
	ann := rs.Metadata.Annotations
	checkAnnotations(d, ann, restoreAnnotationKeys)
	if !driver(d, s.Driver) {
		return
	}
	dump, ok := stashTask(d, "spec.task", s.Task, "restore", "the RestoreSession is skipped")
	if !ok {
		return
	}
	cfg.Dump = dump
	cfg.Repository = stashRepositoryRef(d, s.Repository)
	tg := s.Target
	if tg == nil {
		d.fail("spec.target", "missing: the workload or PVC to restore into; add spec.target.ref (apiVersion, kind, name)")
		return
	}
	t, ok := target(d, "spec.target.ref", stashGroup(tg.Ref.APIVersion), tg.Ref.Kind, tg.Ref.Name, tg.Ref.Namespace)
	if !ok {
		return
	}
	cfg.Target = t
	if dump != nil && !dumpTargetChecks(d, s.Task.Name, t, tg) {
		return
	}
	cfg.Alias = alias(d, "spec.target.alias", tg.Alias)
	rules, rulesPath := tg.Rules, "spec.target.rules"
	if len(s.Rules) > 0 {
		if len(tg.Rules) > 0 {
			d.fail("spec.rules", "the rules are given twice: keep spec.target.rules (spec.rules is their deprecated place)")
		}
		rules, rulesPath = s.Rules, "spec.rules"
	}
	var includes, excludes []string
	for i, r := range rules {
		path := fmt.Sprintf("%s[%d]", rulesPath, i)
		rule := api.RestoreRule{TargetHosts: r.TargetHosts, SourceHost: r.SourceHost,
			Paths: absPaths(d, path+".paths", r.Paths, "the paths to restore")}
		for _, sn := range r.Snapshots {
			rule.Snapshots = append(rule.Snapshots, stashSnapshotID(cfg.Repository, sn))
		}
		if len(rule.TargetHosts) == 0 {
			rule.TargetHosts = nil
		}
		if i == 0 {
			includes, excludes = r.Include, r.Exclude
		} else if strings.Join(r.Include, "\x00") != strings.Join(includes, "\x00") || strings.Join(r.Exclude, "\x00") != strings.Join(excludes, "\x00") {
			d.unsup(path, "rules with different include or exclude patterns are not supported: one include and one exclude list apply to the whole restore; give every rule the same")
		}
		cfg.Rules = append(cfg.Rules, rule)
	}
	cfg.Includes = globs(d, rulesPath+"[0].include", includes)
	cfg.Excludes = globs(d, rulesPath+"[0].exclude", excludes)
	validateRules(d, rulesPath, cfg.Rules)
	if len(cfg.Rules) == 1 && isEmptyRule(cfg.Rules[0]) {
		// one rule for every host, of nothing in particular: the same as no rule (it
		// carries the include and exclude patterns)
		cfg.Rules = nil
	}
	if cfg.Rules == nil {
		cfg.Rules = []api.RestoreRule{}
	}
	mounts := volumeMounts(d, "spec.target.volumeMounts", tg.VolumeMounts, true)
	r := Restore{Origin: origin(d)}
	restoreVolumes(d, "spec.target", &cfg, mounts, tg.Replicas, tg.VolumeClaimTemplates, &r)
	runtime(d, "spec.runtimeSettings", s.RuntimeSettings, &cfg.Runtime)
	tempDir(d, "spec.tempDir", s.TempDir, &cfg.Runtime)
	cfg.Timeout = duration(d, "spec.timeOut", s.TimeOut)
	var preRestore *proberHandler
	var postRestore *postHook
	if s.Hooks != nil {
		preRestore, postRestore = s.Hooks.PreRestore, s.Hooks.PostRestore
	}
	cfg.Hooks = stashHooks(d, "spec.hooks", api.HookPreRestore, api.HookPostRestore, preRestore, postRestore)
	applyHookTimeout(d, ann, []*api.Hooks{cfg.Hooks}, preRestore != nil || postRestore != nil)
	var dumps []*api.Dump
	if cfg.Dump != nil {
		dumps = append(dumps, cfg.Dump)
	}
	applyDumpAnnotations(d, ann, dumps, fmt.Sprintf("the RestoreSession does not restore one (name the database's task: task.name: <database>-restore, one of %s)", taskDatabases()))
	p.restoreSource(d, ann, nil, &cfg, &r)
	if cfg.Dump != nil {
		dumpRestoreChecks(d, s.Task.Name, rulesPath, &cfg)
	}
	r.Config = cfg
	p.set.Restores = append(p.set.Restores, r)
}

// validateRules checks rules as the seed defines them, rule by rule, so that the
// problem names the rule that breaks them.
func validateRules(d *doc, path string, rules []api.RestoreRule) {
	for i := range rules {
		if err := api.ValidateRules(rules[:i+1]); err != nil {
			field := ".targetHosts"
			switch msg := err.Error(); {
			case strings.Contains(msg, ".paths"):
				field = ".paths"
			case strings.Contains(msg, ".snapshots"):
				field = ".snapshots"
			}
			d.fail(fmt.Sprintf("%s[%d]%s", path, i, field), "%v", err)
			return
		}
	}
}

// podOrdinal is the placeholder of Stash's volumeClaimTemplates names.
const podOrdinal = "${POD_ORDINAL}"

// restoreVolumes maps target.volumeMounts, replicas and volumeClaimTemplates: restoring
// into a StatefulSet that does not exist yet (its claims are created first), or into a
// PVC to create.
func restoreVolumes(d *doc, path string, cfg *api.RestoreConfig, mounts []api.VolumeMount, replicas *int32, vcts []claimTemplate, r *Restore) {
	t := cfg.Target
	if replicas != nil && (*replicas < 1 || *replicas > 1000) {
		d.fail(path+".replicas", "%d: want 1 or more", *replicas)
		return
	}
	if replicas != nil && t.Kind != "statefulset" {
		d.fail(path+".replicas", "replicas are for a StatefulSet that does not exist yet, not for %s", t)
		return
	}
	if len(vcts) > 0 && t.Kind != "statefulset" && t.Kind != "pvc" {
		d.fail(path+".volumeClaimTemplates", "claim templates are for a new StatefulSet or PVC, not for %s", t)
		return
	}
	names := map[string]string{} // name as written -> template name
	for i, v := range vcts {
		p := fmt.Sprintf("%s.volumeClaimTemplates[%d]", path, i)
		name := v.Metadata.Name
		tmpl := name
		switch {
		case name == "":
			d.fail(p+".metadata.name", "missing: the claim's name (claims of a StatefulSet are <template>-<statefulset>-%s)", podOrdinal)
			continue
		case t.Kind == "pvc":
			if name != t.Name {
				d.fail(p+".metadata.name", "%q: the claim to create is the target, %s", name, t.Name)
				continue
			}
		case strings.Contains(name, podOrdinal):
			suffix := "-" + t.Name + "-" + podOrdinal
			if !strings.HasSuffix(name, suffix) || len(name) == len(suffix) {
				d.unsup(p+".metadata.name", "%q: the claims must be named <template>-%s-%s, the names the StatefulSet's pods mount; name it so", name, t.Name, podOrdinal)
				continue
			}
			tmpl = strings.TrimSuffix(name, suffix)
		}
		if errs := validation.IsDNS1123Label(tmpl); len(errs) > 0 {
			d.fail(p+".metadata.name", "%q is not a valid claim template name: %s", tmpl, strings.Join(errs, "; "))
			continue
		}
		if v.Spec.DataSource != nil || v.Spec.DataSourceRef != nil {
			d.unsup(p+".spec.dataSource", "claims initialised from a VolumeSnapshot are for driver VolumeSnapshotter: kubectl-stash fills new claims from its repository; remove dataSource")
		}
		if len(v.Spec.AccessModes) == 0 {
			d.fail(p+".spec.accessModes", "missing: give e.g. [ReadWriteOnce]")
		}
		if _, ok := v.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
			d.fail(p+".spec.resources.requests.storage", "missing: the size of each claim")
		}
		names[name] = tmpl
		spec := v.Spec.DeepCopy()
		spec.DataSource, spec.DataSourceRef = nil, nil
		r.ClaimTemplates = append(r.ClaimTemplates, corev1.PersistentVolumeClaim{
			TypeMeta:   metaTypePVC,
			ObjectMeta: objectMeta(tmpl, v.Metadata.Labels, v.Metadata.Annotations),
			Spec:       *spec})
		if t.Kind == "statefulset" {
			cfg.VolumeClaimTemplates = append(cfg.VolumeClaimTemplates, tmpl)
		}
	}
	for i := range mounts {
		if tmpl, ok := names[mounts[i].Name]; ok {
			mounts[i].Name = tmpl
		}
	}
	if t.Kind == "pvc" {
		cfg.MountPath = "/data"
		switch ps := rulePaths(cfg.Rules); {
		case len(mounts) == 1:
			cfg.MountPath = mounts[0].MountPath
		case len(mounts) > 1:
			d.fail(path+".volumeMounts", "a PersistentVolumeClaim is one volume: give one mount")
		case len(ps) == 1:
			// the volume takes the place of the one directory restored
			cfg.MountPath = ps[0]
		}
		return
	}
	cfg.VolumeMounts = mounts
	if t.Kind == "statefulset" && len(cfg.VolumeClaimTemplates) > 0 {
		cfg.Replicas = 1 // Stash's default
		if replicas != nil {
			cfg.Replicas = int(*replicas)
		}
		if len(mounts) == 0 {
			if ps := rulePaths(cfg.Rules); len(ps) == 1 && len(cfg.VolumeClaimTemplates) == 1 {
				cfg.VolumeMounts = []api.VolumeMount{{Name: cfg.VolumeClaimTemplates[0], MountPath: ps[0]}}
			} else {
				d.fail(path+".volumeMounts", "missing: where each claim template's volume is mounted in the restore pods (name: the template, mountPath: the restored path)")
			}
		}
	} else if replicas != nil && len(vcts) == 0 {
		d.fail(path+".volumeClaimTemplates", "missing: replicas are for a StatefulSet about to be created, whose claims are made from these templates")
	}
}

// rulePaths are the distinct paths the rules name.
func rulePaths(rules []api.RestoreRule) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rules {
		for _, p := range r.Paths {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// restoreSource reads what a RestoreSession says in kubectl-stash's annotations (whose
// snapshots, overwrite, delete, scale-down, default paths), and otherwise whose snapshots
// it restores: appRef (a KubeStash Repository's application), else the backup
// configuration of the same files writing to the same repository, else (as Stash has
// one repository per backup configuration) the one found at run time.
func (p *parser) restoreSource(d *doc, ann map[string]string, appRef *api.Target, cfg *api.RestoreConfig, r *Restore) {
	at := func(k string) string { return join("metadata.annotations", k) }
	if v, ok := ann[AnnotationOverwrite]; ok {
		switch v {
		case "never", "if-newer", "always":
			cfg.Overwrite = v
		default:
			d.fail(at(AnnotationOverwrite), "%q: want never, if-newer or always", v)
		}
	}
	for _, f := range []struct {
		key string
		to  *bool
	}{{AnnotationDelete, &cfg.Delete}, {AnnotationScaleDown, &cfg.ScaleDown}} {
		if v, ok := ann[f.key]; ok {
			switch v {
			case "true":
				*f.to = true
			case "false":
			default:
				d.fail(at(f.key), "%q: want \"true\" or \"false\"", v)
			}
		}
	}
	if cfg.ScaleDown && (cfg.Target.Kind == "pvc" || cfg.Target.Kind == "daemonset") {
		d.fail(at(AnnotationScaleDown), "scale-down is for deployments, statefulsets, replicasets and replicationcontrollers, not %s", cfg.Target.Kind)
	}
	if v, ok := ann[AnnotationPaths]; ok {
		cfg.Paths = absPaths(d, at(AnnotationPaths), list(v), "the paths to restore")
	}
	cfg.SourceTarget = cfg.Target
	from, src := ann[AnnotationFromConfig], ann[AnnotationSourceTarget]
	switch {
	case from != "" && src != "":
		d.fail(at(AnnotationSourceTarget), "%s and %s both say where the snapshots come from: keep one", AnnotationFromConfig, AnnotationSourceTarget)
	case from != "":
		if errs := validation.IsDNS1123Label(from); len(errs) > 0 {
			d.fail(at(AnnotationFromConfig), "%q is not a backup configuration name", from)
		}
		cfg.FromConfig = from
	case src != "":
		kind, name, ok := strings.Cut(src, "/")
		k, known := targetKinds[kindName(kind)]
		if !ok || !known || name == "" {
			d.fail(at(AnnotationSourceTarget), "%q: want KIND/NAME, KIND one of %s", src, targetKindList)
			return
		}
		cfg.SourceTarget = api.Target{Kind: k.kind, Name: name}
	case appRef != nil:
		cfg.SourceTarget = *appRef
	default:
		var configs []string
		for _, b := range p.set.Backups {
			if b.Config.Repository == cfg.Repository {
				configs = append(configs, b.Config.Name)
			}
		}
		if len(configs) == 1 {
			cfg.FromConfig = configs[0]
			return
		}
		r.SourceFromRepository = true
	}
}

// kindName accepts the model's lower-case kinds and kubectl's names for KIND/NAME.
func kindName(k string) string {
	switch strings.ToLower(k) {
	case "deployment", "deploy", "deployments":
		return "Deployment"
	case "statefulset", "sts", "statefulsets":
		return "StatefulSet"
	case "daemonset", "ds", "daemonsets":
		return "DaemonSet"
	case "replicaset", "rs", "replicasets":
		return "ReplicaSet"
	case "replicationcontroller", "rc", "replicationcontrollers":
		return "ReplicationController"
	case "pvc", "persistentvolumeclaim", "persistentvolumeclaims":
		return "PersistentVolumeClaim"
	}
	return k
}

func (p *parser) stashRepository(d *doc, r *stashRepository) {
	b := r.Spec.Backend
	repo := Repository{Name: d.name}
	if r.Spec.WipeOut {
		d.unsup("spec.wipeOut", "wipeOut is not supported: deleting a repository Secret never deletes data; kubectl stash repo delete --wipe-data does, when asked; remove it")
	}
	usage(d, "spec.usagePolicy", r.Spec.UsagePolicy)
	n := 0
	switch {
	case b.S3 != nil:
		n++
		if b.S3.Bucket == "" {
			d.fail("spec.backend.s3.bucket", "missing: the bucket")
		}
		if b.S3.InsecureTLS {
			d.unsup("spec.backend.s3.insecureTLS", "skipping TLS verification is not supported; use an endpoint with a certificate the job image trusts, or http://")
		}
		repo.URL = s3URL(b.S3.Bucket, b.S3.Prefix, b.S3.Region, b.S3.Endpoint)
	case b.GCS != nil:
		n++
		if b.GCS.Bucket == "" {
			d.fail("spec.backend.gcs.bucket", "missing: the bucket")
		}
		if b.GCS.MaxConnections != 0 {
			d.unsup("spec.backend.gcs.maxConnections", "the number of connections is the engine's to choose; remove it")
		}
		repo.URL = objectStoreURL("gs", b.GCS.Bucket, b.GCS.Prefix, nil)
	case b.Azure != nil:
		n++
		if b.Azure.Container == "" {
			d.fail("spec.backend.azure.container", "missing: the container")
		}
		if b.Azure.MaxConnections != 0 {
			d.unsup("spec.backend.azure.maxConnections", "the number of connections is the engine's to choose; remove it")
		}
		repo.URL = objectStoreURL("azblob", b.Azure.Container, b.Azure.Prefix, nil)
	case b.Local != nil:
		n++
		repo.URL = localURL(d, "spec.backend.local", b.Local.VolumeSource, b.Local.SubPath)
	}
	for _, other := range []any{b.Swift, b.B2, b.Rest} {
		if other != nil {
			n++
		}
	}
	if n == 0 {
		d.fail("spec.backend", "missing: where the repository is (s3, gcs, azure or local with a persistentVolumeClaim)")
		return
	}
	if repo.URL == "" {
		return
	}
	if b.StorageSecretName == "" {
		d.fail("spec.backend.storageSecretName", "missing: the Secret with RESTIC_PASSWORD (and the object store's credentials)")
		return
	}
	env, ok := p.secretData(d, "spec.backend.storageSecretName", b.StorageSecretName)
	if !ok {
		return
	}
	repo.Password = env[api.SecretKeyPassword]
	delete(env, api.SecretKeyPassword)
	if len(env) > 0 {
		repo.Env = env
	}
	p.addRepository(d, "spec.backend.storageSecretName", repo)
}

// localURL maps a local backend: a PersistentVolumeClaim, the repository in its subPath.
func localURL(d *doc, path string, vs corev1.VolumeSource, subPath string) string {
	if vs.PersistentVolumeClaim == nil {
		d.unsup(path, "a local backend must be a persistentVolumeClaim (the repository is then pvc://CLAIM/subPath): other volumes cannot be shared by the job pods of every node")
		return ""
	}
	claim := vs.PersistentVolumeClaim.ClaimName
	if errs := validation.IsDNS1123Subdomain(claim); len(errs) > 0 {
		d.fail(path+".persistentVolumeClaim.claimName", "%q is not a claim name", claim)
		return ""
	}
	return pvcURL(claim, subPath)
}

func usage(d *doc, path string, u *usagePolicy) {
	if u != nil && u.AllowedNamespaces != nil && u.AllowedNamespaces.From != "" && u.AllowedNamespaces.From != "Same" {
		d.unsup(path+".allowedNamespaces.from", "%s: a repository Secret serves its own namespace only; use from: Same, or a repository Secret in each namespace", u.AllowedNamespaces.From)
	}
}

func isEmptyRule(r api.RestoreRule) bool {
	return len(r.TargetHosts) == 0 && r.SourceHost == "" && len(r.Paths) == 0 && len(r.Snapshots) == 0
}
