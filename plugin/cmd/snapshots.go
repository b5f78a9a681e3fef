package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

// snapshotsContainer is the container name of a --via-job listing Job.
const snapshotsContainer = "snapshots"

// repoJobLogFunc streams a container's log (tests: canned output; a fake clientset's log is
// a fixed string).
type repoJobLogFunc func(ctx context.Context, c kubernetes.Interface, ns, pod, container string) (io.ReadCloser, error)

func streamRepoJobLog(ctx context.Context, c kubernetes.Interface, ns, pod, container string) (io.ReadCloser, error) {
	return c.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container}).Stream(ctx)
}

// SnapshotsOptions are the options of `kubectl stash snapshots`.
type SnapshotsOptions struct {
	Global *GlobalOptions

	Repo   string
	Host   string
	Path   string
	Output string
	// ViaJob lists from a Job in the cluster instead of from this machine.
	ViaJob bool
	// Timeout bounds the --via-job Job, from creation to its end.
	Timeout time.Duration

	newClient clientsetFunc
	podLogs   repoJobLogFunc
	// location is the time zone of the table's TIME column (tests: UTC).
	location *time.Location
	// pollInterval is how often --via-job looks at its Job.
	pollInterval time.Duration

	namespace string
	client    kubernetes.Interface
	genericiooptions.IOStreams
}

// NewSnapshotsOptions returns options with defaults.
func NewSnapshotsOptions(g *GlobalOptions, streams genericiooptions.IOStreams) *SnapshotsOptions {
	return &SnapshotsOptions{Global: g, Timeout: 5 * time.Minute, newClient: clientsetFromFlags(g), podLogs: streamRepoJobLog,
		location: time.Local, pollInterval: time.Second, IOStreams: streams}
}

// NewCmdSnapshots returns `kubectl stash snapshots`.
func NewCmdSnapshots(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdSnapshots(NewSnapshotsOptions(g, streams))
}

func newCmdSnapshots(o *SnapshotsOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "snapshots --repo NAME [--host HOST] [--path PATH] [-o table|wide|json|yaml] [--via-job]",
		Aliases: []string{"snapshot"},
		Short:   "List the snapshots of a repository",
		Long: `List the snapshots in the repository of Secret --repo, oldest first.

The repository is read from this machine, with the Secret's credentials: no pod runs. When
the object store can be reached only from inside the cluster, or the repository is on a
PersistentVolumeClaim (pvc://), add --via-job: the listing then runs in a short-lived Job
of the namespace (the job image of this plugin's version, or --image), which is deleted
afterwards.`,
		Example: `  # Every snapshot of the repository shop-backups
  kubectl stash snapshots --repo shop-backups

  # Those of one host and directory, with uploads, tags and sessions
  kubectl stash snapshots --repo shop-backups --host host-0 --path /var/lib/mysql -o wide

  # For scripts
  kubectl stash snapshots --repo shop-backups -o json

  # A repository on a PersistentVolumeClaim, or a bucket reachable only from the cluster
  kubectl stash snapshots --repo local --via-job`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Repo, "repo", "", "name of the repository Secret (required)")
	f.StringVar(&o.Host, "host", "", "only snapshots of this host (host-0, a StatefulSet's host-N, a node name)")
	f.StringVar(&o.Path, "path", "", "only snapshots that include this directory")
	f.StringVarP(&o.Output, "output", "o", "", "output format: table, wide, json or yaml (default: table)")
	f.BoolVar(&o.ViaJob, "via-job", false, "list from a Job in the cluster instead of from this machine")
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "with --via-job: how long the Job may take")
	return cmd
}

// Complete takes the namespace and builds the client.
func (o *SnapshotsOptions) Complete() error {
	return completeClient(o.Global, o.newClient, &o.namespace, &o.client)
}

// Validate checks the flags.
func (o *SnapshotsOptions) Validate() error {
	if o.Repo == "" {
		return errors.New("--repo is required: the name of the repository Secret (kubectl stash repo list shows them)")
	}
	if err := validateSecretName(o.Repo); err != nil {
		return fmt.Errorf("--repo: %w", err)
	}
	switch o.Output {
	case "", "table", "wide", "json", "yaml":
	default:
		return fmt.Errorf("--output %q is not supported: use table, wide, json or yaml", o.Output)
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout %s: want a positive duration", o.Timeout)
	}
	return nil
}

// Run reads the repository Secret, lists the snapshots from here or from a Job, filters
// and prints them.
func (o *SnapshotsOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	r, err := repository.Get(ctx, o.client, o.namespace, o.Repo)
	if err != nil {
		return err
	}
	var list []repository.Snapshot
	switch {
	case o.ViaJob:
		list, err = o.listViaJob(ctx, r)
	case r.Claim != "":
		return fmt.Errorf("repository %q (%s) is on PersistentVolumeClaim %q, which this machine cannot read: add --via-job to list it from a Job in the cluster",
			r.Name, r.URL, r.Claim)
	default:
		list, err = r.Snapshots(ctx)
		if err != nil {
			err = fmt.Errorf("read repository %q from this machine: %w (if the object store is reachable only from the cluster, add --via-job)", r.Name, err)
		}
	}
	if err != nil {
		return err
	}
	list = repository.Filter(list, o.Host, o.Path)
	return o.print(r, list)
}

func (o *SnapshotsOptions) print(r *repository.Repository, list []repository.Snapshot) error {
	switch o.Output {
	case "json", "yaml":
		return writeDoc(o.Out, list, o.Output)
	case "", "table", "wide":
	default:
		return fmt.Errorf("unsupported output %q", o.Output)
	}
	if len(list) == 0 {
		what := ""
		if o.Host != "" || o.Path != "" {
			what = " matching"
			if o.Host != "" {
				what += " --host " + o.Host
			}
			if o.Path != "" {
				what += " --path " + o.Path
			}
		}
		fmt.Fprintf(o.ErrOut, "No snapshots%s in repository %s (%s).\n", what, r.Name, r.DisplayURL())
		return nil
	}
	wide := o.Output == "wide"
	tw := printers.GetNewTabWriter(o.Out)
	fmt.Fprint(tw, "ID\tTIME\tHOST\tDIRECTORY\tFILES\tSIZE")
	if wide {
		fmt.Fprint(tw, "\tUPLOADED\tTAGS\tTARGET\tSESSION")
	}
	fmt.Fprintln(tw)
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s", s.ShortID, s.Time.In(o.location).Format("2006-01-02 15:04:05"), s.Host,
			strings.Join(s.Paths, ","), s.Stats.TotalFiles, api.FormatBytes(s.Stats.Size))
		if wide {
			target := "<none>"
			if t := s.Target; t != nil && t.Kind != "" {
				target = t.Kind + "/" + t.Name
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s", api.FormatBytes(s.Stats.Uploaded), valueOrNone(strings.Join(s.Tags, ",")), target, valueOrNone(s.Session))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func valueOrNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// repoJob runs stash-job in a short-lived Job of the namespace with access to a
// repository (the Secret through envFrom, a pvc:// claim mounted), waits for it, returns
// its pod's log and deletes it. `snapshots --via-job` lists with it; `repo create --init`
// initializes a pvc:// repository with it.
type repoJob struct {
	client    kubernetes.Interface
	namespace string
	image     string
	timeout   time.Duration
	poll      time.Duration
	logs      repoJobLogFunc
	errOut    io.Writer
}

// repoJobResult is what a finished Job left.
type repoJobResult struct {
	Name      string
	Succeeded bool
	Log       []byte
}

// spec builds the Job: container name (also the Job name's middle part), stash-job's
// arguments, and whether the claim of a pvc:// repository is mounted read-only.
func (rj repoJob) spec(r *repository.Repository, name string, args []string, readOnly bool) *batchv1.Job {
	labels := map[string]string{api.LabelManagedBy: api.ManagedByValue, api.LabelRepository: r.Name}
	// Object stores: any user does; the image's is non-root.
	pod := &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	if r.Claim != "" {
		// A repository on a claim is written by the backup host pods as uid 0 (with every
		// capability dropped, DAC_READ_SEARCH aside): what is created here must be theirs
		// to write into, and what they wrote readable here.
		pod = nil
		sc.RunAsUser = ptr.To[int64](0)
		sc.Capabilities.Add = []corev1.Capability{"DAC_READ_SEARCH"}
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "stash-" + name + "-" + utilrand.String(5), Namespace: rj.namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			ActiveDeadlineSeconds:   ptr.To(int64(rj.timeout / time.Second)),
			TTLSecondsAfterFinished: ptr.To[int32](600), // in case this process dies before it deletes the Job
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: ptr.To(false),
					SecurityContext:              pod,
					Containers: []corev1.Container{{
						Name:                     name,
						Image:                    rj.image,
						Args:                     args,
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						SecurityContext:          sc,
					}},
				},
			},
		},
	}
	if *job.Spec.ActiveDeadlineSeconds < 1 {
		job.Spec.ActiveDeadlineSeconds = ptr.To[int64](1)
	}
	spec := &job.Spec.Template.Spec
	r.PodAccess(readOnly).ApplyTo(spec, &spec.Containers[0])
	if r.Claim == "" {
		// args say $(STASH_REPOSITORY): name it in env too, where $(VAR) expansion surely
		// looks (for pvc://, PodAccess sets it to the mounted claim's file:// URL).
		c := &spec.Containers[0]
		c.Env = append(c.Env, corev1.EnvVar{Name: api.SecretKeyRepository, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: r.Name}, Key: api.SecretKeyRepository}}})
	}
	return job
}

// run creates the Job, waits for it to end and reads its log; the Job is deleted
// (background propagation, its pod with it) whatever happens.
func (rj repoJob) run(ctx context.Context, r *repository.Repository, name string, args []string, readOnly bool) (repoJobResult, error) {
	jobs := rj.client.BatchV1().Jobs(rj.namespace)
	job, err := jobs.Create(ctx, rj.spec(r, name, args, readOnly), metav1.CreateOptions{})
	if err != nil {
		return repoJobResult{}, fmt.Errorf("create a Job in namespace %q: %w", rj.namespace, err)
	}
	res := repoJobResult{Name: job.Name}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err := jobs.Delete(dctx, res.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
		if err != nil {
			fmt.Fprintf(rj.errOut, "Warning: could not delete job/%s (kubectl delete job %s -n %s): %v\n", res.Name, res.Name, rj.namespace, err)
		}
	}()

	var done *batchv1.Job
	var stuck error
	err = wait.PollUntilContextTimeout(ctx, rj.poll, rj.timeout, true, func(ctx context.Context) (bool, error) {
		j, err := jobs.Get(ctx, res.Name, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("read job/%s: %w", res.Name, err)
		}
		for _, c := range j.Status.Conditions {
			if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) {
				done = j
				return true, nil
			}
		}
		if stuck = rj.podStuck(ctx, res.Name); stuck != nil {
			return false, stuck
		}
		return false, nil
	})
	if stuck != nil {
		return res, fmt.Errorf("job/%s cannot run: %w", res.Name, stuck)
	}
	if err != nil {
		if wait.Interrupted(err) {
			return res, fmt.Errorf("job/%s did not finish within %s%s", res.Name, rj.timeout, rj.podSummary(ctx, res.Name))
		}
		return res, err
	}
	for _, c := range done.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			res.Succeeded = true
		}
	}
	pod, err := rj.lastPod(ctx, res.Name)
	if err != nil {
		return res, err
	}
	res.Log, err = rj.readLog(ctx, pod, name)
	return res, err
}

// pods lists the pods of a Job, oldest first.
func (rj repoJob) pods(ctx context.Context, job string) ([]corev1.Pod, error) {
	l, err := rj.client.CoreV1().Pods(rj.namespace).List(ctx, metav1.ListOptions{LabelSelector: api.JobNameLabel + "=" + job})
	if err != nil {
		return nil, err
	}
	pods := l.Items
	sort.Slice(pods, func(i, j int) bool { return pods[i].CreationTimestamp.Before(&pods[j].CreationTimestamp) })
	return pods, nil
}

func (rj repoJob) lastPod(ctx context.Context, job string) (string, error) {
	pods, err := rj.pods(ctx, job)
	if err != nil {
		return "", fmt.Errorf("find the pod of job/%s: %w", job, err)
	}
	if len(pods) == 0 {
		return "", fmt.Errorf("job/%s finished without a pod to read the log of", job)
	}
	return pods[len(pods)-1].Name, nil
}

func (rj repoJob) readLog(ctx context.Context, pod, container string) ([]byte, error) {
	rc, err := rj.logs(ctx, rj.client, rj.namespace, pod, container)
	if err != nil {
		return nil, fmt.Errorf("read the log of pod/%s: %w", pod, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("read the log of pod/%s: %w", pod, err)
	}
	return b, nil
}

// podStuck reports a pod of the Job that will not start without help (image, config).
func (rj repoJob) podStuck(ctx context.Context, job string) error {
	pods, err := rj.pods(ctx, job)
	if err != nil {
		return nil // the Job's own state decides
	}
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				switch w.Reason {
				case "ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError":
					hint := ""
					if strings.Contains(w.Reason, "Image") {
						hint = " (give the job image with --image)"
					}
					return fmt.Errorf("pod/%s: %s: %s%s", p.Name, w.Reason, w.Message, hint)
				}
			}
		}
	}
	return nil
}

// podSummary describes where the Job's pod is, for a timeout message.
func (rj repoJob) podSummary(ctx context.Context, job string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	pods, err := rj.pods(ctx, job)
	if err != nil || len(pods) == 0 {
		return ": it has no pod yet (kubectl describe job " + job + " -n " + rj.namespace + ")"
	}
	p := pods[len(pods)-1]
	s := fmt.Sprintf(": pod/%s is %s", p.Name, p.Status.Phase)
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			s += fmt.Sprintf(", not scheduled: %s", c.Message)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			s += fmt.Sprintf(", waiting: %s %s", w.Reason, w.Message)
		}
	}
	return s
}

// listViaJob runs `stash-job snapshots -o json` in a Job and reads the list from its log.
func (o *SnapshotsOptions) listViaJob(ctx context.Context, r *repository.Repository) ([]repository.Snapshot, error) {
	rj := repoJob{client: o.client, namespace: o.namespace, image: o.Global.JobImage(), timeout: o.Timeout,
		poll: o.pollInterval, logs: o.podLogs, errOut: o.ErrOut}
	// The entrypoint is stash-job. --repo takes STASH_REPOSITORY from the pod's environment
	// (the Secret, through envFrom; for pvc:// the file:// URL of the mounted claim), by
	// Kubernetes' $(VAR) expansion of args.
	args := []string{"snapshots", "-o", "json", "--repo", "$(" + api.SecretKeyRepository + ")"}
	if o.Host != "" {
		args = append(args, "--host", o.Host)
	}
	res, err := rj.run(ctx, r, snapshotsContainer, args, true)
	if err != nil {
		return nil, err
	}
	if !res.Succeeded {
		return nil, fmt.Errorf("job/%s failed; the end of its log:\n%s", res.Name, logTail(res.Log, 20))
	}
	list, err := repository.ParseSnapshotsJSON(res.Log)
	if err != nil {
		return nil, fmt.Errorf("job/%s: %w; the end of its log:\n%s", res.Name, err, logTail(res.Log, 20))
	}
	return list, nil
}

func logTail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(bytes.ToValidUTF8(b, []byte("?"))), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
