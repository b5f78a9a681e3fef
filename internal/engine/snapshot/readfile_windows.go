package snapshot

import (
	"io"
	"os"
)

// openForBackup opens a file a backup reads.
func openForBackup(path string) (io.ReadCloser, error) { return os.Open(path) }
