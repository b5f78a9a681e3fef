package cmd

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-stash/kubectl-stash/internal/version"
)

// VersionOptions are the options of `kubectl stash version`.
type VersionOptions struct {
	Global *GlobalOptions
	Output string

	info version.Info
	genericiooptions.IOStreams
}

// NewVersionOptions returns options with defaults.
func NewVersionOptions(g *GlobalOptions, streams genericiooptions.IOStreams) *VersionOptions {
	return &VersionOptions{Global: g, IOStreams: streams}
}

// NewCmdVersion returns `kubectl stash version`.
func NewCmdVersion(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewVersionOptions(g, streams)
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the plugin version, its git commit and the job image it runs",
		Example: `  # Human-readable
  kubectl stash version

  # For scripts
  kubectl stash version -o json

  # The image a --image override would run instead
  kubectl stash version --image registry.example.com/stash-job:v1.2.3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run()
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "output format: json or yaml (default: text)")
	return cmd
}

// Complete fills in the build facts and the effective job image.
func (o *VersionOptions) Complete() error {
	o.info = version.Get()
	if o.Global.Image != "" {
		o.info.JobImage = o.Global.Image
	}
	return nil
}

// Validate checks the output format.
func (o *VersionOptions) Validate() error {
	switch o.Output {
	case "", "json", "yaml":
		return nil
	default:
		return fmt.Errorf("--output %q is not supported: use json or yaml, or omit it for text", o.Output)
	}
}

// Run prints the version.
func (o *VersionOptions) Run() error {
	switch o.Output {
	case "":
		_, err := fmt.Fprint(o.Out, o.info.String())
		return err
	case "json", "yaml":
		return writeDoc(o.Out, o.info, o.Output)
	default:
		return fmt.Errorf("unsupported output %q", o.Output)
	}
}
