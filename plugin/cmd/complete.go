package cmd

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// Shell completion asks the cluster, like kubectl's own: names of workloads, configurations,
// sessions and repositories in the namespace the command line selects. A cluster that does
// not answer within a few seconds completes nothing rather than hanging the shell.

type completer func(ctx context.Context, c kubernetes.Interface, ns, toComplete string) []string

func (g *GlobalOptions) complete(fn completer) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		var ns string
		var c kubernetes.Interface
		if err := completeClient(g, clientsetFromFlags(g), &ns, &c); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return fn(ctx, c, ns, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// onlyFirstArg limits a completion to the first positional argument.
func onlyFirstArg(f func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective)) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f(cmd, args, toComplete)
	}
}

var canonicalKinds = []string{"deployment", "statefulset", "daemonset", "replicaset", "replicationcontroller", "pvc"}

// completeTargets completes KIND/ first, then the objects of that kind.
func completeTargets(ctx context.Context, c kubernetes.Interface, ns, toComplete string) []string {
	kind, _, found := strings.Cut(toComplete, "/")
	if !found {
		out := make([]string, 0, len(canonicalKinds))
		for _, k := range canonicalKinds {
			out = append(out, k+"/")
		}
		return out
	}
	var names []string
	lo := metav1.ListOptions{}
	switch targetKinds[strings.ToLower(kind)] {
	case "deployment":
		names = namesOf(c.AppsV1().Deployments(ns).List(ctx, lo))
	case "statefulset":
		names = namesOf(c.AppsV1().StatefulSets(ns).List(ctx, lo))
	case "daemonset":
		names = namesOf(c.AppsV1().DaemonSets(ns).List(ctx, lo))
	case "replicaset":
		names = namesOf(c.AppsV1().ReplicaSets(ns).List(ctx, lo))
	case "replicationcontroller":
		names = namesOf(c.CoreV1().ReplicationControllers(ns).List(ctx, lo))
	case "pvc":
		names = namesOf(c.CoreV1().PersistentVolumeClaims(ns).List(ctx, lo))
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, kind+"/"+n)
	}
	return out
}

func completeConfigs(ctx context.Context, c kubernetes.Interface, ns, _ string) []string {
	return namesOf(c.BatchV1().CronJobs(ns).List(ctx, metav1.ListOptions{LabelSelector: api.LabelBackupConfiguration}))
}

func completeSessions(ctx context.Context, c kubernetes.Interface, ns, _ string) []string {
	return namesOf(c.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: api.LabelComponent + "=" + api.ComponentSession}))
}

func completeRestoreSessions(ctx context.Context, c kubernetes.Interface, ns, _ string) []string {
	return namesOf(c.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: api.LabelComponent + "=" + api.ComponentRestoreSession}))
}

func completeRepositories(ctx context.Context, c kubernetes.Interface, ns, _ string) []string {
	return namesOf(c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: api.LabelRepository}))
}

// nameCompleter completes the names of a resource of get and describe (any of its
// names: restoresessions, restore…); nil for a resource it does not know.
func nameCompleter(resource string) completer {
	switch getResources[strings.ToLower(resource)] {
	case "bc":
		return completeConfigs
	case "bs":
		return completeSessions
	case "restore":
		return completeRestoreSessions
	}
	return nil
}

// completeGet completes `get RESOURCE [NAME]`.
func (g *GlobalOptions) completeGet(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return []string{"backupconfigurations", "backupsessions", "restoresessions", "bc", "bs", "restore"}, cobra.ShellCompDirectiveNoFileComp
	case 1:
		if fn := nameCompleter(args[0]); fn != nil {
			return g.complete(fn)(cmd, args, toComplete)
		}
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// completeDescribe completes `describe RESOURCE NAME`: sessions only.
func (g *GlobalOptions) completeDescribe(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return []string{"backupsession", "restoresession", "bs", "restore"}, cobra.ShellCompDirectiveNoFileComp
	case 1:
		if fn := nameCompleter(args[0]); fn != nil && getResources[strings.ToLower(args[0])] != "bc" {
			return g.complete(fn)(cmd, args, toComplete)
		}
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// namesOf returns the names of a List call's items; nothing when the call failed.
func namesOf(list metav1.ListInterface, err error) []string {
	if err != nil {
		return nil
	}
	items, err := meta.ExtractList(list.(runtime.Object))
	if err != nil {
		return nil
	}
	var out []string
	for _, it := range items {
		if o, ok := it.(metav1.Object); ok {
			out = append(out, o.GetName())
		}
	}
	return out
}
