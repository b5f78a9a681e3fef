package cmd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/manifest"
	"github.com/kubectl-stash/kubectl-stash/internal/verifyjob"
	"github.com/kubectl-stash/kubectl-stash/plugin/jobs"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

// VerifyOptions are the flags of `kubectl stash verify`.
type VerifyOptions struct {
	global *GlobalOptions

	Config       string
	Name         string
	Repository   string
	Snapshot     string
	Host         string
	Paths        []string
	Schedule     string
	Retries      int
	CheckData    string
	Command      string
	CommandImage string
	ScratchSize  string
	ScratchPVC   string
	StorageClass string
	HistoryLimit int
	Timeout      time.Duration
	Wait         bool

	RuntimeFlags
	ManifestFlags

	DryRun string
	Output string

	set *manifest.Set
	// session is the manifest's spec.session (the KubeStash session name the sessions carry)
	session   string
	namespace string
	newClient clientsetFunc
	client    kubernetes.Interface
	cfg       api.VerifyConfig
	now       func() time.Time

	genericiooptions.IOStreams
}

// NewCmdVerify returns `kubectl stash verify`.
func NewCmdVerify(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdVerify(&VerifyOptions{global: g, IOStreams: streams, DryRun: "none", Snapshot: "latest", HistoryLimit: 5, now: time.Now})
}

func newCmdVerify(o *VerifyOptions) *cobra.Command {
	g := o.global
	cmd := &cobra.Command{
		Use:   "verify [CONFIG] [--repo REPOSITORY] [--snapshot ID|latest] [--schedule CRON] | -f BACKUPVERIFICATIONSESSION.yaml",
		Short: "Verify backups: restore a snapshot into scratch space and check every file (a BackupVerificationSession)",
		Long: `A backup nobody has restored is a hope. kubectl stash verify restores snapshots into
scratch space in a Job (an emptyDir sized from the snapshot, or a temporary PVC with
--scratch-pvc-size), compares every restored file with the snapshot (content ids
recomputed from the bytes on disk, size, mode, times, owner, links), optionally reads a
share of the repository's data (--check-data 10%) and runs your command against the
restored tree (--command, in --command-image), and records the seed's conditions:
RestoreSucceeded, BackupVerified, VerificationSessionHistoryCleaned, and
BackupVerificationSkipped when the latest snapshots were verified already.

With CONFIG, the latest snapshot of each host and path that backup configuration made is
verified; with --repo alone, the latest of each host and path in the repository. Sessions
are named <repository>-<session>-<unix time> as the seed names them. --schedule makes a
CronJob that starts one on each run; without it one session starts now. A failed session
with retries left (--retries) starts a new one.`,
		Example: `  # Verify the latest backups of a configuration now, and wait for the result
  kubectl stash verify shop-backup --wait

  # Every night, with 2 retries, 5% of the repository's data read, and a check of the data
  kubectl stash verify shop-backup --schedule "0 3 * * *" --retries 2 --check-data 5% \
    --command 'test -s source/data/index.html' --command-image busybox:1.36

  # One snapshot of a repository, restored into a 20Gi temporary PVC
  kubectl stash verify --repo s3-repo --snapshot 1a2b3c4d --scratch-pvc-size 20Gi --storage-class fast

  # A KubeStash BackupVerificationSession: verify now what it names
  kubectl stash verify -f bvs.yaml --wait

  # The sessions, in the seed's BackupVerificationSession shape
  kubectl stash get bvs -o yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.RuntimeFlags.changed(cmd)
			if o.Filename != "" {
				if len(args) > 0 {
					return fmt.Errorf("give CONFIG or -f, not both")
				}
				if err := onlyWith(cmd, "wait", "dry-run", "output", "name", "history-limit", "timeout", "scratch-size", "scratch-pvc-size", "storage-class"); err != nil {
					return err
				}
			}
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.ValidArgsFunction = onlyFirstArg(g.complete(completeConfigs))
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "name of the verification (its CronJob; default CONFIG-verify or REPOSITORY-verify)")
	f.StringVar(&o.Repository, "repo", "", "repository Secret (default: the configuration's)")
	f.StringVar(&o.Snapshot, "snapshot", o.Snapshot, "snapshot id, or latest: the newest of each host and path")
	f.StringVar(&o.Host, "host", "", "verify this host's snapshots only")
	f.StringSliceVar(&o.Paths, "paths", nil, "verify the snapshots of these paths only")
	f.StringVar(&o.Schedule, "schedule", "", "cron schedule of the verification; empty: one session now")
	f.IntVar(&o.Retries, "retries", 0, "new sessions a failed one may start (the seed's retryLeft)")
	f.StringVar(&o.CheckData, "check-data", "", "also read and verify this share of the repository's data packs, e.g. 10%")
	f.StringVar(&o.Command, "command", "", "shell command run on the restored tree (its working directory); non-zero fails BackupVerified")
	f.StringVar(&o.CommandImage, "command-image", "", "image the --command runs in (needs /bin/sh)")
	f.StringVar(&o.ScratchSize, "scratch-size", "", "size limit of the scratch emptyDir (default: from the snapshots' size)")
	f.StringVar(&o.ScratchPVC, "scratch-pvc-size", "", "restore into a temporary PVC of this size instead of an emptyDir")
	f.StringVar(&o.StorageClass, "storage-class", "", "storage class of the temporary PVC")
	f.IntVar(&o.HistoryLimit, "history-limit", o.HistoryLimit, "verification sessions to keep")
	f.DurationVar(&o.Timeout, "timeout", 0, "fail a session still running after this long; 0: no limit")
	f.BoolVar(&o.Wait, "wait", false, "wait for the session started now and exit non-zero unless it Succeeded (or was Skipped)")
	o.RuntimeFlags.addFlags(f, "verification")
	o.ManifestFlags.addFlags(f, "a backup verification (a KubeStash BackupVerificationSession)")
	f.StringVar(&o.DryRun, "dry-run", o.DryRun, "none, or client: print the objects, create nothing")
	f.Lookup("dry-run").NoOptDefVal = "client"
	f.StringVarP(&o.Output, "output", "o", "", "yaml or json: print the objects")
	_ = cmd.RegisterFlagCompletionFunc("repo", g.complete(completeRepositories))
	return cmd
}

// Complete reads the configuration name, the namespace and the client.
func (o *VerifyOptions) Complete(args []string) error {
	if len(args) == 1 {
		o.Config = args[0]
	}
	if o.Filename != "" {
		set, ns, err := o.ManifestFlags.read(o.global, o.In, o.ErrOut)
		if err != nil {
			return err
		}
		if err := o.fromManifest(set); err != nil {
			return err
		}
		defer func() { o.namespace = ns }() // the manifests' namespace (read checked -n agrees)
	}
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

// fromManifest takes the one BackupVerificationSession of -f: a verification of its
// invoker's backups, started now.
func (o *VerifyOptions) fromManifest(set *manifest.Set) error {
	if err := o.ManifestFlags.foreign(set, "verify", o.ErrOut); err != nil {
		return err
	}
	if len(set.Verifications) != 1 {
		return fmt.Errorf("-f %s holds %d BackupVerificationSessions: kubectl stash verify -f takes one", o.Filename, len(set.Verifications))
	}
	v := set.Verifications[0]
	cfg := v.Config
	o.Config, o.Repository, o.Retries = cfg.Invoker, cfg.Repository, cfg.Retries
	o.Snapshot, o.Host, o.Paths, o.session = cfg.Snapshot, cfg.Host, cfg.Paths, cfg.Session
	if o.Snapshot != "latest" && !isHexPrefix(o.Snapshot) {
		msg := fmt.Sprintf("%s:%d: spec.snapshot %q names a KubeStash Snapshot object; kubectl-stash's snapshots are named by their id (kubectl stash snapshots --repo %s): give an id, or latest",
			v.Origin.File, v.Origin.Line, o.Snapshot, cfg.Repository)
		if !o.IgnoreUnsupported {
			return fmt.Errorf("nothing was created: %s (--ignore-unsupported: verify the latest snapshots instead)", msg)
		}
		fmt.Fprintln(o.ErrOut, "Warning: "+msg+"; verifying the latest snapshots instead")
		o.Snapshot = "latest"
	}
	o.set = set
	return nil
}

func isHexPrefix(s string) bool {
	if len(s) < 4 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// Validate checks the flags and builds the configuration; it touches no cluster.
func (o *VerifyOptions) Validate() error {
	if o.Config == "" && o.Repository == "" {
		return fmt.Errorf("nothing to verify: give a backup configuration (kubectl stash verify CONFIG) or --repo NAME")
	}
	session := o.Config
	if o.session != "" {
		session = o.session
	}
	if session == "" {
		session = "verify"
	}
	name := o.Name
	if name == "" {
		base := o.Config
		if base == "" {
			base = o.Repository
		}
		name = base + "-verify"
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 || len(name) > 52 {
		return fmt.Errorf("verification name %q: want a DNS label of at most 52 characters; give --name", name)
	}
	if o.Schedule != "" {
		if _, err := cron.ParseStandard(o.Schedule); err != nil {
			return fmt.Errorf("--schedule %q is not a valid cron expression: %v (want 5 fields, e.g. \"0 3 * * *\", or @daily)", o.Schedule, err)
		}
	}
	if o.Retries < 0 || o.HistoryLimit < 0 {
		return fmt.Errorf("--retries and --history-limit want 0 or more")
	}
	if o.CheckData != "" {
		v, err := strconv.ParseFloat(strings.TrimSuffix(o.CheckData, "%"), 64)
		if err != nil || !strings.HasSuffix(o.CheckData, "%") || v <= 0 || v > 100 {
			return fmt.Errorf("--check-data %q: want a percentage above 0 and at most 100, like 10%%", o.CheckData)
		}
	}
	if (o.Command == "") != (o.CommandImage == "") {
		return fmt.Errorf("--command and --command-image go together: the command runs in that image, on the restored tree")
	}
	for flag, v := range map[string]string{"scratch-size": o.ScratchSize, "scratch-pvc-size": o.ScratchPVC} {
		if v == "" {
			continue
		}
		if q, err := resource.ParseQuantity(v); err != nil || q.Sign() <= 0 {
			return fmt.Errorf("--%s %q: want a size like 10Gi", flag, v)
		}
	}
	if o.ScratchSize != "" && o.ScratchPVC != "" {
		return fmt.Errorf("--scratch-size (an emptyDir) and --scratch-pvc-size (a temporary PVC) exclude each other: give one")
	}
	if o.StorageClass != "" && o.ScratchPVC == "" {
		return fmt.Errorf("--storage-class is for the temporary PVC of --scratch-pvc-size")
	}
	if o.Timeout < 0 {
		return fmt.Errorf("--timeout %s: want a positive duration", o.Timeout)
	}
	rt, err := o.RuntimeFlags.runtime()
	if err != nil {
		return err
	}
	switch o.DryRun {
	case "none", "client":
	default:
		return fmt.Errorf("--dry-run %q: want none or client", o.DryRun)
	}
	switch o.Output {
	case "", "yaml", "json":
	default:
		return fmt.Errorf("--output %q: want yaml or json", o.Output)
	}
	o.cfg = api.VerifyConfig{SchemaVersion: api.SchemaVersion, Name: name, Invoker: o.Config, Session: session, Repository: o.Repository,
		Snapshot: o.Snapshot, Host: o.Host, Paths: o.Paths, CheckData: o.CheckData, Command: o.Command, CommandImage: o.CommandImage,
		Schedule: o.Schedule, Retries: o.Retries, HistoryLimit: o.HistoryLimit, ScratchSize: o.ScratchSize, StorageClass: o.StorageClass,
		Image: o.global.JobImage(), Runtime: rt}
	if o.ScratchPVC != "" {
		o.cfg.ScratchSize, o.cfg.ScratchPVC = o.ScratchPVC, true
	}
	if o.Timeout > 0 {
		o.cfg.Timeout = o.Timeout.String()
	}
	return nil
}

// Run checks what the verification refers to, creates or updates its objects and, without
// a schedule, starts a session.
func (o *VerifyOptions) Run(ctx context.Context) error {
	if o.DryRun == "client" {
		if o.cfg.Repository == "" {
			return fmt.Errorf("--dry-run=client cannot read configuration %s's repository from the cluster: give --repo", o.Config)
		}
		objs, err := jobs.BuildVerify(o.cfg, o.namespace)
		if err != nil {
			return err
		}
		return printObjects(o.Out, objs.List(), o.Output)
	}
	if o.Config != "" {
		cj, err := o.client.BatchV1().CronJobs(o.namespace).Get(ctx, o.Config, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("backup configuration %q not found in namespace %s: see kubectl stash get backupconfigurations", o.Config, o.namespace)
		}
		if err != nil {
			return fmt.Errorf("backup configuration %q: %w", o.Config, err)
		}
		var bc api.BackupConfig
		if err := api.Decode(api.AnnotationConfig, cj.Annotations[api.AnnotationConfig], &bc); err != nil {
			return fmt.Errorf("cronjob %s/%s is not a backup configuration: %w", o.namespace, o.Config, err)
		}
		if o.cfg.Repository == "" {
			o.cfg.Repository = bc.Repository
		}
	}
	r, err := repository.Get(ctx, o.client, o.namespace, o.cfg.Repository)
	if err != nil {
		return err
	}
	if err := o.checkSnapshots(ctx, r); err != nil {
		return err
	}
	objs, err := jobs.BuildVerify(o.cfg, o.namespace)
	if err != nil {
		return err
	}
	results, err := jobs.Apply(ctx, o.client, objs.List(), false)
	for _, res := range results {
		if o.Output == "" {
			fmt.Fprintln(o.Out, res)
		}
	}
	if err != nil {
		return err
	}
	if o.Output != "" {
		return printObjects(o.Out, objs.List(), o.Output)
	}
	if o.cfg.Schedule != "" {
		fmt.Fprintf(o.Out, "verification %s runs on schedule %q; see kubectl stash get bvs\n", o.cfg.Name, o.cfg.Schedule)
		return nil
	}
	cj, err := o.client.BatchV1().CronJobs(o.namespace).Get(ctx, o.cfg.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	job, err := jobs.StartVerification(ctx, o.client, cj, r.URL, o.now())
	if err != nil {
		return fmt.Errorf("start verification session: %w", err)
	}
	fmt.Fprintf(o.Out, "backupverificationsession %s created\n", job.Name)
	if !o.Wait {
		return nil
	}
	return o.follow(ctx, job.Name)
}

// checkSnapshots makes sure there is something to verify and sizes the scratch space from
// it, when the repository can be read from here.
func (o *VerifyOptions) checkSnapshots(ctx context.Context, r *repository.Repository) error {
	rp, closeFn, err := r.Open(ctx)
	if errors.Is(err, repository.ErrInCluster) {
		if o.cfg.ScratchSize == "" {
			fmt.Fprintf(o.ErrOut, "note: repository %s is on a PersistentVolumeClaim: the scratch space is not sized from the snapshots (give --scratch-size)\n", r.Name)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("repository %s: %w", r.Name, err)
	}
	defer closeFn()
	all, err := rp.Snapshots(ctx)
	if err != nil {
		return fmt.Errorf("repository %s: %w", r.Name, err)
	}
	sns, err := verifyjob.SelectSnapshots(all, o.cfg)
	if err != nil {
		return fmt.Errorf("nothing was created: %w (see kubectl stash snapshots --repo %s)", err, r.Name)
	}
	var size int64
	for _, sn := range sns {
		size += sn.Stats.Size
	}
	if o.cfg.ScratchSize == "" {
		// room for the restored files and the file system's overhead; a snapshot of the
		// latest backups may grow a little by the time a schedule runs
		o.cfg.ScratchSize = fmt.Sprintf("%dMi", (size+size/4+64<<20+1<<20-1)>>20)
	}
	if o.Output == "" {
		var ids []string
		for _, sn := range sns {
			ids = append(ids, fmt.Sprintf("%s (%s %s)", sn.ID.Short(), sn.Host, strings.Join(sn.Paths, ",")))
		}
		fmt.Fprintf(o.Out, "verifying %s: %s of files; scratch space %s\n", strings.Join(ids, ", "), api.FormatBytes(size), o.cfg.ScratchSize)
	}
	return nil
}

// follow prints the session's phase and conditions as they change.
func (o *VerifyOptions) follow(ctx context.Context, name string) error {
	last := ""
	for {
		s, err := jobs.GetVerifySession(ctx, o.client, o.namespace, name)
		if err != nil {
			return err
		}
		v := s.View()
		var conds []string
		for _, c := range v.Status.Conditions {
			conds = append(conds, c.Type+"="+c.Status)
		}
		line := fmt.Sprintf("%s: %s %s", name, v.Status.Phase, strings.Join(conds, " "))
		if p := s.Status.Progress; p != nil && p.BytesTotal > 0 {
			line += fmt.Sprintf(" (restoring %s: %d%%)", p.Directory, 100*p.BytesDone/p.BytesTotal)
		}
		if line != last {
			fmt.Fprintln(o.Out, strings.TrimSpace(line))
			last = line
		}
		if v.Status.Phase.Final() {
			for _, c := range v.Status.Conditions {
				if c.Status == "False" || c.Type == api.ConditionBackupVerificationSkipped {
					fmt.Fprintf(o.Out, "  %s: %s\n", c.Type, c.Message)
				}
			}
			if v.Status.Phase == api.PhaseFailed {
				return fmt.Errorf("backupverificationsession %s Failed%s", name, prefix(": ", s.Status.Error))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for backupverificationsession %s: %w", name, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
