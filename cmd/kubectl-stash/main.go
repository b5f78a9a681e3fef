// kubectl-stash is the kubectl plugin (`kubectl stash …`). main stays thin: it builds the
// IO streams and runs the root command.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // exec, OIDC and cloud auth providers of kubeconfigs

	"github.com/kubectl-stash/kubectl-stash/plugin/cmd"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	// Ctrl-C cancels the command's context, so a download or a repository command ends
	// cleanly and releases its repository lock instead of leaving it to go stale
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cmd.NewCmdStash(streams).ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}
