// Package engine is the home of the backup engine: content-defined chunking, compression,
// encryption, packs, the repository and the backup and restore pipelines, in its
// subpackages. Nothing under it imports Kubernetes, cobra or charm: it could ship as a
// standalone backup tool.
package engine

import (
	_ "github.com/klauspost/compress/s2"
	_ "github.com/klauspost/compress/zstd"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/crypto/scrypt"
	_ "golang.org/x/sync/errgroup"
)
