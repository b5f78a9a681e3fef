package snapshot

import (
	"io/fs"
	"syscall"
	"time"

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
