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
	global    *GlobalOptions
	Name      string
	namespace string
	client    kubernetes.Interface
	now       func() time.Time
	genericiooptions.IOStreams
}

// NewCmdDescribe returns `kubectl stash describe`.
func NewCmdDescribe(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &DescribeOptions{global: g, IOStreams: streams, now: time.Now}
	cmd := &cobra.Command{
		Use:   "describe backupsession NAME",
		Short: "Show a backup session for people: hosts, snapshots, and what went wrong",
		Example: `  kubectl stash describe bs shop-backup-2do7af
  kubectl stash describe backupsession db-backup-29012345 -n db`,
		Args: cobra.ExactArgs(2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return []string{"backupsession", "bs"}, cobra.ShellCompDirectiveNoFileComp
			}
			return onlyFirstArg(g.complete(completeSessions))(cmd, args[1:], toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if r := getResources[strings.ToLower(args[0])]; r != "bs" {
				return fmt.Errorf("cannot describe %q: want backupsession (bs) NAME", args[0])
			}
			o.Name = args[1]
			if err := completeClient(o.global, clientsetFromFlags(o.global), &o.namespace, &o.client); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	return cmd
}

// Run prints the session.
func (o *DescribeOptions) Run(ctx context.Context) error {
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
				fmt.Fprintf(tw, "  %s\t%s\t%s\t-\t%s\t\t\t\t\n", h.Hostname, h.Phase, orDash(shortDuration(h.Duration)), progress)
			}
			for i, sn := range h.Snapshots {
				host, phase, dur := h.Hostname, string(h.Phase), orDash(shortDuration(h.Duration))
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
	for _, h := range s.Hosts {
		if h.Error != "" {
			events = append(events, fmt.Sprintf("  Warning\tHostFailed\t%s\t%s", h.Hostname, h.Error))
		}
		if h.Retention != "" {
			events = append(events, fmt.Sprintf("  Normal\tRetention\t%s\t%s", h.Hostname, h.Retention))
		}
	}
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
