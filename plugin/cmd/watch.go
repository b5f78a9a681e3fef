package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/plugin/jobs"
	"github.com/kubectl-stash/kubectl-stash/plugin/tui"
)

// WatchOptions are the flags of `kubectl stash watch`.
type WatchOptions struct {
	global        *GlobalOptions
	Target        string
	AllNamespaces bool
	Kind          string
	Output        string

	namespace string
	client    kubernetes.Interface
	// open is the session to show (watch SESSION), openKind its kind; follow the
	// configuration whose newest session to show (watch CONFIG).
	open, follow string
	openKind     api.SessionKind
	// terminal reports whether w is a terminal (tests replace it).
	terminal func(any) bool
	genericiooptions.IOStreams
}

// NewCmdWatch returns `kubectl stash watch`.
func NewCmdWatch(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &WatchOptions{global: g, IOStreams: streams, terminal: isTerminal}
	cmd := &cobra.Command{
		Use:   "watch [CONFIG|SESSION|RESTORESESSION]",
		Short: "Watch sessions live: hosts, progress, rates, results",
		Long: `Watch the sessions of the namespace live, in a terminal UI: the list of recent sessions,
and for a session one row per host with a progress bar, files, rate and ETA while it runs,
and its snapshots' stats when it is done.

The list holds backup and restore sessions (KIND); --kind keeps one kind. With CONFIG,
follow the newest session of that configuration; with SESSION (a backup or a restore
session), open that session and exit with its result when it ends.

When the output is not a terminal (a pipe, CI), or with -o json, print one line per change
instead (JSON lines with -o json).`,
		Example: `  # Every session of the namespace, live
  kubectl stash watch -n shop

  # The newest session of a configuration, following new ones as they start
  kubectl stash watch shop-backup

  # One session; the exit code tells how it ended
  kubectl stash watch shop-backup-2do7af

  # A restore session, host by host; or every restore session of the namespace
  kubectl stash watch web-restore-x7k2p
  kubectl stash watch --kind restore

  # For scripts: one JSON line per change of any session in any namespace
  kubectl stash watch -A -o json`,
		Args: cobra.MaximumNArgs(1),
		ValidArgsFunction: onlyFirstArg(g.complete(func(ctx context.Context, c kubernetes.Interface, ns, s string) []string {
			names := append(completeConfigs(ctx, c, ns, s), completeSessions(ctx, c, ns, s)...)
			return append(names, completeRestoreSessions(ctx, c, ns, s)...)
		})),
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
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "watch every namespace")
	cmd.Flags().StringVar(&o.Kind, "kind", "", "only sessions of this kind: backup, restore or verify")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "json: JSON lines instead of the terminal UI")
	_ = cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{"backup", "restore", "verify"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete builds the client.
func (o *WatchOptions) Complete(args []string) error {
	if len(args) > 0 {
		o.Target = args[0]
	}
	if err := completeClient(o.global, clientsetFromFlags(o.global), &o.namespace, &o.client); err != nil {
		return err
	}
	if o.AllNamespaces {
		o.namespace = ""
	}
	return nil
}

// Validate checks the flags.
func (o *WatchOptions) Validate() error {
	switch o.Kind {
	case "", string(api.KindBackup), string(api.KindRestore), string(api.KindVerify):
	default:
		return fmt.Errorf("--kind %q: want backup, restore or verify", o.Kind)
	}
	switch o.Output {
	case "", "json":
	default:
		return fmt.Errorf("--output %q: want json, or nothing for the terminal UI", o.Output)
	}
	if o.Target != "" && o.AllNamespaces {
		return fmt.Errorf("give either CONFIG|SESSION|RESTORESESSION (in one namespace) or --all-namespaces")
	}
	return nil
}

// resolve finds out whether the target is a session or a configuration.
func (o *WatchOptions) resolve(ctx context.Context) error {
	if o.Target == "" {
		return nil
	}
	j, err := o.client.BatchV1().Jobs(o.namespace).Get(ctx, o.Target, metav1.GetOptions{})
	if err == nil {
		switch j.Labels[api.LabelComponent] {
		case api.ComponentSession:
			o.open, o.openKind = j.Name, api.KindBackup
		case api.ComponentRestoreSession:
			o.open, o.openKind = j.Name, api.KindRestore
		}
		if o.open != "" {
			if o.Kind != "" && o.Kind != string(o.openKind) {
				return fmt.Errorf("%s is a %s session, which --kind %s hides", o.open, o.openKind, o.Kind)
			}
			return nil
		}
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("session %q: %w", o.Target, err)
	}
	cj, err := o.client.BatchV1().CronJobs(o.namespace).Get(ctx, o.Target, metav1.GetOptions{})
	if err == nil && cj.Labels[api.LabelBackupConfiguration] != "" {
		if o.Kind != "" && o.Kind != string(api.KindBackup) {
			return fmt.Errorf("%s is a backup configuration, whose sessions --kind %s hides", cj.Name, o.Kind)
		}
		o.follow = cj.Name
		return nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("configuration %q: %w", o.Target, err)
	}
	return fmt.Errorf("no backup configuration, backup session or restore session named %q in namespace %s: see kubectl stash get bc / get bs / get restore", o.Target, o.namespace)
}

// Run watches until the user quits, ctx ends, or (for one session) the session ends.
func (o *WatchOptions) Run(ctx context.Context) error {
	if err := o.resolve(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	config := o.follow
	feed, err := jobs.WatchSessions(ctx, o.client, jobs.FeedOptions{Namespace: o.namespace, Config: config, Kind: api.SessionKind(o.Kind)})
	if err != nil {
		return err
	}
	if o.Output == "" && o.terminal(o.In) && o.terminal(o.Out) && o.terminal(o.ErrOut) {
		title := "namespace " + o.namespace
		if o.namespace == "" {
			title = "all namespaces"
		}
		phase, err := tui.Run(ctx, tui.Options{Feed: feed, Trigger: o.trigger, Open: o.open, Follow: o.follow,
			ExitWhenDone: o.open != "", Title: title, Now: time.Now}, o.In, o.ErrOut)
		if err != nil {
			return err
		}
		return sessionPhaseError(o.openKind, o.open, phase)
	}
	phase, err := printChanges(ctx, feed, o.Out, o.Output == "json", o.open)
	if err != nil {
		return err
	}
	return sessionPhaseError(o.openKind, o.open, phase)
}

// trigger is the t key of the terminal UI.
func (o *WatchOptions) trigger(ctx context.Context, namespace, config string) (string, error) {
	j, err := jobs.Trigger(ctx, o.client, namespace, config, randomSuffix(), whoAmI())
	if err != nil {
		return "", err
	}
	return j.Name, nil
}

// phaseError is nil unless a single watched backup session ended other than Succeeded
// (one the user stopped watching before it ended is no error).
func phaseError(session string, phase api.Phase) error {
	return sessionPhaseError(api.KindBackup, session, phase)
}

// sessionPhaseError is phaseError for a session of any kind.
func sessionPhaseError(kind api.SessionKind, session string, phase api.Phase) error {
	if session == "" || !phase.Final() || phase == api.PhaseSucceeded {
		return nil
	}
	return fmt.Errorf("%ssession %s %s", orDefault(string(kind), string(api.KindBackup)), session, phase)
}

// printChanges prints a line (or a JSON line) whenever a session or host changes, until
// the feed ends or, with only set, that session reaches a final phase (returned).
func printChanges(ctx context.Context, feed api.SessionFeed, w io.Writer, asJSON bool, only string) (api.Phase, error) {
	seen := map[string]string{}
	enc := json.NewEncoder(w)
	for {
		var pic []api.SessionView
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case p, ok := <-feed:
			if !ok {
				return "", fmt.Errorf("the watch ended")
			}
			pic = p
		}
		for _, v := range pic {
			if only != "" && v.Name != only {
				continue
			}
			key := v.Namespace + "/" + v.Name
			if asJSON {
				b, _ := json.Marshal(v)
				if seen[key] != string(b) {
					seen[key] = string(b)
					if err := enc.Encode(v); err != nil {
						return "", err
					}
				}
			} else {
				for _, h := range v.Hosts {
					line := key + " " + hostLine(h)
					if seen[key+"/"+h.Hostname] != line {
						seen[key+"/"+h.Hostname] = line
						fmt.Fprintf(w, "%s  %s\n", time.Now().Format("15:04:05"), line)
					}
				}
				done, total := v.Done()
				line := fmt.Sprintf("%s %s (%d/%d hosts done)%s", key, v.Phase, done, total, prefix(": ", v.Status.Error))
				if seen[key] != line {
					seen[key] = line
					fmt.Fprintf(w, "%s  %s\n", time.Now().Format("15:04:05"), line)
				}
			}
			if only != "" && v.Phase.Final() {
				return v.Phase, nil
			}
		}
	}
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
