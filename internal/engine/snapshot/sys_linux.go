package snapshot

import (
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openNoATime keeps a backup from updating the files' access times (needs ownership or
// CAP_FOWNER; backup retries without it).
const openNoATime = syscall.O_NOATIME

func statOf(fi fs.FileInfo) (statFields, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return statFields{}, false
	}
	return statFields{UID: st.Uid, GID: st.Gid, Ino: st.Ino, Dev: uint64(st.Dev), Nlink: uint64(st.Nlink), Rdev: uint64(st.Rdev),
		Blocks: st.Blocks, Size: st.Size,
		Atime: time.Unix(st.Atim.Sec, st.Atim.Nsec), Ctime: time.Unix(st.Ctim.Sec, st.Ctim.Nsec), Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}, true
}

func mknodat(dirfd int, name string, mode uint32, dev int) error {
	return unix.Mknodat(dirfd, name, mode, dev)
}

// canStartWriteback: Linux has sync_file_range.
const canStartWriteback = true

// startWriteback asks the kernel to start writing a range of a restored file to disk,
// without waiting for it (sync_file_range, SYNC_FILE_RANGE_WRITE). Advisory: file
// systems that cannot say so, and errors, are ignored.
func startWriteback(fd uintptr, off, n int64) {
	_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// setTimes sets the access and modification times of the open file fd (utimensat with
// a NULL path: futimens), whose name in dirfd is name.
func setTimes(fd, dirfd int, name string, ts []unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// processUmask is the process's umask, read from /proc (reading it with umask(2) would
// change it for a moment under the other goroutines); all bits, so nothing is assumed
// kept, when /proc does not say. Restore reads it once per run.
func processUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o777
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return uint32(m)
			}
		}
	}
	return 0o777
}
