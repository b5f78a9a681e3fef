package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"strings"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/maintenance"
	"github.com/kubectl-stash/kubectl-stash/plugin/jobs"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

// ConfigActionOptions are the flags of `kubectl stash pause|resume|delete CONFIG`.
type ConfigActionOptions struct {
	global *GlobalOptions
	action string // pause, resume or delete

	Config   string
	WipeData bool
	Yes      bool

	namespace string
	newClient clientsetFunc
	client    kubernetes.Interface

	genericiooptions.IOStreams
}

// NewCmdPause returns `kubectl stash pause`.
func NewCmdPause(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &ConfigActionOptions{global: g, action: "pause", IOStreams: streams}
	return o.command(&cobra.Command{
		Use:   "pause CONFIG",
		Short: "Pause a backup configuration's schedule (its CronJob is suspended); triggers still run",
		Example: `  # No scheduled sessions until resumed; kubectl stash trigger still starts one
  kubectl stash pause shop-backup
  kubectl stash get bc shop-backup`,
	})
}

// NewCmdResume returns `kubectl stash resume`.
func NewCmdResume(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &ConfigActionOptions{global: g, action: "resume", IOStreams: streams}
	return o.command(&cobra.Command{
		Use:     "resume CONFIG",
		Short:   "Resume a paused backup configuration's schedule",
		Example: `  kubectl stash resume shop-backup`,
	})
}

// NewCmdDelete returns `kubectl stash delete`.
func NewCmdDelete(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &ConfigActionOptions{global: g, action: "delete", IOStreams: streams}
	cmd := o.command(&cobra.Command{
		Use:   "delete CONFIG [--wipe-data]",
		Short: "Delete a backup configuration: its CronJob, sessions, ServiceAccount, Role and RoleBinding; the snapshots stay",
		Long: `Delete what kubectl stash backup created for a configuration: the CronJob (with its
session and host Jobs), and the ServiceAccount, Role and RoleBinding made for it. The
repository and its snapshots stay: restore and download still work.

--wipe-data also removes the snapshots this configuration made (tag config=CONFIG) from
the repository and prunes the data no other snapshot uses. It asks for confirmation
(--yes skips the question) and needs the repository readable from this machine.`,
		Example: `  kubectl stash delete shop-backup
  kubectl stash delete shop-backup --wipe-data --yes`,
	})
	cmd.Flags().BoolVar(&o.WipeData, "wipe-data", false, "also remove this configuration's snapshots and prune their data")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation of --wipe-data")
	return cmd
}

func (o *ConfigActionOptions) command(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ExactArgs(1)
	cmd.ValidArgsFunction = onlyFirstArg(o.global.complete(completeConfigs))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
	return cmd
}

// Complete reads the configuration name, namespace and client.
func (o *ConfigActionOptions) Complete(args []string) error {
	o.Config = args[0]
	if o.newClient == nil {
		o.newClient = clientsetFromFlags(o.global)
	}
	return completeClient(o.global, o.newClient, &o.namespace, &o.client)
}

// Validate checks the flags.
func (o *ConfigActionOptions) Validate() error {
	if o.Yes && !o.WipeData {
		return fmt.Errorf("--yes confirms --wipe-data: give both, or neither")
	}
	return nil
}

// Run pauses, resumes or deletes.
func (o *ConfigActionOptions) Run(ctx context.Context) error {
	cjs := o.client.BatchV1().CronJobs(o.namespace)
	cj, err := cjs.Get(ctx, o.Config, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("backup configuration %q not found in namespace %s: see kubectl stash get backupconfigurations", o.Config, o.namespace)
	}
	if err != nil {
		return fmt.Errorf("backup configuration %q: %w", o.Config, err)
	}
	var cfg api.BackupConfig
	if cj.Labels[api.LabelBackupConfiguration] == "" || api.Decode(api.AnnotationConfig, cj.Annotations[api.AnnotationConfig], &cfg) != nil {
		return fmt.Errorf("cronjob %s/%s is not a backup configuration (no %s label or configuration)", o.namespace, o.Config, api.LabelBackupConfiguration)
	}
	switch o.action {
	case "pause", "resume":
		if cfg.Schedule == "" {
			again := cfg.Target.String()
			if cfg.IsBatch() {
				again = "--batch " + cfg.Name + " --member …"
			}
			return fmt.Errorf("backup configuration %s has no schedule: it runs only when triggered, there is nothing to %s (give it one with kubectl stash backup %s --schedule CRON)", o.Config, o.action, again)
		}
		suspend := o.action == "pause"
		if cj.Spec.Suspend != nil && *cj.Spec.Suspend == suspend {
			fmt.Fprintf(o.Out, "backup configuration %s is already %sd\n", o.Config, o.action)
			return nil
		}
		patch := fmt.Sprintf(`{"spec":{"suspend":%t}}`, suspend)
		if _, err := cjs.Patch(ctx, o.Config, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: jobs.FieldManager}); err != nil {
			return fmt.Errorf("%s backup configuration %s: %w", o.action, o.Config, err)
		}
		if suspend {
			fmt.Fprintf(o.Out, "backup configuration %s paused: no scheduled session until kubectl stash resume %s (kubectl stash trigger still runs one)\n", o.Config, o.Config)
		} else {
			fmt.Fprintf(o.Out, "backup configuration %s resumed: schedule %q\n", o.Config, cfg.Schedule)
		}
		return nil
	}
	// delete
	if o.WipeData {
		if !o.Yes && !o.confirm(fmt.Sprintf("Remove every snapshot backup configuration %s made from repository %s, and prune? Type the configuration's name to confirm: ", o.Config, cfg.Repository), o.Config) {
			return fmt.Errorf("not confirmed: nothing was deleted")
		}
		if err := o.wipe(ctx, cfg); err != nil {
			return fmt.Errorf("nothing was deleted from the cluster: %w", err)
		}
	}
	background := metav1.DeletePropagationBackground
	if err := cjs.Delete(ctx, o.Config, metav1.DeleteOptions{PropagationPolicy: &background}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete cronjob %s: %w", o.Config, err)
	}
	fmt.Fprintf(o.Out, "cronjob.batch/%s deleted (with its sessions)\n", o.Config)
	sa := jobs.ServiceAccountName(o.Config)
	sel := metav1.ListOptions{LabelSelector: fmt.Sprintf("%s=%s", api.LabelBackupConfiguration, o.Config)}
	if list, err := o.client.RbacV1().RoleBindings(o.namespace).List(ctx, sel); err == nil {
		for _, x := range list.Items {
			if err := o.client.RbacV1().RoleBindings(o.namespace).Delete(ctx, x.Name, metav1.DeleteOptions{}); err == nil {
				fmt.Fprintf(o.Out, "rolebinding.rbac.authorization.k8s.io/%s deleted\n", x.Name)
			}
		}
	}
	if list, err := o.client.RbacV1().Roles(o.namespace).List(ctx, sel); err == nil {
		for _, x := range list.Items {
			if err := o.client.RbacV1().Roles(o.namespace).Delete(ctx, x.Name, metav1.DeleteOptions{}); err == nil {
				fmt.Fprintf(o.Out, "role.rbac.authorization.k8s.io/%s deleted\n", x.Name)
			}
		}
	}
	if list, err := o.client.CoreV1().ServiceAccounts(o.namespace).List(ctx, sel); err == nil {
		for _, x := range list.Items {
			if x.Name != sa {
				continue // a --service-account of the user's is theirs
			}
			if err := o.client.CoreV1().ServiceAccounts(o.namespace).Delete(ctx, x.Name, metav1.DeleteOptions{}); err == nil {
				fmt.Fprintf(o.Out, "serviceaccount/%s deleted\n", x.Name)
			}
		}
	}
	if !o.WipeData {
		fmt.Fprintf(o.Out, "the snapshots stay in repository %s: kubectl stash snapshots --repo %s\n", cfg.Repository, cfg.Repository)
	}
	return nil
}

func (o *ConfigActionOptions) confirm(question, answer string) bool {
	fmt.Fprint(o.ErrOut, question)
	line, err := bufio.NewReader(o.In).ReadString('\n')
	return err == nil && strings.TrimSpace(line) == answer
}

// wipe removes the configuration's snapshots and prunes, with the engine on this machine.
func (o *ConfigActionOptions) wipe(ctx context.Context, cfg api.BackupConfig) error {
	r, err := repository.Get(ctx, o.client, o.namespace, cfg.Repository)
	if err != nil {
		return err
	}
	rp, closeFn, err := r.Open(ctx)
	if errors.Is(err, repository.ErrInCluster) {
		return fmt.Errorf("--wipe-data: %w; remove the snapshots with stash-job forget in a pod that mounts it", err)
	}
	if err != nil {
		return err
	}
	defer closeFn()
	if err := rp.LoadIndex(ctx); err != nil {
		return err
	}
	lock, err := rp.Lock(ctx, true)
	if err != nil {
		return fmt.Errorf("repository %s: %w (a session may be running: wait for it)", r.Name, err)
	}
	all, err := rp.Snapshots(ctx)
	if err != nil {
		lock.Release(context.WithoutCancel(ctx))
		return err
	}
	removed := 0
	for _, sn := range all {
		for _, t := range sn.Tags {
			if t == api.TagConfig+o.Config {
				if err := rp.RemoveSnapshot(ctx, sn.ID); err != nil {
					lock.Release(context.WithoutCancel(ctx))
					return err
				}
				removed++
				break
			}
		}
	}
	lock.Release(context.WithoutCancel(ctx))
	fmt.Fprintf(o.Out, "removed %d snapshot(s) of %s from repository %s\n", removed, o.Config, r.Name)
	stats, err := maintenance.Prune(ctx, rp, maintenance.PruneOptions{})
	if err != nil {
		return fmt.Errorf("prune: %w (the snapshots are removed; run stash-job prune later)", err)
	}
	fmt.Fprintf(o.Out, "pruned: %s reclaimed, %d packs deleted\n", api.FormatBytes(stats.BytesReclaimed), stats.PacksDeleted)
	return nil
}

// CancelOptions are the flags of `kubectl stash cancel SESSION`.
type CancelOptions struct {
	global  *GlobalOptions
	Session string

	namespace string
	newClient clientsetFunc
	client    kubernetes.Interface

	genericiooptions.IOStreams
}

// NewCmdCancel returns `kubectl stash cancel`.
func NewCmdCancel(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &CancelOptions{global: g, IOStreams: streams}
	return &cobra.Command{
		Use:   "cancel SESSION",
		Short: "Stop a running backup or restore session cleanly",
		Long: `Stop a running backup or restore session: its Job is suspended, so Kubernetes stops
its pod, which stops its host Jobs the same way; each host records Failed with the
reason "canceled", releases its repository lock, and leaves the repository sound (what a
backup uploaded so far is kept for the next one; a snapshot is only written at the end).
A restore session scaled down with --scale-down scales its workload back up.`,
		Example: `  kubectl stash cancel shop-backup-2do7af
  kubectl stash cancel shop-restore-x7k2pq`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: onlyFirstArg(g.complete(completeSessions)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Session = args[0]
			if o.newClient == nil {
				o.newClient = clientsetFromFlags(o.global)
			}
			if err := completeClient(o.global, o.newClient, &o.namespace, &o.client); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
}

// Run suspends the session Job after recording who canceled it.
func (o *CancelOptions) Run(ctx context.Context) error {
	jobsAPI := o.client.BatchV1().Jobs(o.namespace)
	j, err := jobsAPI.Get(ctx, o.Session, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("session %q not found in namespace %s: see kubectl stash get bs, or get restore", o.Session, o.namespace)
	}
	if err != nil {
		return err
	}
	switch j.Labels[api.LabelComponent] {
	case api.ComponentSession, api.ComponentRestoreSession, api.ComponentVerifySession:
	default:
		return fmt.Errorf("job %s/%s is not a backup, restore or verification session", o.namespace, o.Session)
	}
	if sessionEnded(j) {
		return fmt.Errorf("session %s has ended already: nothing to cancel", o.Session)
	}
	who := "kubectl stash cancel"
	if u, err := user.Current(); err == nil {
		who += " by " + u.Username
	}
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{api.AnnotationCanceledBy: who}},
		"spec":     map[string]any{"suspend": true},
	})
	if _, err := jobsAPI.Patch(ctx, o.Session, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: jobs.FieldManager}); err != nil {
		return fmt.Errorf("cancel session %s: %w", o.Session, err)
	}
	fmt.Fprintf(o.Out, "session %s canceled: its pod stops its hosts and records them Failed (canceled); see kubectl stash watch %s\n", o.Session, o.Session)
	return nil
}

func sessionEnded(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == "True" {
			return true
		}
	}
	var st api.SessionStatus
	if raw, ok := j.Annotations[api.AnnotationSessionStatus]; ok && api.Decode(api.AnnotationSessionStatus, raw, &st) == nil {
		return st.Phase.Final()
	}
	return false
}
