package cmd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/plugin/repository"
)

// clientsetFunc builds a verb's Kubernetes client in Complete; tests give a fake clientset.
type clientsetFunc func() (kubernetes.Interface, error)

// clientsetFromFlags builds the client from the kubeconfig flags, as kubectl does.
func clientsetFromFlags(g *GlobalOptions) clientsetFunc {
	if g.newClient != nil {
		return g.newClient
	}
	return func() (kubernetes.Interface, error) {
		cfg, err := g.ConfigFlags.ToRESTConfig()
		if err != nil {
			return nil, err
		}
		return kubernetes.NewForConfig(cfg)
	}
}

// NewCmdRepo returns `kubectl stash repo`, the parent of create, list and delete.
func NewCmdRepo(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "repo",
		Aliases: []string{"repository", "repositories", "repos"},
		Short:   "Create, list and delete repository Secrets",
		Long: `A repository is where backups go: a URL (s3://, gs://, azblob://, file://, or pvc://CLAIM/dir
for a repository on a PersistentVolumeClaim), a password that encrypts it, and the
credentials of the object store. All three live in one Secret in the namespace, which the
backup and restore Jobs read with envFrom.`,
		Example: `  # A repository in S3, with a generated password and the credentials in a file
  kubectl stash repo create shop-backups --url s3://my-bucket/shop?region=eu-west-1 \
    --generate-password --from-env-file aws.env --init

  # The repositories of the namespace
  kubectl stash repo list

  # Forget the repository Secret; the data in the bucket stays
  kubectl stash repo delete shop-backups`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newCmdRepoCreate(NewRepoCreateOptions(g, streams)),
		newCmdRepoList(NewRepoListOptions(g, streams)),
		newCmdRepoDelete(NewRepoDeleteOptions(g, streams)),
	)
	return cmd
}

// ---- create ----

// RepoCreateOptions are the options of `kubectl stash repo create`.
type RepoCreateOptions struct {
	Global *GlobalOptions

	Name             string
	URL              string
	PasswordFile     string
	GeneratePassword bool
	EnvFile          string
	Init             bool
	Overwrite        bool
	// DryRun is none, client (print, contact nothing) or server (the API server checks it).
	DryRun string
	Output string

	// newClient builds the client in Complete (tests: a fake clientset).
	newClient clientsetFunc
	// initOptions choose the parameters of a repository --init creates (tests: a cheap KDF).
	initOptions repo.InitOptions
	// jobTimeout, pollInterval and podLogs drive the Job that initializes a pvc:// repository.
	jobTimeout   time.Duration
	pollInterval time.Duration
	podLogs      repoJobLogFunc

	namespace  string
	explicitNS bool
	password   string
	env        map[string]string
	client     kubernetes.Interface
	genericiooptions.IOStreams
}

// NewRepoCreateOptions returns options with defaults.
func NewRepoCreateOptions(g *GlobalOptions, streams genericiooptions.IOStreams) *RepoCreateOptions {
	return &RepoCreateOptions{Global: g, DryRun: "none", newClient: clientsetFromFlags(g),
		jobTimeout: 5 * time.Minute, pollInterval: time.Second, podLogs: streamRepoJobLog, IOStreams: streams}
}

// NewCmdRepoCreate returns `kubectl stash repo create`.
func NewCmdRepoCreate(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdRepoCreate(NewRepoCreateOptions(g, streams))
}

func newCmdRepoCreate(o *RepoCreateOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create NAME --url URL (--password-file FILE | --generate-password) [--from-env-file FILE] [--init]",
		Short: "Create the Secret of a repository: its URL, password and object-store credentials",
		Long: `Create the Secret NAME that describes a repository: STASH_REPOSITORY (the URL), STASH_PASSWORD
(the password that encrypts it) and every KEY=VALUE of --from-env-file (the object store's
credentials, under the names its SDK reads: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY, …).

URLs: s3://BUCKET/prefix?region=…&endpoint=…, gs://BUCKET/prefix, azblob://CONTAINER/prefix,
file:///dir, or pvc://CLAIM/sub/dir for a repository on a PersistentVolumeClaim of the
namespace.

--init also creates the repository itself, from this machine, with the same credentials;
a pvc:// repository, which only pods can reach, is created by a short-lived Job of the
namespace instead (the job image of this plugin's version, or --image), after the Secret.
A repository that exists already is left as it is (from this machine: if the password
opens it). Backups need an initialized repository.

Lose the password and the backups cannot be read: keep a copy outside the cluster.`,
		Example: `  # S3, with a generated password (printed once) and credentials from a file
  cat > aws.env <<EOF
  AWS_ACCESS_KEY_ID=AKIA...
  AWS_SECRET_ACCESS_KEY=...
  EOF
  kubectl stash repo create shop-backups -n shop --url 's3://my-bucket/shop?region=eu-west-1' \
    --generate-password --from-env-file aws.env --init

  # A repository on a PersistentVolumeClaim of the namespace
  kubectl stash repo create local --url pvc://backup-volume/repo --password-file ./password

  # The Secret as YAML for a GitOps repository, touching no cluster
  kubectl stash repo create shop-backups --url gs://my-bucket/shop --password-file ./password \
    --dry-run=client -o yaml

  # Replace a repository Secret created earlier
  kubectl stash repo create shop-backups --url gs://other-bucket/shop --password-file ./password --overwrite`,
		Args: exactArgsNamed("NAME"),
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
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", "", "repository URL: "+strings.Join(repository.Schemes, ", ")+" (required)")
	f.StringVar(&o.PasswordFile, "password-file", "", "file holding the repository password (a trailing newline is dropped)")
	f.BoolVar(&o.GeneratePassword, "generate-password", false, "generate a random password and print it once to stderr")
	f.StringVar(&o.EnvFile, "from-env-file", "", "file of KEY=VALUE lines: the object store's credentials")
	f.BoolVar(&o.Init, "init", false, "also create the repository from this machine (skipped when it exists)")
	f.BoolVar(&o.Overwrite, "overwrite", false, "replace the Secret if kubectl stash created it before")
	f.StringVar(&o.DryRun, "dry-run", o.DryRun, "none, client (print the Secret, contact no cluster) or server (the API server checks it, stores nothing)")
	f.StringVarP(&o.Output, "output", "o", "", "print the Secret: json or yaml")
	return cmd
}

// Complete takes the name, the namespace and, unless --dry-run=client, builds the client.
func (o *RepoCreateOptions) Complete(args []string) error {
	o.Name = args[0]
	ns, explicit, err := o.Global.ConfigFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil && o.DryRun != "client" {
		return err
	}
	o.namespace, o.explicitNS = ns, explicit
	if o.DryRun == "client" {
		return nil
	}
	o.client, err = o.newClient()
	return err
}

// Validate checks the flags, reads the password file and the env file, and touches no cluster.
func (o *RepoCreateOptions) Validate() error {
	if err := validateSecretName(o.Name); err != nil {
		return err
	}
	if o.URL == "" {
		return errors.New("--url is required: the repository's location, e.g. s3://my-bucket/prefix, gs://my-bucket/prefix, azblob://container/prefix, file:///dir or pvc://CLAIM/dir")
	}
	if err := repository.ValidateURL(o.URL); err != nil {
		return err
	}
	switch o.DryRun {
	case "none", "client", "server":
	default:
		return fmt.Errorf("--dry-run=%q: want none, client or server", o.DryRun)
	}
	switch o.Output {
	case "", "json", "yaml":
	default:
		return fmt.Errorf("--output %q is not supported: use json or yaml, or omit it", o.Output)
	}
	if (o.PasswordFile == "") == !o.GeneratePassword {
		return errors.New("give exactly one of --password-file FILE and --generate-password")
	}
	if o.Init {
		if o.DryRun != "none" {
			return errors.New("--init creates the repository, which a dry run must not: drop one of --init and --dry-run")
		}
	}
	if o.PasswordFile != "" {
		pw, err := repo.ReadPassword(o.PasswordFile)
		if err != nil {
			return fmt.Errorf("--password-file: %w", err)
		}
		o.password = string(pw)
	}
	o.env = map[string]string{}
	if o.EnvFile != "" {
		f, err := os.Open(o.EnvFile)
		if err != nil {
			return fmt.Errorf("--from-env-file: %w", err)
		}
		defer f.Close()
		if o.env, err = repository.ParseEnvFile(o.EnvFile, f); err != nil {
			return fmt.Errorf("--from-env-file: %w", err)
		}
	}
	return nil
}

// Run checks who owns an existing Secret, generates the password if asked, initializes the
// repository if asked (from here), writes (or prints) the Secret, then initializes a
// pvc:// repository if asked (from a Job, which needs the Secret).
func (o *RepoCreateOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// Messages about what was done go to stdout, unless stdout carries the Secret.
	info := o.Out
	if o.Output != "" {
		info = o.ErrOut
	}
	if strings.HasPrefix(strings.ToLower(o.URL), "file:") {
		fmt.Fprintf(o.ErrOut, "Warning: %s is a directory on the machine that opens it; the backup Jobs' pods see only their own file system, where it does not last. For a repository on a volume use pvc://CLAIM/dir.\n", repository.DisplayURL(o.URL))
	}
	ns := o.namespace
	if o.DryRun == "client" && !o.explicitNS {
		ns = "" // a manifest for GitOps takes the namespace it is applied to
	}
	display := repository.DisplayURL(o.URL)

	var existing *corev1.Secret
	if o.DryRun != "client" {
		s, err := o.client.CoreV1().Secrets(ns).Get(ctx, o.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("read secret %q in namespace %q: %w", o.Name, ns, err)
		case !repository.IsManaged(s):
			return fmt.Errorf("secret %q already exists in namespace %q and kubectl stash did not create it (it lacks the labels %s=%s and %s=%s): choose another name, or delete it first with kubectl delete secret %s -n %s",
				o.Name, ns, api.LabelManagedBy, api.ManagedByValue, api.LabelRepository, o.Name, o.Name, ns)
		case !o.Overwrite:
			old := "?"
			if r, err := repository.FromSecret(s); err == nil {
				old = r.DisplayURL()
			}
			return fmt.Errorf("repository secret %q already exists in namespace %q (repository %s): add --overwrite to replace it", o.Name, ns, old)
		default:
			existing = s
		}
	}

	// The password is generated once the Secret is known to be writable, so that a
	// password shown is a password kept.
	if o.GeneratePassword {
		pw, err := repository.GeneratePassword()
		if err != nil {
			return err
		}
		o.password = pw
		fmt.Fprintf(o.ErrOut, "Generated repository password (shown only this once):\n\n  %s\n\n"+
			"Store it somewhere safe outside the cluster: without it the backups in the repository cannot be read.\n", pw)
	}
	secret := repository.NewSecret(o.Name, ns, o.URL, o.password, o.env)
	r, err := repository.FromSecret(secret)
	if err != nil {
		return err
	}
	if o.Init && r.Claim == "" {
		res, err := r.Init(ctx, o.initOptions)
		if err != nil {
			return fmt.Errorf("initialize the repository (no Secret was written): %w", err)
		}
		if res.Created {
			fmt.Fprintf(info, "repository %s initialized (id %s)\n", res.URL, shortRepoID(res.ID))
		} else {
			fmt.Fprintf(info, "repository %s exists already (id %s) and the password opens it: left as it is\n", res.URL, shortRepoID(res.ID))
		}
	}

	verb := "created"
	written := secret
	if o.DryRun != "client" {
		opts := metav1.CreateOptions{}
		uopts := metav1.UpdateOptions{}
		if o.DryRun == "server" {
			opts.DryRun = []string{metav1.DryRunAll}
			uopts.DryRun = []string{metav1.DryRunAll}
		}
		var err error
		if existing != nil {
			verb = "replaced"
			secret.ResourceVersion = existing.ResourceVersion
			written, err = o.client.CoreV1().Secrets(ns).Update(ctx, secret, uopts)
		} else {
			written, err = o.client.CoreV1().Secrets(ns).Create(ctx, secret, opts)
		}
		if err != nil {
			if o.Init && r.Claim == "" {
				return fmt.Errorf("the repository is initialized, but the Secret could not be written (keep the password): %w", err)
			}
			return fmt.Errorf("write secret %q in namespace %q: %w", o.Name, ns, err)
		}
	}
	if o.Output != "" {
		if err := printSecret(o.Out, o.Output, written); err != nil {
			return err
		}
	} else {
		suffix := ""
		switch o.DryRun {
		case "client":
			suffix = ", dry run"
		case "server":
			suffix = ", server dry run"
		}
		fmt.Fprintf(o.Out, "secret/%s %s (repository %s%s)\n", o.Name, verb, display, suffix)
	}
	if o.Init && r.Claim != "" {
		return o.initInCluster(ctx, r, info)
	}
	return nil
}

// initInCluster creates a pvc:// repository with `stash-job init` in a Job that mounts the
// claim; the Secret must exist (the Job reads it through envFrom).
func (o *RepoCreateOptions) initInCluster(ctx context.Context, r *repository.Repository, info io.Writer) error {
	rj := repoJob{client: o.client, namespace: r.Namespace, image: o.Global.JobImage(), timeout: o.jobTimeout,
		poll: o.pollInterval, logs: o.podLogs, errOut: o.ErrOut}
	// stash-job reads the password from STASH_PASSWORD (the Secret's key, through envFrom).
	res, err := rj.run(ctx, r, "init", []string{"init", "--repo", "$(" + api.SecretKeyRepository + ")"}, false)
	again := fmt.Sprintf("the Secret is written: run kubectl stash repo create %s -n %s --url %s --password-file FILE --overwrite --init again", r.Name, r.Namespace, r.URL)
	if err != nil {
		return fmt.Errorf("initialize repository %s in a Job: %w (%s)", r.URL, err, again)
	}
	if res.Succeeded {
		_, err := fmt.Fprintf(info, "repository %s initialized (by job/%s)\n", r.URL, res.Name)
		return err
	}
	// stash-job prints the engine's repo.ErrExists message; its exit status does not tell
	// that case apart, so its log has to.
	if bytes.Contains(res.Log, []byte(repo.ErrExists.Error())) {
		_, err := fmt.Fprintf(info, "repository %s exists already: left as it is (kubectl stash snapshots --repo %s --via-job checks that the password opens it)\n", r.URL, r.Name)
		return err
	}
	return fmt.Errorf("initialize repository %s: job/%s failed (%s); the end of its log:\n%s", r.URL, res.Name, again, logTail(res.Log, 20))
}

func shortRepoID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// validateSecretName checks that name can be a Secret's name and the value of the
// repository label.
func validateSecretName(name string) error {
	errs := validation.IsDNS1123Subdomain(name)
	errs = append(errs, validation.IsValidLabelValue(name)...)
	if len(errs) > 0 {
		return fmt.Errorf("%q is not a valid repository name: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// printSecret prints a Kubernetes object as kubectl -o json|yaml does (apiVersion and
// kind set, managed fields left out).
func printSecret(w io.Writer, format string, obj *corev1.Secret) error {
	var p printers.ResourcePrinter
	switch format {
	case "json":
		p = &printers.JSONPrinter{}
	case "yaml":
		p = &printers.YAMLPrinter{}
	default:
		return fmt.Errorf("unsupported output %q", format)
	}
	p = printers.NewTypeSetter(scheme.Scheme).ToPrinter(&printers.OmitManagedFieldsPrinter{Delegate: p})
	return p.PrintObj(obj, w)
}

func exactArgsNamed(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return fmt.Errorf("%s takes %d argument(s), %s; got %d: see kubectl stash %s --help",
				cmd.Name(), len(names), strings.Join(names, " "), len(args), cmd.Name())
		}
		return nil
	}
}

// ---- list ----

// RepoListOptions are the options of `kubectl stash repo list`.
type RepoListOptions struct {
	Global        *GlobalOptions
	AllNamespaces bool
	Output        string

	newClient clientsetFunc
	now       func() time.Time

	namespace string
	client    kubernetes.Interface
	genericiooptions.IOStreams
}

// NewRepoListOptions returns options with defaults.
func NewRepoListOptions(g *GlobalOptions, streams genericiooptions.IOStreams) *RepoListOptions {
	return &RepoListOptions{Global: g, newClient: clientsetFromFlags(g), now: time.Now, IOStreams: streams}
}

// NewCmdRepoList returns `kubectl stash repo list`.
func NewCmdRepoList(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdRepoList(NewRepoListOptions(g, streams))
}

func newCmdRepoList(o *RepoListOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the repository Secrets of the namespace",
		Example: `  # The repositories of the current namespace
  kubectl stash repo list

  # Of every namespace
  kubectl stash repo list -A

  # For scripts: name, namespace, URL, claim and the names of the credential keys (no secrets)
  kubectl stash repo list -o json`,
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
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "list the repositories of every namespace")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "output format: json or yaml (default: a table)")
	return cmd
}

// Complete takes the namespace and builds the client.
func (o *RepoListOptions) Complete() error {
	if err := completeClient(o.Global, o.newClient, &o.namespace, &o.client); err != nil {
		return err
	}
	if o.AllNamespaces {
		o.namespace = ""
	}
	return nil
}

// Validate checks the output format.
func (o *RepoListOptions) Validate() error {
	switch o.Output {
	case "", "json", "yaml":
		return nil
	default:
		return fmt.Errorf("--output %q is not supported: use json or yaml, or omit it for a table", o.Output)
	}
}

// repoListItem is one repository of `repo list -o json|yaml`: no password, no credential
// values, only the credentials' names.
type repoListItem struct {
	Name        string    `json:"name"`
	Namespace   string    `json:"namespace"`
	URL         string    `json:"url,omitempty"`
	Claim       string    `json:"claim,omitempty"`
	Credentials []string  `json:"credentials,omitempty"`
	Created     time.Time `json:"created"`
	// Error says why the Secret is not a usable repository.
	Error string `json:"error,omitempty"`
}

// Run lists the repositories.
func (o *RepoListOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	secrets, err := repository.List(ctx, o.client, o.namespace)
	if err != nil {
		return err
	}
	items := make([]repoListItem, 0, len(secrets))
	for i := range secrets {
		s := &secrets[i]
		it := repoListItem{Name: s.Name, Namespace: s.Namespace, Created: s.CreationTimestamp.Time.UTC()}
		if r, err := repository.FromSecret(s); err != nil {
			it.Error = err.Error()
			if u, ok := s.Data[api.SecretKeyRepository]; ok {
				it.URL = repository.DisplayURL(string(u))
			}
		} else {
			it.URL, it.Claim, it.Credentials = r.DisplayURL(), r.Claim, r.CredentialKeys()
		}
		items = append(items, it)
	}
	switch o.Output {
	case "json", "yaml":
		return writeDoc(o.Out, items, o.Output)
	case "":
	default:
		return fmt.Errorf("unsupported output %q", o.Output)
	}
	if len(items) == 0 {
		if o.AllNamespaces {
			fmt.Fprintln(o.ErrOut, "No repositories found.")
		} else {
			fmt.Fprintf(o.ErrOut, "No repositories found in namespace %s: create one with kubectl stash repo create NAME --url URL --generate-password\n", o.namespace)
		}
		return nil
	}
	tw := printers.GetNewTabWriter(o.Out)
	if o.AllNamespaces {
		fmt.Fprint(tw, "NAMESPACE\t")
	}
	fmt.Fprintln(tw, "NAME\tURL\tAGE")
	for _, it := range items {
		if o.AllNamespaces {
			fmt.Fprintf(tw, "%s\t", it.Namespace)
		}
		u := it.URL
		if it.Error != "" {
			u = "<invalid: see -o yaml> " + u
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", it.Name, u, repoAge(o.now(), it.Created))
	}
	return tw.Flush()
}

func repoAge(now, t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t))
}

// ---- delete ----

// RepoDeleteOptions are the options of `kubectl stash repo delete`.
type RepoDeleteOptions struct {
	Global   *GlobalOptions
	Name     string
	WipeData bool
	Yes      bool

	newClient clientsetFunc

	namespace string
	client    kubernetes.Interface
	genericiooptions.IOStreams
}

// NewRepoDeleteOptions returns options with defaults.
func NewRepoDeleteOptions(g *GlobalOptions, streams genericiooptions.IOStreams) *RepoDeleteOptions {
	return &RepoDeleteOptions{Global: g, newClient: clientsetFromFlags(g), IOStreams: streams}
}

// NewCmdRepoDelete returns `kubectl stash repo delete`.
func NewCmdRepoDelete(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdRepoDelete(NewRepoDeleteOptions(g, streams))
}

func newCmdRepoDelete(o *RepoDeleteOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete NAME [--wipe-data [--yes]]",
		Short: "Delete a repository Secret; with --wipe-data, the repository's data too",
		Long: `Delete the repository Secret NAME. The repository's data stays where it is: create the
Secret again (same URL and password) to use it again.

--wipe-data first deletes the repository itself from this machine, with the Secret's
credentials: every snapshot, pack, index, key and the config. It asks you to type the
repository's name first (--yes skips that). It refuses a pvc:// repository, which only
pods can reach, and a repository a backup is writing to (it takes the exclusive lock).`,
		Example: `  # Delete the Secret, keep the data
  kubectl stash repo delete shop-backups

  # Delete the data too, after typing the name at the prompt
  kubectl stash repo delete shop-backups --wipe-data

  # In a script
  kubectl stash repo delete shop-backups --wipe-data --yes`,
		Args: exactArgsNamed("NAME"),
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
	cmd.Flags().BoolVar(&o.WipeData, "wipe-data", false, "also delete every object of the repository (asks for confirmation)")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "with --wipe-data: do not ask for confirmation")
	return cmd
}

// Complete takes the name and namespace and builds the client.
func (o *RepoDeleteOptions) Complete(args []string) error {
	o.Name = args[0]
	return completeClient(o.Global, o.newClient, &o.namespace, &o.client)
}

// Validate checks the name and the flags.
func (o *RepoDeleteOptions) Validate() error {
	if err := validateSecretName(o.Name); err != nil {
		return err
	}
	if o.Yes && !o.WipeData {
		return errors.New("--yes confirms --wipe-data: deleting the Secret alone asks nothing")
	}
	return nil
}

// Run deletes the Secret, after wiping the data when asked (so an interrupted wipe can be
// run again with the Secret still there).
func (o *RepoDeleteOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := o.client.CoreV1().Secrets(o.namespace).Get(ctx, o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("secret %q not found in namespace %q: nothing to delete (kubectl stash repo list shows the repositories)", o.Name, o.namespace)
	}
	if err != nil {
		return fmt.Errorf("read secret %q in namespace %q: %w", o.Name, o.namespace, err)
	}
	if !repository.IsManaged(s) {
		return fmt.Errorf("secret %q in namespace %q was not created by kubectl stash (it lacks the labels %s=%s and %s=%s): delete it with kubectl delete secret %s -n %s if you mean to",
			o.Name, o.namespace, api.LabelManagedBy, api.ManagedByValue, api.LabelRepository, o.Name, o.Name, o.namespace)
	}
	r, rerr := repository.FromSecret(s)
	display := "(unreadable URL)"
	if rerr == nil {
		display = r.DisplayURL()
	}
	if users := o.configurationsUsing(ctx); len(users) > 0 {
		fmt.Fprintf(o.ErrOut, "Warning: backup configuration(s) %s use repository %q: their sessions will fail until it exists again.\n", strings.Join(users, ", "), o.Name)
	}

	if o.WipeData {
		if rerr != nil {
			return fmt.Errorf("cannot wipe the data: %w; to delete only the Secret, drop --wipe-data", rerr)
		}
		if r.Claim != "" {
			return fmt.Errorf("--wipe-data cannot reach repository %q (%s): it is on PersistentVolumeClaim %q, which only pods can mount; delete its files from a pod that mounts the claim, or delete the claim, then run this without --wipe-data",
				o.Name, r.URL, r.Claim)
		}
		if !o.Yes {
			if err := o.confirm(display); err != nil {
				return err
			}
		}
		res, err := r.Wipe(ctx)
		switch {
		case errors.Is(err, repo.ErrNoRepository):
			fmt.Fprintf(o.Out, "no repository at %s: no data to delete\n", display)
		case err != nil:
			return fmt.Errorf("wipe repository %s (%d objects deleted so far; the Secret is kept, so you can run this again): %w", display, res.Deleted, err)
		default:
			fmt.Fprintf(o.Out, "repository %s wiped: %d objects deleted\n", display, res.Deleted)
			if res.Kept > 0 {
				fmt.Fprintf(o.Out, "%d objects under %s are not part of the repository and were kept\n", res.Kept, display)
			}
		}
	}

	if err := o.client.CoreV1().Secrets(o.namespace).Delete(ctx, o.Name, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete secret %q in namespace %q: %w", o.Name, o.namespace, err)
	}
	if o.WipeData {
		_, err = fmt.Fprintf(o.Out, "secret/%s deleted\n", o.Name)
		return err
	}
	_, err = fmt.Fprintf(o.Out, "secret/%s deleted; the data of repository %s is kept (recreate the Secret with the same URL and password to use it again, or delete it with --wipe-data)\n", o.Name, display)
	return err
}

// confirm asks for the repository's name on In.
func (o *RepoDeleteOptions) confirm(display string) error {
	fmt.Fprintf(o.ErrOut, "This deletes repository %s: every snapshot in it, for good.\nType the repository name (%s) to confirm: ", display, o.Name)
	line, err := bufio.NewReader(o.In).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the confirmation: %w", err)
	}
	typed := strings.TrimSpace(line)
	if !readerIsTerminal(o.In) {
		fmt.Fprintln(o.ErrOut) // a terminal echoed the newline; a pipe did not
	}
	if typed == "" && errors.Is(err, io.EOF) {
		return errors.New("no confirmation read: nothing deleted (type the repository name at the prompt, or add --yes)")
	}
	if typed != o.Name {
		return fmt.Errorf("you typed %q, not %q: nothing deleted", typed, o.Name)
	}
	return nil
}

// readerIsTerminal reports whether r is a terminal (a character device).
func readerIsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// configurationsUsing names the backup configurations (CronJobs) of the namespace whose
// configuration names this repository. It is a courtesy warning: errors are ignored.
func (o *RepoDeleteOptions) configurationsUsing(ctx context.Context) []string {
	l, err := o.client.BatchV1().CronJobs(o.namespace).List(ctx, metav1.ListOptions{LabelSelector: api.LabelBackupConfiguration})
	if err != nil {
		return nil
	}
	var names []string
	for _, cj := range l.Items {
		var cfg api.BackupConfig
		raw, ok := cj.Annotations[api.AnnotationConfig]
		if !ok || api.Decode(api.AnnotationConfig, raw, &cfg) != nil {
			continue
		}
		if cfg.Repository == o.Name {
			names = append(names, cj.Name)
		}
	}
	sort.Strings(names)
	return names
}
