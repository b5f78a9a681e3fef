package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/manifest"
	"github.com/kubectl-stash/kubectl-stash/internal/restoreplan"
	"github.com/kubectl-stash/kubectl-stash/internal/workload"
	"github.com/kubectl-stash/kubectl-stash/plugin/jobs"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

// RestoreOptions are the flags of `kubectl stash restore`.
type RestoreOptions struct {
	global *GlobalOptions

	Target       string
	Name         string
	Repository   string
	FromConfig   string
	SourceTarget string
	Snapshot     string
	Rules        []string
	Paths        []string
	Includes     []string
	Excludes     []string
	Overwrite    string
	Delete       bool
	MountPath    string
	Replicas     int
	ClaimFile    string
	VolumeMounts []string
	Size         string
	StorageClass string
	ScaleDown    bool
	Timeout      time.Duration
	Wait         bool
	Alias        string

	RuntimeFlags
	ManifestFlags
	DumpFlags
	HookFlags

	DryRun string
	Output string

	namespace string
	newClient clientsetFunc
	client    kubernetes.Interface
	cfg       api.RestoreConfig
	// claimTemplate is the PVC of --volume-claim-template.
	claimTemplate *corev1.PersistentVolumeClaim
	// claimTemplates are the claim templates of a manifest (-f), for the restore run now.
	claimTemplates []corev1.PersistentVolumeClaim
	// set is what -f read.
	set *manifest.Set
	// fromRepository: the snapshots are those of the configuration writing to the
	// repository, found when the restore runs (a Stash manifest's way).
	fromRepository bool

	genericiooptions.IOStreams
}

// NewCmdRestore returns `kubectl stash restore`.
func NewCmdRestore(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdRestore(&RestoreOptions{global: g, IOStreams: streams, DryRun: "none", Overwrite: "always"})
}

func newCmdRestore(o *RestoreOptions) *cobra.Command {
	g := o.global
	cmd := &cobra.Command{
		Use:   "restore (KIND/NAME --repo REPOSITORY [--from-config CONFIG | --source-target KIND/NAME] [--rule RULE]... | -f FILE)",
		Short: "Restore snapshots into a workload's or a PVC's volumes (a restore session)",
		Long: `Start a restore session: a Job that finds the target's hosts (host-0; host-<ordinal> for
a StatefulSet; the node name for a DaemonSet), applies the restore rules, and restores
each host in a Job of its own that mounts the host's volumes read-write.

Without rules every target host restores its own host's latest snapshot of each path
(the backup configuration's paths with --from-config, else --paths, else every path the
host has snapshots of). A rule is 'targetHosts=H,H;sourceHost=H;paths=P,P;snapshots=ID,ID':
each target host takes the first rule whose targetHosts names it, else the rule with
empty targetHosts; an empty sourceHost means the host of the same name; a host no rule
matches gets nothing, and its stats say so.

The snapshots come from --from-config (the snapshots that backup configuration made),
--source-target (those of another workload), or by default those of the target itself.
When the repository can be read from here, the snapshots each host would restore are
checked before anything is created.

A StatefulSet that does not exist yet is restored into with --replicas and
--volume-claim-template: the claims <template>-<name>-<ordinal> are created and filled, and
the StatefulSet created afterwards with the same template starts with its data. A PVC that
does not exist is created with --size (and --storage-class).

With -f, the sessions are Stash or KubeStash RestoreSessions instead (the seed's rules,
target.replicas and volumeClaimTemplates with ${POD_ORDINAL} included); a field
kubectl-stash cannot honour is refused with its file, line and field path before anything
is created (--ignore-unsupported warns instead). See docs/manifests.md.`,
		Example: `  # Put the latest backup of a Deployment's data back in place, with the app stopped
  kubectl stash restore deployment/shop --repo s3-repo --from-config shop-backup --scale-down --wait

  # The seed's sample: a new 5-replica StatefulSet; host-3 and host-4 get host-1's data
  kubectl stash restore statefulset/recovered --repo s3-repo --from-config sample-backup \
    --replicas 5 --volume-claim-template data-claim.yaml --volume-mount source-data:/source/data \
    --rule 'targetHosts=host-3,host-4;sourceHost=host-1;paths=/source/data' \
    --rule 'targetHosts=;sourceHost=;paths=/source/data' --wait

  # A Deployment's volume into a new PVC, from one snapshot, only *.sql files
  kubectl stash restore pvc/shop-copy --repo s3-repo --source-target deployment/shop \
    --snapshot 1a2b3c4d --size 5Gi --mount-path /source/data --include '*.sql'

  # Only add what is missing, and show the objects instead of creating them
  kubectl stash restore deployment/shop --repo s3-repo --overwrite never --dry-run=client -o yaml

  # A Stash RestoreSession, as Stash would run it
  kubectl stash restore -f restoresession.yaml --wait

  # A database dump of a batch's member into a fresh PostgreSQL (psql in its pod reads it)
  kubectl stash restore statefulset/pg-copy --repo s3-repo --from-config app \
    --source-target statefulset/pg --wait   # the configuration says it is a dump

  # Stop the application's writers around the restore
  kubectl stash restore deployment/shop --repo s3-repo --from-config shop-backup \
    --pre-restore 'touch /data/.maintenance' --post-restore 'rm -f /data/.maintenance'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.Filename != "" {
				if len(args) > 0 {
					return fmt.Errorf("%s with -f: the manifests name the targets", args[0])
				}
				return onlyWith(cmd, "dry-run", "output", "wait")
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.RuntimeFlags.changed(cmd)
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.ValidArgsFunction = onlyFirstArg(g.complete(completeTargets))
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "name of the restore session (default: NAME-restore-XXXXXX)")
	f.StringVar(&o.Repository, "repo", "", "repository Secret the snapshots are in")
	f.StringVar(&o.FromConfig, "from-config", "", "restore the snapshots this backup configuration made (its target, paths and hosts)")
	f.StringVar(&o.SourceTarget, "source-target", "", "restore the snapshots of this KIND/NAME (default: the target itself)")
	f.StringVar(&o.Snapshot, "snapshot", "latest", "snapshot id for every host (latest: each host's newest of each path)")
	f.StringArrayVar(&o.Rules, "rule", nil, "restore rule 'targetHosts=H,H;sourceHost=H;paths=P,P;snapshots=ID'; repeatable, first match wins")
	f.StringSliceVar(&o.Paths, "paths", nil, "paths to restore (default: the configuration's, or every path of the source host)")
	f.StringArrayVar(&o.Includes, "include", nil, "restore only files matching this glob (a pattern with / matches the full path); repeatable")
	f.StringArrayVar(&o.Excludes, "exclude", nil, "leave out files matching this glob; repeatable")
	f.StringVar(&o.Overwrite, "overwrite", o.Overwrite, "existing files that differ: never (keep them), if-newer (replace if the snapshot's is newer) or always")
	f.BoolVar(&o.Delete, "delete", false, "delete files in the restored directories that are not in the snapshot")
	f.StringVar(&o.MountPath, "mount-path", "", "for a pvc target: where the volume is mounted in the restore pod (default: the single path restored, else /data)")
	f.IntVar(&o.Replicas, "replicas", 0, "for a StatefulSet that does not exist yet: its replica count (host-0 .. host-N-1)")
	f.StringVar(&o.ClaimFile, "volume-claim-template", "", "file with the StatefulSet's volumeClaimTemplate (a PersistentVolumeClaim), or the PVC to create for a pvc target")
	f.StringArrayVar(&o.VolumeMounts, "volume-mount", nil, "NAME:PATH: mount the target's volume NAME at PATH in the restore pods (the seed's target.volumeMounts); repeatable")
	f.StringVar(&o.Size, "size", "", "for a pvc target that does not exist: create it with this size (e.g. 5Gi)")
	f.StringVar(&o.StorageClass, "storage-class", "", "storage class of a PVC created with --size")
	f.BoolVar(&o.ScaleDown, "scale-down", false, "scale the workload to 0 for the restore and back afterwards (the count is recorded on it first)")
	f.DurationVar(&o.Timeout, "timeout", 0, "fail hosts still running after this long; 0: no limit")
	f.BoolVar(&o.Wait, "wait", false, "follow the session and exit non-zero unless it Succeeded")
	f.StringVar(&o.Alias, "alias", "", "the hosts are named <alias>, <alias>-<ordinal>, <alias>-<node> (the backup configuration's --alias)")
	o.DumpFlags.addFlags(f)
	o.HookFlags.addFlags(f, false)
	o.RuntimeFlags.addFlags(f, "restore")
	o.ManifestFlags.addFlags(f, "restore sessions")
	f.StringVar(&o.DryRun, "dry-run", o.DryRun, "none, or client: print the objects, create nothing")
	f.Lookup("dry-run").NoOptDefVal = "client"
	f.StringVarP(&o.Output, "output", "o", "", "yaml or json: print the objects; stash or kubestash (with --dry-run=client): print the session as that manifest")
	_ = cmd.RegisterFlagCompletionFunc("repo", g.complete(completeRepositories))
	_ = cmd.RegisterFlagCompletionFunc("overwrite", cobra.FixedCompletions([]string{"never", "if-newer", "always"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("dry-run", cobra.FixedCompletions([]string{"none", "client"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"yaml", "json", "stash", "kubestash"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete reads the target (or the manifests of -f), the namespace and, unless only
// printing, the client.
func (o *RestoreOptions) Complete(args []string) error {
	if o.Filename != "" {
		set, ns, err := o.ManifestFlags.read(o.global, o.In, o.ErrOut)
		if err != nil {
			return err
		}
		o.set, o.namespace = set, ns
		if o.DryRun == "client" {
			return nil
		}
		if o.newClient == nil {
			o.newClient = clientsetFromFlags(o.global)
		}
		o.client, err = o.newClient()
		return err
	}
	o.Target = args[0]
	if o.DryRun == "client" {
		ns, _, err := o.global.ConfigFlags.ToRawKubeConfigLoader().Namespace()
		o.namespace = ns
		return err
	}
	if o.newClient == nil {
		o.newClient = clientsetFromFlags(o.global)
	}
	return completeClient(o.global, o.newClient, &o.namespace, &o.client)
}

// Validate checks the flags and builds the restore configuration (or takes those of -f);
// it touches no cluster.
func (o *RestoreOptions) Validate() error {
	if err := validateDryRunOutput(o.DryRun, o.Output, false); err != nil {
		return err
	}
	if o.set != nil {
		return o.validateManifests()
	}
	t, err := parseTarget(o.Target)
	if err != nil {
		return err
	}
	name := o.Name
	if name == "" {
		base := t.Name
		if len(base) > 35 {
			base = strings.TrimRight(base[:35], "-.")
		}
		name = base + "-restore-" + randomSuffix()
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 || len(name) > 52 {
		return fmt.Errorf("restore session name %q: want a DNS label of at most 52 characters (host Jobs append the host name); give --name", name)
	}
	if o.Repository == "" {
		return fmt.Errorf("no repository: give --repo NAME (see kubectl stash repo list)")
	}
	source := t
	if o.SourceTarget != "" {
		if source, err = parseTarget(o.SourceTarget); err != nil {
			return fmt.Errorf("--source-target: %w", err)
		}
	}
	var rules []api.RestoreRule
	for _, s := range o.Rules {
		r, err := api.ParseRule(s)
		if err != nil {
			return fmt.Errorf("--rule: %w", err)
		}
		rules = append(rules, r)
	}
	if err := api.ValidateRules(rules); err != nil {
		return fmt.Errorf("--rule: %w", err)
	}
	if o.Snapshot != "" && o.Snapshot != "latest" {
		if len(rules) > 0 {
			return fmt.Errorf("--snapshot %s and --rule both choose snapshots: put snapshots=%s into the rules", o.Snapshot, o.Snapshot)
		}
		rules = []api.RestoreRule{{TargetHosts: []string{}, Snapshots: []string{o.Snapshot}, Paths: o.Paths}}
		if err := api.ValidateRules(rules); err != nil {
			return fmt.Errorf("--snapshot: %w", err)
		}
	}
	var paths []string
	for _, p := range o.Paths {
		if !path.IsAbs(p) {
			return fmt.Errorf("--paths %q: want an absolute path, as the workload's containers see it", p)
		}
		paths = append(paths, path.Clean(p))
	}
	for _, g := range append(append([]string(nil), o.Includes...), o.Excludes...) {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("--include/--exclude %q: %v", g, err)
		}
	}
	switch o.Overwrite {
	case "never", "if-newer", "always":
	default:
		return fmt.Errorf("--overwrite %q: want never, if-newer or always", o.Overwrite)
	}
	var mounts []api.VolumeMount
	for _, s := range o.VolumeMounts {
		n, p, ok := strings.Cut(s, ":")
		if !ok || n == "" || !path.IsAbs(p) {
			return fmt.Errorf("--volume-mount %q: want NAME:/absolute/path", s)
		}
		mounts = append(mounts, api.VolumeMount{Name: n, MountPath: path.Clean(p)})
	}
	if o.Replicas < 0 {
		return fmt.Errorf("--replicas %d: want 1 or more", o.Replicas)
	}
	if o.Replicas > 0 && t.Kind != "statefulset" {
		return fmt.Errorf("--replicas is for a StatefulSet that does not exist yet, not for %s", t)
	}
	if o.Replicas > 0 && o.ClaimFile == "" {
		return fmt.Errorf("--replicas %d needs --volume-claim-template FILE: the claims <template>-%s-<ordinal> are created from it", o.Replicas, t.Name)
	}
	if o.ClaimFile != "" {
		if t.Kind != "statefulset" && t.Kind != "pvc" {
			return fmt.Errorf("--volume-claim-template is for a new StatefulSet or PVC, not for %s", t)
		}
		if o.claimTemplate, err = readClaim(o.ClaimFile); err != nil {
			return err
		}
		if t.Kind == "statefulset" && len(mounts) == 0 {
			// one template, one restored path: mount it there
			if len(paths) == 1 {
				mounts = []api.VolumeMount{{Name: o.claimTemplate.Name, MountPath: paths[0]}}
			} else if ps := rulePaths(rules); len(ps) == 1 {
				mounts = []api.VolumeMount{{Name: o.claimTemplate.Name, MountPath: ps[0]}}
			}
		}
	}
	if o.Size != "" {
		if t.Kind != "pvc" {
			return fmt.Errorf("--size is for a pvc target that does not exist yet, not for %s", t)
		}
		if q, err := resource.ParseQuantity(o.Size); err != nil || q.Sign() <= 0 {
			return fmt.Errorf("--size %q: want a size like 5Gi", o.Size)
		}
	}
	if o.ScaleDown && (t.Kind == "pvc" || t.Kind == "daemonset") {
		return fmt.Errorf("--scale-down is for deployments, statefulsets, replicasets and replicationcontrollers, not %s", t.Kind)
	}
	if o.Timeout < 0 {
		return fmt.Errorf("--timeout %s: want a positive duration", o.Timeout)
	}
	rt, err := o.RuntimeFlags.runtime()
	if err != nil {
		return err
	}
	if o.Alias != "" {
		if errs := validation.IsDNS1123Label(o.Alias); len(errs) > 0 || len(o.Alias) > 40 {
			return fmt.Errorf("--alias %q: want a DNS label of at most 40 characters", o.Alias)
		}
	}
	dump, err := o.DumpFlags.dump(nil)
	if err != nil {
		return err
	}
	if dump != nil && (t.Kind == "pvc" || o.Replicas > 0 || o.ScaleDown || len(o.Includes)+len(o.Excludes) > 0 || o.Delete) {
		return fmt.Errorf("--dump restores a database through its running pod: --replicas, --scale-down, --include, --exclude, --delete and pvc targets do not apply")
	}
	hooks, err := o.HookFlags.hooks()
	if err != nil {
		return err
	}
	o.cfg = api.RestoreConfig{Alias: o.Alias, SchemaVersion: api.SchemaVersion, Name: name, Target: t, Repository: o.Repository,
		FromConfig: o.FromConfig, SourceTarget: source, Rules: rules, Paths: paths, Includes: o.Includes, Excludes: o.Excludes,
		Overwrite: o.Overwrite, Delete: o.Delete, Replicas: o.Replicas, VolumeMounts: mounts, ScaleDown: o.ScaleDown,
		Image: o.global.JobImage(), Runtime: rt, Dump: dump, Hooks: hooks}
	if o.claimTemplate != nil && t.Kind == "statefulset" {
		o.cfg.VolumeClaimTemplates = []string{o.claimTemplate.Name}
	}
	if o.cfg.Rules == nil {
		o.cfg.Rules = []api.RestoreRule{}
	}
	if t.Kind == "pvc" {
		o.cfg.MountPath = o.MountPath
		if o.cfg.MountPath == "" {
			o.cfg.MountPath = "/data"
			if ps := append(append([]string(nil), paths...), rulePaths(rules)...); len(ps) == 1 {
				o.cfg.MountPath = ps[0]
			}
		}
		o.cfg.MountPath = path.Clean(o.cfg.MountPath)
	}
	if o.Timeout > 0 {
		o.cfg.Timeout = o.Timeout.String()
	}
	return nil
}

// validateManifests takes the restore sessions of -f.
func (o *RestoreOptions) validateManifests() error {
	if err := o.ManifestFlags.foreign(o.set, "restore", o.ErrOut); err != nil {
		return err
	}
	if len(o.set.Restores) == 0 {
		return fmt.Errorf("no RestoreSession in the manifests of -f %s: kubectl stash restore -f starts restore sessions", o.Filename)
	}
	for _, b := range o.set.Backups {
		fmt.Fprintf(o.ErrOut, "note: %s %s is read to know whose snapshots are restored; it is not created (kubectl stash backup -f creates it)\n", b.Origin.Kind, b.Config.Name)
	}
	if err := validateRepositories(o.set); err != nil {
		return err
	}
	for i := range o.set.Restores {
		o.set.Restores[i].Config.Image = o.global.JobImage()
	}
	return nil
}

// use makes a restore of the manifests the one Run runs.
func (o *RestoreOptions) use(r manifest.Restore) {
	o.cfg = r.Config
	o.claimTemplates = r.ClaimTemplates
	o.claimTemplate = nil
	o.Replicas, o.MountPath, o.Size = r.Config.Replicas, r.Config.MountPath, ""
	o.fromRepository = r.SourceFromRepository
}

// templates are the claim templates of the restore: --volume-claim-template's, or the
// manifest's.
func (o *RestoreOptions) templates() []corev1.PersistentVolumeClaim {
	if o.claimTemplate != nil {
		return []corev1.PersistentVolumeClaim{*o.claimTemplate}
	}
	return o.claimTemplates
}

// rulePaths are the distinct paths the rules name.
func rulePaths(rules []api.RestoreRule) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rules {
		for _, p := range r.Paths {
			if p = path.Clean(p); !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

func readClaim(file string) (*corev1.PersistentVolumeClaim, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--volume-claim-template: %w", err)
	}
	var pvc corev1.PersistentVolumeClaim
	if err := yaml.UnmarshalStrict(b, &pvc); err != nil {
		return nil, fmt.Errorf("--volume-claim-template %s: not a PersistentVolumeClaim: %v", file, err)
	}
	if pvc.Kind != "" && pvc.Kind != "PersistentVolumeClaim" {
		return nil, fmt.Errorf("--volume-claim-template %s: kind %s, want PersistentVolumeClaim (the StatefulSet's volumeClaimTemplates entry)", file, pvc.Kind)
	}
	if pvc.Name == "" {
		return nil, fmt.Errorf("--volume-claim-template %s: metadata.name is empty: it names the template (claims are <name>-<statefulset>-<ordinal>)", file)
	}
	if len(pvc.Spec.AccessModes) == 0 {
		return nil, fmt.Errorf("--volume-claim-template %s: spec.accessModes is empty: give e.g. [ReadWriteOnce]", file)
	}
	if _, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		return nil, fmt.Errorf("--volume-claim-template %s: spec.resources.requests.storage is missing: give the size", file)
	}
	return &pvc, nil
}

// claims returns the PVCs to create for a target that does not exist yet.
func (o *RestoreOptions) claims(existing func(name string) bool) []*corev1.PersistentVolumeClaim {
	t := o.cfg.Target
	labels := map[string]string{api.LabelManagedBy: api.ManagedByValue, api.LabelRestoreSession: o.cfg.Name}
	mk := func(name string, spec corev1.PersistentVolumeClaimSpec, l map[string]string) *corev1.PersistentVolumeClaim {
		ll := map[string]string{}
		for k, v := range l {
			ll[k] = v
		}
		for k, v := range labels {
			ll[k] = v
		}
		return &corev1.PersistentVolumeClaim{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.namespace, Labels: ll}, Spec: *spec.DeepCopy()}
	}
	var out []*corev1.PersistentVolumeClaim
	switch {
	case t.Kind == "statefulset" && len(o.templates()) > 0:
		for i := range o.Replicas {
			for _, tmpl := range o.templates() {
				n := fmt.Sprintf("%s-%s-%d", tmpl.Name, t.Name, i)
				if !existing(n) {
					out = append(out, mk(n, tmpl.Spec, tmpl.Labels))
				}
			}
		}
	case t.Kind == "pvc" && len(o.templates()) > 0:
		tmpl := o.templates()[0]
		out = append(out, mk(t.Name, tmpl.Spec, tmpl.Labels))
	case t.Kind == "pvc" && o.Size != "":
		spec := corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(o.Size)}}}
		if o.StorageClass != "" {
			spec.StorageClassName = &o.StorageClass
		}
		out = append(out, mk(t.Name, spec, nil))
	}
	return out
}

// Run checks everything the session refers to, then creates it; with -f, every session of
// the manifests in turn, after the repository Secrets they define.
func (o *RestoreOptions) Run(ctx context.Context) error {
	if o.Output == manifest.FormatStash || o.Output == manifest.FormatKubeStash {
		set := o.set
		if set == nil {
			set = &manifest.Set{Namespace: o.namespace, Restores: []manifest.Restore{{Config: o.cfg, ClaimTemplates: o.templates()}}}
		}
		return printManifest(o.Out, o.ErrOut, set, o.Output, o.IgnoreUnsupported)
	}
	if o.set == nil {
		return o.runOne(ctx)
	}
	if o.DryRun == "client" {
		var all []runtime.Object
		for _, r := range o.set.Repositories {
			all = append(all, repository.NewSecret(r.Name, o.namespace, r.URL, r.Password, r.Env))
		}
		for _, r := range o.set.Restores {
			o.use(r)
			if r.SourceFromRepository {
				fmt.Fprintf(o.ErrOut, "note: restoresession %s restores the snapshots of the backup configuration writing to repository %s, found when it runs (annotate it %s: CONFIG to say which); the Job printed restores %s's own\n",
					r.Config.Name, r.Config.Repository, manifest.AnnotationFromConfig, r.Config.Target)
			}
			objs, err := jobs.BuildRestore(o.cfg, o.namespace, o.claims(func(string) bool { return false }))
			if err != nil {
				return err
			}
			all = append(all, objs.Manifest()...)
		}
		return printObjects(o.Out, all, o.Output)
	}
	info := o.Out
	if o.Output != "" {
		info = o.ErrOut
	}
	for _, r := range o.set.Repositories {
		// a restore reads a repository that exists: the Secret only, no initialisation
		if err := ensureRepository(ctx, o.global, o.IOStreams, info, o.client, o.namespace, r, false, false); err != nil {
			return err
		}
	}
	for _, r := range o.set.Restores {
		o.use(r)
		if err := o.runOne(ctx); err != nil {
			return fmt.Errorf("restoresession %s: %w", r.Config.Name, err)
		}
	}
	return nil
}

// sourceFromRepository finds the backup configuration writing to the restore's repository,
// whose snapshots a Stash RestoreSession restores.
func (o *RestoreOptions) sourceFromRepository(ctx context.Context) error {
	list, err := o.client.BatchV1().CronJobs(o.namespace).List(ctx, metav1.ListOptions{LabelSelector: api.LabelBackupConfiguration})
	if err != nil {
		return fmt.Errorf("list backup configurations: %w", err)
	}
	var names []string
	for _, cj := range list.Items {
		var bc api.BackupConfig
		if api.Decode(api.AnnotationConfig, cj.Annotations[api.AnnotationConfig], &bc) == nil && bc.Repository == o.cfg.Repository {
			names = append(names, cj.Name)
		}
	}
	sort.Strings(names)
	switch len(names) {
	case 0:
		if o.Output == "" {
			fmt.Fprintf(o.Out, "no backup configuration writes to repository %s: restoring the snapshots of %s itself\n", o.cfg.Repository, o.cfg.Target)
		}
	case 1:
		o.cfg.FromConfig = names[0]
		if o.Output == "" {
			fmt.Fprintf(o.Out, "restoring the snapshots of backup configuration %s, which writes to repository %s\n", names[0], o.cfg.Repository)
		}
	default:
		return fmt.Errorf("backup configurations %s all write to repository %s: say whose snapshots to restore with the annotation %s: CONFIG", strings.Join(names, ", "), o.cfg.Repository, manifest.AnnotationFromConfig)
	}
	return nil
}

// runOne checks everything one session refers to, then creates it.
func (o *RestoreOptions) runOne(ctx context.Context) error {
	if o.DryRun == "client" {
		objs, err := jobs.BuildRestore(o.cfg, o.namespace, o.claims(func(string) bool { return false }))
		if err != nil {
			return err
		}
		return printObjects(o.Out, objs.Manifest(), o.Output)
	}
	r, err := repository.Get(ctx, o.client, o.namespace, o.cfg.Repository)
	if err != nil {
		if apierrors.IsForbidden(errors.Unwrap(err)) {
			return fmt.Errorf("repository secret %q: forbidden: you may not get secrets in namespace %s (RBAC: \"get\" on \"secrets\"): %w", o.cfg.Repository, o.namespace, err)
		}
		return err
	}
	if o.fromRepository {
		if err := o.sourceFromRepository(ctx); err != nil {
			return err
		}
	}
	if o.cfg.FromConfig != "" {
		if err := o.useConfig(ctx); err != nil {
			return err
		}
	}
	claims, err := o.checkTarget(ctx)
	if err != nil {
		return err
	}
	if err := o.checkNoRunningRestore(ctx); err != nil {
		return err
	}
	hosts, err := o.hostNames(ctx)
	if err != nil {
		return err
	}
	planned, err := o.checkSnapshots(ctx, r, hosts)
	if err != nil {
		return err
	}
	if o.cfg.Target.Kind == "pvc" && o.MountPath == "" && len(planned) == 1 {
		// the volume takes the place of the one directory restored: its data lands at
		// the root of the new claim, as it was on the claim backed up
		o.cfg.MountPath = planned[0]
	}
	objs, err := jobs.BuildRestore(o.cfg, o.namespace, claims)
	if err != nil {
		return err
	}
	job, err := jobs.CreateRestore(ctx, o.client, objs, func(s string) {
		if o.Output == "" {
			fmt.Fprintln(o.Out, s)
		}
	})
	if err != nil {
		return err
	}
	if o.Output != "" {
		return printObjects(o.Out, objs.List(), o.Output)
	}
	fmt.Fprintf(o.Out, "restoresession %s created: %d host(s) of %s from %s\n", job.Name, len(hosts), o.cfg.Target, o.cfg.Source())
	if !o.Wait {
		fmt.Fprintf(o.Out, "follow it with: kubectl stash watch %s\n", job.Name)
		return nil
	}
	return followSession(ctx, o.client, jobs.FeedOptions{Namespace: o.namespace, Kind: api.KindRestore, Config: job.Name}, job.Name, "restoresession", o.Out)
}

// useConfig takes the source target and, without --paths, the paths of the backup
// configuration the snapshots come from.
func (o *RestoreOptions) useConfig(ctx context.Context) error {
	cj, err := o.client.BatchV1().CronJobs(o.namespace).Get(ctx, o.cfg.FromConfig, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("--from-config %s: backup configuration not found in namespace %s: see kubectl stash get backupconfigurations", o.cfg.FromConfig, o.namespace)
	}
	if err != nil {
		return fmt.Errorf("--from-config %s: %w", o.cfg.FromConfig, err)
	}
	var bc api.BackupConfig
	if err := api.Decode(api.AnnotationConfig, cj.Annotations[api.AnnotationConfig], &bc); err != nil {
		return fmt.Errorf("--from-config %s: not a backup configuration: %w", o.cfg.FromConfig, err)
	}
	if bc.IsBatch() {
		// the member whose snapshots are restored: --source-target, else the target itself
		var names []string
		found := false
		for _, m := range bc.MemberConfigs() {
			names = append(names, m.Target.String())
			if m.Target == o.cfg.SourceTarget {
				bc, found = m, true
				break
			}
		}
		if !found {
			return fmt.Errorf("--from-config %s is a batch of %s: say whose snapshots to restore with --source-target KIND/NAME", o.cfg.FromConfig, strings.Join(names, ", "))
		}
	} else if o.SourceTarget != "" && o.cfg.SourceTarget != bc.Target {
		return fmt.Errorf("--from-config %s backs up %s, not %s: give one of --from-config and --source-target", o.cfg.FromConfig, bc.Target, o.cfg.SourceTarget)
	}
	o.cfg.SourceTarget = bc.Target
	if bc.Dump != nil && o.cfg.Dump == nil {
		// the snapshots are dumps: they are restored as dumps, with the same commands
		d := *bc.Dump
		o.cfg.Dump = &d
	}
	if len(o.cfg.Paths) == 0 && bc.Dump == nil {
		o.cfg.Paths = bc.Paths
	}
	return nil
}

// checkTarget makes sure the target exists, or can be created, and returns the claims to
// create.
func (o *RestoreOptions) checkTarget(ctx context.Context) ([]*corev1.PersistentVolumeClaim, error) {
	t, ns := o.cfg.Target, o.namespace
	var err error
	apps := o.client.AppsV1()
	switch t.Kind {
	case "deployment":
		_, err = apps.Deployments(ns).Get(ctx, t.Name, metav1.GetOptions{})
	case "statefulset":
		_, err = apps.StatefulSets(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err == nil && o.Replicas > 0 {
			return nil, fmt.Errorf("statefulset %s exists in namespace %s: --replicas and --volume-claim-template are for one that does not exist yet; drop them to restore into its replicas", t.Name, ns)
		}
		if apierrors.IsNotFound(err) && o.Replicas > 0 {
			existing := func(name string) bool {
				_, err := o.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
				return err == nil
			}
			return o.claims(existing), nil
		}
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("statefulset %s not found in namespace %s: to restore into a StatefulSet that does not exist yet, give --replicas N and --volume-claim-template FILE (its volumeClaimTemplate)", t.Name, ns)
		}
	case "daemonset":
		_, err = apps.DaemonSets(ns).Get(ctx, t.Name, metav1.GetOptions{})
	case "replicaset":
		_, err = apps.ReplicaSets(ns).Get(ctx, t.Name, metav1.GetOptions{})
	case "replicationcontroller":
		_, err = o.client.CoreV1().ReplicationControllers(ns).Get(ctx, t.Name, metav1.GetOptions{})
	case "pvc":
		_, err = o.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err == nil && (o.Size != "" || len(o.templates()) > 0) {
			return nil, fmt.Errorf("persistentvolumeclaim %s exists in namespace %s: --size and --volume-claim-template are for one that does not exist yet", t.Name, ns)
		}
		if apierrors.IsNotFound(err) {
			if o.Size == "" && len(o.templates()) == 0 {
				return nil, fmt.Errorf("persistentvolumeclaim %s not found in namespace %s: give --size (and --storage-class) or --volume-claim-template FILE to create it", t.Name, ns)
			}
			return o.claims(func(string) bool { return false }), nil
		}
	}
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%s %s not found in namespace %s: restore into a workload that exists (or a new StatefulSet or PVC)", t.Kind, t.Name, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", t, err)
	}
	return nil, nil
}

func (o *RestoreOptions) checkNoRunningRestore(ctx context.Context) error {
	list, err := o.client.BatchV1().Jobs(o.namespace).List(ctx, metav1.ListOptions{LabelSelector: fmt.Sprintf("%s=%s,%s=%s",
		api.LabelComponent, api.ComponentRestoreSession, api.LabelRestoreTarget, api.TargetLabel(o.cfg.Target))})
	if err != nil {
		return fmt.Errorf("list restore sessions: %w", err)
	}
	for _, j := range list.Items {
		running := j.Status.CompletionTime == nil
		for _, c := range j.Status.Conditions {
			if c.Status == corev1.ConditionTrue && (c.Type == "Complete" || c.Type == "Failed") {
				running = false
			}
		}
		var st api.SessionStatus
		if v, ok := j.Annotations[api.AnnotationSessionStatus]; ok && api.Decode(api.AnnotationSessionStatus, v, &st) == nil && st.Phase.Final() {
			running = false
		}
		if running {
			return fmt.Errorf("restore session %s into %s is still running: wait for it (kubectl stash watch %s) before starting another", j.Name, o.cfg.Target, j.Name)
		}
	}
	return nil
}

// hostNames are the target's hosts as the session will see them.
func (o *RestoreOptions) hostNames(ctx context.Context) ([]string, error) {
	if o.cfg.Target.Kind == "statefulset" && o.cfg.Replicas > 0 {
		var names []string
		for i := range o.cfg.Replicas {
			names = append(names, workload.OrdinalHost(o.cfg.Alias, i))
		}
		return names, nil
	}
	if o.cfg.Target.Kind == "pvc" {
		return []string{workload.SingleHost(o.cfg.Alias)}, nil
	}
	if o.cfg.Dump != nil {
		// a database is one host, restored through a running pod of it
		_, d, err := workload.DumpPod(ctx, o.client, o.namespace, o.cfg.Target, *o.cfg.Dump)
		if err == nil {
			d, err = d.Resolved()
		}
		if err == nil && d.RestoreCommand == "" {
			err = fmt.Errorf("the dump has no restore command: give --restore-command")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.cfg.Target, err)
		}
		o.cfg.Dump = &d // the preset found from the pod's image names the dump file
		return []string{workload.SingleHost(o.cfg.Alias)}, nil
	}
	hosts, err := workload.ResolveRestoreHosts(ctx, o.client, o.namespace, o.cfg)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, h := range hosts {
		if h.Err != nil {
			return nil, fmt.Errorf("%s: %s: %w", o.cfg.Target, h.Name, h.Err)
		}
		names = append(names, h.Name)
	}
	return names, nil
}

// checkSnapshots plans every host's restore against the repository's snapshots, when the
// repository can be read from here, and reports every host that would fail.
func (o *RestoreOptions) checkSnapshots(ctx context.Context, r *repository.Repository, hosts []string) (paths []string, err error) {
	rp, closeFn, err := r.Open(ctx)
	if errors.Is(err, repository.ErrInCluster) {
		fmt.Fprintf(o.ErrOut, "note: repository %s is on a PersistentVolumeClaim; the restore pods check the snapshots\n", r.Name)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", r.Name, err)
	}
	defer closeFn()
	all, err := rp.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", r.Name, err)
	}
	seen := map[string]bool{}
	find := func(id string) (*repo.Snapshot, error) { return restoreplan.Find(all, id) }
	// an unknown snapshot id is one error, not one per host
	for _, rule := range o.cfg.Rules {
		for _, id := range rule.Snapshots {
			if _, err := find(id); err != nil {
				return nil, fmt.Errorf("nothing was created: %v %s: see kubectl stash snapshots --repo %s", err, r.Name, r.Name)
			}
		}
	}
	var problems []string
	restored := 0
	for _, h := range hosts {
		i := api.MatchRule(o.cfg.Rules, h)
		src := restoreplan.Source{Host: h, Config: o.cfg.FromConfig, Target: o.cfg.SourceTarget}
		want, snaps := o.cfg.Paths, []string(nil)
		if len(o.cfg.Rules) > 0 {
			if i < 0 {
				continue // no rule: this host gets nothing, by design
			}
			rule := o.cfg.Rules[i]
			if rule.SourceHost != "" {
				src.Host = rule.SourceHost
			}
			if len(rule.Paths) > 0 || len(rule.Snapshots) > 0 {
				want, snaps = rule.Paths, rule.Snapshots
			}
		}
		var defaultPaths []string
		if o.cfg.Dump != nil {
			if d, err := o.cfg.Dump.Resolved(); err == nil {
				defaultPaths = []string{d.Path()}
			}
		}
		items, err := restoreplan.Plan(all, find, src, want, snaps, defaultPaths)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", h, err))
			continue
		}
		restored++
		for _, it := range items {
			if !seen[it.Path] {
				seen[it.Path] = true
				paths = append(paths, it.Path)
			}
		}
		if o.Output == "" {
			var what []string
			for _, it := range items {
				what = append(what, fmt.Sprintf("%s of %s (%s, %s)", it.Path, it.Snapshot.ID.Short(), it.Snapshot.Host, it.Snapshot.Time.Local().Format("2006-01-02 15:04:05")))
			}
			fmt.Fprintf(o.Out, "%s <- %s\n", h, strings.Join(what, ", "))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("nothing was created; the restore would fail on %d host(s):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	if restored == 0 {
		return nil, fmt.Errorf("nothing was created: no rule matches any of the hosts of %s (%s)", o.cfg.Target, strings.Join(hosts, ", "))
	}
	return paths, nil
}
