// kubectl-stash is the kubectl plugin (`kubectl stash …`). main stays thin: it builds the
// IO streams and runs the root command.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // exec, OIDC and cloud auth providers of kubeconfigs

	"github.com/kubectl-stash/kubectl-stash/plugin/cmd"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	if err := cmd.NewCmdStash(streams).Execute(); err != nil {
		os.Exit(1)
	}
}
