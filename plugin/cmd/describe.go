package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/plugin/jobs"
)

// DescribeOptions are the flags of `kubectl stash describe`.
type DescribeOptions struct {
	global *GlobalOptions
	// Resource is bs or restore (the short names of getResources).
	Resource  string
	Name      string
	newClient clientsetFunc
	namespace string
	client    kubernetes.Interface
	now       func() time.Time
	genericiooptions.IOStreams
}

// NewDescribeOptions returns options with defaults.
func NewDescribeOptions(g *GlobalOptions, streams genericiooptions.IOStreams) *DescribeOptions {
	return &DescribeOptions{global: g, IOStreams: streams, newClient: clientsetFromFlags(g), now: time.Now}
}

// NewCmdDescribe returns `kubectl stash describe`.
func NewCmdDescribe(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdDescribe(NewDescribeOptions(g, streams))
}

func newCmdDescribe(o *DescribeOptions) *cobra.Command {
	g := o.global
	cmd := &cobra.Command{
		Use:   "describe backupsession|restoresession NAME",
		Short: "Show a backup or restore session for people: hosts, snapshots, and what went wrong",
		Example: `  kubectl stash describe bs shop-backup-2do7af
  kubectl stash describe backupsession db-backup-29012345 -n db

  # A restore session: its rules, and what each host restored from which host
  kubectl stash describe restoresession web-restore-x7k2p
  kubectl stash describe restore web-restore-x7k2p -n shop`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: g.completeDescribe,
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
	return cmd
}

// Complete reads the arguments and builds the client.
func (o *DescribeOptions) Complete(args []string) error {
	o.Resource, o.Name = args[0], args[1]
	return completeClient(o.global, o.newClient, &o.namespace, &o.client)
}

// Validate checks the resource.
func (o *DescribeOptions) Validate() error {
	switch r := getResources[strings.ToLower(o.Resource)]; r {
	case "bs", "restore":
		o.Resource = r
		return nil
	}
	return fmt.Errorf("cannot describe %q: want backupsession (bs) NAME or restoresession (restore) NAME", o.Resource)
}

// Run prints the session.
func (o *DescribeOptions) Run(ctx context.Context) error {
	if o.Resource == "restore" {
		r, err := jobs.GetRestoreSession(ctx, o.client, o.namespace, o.Name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("restoresession %q not found in namespace %s: see kubectl stash get restoresessions", o.Name, o.namespace)
			}
			return err
		}
		describeRestore(o.Out, r, o.now())
		return nil
	}
	s, err := jobs.GetSession(ctx, o.client, o.namespace, o.Name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("backupsession %q not found in namespace %s: see kubectl stash get bs", o.Name, o.namespace)
		}
		return err
	}
	describeSession(o.Out, s, o.now())
	return nil
}

func describeSession(w io.Writer, s jobs.Session, now time.Time) {
	st := s.Status
	fmt.Fprintf(w, "Name:              %s\n", s.Job.Name)
	fmt.Fprintf(w, "Namespace:         %s\n", s.Job.Namespace)
	fmt.Fprintf(w, "Configuration:     %s\n", s.Config)
	if by := s.Job.Annotations[api.AnnotationTriggeredBy]; by != "" {
		fmt.Fprintf(w, "Triggered By:      %s\n", by)
	}
	fmt.Fprintf(w, "Phase:             %s\n", s.Phase())
	fmt.Fprintf(w, "Total Hosts:       %d (%d succeeded, %d failed, %d running, %d pending)\n", st.TotalHosts,
		st.Hosts.Succeeded, st.Hosts.Failed, st.Hosts.Running, st.Hosts.Pending)
	fmt.Fprintf(w, "Session Duration:  %s\n", orDash(st.SessionDuration))
	fmt.Fprintf(w, "Started:           %s\n", orDash(st.StartTime))
	fmt.Fprintf(w, "Completed:         %s\n", orDash(st.CompletionTime))
	fmt.Fprintf(w, "Age:               %s\n", age(now, s.Job.CreationTimestamp))
	fmt.Fprintln(w, "Hosts:")
	if len(s.Hosts) == 0 {
		fmt.Fprintln(w, "  <none>")
	} else {
		tw := printers.GetNewTabWriter(w)
		fmt.Fprintln(tw, "  HOST\tPHASE\tDURATION\tSNAPSHOT\tDIRECTORY\tFILES (NEW/MOD/UNMOD)\tSIZE\tUPLOADED\tTIME")
		for _, h := range s.Hosts {
			if len(h.Snapshots) == 0 {
				progress := "-"
				if p := h.Progress; p != nil {
					progress = fmt.Sprintf("%s: %d/%d files, %s/%s", p.Directory, p.FilesDone, p.FilesTotal, api.FormatBytes(p.BytesDone), api.FormatBytes(p.BytesTotal))
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t-\t%s\t\t\t\t\n", h.DisplayName(), h.Phase, orDash(shortDuration(h.Duration)), progress)
			}
			for i, sn := range h.Snapshots {
				host, phase, dur := h.DisplayName(), string(h.Phase), orDash(shortDuration(h.Duration))
				if i > 0 {
					host, phase, dur = "", "", ""
				}
				fs := sn.FileStats
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d (%d/%d/%d)\t%s\t%s\t%s\n", host, phase, dur, sn.Name, sn.Directory,
					fs.TotalFiles, fs.NewFiles, fs.ModifiedFiles, fs.UnmodifiedFiles, sn.Size, sn.Uploaded, sn.ProcessingTime)
			}
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "Events:")
	var events []string
	if st.Error != "" {
		events = append(events, fmt.Sprintf("  %s\tSession\t-\t%s", eventType(s.Phase()), st.Error))
	}
	for _, m := range st.Members {
		if m.Error != "" {
			events = append(events, fmt.Sprintf("  Warning\tMemberFailed\t%s\t%s", m.Target, m.Error))
		}
	}
	for _, h := range s.Hosts {
		for _, r := range h.Hooks {
			typ, reason := "Normal", "HookSucceeded"
			msg := r.Phase + " " + r.Name
			switch {
			case r.Skipped:
				reason, msg = "HookSkipped", msg+": "+r.Message
			case !r.Succeeded:
				typ, reason, msg = "Warning", "HookFailed", msg+": "+r.Message
			}
			events = append(events, fmt.Sprintf("  %s\t%s\t%s\t%s", typ, reason, h.DisplayName(), msg))
		}
		if h.Error != "" {
			events = append(events, fmt.Sprintf("  Warning\tHostFailed\t%s\t%s", h.DisplayName(), h.Error))
		}
		if h.Retention != "" {
			events = append(events, fmt.Sprintf("  Normal\tRetention\t%s\t%s", h.DisplayName(), h.Retention))
		}
	}
	printEvents(w, events)
}

// printEvents prints the Events table; each event is TYPE\tREASON\tHOST\tMESSAGE.
func printEvents(w io.Writer, events []string) {
	if len(events) == 0 {
		fmt.Fprintln(w, "  <none>")
		return
	}
	tw := printers.GetNewTabWriter(w)
	fmt.Fprintln(tw, "  TYPE\tREASON\tHOST\tMESSAGE")
	for _, e := range events {
		// a multi-line error (unreadable files, one per line) stays on its row
		lines := strings.Split(e, "\n")
		for i := range lines[1:] {
			lines[i+1] = strings.TrimSpace(lines[i+1])
		}
		fmt.Fprintln(tw, strings.Join(lines, " "))
	}
	tw.Flush()
}

func eventType(p api.Phase) string {
	if p == api.PhaseFailed {
		return "Warning"
	}
	return "Normal"
}

// describeRestore prints a restore session: what it restores from where, by which rules,
// and what each host restored.
func describeRestore(w io.Writer, r jobs.Restore, now time.Time) {
	st, cfg := r.Status, r.Config
	fmt.Fprintf(w, "Name:              %s\n", r.Job.Name)
	fmt.Fprintf(w, "Namespace:         %s\n", r.Job.Namespace)
	fmt.Fprintf(w, "Target:            %s\n", r.Target())
	fmt.Fprintf(w, "Repository:        %s\n", orDash(cfg.Repository))
	fmt.Fprintf(w, "Source:            %s\n", orDash(restoreSource(cfg)))
	fmt.Fprintf(w, "Phase:             %s\n", r.Phase())
	fmt.Fprintf(w, "Total Hosts:       %d (%d succeeded, %d skipped, %d failed, %d running, %d pending)\n", st.TotalHosts,
		st.Hosts.Succeeded, st.Hosts.Skipped, st.Hosts.Failed, st.Hosts.Running, st.Hosts.Pending)
	fmt.Fprintf(w, "Session Duration:  %s\n", orDash(st.SessionDuration))
	fmt.Fprintf(w, "Started:           %s\n", orDash(st.StartTime))
	fmt.Fprintf(w, "Completed:         %s\n", orDash(st.CompletionTime))
	fmt.Fprintf(w, "Age:               %s\n", age(now, r.Job.CreationTimestamp))
	if len(cfg.VolumeMounts) > 0 {
		var mounts []string
		for _, m := range cfg.VolumeMounts {
			mounts = append(mounts, m.Name+" at "+m.MountPath)
		}
		fmt.Fprintf(w, "Volume Mounts:     %s\n", strings.Join(mounts, ", "))
	}
	if cfg.MountPath != "" {
		fmt.Fprintf(w, "Mount Path:        %s\n", cfg.MountPath)
	}
	if cfg.Replicas > 0 {
		fmt.Fprintf(w, "New StatefulSet:   %d replicas, claims of %s\n", cfg.Replicas, strings.Join(cfg.VolumeClaimTemplates, ", "))
	}
	fmt.Fprintf(w, "Overwrite:         %s\n", orDefault(cfg.Overwrite, "always"))
	fmt.Fprintf(w, "Delete:            %s\n", yesNo(cfg.Delete, "files not in the snapshot are deleted", "no"))
	fmt.Fprintf(w, "Include:           %s\n", orDash(strings.Join(cfg.Includes, ", ")))
	fmt.Fprintf(w, "Exclude:           %s\n", orDash(strings.Join(cfg.Excludes, ", ")))
	if cfg.ScaleDown {
		fmt.Fprintln(w, "Scale Down:        yes: the target runs no pods while it is restored")
	}

	fmt.Fprintln(w, "Rules:")
	if len(cfg.Rules) == 0 {
		fmt.Fprintln(w, "  <none>")
	} else {
		tw := printers.GetNewTabWriter(w)
		fmt.Fprintln(tw, "  RULE\tTARGET HOSTS\tSOURCE HOST\tPATHS\tSNAPSHOTS")
		named := false
		for _, rule := range cfg.Rules {
			named = named || len(rule.TargetHosts) > 0
		}
		for i, rule := range cfg.Rules {
			hosts := strings.Join(rule.TargetHosts, ",")
			switch {
			case hosts != "":
			case named:
				hosts = "<every other host>"
			default:
				hosts = "<every host>"
			}
			paths, snaps := strings.Join(rule.Paths, ","), strings.Join(rule.Snapshots, ",")
			switch {
			case paths != "":
			case snaps != "":
				paths = "<whole snapshots>"
			case len(cfg.Paths) > 0:
				paths = strings.Join(cfg.Paths, ",")
			default:
				paths = "<every path backed up>"
			}
			if snaps == "" {
				snaps = "<latest of each path>"
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", i+1, hosts, orDefault(rule.SourceHost, "<the host itself>"), paths, snaps)
		}
		tw.Flush()
	}

	fmt.Fprintln(w, "Hosts:")
	if len(r.Hosts) == 0 {
		fmt.Fprintln(w, "  <none>")
	} else {
		tw := printers.GetNewTabWriter(w)
		fmt.Fprintln(tw, "  HOST\tPHASE\tDURATION\tSOURCE HOST\tSNAPSHOT\tPATH\tFILES\tSIZE\tSKIPPED/KEPT/DELETED")
		for _, h := range r.Hosts {
			source := orDash(r.SourceHost(h))
			if len(h.Restored) == 0 {
				progress := "-"
				if p := h.Progress; p != nil {
					progress = fmt.Sprintf("%s: %d/%d files, %s/%s", p.Directory, p.FilesDone, p.FilesTotal, api.FormatBytes(p.BytesDone), api.FormatBytes(p.BytesTotal))
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t-\t%s\t\t\t\n", h.Hostname, h.Phase, orDash(shortDuration(h.Duration)), source, progress)
			}
			for i, rs := range h.Restored {
				host, phase, dur, src := h.Hostname, string(h.Phase), orDash(shortDuration(h.Duration)), source
				if i > 0 {
					host, phase, dur, src = "", "", "", ""
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d/%d/%d\n", host, phase, dur, src, shortID(rs.Snapshot), rs.Path,
					rs.Files, rs.Size, rs.Skipped, rs.Kept, rs.Deleted)
			}
		}
		tw.Flush()
	}

	fmt.Fprintln(w, "Events:")
	var events []string
	if r.DecodeErr != nil {
		events = append(events, fmt.Sprintf("  Warning\tUnreadable\t-\t%v", r.DecodeErr))
	}
	if st.Error != "" {
		events = append(events, fmt.Sprintf("  %s\tSession\t-\t%s", eventType(r.Phase()), st.Error))
	}
	for _, h := range r.Hosts {
		if h.Error != "" {
			events = append(events, fmt.Sprintf("  Warning\tHostFailed\t%s\t%s", h.Hostname, h.Error))
		}
		if m := r.Message(h); m != "" {
			reason := "HostMessage"
			if h.Phase == api.PhaseSkipped {
				reason = "HostSkipped"
			}
			events = append(events, fmt.Sprintf("  Normal\t%s\t%s\t%s", reason, h.Hostname, m))
		}
	}
	printEvents(w, events)
}

// shortID is the first 8 characters of a snapshot id, as `kubectl stash snapshots` shows it.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return orDash(id)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}
