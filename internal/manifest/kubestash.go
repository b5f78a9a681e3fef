package manifest

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// KubeStash's workload and PVC addons and their tasks: kubectl-stash does their work.
var (
	ksAddons       = map[string]bool{"workload-addon": true, "pvc-addon": true}
	ksBackupTasks  = map[string]bool{"logical-backup": true, "LogicalBackup": true}
	ksRestoreTasks = map[string]bool{"logical-backup-restore": true, "LogicalBackupRestore": true}
)

// ksScratchVolume is the workload addon's scratch and cache volume, whose emptyDir
// addonVolumes may set.
const ksScratchVolume = "kubestash-tmp-volume"

// ksAddonResult is what an addon section says.
type ksAddonResult struct {
	params map[string]string
	mounts []corev1.VolumeMount
	vcts   []claimTemplate
	ok     bool
}

// ksAddon maps addon: its name and task, the task's parameters (strings, of the names in
// params), the target volumes and the runtime settings.
func ksAddonInfo(d *doc, path string, a *ksAddon, tasks map[string]bool, params map[string]bool, rt *api.Runtime) ksAddonResult {
	var res ksAddonResult
	if a == nil {
		d.fail(path, "missing: the addon that does the work; add addon {name: workload-addon, tasks: [{name: %s}]}", firstKey(tasks))
		return res
	}
	if !ksAddons[a.Name] {
		d.unsup(path+".name", "addon %q refers to an addon image kubectl-stash does not have: it does the work of workload-addon and pvc-addon (the volumes of workloads and PVCs); the %s is skipped", a.Name, d.kind)
		return res
	}
	if len(a.Tasks) != 1 {
		d.fail(path+".tasks", "give one task, %s (%d given)", firstKey(tasks), len(a.Tasks))
		return res
	}
	t := a.Tasks[0]
	tp := path + ".tasks[0]"
	if !tasks[t.Name] {
		d.unsup(tp+".name", "task %q is not supported: kubectl-stash does the addon's %s task only (a file backup of the volumes); the %s is skipped", t.Name, firstKey(tasks), d.kind)
		return res
	}
	res.params = map[string]string{}
	for _, k := range sortedKeys(t.Params) {
		v := t.Params[k]
		s, isString := v.(string)
		switch {
		case !params[k]:
			d.fail(join(tp+".params", k), "unknown parameter %q of task %s (known: %s)", k, t.Name, strings.Join(sortedKeys(params), ", "))
		case !isString && v != nil:
			d.fail(join(tp+".params", k), "want a string (the addon's parameters are strings), got %v", v)
		default:
			res.params[k] = s
		}
	}
	if tv := t.TargetVolumes; tv != nil {
		res.mounts, res.vcts = tv.VolumeMounts, tv.VolumeClaimTemplates
	}
	for i, av := range t.AddonVolumes {
		p := fmt.Sprintf("%s.addonVolumes[%d]", tp, i)
		if av.Name != ksScratchVolume || av.Source == nil || av.Source.EmptyDir == nil || !onlyEmptyDir(av.Source) {
			d.unsup(p, "only the %s volume can be set, as an emptyDir (its medium and sizeLimit): kubectl-stash's job pods mount no other addon volume", ksScratchVolume)
			continue
		}
		ed := av.Source.EmptyDir
		tempDir(d, p+".source.emptyDir", emptyDirSettings{Medium: ed.Medium, SizeLimit: ed.SizeLimit}, rt)
	}
	container(d, path+".containerRuntimeSettings", a.ContainerRuntimeSettings, rt)
	if jt := a.JobTemplate; jt != nil {
		if len(jt.Metadata.Labels)+len(jt.Metadata.Annotations) > 0 {
			d.unsup(path+".jobTemplate.metadata", "%s", unsupported["podLabels"])
		}
		placement(d, path+".jobTemplate.spec", &jt.Spec.podPlacement, rt)
	}
	res.ok = true
	return res
}

func onlyEmptyDir(vs *corev1.VolumeSource) bool {
	c := *vs
	c.EmptyDir = nil
	return c == corev1.VolumeSource{}
}

func firstKey(m map[string]bool) string {
	for _, k := range sortedKeys(m) {
		if !strings.ContainsAny(k[:1], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			return k
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// list splits the addon's comma-separated parameter.
func list(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func (p *parser) ksBackup(d *doc, bc *ksBackupConfiguration) {
	s := &bc.Spec
	checkAnnotations(d, bc.Metadata.Annotations, nil)
	if s.Target == nil {
		d.fail("spec.target", "missing: the workload or PVC to back up; add spec.target {apiGroup, kind, name}")
		return
	}
	t, ok := target(d, "spec.target", s.Target.APIGroup, s.Target.Kind, s.Target.Name, s.Target.Namespace)
	if !ok {
		return
	}
	backends := map[string]int{}
	for i, b := range s.Backends {
		bp := fmt.Sprintf("spec.backends[%d]", i)
		if b.Name == "" {
			d.fail(bp+".name", "missing: the name the sessions' repositories use for this backend")
		}
		if _, dup := backends[b.Name]; dup {
			d.fail(bp+".name", "backend %q is given twice", b.Name)
		}
		backends[b.Name] = i
		if (b.StorageRef.Kind != "" && b.StorageRef.Kind != "BackupStorage") || (b.StorageRef.APIGroup != "" && b.StorageRef.APIGroup != "storage.kubestash.com") {
			d.fail(bp+".storageRef", "want a BackupStorage of storage.kubestash.com, got %s %s", b.StorageRef.APIGroup, b.StorageRef.Kind)
		}
		for _, ref := range []struct{ path, ns string }{{bp + ".storageRef.namespace", b.StorageRef.Namespace}, {bp + ".retentionPolicy.namespace", nsOf(b.RetentionPolicy)}} {
			if ref.ns != "" && d.ns != "" && ref.ns != d.ns {
				d.unsup(ref.path, "%s is another namespace: a repository Secret and a configuration's retention serve their own namespace; use objects of namespace %s", ref.ns, d.ns)
			}
		}
	}
	if len(s.Sessions) == 0 {
		d.fail("spec.sessions", "missing: a session says when (scheduler) and where (repositories) the backups go")
		return
	}
	for i := range s.Sessions {
		p.ksSession(d, fmt.Sprintf("spec.sessions[%d]", i), bc, &s.Sessions[i], t, backends)
	}
}

func (p *parser) ksSession(d *doc, path string, bc *ksBackupConfiguration, sess *ksSession, t api.Target, backends map[string]int) {
	cfg := api.BackupConfig{SchemaVersion: api.SchemaVersion, Name: d.name, Target: t, Paused: bc.Spec.Paused, Session: sess.Name, HistoryLimit: 1}
	if sess.Name == "" {
		d.fail(path+".name", "missing: the session's name")
	}
	if len(bc.Spec.Sessions) > 1 {
		// one configuration (CronJob) per session
		cfg.Name = d.name + "-" + sess.Name
	}
	if n := cfg.Name; len(n) > 40 || !aliasRE.MatchString(n) {
		d.fail(path+".name", "the configuration of this session is named %q: want a DNS label of at most 40 characters (session and host Jobs append to it; with several sessions it is <name>-<session>)", n)
	}
	if sc := sess.Scheduler; sc != nil {
		if sc.Schedule == "" {
			d.fail(path+".scheduler.schedule", "missing: the cron schedule (or remove the scheduler: the configuration then runs only when triggered)")
		}
		cfg.Schedule = schedule(d, path+".scheduler.schedule", sc.Schedule)
		if sc.Suspend != nil && *sc.Suspend {
			cfg.Paused = true
		}
		switch sc.ConcurrencyPolicy {
		case "", "Allow", "Forbid":
			// sessions of one configuration never run together: a session that finds
			// another running is recorded Skipped
		case "Replace":
			d.unsup(path+".scheduler.concurrencyPolicy", "Replace is not supported: a running session is never cancelled by the next one (it is recorded Skipped instead); remove it")
		default:
			d.fail(path+".scheduler.concurrencyPolicy", "%q: want Allow, Forbid or Replace", sc.ConcurrencyPolicy)
		}
	}
	switch sess.FailurePolicy {
	case "", "Fail":
	case "Retry":
		d.unsup(path+".failurePolicy", "%s", unsupported["retry"])
	default:
		d.fail(path+".failurePolicy", "%q: want Fail or Retry", sess.FailurePolicy)
	}
	if bt := sess.BackupTimeout; bt != nil {
		if bt.Duration <= 0 {
			d.fail(path+".backupTimeout", "%s: want a positive duration", bt.Duration)
		} else {
			cfg.Timeout = bt.Duration.String()
		}
	}
	if h := sess.SessionHistoryLimit; h != nil {
		if *h < 0 {
			d.fail(path+".sessionHistoryLimit", "%d: want 0 or more", *h)
		}
		cfg.HistoryLimit = int(*h)
	}
	res := ksAddonInfo(d, path+".addon", sess.Addon, ksBackupTasks, map[string]bool{"paths": true, "exclude": true, "enableCache": true, "scratchDir": true}, &cfg.Runtime)
	if !res.ok {
		return
	}
	tp := path + ".addon.tasks[0]"
	cfg.Paths = absPaths(d, tp+".params.paths", list(res.params["paths"]), "the paths to back up")
	cfg.Excludes = globs(d, tp+".params.exclude", list(res.params["exclude"]))
	ksCacheParams(d, tp+".params", res.params, &cfg.Runtime)
	mounts := volumeMounts(d, tp+".targetVolumes.volumeMounts", res.mounts, false)
	if len(res.vcts) > 0 {
		d.fail(tp+".targetVolumes.volumeClaimTemplates", "claim templates are for restores: remove them")
	}
	if t.Kind == "pvc" {
		cfg.MountPath = "/data"
		if len(mounts) == 1 {
			cfg.MountPath = mounts[0].MountPath
		} else if len(mounts) > 1 {
			d.fail(tp+".targetVolumes.volumeMounts", "a PersistentVolumeClaim is one volume: give one mount")
		}
		if len(cfg.Paths) == 0 {
			cfg.Paths = []string{cfg.MountPath}
		}
	} else {
		cfg.VolumeMounts = mounts
		if len(cfg.Paths) == 0 {
			d.fail(tp+".params.paths", "missing: the absolute paths to back up, comma-separated, as %s's containers mount them", t)
		}
	}
	// the repository
	switch n := len(sess.Repositories); {
	case n == 0:
		d.fail(path+".repositories", "missing: the repository the snapshots go to; add repositories [{name, backend, directory, encryptionSecret}] (or name a repository Secret made with kubectl stash repo create)")
		return
	case n > 1:
		d.unsup(fmt.Sprintf("%s.repositories[1]", path), "a configuration backs up into one repository: write one BackupConfiguration per repository")
	}
	ri := sess.Repositories[0]
	rp := path + ".repositories[0]"
	if ri.Name == "" {
		d.fail(rp+".name", "missing: the repository's name (the repository Secret's)")
		return
	}
	cfg.Repository = ri.Name
	if ri.DeletionPolicy == "WipeOut" {
		d.unsup(rp+".deletionPolicy", "WipeOut is not supported: deleting a configuration never deletes data; kubectl stash repo delete --wipe-data does, when asked")
	}
	var retentionRef *ksObjectRef
	switch {
	case ri.Backend == "" && len(backends) == 0:
		// a repository Secret made with kubectl stash repo create
	case ri.Backend == "":
		d.fail(rp+".backend", "missing: name one of spec.backends (default BackupStorages are not looked up)")
	default:
		i, ok := backends[ri.Backend]
		if !ok {
			d.fail(rp+".backend", "%q is not in spec.backends: name one of them", ri.Backend)
			break
		}
		b := bc.Spec.Backends[i]
		retentionRef = b.RetentionPolicy
		bs, ok := p.find(KubeStashStore, "BackupStorage", b.StorageRef.Name)
		if !ok {
			d.unsup(fmt.Sprintf("spec.backends[%d].storageRef", i), "BackupStorage %q is not among the manifests: kubectl-stash has no BackupStorage objects, it makes the repository Secret from the BackupStorage's manifest (give it with -f, with its Secret), or drop spec.backends and name a repository Secret made with kubectl stash repo create", b.StorageRef.Name)
			break
		}
		p.ksBuildRepository(d, rp, ri.Name, bs, ri.Directory, ri.EncryptionSecret)
	}
	if sess.RetentionPolicy != nil {
		retentionRef = sess.RetentionPolicy
		if ns := sess.RetentionPolicy.Namespace; ns != "" && d.ns != "" && ns != d.ns {
			d.unsup(path+".retentionPolicy.namespace", "%s is another namespace: use a RetentionPolicy of namespace %s", ns, d.ns)
		}
	}
	if retentionRef != nil {
		cfg.Retention = p.ksRetention(d, path, retentionRef)
	}
	p.set.Backups = append(p.set.Backups, Backup{Config: cfg, Origin: origin(d)})
}

// ksCacheParams maps the workload addon's enableCache and scratchDir.
func ksCacheParams(d *doc, path string, params map[string]string, rt *api.Runtime) {
	if v, ok := params["enableCache"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			d.fail(path+".enableCache", "%q: want \"true\" or \"false\"", v)
		}
		if !b {
			if rt.CacheSize != "" {
				d.fail(path+".enableCache", "a cache size and no cache exclude each other: give one")
			}
			rt.NoCache = true
		}
	}
	if v, ok := params["scratchDir"]; ok && v != "/kubestash-tmp" {
		d.unsup(path+".scratchDir", "the scratch directory of the job pods is theirs to choose (/tmp); set its size and medium with addonVolumes %s, or remove scratchDir", ksScratchVolume)
	}
}

// ksRetention maps a RetentionPolicy named by a session or backend.
func (p *parser) ksRetention(d *doc, path string, ref *ksObjectRef) api.Retention {
	o, ok := p.find(KubeStashStore, "RetentionPolicy", ref.Name)
	if !ok {
		d.fail(path+".retentionPolicy", "RetentionPolicy %q is not among the manifests: give its manifest with -f (kubectl-stash keeps the policy in the configuration)", ref.Name)
		return api.Retention{}
	}
	rp := o.obj.(*ksRetentionPolicy)
	rd := o.d
	var out api.Retention
	ss := rp.Spec.SuccessfulSnapshots
	for _, k := range []struct {
		name string
		v    *int32
		to   *int
	}{{"last", ss.Last, &out.KeepLast}, {"hourly", ss.Hourly, &out.KeepHourly}, {"daily", ss.Daily, &out.KeepDaily},
		{"weekly", ss.Weekly, &out.KeepWeekly}, {"monthly", ss.Monthly, &out.KeepMonthly}, {"yearly", ss.Yearly, &out.KeepYearly}} {
		if k.v == nil {
			continue
		}
		if *k.v < 0 {
			rd.fail("spec.successfulSnapshots."+k.name, "%d: want 0 or more", *k.v)
			continue
		}
		*k.to = int(*k.v)
	}
	if rp.Spec.MaxRetentionPeriod != "" {
		rd.unsup("spec.maxRetentionPeriod", "a maximum retention period is not supported yet: the policy keeps snapshots by count (successfulSnapshots); remove it, or count what you keep (daily: 30 for 30d)")
	}
	// failedSnapshots: a failed backup leaves no snapshot here (the snapshot is written
	// last), so there are none to keep or remove
	usage(rd, "spec.usagePolicy", rp.Spec.UsagePolicy)
	return out
}

// ksStorageURL is the URL of a BackupStorage, with the path of a repository in it, and
// the environment its credentials give.
func (p *parser) ksStorageURL(bs object, dir string) (string, map[string]string, bool) {
	d := bs.d
	st := bs.obj.(*ksBackupStorage).Spec
	usage(d, "spec.usagePolicy", st.UsagePolicy)
	if st.DeletionPolicy == "WipeOut" {
		d.unsup("spec.deletionPolicy", "WipeOut is not supported: deleting a repository Secret never deletes data; kubectl stash repo delete --wipe-data does, when asked")
	}
	s := st.Storage
	join := func(prefix string) string { return path.Join("/", strings.Trim(prefix, "/"), strings.Trim(dir, "/")) }
	var u, secret, secretPath string
	env := map[string]string{}
	provider := s.Provider
	switch {
	case s.S3 != nil && (provider == "" || provider == "s3"):
		if s.S3.InsecureTLS {
			d.unsup("spec.storage.s3.insecureTLS", "skipping TLS verification is not supported; use an endpoint with a certificate the job image trusts, or http://")
		}
		u = s3URL(s.S3.Bucket, join(s.S3.Prefix), s.S3.Region, s.S3.Endpoint)
		secret, secretPath = firstNonEmpty(s.S3.SecretName, s.S3.Secret), "spec.storage.s3.secretName"
	case s.GCS != nil && (provider == "" || provider == "gcs"):
		if s.GCS.MaxConnections != 0 {
			d.unsup("spec.storage.gcs.maxConnections", "the number of connections is the engine's to choose; remove it")
		}
		u = objectStoreURL("gs", s.GCS.Bucket, join(s.GCS.Prefix), nil)
		secret, secretPath = firstNonEmpty(s.GCS.SecretName, s.GCS.Secret), "spec.storage.gcs.secretName"
	case s.Azure != nil && (provider == "" || provider == "azure"):
		if s.Azure.MaxConnections != 0 {
			d.unsup("spec.storage.azure.maxConnections", "the number of connections is the engine's to choose; remove it")
		}
		u = objectStoreURL("azblob", s.Azure.Container, join(s.Azure.Prefix), nil)
		secret, secretPath = firstNonEmpty(s.Azure.SecretName, s.Azure.Secret), "spec.storage.azure.secretName"
		if s.Azure.StorageAccount != "" {
			env["AZURE_STORAGE_ACCOUNT"] = s.Azure.StorageAccount
		}
	case s.Local != nil && (provider == "" || provider == "local"):
		u = localURL(d, "spec.storage.local", s.Local.VolumeSource, path.Join(s.Local.SubPath, dir))
	case s.Swift != nil || s.B2 != nil || s.Rest != nil:
		return "", nil, false // reported by the decoder
	default:
		d.fail("spec.storage", "missing: the storage (provider and its s3, gcs, azure or local section)")
		return "", nil, false
	}
	if u == "" {
		return "", nil, false
	}
	if secret != "" {
		creds, ok := p.secretData(d, secretPath, secret)
		if !ok {
			return "", nil, false
		}
		for k, v := range creds {
			env[k] = v
		}
	}
	return u, env, true
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}

// ksBuildRepository makes the repository Secret of a KubeStash repository: the
// BackupStorage's location joined with the directory, its credentials, and the
// password of the encryption Secret.
func (p *parser) ksBuildRepository(d *doc, path, name string, bs object, dir string, enc *ksObjectRef) {
	u, env, ok := p.ksStorageURL(bs, dir)
	if !ok {
		return
	}
	if enc == nil || enc.Name == "" {
		d.fail(path+".encryptionSecret", "missing: the Secret whose RESTIC_PASSWORD encrypts the repository")
		return
	}
	if enc.Namespace != "" && d.ns != "" && enc.Namespace != d.ns {
		d.unsup(path+".encryptionSecret.namespace", "the Secret is in namespace %s: kubectl-stash reads Secrets of the %s's own namespace", enc.Namespace, d.kind)
	}
	pw, ok := p.secretData(d, path+".encryptionSecret.name", enc.Name)
	if !ok {
		return
	}
	repo := Repository{Name: name, URL: u, Password: pw[api.SecretKeyPassword]}
	delete(pw, api.SecretKeyPassword)
	for k, v := range pw {
		env[k] = v
	}
	if len(env) > 0 {
		repo.Env = env
	}
	p.addRepository(d, path, repo)
}

// ksRepository maps a storage.kubestash.com Repository.
func (p *parser) ksRepository(d *doc, r *ksRepository) {
	if r.Spec.StorageRef == nil || r.Spec.StorageRef.Name == "" {
		d.fail("spec.storageRef", "missing: the BackupStorage the repository is in")
		return
	}
	if r.Spec.DeletionPolicy == "WipeOut" {
		d.unsup("spec.deletionPolicy", "WipeOut is not supported: deleting a repository Secret never deletes data; kubectl stash repo delete --wipe-data does, when asked")
	}
	if r.Spec.Paused {
		d.unsup("spec.paused", "a paused repository is not supported: pause the backup configurations instead")
	}
	bs, ok := p.find(KubeStashStore, "BackupStorage", r.Spec.StorageRef.Name)
	if !ok {
		d.unsup("spec.storageRef", "BackupStorage %q is not among the manifests: kubectl-stash makes the repository Secret from the BackupStorage's manifest; give it with -f, with its Secret", r.Spec.StorageRef.Name)
		return
	}
	p.ksBuildRepository(d, "spec", d.name, bs, r.Spec.Path, r.Spec.EncryptionSecret)
}

// ksComponent maps a KubeStash component name to the host it was backed up from: dump
// is host-0, dump-pod-<N> is host-<N>, dump-<node> is the node.
func ksComponent(c string) (string, bool) {
	switch {
	case c == "dump":
		return "host-0", true
	case strings.HasPrefix(c, "dump-pod-"):
		if n, err := strconv.Atoi(strings.TrimPrefix(c, "dump-pod-")); err == nil && n >= 0 {
			return fmt.Sprintf("host-%d", n), true
		}
		return "", false
	case strings.HasPrefix(c, "dump-") && len(c) > 5:
		return strings.TrimPrefix(c, "dump-"), true
	}
	return "", false
}

// ksComponentOf is the component name of a host of a target of that kind.
func ksComponentOf(kind, host string) string {
	var n int
	switch {
	case kind == "statefulset":
		if _, err := fmt.Sscanf(host, "host-%d", &n); err == nil && fmt.Sprintf("host-%d", n) == host {
			return fmt.Sprintf("dump-pod-%d", n)
		}
	case kind == "daemonset":
		return "dump-" + host
	case host == "host-0":
		return "dump"
	}
	return "dump-" + host
}

// snapshotIDRE is an engine snapshot id, or a unique prefix of one.
var snapshotIDRE = regexp.MustCompile(`^[0-9a-f]{4,64}$`)

func (p *parser) ksRestore(d *doc, rs *ksRestoreSession) {
	s := &rs.Spec
	cfg := api.RestoreConfig{SchemaVersion: api.SchemaVersion, Name: d.name, Overwrite: "always", Rules: []api.RestoreRule{}}
	checkName(d, d.name, 52, "host Jobs append the host name")
	checkAnnotations(d, rs.Metadata.Annotations, ksRestoreAnnotationKeys)
	if s.Target == nil {
		d.fail("spec.target", "missing: the workload or PVC to restore into; add spec.target {apiGroup, kind, name}")
		return
	}
	t, ok := target(d, "spec.target", s.Target.APIGroup, s.Target.Kind, s.Target.Name, s.Target.Namespace)
	if !ok {
		return
	}
	cfg.Target = t
	ds := s.DataSource
	if ds == nil || ds.Repository == "" {
		d.fail("spec.dataSource.repository", "missing: the repository the snapshots come from; add spec.dataSource.repository (a KubeStash Repository in the same files, or a repository Secret made with kubectl stash repo create)")
		return
	}
	cfg.Repository = ds.Repository
	if ds.Namespace != "" && d.ns != "" && ds.Namespace != d.ns {
		d.unsup("spec.dataSource.namespace", "the repository is in namespace %s: kubectl-stash reads a repository Secret of the RestoreSession's own namespace", ds.Namespace)
	}
	var snaps []string
	switch sn := ds.Snapshot; {
	case sn == "" || sn == "latest":
	case snapshotIDRE.MatchString(sn):
		snaps = []string{sn}
	default:
		d.fail("spec.dataSource.snapshot", "%q names a KubeStash Snapshot object; kubectl-stash's snapshots are named by their id (see kubectl stash snapshots --repo %s): give an id, or latest", sn, ds.Repository)
	}
	var hosts []string
	maxOrdinal := -1
	for i, c := range ds.Components {
		h, ok := ksComponent(c)
		if !ok {
			d.fail(fmt.Sprintf("spec.dataSource.components[%d]", i), "%q is not a component of a workload backup: want dump, dump-pod-<ordinal> or dump-<node>", c)
			continue
		}
		var n int
		if _, err := fmt.Sscanf(h, "host-%d", &n); err == nil && n > maxOrdinal {
			maxOrdinal = n
		}
		hosts = append(hosts, h)
	}
	if len(hosts) > 0 || len(snaps) > 0 {
		cfg.Rules = []api.RestoreRule{{TargetHosts: hosts, Snapshots: snaps}}
		validateRules(d, "spec.dataSource.components", cfg.Rules)
	}
	res := ksAddonInfo(d, "spec.addon", s.Addon, ksRestoreTasks, map[string]bool{"include": true, "exclude": true, "enableCache": true, "scratchDir": true}, &cfg.Runtime)
	if !res.ok {
		return
	}
	tp := "spec.addon.tasks[0]"
	cfg.Includes = globs(d, tp+".params.include", list(res.params["include"]))
	cfg.Excludes = globs(d, tp+".params.exclude", list(res.params["exclude"]))
	ksCacheParams(d, tp+".params", res.params, &cfg.Runtime)
	mounts := volumeMounts(d, tp+".targetVolumes.volumeMounts", res.mounts, true)
	r := Restore{Origin: origin(d)}
	var replicas *int32
	if len(res.vcts) > 0 && t.Kind == "statefulset" {
		if maxOrdinal < 0 {
			d.fail(tp+".targetVolumes.volumeClaimTemplates", "a StatefulSet about to be created needs its replica count, which a KubeStash RestoreSession has no field for: list its components (dump-pod-0 .. dump-pod-N), or use a Stash RestoreSession (target.replicas)")
			return
		}
		n := int32(maxOrdinal + 1)
		replicas = &n
	}
	restoreVolumes(d, tp+".targetVolumes", &cfg, mounts, replicas, res.vcts, &r)
	runtime(d, "spec.runtimeSettings", s.RuntimeSettings, &cfg.Runtime)
	timeout := s.Timeout
	if s.RestoreTimeout != nil {
		if timeout != nil {
			d.fail("spec.restoreTimeout", "restoreTimeout and timeout are the same setting: keep one")
		}
		timeout = s.RestoreTimeout
	}
	if timeout != nil {
		if timeout.Duration <= 0 {
			d.fail("spec.timeout", "%s: want a positive duration", timeout.Duration)
		} else {
			cfg.Timeout = timeout.Duration.String()
		}
	}
	// a KubeStash Repository in the same files says which application it holds
	var appRef *api.Target
	if o, ok := p.find(KubeStashStore, "Repository", ds.Repository); ok {
		repo := o.obj.(*ksRepository)
		if p.set.Repository(ds.Repository) == nil {
			if repo.Spec.EncryptionSecret == nil {
				repo.Spec.EncryptionSecret = ds.EncryptionSecret
			}
			p.ksRepository(o.d, repo)
		}
		if a := repo.Spec.AppRef; a != nil && a.Name != "" {
			if src, ok := target(o.d, "spec.appRef", a.APIGroup, a.Kind, a.Name, a.Namespace); ok {
				appRef = &src
			}
		}
	}
	p.restoreSource(d, rs.Metadata.Annotations, appRef, &cfg, &r)
	r.Config = cfg
	p.set.Restores = append(p.set.Restores, r)
}

func (p *parser) ksTrigger(d *doc, bs *ksBackupSession) {
	s := bs.Spec
	if s.Invoker == nil || s.Invoker.Name == "" {
		d.fail("spec.invoker", "missing: the BackupConfiguration to back up now; add spec.invoker {apiGroup: core.kubestash.com, kind: BackupConfiguration, name: NAME}")
		return
	}
	switch s.Invoker.Kind {
	case "", "BackupConfiguration":
	case "BackupBatch":
		d.unsup("spec.invoker.kind", "a KubeStash BackupBatch is not read by kubectl-stash (a Stash BackupBatch is: trigger it with a Stash BackupSession, or kubectl stash trigger NAME); the BackupSession is skipped")
		return
	default:
		d.fail("spec.invoker.kind", "%q: want BackupConfiguration", s.Invoker.Kind)
		return
	}
	if s.Invoker.APIGroup != "" && s.Invoker.APIGroup != "core.kubestash.com" {
		d.fail("spec.invoker.apiGroup", "%q: want core.kubestash.com", s.Invoker.APIGroup)
	}
	if s.RetryLeft > 0 {
		d.unsup("spec.retryLeft", "retries are not supported: a failed session is recorded as Failed, and the next schedule or trigger is the retry; remove retryLeft")
	}
	p.set.Triggers = append(p.set.Triggers, Trigger{Config: s.Invoker.Name, Session: s.Session, Name: d.name, Origin: origin(d)})
}

func (p *parser) ksVerification(d *doc, v *ksBackupVerificationSession) {
	s := v.Spec
	cfg := api.VerifyConfig{SchemaVersion: api.SchemaVersion, Name: d.name, Session: s.Session, Repository: s.Repository,
		Snapshot: s.Snapshot, Retries: int(s.RetryLeft)}
	if s.Invoker == nil || s.Invoker.Name == "" {
		d.fail("spec.invoker", "missing: the BackupConfiguration whose backup is verified; add spec.invoker {apiGroup: core.kubestash.com, kind: BackupConfiguration, name: NAME}")
		return
	}
	if s.Invoker.Kind != "" && s.Invoker.Kind != "BackupConfiguration" {
		d.unsup("spec.invoker.kind", "%s: only the backups of a BackupConfiguration are verified; the BackupVerificationSession is skipped", s.Invoker.Kind)
		return
	}
	if s.Invoker.APIGroup != "" && s.Invoker.APIGroup != "core.kubestash.com" {
		d.fail("spec.invoker.apiGroup", "%q: want core.kubestash.com", s.Invoker.APIGroup)
	}
	cfg.Invoker = s.Invoker.Name
	if cfg.Repository == "" {
		d.fail("spec.repository", "missing: the repository whose snapshot is verified")
	}
	if cfg.Snapshot == "" {
		cfg.Snapshot = "latest"
	}
	if s.RetryLeft < 0 {
		d.fail("spec.retryLeft", "%d: want 0 or more", s.RetryLeft)
	}
	p.set.Verifications = append(p.set.Verifications, Verification{Config: cfg, Origin: origin(d)})
}

func nsOf(r *ksObjectRef) string {
	if r == nil {
		return ""
	}
	return r.Namespace
}
