package snapshot

import "time"

// statFields are the POSIX metadata of a file the engine records, read by the
// system-specific statOf.
type statFields struct {
	UID, GID        uint32
	Ino, Dev, Nlink uint64
	Rdev            uint64
	Blocks, Size    int64
	Atime, Ctime    time.Time
	Mtime           time.Time
}
