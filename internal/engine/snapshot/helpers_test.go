package snapshot_test

import (
	"net"

	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

type storeObject = store.Object

type netListenConfig struct{}

func (netListenConfig) listen(path string) (net.Listener, error) { return net.Listen("unix", path) }
