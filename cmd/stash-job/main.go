// stash-job is the program of the job image. The plugin's Jobs run it in the cluster; its
// local subcommands work outside Kubernetes too.
//
// It is a static binary (CGO_ENABLED=0) on an empty base image, so it uses the standard
// library's flag package rather than cobra.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/version"
	"github.com/kubectl-stash/kubectl-stash/jobimage"
	"github.com/kubectl-stash/kubectl-stash/jobimage/annotate"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"version", "print the version, git commit and job image reference", runVersion},
		{"probe", "in a Job's pod: reach the API server and annotate the pod's own Job", runProbe},
		{"session", "in a session Job's pod: resolve the hosts, run a host Job each, record the session", runSession},
		{"host", "in a host Job's pod: back up the host's paths, record progress and stats on the Job", runHost},
		{"restore-session", "in a restore session Job's pod: resolve the target's hosts, apply the rules, run a restore Job each", runRestoreSession},
		{"restore-host", "in a restore host Job's pod: restore the host's snapshots into its volumes, record progress and stats", runRestoreHost},
		{"verify-session", "in a verification Job's pod: restore snapshots into scratch space, compare every file, record the conditions", runVerifySession},
		{"verify-command", "in a verification's command container: run the user's command on the restored tree, record the outcome", runVerifyCommand},
		{"verify-launch", "in a scheduled verification's pod: start a verification session", runVerifyLaunch},
		{"install-self", "copy this binary into a directory (for a verification's command container)", runInstallSelf},
		{"init", "create a repository", runInit},
		{"backup", "back up paths into a repository", runBackup},
		{"restore", "restore a snapshot into a directory", runRestore},
		{"snapshots", "list a repository's snapshots", runSnapshots},
		{"ls", "list the files of a snapshot", runLs},
		{"forget", "remove snapshots by a retention policy (--keep-*); data stays until prune", runForget},
		{"prune", "delete the data no snapshot references (after forget), repack packs mostly unused", runPrune},
		{"check", "verify the repository's structure and, with --read-data, its data", runCheck},
		{"key", "list, add or remove the repository's passwords (key files), or change one", runKey},
		{"lock", "list the repository's locks (lock list)", runLock},
		{"unlock", "remove stale locks (--force: all locks)", runUnlock},
	}
}

func main() {
	if os.Getenv("GOGC") == "" {
		// The heap is mostly large pointer-free buffers (packs, chunks), so collecting
		// more often costs little CPU and keeps peak memory near the live set.
		debug.SetGCPercent(25)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfiles()
	// a repository Secret passed as environment variables carries a GCS key inline
	cleanupCreds, err := store.InlineGCPCredentials()
	podLockHolders(os.Stderr)
	if err == nil {
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		cleanupCreds()
	}
	stopProfile()
	stop()
	if err != nil {
		var usage usageError
		if errors.As(err, &usage) {
			fmt.Fprintln(os.Stderr, "stash-job:", err)
			os.Exit(2)
		}
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "stash-job:", err)
			os.Exit(1)
		}
	}
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(stdout)
		if len(args) == 0 {
			return usageError{"no command given"}
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	printUsage(stderr)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: stash-job COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'stash-job COMMAND -h' for a command's flags.")
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("stash-job "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage of stash-job %s:\n", name)
		fs.PrintDefaults()
		if ex := examples[name]; ex != "" {
			fmt.Fprintf(stderr, "\nExamples:\n%s", ex)
		}
	}
	return fs
}

// examples are shown by `stash-job COMMAND -h`.
var examples = map[string]string{
	"version": `  stash-job version
  stash-job version -o json
`,
	"probe": `  # in a pod of a Job whose env has STASH_NAMESPACE and STASH_JOB_NAME (downward API)
  stash-job probe
`,
	"session": `  # in the pod of a session Job made by kubectl stash backup / trigger; the environment
  # carries STASH_CONFIG (downward API), the repository Secret and the pod's identity
  stash-job session
`,
	"host": `  # in the pod of a host Job made by a session; the environment carries STASH_HOST_SPEC
  stash-job host
`,
	"restore-session": `  # in the pod of a restore session Job made by kubectl stash restore; the environment
  # carries STASH_CONFIG (the restore configuration) and the repository's URL
  stash-job restore-session
`,
	"restore-host": `  # in the pod of a restore host Job made by a restore session; the environment carries
  # STASH_RESTORE_HOST_SPEC and the repository Secret
  stash-job restore-host
`,
	"verify-session": `  # in the pod of a verification session made by kubectl stash verify; the environment
  # carries STASH_CONFIG and the repository Secret
  stash-job verify-session
  stash-job verify-session --stage restore   # a command container finishes the session
`,
	"verify-command": `  # in the command container of a verification session, from the user's image
  STASH_VERIFY_COMMAND='test -s var/lib/db/dump.sql' /stash-bin/stash-job verify-command
`,
	"verify-launch": `  # in the pod of a scheduled verification's CronJob
  stash-job verify-launch
`,
	"install-self": `  stash-job install-self /stash-bin
`,
	"init": `  export STASH_PASSWORD='a long passphrase'
  stash-job init --repo file:///backups/repo
  stash-job init --repo 's3://my-bucket/shop?region=eu-west-1' --password-file /etc/stash/password
`,
	"backup": `  stash-job backup --repo file:///backups/repo --host host-0 /var/www
  stash-job backup --repo file:///backups/repo --tag daily --exclude '*.tmp' --exclude /var/www/cache /var/www /etc/nginx
`,
	"restore": `  stash-job restore --repo file:///backups/repo latest --target /restore
  stash-job restore --repo file:///backups/repo latest --host host-0 --path /var/www --target / --overwrite if-newer
  stash-job restore --repo file:///backups/repo 5255a472 --target /restore --delete --dry-run
  stash-job restore --repo file:///backups/repo latest --target /restore --include '*.sql' --exclude /var/www/cache
`,
	"snapshots": `  stash-job snapshots --repo file:///backups/repo
  stash-job snapshots --repo file:///backups/repo --host host-0 -o json
`,
	"ls": `  stash-job ls --repo file:///backups/repo latest
  stash-job ls -l --repo file:///backups/repo latest /var/www
`,
	"forget": `  # keep the 7 newest days, 4 weeks and 12 months of each host and set of paths
  stash-job forget --repo file:///backups/repo --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
  stash-job forget --repo file:///backups/repo --host host-0 --path /var/www --keep-last 10 -o json
`,
	"prune": `  stash-job prune --repo file:///backups/repo --dry-run
  stash-job prune --repo file:///backups/repo --max-unused-percent 25 -o json
`,
	"check": `  stash-job check --repo file:///backups/repo
  stash-job check --repo file:///backups/repo --read-data
  stash-job check --repo file:///backups/repo --read-data-subset 10% -o json
`,
	"key": `  stash-job key list --repo file:///backups/repo
  STASH_NEW_PASSWORD='another passphrase' stash-job key add --repo file:///backups/repo
  stash-job key remove --repo file:///backups/repo 4f3a9c1e
  stash-job key passwd --repo file:///backups/repo --new-password-file /etc/stash/new-password
`,
	"lock": `  stash-job lock list --repo file:///backups/repo
  stash-job lock list --repo file:///backups/repo -o json
`,
	"unlock": `  # remove the locks of processes that stopped refreshing them 30 minutes ago
  stash-job unlock --repo file:///backups/repo
  stash-job unlock --repo file:///backups/repo --force
`,
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	output := fs.String("o", "", "output format: json, or empty for text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	info := version.Get()
	switch *output {
	case "":
		_, err := io.WriteString(stdout, info.String())
		return err
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	default:
		return usageError{fmt.Sprintf("-o %q: want json or nothing", *output)}
	}
}

func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("probe", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	env := jobimage.EnvFrom(os.Getenv)
	if err := env.Validate(); err != nil {
		return err
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return fmt.Errorf("in-cluster config: %w", err)
	}
	cfg.UserAgent = "stash-job/" + version.Version()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	a := annotate.NewJobAnnotator(client, env.Namespace, env.JobName)
	if err := jobimage.Probe(ctx, env, a, time.Now); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "annotated job %s/%s\n", env.Namespace, env.JobName)
	return nil
}
