package cmd

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/manifest"
	"github.com/kubectl-stash/kubectl-stash/plugin/jobs"
	"github.com/kubectl-stash/kubectl-stash/plugin/tui"
)

// TriggerOptions are the flags of `kubectl stash trigger`.
type TriggerOptions struct {
	global *GlobalOptions
	Config string
	Wait   bool
	// Watch opens the terminal UI on the new session (plain lines without a terminal).
	Watch   bool
	Timeout time.Duration
	ManifestFlags
	DryRun string
	Output string

	namespace string
	newClient clientsetFunc
	client    kubernetes.Interface
	// set is what -f read; triggers are the sessions to start (Config, or set's).
	set      *manifest.Set
	triggers []manifest.Trigger
	genericiooptions.IOStreams
}

// NewCmdTrigger returns `kubectl stash trigger`.
func NewCmdTrigger(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdTrigger(&TriggerOptions{global: g, IOStreams: streams, DryRun: "none"})
}

func newCmdTrigger(o *TriggerOptions) *cobra.Command {
	g := o.global
	cmd := &cobra.Command{
		Use:   "trigger (CONFIG | -f FILE) [--wait]",
		Short: "Start a backup session of a configuration now",
		Long: `Start a backup session now: a Job made from the configuration's CronJob, named
<config>-<suffix>. If a session of the same configuration is still running, the new one
ends as Skipped instead of writing the same hosts twice.

With --wait, follow the session in plain lines and exit non-zero unless it Succeeded.

With -f, the sessions are Stash or KubeStash BackupSessions (a manual trigger): one
session of the configuration each names (a KubeStash BackupSession's configuration is its
invoker, or <invoker>-<session> when the BackupConfiguration had several sessions).`,
		Example: `  # Back up now, and wait for the result
  kubectl stash trigger shop-backup --wait

  # Back up now, in the live terminal UI
  kubectl stash trigger shop-backup --watch

  # Start a session and return at once
  kubectl stash trigger shop-backup -n shop

  # A Stash BackupSession manifest
  kubectl stash trigger -f backupsession.yaml --wait

  # The session Job it would create, without creating it
  kubectl stash trigger shop-backup --dry-run=client -o yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.Filename != "" {
				if len(args) > 0 {
					return fmt.Errorf("%s with -f: the manifests name the configurations", args[0])
				}
				return onlyWith(cmd, "dry-run", "output", "wait", "watch", "wait-timeout")
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
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
	cmd.Flags().BoolVarP(&o.Wait, "wait", "w", false, "follow the session until it ends; exit non-zero unless it Succeeded")
	cmd.Flags().BoolVar(&o.Watch, "watch", false, "like --wait, in the live terminal UI (kubectl stash watch) when the output is a terminal")
	cmd.Flags().DurationVar(&o.Timeout, "wait-timeout", 0, "with --wait: give up waiting after this long (0: no limit)")
	o.ManifestFlags.addFlags(cmd.Flags(), "backup sessions")
	cmd.Flags().StringVar(&o.DryRun, "dry-run", o.DryRun, "none, or client: print the session Job, create nothing (the configuration is read from the cluster)")
	cmd.Flags().Lookup("dry-run").NoOptDefVal = "client"
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "yaml or json: print the session Job; stash or kubestash (with --dry-run=client): print the BackupSession manifest")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"yaml", "json", "stash", "kubestash"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete builds the client, and reads the manifests of -f.
func (o *TriggerOptions) Complete(args []string) error {
	if o.newClient == nil {
		o.newClient = clientsetFromFlags(o.global)
	}
	if o.Filename == "" {
		o.Config = args[0]
		if o.Output == manifest.FormatStash || o.Output == manifest.FormatKubeStash {
			ns, _, err := o.global.ConfigFlags.ToRawKubeConfigLoader().Namespace()
			o.namespace = ns
			return err
		}
		return completeClient(o.global, o.newClient, &o.namespace, &o.client)
	}
	set, ns, err := o.ManifestFlags.read(o.global, o.In, o.ErrOut)
	if err != nil {
		return err
	}
	o.set, o.namespace = set, ns
	if o.Output == manifest.FormatStash || o.Output == manifest.FormatKubeStash {
		return nil
	}
	o.client, err = o.newClient()
	return err
}

// completeClient sets the namespace the kubeconfig flags select and a client built by
// newClient (clientsetFromFlags in the verbs, a fake in tests).
func completeClient(g *GlobalOptions, newClient clientsetFunc, ns *string, c *kubernetes.Interface) error {
	n, _, err := g.ConfigFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return err
	}
	*ns = n
	*c, err = newClient()
	return err
}

// Validate checks the flags, and takes the sessions of -f.
func (o *TriggerOptions) Validate() error {
	if o.Timeout < 0 {
		return fmt.Errorf("--wait-timeout %s: want a positive duration", o.Timeout)
	}
	if err := validateDryRunOutput(o.DryRun, o.Output, false); err != nil {
		return err
	}
	if o.set == nil {
		o.triggers = []manifest.Trigger{{Config: o.Config}}
		return nil
	}
	if err := o.ManifestFlags.foreign(o.set, "trigger", o.ErrOut); err != nil {
		return err
	}
	if len(o.set.Triggers) == 0 {
		return fmt.Errorf("no BackupSession in the manifests of -f %s: kubectl stash trigger -f starts backup sessions", o.Filename)
	}
	if len(o.set.Repositories) > 0 {
		return fmt.Errorf("the manifests of -f %s define repositories, which kubectl stash trigger does not create: give them to kubectl stash backup -f", o.Filename)
	}
	if len(o.set.Triggers) > 1 && (o.Watch || o.Wait) {
		return fmt.Errorf("--wait and --watch follow one session: the manifests hold %d", len(o.set.Triggers))
	}
	o.triggers = o.set.Triggers
	return nil
}

// resolve finds the configuration of a session, and the suffix of its name.
func (o *TriggerOptions) resolve(ctx context.Context, t manifest.Trigger) (config, suffix string, err error) {
	config = t.Config
	if t.Session != "" {
		// a KubeStash BackupConfiguration's session: the configuration of that name made
		// from it, or <name>-<session> when it had several sessions
		cj, err := o.client.BatchV1().CronJobs(o.namespace).Get(ctx, config, metav1.GetOptions{})
		var bc api.BackupConfig
		if err != nil || api.Decode(api.AnnotationConfig, cj.Annotations[api.AnnotationConfig], &bc) != nil || (bc.Session != "" && bc.Session != t.Session) {
			config = t.Config + "-" + t.Session
		}
	}
	suffix = randomSuffix()
	if t.Name != "" {
		rest, ok := strings.CutPrefix(t.Name, config+"-")
		if !ok || rest == "" || len(t.Name) > 52 {
			return "", "", fmt.Errorf("%s: the session of configuration %s is a Job named %s-<suffix> (at most 52 characters): rename it, or use generateName", t.Origin, config, config)
		}
		suffix = rest
	}
	return config, suffix, nil
}

// Run creates the session Jobs and, with --wait, follows one.
func (o *TriggerOptions) Run(ctx context.Context) error {
	if o.Output == manifest.FormatStash || o.Output == manifest.FormatKubeStash {
		set := o.set
		if set == nil {
			set = &manifest.Set{Namespace: o.namespace, Triggers: o.triggers}
		}
		return printManifest(o.Out, o.ErrOut, set, o.Output, o.IgnoreUnsupported)
	}
	var created *batchv1.Job
	var printed []runtime.Object
	for _, t := range o.triggers {
		config, suffix, err := o.resolve(ctx, t)
		if err != nil {
			return err
		}
		if o.DryRun == "client" {
			cj, err := o.client.BatchV1().CronJobs(o.namespace).Get(ctx, config, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("backup configuration %q: %w", config, err)
			}
			printed = append(printed, jobs.TriggerJob(cj, suffix, whoAmI()))
			continue
		}
		created, err = jobs.Trigger(ctx, o.client, o.namespace, config, suffix, whoAmI())
		if err != nil {
			return err
		}
		o.Config = config
		if o.Output != "" {
			printed = append(printed, created)
			continue
		}
		fmt.Fprintf(o.Out, "backupsession %s created\n", created.Name)
	}
	if len(printed) > 0 {
		if err := printObjects(o.Out, printed, o.Output); err != nil || o.DryRun == "client" {
			return err
		}
	}
	if !o.Wait && !o.Watch {
		return nil
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	if o.Watch && isTerminal(o.In) && isTerminal(o.Out) && isTerminal(o.ErrOut) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		feed, err := jobs.WatchSessions(ctx, o.client, jobs.FeedOptions{Namespace: o.namespace, Config: o.Config})
		if err != nil {
			return err
		}
		w := &WatchOptions{client: o.client, IOStreams: o.IOStreams}
		phase, err := tui.Run(ctx, tui.Options{Feed: feed, Trigger: w.trigger, Open: created.Name, ExitWhenDone: true,
			Title: "namespace " + o.namespace, Now: time.Now}, o.In, o.ErrOut)
		if err != nil {
			return err
		}
		return phaseError(created.Name, phase)
	}
	return followSession(ctx, o.client, jobs.FeedOptions{Namespace: o.namespace, Config: o.Config}, created.Name, "backupsession", o.Out)
}

// followSession prints a line whenever the session (a backupsession or restoresession,
// noun) or one of its hosts changes, and returns an error unless the session Succeeded.
func followSession(ctx context.Context, c kubernetes.Interface, fo jobs.FeedOptions, name, noun string, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := func(err error) error {
		return fmt.Errorf("stopped waiting for %s %s: %w (it goes on running; see kubectl stash get %s %s)", noun, name, err, noun, name)
	}
	feed, err := jobs.WatchSessions(ctx, c, fo)
	if err != nil {
		return stopped(err)
	}
	start := time.Now()
	seen := map[string]string{}
	for pic := range feed {
		for _, v := range pic {
			if v.Name != name {
				continue
			}
			for _, h := range v.Hosts {
				line := hostLine(h)
				if seen["host/"+h.DisplayName()] != line {
					seen["host/"+h.DisplayName()] = line
					fmt.Fprintf(w, "%6s  %s\n", time.Since(start).Round(time.Second), line)
				}
			}
			line := fmt.Sprintf("session %s: %s (%d/%d hosts succeeded)%s", name, v.Phase, v.Status.Hosts.Succeeded, v.Status.TotalHosts, prefix(": ", v.Status.Error))
			if seen["session"] != line {
				seen["session"] = line
				fmt.Fprintf(w, "%6s  %s\n", time.Since(start).Round(time.Second), line)
			}
			if v.Phase.Final() {
				if v.Phase != api.PhaseSucceeded {
					return fmt.Errorf("%s %s %s%s", noun, name, v.Phase, prefix(": ", v.Status.Error))
				}
				return nil
			}
		}
	}
	// the feed ends only with ctx
	return stopped(ctx.Err())
}

func hostLine(h api.HostStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "host %s: %s", h.DisplayName(), h.Phase)
	if p := h.Progress; p != nil {
		pct := 0.0
		if p.BytesTotal > 0 {
			pct = 100 * float64(p.BytesDone) / float64(p.BytesTotal)
		}
		fmt.Fprintf(&b, " %s %.0f%% (%d/%d files, %s/s)", p.Directory, pct, p.FilesDone, p.FilesTotal, api.FormatBytes(int64(p.BytesPerS)))
	}
	for _, sn := range h.Snapshots {
		if h.Phase.Final() {
			fmt.Fprintf(&b, "; snapshot %s of %s: %d files, %s, uploaded %s", sn.Name, sn.Directory, sn.FileStats.TotalFiles, sn.Size, sn.Uploaded)
		}
	}
	for _, r := range h.Restored {
		fmt.Fprintf(&b, "; restored %s of snapshot %s (%s): %d files, %s", r.Path, r.Snapshot, r.SourceHost, r.Files, r.Size)
		if r.Skipped+r.Kept+r.Deleted > 0 {
			fmt.Fprintf(&b, ", %d identical, %d kept, %d deleted", r.Skipped, r.Kept, r.Deleted)
		}
	}
	if h.Message != "" {
		fmt.Fprintf(&b, ": %s", h.Message)
	}
	if h.Error != "" {
		fmt.Fprintf(&b, ": %s", h.Error)
	}
	return b.String()
}

func prefix(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// randomSuffix is six characters of [a-z0-9], like the seed's "2do7af".
func randomSuffix() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func whoAmI() string {
	if u, err := user.Current(); err == nil {
		return "kubectl-stash trigger by " + u.Username
	}
	return "kubectl-stash trigger"
}
