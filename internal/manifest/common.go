package manifest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// targetKinds maps a Kubernetes kind to the model's target kind, with its API group.
var targetKinds = map[string]struct{ kind, group string }{
	"Deployment":            {"deployment", "apps"},
	"StatefulSet":           {"statefulset", "apps"},
	"DaemonSet":             {"daemonset", "apps"},
	"ReplicaSet":            {"replicaset", "apps"},
	"ReplicationController": {"replicationcontroller", ""},
	"PersistentVolumeClaim": {"pvc", ""},
}

// kindOf is the Kubernetes kind of a model target kind.
func kindOf(kind string) (k8sKind, group string) {
	for k, v := range targetKinds {
		if v.kind == kind {
			return k, v.group
		}
	}
	return "", ""
}

const targetKindList = "Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController or PersistentVolumeClaim"

// target maps a target reference; group is its API group ("apps", "" for core).
func target(d *doc, path, group, kind, name, namespace string) (api.Target, bool) {
	ok := true
	tk, known := targetKinds[kind]
	switch {
	case kind == "":
		d.fail(path+".kind", "missing: the kind of the target (%s)", targetKindList)
		ok = false
	case kind == "AppBinding":
		d.unsup(path+".kind", "an AppBinding is how Stash's database addons reach a database over the network; kubectl-stash dumps a database inside its own pod (the exec API): point target.ref at the database's StatefulSet or Deployment (apiVersion: apps/v1), and keep the task")
		ok = false
	case !known:
		d.unsup(path+".kind", "target kind %s is not supported: kubectl-stash backs up and restores the volumes of a %s", kind, targetKindList)
		ok = false
	default:
		g := group
		if g == "core" {
			g = ""
		}
		if g != tk.group && !(tk.group == "apps" && g == "extensions") {
			d.fail(path, "a %s is of the API group %q, not %q", kind, tk.group, group)
			ok = false
		}
	}
	if name == "" {
		d.fail(path+".name", "missing: the name of the target")
		ok = false
	} else if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		d.fail(path+".name", "%q is not a valid name: %s", name, strings.Join(errs, "; "))
		ok = false
	}
	if namespace != "" && d.ns != "" && namespace != d.ns {
		d.unsup(path+".namespace", "the target is in namespace %s, the %s in %s: kubectl-stash backs up and restores targets of the configuration's own namespace", namespace, d.kind, d.ns)
		ok = false
	}
	return api.Target{Kind: tk.kind, Name: name}, ok
}

// checkName checks a configuration or session name: a DNS label of at most max
// characters (the Jobs made from it append to it).
func checkName(d *doc, name string, max int, why string) {
	if name == "" {
		return // reported by add
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 || len(name) > max {
		d.fail("metadata.name", "%q: want a DNS label of at most %d characters (%s)", name, max, why)
	}
}

// absPaths checks and cleans absolute paths.
func absPaths(d *doc, path string, in []string, what string) []string {
	var out []string
	for i, p := range in {
		if !strings.HasPrefix(p, "/") {
			d.fail(fmt.Sprintf("%s[%d]", path, i), "%q is not an absolute path: give %s as the workload's containers see them", p, what)
			continue
		}
		out = append(out, pathClean(p))
	}
	return out
}

func pathClean(p string) string { return path.Clean(p) }

// globs checks include and exclude patterns.
func globs(d *doc, path string, in []string) []string {
	var out []string
	for i, g := range in {
		if _, err := matchCheck(g); err != nil {
			d.fail(fmt.Sprintf("%s[%d]", path, i), "%q is not a valid pattern: %v", g, err)
			continue
		}
		out = append(out, g)
	}
	return out
}

func matchCheck(g string) (bool, error) { return path.Match(g, "") }

// schedule checks a cron schedule.
func schedule(d *doc, path, s string) string {
	if s == "" {
		return ""
	}
	if _, err := cron.ParseStandard(s); err != nil {
		d.fail(path, "%q is not a valid cron schedule: %v (want 5 fields, e.g. \"30 1 * * *\", or @hourly/@daily/@weekly)", s, err)
	}
	return s
}

// duration checks a Stash timeOut ("30m", "1h30m") and returns it as the model keeps it.
func duration(d *doc, path, s string) string {
	if s == "" {
		return ""
	}
	t, err := time.ParseDuration(s)
	if err != nil || t <= 0 {
		d.fail(path, "%q is not a duration: want a positive duration like 30m, 2h or 1h30m (days are not accepted)", s)
		return ""
	}
	return t.String()
}

func jsonOf(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// container maps runtime settings of the job container.
func container(d *doc, path string, c *containerRuntimeSettings, rt *api.Runtime) {
	if c == nil {
		return
	}
	if c.Resources != nil && (len(c.Resources.Limits)+len(c.Resources.Requests)+len(c.Resources.Claims) > 0) {
		if len(c.Resources.Claims) > 0 {
			d.unsup(path+".resources.claims", "dynamic resource claims are not supported for the job pods; remove them")
			c.Resources.Claims = nil
		}
		rt.Resources = jsonOf(c.Resources)
	}
	if c.SecurityContext != nil {
		rt.SecurityContext = jsonOf(c.SecurityContext)
	}
	if c.Nice != nil && c.Nice.Adjustment != nil {
		n := int(*c.Nice.Adjustment)
		if n < -20 || n > 19 {
			d.fail(path+".nice.adjustment", "%d: want -20..19", n)
		}
		rt.Nice = &n
	}
	if c.IONice != nil {
		if c.IONice.Class != nil {
			cl := int(*c.IONice.Class)
			if cl < 1 || cl > 3 {
				d.fail(path+".ionice.class", "%d: want 1 (realtime), 2 (best-effort) or 3 (idle)", cl)
			}
			rt.IONiceClass = cl
		}
		if c.IONice.ClassData != nil {
			cd := int(*c.IONice.ClassData)
			if cd < 0 || cd > 7 {
				d.fail(path+".ionice.classData", "%d: want 0..7", cd)
			}
			if c.IONice.Class == nil {
				d.fail(path+".ionice.classData", "needs ionice.class: the priority is within a class")
			}
			rt.IONiceData = &cd
		}
	}
	if len(c.Env) > 0 {
		for i, e := range c.Env {
			if strings.HasPrefix(e.Name, "STASH_") {
				d.fail(fmt.Sprintf("%s.env[%d].name", path, i), "%s: the STASH_ variables are set by kubectl-stash; choose another name", e.Name)
			}
		}
		rt.Env = jsonOf(c.Env)
	}
	if len(c.EnvFrom) > 0 {
		rt.EnvFrom = jsonOf(c.EnvFrom)
	}
}

// placement maps the pod-level runtime settings.
func placement(d *doc, path string, p *podPlacement, rt *api.Runtime) {
	if len(p.NodeSelector) > 0 {
		rt.NodeSelector = p.NodeSelector
	}
	rt.ServiceAccount = p.ServiceAccountName
	if p.AutomountServiceAccountToken != nil && !*p.AutomountServiceAccountToken {
		d.unsup(path+".automountServiceAccountToken", "false is not supported: the job pods write their status on their Jobs with their ServiceAccount's token; remove it")
	}
	if p.SecurityContext != nil {
		rt.PodSecurityContext = jsonOf(p.SecurityContext)
	}
	if len(p.ImagePullSecrets) > 0 {
		rt.ImagePullSecrets = jsonOf(p.ImagePullSecrets)
	}
	if p.Affinity != nil {
		rt.Affinity = jsonOf(p.Affinity)
	}
	rt.SchedulerName = p.SchedulerName
	if len(p.Tolerations) > 0 {
		rt.Tolerations = jsonOf(p.Tolerations)
	}
	rt.PriorityClassName = p.PriorityClassName
	if p.RuntimeClassName != nil {
		rt.RuntimeClassName = *p.RuntimeClassName
	}
	rt.EnableServiceLinks = p.EnableServiceLinks
	if len(p.TopologySpreadConstraints) > 0 {
		rt.TopologySpreadConstraints = jsonOf(p.TopologySpreadConstraints)
	}
}

// runtime maps Stash's runtimeSettings (and a KubeStash RestoreSession's).
func runtime(d *doc, path string, rs runtimeSettings, rt *api.Runtime) {
	if rs.Pod != nil {
		placement(d, path+".pod", &rs.Pod.podPlacement, rt)
		if len(rs.Pod.ServiceAccountAnnotations) > 0 {
			if rs.Pod.ServiceAccountName != "" {
				d.fail(path+".pod.serviceAccountAnnotations", "annotate the ServiceAccount kubectl-stash creates, and serviceAccountName names your own: annotate yours, or drop serviceAccountName")
			}
			rt.ServiceAccountAnnotations = rs.Pod.ServiceAccountAnnotations
		}
	}
	container(d, path+".container", rs.Container, rt)
}

// tempDir maps Stash's tempDir: the medium of the job pods' /tmp and cache volumes, the
// cache's size, and whether there is a cache.
func tempDir(d *doc, path string, t emptyDirSettings, rt *api.Runtime) {
	switch t.Medium {
	case "", corev1.StorageMediumMemory:
		rt.TempDirMedium = string(t.Medium)
	default:
		d.fail(path+".medium", "%q: want Memory, or nothing for the node's disk", t.Medium)
	}
	size := t.SizeLimit
	if t.Size != nil {
		if size != nil {
			d.fail(path+".size", "size and sizeLimit are the same setting: keep sizeLimit")
		}
		size = t.Size
	}
	if t.DisableCaching != nil && t.DisableCache != nil {
		d.fail(path+".disableCache", "disableCache and disableCaching are the same setting: keep disableCaching")
	}
	noCache := (t.DisableCaching != nil && *t.DisableCaching) || (t.DisableCache != nil && *t.DisableCache)
	cacheSize(d, path+".sizeLimit", size, noCache, rt)
}

func cacheSize(d *doc, path string, size *resource.Quantity, noCache bool, rt *api.Runtime) {
	if size != nil {
		if noCache {
			d.fail(path, "a cache size and no cache exclude each other: give one")
		}
		if size.Sign() <= 0 || size.Value() < 16<<20 {
			d.fail(path, "%s: want at least 16Mi (the metadata cache lives there), like 256Mi or 2Gi", size.String())
		}
		rt.CacheSize = size.String()
	}
	rt.NoCache = noCache
}

// volumeMounts maps target.volumeMounts: a volume of the target and where it is mounted.
func volumeMounts(d *doc, path string, in []corev1.VolumeMount, restore bool) []api.VolumeMount {
	var out []api.VolumeMount
	for i, m := range in {
		p := fmt.Sprintf("%s[%d]", path, i)
		if m.Name == "" {
			d.fail(p+".name", "missing: the name of a volume of the target")
		}
		if !strings.HasPrefix(m.MountPath, "/") {
			d.fail(p+".mountPath", "%q: want an absolute path", m.MountPath)
			continue
		}
		if m.SubPath != "" || m.SubPathExpr != "" {
			d.unsup(p+".subPath", "a sub-path of the volume is not supported here: mount the whole volume")
		}
		if m.ReadOnly && restore {
			d.fail(p+".readOnly", "a restore writes into the volume: remove readOnly")
		}
		if m.MountPropagation != nil || m.RecursiveReadOnly != nil {
			d.unsup(p, "mount propagation and recursive read-only mounts are not supported for the job pods; remove them")
		}
		out = append(out, api.VolumeMount{Name: m.Name, MountPath: pathClean(m.MountPath)})
	}
	return out
}

// ---- repositories ----

// secretKeys maps the keys of a Stash or KubeStash storage Secret to the repository
// Secret's; keys not listed are copied as they are (each becomes an environment variable
// of the job pods).
var secretKeys = map[string]string{
	"RESTIC_PASSWORD":                 api.SecretKeyPassword,
	"GOOGLE_SERVICE_ACCOUNT_JSON_KEY": "GOOGLE_APPLICATION_CREDENTIALS",
	"AZURE_ACCOUNT_NAME":              "AZURE_STORAGE_ACCOUNT",
	"AZURE_ACCOUNT_KEY":               "AZURE_STORAGE_KEY",
}

// storageKeys are the keys Stash reads that kubectl-stash has no use for, and why.
var storageKeys = map[string]string{
	"CA_CERT_DATA":       "a custom CA for the object store is not supported: the job image trusts the public CAs",
	"GOOGLE_PROJECT_ID":  "",
	"AWS_SESSION_TOKEN":  "",
	"RESTIC_REPOSITORY":  "the repository's location is the Repository's backend, not a Secret key",
	"TLS_CACERT":         "a custom CA for the object store is not supported",
	"REST_SERVER_URL":    "the REST backend is not supported",
	"B2_ACCOUNT_ID":      "the B2 backend is not supported",
	"OS_AUTH_URL":        "the Swift backend is not supported",
	"AZURE_ACCOUNT_SAS":  "",
	"AWS_DEFAULT_REGION": "",
}

// secretData reads a Secret named by a manifest: its data and stringData, keys mapped
// to the repository Secret's.
func (p *parser) secretData(d *doc, path, name string) (map[string]string, bool) {
	s, ok := p.secrets[name]
	if !ok {
		d.fail(path, "Secret %q is not among the manifests: kubectl-stash makes the repository Secret from its keys; add it to the files given with -f", name)
		return nil, false
	}
	out := map[string]string{}
	keys := map[string]string{}
	for k, v := range s.secret.Data {
		keys[k] = string(v)
	}
	for k, v := range s.secret.StringData {
		keys[k] = v
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if reason := storageKeys[k]; reason != "" {
			s.d.unsup(join("data", k), "%s", reason)
			continue
		}
		to := k
		if m, ok := secretKeys[k]; ok {
			to = m
		}
		out[to] = keys[k]
	}
	return out, true
}

// objectStoreURL builds a repository URL of an object store.
func objectStoreURL(scheme, bucket, prefix string, q url.Values) string {
	u := url.URL{Scheme: scheme, Host: bucket}
	if p := strings.Trim(prefix, "/"); p != "" {
		u.Path = "/" + p
	}
	// ':' and '/' may stay as they are in a query (RFC 3986), and read better
	u.RawQuery = strings.NewReplacer("%3A", ":", "%2F", "/").Replace(q.Encode())
	return u.String()
}

// awsEndpoint reports whether an S3 endpoint is AWS's own.
var awsEndpoint = regexp.MustCompile(`^(https://)?s3([.-][a-z0-9-]+)?\.amazonaws\.com/?$`)

// s3URL builds an s3:// URL: a custom endpoint (MinIO, Ceph…) gets path-style requests
// and the checksums S3-compatible servers accept.
func s3URL(bucket, prefix, region, endpoint string) string {
	q := url.Values{}
	if region != "" {
		q.Set("region", region)
	}
	if endpoint != "" && !awsEndpoint.MatchString(endpoint) {
		if !strings.Contains(endpoint, "://") {
			endpoint = "https://" + endpoint
		}
		q.Set("endpoint", strings.TrimRight(endpoint, "/"))
		q.Set("use_path_style", "true")
		q.Set("request_checksum_calculation", "when_required")
		q.Set("response_checksum_validation", "when_required")
	}
	return objectStoreURL("s3", bucket, prefix, q)
}

// pvcURL builds a pvc:// URL.
func pvcURL(claim, dir string) string {
	u := "pvc://" + claim + "/"
	if d := strings.Trim(path.Clean("/"+dir), "/"); d != "" {
		u += d
	}
	return u
}

// addRepository adds a repository, refusing two of one name that differ.
func (p *parser) addRepository(d *doc, path string, r Repository) {
	if r.Password == "" {
		d.fail(path, "the repository %s has no password: its Secret needs RESTIC_PASSWORD", r.Name)
		return
	}
	if old := p.set.Repository(r.Name); old != nil {
		if old.URL != r.URL || old.Password != r.Password {
			d.fail(path, "repository %s is defined twice, differently (also by %s): give it one backend and one password", r.Name, old.Origin)
		}
		return
	}
	r.Origin = origin(d)
	p.set.Repositories = append(p.set.Repositories, r)
}

var metaTypePVC = metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"}

func objectMeta(name string, labels, annotations map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}
}
