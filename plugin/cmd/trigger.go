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
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
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

	namespace string
	client    kubernetes.Interface
	genericiooptions.IOStreams
}

// NewCmdTrigger returns `kubectl stash trigger`.
func NewCmdTrigger(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &TriggerOptions{global: g, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "trigger CONFIG [--wait]",
		Short: "Start a backup session of a configuration now",
		Long: `Start a backup session now: a Job made from the configuration's CronJob, named
<config>-<suffix>. If a session of the same configuration is still running, the new one
ends as Skipped instead of writing the same hosts twice.

With --wait, follow the session in plain lines and exit non-zero unless it Succeeded.`,
		Example: `  # Back up now, and wait for the result
  kubectl stash trigger shop-backup --wait

  # Back up now, in the live terminal UI
  kubectl stash trigger shop-backup --watch

  # Start a session and return at once
  kubectl stash trigger shop-backup -n shop`,
		Args: cobra.ExactArgs(1),
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
	return cmd
}

// Complete builds the client.
func (o *TriggerOptions) Complete(args []string) error {
	o.Config = args[0]
	return completeClient(o.global, clientsetFromFlags(o.global), &o.namespace, &o.client)
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

// Validate checks the flags.
func (o *TriggerOptions) Validate() error {
	if o.Timeout < 0 {
		return fmt.Errorf("--wait-timeout %s: want a positive duration", o.Timeout)
	}
	return nil
}

// Run creates the session Job and, with --wait, follows it.
func (o *TriggerOptions) Run(ctx context.Context) error {
	created, err := jobs.Trigger(ctx, o.client, o.namespace, o.Config, randomSuffix(), whoAmI())
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "backupsession %s created\n", created.Name)
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
				if seen["host/"+h.Hostname] != line {
					seen["host/"+h.Hostname] = line
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
	fmt.Fprintf(&b, "host %s: %s", h.Hostname, h.Phase)
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
