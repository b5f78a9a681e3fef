// Package manifest reads Stash and KubeStash manifests (and writes them back): strict
// parsing with the file, line and field path of every problem, mapping into the one
// internal model of internal/api that the plugin's flags also map into, and rendering
// of that model as Stash or KubeStash YAML or as the equivalent command line.
//
// A field that has a meaning here is honoured. A field this project cannot honour is
// rejected with its path, the reason and what to do instead, before anything is created;
// Options.IgnoreUnsupported turns those rejections into warnings. Nothing is dropped
// silently: status, and metadata written by the API server, are the only parts read and
// not used.
package manifest

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// The API versions read.
const (
	StashV1beta1   = "stash.appscode.com/v1beta1"
	StashV1alpha1  = "stash.appscode.com/v1alpha1"
	KubeStashCore  = "core.kubestash.com/v1alpha1"
	KubeStashStore = "storage.kubestash.com/v1alpha1"
)

// Annotations a Stash or KubeStash RestoreSession may carry to say whose snapshots it
// restores, which neither format has a field for.
const (
	// AnnotationFromConfig names the backup configuration whose snapshots are restored.
	AnnotationFromConfig = api.Prefix + "from-config"
	// AnnotationSourceTarget names the workload (KIND/NAME) whose snapshots are restored.
	AnnotationSourceTarget = api.Prefix + "source-target"
)

// Options change how manifests are read.
type Options struct {
	// IgnoreUnsupported turns the rejection of fields this project cannot honour into
	// warnings (Set.Warnings); the fields are not applied.
	IgnoreUnsupported bool
}

// Origin says where an object of the Set came from.
type Origin struct {
	File string `json:"-"`
	Line int    `json:"-"`
	// Kind is the manifest's kind, with its flavour: "Stash BackupConfiguration".
	Kind string `json:"-"`
}

func (o Origin) String() string { return fmt.Sprintf("%s (%s:%d)", o.Kind, o.File, o.Line) }

// Backup is a backup configuration.
type Backup struct {
	Config api.BackupConfig `json:"config"`
	Origin `json:"-"`
}

// Restore is a restore session.
type Restore struct {
	Config api.RestoreConfig `json:"config"`
	// ClaimTemplates are the claims to create before restoring: the volumeClaimTemplates
	// of a StatefulSet about to be created (claims <name>-<statefulset>-<ordinal>), or the
	// pvc target itself.
	ClaimTemplates []corev1.PersistentVolumeClaim `json:"claimTemplates,omitempty"`
	// SourceFromRepository says the manifest names where its snapshots come from only by
	// the repository, as Stash does (one repository per backup configuration): the plugin
	// looks for the backup configuration writing to it.
	SourceFromRepository bool `json:"sourceFromRepository,omitempty"`
	Origin               `json:"-"`
}

// Trigger is a backup session to start now.
type Trigger struct {
	// Config is the backup configuration.
	Config string `json:"config"`
	// Batch says the manifest's invoker is a BackupBatch: the configuration is a batch.
	Batch bool `json:"batch,omitempty"`
	// Session is the KubeStash session named by a KubeStash BackupSession.
	Session string `json:"session,omitempty"`
	// Name is the session's name (metadata.name), when the manifest gives one.
	Name   string `json:"name,omitempty"`
	Origin `json:"-"`
}

// Verification is a backup verification session.
type Verification struct {
	Config api.VerifyConfig `json:"config"`
	Origin `json:"-"`
}

// Repository is a repository Secret made from a Stash Repository, or a KubeStash
// BackupStorage, Repository and encryption Secret, and their storage Secret.
type Repository struct {
	Name     string            `json:"name"`
	URL      string            `json:"url"`
	Password string            `json:"password"`
	Env      map[string]string `json:"env,omitempty"`
	Origin   `json:"-"`
}

// Set is everything a set of manifests describes, in the internal model.
type Set struct {
	// Namespace is the namespace the manifests name ("" when none does).
	Namespace     string         `json:"namespace,omitempty"`
	Repositories  []Repository   `json:"repositories,omitempty"`
	Backups       []Backup       `json:"backups,omitempty"`
	Restores      []Restore      `json:"restores,omitempty"`
	Triggers      []Trigger      `json:"triggers,omitempty"`
	Verifications []Verification `json:"verifications,omitempty"`
	// Warnings are the problems Options.IgnoreUnsupported let through.
	Warnings []string `json:"warnings,omitempty"`
}

// Repository returns the repository of that name the manifests define, or nil.
func (s *Set) Repository(name string) *Repository {
	for i := range s.Repositories {
		if s.Repositories[i].Name == name {
			return &s.Repositories[i]
		}
	}
	return nil
}

// Parse reads manifests into a Set. Its error, an *Error, lists every problem.
func Parse(srcs []Source, opts Options) (*Set, error) {
	var problems []*Problem
	p := &parser{set: &Set{}, secrets: map[string]*secretDoc{}, used: map[string]bool{}}
	for _, src := range srcs {
		for _, d := range documents(src, &problems) {
			p.add(d)
		}
	}
	p.mapAll()
	var errs []*Problem
	for _, pr := range problems {
		if pr.Unsupported && opts.IgnoreUnsupported {
			p.set.Warnings = append(p.set.Warnings, pr.Warning())
			continue
		}
		errs = append(errs, pr)
	}
	if len(errs) > 0 {
		sortProblems(errs)
		return nil, &Error{Problems: errs}
	}
	return p.set, nil
}

// kindKey is apiVersion/kind.
func kindKey(apiVersion, kind string) string { return apiVersion + "/" + kind }

// newObject returns a pointer to the Go type of a kind this package reads.
func newObject(apiVersion, kind string) any {
	switch kindKey(apiVersion, kind) {
	case kindKey(StashV1beta1, "BackupConfiguration"):
		return &stashBackupConfiguration{}
	case kindKey(StashV1beta1, "BackupBatch"):
		return &stashBackupBatch{}
	case kindKey(StashV1beta1, "RestoreSession"):
		return &stashRestoreSession{}
	case kindKey(StashV1beta1, "BackupSession"):
		return &stashBackupSession{}
	case kindKey(StashV1alpha1, "Repository"):
		return &stashRepository{}
	case kindKey(KubeStashCore, "BackupConfiguration"):
		return &ksBackupConfiguration{}
	case kindKey(KubeStashCore, "RestoreSession"):
		return &ksRestoreSession{}
	case kindKey(KubeStashCore, "BackupSession"):
		return &ksBackupSession{}
	case kindKey(KubeStashCore, "BackupVerificationSession"):
		return &ksBackupVerificationSession{}
	case kindKey(KubeStashStore, "BackupStorage"):
		return &ksBackupStorage{}
	case kindKey(KubeStashStore, "Repository"):
		return &ksRepository{}
	case kindKey(KubeStashStore, "RetentionPolicy"):
		return &ksRetentionPolicy{}
	case kindKey("v1", "Secret"):
		return &corev1.Secret{}
	}
	return nil
}

// Kinds lists the kinds Parse reads, for messages and documentation.
var Kinds = []string{
	StashV1beta1 + " BackupConfiguration, BackupBatch, RestoreSession, BackupSession",
	StashV1alpha1 + " Repository",
	KubeStashCore + " BackupConfiguration, RestoreSession, BackupSession, BackupVerificationSession",
	KubeStashStore + " BackupStorage, Repository, RetentionPolicy",
	"v1 Secret (the storage and encryption Secrets those name)",
}

// object is a decoded document.
type object struct {
	d   *doc
	obj any
}

type secretDoc struct {
	d      *doc
	secret *corev1.Secret
}

type parser struct {
	set     *Set
	objects []object
	secrets map[string]*secretDoc
	// used marks supporting documents (kind/name) something refers to.
	used map[string]bool
	// ns is the first document that names a namespace.
	ns *doc
}

// add decodes a document.
func (p *parser) add(d *doc) {
	for i := 0; i+1 < len(d.root.Content); i += 2 {
		if k := d.root.Content[i]; k.Value == "apiVersion" || k.Value == "kind" {
			d.keyAt[k.Value] = pos{k.Line, k.Column}
		}
	}
	if d.apiVer == "" || d.kind == "" {
		missing := "apiVersion"
		if d.apiVer != "" {
			missing = "kind"
		}
		d.fail(missing, "missing: every document needs apiVersion and kind; kubectl stash reads %s", strings.Join(Kinds, "; "))
		return
	}
	obj := newObject(d.apiVer, d.kind)
	if obj == nil {
		msg := fmt.Sprintf("%s %s is not a kind kubectl stash reads (it reads %s)", d.apiVer, d.kind, strings.Join(Kinds, "; "))
		switch {
		case d.apiVer == StashV1beta1 || d.apiVer == KubeStashCore || d.apiVer == KubeStashStore || d.apiVer == StashV1alpha1:
			d.unsup("kind", "%s", msg)
		case strings.Contains(d.apiVer, "stash"):
			d.fail("apiVersion", "%s: is the apiVersion right?", msg)
		default:
			d.unsup("kind", "%s: apply it with kubectl apply -f", msg)
		}
		return
	}
	dc := &decoder{d: d}
	dc.decode(d.root, "", reflect.ValueOf(obj).Elem())
	meta := reflect.ValueOf(obj).Elem().FieldByName("Metadata")
	if s, ok := obj.(*corev1.Secret); ok {
		d.name, d.ns = s.Name, s.Namespace
	} else if meta.IsValid() {
		d.name = meta.FieldByName("Name").String()
		d.ns = meta.FieldByName("Namespace").String()
	}
	if d.name == "" && !(d.kind == "BackupSession") {
		d.fail("metadata.name", "missing: name the %s", d.kind)
	}
	if d.ns != "" {
		if p.ns == nil {
			p.ns = d
			p.set.Namespace = d.ns
		} else if d.ns != p.set.Namespace {
			d.fail("metadata.namespace", "%s, but %s %s (%s) is in namespace %s: give the manifests of one namespace at a time", d.ns, p.ns.kind, p.ns.name, p.ns.file, p.set.Namespace)
		}
	}
	if s, ok := obj.(*corev1.Secret); ok {
		if prev, dup := p.secrets[s.Name]; dup {
			d.fail("metadata.name", "Secret %s is given twice (also in %s): keep one", s.Name, prev.d.file)
			return
		}
		p.secrets[s.Name] = &secretDoc{d: d, secret: s}
		return
	}
	for _, o := range p.objects {
		if o.d.apiVer == d.apiVer && o.d.kind == d.kind && o.d.name == d.name && d.name != "" {
			d.fail("metadata.name", "%s %s is given twice (also in %s): keep one", d.kind, d.name, o.d.file)
			return
		}
	}
	p.objects = append(p.objects, object{d: d, obj: obj})
}

// find returns the decoded document of that kind and name, marking it used.
func (p *parser) find(apiVersion, kind, name string) (object, bool) {
	for _, o := range p.objects {
		if o.d.apiVer == apiVersion && o.d.kind == kind && o.d.name == name {
			p.used[kindKey(apiVersion, kind)+"/"+name] = true
			return o, true
		}
	}
	return object{}, false
}

// mapAll maps every decoded document into the Set: repositories first, which the others
// refer to.
func (p *parser) mapAll() {
	for _, o := range p.objects {
		if r, ok := o.obj.(*stashRepository); ok {
			p.stashRepository(o.d, r)
		}
	}
	// backup configurations next: a restore of the same files may restore their snapshots
	for _, o := range p.objects {
		switch obj := o.obj.(type) {
		case *stashBackupConfiguration:
			p.stashBackup(o.d, obj)
		case *stashBackupBatch:
			p.stashBatch(o.d, obj)
		case *ksBackupConfiguration:
			p.ksBackup(o.d, obj)
		}
	}
	for _, o := range p.objects {
		switch obj := o.obj.(type) {
		case *stashRestoreSession:
			p.stashRestore(o.d, obj)
		case *stashBackupSession:
			p.stashTrigger(o.d, obj)
		case *ksRestoreSession:
			p.ksRestore(o.d, obj)
		case *ksBackupSession:
			p.ksTrigger(o.d, obj)
		case *ksBackupVerificationSession:
			p.ksVerification(o.d, obj)
		}
	}
	// a KubeStash Repository nothing restores from is still a repository
	for _, o := range p.objects {
		if r, ok := o.obj.(*ksRepository); ok && p.set.Repository(o.d.name) == nil {
			p.ksRepository(o.d, r)
		}
	}
	sort.SliceStable(p.set.Repositories, func(i, j int) bool { return p.set.Repositories[i].Name < p.set.Repositories[j].Name })
}

func origin(d *doc) Origin {
	line := 0
	if d.root != nil {
		line = d.root.Line
	}
	return Origin{File: d.file, Line: line, Kind: strings.TrimSuffix(d.what(), " "+d.name)}
}
