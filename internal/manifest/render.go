package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// Formats Render writes.
const (
	FormatStash     = "stash"
	FormatKubeStash = "kubestash"
)

// Annotations of a RestoreSession for what the model has and the Stash and KubeStash
// RestoreSessions have no field for.
const (
	AnnotationOverwrite = api.Prefix + "overwrite"
	AnnotationDelete    = api.Prefix + "delete"
	AnnotationScaleDown = api.Prefix + "scale-down"
	AnnotationPaths     = api.Prefix + "paths"
)

// RenderError lists what the model holds that the format asked for cannot say.
type RenderError struct {
	Format   string
	Problems []string
}

func (e *RenderError) Error() string {
	return fmt.Sprintf("%s cannot say everything these manifests do (--ignore-unsupported: warn and leave it out):\n  %s", e.Format, strings.Join(e.Problems, "\n  "))
}

// renderer collects what a format cannot say.
type renderer struct {
	format   string
	ns       string
	problems []string
	docs     [][]byte
}

func (r *renderer) cannot(format string, a ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, a...))
}

func (r *renderer) add(v any) {
	b, err := toYAML(v)
	if err != nil {
		r.cannot("%v", err)
		return
	}
	r.docs = append(r.docs, b)
}

func (r *renderer) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: r.ns}
}

// Render writes a Set as Stash or KubeStash manifests. What the format cannot say is a
// *RenderError, unless ignoreUnsupported: then it is returned as warnings and left out.
func Render(set *Set, format string, ignoreUnsupported bool) ([]byte, []string, error) {
	r := &renderer{format: format, ns: set.Namespace}
	switch format {
	case FormatStash:
		r.stash(set)
	case FormatKubeStash:
		r.kubestash(set)
	default:
		return nil, nil, fmt.Errorf("format %q: want %s or %s", format, FormatStash, FormatKubeStash)
	}
	if len(r.problems) > 0 && !ignoreUnsupported {
		return nil, nil, &RenderError{Format: map[string]string{FormatStash: "Stash", FormatKubeStash: "KubeStash"}[format], Problems: r.problems}
	}
	return bytes.Join(r.docs, []byte("---\n")), r.problems, nil
}

// ---- shared ----

func unmarshalRaw[T any](raw json.RawMessage) *T {
	if len(raw) == 0 {
		return nil
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		panic(fmt.Sprintf("manifest: %T: %v", v, err))
	}
	return v
}

func int32p(v int) *int32 {
	i := int32(v)
	return &i
}

func containerOf(rt api.Runtime) *containerRuntimeSettings {
	c := &containerRuntimeSettings{
		Resources:       unmarshalRaw[corev1.ResourceRequirements](rt.Resources),
		SecurityContext: unmarshalRaw[corev1.SecurityContext](rt.SecurityContext),
	}
	if rt.Nice != nil {
		c.Nice = &niceSettings{Adjustment: int32p(*rt.Nice)}
	}
	if rt.IONiceClass != 0 || rt.IONiceData != nil {
		c.IONice = &ioNiceSettings{}
		if rt.IONiceClass != 0 {
			c.IONice.Class = int32p(rt.IONiceClass)
		}
		if rt.IONiceData != nil {
			c.IONice.ClassData = int32p(*rt.IONiceData)
		}
	}
	if e := unmarshalRaw[[]corev1.EnvVar](rt.Env); e != nil {
		c.Env = *e
	}
	if e := unmarshalRaw[[]corev1.EnvFromSource](rt.EnvFrom); e != nil {
		c.EnvFrom = *e
	}
	if b, _ := json.Marshal(c); string(b) == "{}" {
		return nil
	}
	return c
}

func placementOf(rt api.Runtime) podPlacement {
	p := podPlacement{
		NodeSelector:       rt.NodeSelector,
		ServiceAccountName: rt.ServiceAccount,
		SecurityContext:    unmarshalRaw[corev1.PodSecurityContext](rt.PodSecurityContext),
		Affinity:           unmarshalRaw[corev1.Affinity](rt.Affinity),
		SchedulerName:      rt.SchedulerName,
		PriorityClassName:  rt.PriorityClassName,
		EnableServiceLinks: rt.EnableServiceLinks,
	}
	if v := unmarshalRaw[[]corev1.LocalObjectReference](rt.ImagePullSecrets); v != nil {
		p.ImagePullSecrets = *v
	}
	if v := unmarshalRaw[[]corev1.Toleration](rt.Tolerations); v != nil {
		p.Tolerations = *v
	}
	if v := unmarshalRaw[[]corev1.TopologySpreadConstraint](rt.TopologySpreadConstraints); v != nil {
		p.TopologySpreadConstraints = *v
	}
	if rt.RuntimeClassName != "" {
		p.RuntimeClassName = &rt.RuntimeClassName
	}
	return p
}

// runtimeSettingsOf is the Stash form of the runtime settings.
func runtimeSettingsOf(rt api.Runtime) runtimeSettings {
	var rs runtimeSettings
	pp := placementOf(rt)
	if !isZero(pp) || len(rt.ServiceAccountAnnotations) > 0 {
		rs.Pod = &podRuntimeSettings{podPlacement: pp, ServiceAccountAnnotations: rt.ServiceAccountAnnotations}
	}
	rs.Container = containerOf(rt)
	return rs
}

func isZero(p podPlacement) bool {
	b, _ := json.Marshal(p)
	return string(b) == "{}"
}

func tempDirOf(rt api.Runtime) emptyDirSettings {
	t := emptyDirSettings{Medium: corev1.StorageMedium(rt.TempDirMedium)}
	if rt.CacheSize != "" {
		q := resource.MustParse(rt.CacheSize)
		t.SizeLimit = &q
	}
	if rt.NoCache {
		t.DisableCaching = &rt.NoCache
	}
	return t
}

// targetRef is a Stash target ref.
func targetRef(t api.Target) stashTargetRef {
	kind, group := kindOf(t.Kind)
	v := "v1"
	if group != "" {
		v = group + "/v1"
	}
	return stashTargetRef{APIVersion: v, Kind: kind, Name: t.Name}
}

func k8sVolumeMounts(in []api.VolumeMount) []corev1.VolumeMount {
	var out []corev1.VolumeMount
	for _, m := range in {
		out = append(out, corev1.VolumeMount{Name: m.Name, MountPath: m.MountPath})
	}
	return out
}

// restoreAnnotations are the model's restore settings no format has a field for.
func restoreAnnotations(r Restore) map[string]string {
	c := r.Config
	a := map[string]string{}
	switch {
	case c.FromConfig != "":
		a[AnnotationFromConfig] = c.FromConfig
	case !r.SourceFromRepository:
		a[AnnotationSourceTarget] = c.SourceTarget.String()
	}
	if c.Overwrite != "" && c.Overwrite != "always" {
		a[AnnotationOverwrite] = c.Overwrite
	}
	if c.Delete {
		a[AnnotationDelete] = "true"
	}
	if c.ScaleDown {
		a[AnnotationScaleDown] = "true"
	}
	if len(c.Paths) > 0 {
		a[AnnotationPaths] = strings.Join(c.Paths, ",")
	}
	if len(a) == 0 {
		return nil
	}
	return a
}

// claimTemplates are the Stash form of the claims to create.
func claimTemplatesOf(r Restore) []claimTemplate {
	var out []claimTemplate
	for _, c := range r.ClaimTemplates {
		name := c.Name
		if r.Config.Target.Kind == "statefulset" {
			name = c.Name + "-" + r.Config.Target.Name + "-" + podOrdinal
		}
		out = append(out, claimTemplate{Metadata: partialObjectMeta{Name: name, Labels: c.Labels, Annotations: c.Annotations}, Spec: c.Spec})
	}
	return out
}

// restoreMounts are the volume mounts of a restore, as written in a manifest: claims of
// a new StatefulSet by their templates' names with the ordinal.
func restoreMounts(r Restore) []corev1.VolumeMount {
	c := r.Config
	if c.Target.Kind == "pvc" {
		return []corev1.VolumeMount{{Name: c.Target.Name, MountPath: c.MountPath}}
	}
	mounts := k8sVolumeMounts(c.VolumeMounts)
	for i := range mounts {
		for _, t := range c.VolumeClaimTemplates {
			if mounts[i].Name == t {
				mounts[i].Name = t + "-" + c.Target.Name + "-" + podOrdinal
			}
		}
	}
	return mounts
}

// secretKeysBack maps the repository Secret's keys to Stash's and KubeStash's.
func secretKeysBack(env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		to := k
		for from, mapped := range secretKeys {
			if mapped == k {
				to = from
			}
		}
		out[to] = v
	}
	return out
}

// secretDoc is a Secret as a manifest writes it: apiVersion first.
type secretManifest struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Type       corev1.SecretType `json:"type"`
	StringData map[string]string `json:"stringData"`
}

func secretOf(name, ns string, data map[string]string) *secretManifest {
	return &secretManifest{APIVersion: "v1", Kind: "Secret", Metadata: metav1.ObjectMeta{Name: name, Namespace: ns},
		Type: corev1.SecretTypeOpaque, StringData: data}
}

// location is a repository URL taken apart.
type location struct {
	scheme, bucket, prefix string
	region, endpoint       string
	claim                  string
}

// parseLocation takes a repository URL apart, refusing what the formats cannot say.
func (r *renderer) parseLocation(repo Repository) (location, bool) {
	u, err := url.Parse(repo.URL)
	if err != nil {
		r.cannot("repository %s: %v", repo.Name, err)
		return location{}, false
	}
	l := location{scheme: u.Scheme, bucket: u.Host, prefix: strings.Trim(u.Path, "/")}
	q := u.Query()
	switch u.Scheme {
	case "s3":
		l.region, l.endpoint = q.Get("region"), q.Get("endpoint")
		if s3URL(l.bucket, l.prefix, l.region, l.endpoint) != repo.URL {
			r.cannot("repository %s: the URL %s has parameters a %s repository has no field for (it has bucket, prefix, region and endpoint)", repo.Name, repo.URL, r.format)
			return l, false
		}
	case "gs", "azblob":
		if u.RawQuery != "" {
			r.cannot("repository %s: the URL %s has parameters a %s repository has no field for", repo.Name, repo.URL, r.format)
			return l, false
		}
	case "pvc":
		l.claim, l.bucket = u.Host, ""
	default:
		r.cannot("repository %s: a %s:// repository has no %s equivalent", repo.Name, u.Scheme, r.format)
		return l, false
	}
	return l, true
}

// ---- Stash ----

func (r *renderer) stash(set *Set) {
	for _, repo := range set.Repositories {
		r.stashRepository(repo)
	}
	for _, b := range set.Backups {
		r.stashBackup(b.Config)
	}
	for _, rs := range set.Restores {
		r.stashRestore(rs)
	}
	for _, t := range set.Triggers {
		bs := &stashBackupSession{APIVersion: StashV1beta1, Kind: "BackupSession", Metadata: r.meta(t.Name)}
		if t.Name == "" {
			bs.Metadata.GenerateName = t.Config + "-"
		}
		bs.Spec.Invoker = &invokerRef{APIGroup: "stash.appscode.com", Kind: "BackupConfiguration", Name: t.Config}
		if t.Batch {
			bs.Spec.Invoker.Kind = "BackupBatch"
		}
		if t.Session != "" {
			r.cannot("backupsession of %s: the KubeStash session %q has no Stash field", t.Config, t.Session)
		}
		r.add(bs)
	}
	for _, v := range set.Verifications {
		r.cannot("backupverificationsession %s: Stash has no BackupVerificationSession (KubeStash has)", v.Config.Name)
	}
}

func (r *renderer) stashRepository(repo Repository) {
	l, ok := r.parseLocation(repo)
	if !ok {
		return
	}
	sr := &stashRepository{APIVersion: StashV1alpha1, Kind: "Repository", Metadata: r.meta(repo.Name)}
	b := &sr.Spec.Backend
	b.StorageSecretName = repo.Name + "-storage"
	switch l.scheme {
	case "s3":
		b.S3 = &stashS3{Endpoint: l.endpoint, Bucket: l.bucket, Prefix: l.prefix, Region: l.region}
	case "gs":
		b.GCS = &stashGCS{Bucket: l.bucket, Prefix: l.prefix}
	case "azblob":
		b.Azure = &stashAzure{Container: l.bucket, Prefix: l.prefix}
	case "pvc":
		b.Local = &localBackend{VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: l.claim}},
			MountPath: api.RepositoryMountPath, SubPath: l.prefix}
	}
	data := secretKeysBack(repo.Env)
	data["RESTIC_PASSWORD"] = repo.Password
	r.add(secretOf(b.StorageSecretName, r.ns, data))
	r.add(sr)
}

func (r *renderer) stashBackup(c api.BackupConfig) {
	if c.IsBatch() {
		r.stashBatch(c)
		return
	}
	what := "backupconfiguration " + c.Name
	bc := &stashBackupConfiguration{APIVersion: StashV1beta1, Kind: "BackupConfiguration", Metadata: r.meta(c.Name)}
	bc.Metadata.Annotations = r.appAnnotations(what, nil, dumpsOf(c), hooksOf(c))
	s := &bc.Spec
	s.stashTemplateSpec = r.stashTemplate(what, memberOf(c))
	s.RuntimeSettings = runtimeSettingsOf(c.Runtime)
	s.TempDir = tempDirOf(c.Runtime)
	s.Schedule = c.Schedule
	s.Repository = stashObjectRef{Name: c.Repository}
	s.RetentionPolicy = stashRetentionOf(c)
	s.Paused = c.Paused
	s.BackupHistoryLimit = int32p(c.HistoryLimit)
	s.TimeOut = c.Timeout
	r.add(bc)
}

func (r *renderer) stashRestore(rs Restore) {
	c := rs.Config
	what := "restoresession " + c.Name
	out := &stashRestoreSession{APIVersion: StashV1beta1, Kind: "RestoreSession", Metadata: r.meta(c.Name)}
	var dumps []*api.Dump
	if c.Dump != nil {
		dumps = append(dumps, c.Dump)
	}
	out.Metadata.Annotations = r.appAnnotations(what, restoreAnnotations(rs), dumps, []*api.Hooks{c.Hooks})
	s := &out.Spec
	switch {
	case c.Dump != nil:
		s.Task.Name = presetTask(c.Dump, "restore")
		if c.Target.Kind == "pvc" || c.Replicas > 0 || len(c.VolumeClaimTemplates)+len(c.VolumeMounts)+len(c.Includes)+len(c.Excludes) > 0 || c.Delete || c.ScaleDown {
			r.cannot("%s: a Stash database task restores through the database's running pod: volumes, claims, replicas, include and exclude patterns, delete and scale-down have no place in it", what)
		}
	case c.Target.Kind == "pvc":
		s.Task.Name = "pvc-restore"
	}
	s.Hooks = r.stashRestoreHooks(what, c.Hooks)
	s.Repository = stashObjectRef{Name: c.Repository}
	tg := &stashRestoreTarget{Alias: c.Alias, Ref: targetRef(c.Target), VolumeMounts: restoreMounts(rs), VolumeClaimTemplates: claimTemplatesOf(rs)}
	if c.Replicas > 0 {
		tg.Replicas = int32p(c.Replicas)
	}
	rules := c.Rules
	if len(rules) == 0 && (len(c.Includes) > 0 || len(c.Excludes) > 0) {
		// include and exclude live in the rules: one rule for every host carries them
		rules = []api.RestoreRule{{}}
	}
	for _, rule := range rules {
		sr := stashRule{TargetHosts: rule.TargetHosts, SourceHost: rule.SourceHost, Paths: rule.Paths, Include: c.Includes, Exclude: c.Excludes}
		for _, sn := range rule.Snapshots {
			sr.Snapshots = append(sr.Snapshots, c.Repository+"-"+sn)
		}
		tg.Rules = append(tg.Rules, sr)
	}
	s.Target = tg
	s.RuntimeSettings = runtimeSettingsOf(c.Runtime)
	s.TempDir = tempDirOf(c.Runtime)
	s.TimeOut = c.Timeout
	r.add(out)
}

// ---- KubeStash ----

func (r *renderer) kubestash(set *Set) {
	restored := map[string]bool{}
	for _, rs := range set.Restores {
		restored[rs.Config.Repository] = true
	}
	backedUp := map[string]bool{}
	for _, b := range set.Backups {
		backedUp[b.Config.Repository] = true
	}
	for _, repo := range set.Repositories {
		// a repository is a BackupStorage, its Secrets, and a Repository for restores
		// (or standing alone); backups name the BackupStorage as a backend
		r.ksStorage(repo, restored[repo.Name] || !backedUp[repo.Name])
	}
	for _, b := range set.Backups {
		if b.Config.IsBatch() {
			r.cannot("backupbatch %s: KubeStash's BackupConfiguration has one target per session, and kubectl-stash does not write KubeStash's BackupBatch; write it with -o stash, or one configuration per member", b.Config.Name)
			continue
		}
		r.ksBackup(b.Config, set.Repository(b.Config.Repository))
	}
	for _, rs := range set.Restores {
		r.ksRestore(rs)
	}
	for _, t := range set.Triggers {
		bs := &ksBackupSession{APIVersion: KubeStashCore, Kind: "BackupSession", Metadata: r.meta(t.Name)}
		if t.Name == "" {
			bs.Metadata.GenerateName = t.Config + "-"
		}
		bs.Spec.Invoker = &invokerRef{APIGroup: "core.kubestash.com", Kind: "BackupConfiguration", Name: t.Config}
		if t.Batch {
			r.cannot("backupsession of %s: it triggers a BackupBatch, which has no KubeStash form here", t.Config)
		}
		bs.Spec.Session = t.Session
		r.add(bs)
	}
	for _, v := range set.Verifications {
		c := v.Config
		bvs := &ksBackupVerificationSession{APIVersion: KubeStashCore, Kind: "BackupVerificationSession", Metadata: r.meta(c.Name)}
		bvs.Spec.Invoker = &invokerRef{APIGroup: "core.kubestash.com", Kind: "BackupConfiguration", Name: c.Invoker}
		bvs.Spec.Session, bvs.Spec.Repository, bvs.Spec.Snapshot = c.Session, c.Repository, c.Snapshot
		bvs.Spec.RetryLeft = int32(c.Retries)
		for _, f := range []struct {
			name string
			set  bool
		}{{"host", c.Host != ""}, {"paths", len(c.Paths) > 0}, {"checkData", c.CheckData != ""}, {"command", c.Command != ""},
			{"schedule", c.Schedule != ""}, {"historyLimit", c.HistoryLimit != 0}, {"scratch space", c.ScratchSize != "" || c.ScratchPVC || c.StorageClass != ""},
			{"timeout", c.Timeout != ""}, {"runtime settings", !isZeroRuntime(c.Runtime)}} {
			if f.set {
				r.cannot("backupverificationsession %s: its %s has no BackupVerificationSession field", c.Name, f.name)
			}
		}
		r.add(bvs)
	}
}

func isZeroRuntime(rt api.Runtime) bool {
	b, _ := json.Marshal(rt)
	return string(b) == "{}"
}

// ksSplit is a repository's location as a BackupStorage prefix and a directory in it.
func ksSplit(prefix string) (string, string) {
	if prefix == "" {
		return "", "/"
	}
	dir, last := path.Split(prefix)
	return strings.Trim(dir, "/"), last
}

func ksStorageName(repo string) string { return repo + "-storage" }

func (r *renderer) ksStorage(repo Repository, withRepository bool) {
	l, ok := r.parseLocation(repo)
	if !ok {
		return
	}
	bs := &ksBackupStorage{APIVersion: KubeStashStore, Kind: "BackupStorage", Metadata: r.meta(ksStorageName(repo.Name))}
	st := &bs.Spec.Storage
	env := map[string]string{}
	for k, v := range repo.Env {
		env[k] = v
	}
	prefix, _ := ksSplit(l.prefix)
	secret := ""
	if len(env) > 0 {
		secret = ksStorageName(repo.Name)
	}
	switch l.scheme {
	case "s3":
		st.Provider = "s3"
		st.S3 = &ksS3{Endpoint: l.endpoint, Bucket: l.bucket, Prefix: prefix, Region: l.region, SecretName: secret}
	case "gs":
		st.Provider = "gcs"
		st.GCS = &ksGCS{Bucket: l.bucket, Prefix: prefix, SecretName: secret}
	case "azblob":
		st.Provider = "azure"
		account := env["AZURE_STORAGE_ACCOUNT"]
		delete(env, "AZURE_STORAGE_ACCOUNT")
		if len(env) == 0 {
			secret = ""
		}
		st.Azure = &ksAzure{StorageAccount: account, Container: l.bucket, Prefix: prefix, SecretName: secret}
	case "pvc":
		st.Provider = "local"
		if len(env) > 0 {
			r.cannot("repository %s: a KubeStash local backend has no Secret for the keys %s", repo.Name, strings.Join(sortedKeys(env), ", "))
		}
		st.Local = &localBackend{VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: l.claim}},
			MountPath: api.RepositoryMountPath, SubPath: prefix}
	}
	bs.Spec.DeletionPolicy = "Delete"
	if secret != "" {
		r.add(secretOf(secret, r.ns, secretKeysBack(env)))
	}
	r.add(secretOf(repo.Name+"-encryption", r.ns, map[string]string{"RESTIC_PASSWORD": repo.Password}))
	r.add(bs)
	if withRepository {
		_, dir := ksSplit(l.prefix)
		kr := &ksRepository{APIVersion: KubeStashStore, Kind: "Repository", Metadata: r.meta(repo.Name)}
		kr.Spec.StorageRef = &invokerRef{APIGroup: "storage.kubestash.com", Kind: "BackupStorage", Name: ksStorageName(repo.Name)}
		kr.Spec.Path = dir
		kr.Spec.EncryptionSecret = &ksObjectRef{Name: repo.Name + "-encryption"}
		r.add(kr)
	}
}

func ksTarget(t api.Target) *invokerRef {
	kind, group := kindOf(t.Kind)
	return &invokerRef{APIGroup: group, Kind: kind, Name: t.Name}
}

// ksAddonOf is the addon section of a configuration or restore.
func ksAddonOf(task string, params map[string]any, mounts []corev1.VolumeMount, vcts []claimTemplate, rt api.Runtime) *ksAddon {
	a := &ksAddon{Name: "workload-addon", ContainerRuntimeSettings: containerOf(rt)}
	t := ksTask{Name: task}
	if rt.NoCache {
		params["enableCache"] = "false"
	}
	if len(params) > 0 {
		t.Params = params
	}
	if len(mounts)+len(vcts) > 0 {
		t.TargetVolumes = &ksTargetVolumes{VolumeMounts: mounts, VolumeClaimTemplates: vcts}
	}
	if rt.CacheSize != "" || rt.TempDirMedium != "" {
		ed := &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMedium(rt.TempDirMedium)}
		if rt.CacheSize != "" {
			q := resource.MustParse(rt.CacheSize)
			ed.SizeLimit = &q
		}
		t.AddonVolumes = []ksAddonVolume{{Name: ksScratchVolume, Source: &corev1.VolumeSource{EmptyDir: ed}}}
	}
	a.Tasks = []ksTask{t}
	if pp := placementOf(rt); !isZero(pp) {
		a.JobTemplate = &ksAddonJobTemplate{Spec: ksPodSpec{podPlacement: pp}}
	}
	return a
}

// commaList joins a list as the addon's comma-separated parameter, if it can.
func (r *renderer) commaList(what string, in []string) string {
	for _, s := range in {
		if strings.Contains(s, ",") {
			r.cannot("%s %q: the KubeStash addon's parameter is a comma-separated list", what, s)
		}
	}
	return strings.Join(in, ",")
}

func (r *renderer) ksBackup(c api.BackupConfig, repo *Repository) {
	bc := &ksBackupConfiguration{APIVersion: KubeStashCore, Kind: "BackupConfiguration", Metadata: r.meta(c.Name)}
	r.ksCannotApp("backupconfiguration "+c.Name, c.Dump, c.Hooks)
	bc.Spec.Target = ksTarget(c.Target)
	bc.Spec.Paused = c.Paused
	sessName := c.Session
	if sessName == "" {
		sessName = "backup"
	}
	sess := ksSession{Name: sessName, SessionHistoryLimit: int32p(c.HistoryLimit)}
	if c.Schedule != "" {
		// jobTemplate is required, and empty: the session's Job is kubectl-stash's own
		sess.Scheduler = &ksScheduler{Schedule: c.Schedule, JobTemplate: &ksJobTemplate{}}
	}
	if c.Timeout != "" {
		d, _ := metav1DurationOf(c.Timeout)
		sess.BackupTimeout = d
	}
	params := map[string]any{"paths": r.commaList("path", c.Paths)}
	if len(c.Excludes) > 0 {
		params["exclude"] = r.commaList("exclude pattern", c.Excludes)
	}
	mounts := k8sVolumeMounts(c.VolumeMounts)
	if c.Target.Kind == "pvc" {
		mounts = []corev1.VolumeMount{{Name: c.Target.Name, MountPath: c.MountPath}}
	}
	sess.Addon = ksAddonOf("logical-backup", params, mounts, nil, c.Runtime)
	if c.Target.Kind == "pvc" {
		sess.Addon.Name = "pvc-addon"
	}
	if len(c.Runtime.ServiceAccountAnnotations) > 0 {
		r.cannot("backupconfiguration %s: the ServiceAccount annotations have no KubeStash field", c.Name)
	}
	if c.Alias != "" {
		r.cannot("backupconfiguration %s: the alias %q has no KubeStash field (KubeStash names components dump, dump-pod-N, dump-<node>)", c.Name, c.Alias)
	}
	if c.Prune {
		r.cannot("backupconfiguration %s: pruning after each session has no KubeStash RetentionPolicy field", c.Name)
	}
	ri := ksRepoInfo{Name: c.Repository}
	if repo != nil {
		if l, ok := (&renderer{format: r.format}).parseLocation(*repo); ok {
			_, dir := ksSplit(l.prefix)
			backend := c.Repository
			bc.Spec.Backends = append(bc.Spec.Backends, backendRef{Name: backend, StorageRef: invokerRef{APIGroup: "storage.kubestash.com", Kind: "BackupStorage", Name: ksStorageName(c.Repository)}})
			ri.Backend, ri.Directory, ri.EncryptionSecret = backend, dir, &ksObjectRef{Name: c.Repository + "-encryption"}
		}
	}
	sess.Repositories = []ksRepoInfo{ri}
	if !c.Retention.Empty() {
		if len(c.Retention.KeepTags) > 0 {
			r.cannot("backupconfiguration %s: keeping snapshots by tag (keepTags) has no KubeStash RetentionPolicy field", c.Name)
		}
		rp := &ksRetentionPolicy{APIVersion: KubeStashStore, Kind: "RetentionPolicy", Metadata: r.meta(c.Name + "-retention")}
		ss := &rp.Spec.SuccessfulSnapshots
		for _, k := range []struct {
			v  int
			to **int32
		}{{c.Retention.KeepLast, &ss.Last}, {c.Retention.KeepHourly, &ss.Hourly}, {c.Retention.KeepDaily, &ss.Daily},
			{c.Retention.KeepWeekly, &ss.Weekly}, {c.Retention.KeepMonthly, &ss.Monthly}, {c.Retention.KeepYearly, &ss.Yearly}} {
			if k.v != 0 {
				*k.to = int32p(k.v)
			}
		}
		r.add(rp)
		sess.RetentionPolicy = &ksObjectRef{Name: rp.Metadata.Name}
	}
	bc.Spec.Sessions = []ksSession{sess}
	r.add(bc)
}

func metav1DurationOf(s string) (*metav1.Duration, error) {
	var d metav1.Duration
	err := d.UnmarshalJSON([]byte(strconv.Quote(s)))
	return &d, err
}

func (r *renderer) ksRestore(rs Restore) {
	c := rs.Config
	out := &ksRestoreSession{APIVersion: KubeStashCore, Kind: "RestoreSession", Metadata: r.meta(c.Name)}
	r.ksCannotApp("restoresession "+c.Name, c.Dump, c.Hooks)
	out.Metadata.Annotations = restoreAnnotations(rs)
	out.Spec.Target = ksTarget(c.Target)
	out.Spec.DataSource = &ksDataSource{Repository: c.Repository, Snapshot: "latest"}
	switch len(c.Rules) {
	case 0:
	case 1:
		rule := c.Rules[0]
		if rule.SourceHost != "" && !(len(rule.TargetHosts) == 1 && rule.TargetHosts[0] == rule.SourceHost) {
			r.cannot("restoresession %s: restoring host %s's data into other hosts has no KubeStash field (a component is restored into the host of the same name)", c.Name, rule.SourceHost)
		}
		if len(rule.Paths) > 0 {
			r.cannot("restoresession %s: restoring only some paths (%s) has no KubeStash field", c.Name, strings.Join(rule.Paths, ", "))
		}
		switch len(rule.Snapshots) {
		case 0:
		case 1:
			out.Spec.DataSource.Snapshot = rule.Snapshots[0]
		default:
			r.cannot("restoresession %s: a KubeStash RestoreSession restores one snapshot, not %d", c.Name, len(rule.Snapshots))
		}
		for _, h := range rule.TargetHosts {
			out.Spec.DataSource.Components = append(out.Spec.DataSource.Components, ksComponentOf(c.Target.Kind, h))
		}
	default:
		r.cannot("restoresession %s: %d restore rules have no KubeStash equivalent (a KubeStash RestoreSession restores components into the hosts of the same names)", c.Name, len(c.Rules))
	}
	if c.Alias != "" {
		r.cannot("restoresession %s: the alias %q has no KubeStash field", c.Name, c.Alias)
	}
	if c.Replicas > 0 {
		// KubeStash has no replicas: the components say them
		want := map[string]bool{}
		for _, comp := range out.Spec.DataSource.Components {
			want[comp] = true
		}
		if len(c.Rules) != 1 || len(want) != c.Replicas || !want[ksComponentOf("statefulset", fmt.Sprintf("host-%d", c.Replicas-1))] {
			r.cannot("restoresession %s: a new StatefulSet of %d replicas: KubeStash has no replicas field, and the restore does not list its components dump-pod-0 .. dump-pod-%d", c.Name, c.Replicas, c.Replicas-1)
		}
	}
	params := map[string]any{}
	if len(c.Includes) > 0 {
		params["include"] = r.commaList("include pattern", c.Includes)
	}
	if len(c.Excludes) > 0 {
		params["exclude"] = r.commaList("exclude pattern", c.Excludes)
	}
	out.Spec.Addon = ksAddonOf("logical-backup-restore", params, restoreMounts(rs), claimTemplatesOf(rs), c.Runtime)
	if c.Target.Kind == "pvc" {
		out.Spec.Addon.Name = "pvc-addon"
	}
	if len(c.Runtime.ServiceAccountAnnotations) > 0 {
		out.Spec.RuntimeSettings.Pod = &podRuntimeSettings{ServiceAccountAnnotations: c.Runtime.ServiceAccountAnnotations, podPlacement: podPlacement{ServiceAccountName: c.Runtime.ServiceAccount}}
		out.Spec.Addon.JobTemplate = nil
		out.Spec.RuntimeSettings.Pod.podPlacement = placementOf(c.Runtime)
	}
	if c.Timeout != "" {
		d, _ := metav1DurationOf(c.Timeout)
		out.Spec.Timeout = d
	}
	r.add(out)
}

func sortedEnv(env map[string]string) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
