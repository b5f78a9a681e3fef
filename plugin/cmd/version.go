package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/version"
)

// versionCheckTimeout bounds the look at the cluster, so that `version` answers at once
// even when the cluster does not.
const versionCheckTimeout = 5 * time.Second

// VersionOptions are the options of `kubectl stash version`.
type VersionOptions struct {
	Global *GlobalOptions
	Output string
	// Client prints this binary's facts only, without looking at the cluster.
	Client bool

	info      version.Info
	newClient clientsetFunc
	namespace string
	client    kubernetes.Interface // nil: no cluster configured, nothing to check
	clientErr error                // the cluster is configured but no client could be built
	genericiooptions.IOStreams
}

// NewVersionOptions returns options with defaults.
func NewVersionOptions(g *GlobalOptions, streams genericiooptions.IOStreams) *VersionOptions {
	return &VersionOptions{Global: g, IOStreams: streams, newClient: clientsetFromFlags(g)}
}

// NewCmdVersion returns `kubectl stash version`.
func NewCmdVersion(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdVersion(NewVersionOptions(g, streams))
}

func newCmdVersion(o *VersionOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the plugin version, its git commit and the job image it runs",
		Long: `Print the plugin version, its git commit and the job image it runs: by default the
image of the plugin's own version, so that upgrading the plugin never silently keeps
running an older job image; --image overrides it.

It also looks at the backup configurations of the namespace and warns (on stderr) about
each one whose job image is of another version, as after an upgrade of the plugin: run
kubectl stash backup for it again to move it to this version. --client skips that look.`,
		Example: `  # Human-readable, with a warning per backup configuration on another job image
  kubectl stash version

  # This binary only, without asking the cluster
  kubectl stash version --client

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
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "output format: json or yaml (default: text)")
	cmd.Flags().BoolVar(&o.Client, "client", false, "print this binary's version only: do not look at the backup configurations in the cluster")
	return cmd
}

// Complete fills in the build facts, the effective job image and, unless --client, the
// client of the cluster. No kubeconfig at all is no error: there is nothing to check.
func (o *VersionOptions) Complete() error {
	o.info = version.Get()
	o.info.JobImage = o.Global.JobImage()
	if o.Client || noClusterConfigured(o.Global) {
		return nil
	}
	if err := completeClient(o.Global, o.newClient, &o.namespace, &o.client); err != nil {
		o.client = nil
		if !clientcmd.IsEmptyConfig(err) {
			o.clientErr = err
		}
	}
	return nil
}

// noClusterConfigured reports that no kubeconfig names a cluster, no --server is given and
// this is not a pod: the client would only try localhost:8080, so there is no cluster to ask.
func noClusterConfigured(g *GlobalOptions) bool {
	if f := g.ConfigFlags; f.APIServer != nil && *f.APIServer != "" {
		return false
	}
	if _, inPod := os.LookupEnv("KUBERNETES_SERVICE_HOST"); inPod {
		return false
	}
	raw, err := g.ConfigFlags.ToRawKubeConfigLoader().RawConfig()
	return err == nil && clientcmdapi.IsConfigEmpty(&raw)
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

// Run prints the version, then warns about the backup configurations of the namespace that
// run a job image of another version.
func (o *VersionOptions) Run(ctx context.Context) error {
	var err error
	switch o.Output {
	case "":
		_, err = fmt.Fprint(o.Out, o.info.String())
	case "json", "yaml":
		err = writeDoc(o.Out, o.info, o.Output)
	default:
		return fmt.Errorf("unsupported output %q", o.Output)
	}
	if err != nil || o.Client {
		return err
	}
	o.warnOtherImages(ctx)
	return nil
}

// warnOtherImages writes one warning per backup configuration whose job image is of
// another version. A cluster that cannot be asked is a warning too, never an error:
// the version of this binary is printed already.
func (o *VersionOptions) warnOtherImages(ctx context.Context) {
	if o.clientErr != nil {
		fmt.Fprintf(o.ErrOut, "Warning: the job images of the backup configurations were not checked: %v\n", o.clientErr)
		return
	}
	if o.client == nil {
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, versionCheckTimeout)
	defer cancel()
	l, err := o.client.BatchV1().CronJobs(o.namespace).List(ctx, metav1.ListOptions{LabelSelector: api.LabelBackupConfiguration})
	if err != nil {
		fmt.Fprintf(o.ErrOut, "Warning: the job images of the backup configurations in namespace %s were not checked: %v\n", o.namespace, err)
		return
	}
	cjs := l.Items
	sort.Slice(cjs, func(i, j int) bool { return cjs[i].Name < cjs[j].Name })
	for _, cj := range cjs {
		if image := configImage(cj); otherImageVersion(image, o.info.JobImage) {
			fmt.Fprintf(o.ErrOut, "Warning: %s\n", otherImageMessage(cj.Namespace+"/"+cj.Name, image, o.info.JobImage))
		}
	}
}

// configImage is the job image a backup configuration (its CronJob) runs, as its
// configuration annotation records it, whatever the annotation's schema version (a newer
// plugin's configuration runs a newer image); "" when the annotation cannot be read.
func configImage(cj batchv1.CronJob) string {
	var cfg struct {
		Image string `json:"image"`
	}
	if err := json.Unmarshal([]byte(cj.Annotations[api.AnnotationConfig]), &cfg); err != nil {
		return ""
	}
	return cfg.Image
}

// otherImageVersion reports whether a configuration's job image is of another version than
// the image this plugin runs: their tags (or digests) differ. The same version from
// another registry, a mirror, is not another version; an unknown image ("") is not either.
func otherImageVersion(image, want string) bool {
	return image != "" && imageVersion(image) != imageVersion(want)
}

// imageVersion is the digest of an image reference when it has one, else its tag, else
// "latest" (what a registry serves for a reference without either).
func imageVersion(ref string) string {
	if _, digest, ok := strings.Cut(ref, "@"); ok {
		return digest
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return "latest"
}

// otherImageMessage says what runs and what to do about it.
func otherImageMessage(config, image, want string) string {
	return fmt.Sprintf("backup configuration %s runs job image %s, not %s like this plugin: run kubectl stash backup for it again to move it to this version",
		config, image, imageVersion(want))
}
