package snapshot

import (
	"fmt"
	"io/fs"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const openNoATime = 0 // no such flag on darwin

func statOf(fi fs.FileInfo) (statFields, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return statFields{}, false
	}
	return statFields{UID: st.Uid, GID: st.Gid, Ino: st.Ino, Dev: uint64(st.Dev), Nlink: uint64(st.Nlink), Rdev: uint64(st.Rdev),
		Blocks: st.Blocks, Size: st.Size,
		Atime: time.Unix(st.Atimespec.Sec, st.Atimespec.Nsec), Ctime: time.Unix(st.Ctimespec.Sec, st.Ctimespec.Nsec),
		Mtime: time.Unix(st.Mtimespec.Sec, st.Mtimespec.Nsec)}, true
}

// mknodat: darwin has no mknodat; device nodes and FIFOs of a Linux volume are not
// recreated on a Mac (download reports the file).
func mknodat(dirfd int, name string, mode uint32, dev int) error {
	return fmt.Errorf("special files (FIFOs, devices) cannot be restored on darwin")
}

// canStartWriteback: no sync_file_range here; the kernel writes restored files back on
// its own.
const canStartWriteback = false

func startWriteback(uintptr, int64, int64) {}

// setTimes sets the times of the file name in dirfd (fd is that file, open): by name,
// as darwin's futimes keeps only microseconds.
func setTimes(fd, dirfd int, name string, ts []unix.Timespec) error {
	return unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// processUmask: darwin has no /proc to read it from without changing it, so every
// restored file gets its mode set (all bits are taken as masked).
func processUmask() uint32 { return 0o777 }
