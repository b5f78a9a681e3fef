// Package cmd holds the plugin's verbs: one file each, every verb an XOptions with
// Complete / Validate / Run and a NewCmdX that binds its flags.
package cmd

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-stash/kubectl-stash/internal/version"
)

// GlobalOptions are shared by every verb: kubeconfig flags and the job image.
type GlobalOptions struct {
	ConfigFlags *genericclioptions.ConfigFlags
	// Image overrides the job image; empty means the image pinned to this plugin's version.
	Image string
	// newClient, when set (tests), replaces the client built from the kubeconfig flags.
	newClient clientsetFunc
}

// NewCmdStash returns the root command, `kubectl stash`.
func NewCmdStash(streams genericiooptions.IOStreams) *cobra.Command {
	g := &GlobalOptions{ConfigFlags: genericclioptions.NewConfigFlags(true)}
	root := &cobra.Command{
		Use:   "kubectl-stash",
		Short: "Back up and restore Kubernetes workload data, with nothing installed in the cluster",
		Long: `kubectl stash backs up and restores the volumes of Deployments, StatefulSets,
DaemonSets and PVCs into a deduplicated, compressed, encrypted repository in an object
store. It needs no operator and no CRDs: a backup configuration is a CronJob, a session is
a Job, and status lives in annotations on those Jobs.`,
		Example: `  # A repository, a backup configuration, a session now, and its result
  kubectl stash repo create s3-repo --url 's3://my-bucket/shop?region=eu-west-1' \
    --generate-password --from-env-file aws.env --init
  kubectl stash backup deployment/shop --repo s3-repo --paths /source/data --schedule "30 1 * * *"
  kubectl stash trigger shop-backup --wait
  kubectl stash get bs

  # Sessions live, in the terminal
  kubectl stash watch

  # Snapshots, read straight from the repository
  kubectl stash snapshots --repo s3-repo

  # Show the plugin version and the job image it runs
  kubectl stash version`,
		SilenceUsage:  true,
		SilenceErrors: false,
		Annotations: map[string]string{
			// Help and usage say "kubectl stash", as kubectl plugins should.
			cobra.CommandDisplayNameAnnotation: "kubectl stash",
		},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	g.ConfigFlags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVar(&g.Image, "image", "", "job image to run (default: the image pinned to this plugin's version)")

	root.AddCommand(NewCmdVersion(g, streams))
	root.AddCommand(NewCmdRepo(g, streams))
	root.AddCommand(NewCmdSnapshots(g, streams))
	root.AddCommand(NewCmdDownload(g, streams))
	root.AddCommand(NewCmdBackup(g, streams))
	root.AddCommand(NewCmdTrigger(g, streams))
	root.AddCommand(NewCmdRestore(g, streams))
	root.AddCommand(NewCmdConvert(g, streams))
	root.AddCommand(NewCmdVerify(g, streams))
	root.AddCommand(NewCmdPause(g, streams))
	root.AddCommand(NewCmdResume(g, streams))
	root.AddCommand(NewCmdCancel(g, streams))
	root.AddCommand(NewCmdDelete(g, streams))
	root.AddCommand(NewCmdForget(g, streams))
	root.AddCommand(NewCmdPrune(g, streams))
	root.AddCommand(NewCmdCheck(g, streams))
	root.AddCommand(NewCmdKey(g, streams))
	root.AddCommand(NewCmdUnlock(g, streams))
	root.AddCommand(NewCmdGet(g, streams))
	root.AddCommand(NewCmdDescribe(g, streams))
	root.AddCommand(NewCmdWatch(g, streams))
	// cobra's completion command, with examples of its own like every verb
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Example = `  # bash, for this shell
  source <(kubectl stash completion bash)

  # zsh, for every new shell
  kubectl stash completion zsh > "${fpath[1]}/_kubectl-stash"

  # through kubectl (kubectl stash <TAB>): a kubectl_complete-stash on your PATH
  printf '#!/bin/sh\nkubectl stash __complete "$@"\n' > ~/bin/kubectl_complete-stash && chmod +x ~/bin/kubectl_complete-stash`
			for _, shell := range c.Commands() {
				shell.Example = fmt.Sprintf("  kubectl stash completion %s > kubectl-stash.%s  # then load it as your shell does", shell.Name(), shell.Name())
			}
		}
	}
	return root
}

// JobImage is the image the jobs run: --image, else the one pinned to this plugin's version.
func (g *GlobalOptions) JobImage() string {
	if g.Image != "" {
		return g.Image
	}
	return version.DefaultImage()
}
