package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/plugin/jobs"
)

// GetOptions are the flags of `kubectl stash get`.
type GetOptions struct {
	global        *GlobalOptions
	Resource      string
	Name          string
	Output        string
	Config        string
	AllNamespaces bool

	newClient clientsetFunc
	namespace string
	client    kubernetes.Interface
	now       func() time.Time
	genericiooptions.IOStreams
}

// getResources are the names `get` and `describe` take, each mapped to its short name.
var getResources = map[string]string{
	"backupconfigurations": "bc", "backupconfiguration": "bc", "bc": "bc",
	"backupsessions": "bs", "backupsession": "bs", "bs": "bs",
	"restoresessions": "restore", "restoresession": "restore", "restore": "restore",
	"backupverificationsessions": "bvs", "backupverificationsession": "bvs", "bvs": "bvs",
}

// NewGetOptions returns options with defaults.
func NewGetOptions(g *GlobalOptions, streams genericiooptions.IOStreams) *GetOptions {
	return &GetOptions{global: g, IOStreams: streams, newClient: clientsetFromFlags(g), now: time.Now}
}

// NewCmdGet returns `kubectl stash get`.
func NewCmdGet(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdGet(NewGetOptions(g, streams))
}

func newCmdGet(o *GetOptions) *cobra.Command {
	g := o.global
	cmd := &cobra.Command{
		Use:   "get backupconfigurations|backupsessions|restoresessions|backupverificationsessions [NAME]",
		Short: "List backup configurations, backup, restore or verification sessions, or print one",
		Long: `List backup configurations (bc), backup sessions (bs) or restore sessions (restore) in the
namespace, or print one.

-o yaml|json prints a BackupSession in the shape Stash users know:
spec.backupConfiguration.name, status.phase, totalHosts, sessionDuration and stats per host
with one snapshot per directory; and a RestoreSession: spec.repository, spec.target.ref,
spec.rules, and status.phase, totalHosts, sessionDuration and stats per host (with a
message field saying why a host was Skipped).`,
		Example: `  # Configurations, with their last session
  kubectl stash get bc

  # Sessions, newest first; only those of one configuration
  kubectl stash get bs
  kubectl stash get bs --config shop-backup

  # One session as a BackupSession object
  kubectl stash get bs shop-backup-2do7af -o yaml

  # Restore sessions of every namespace, with where their snapshots came from
  kubectl stash get restoresessions -A -o wide

  # Backup verification sessions, and one in the seed's BackupVerificationSession shape
  kubectl stash get bvs
  kubectl stash get bvs demo-storage-sample-backup-1730194200 -o yaml

  # One restore session as a RestoreSession object
  kubectl stash get restore web-restore-x7k2p -o yaml`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: g.completeGet,
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
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "table (default), wide, yaml or json")
	cmd.Flags().StringVar(&o.Config, "config", "", "backupsessions: only those of this configuration")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "list those of every namespace")
	_ = cmd.RegisterFlagCompletionFunc("config", g.complete(completeConfigs))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "wide", "yaml", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete reads the arguments and builds the client.
func (o *GetOptions) Complete(args []string) error {
	o.Resource = args[0]
	if len(args) > 1 {
		o.Name = args[1]
	}
	if err := completeClient(o.global, o.newClient, &o.namespace, &o.client); err != nil {
		return err
	}
	if o.AllNamespaces {
		o.namespace = ""
	}
	return nil
}

// Validate checks the resource, the flags and the output format.
func (o *GetOptions) Validate() error {
	r, ok := getResources[strings.ToLower(o.Resource)]
	if !ok {
		return fmt.Errorf("unknown resource %q: want backupconfigurations (bc), backupsessions (bs), restoresessions (restore) or backupverificationsessions (bvs)", o.Resource)
	}
	o.Resource = r
	if o.Name != "" && o.AllNamespaces {
		return fmt.Errorf("a resource cannot be retrieved by name across all namespaces: give -n NAMESPACE with NAME")
	}
	if o.Config != "" && r == "bvs" {
		return fmt.Errorf("--config selects backup sessions: give the verification's name as NAME's prefix, or use kubectl stash get bvs")
	}
	if o.Config != "" && r == "restore" {
		return fmt.Errorf("--config selects backup sessions: a restore session belongs to no configuration")
	}
	switch o.Output {
	case "", "table", "wide", "yaml", "json":
	default:
		return fmt.Errorf("--output %q: want table, wide, yaml or json", o.Output)
	}
	return nil
}

// Run prints.
func (o *GetOptions) Run(ctx context.Context) error {
	switch o.Resource {
	case "bs":
		return o.runSessions(ctx)
	case "restore":
		return o.runRestores(ctx)
	case "bvs":
		return o.runVerifies(ctx)
	case "bc":
		return o.runConfigs(ctx)
	default:
		return fmt.Errorf("unknown resource %q", o.Resource)
	}
}

// notFound says where to look when nothing is printed.
func (o *GetOptions) notFound(what string) {
	if o.AllNamespaces {
		fmt.Fprintf(o.ErrOut, "No %s found.\n", what)
		return
	}
	fmt.Fprintf(o.ErrOut, "No %s found in %s namespace.\n", what, o.namespace)
}

// header starts a table: NAMESPACE first with -A, then titles.
func (o *GetOptions) header(w io.Writer, titles string) {
	if o.AllNamespaces {
		fmt.Fprint(w, "NAMESPACE\t")
	}
	fmt.Fprint(w, titles)
}

// row starts a table row: its namespace first with -A.
func (o *GetOptions) row(w io.Writer, ns string) {
	if o.AllNamespaces {
		fmt.Fprintf(w, "%s\t", ns)
	}
}

func (o *GetOptions) runRestores(ctx context.Context) error {
	var list []jobs.Restore
	if o.Name != "" {
		r, err := jobs.GetRestoreSession(ctx, o.client, o.namespace, o.Name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("restoresession %q not found in namespace %s: see kubectl stash get restoresessions", o.Name, o.namespace)
			}
			return err
		}
		list = []jobs.Restore{r}
	} else {
		var err error
		if list, err = jobs.ListRestoreSessions(ctx, o.client, o.namespace, o.Output == "yaml" || o.Output == "json"); err != nil {
			return err
		}
	}
	for _, r := range list {
		if r.DecodeErr != nil {
			fmt.Fprintf(o.ErrOut, "warning: restoresession %s/%s: %v\n", r.Job.Namespace, r.Job.Name, r.DecodeErr)
		}
	}
	switch o.Output {
	case "yaml", "json":
		return writeViews(o, list, func(r jobs.Restore) any { return r.View() })
	}
	if len(list) == 0 {
		o.notFound("restore sessions")
		return nil
	}
	tw := printers.GetNewTabWriter(o.Out)
	wide := o.Output == "wide"
	o.header(tw, "NAME\tTARGET\tREPOSITORY\tPHASE\tHOSTS\tDURATION\tAGE")
	if wide {
		fmt.Fprint(tw, "\tSOURCE")
	}
	fmt.Fprintln(tw)
	for _, r := range list {
		o.row(tw, r.Job.Namespace)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s", r.Job.Name, r.Target(), orDash(r.Config.Repository), r.Phase(),
			r.Ended(), r.Status.TotalHosts, orDash(shortDuration(r.Status.SessionDuration)), age(o.now(), r.Job.CreationTimestamp))
		if wide {
			fmt.Fprintf(tw, "\t%s", orDash(restoreSource(r.Config)))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func (o *GetOptions) runVerifies(ctx context.Context) error {
	var list []jobs.VerifySession
	if o.Name != "" {
		s, err := jobs.GetVerifySession(ctx, o.client, o.namespace, o.Name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("backupverificationsession %q not found in namespace %s: see kubectl stash get bvs", o.Name, o.namespace)
			}
			return err
		}
		list = []jobs.VerifySession{s}
	} else {
		var err error
		if list, err = jobs.ListVerifySessions(ctx, o.client, o.namespace, ""); err != nil {
			return err
		}
	}
	for _, s := range list {
		if s.DecodeErr != nil {
			fmt.Fprintf(o.ErrOut, "warning: backupverificationsession %s/%s: %v\n", s.Job.Namespace, s.Job.Name, s.DecodeErr)
		}
	}
	switch o.Output {
	case "yaml", "json":
		return writeViews(o, list, func(s jobs.VerifySession) any { return s.View() })
	}
	if len(list) == 0 {
		o.notFound("backup verification sessions")
		return nil
	}
	tw := printers.GetNewTabWriter(o.Out)
	wide := o.Output == "wide"
	o.header(tw, "NAME\tINVOKER\tREPOSITORY\tSNAPSHOT\tPHASE\tVERIFIED\tDURATION\tAGE")
	if wide {
		fmt.Fprint(tw, "\tRETRY LEFT\tCONDITIONS")
	}
	fmt.Fprintln(tw)
	for _, s := range list {
		v := s.View()
		verified := "-"
		var conds []string
		for _, c := range s.Status.Conditions {
			if c.Type == api.ConditionBackupVerified {
				verified = c.Status
			}
			conds = append(conds, c.Type+"="+c.Status)
		}
		o.row(tw, s.Job.Namespace)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", s.Job.Name, orDash(s.Config.Invoker), orDash(s.Config.Repository), orDash(v.Spec.Snapshot),
			v.Status.Phase, verified, orDash(s.Status.Duration), age(o.now(), s.Job.CreationTimestamp))
		if wide {
			fmt.Fprintf(tw, "\t%d\t%s", v.Spec.RetryLeft, orDash(strings.Join(conds, ",")))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// writeViews prints the seed-shaped views of list: the one named, or a List of them all.
func writeViews[T any](o *GetOptions, list []T, view func(T) any) error {
	views := make([]any, 0, len(list))
	for _, x := range list {
		views = append(views, view(x))
	}
	if o.Name != "" && len(views) == 1 {
		return writeDoc(o.Out, views[0], o.Output)
	}
	return writeDoc(o.Out, map[string]any{"apiVersion": "v1", "kind": "List", "items": views}, o.Output)
}

// restoreSource is where a restore's snapshots come from, "" when its configuration is
// unreadable.
func restoreSource(c api.RestoreConfig) string {
	if c.FromConfig == "" && c.SourceTarget.Kind == "" {
		return ""
	}
	return c.Source()
}

func (o *GetOptions) runSessions(ctx context.Context) error {
	var list []jobs.Session
	if o.Name != "" {
		s, err := jobs.GetSession(ctx, o.client, o.namespace, o.Name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("backupsession %q not found in namespace %s: see kubectl stash get bs", o.Name, o.namespace)
			}
			return err
		}
		list = []jobs.Session{s}
	} else {
		var err error
		if list, err = jobs.ListSessions(ctx, o.client, o.namespace, o.Config, o.Output == "yaml" || o.Output == "json"); err != nil {
			return err
		}
	}
	switch o.Output {
	case "yaml", "json":
		return writeViews(o, list, func(s jobs.Session) any { return s.View() })
	}
	if len(list) == 0 {
		o.notFound("backup sessions")
		return nil
	}
	tw := printers.GetNewTabWriter(o.Out)
	wide := o.Output == "wide"
	o.header(tw, "NAME\tCONFIG\tPHASE\tHOSTS\tDURATION\tAGE")
	if wide {
		fmt.Fprint(tw, "\tSTARTED\tERROR")
	}
	fmt.Fprintln(tw)
	for _, s := range list {
		o.row(tw, s.Job.Namespace)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s", s.Job.Name, s.Config, s.Phase(), s.Status.Hosts.Succeeded, s.Status.TotalHosts,
			orDash(shortDuration(s.Status.SessionDuration)), age(o.now(), s.Job.CreationTimestamp))
		if wide {
			fmt.Fprintf(tw, "\t%s\t%s", orDash(s.Status.StartTime), orDash(s.Status.Error))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func (o *GetOptions) runConfigs(ctx context.Context) error {
	sel := api.LabelBackupConfiguration
	var cjs []batchv1.CronJob
	if o.Name != "" {
		cj, err := o.client.BatchV1().CronJobs(o.namespace).Get(ctx, o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && cj.Labels[api.LabelBackupConfiguration] == "") {
			return fmt.Errorf("backupconfiguration %q not found in namespace %s: see kubectl stash get bc", o.Name, o.namespace)
		}
		if err != nil {
			return err
		}
		cjs = []batchv1.CronJob{*cj}
	} else {
		l, err := o.client.BatchV1().CronJobs(o.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return fmt.Errorf("list backup configurations in %s: %w", nsName(o.namespace), err)
		}
		cjs = l.Items
		sort.Slice(cjs, func(i, j int) bool {
			if cjs[i].Namespace != cjs[j].Namespace {
				return cjs[i].Namespace < cjs[j].Namespace
			}
			return cjs[i].Name < cjs[j].Name
		})
	}
	type row struct {
		cfg   api.BackupConfig
		cj    batchv1.CronJob
		last  *jobs.Session
		error string
	}
	sessions, err := jobs.ListSessions(ctx, o.client, o.namespace, o.Name, false)
	if err != nil {
		return err
	}
	var rows []row
	for _, cj := range cjs {
		r := row{cj: cj}
		if err := api.Decode(api.AnnotationConfig, cj.Annotations[api.AnnotationConfig], &r.cfg); err != nil {
			r.error = err.Error()
		}
		for i := range sessions {
			if sessions[i].Config == cj.Name && sessions[i].Job.Namespace == cj.Namespace {
				r.last = &sessions[i]
				break
			}
		}
		rows = append(rows, r)
	}
	switch o.Output {
	case "yaml", "json":
		var items []api.BackupConfig
		for _, r := range rows {
			items = append(items, r.cfg)
		}
		if o.Name != "" && len(items) == 1 {
			return writeDoc(o.Out, items[0], o.Output)
		}
		return writeDoc(o.Out, map[string]any{"items": items}, o.Output)
	}
	if len(rows) == 0 {
		o.notFound("backup configurations")
		return nil
	}
	tw := printers.GetNewTabWriter(o.Out)
	wide := o.Output == "wide"
	o.header(tw, "NAME\tTARGET\tSCHEDULE\tPAUSED\tLAST SESSION\tPHASE\tAGE")
	if wide {
		fmt.Fprint(tw, "\tREPOSITORY\tPATHS\tIMAGE")
	}
	fmt.Fprintln(tw)
	// A configuration on a job image of another version than this plugin's (after an
	// upgrade, say) ends its row with a marker, explained on stderr after the table.
	jobImage := o.global.JobImage()
	var others []string
	for _, r := range rows {
		schedule := r.cfg.Schedule
		paused := r.cj.Spec.Suspend != nil && *r.cj.Spec.Suspend
		pausedCol := fmt.Sprint(paused)
		if schedule == "" {
			schedule, pausedCol = "<trigger only>", "-"
		}
		last, phase := "<none>", "-"
		if r.last != nil {
			last, phase = r.last.Job.Name, string(r.last.Phase())
		}
		o.row(tw, r.cj.Namespace)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s", r.cj.Name, r.cfg.TargetString(), schedule, pausedCol, last, phase, age(o.now(), r.cj.CreationTimestamp))
		if wide {
			fmt.Fprintf(tw, "\t%s\t%s\t%s", r.cfg.Repository, strings.Join(r.cfg.Paths, ","), orDash(configImage(r.cj)))
		}
		if image := configImage(r.cj); otherImageVersion(image, jobImage) {
			fmt.Fprint(tw, "\t"+otherImageMarker)
			name := r.cj.Name
			if o.AllNamespaces {
				name = r.cj.Namespace + "/" + name
			}
			others = append(others, otherImageMessage(name, image, jobImage))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range others {
		fmt.Fprintf(o.ErrOut, "%s %s\n", otherImageMarker, m)
	}
	return nil
}

// otherImageMarker ends the row of a configuration whose job image is of another version.
const otherImageMarker = "(*)"

// nsName names a namespace for messages, "" as every namespace.
func nsName(ns string) string {
	if ns == "" {
		return "all namespaces"
	}
	return "namespace " + ns
}

func writeDoc(w io.Writer, v any, format string) error {
	if format == "json" {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func age(now time.Time, t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// shortDuration rounds "3.861369766s" to "3.9s" for tables.
func shortDuration(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil || s == "" {
		return s
	}
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
