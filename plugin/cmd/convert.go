package cmd

import (
	"context"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/manifest"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

// ManifestFlags are -f and --ignore-unsupported, of every verb that reads Stash and
// KubeStash manifests instead of flags.
type ManifestFlags struct {
	Filename          string
	IgnoreUnsupported bool
}

func (m *ManifestFlags) addFlags(f *pflag.FlagSet, what string) {
	usage := "FILE, DIR or - (stdin): Stash or KubeStash manifests of " + what + ", instead of flags (several documents, Secrets and Repositories they name included)"
	if what == "" {
		usage = "FILE, DIR or - (stdin): the Stash or KubeStash manifests to convert (several documents, the Secrets they name included)"
	}
	f.StringVarP(&m.Filename, "filename", "f", "", usage)
	f.BoolVar(&m.IgnoreUnsupported, "ignore-unsupported", false, "with -f: warn about fields kubectl-stash cannot honour and go on without them, instead of refusing")
}

// read parses the manifests of -f and prints the warnings --ignore-unsupported lets
// through. The namespace is the manifests' when they name one (-n must then agree), else
// the kubeconfig's.
func (m *ManifestFlags) read(g *GlobalOptions, in io.Reader, errOut io.Writer) (*manifest.Set, string, error) {
	srcs, err := manifest.Read(m.Filename, in)
	if err != nil {
		return nil, "", err
	}
	set, err := manifest.Parse(srcs, manifest.Options{IgnoreUnsupported: m.IgnoreUnsupported})
	if err != nil {
		return nil, "", fmt.Errorf("nothing was created: %w", err)
	}
	for _, w := range set.Warnings {
		fmt.Fprintln(errOut, "Warning: "+w)
	}
	ns, explicit, err := g.ConfigFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	if set.Namespace != "" {
		if explicit && ns != set.Namespace {
			return nil, "", fmt.Errorf("the manifests are in namespace %s, and -n says %s: give -n %s, or leave -n out", set.Namespace, ns, set.Namespace)
		}
		ns = set.Namespace
	}
	return set, ns, nil
}

// onlyWith refuses, with -f, the flags the manifests replace: every flag of cmd but
// those named.
func onlyWith(cmd *cobra.Command, allowed ...string) error {
	ok := map[string]bool{"filename": true, "ignore-unsupported": true}
	for _, a := range allowed {
		ok[a] = true
	}
	var bad []string
	local := cmd.LocalNonPersistentFlags()
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if local.Lookup(f.Name) != nil && !ok[f.Name] {
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%s with -f: the manifests say what the flags would; give one or the other", strings.Join(bad, ", "))
	}
	return nil
}

// foreign deals with what the manifests hold that verb does not do: an error, or with
// --ignore-unsupported a warning.
func (m *ManifestFlags) foreign(set *manifest.Set, verb string, errOut io.Writer) error {
	var what []string
	add := func(o manifest.Origin, name, by string) {
		if by == verb {
			return
		}
		what = append(what, fmt.Sprintf("%s %s (%s:%d) is for kubectl stash %s -f", o.Kind, name, o.File, o.Line, by))
	}
	if verb != "restore" { // a restore takes its snapshots' configuration from them
		for _, b := range set.Backups {
			add(b.Origin, b.Config.Name, "backup")
		}
	}
	for _, r := range set.Restores {
		add(r.Origin, r.Config.Name, "restore")
	}
	for _, t := range set.Triggers {
		add(t.Origin, t.Config, "trigger")
	}
	for _, v := range set.Verifications {
		add(v.Origin, v.Config.Name, "verify")
	}
	if len(what) == 0 {
		return nil
	}
	if !m.IgnoreUnsupported {
		return fmt.Errorf("nothing was created: %s (--ignore-unsupported: skip them)", strings.Join(what, "; "))
	}
	for _, w := range what {
		fmt.Fprintf(errOut, "Warning: skipped: %s\n", w)
	}
	return nil
}

// ConvertOptions are the flags of `kubectl stash convert`.
type ConvertOptions struct {
	ManifestFlags
	To string

	global *GlobalOptions
	set    *manifest.Set
	genericiooptions.IOStreams
}

// NewCmdConvert returns `kubectl stash convert`.
func NewCmdConvert(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &ConvertOptions{global: g, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "convert -f FILE|DIR|- --to kubestash|stash|flags",
		Short: "Convert Stash and KubeStash manifests into each other, or into the equivalent command line",
		Long: `Read Stash (stash.appscode.com) and KubeStash (core.kubestash.com, storage.kubestash.com)
manifests as kubectl stash backup, restore and trigger -f do, and print them as KubeStash or
Stash manifests, or as the kubectl stash commands that make the same objects (a shell
script; files such as a claim template or a password are written by here-documents).

Nothing is dropped silently: a field kubectl-stash cannot honour is refused with its file,
line and field path, and so is what the output format cannot say (say, Stash's keepTags in
a KubeStash RetentionPolicy); --ignore-unsupported warns and goes on without them. Secrets
are printed with their values, as given.`,
		Example: `  # A Stash BackupConfiguration, its Repository and Secret, as KubeStash manifests
  kubectl stash convert -f stash.yaml --to kubestash

  # The command line that makes the same backup configuration
  kubectl stash convert -f stash.yaml --to flags

  # Every manifest of a directory, from stdin too
  cat backup/*.yaml | kubectl stash convert -f - --to kubestash`,
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
	o.ManifestFlags.addFlags(cmd.Flags(), "")
	cmd.Flags().StringVar(&o.To, "to", "", "kubestash, stash or flags (the kubectl stash command line)")
	_ = cmd.RegisterFlagCompletionFunc("to", cobra.FixedCompletions([]string{"kubestash", "stash", "flags"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete checks the flags and reads the manifests; it touches no cluster.
func (o *ConvertOptions) Complete() error {
	if o.Filename == "" {
		return fmt.Errorf("no manifests: give -f FILE, DIR or - (stdin)")
	}
	switch o.To {
	case manifest.FormatKubeStash, manifest.FormatStash, "flags":
	case "":
		return fmt.Errorf("--to is required: kubestash, stash or flags")
	default:
		return fmt.Errorf("--to %q: want kubestash, stash or flags", o.To)
	}
	srcs, err := manifest.Read(o.Filename, o.In)
	if err != nil {
		return err
	}
	o.set, err = manifest.Parse(srcs, manifest.Options{IgnoreUnsupported: o.IgnoreUnsupported})
	if err != nil {
		return err
	}
	for _, w := range o.set.Warnings {
		fmt.Fprintln(o.ErrOut, "Warning: "+w)
	}
	return nil
}

// Validate checks that the manifests hold something.
func (o *ConvertOptions) Validate() error {
	s := o.set
	if len(s.Repositories)+len(s.Backups)+len(s.Restores)+len(s.Triggers)+len(s.Verifications) == 0 {
		return fmt.Errorf("the manifests hold nothing to convert")
	}
	return nil
}

// Run prints the conversion.
func (o *ConvertOptions) Run() error {
	var out []byte
	var warnings []string
	var err error
	if o.To == "flags" {
		var script string
		script, warnings, err = manifest.RenderFlags(o.set, o.IgnoreUnsupported)
		out = []byte(script)
	} else {
		out, warnings, err = manifest.Render(o.set, o.To, o.IgnoreUnsupported)
	}
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintln(o.ErrOut, "Warning: left out: "+w)
	}
	_, err = o.Out.Write(out)
	return err
}

// validateRepositories checks the repositories the manifests define, as repo create
// checks its flags.
func validateRepositories(set *manifest.Set) error {
	for _, r := range set.Repositories {
		if err := validateSecretName(r.Name); err != nil {
			return fmt.Errorf("%s: %w", r.Origin, err)
		}
		if err := repository.ValidateURL(r.URL); err != nil {
			return fmt.Errorf("%s: repository %s: %w", r.Origin, r.Name, err)
		}
	}
	return nil
}

// ensureRepository makes sure the repository Secret of a manifest's repository exists and
// says what the manifest does: it is created (and, with initialize, the repository too,
// as Stash does before the first backup), left alone when it is the same, and refused
// when it differs or kubectl stash did not create it.
func ensureRepository(ctx context.Context, g *GlobalOptions, streams genericiooptions.IOStreams, info io.Writer, c kubernetes.Interface, ns string, r manifest.Repository, initialize, serverDryRun bool) error {
	s, err := c.CoreV1().Secrets(ns).Get(ctx, r.Name, metav1.GetOptions{})
	switch {
	case err == nil:
		if !repository.IsManaged(s) {
			return fmt.Errorf("%s: secret %q already exists in namespace %s and kubectl stash did not create it: rename the repository, or delete the secret (kubectl delete secret %s -n %s)", r.Origin, r.Name, ns, r.Name, ns)
		}
		have, err := repository.FromSecret(s)
		if err != nil {
			return fmt.Errorf("%s: %w", r.Origin, err)
		}
		var diff []string
		if have.URL != r.URL {
			diff = append(diff, fmt.Sprintf("its URL is %s, the manifests' %s", have.DisplayURL(), repository.DisplayURL(r.URL)))
		}
		if have.Password != r.Password {
			diff = append(diff, "its password differs")
		}
		if !maps.Equal(have.Env, r.Env) && !(len(have.Env) == 0 && len(r.Env) == 0) {
			diff = append(diff, "its credentials differ")
		}
		if len(diff) > 0 {
			return fmt.Errorf("%s: repository secret %q in namespace %s is not the manifests' repository: %s; nothing was changed: rename the repository, or replace the secret (kubectl stash repo create %s --overwrite)", r.Origin, r.Name, ns, strings.Join(diff, "; "), r.Name)
		}
		fmt.Fprintf(info, "secret/%s unchanged\n", r.Name)
		return nil
	case apierrors.IsNotFound(err):
	default:
		return fmt.Errorf("read secret %q in namespace %s: %w", r.Name, ns, err)
	}
	ro := NewRepoCreateOptions(g, streams)
	ro.Out = info
	ro.Name, ro.URL, ro.password, ro.env = r.Name, r.URL, r.Password, r.Env
	ro.namespace, ro.explicitNS, ro.client = ns, true, c
	ro.Init = initialize && !serverDryRun
	if serverDryRun {
		ro.DryRun = "server"
	}
	if ro.env == nil {
		ro.env = map[string]string{}
	}
	return ro.Run(ctx)
}

// printManifest prints a Set as a Stash or KubeStash manifest.
func printManifest(out, errOut io.Writer, set *manifest.Set, format string, ignoreUnsupported bool) error {
	b, warnings, err := manifest.Render(set, format, ignoreUnsupported)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintln(errOut, "Warning: left out: "+w)
	}
	_, err = out.Write(b)
	return err
}
