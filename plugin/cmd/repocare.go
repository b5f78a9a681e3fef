package cmd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

// RepoCareOptions are the flags shared by `kubectl stash forget|prune|check|key|unlock`:
// a repository command run from this machine with the engine in the plugin, or with
// --via-job by stash-job in a pod (a pvc:// repository, or a bucket only the cluster
// reaches).
type RepoCareOptions struct {
	global *GlobalOptions
	verb   string

	Repository string
	ViaJob     bool
	Timeout    time.Duration
	Output     string

	// args are the verb's own stash-job arguments (--keep-last 2 …); local runs the verb
	// with the engine.
	args  func() ([]string, error)
	local func(ctx context.Context, f repocmd.RepoFlags) error

	namespace string
	newClient clientsetFunc
	client    kubernetes.Interface

	genericiooptions.IOStreams
}

func (o *RepoCareOptions) command(cmd *cobra.Command) *cobra.Command {
	f := cmd.Flags()
	f.StringVar(&o.Repository, "repo", "", "repository Secret (kubectl stash repo list)")
	f.BoolVar(&o.ViaJob, "via-job", false, "run in a pod of the cluster (a pvc:// repository, or a bucket only the cluster reaches)")
	f.DurationVar(&o.Timeout, "timeout", 30*time.Minute, "with --via-job: how long the pod may take")
	_ = cmd.RegisterFlagCompletionFunc("repo", o.global.complete(completeRepositories))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if o.Repository == "" {
			return fmt.Errorf("no repository: give --repo NAME (see kubectl stash repo list)")
		}
		if o.newClient == nil {
			o.newClient = clientsetFromFlags(o.global)
		}
		if err := completeClient(o.global, o.newClient, &o.namespace, &o.client); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
	return cmd
}

// Run opens the repository Secret and runs the verb here or in a pod.
func (o *RepoCareOptions) Run(ctx context.Context) error {
	r, err := repository.Get(ctx, o.client, o.namespace, o.Repository)
	if err != nil {
		return err
	}
	if r.Claim != "" && !o.ViaJob {
		return fmt.Errorf("repository %q is on PersistentVolumeClaim %q, which this machine cannot read: add --via-job to run %s in a pod", r.Name, r.Claim, o.verb)
	}
	if o.ViaJob {
		args, err := o.args()
		if err != nil {
			return err
		}
		rj := repoJob{client: o.client, namespace: o.namespace, image: o.global.JobImage(), timeout: o.Timeout,
			poll: time.Second, logs: streamRepoJobLog, errOut: o.ErrOut}
		full := append(append([]string{}, args[:o.argsVerbLen(args)]...), "--repo", "$("+api.SecretKeyRepository+")")
		full = append(full, args[o.argsVerbLen(args):]...)
		// every command takes a lock, which is an object written into the repository
		res, err := rj.run(ctx, r, o.verb, full, false)
		if err != nil {
			return err
		}
		o.Out.Write(res.Log)
		if !res.Succeeded {
			return fmt.Errorf("%s failed in job/%s (its log is above)", o.verb, res.Name)
		}
		return nil
	}
	restore, err := r.ApplyEnv()
	if err != nil {
		return err
	}
	defer restore()
	return o.local(ctx, repocmd.RepoFlags{URL: r.URL, Password: []byte(r.Password)})
}

// argsVerbLen is how many leading args name the stash-job command ("key add" is two).
func (o *RepoCareOptions) argsVerbLen(args []string) int {
	if (o.verb == "key" || o.verb == "lock") && len(args) > 1 {
		return 2
	}
	return 1
}

// NewCmdForget returns `kubectl stash forget`.
func NewCmdForget(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RepoCareOptions{global: g, verb: "forget", IOStreams: streams}
	var p repo.RetentionPolicy
	var keepTags []string
	var host, path string
	var dryRun bool
	cmd := o.command(&cobra.Command{
		Use:   "forget --repo REPOSITORY --keep-* N [--host H] [--path P] [--dry-run]",
		Short: "Remove snapshots by a retention policy (per host and path, restic's semantics); prune frees their data",
		Example: `  # What would go: keep the 7 newest daily and 4 weekly snapshots of each host and path
  kubectl stash forget --repo s3-repo --keep-daily 7 --keep-weekly 4 --dry-run

  # Keep the last 3 of host-0, and every snapshot tagged release
  kubectl stash forget --repo s3-repo --host host-0 --keep-last 3 --keep-tag release

  # A repository on a PersistentVolumeClaim: in a pod
  kubectl stash forget --repo pvc-repo --keep-last 5 --via-job`,
		Args: cobra.NoArgs,
	})
	f := cmd.Flags()
	f.StringVar(&host, "host", "", "only snapshots of this host")
	f.StringVar(&path, "path", "", "only snapshots that include this path")
	retentionFlags(f, &p, &keepTags)
	f.BoolVar(&dryRun, "dry-run", false, "list what would be removed and why each survivor is kept; remove nothing")
	f.StringVarP(&o.Output, "output", "o", "", "json, or empty for a table")
	o.args = func() ([]string, error) {
		a := []string{"forget"}
		if host != "" {
			a = append(a, "--host", host)
		}
		if path != "" {
			a = append(a, "--path", path)
		}
		for flag, v := range map[string]int{"keep-last": p.Last, "keep-hourly": p.Hourly, "keep-daily": p.Daily, "keep-weekly": p.Weekly, "keep-monthly": p.Monthly, "keep-yearly": p.Yearly} {
			if v != 0 {
				a = append(a, "--"+flag, strconv.Itoa(v))
			}
		}
		for _, t := range keepTags {
			a = append(a, "--keep-tag", t)
		}
		if dryRun {
			a = append(a, "--dry-run")
		}
		if o.Output == "json" {
			a = append(a, "-o", "json")
		}
		return a, nil
	}
	o.local = func(ctx context.Context, rf repocmd.RepoFlags) error {
		p.Tags = repocmd.TagLists(keepTags)
		return repocmd.Forget(ctx, rf, host, path, p, dryRun, o.Output == "json", o.Out)
	}
	return cmd
}

func retentionFlags(f *pflag.FlagSet, p *repo.RetentionPolicy, tags *[]string) {
	f.IntVar(&p.Last, "keep-last", 0, "keep the N newest snapshots (-1: all)")
	f.IntVar(&p.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the N newest hours that have one")
	f.IntVar(&p.Daily, "keep-daily", 0, "keep the newest snapshot of each of the N newest days that have one")
	f.IntVar(&p.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the N newest ISO weeks that have one")
	f.IntVar(&p.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the N newest months that have one")
	f.IntVar(&p.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the N newest years that have one")
	f.StringArrayVar(tags, "keep-tag", nil, "keep every snapshot with all these tags (comma-separated); repeatable")
}

// NewCmdPrune returns `kubectl stash prune`.
func NewCmdPrune(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RepoCareOptions{global: g, verb: "prune", IOStreams: streams}
	var maxUnused float64
	var dryRun bool
	cmd := o.command(&cobra.Command{
		Use:   "prune --repo REPOSITORY [--dry-run] [--max-unused-percent N]",
		Short: "Delete the data no snapshot references (after forget); repack packs that are mostly unused",
		Example: `  kubectl stash prune --repo s3-repo --dry-run
  kubectl stash prune --repo s3-repo
  kubectl stash prune --repo pvc-repo --via-job`,
		Args: cobra.NoArgs,
	})
	cmd.Flags().Float64Var(&maxUnused, "max-unused-percent", 0, "repack a pack when more than this share of it is unused (default 10)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be deleted and reclaimed; change nothing")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "json, or empty for text")
	o.args = func() ([]string, error) {
		a := []string{"prune"}
		if maxUnused > 0 {
			a = append(a, "--max-unused-percent", strconv.FormatFloat(maxUnused, 'f', -1, 64))
		}
		if dryRun {
			a = append(a, "--dry-run")
		}
		if o.Output == "json" {
			a = append(a, "-o", "json")
		}
		return a, nil
	}
	o.local = func(ctx context.Context, rf repocmd.RepoFlags) error {
		return repocmd.Prune(ctx, rf, maxUnused, dryRun, o.Output == "json", o.Out)
	}
	return cmd
}

// NewCmdCheck returns `kubectl stash check`.
func NewCmdCheck(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RepoCareOptions{global: g, verb: "check", IOStreams: streams}
	var cf repocmd.CheckFlags
	var subset string
	cmd := o.command(&cobra.Command{
		Use:   "check --repo REPOSITORY [--read-data | --read-data-subset N%]",
		Short: "Check the repository's structure and, with --read-data, read and verify its data; exit 1 on a problem",
		Example: `  kubectl stash check --repo s3-repo
  kubectl stash check --repo s3-repo --read-data-subset 10%
  kubectl stash check --repo pvc-repo --read-data --via-job`,
		Args: cobra.NoArgs,
	})
	cmd.Flags().BoolVar(&cf.ReadData, "read-data", false, "download every pack and verify every blob")
	cmd.Flags().StringVar(&subset, "read-data-subset", "", "read a random share of the packs, e.g. 10%")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "json, or empty for text")
	parse := func() error {
		if subset == "" {
			return nil
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(subset, "%"), 64)
		if err != nil || v <= 0 || v > 100 {
			return fmt.Errorf("--read-data-subset %q: want a percentage like 10%%", subset)
		}
		cf.SubsetPercent = v
		return nil
	}
	o.args = func() ([]string, error) {
		if err := parse(); err != nil {
			return nil, err
		}
		a := []string{"check"}
		if cf.ReadData {
			a = append(a, "--read-data")
		}
		if subset != "" {
			a = append(a, "--read-data-subset", subset)
		}
		if o.Output == "json" {
			a = append(a, "-o", "json")
		}
		return a, nil
	}
	o.local = func(ctx context.Context, rf repocmd.RepoFlags) error {
		if err := parse(); err != nil {
			return err
		}
		err := repocmd.Check(ctx, rf, cf, o.Output == "json", o.Out)
		if errors.Is(err, repocmd.ErrCheckFailed) {
			return fmt.Errorf("the repository has problems (listed above)")
		}
		return err
	}
	return cmd
}

// NewCmdUnlock returns `kubectl stash unlock`.
func NewCmdUnlock(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RepoCareOptions{global: g, verb: "unlock", IOStreams: streams}
	var force bool
	cmd := o.command(&cobra.Command{
		Use:   "unlock --repo REPOSITORY [--force]",
		Short: "Remove stale repository locks (left by killed jobs); --force removes every lock",
		Example: `  kubectl stash unlock --repo s3-repo
  kubectl stash unlock --repo s3-repo --force   # only when no job uses the repository`,
		Args: cobra.NoArgs,
	})
	cmd.Flags().BoolVar(&force, "force", false, "remove every lock, also of operations still running (dangerous)")
	o.args = func() ([]string, error) {
		a := []string{"unlock"}
		if force {
			a = append(a, "--force")
		}
		return a, nil
	}
	o.local = func(ctx context.Context, rf repocmd.RepoFlags) error {
		return repocmd.Unlock(ctx, rf, time.Now(), force, o.Out, o.ErrOut)
	}
	return cmd
}

// NewCmdKey returns `kubectl stash key list|add|remove|passwd`.
func NewCmdKey(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RepoCareOptions{global: g, verb: "key", IOStreams: streams}
	var newPasswordFile string
	var sub, ref string
	cmd := o.command(&cobra.Command{
		Use:   "key list|add|remove ID|passwd --repo REPOSITORY [--new-password-file FILE]",
		Short: "List, add or remove the repository's passwords (key files), or change the one the Secret holds",
		Long: `The repository's master key is wrapped by one key file per password. key add wraps it
with another password (for a second team, or a break-glass copy); key remove removes one,
never the last one nor the one the Secret's password opens; key passwd replaces the
Secret's key file with one for --new-password-file, after which the Secret must be
updated (kubectl stash repo create NAME --overwrite).`,
		Example: `  kubectl stash key list --repo s3-repo
  kubectl stash key add --repo s3-repo --new-password-file ./breakglass.txt
  kubectl stash key remove 1a2b3c4d --repo s3-repo`,
		Args: cobra.RangeArgs(1, 2),
	})
	cmd.Flags().StringVar(&newPasswordFile, "new-password-file", "", "file holding the new password (key add, key passwd)")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "json, or empty for a table (key list)")
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		sub = args[0]
		switch sub {
		case "list", "add", "passwd":
			if len(args) != 1 {
				return fmt.Errorf("key %s takes no ID", sub)
			}
		case "remove":
			if len(args) != 2 {
				return fmt.Errorf("key remove needs the key's ID (see kubectl stash key list)")
			}
			ref = args[1]
		default:
			return fmt.Errorf("key %q: want list, add, remove or passwd", sub)
		}
		if (sub == "add" || sub == "passwd") && newPasswordFile == "" {
			return fmt.Errorf("key %s needs --new-password-file FILE", sub)
		}
		if o.ViaJob && (sub == "add" || sub == "passwd") {
			return fmt.Errorf("key %s runs from this machine only: the new password must not travel into a pod's spec", sub)
		}
		return run(c, args)
	}
	o.args = func() ([]string, error) {
		a := []string{"key", sub}
		if ref != "" {
			a = append(a, ref)
		}
		if o.Output == "json" {
			a = append(a, "-o", "json")
		}
		return a, nil
	}
	o.local = func(ctx context.Context, rf repocmd.RepoFlags) error {
		switch sub {
		case "list":
			return repocmd.KeyList(ctx, rf, o.Output == "json", o.Out)
		case "remove":
			return repocmd.KeyRemove(ctx, rf, ref, o.Out)
		}
		pw, err := repocmd.ReadNewPassword(newPasswordFile)
		if err != nil {
			return err
		}
		if sub == "add" {
			return repocmd.KeyAdd(ctx, rf, pw, o.Out)
		}
		if err := repocmd.KeyPasswd(ctx, rf, pw, o.Out); err != nil {
			return err
		}
		fmt.Fprintf(o.ErrOut, "the Secret still holds the old password: update it, e.g. kubectl create secret generic %s --from-literal=%s=\"$(cat %s)\" --dry-run=client -o yaml | kubectl apply -f - (keep its other keys)\n",
			o.Repository, api.SecretKeyPassword, newPasswordFile)
		return nil
	}
	return cmd
}
