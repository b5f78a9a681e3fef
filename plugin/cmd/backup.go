package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/manifest"
	"github.com/kubectl-stash/kubectl-stash/internal/workload"
	"github.com/kubectl-stash/kubectl-stash/plugin/jobs"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

// BackupOptions are the flags of `kubectl stash backup`.
type BackupOptions struct {
	global *GlobalOptions

	Target       string
	Name         string
	Repository   string
	Paths        []string
	Excludes     []string
	MountPath    string
	Schedule     string
	Retention    api.Retention
	HistoryLimit int
	Prune        bool
	Timeout      time.Duration
	VolumeMounts []string
	Alias        string
	Paused       bool
	// Batch names a batch configuration of Members (KIND/NAME:PATHS or KIND/NAME:dump).
	Batch          string
	Members        []string
	ExecutionOrder string

	RuntimeFlags
	ManifestFlags
	DumpFlags
	HookFlags

	DryRun string
	Output string

	namespace string
	newClient clientsetFunc
	client    kubernetes.Interface
	cfg       api.BackupConfig
	// set is what -f read; cfgs are the configurations to create (cfg, or set's).
	set  *manifest.Set
	cfgs []api.BackupConfig

	genericiooptions.IOStreams
}

var targetKinds = map[string]string{
	"deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
	"statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset",
	"daemonset": "daemonset", "daemonsets": "daemonset", "ds": "daemonset",
	"replicaset": "replicaset", "replicasets": "replicaset", "rs": "replicaset",
	"replicationcontroller": "replicationcontroller", "replicationcontrollers": "replicationcontroller", "rc": "replicationcontroller",
	"pvc": "pvc", "persistentvolumeclaim": "pvc", "persistentvolumeclaims": "pvc",
}

// NewCmdBackup returns `kubectl stash backup`.
func NewCmdBackup(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdBackup(&BackupOptions{global: g, IOStreams: streams, HistoryLimit: 5, DryRun: "none"})
}

func newCmdBackup(o *BackupOptions) *cobra.Command {
	g := o.global
	cmd := &cobra.Command{
		Use:   "backup (KIND/NAME --repo REPOSITORY --paths PATH[,PATH] | -f FILE)",
		Short: "Create or update a backup configuration (a CronJob) for a workload or volume",
		Long: `Create or update the backup configuration of a Deployment, StatefulSet, DaemonSet,
ReplicaSet, ReplicationController or stand-alone PVC: a ServiceAccount, a Role, a
RoleBinding and a CronJob. Each run of the CronJob is a backup session: a Job that finds
the target's hosts (host-0; host-<ordinal> for a StatefulSet; the node name for a
DaemonSet) and backs up each host's paths in a Job of its own, one snapshot per path.

Without --schedule the configuration only runs when triggered (kubectl stash trigger).
Running the command again with other flags updates the configuration in place.

With -f, the configurations are Stash or KubeStash BackupConfigurations instead (with the
Repositories, BackupStorages, RetentionPolicies and Secrets they name, which become
repository Secrets): every field kubectl-stash can honour is, and a field it cannot is
refused with its file, line and field path before anything is created
(--ignore-unsupported warns instead). See docs/manifests.md.`,
		Example: `  # Back up /source/data of a Deployment every night at 1:30, keeping 7 daily snapshots
  kubectl stash backup deployment/shop --repo s3-repo --paths /source/data \
    --schedule "30 1 * * *" --keep-daily 7

  # Every StatefulSet replica's volume, as host-0, host-1, ...; only when triggered
  kubectl stash backup statefulset/db --repo s3-repo --paths /var/lib/db

  # A stand-alone PVC, mounted at /data in the backup pod
  kubectl stash backup pvc/uploads --repo s3-repo --paths /data --schedule "@hourly"

  # Low priority and bounded resources for the backup pods
  kubectl stash backup deployment/shop --repo s3-repo --paths /source/data --nice 10 \
    --ionice-class 3 --cpu-limit 500m --memory-limit 512Mi

  # Print the objects instead of creating them, for GitOps
  kubectl stash backup deployment/shop --repo s3-repo --paths /source/data --dry-run=client -o yaml

  # A Stash BackupConfiguration (with its Repository and Secret), as Stash would run it
  kubectl stash backup -f stash-backup.yaml

  # The flags as a KubeStash manifest
  kubectl stash backup deployment/shop --repo s3-repo --paths /source/data --dry-run=client -o kubestash

  # A PostgreSQL StatefulSet, dumped inside its own pod (pg_dumpall) every hour
  kubectl stash backup statefulset/pg --repo s3-repo --dump postgres --schedule @hourly

  # A whole application in one session: the web files and the database (a BackupBatch),
  # the web pods in maintenance mode while their files are read
  kubectl stash backup --batch wordpress --repo s3-repo \
    --member deployment/wordpress:/var/www/html --member statefulset/mysql:dump \
    --member-hook 'deployment/wordpress:pre-backup=wp maintenance-mode activate' \
    --member-hook 'deployment/wordpress:post-backup=wp maintenance-mode deactivate'

  # Flush the application before the backup; tell a webhook when a backup failed
  kubectl stash backup deployment/shop --repo s3-repo --paths /data \
    --pre-backup 'sync && touch /data/.backup-marker' \
    --post-backup-http 'POST http://alerts.ops:8080/backup-failed' --post-backup-policy OnFailure`,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.Filename != "" {
				if len(args) > 0 {
					return fmt.Errorf("%s with -f: the manifests name the targets", args[0])
				}
				return onlyWith(cmd, "dry-run", "output")
			}
			if o.Batch != "" {
				if len(args) > 0 {
					return fmt.Errorf("%s with --batch: give the batch's targets with --member %s:/path", args[0], args[0])
				}
				return nil
			}
			if len(o.Members) > 0 || len(o.HookFlags.MemberHooks) > 0 {
				return fmt.Errorf("--member and --member-hook need --batch NAME: a batch backs up several targets in one session")
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
	f.StringVar(&o.Name, "name", "", "name of the backup configuration (default: NAME-backup)")
	f.StringVar(&o.Repository, "repo", "", "repository Secret (kubectl stash repo create)")
	f.StringSliceVar(&o.Paths, "paths", nil, "absolute paths to back up, as the workload's containers mount them; one snapshot each")
	f.StringArrayVar(&o.Excludes, "exclude", nil, "glob of files to leave out (a pattern with / matches the full path); repeatable")
	f.StringVar(&o.MountPath, "mount-path", "/data", "for a pvc target: where the volume is mounted in the backup pod")
	f.StringVar(&o.Schedule, "schedule", "", "cron schedule (\"*/30 * * * *\", \"@daily\"); empty: run only when triggered")
	f.IntVar(&o.Retention.KeepLast, "keep-last", 0, "retention: keep the N newest snapshots of each host and path")
	f.IntVar(&o.Retention.KeepHourly, "keep-hourly", 0, "retention: keep the newest snapshot of each of the last N hours")
	f.IntVar(&o.Retention.KeepDaily, "keep-daily", 0, "retention: keep the newest snapshot of each of the last N days")
	f.IntVar(&o.Retention.KeepWeekly, "keep-weekly", 0, "retention: keep the newest snapshot of each of the last N weeks")
	f.IntVar(&o.Retention.KeepMonthly, "keep-monthly", 0, "retention: keep the newest snapshot of each of the last N months")
	f.IntVar(&o.Retention.KeepYearly, "keep-yearly", 0, "retention: keep the newest snapshot of each of the last N years")
	f.StringArrayVar(&o.Retention.KeepTags, "keep-tag", nil, "retention: keep every snapshot with these tags (TAG or TAG,TAG: all of them); repeatable")
	f.IntVar(&o.HistoryLimit, "history-limit", o.HistoryLimit, "sessions (Jobs) to keep, succeeded and failed each")
	f.BoolVar(&o.Prune, "prune", false, "after each session whose hosts all succeeded, prune the repository (in a Job of the session)")
	f.StringArrayVar(&o.VolumeMounts, "volume-mount", nil, "NAME:PATH: back up the target's volume NAME, mounted at PATH in the backup pods, instead of the volumes its containers mount at the paths (the seeds' target.volumeMounts); repeatable")
	f.StringVar(&o.Alias, "alias", "", "name the hosts <alias>, <alias>-<ordinal>, <alias>-<node> instead of host-0, host-<ordinal>, <node> (Stash's target.alias)")
	f.BoolVar(&o.Paused, "paused", false, "create the configuration paused: its schedule is suspended (kubectl stash resume starts it); triggers still run")
	f.DurationVar(&o.Timeout, "timeout", 0, "fail hosts still running after this long (e.g. 2h); 0: no limit")
	f.StringVar(&o.Batch, "batch", "", "create a batch configuration of this name (the seeds' BackupBatch): the targets of --member, backed up in one session")
	f.StringArrayVar(&o.Members, "member", nil, "with --batch: KIND/NAME:/path[,/path…] backs up paths, KIND/NAME:dump[=PRESET] dumps a database; repeatable")
	f.StringArrayVar(&o.HookFlags.MemberHooks, "member-hook", nil, "with --batch: KIND/NAME:PHASE=COMMAND adds a hook to one member only; PHASE is pre-backup, post-backup, pre-backup-http or post-backup-http (COMMAND is then [METHOD ]URL); repeatable, after the hooks every member has")
	f.StringVar(&o.ExecutionOrder, "execution-order", "", "with --batch: Parallel (default: all members at once) or Sequential (one after another, in --member order)")
	o.DumpFlags.addFlags(f)
	o.HookFlags.addFlags(f, true)
	o.RuntimeFlags.addFlags(f, "backup")
	o.ManifestFlags.addFlags(f, "backup configurations")
	f.StringVar(&o.DryRun, "dry-run", o.DryRun, "none, client (print the objects) or server (send them, persist nothing)")
	f.Lookup("dry-run").NoOptDefVal = "client"
	_ = cmd.RegisterFlagCompletionFunc("repo", g.complete(completeRepositories))
	_ = cmd.RegisterFlagCompletionFunc("dry-run", cobra.FixedCompletions([]string{"none", "client", "server"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"yaml", "json", "stash", "kubestash"}, cobra.ShellCompDirectiveNoFileComp))
	f.StringVarP(&o.Output, "output", "o", "", "yaml or json: print the objects; stash or kubestash (with --dry-run=client): print the configuration as that manifest")
	return cmd
}

// Complete parses the target, or reads the manifests of -f.
func (o *BackupOptions) Complete(args []string) error {
	var err error
	if o.Filename != "" {
		if o.set, o.namespace, err = o.ManifestFlags.read(o.global, o.In, o.ErrOut); err != nil {
			return err
		}
	} else {
		if len(args) > 0 {
			o.Target = args[0]
		}
		ns, _, err := o.global.ConfigFlags.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return err
		}
		o.namespace = ns
	}
	if o.DryRun != "client" {
		if o.newClient == nil {
			o.newClient = clientsetFromFlags(o.global)
		}
		o.client, err = o.newClient()
	}
	return err
}

// parseTarget reads KIND/NAME.
func parseTarget(s string) (api.Target, error) {
	kind, name, ok := strings.Cut(s, "/")
	k, known := targetKinds[strings.ToLower(kind)]
	if !ok || name == "" || !known {
		return api.Target{}, fmt.Errorf("target %q: want KIND/NAME with KIND one of deployment, statefulset, daemonset, replicaset, replicationcontroller, pvc", s)
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return api.Target{}, fmt.Errorf("target %q: invalid name: %s", s, strings.Join(errs, "; "))
	}
	return api.Target{Kind: k, Name: name}, nil
}

// Validate checks the flags and builds the configuration (or takes those of -f); it
// touches no cluster.
func (o *BackupOptions) Validate() error {
	if err := validateDryRunOutput(o.DryRun, o.Output, true); err != nil {
		return err
	}
	if o.set != nil {
		return o.validateManifests()
	}
	if o.Batch != "" {
		return o.validateBatch()
	}
	t, err := parseTarget(o.Target)
	if err != nil {
		return err
	}
	name := o.Name
	if name == "" {
		name = t.Name + "-backup"
	}
	dump, err := o.DumpFlags.dump(nil)
	if err != nil {
		return err
	}
	hooks, err := o.HookFlags.hooks()
	if err != nil {
		return err
	}
	if dump != nil {
		if t.Kind == "pvc" {
			return fmt.Errorf("--dump: a dump runs in the database's pod; pvc/%s has none: name its workload (statefulset/NAME)", t.Name)
		}
		if len(o.Paths) > 0 {
			return fmt.Errorf("--dump backs up the database's dump, not files: leave out --paths (back up files in another configuration)")
		}
		o.Paths = []string{"/"} // not used: the host dumps
	}
	// session Jobs are named <config>-<suffix> and host Jobs <session>-<host>; leave them room
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 || len(name) > 40 {
		return fmt.Errorf("configuration name %q: want a DNS label of at most 40 characters (session and host Jobs append to it); give --name", name)
	}
	if o.Repository == "" {
		return fmt.Errorf("no repository: give --repo NAME (create one with kubectl stash repo create NAME --url URL)")
	}
	if t.Kind == "pvc" && len(o.Paths) == 0 {
		o.Paths = []string{o.MountPath}
	}
	if len(o.Paths) == 0 {
		return fmt.Errorf("no paths: give --paths with the absolute paths to back up, as %s's containers mount them", t)
	}
	var paths []string
	for _, p := range o.Paths {
		if !path.IsAbs(p) {
			return fmt.Errorf("--paths %q: want an absolute path, as the workload's containers see it", p)
		}
		paths = append(paths, path.Clean(p))
	}
	if o.Schedule != "" {
		if _, err := cron.ParseStandard(o.Schedule); err != nil {
			return fmt.Errorf("--schedule %q is not a valid cron expression: %v (want 5 fields, e.g. \"30 1 * * *\", or @hourly/@daily/@weekly)", o.Schedule, err)
		}
	}
	r := o.Retention
	for flag, v := range map[string]int{"keep-last": r.KeepLast, "keep-hourly": r.KeepHourly, "keep-daily": r.KeepDaily,
		"keep-weekly": r.KeepWeekly, "keep-monthly": r.KeepMonthly, "keep-yearly": r.KeepYearly, "history-limit": o.HistoryLimit} {
		if v < 0 {
			return fmt.Errorf("--%s %d: want 0 or more", flag, v)
		}
	}
	if o.Timeout < 0 {
		return fmt.Errorf("--timeout %s: want a positive duration", o.Timeout)
	}
	rt, err := o.RuntimeFlags.runtime()
	if err != nil {
		return err
	}
	var mounts []api.VolumeMount
	for _, s := range o.VolumeMounts {
		n, p, ok := strings.Cut(s, ":")
		if !ok || n == "" || !path.IsAbs(p) {
			return fmt.Errorf("--volume-mount %q: want NAME:/absolute/path", s)
		}
		mounts = append(mounts, api.VolumeMount{Name: n, MountPath: path.Clean(p)})
	}
	if len(mounts) > 0 && t.Kind == "pvc" {
		return fmt.Errorf("--volume-mount is for workloads; a pvc target is mounted at --mount-path")
	}
	if o.Alias != "" {
		if errs := validation.IsDNS1123Label(o.Alias); len(errs) > 0 || len(o.Alias) > 40 {
			return fmt.Errorf("--alias %q: want a DNS label of at most 40 characters", o.Alias)
		}
	}
	o.cfg = api.BackupConfig{SchemaVersion: api.SchemaVersion, Name: name, Target: t, Repository: o.Repository, Prune: o.Prune,
		Paths: paths, Excludes: o.Excludes, Schedule: o.Schedule, Retention: o.Retention, HistoryLimit: o.HistoryLimit,
		Image: o.global.JobImage(), Runtime: rt, Paused: o.Paused, Alias: o.Alias, VolumeMounts: mounts,
		Dump: dump, Hooks: hooks}
	if dump != nil {
		o.cfg.Paths = nil
	}
	if t.Kind == "pvc" {
		o.cfg.MountPath = path.Clean(o.MountPath)
	}
	if o.Timeout > 0 {
		o.cfg.Timeout = o.Timeout.String()
	}
	o.cfgs = []api.BackupConfig{o.cfg}
	return nil
}

// validateBatch builds a batch configuration from --batch and --member: the schedule,
// repository, retention and runtime flags are the batch's; hook flags apply to every
// member, dump flags to every database member.
func (o *BackupOptions) validateBatch() error {
	name := o.Batch
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 || len(name) > 40 {
		return fmt.Errorf("--batch %q: want a DNS label of at most 40 characters (session and host Jobs append to it)", name)
	}
	if o.Name != "" && o.Name != name {
		return fmt.Errorf("--name %q with --batch %q: the batch's name is the configuration's name; give one of them", o.Name, name)
	}
	if len(o.Members) == 0 {
		return fmt.Errorf("--batch %s has no members: give --member KIND/NAME:/path or --member KIND/NAME:dump, once per target", name)
	}
	if len(o.Paths) > 0 || len(o.VolumeMounts) > 0 || o.Alias != "" {
		return fmt.Errorf("--paths, --volume-mount and --alias are for one target: in a batch, give each member's paths in --member KIND/NAME:/path")
	}
	if o.Repository == "" {
		return fmt.Errorf("no repository: give --repo NAME (create one with kubectl stash repo create NAME --url URL)")
	}
	if o.Schedule != "" {
		if _, err := cron.ParseStandard(o.Schedule); err != nil {
			return fmt.Errorf("--schedule %q is not a valid cron expression: %v (want 5 fields, e.g. \"30 1 * * *\", or @hourly/@daily/@weekly)", o.Schedule, err)
		}
	}
	if o.Timeout < 0 {
		return fmt.Errorf("--timeout %s: want a positive duration", o.Timeout)
	}
	hooks, err := o.HookFlags.hooks()
	if err != nil {
		return err
	}
	rt, err := o.RuntimeFlags.runtime()
	if err != nil {
		return err
	}
	cfg := api.BackupConfig{SchemaVersion: api.SchemaVersion, Name: name, Repository: o.Repository, Prune: o.Prune,
		Schedule: o.Schedule, Retention: o.Retention, HistoryLimit: o.HistoryLimit, Image: o.global.JobImage(), Runtime: rt,
		Paused: o.Paused, ExecutionOrder: o.ExecutionOrder}
	if cfg.ExecutionOrder != "" {
		for _, v := range []string{api.OrderParallel, api.OrderSequential} {
			if strings.EqualFold(cfg.ExecutionOrder, v) {
				cfg.ExecutionOrder = v
			}
		}
	}
	if o.Timeout > 0 {
		cfg.Timeout = o.Timeout.String()
	}
	for _, s := range o.Members {
		m, err := parseMember(s)
		if err != nil {
			return err
		}
		m.Excludes = o.Excludes
		if hooks != nil {
			own := *hooks // each member's own copy: --member-hook adds to one member only
			m.Hooks = &own
		}
		if m.Dump != nil {
			if m.Dump, err = o.DumpFlags.dump(m.Dump); err != nil {
				return err
			}
		}
		cfg.Members = append(cfg.Members, m)
	}
	if err := o.HookFlags.memberHooks(cfg.Members); err != nil {
		return err
	}
	if err := cfg.ValidateMembers(); err != nil {
		return fmt.Errorf("--batch %s: %v", name, err)
	}
	o.cfg = cfg
	o.cfgs = []api.BackupConfig{cfg}
	return nil
}

// validateDryRunOutput checks --dry-run and -o; server says whether the verb has a server
// dry run.
func validateDryRunOutput(dryRun, output string, server bool) error {
	switch {
	case dryRun == "none", dryRun == "client", dryRun == "server" && server:
	case server:
		return fmt.Errorf("--dry-run %q: want none, client or server", dryRun)
	default:
		return fmt.Errorf("--dry-run %q: want none or client", dryRun)
	}
	switch output {
	case "", "yaml", "json":
	case manifest.FormatStash, manifest.FormatKubeStash:
		if dryRun != "client" {
			return fmt.Errorf("-o %s prints a manifest instead of creating anything: add --dry-run=client", output)
		}
	default:
		return fmt.Errorf("--output %q: want yaml or json (or stash or kubestash, with --dry-run=client)", output)
	}
	return nil
}

// validateManifests takes the configurations of -f.
func (o *BackupOptions) validateManifests() error {
	if err := o.ManifestFlags.foreign(o.set, "backup", o.ErrOut); err != nil {
		return err
	}
	if len(o.set.Backups) == 0 {
		return fmt.Errorf("no BackupConfiguration in the manifests of -f %s: kubectl stash backup -f creates backup configurations (repositories alone: kubectl stash repo create)", o.Filename)
	}
	if err := validateRepositories(o.set); err != nil {
		return err
	}
	for _, b := range o.set.Backups {
		cfg := b.Config
		cfg.Image = o.global.JobImage()
		o.cfgs = append(o.cfgs, cfg)
	}
	return nil
}

// Run checks what the configurations refer to, then creates or updates their objects
// (and the repository Secrets of -f's Repositories first).
func (o *BackupOptions) Run(ctx context.Context) error {
	if o.Output == manifest.FormatStash || o.Output == manifest.FormatKubeStash {
		set := o.set
		if set == nil {
			set = &manifest.Set{Namespace: o.namespace, Backups: []manifest.Backup{{Config: o.cfg}}}
		}
		return printManifest(o.Out, o.ErrOut, set, o.Output, o.IgnoreUnsupported)
	}
	var all []runtime.Object
	built := make([]jobs.Objects, len(o.cfgs))
	for i, cfg := range o.cfgs {
		objs, err := jobs.Build(cfg, o.namespace)
		if err != nil {
			return err
		}
		built[i] = objs
	}
	var repos []manifest.Repository
	if o.set != nil {
		repos = o.set.Repositories
	}
	if o.DryRun == "client" {
		for _, r := range repos {
			all = append(all, repository.NewSecret(r.Name, o.namespace, r.URL, r.Password, r.Env))
		}
		for _, objs := range built {
			all = append(all, objs.List()...)
		}
		return printObjects(o.Out, all, o.Output)
	}
	info := o.Out
	if o.Output != "" {
		info = o.ErrOut
	}
	for _, r := range repos {
		// Stash initialises a Repository's backend before its first backup: so does this
		if err := ensureRepository(ctx, o.global, o.IOStreams, info, o.client, o.namespace, r, o.DryRun == "none", o.DryRun == "server"); err != nil {
			return err
		}
	}
	for i, cfg := range o.cfgs {
		if err := o.runOne(ctx, cfg, built[i]); err != nil {
			return err
		}
		all = append(all, built[i].List()...)
	}
	if o.Output != "" {
		return printObjects(o.Out, all, o.Output)
	}
	return nil
}

// runOne checks what one configuration refers to, then creates or updates its objects.
func (o *BackupOptions) runOne(ctx context.Context, cfg api.BackupConfig, objs jobs.Objects) error {
	// a repository of the manifests was just made (or, with a server dry run, checked)
	if o.set == nil || o.set.Repository(cfg.Repository) == nil {
		if err := checkRepositorySecret(ctx, o.client, o.namespace, cfg.Repository); err != nil {
			return err
		}
	}
	nHosts := 0
	for _, m := range cfg.MemberConfigs() {
		// a host that cannot be backed up now would fail every session: say so now
		if m.Dump != nil {
			_, d, err := workload.DumpPod(ctx, o.client, o.namespace, m.Target, *m.Dump)
			if err == nil {
				_, err = d.Resolved()
			}
			if err != nil {
				return fmt.Errorf("%s: %w", m.Target, err)
			}
			nHosts++
			continue
		}
		hosts, err := workload.ResolveHosts(ctx, o.client, o.namespace, m)
		if err != nil {
			return err
		}
		for _, h := range hosts {
			if h.Err != nil {
				return fmt.Errorf("%s: %s: %w", m.Target, h.Name, h.Err)
			}
		}
		nHosts += len(hosts)
	}
	results, err := jobs.Apply(ctx, o.client, objs.List(), o.DryRun == "server")
	for _, r := range results {
		if o.Output == "" {
			fmt.Fprintln(o.Out, r)
		}
	}
	if err != nil {
		return err
	}
	if o.Output != "" {
		return nil
	}
	when := "runs only when triggered: kubectl stash trigger " + cfg.Name
	switch {
	case cfg.Schedule != "" && cfg.Paused:
		when = fmt.Sprintf("is paused (schedule %q; kubectl stash resume %s starts it)", cfg.Schedule, cfg.Name)
	case cfg.Schedule != "":
		when = fmt.Sprintf("runs on schedule %q", cfg.Schedule)
	}
	fmt.Fprintf(o.Out, "backup configuration %s of %s (%d host(s) now) %s\n", cfg.Name, cfg.TargetString(), nHosts, when)
	return nil
}

func checkRepositorySecret(ctx context.Context, c kubernetes.Interface, ns, name string) error {
	_, err := repository.Get(ctx, c, ns, name)
	if apierrors.IsForbidden(errors.Unwrap(err)) {
		return fmt.Errorf("repository secret %q: forbidden: you may not get secrets in namespace %s (RBAC: \"get\" on \"secrets\"): %w", name, ns, err)
	}
	return err
}

// printObjects prints objects as a YAML stream (---) or a JSON List.
func printObjects(w interface{ Write([]byte) (int, error) }, objs []runtime.Object, format string) error {
	if format == "json" {
		items := make([]json.RawMessage, 0, len(objs))
		for _, o := range objs {
			b, err := json.Marshal(o)
			if err != nil {
				return err
			}
			items = append(items, b)
		}
		b, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": items}, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	for i, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := w.Write([]byte("---\n")); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
