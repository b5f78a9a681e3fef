//go:build linux || darwin

package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// openat opens rel (a file inside the target) relative to its cached directory.
func (rs *restorer) openat(rel string, flags int, perm uint32) (*os.File, error) {
	dir, name := path.Split(rel)
	d, release, err := rs.dirs.get(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return nil, err
	}
	fd, err := unix.Openat(int(d.Fd()), name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	release()
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rel, Err: err}
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// euid is the effective user id, asked once (setMeta runs for every restored file).
var euid = sync.OnceValue(os.Geteuid)

// writeNew creates (or truncates) the file rel, writes data into it and restores n's
// owner, mode and times, all on the bare descriptor: an *os.File costs an fcntl per file
// (os.NewFile checks O_NONBLOCK), and the descriptor's calls skip the name lookups of
// setMeta's. O_NOFOLLOW: never write through a symlink planted there.
//
// A new file is created with its permission bits (O_EXCL): when the umask keeps them
// all and there are no setuid, setgid or sticky bits, the mode is right from the start
// and needs no chmod. An existing file is truncated and gets the full treatment.
func (rs *restorer) writeNew(rel string, data []byte, n *Node) (bool, error) {
	dir, name := path.Split(rel)
	d, release, err := rs.dirs.get(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return false, err
	}
	defer release()
	size := int64(len(data))
	mode := unixMode(n.Mode)
	modeSet := false
	fd, err := openatRetry(int(d.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode&0o777)
	if err == nil {
		modeSet = mode&^0o777 == 0 && mode&rs.umask == 0
	} else if err == unix.EEXIST {
		fd, err = openatRetry(int(d.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	}
	if err != nil {
		return inTheWay(err), &os.PathError{Op: "open", Path: rel, Err: err}
	}
	for len(data) > 0 {
		w, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return false, &os.PathError{Op: "write", Path: rel, Err: err}
		}
		data = data[w:]
	}
	dirfd := int(d.Fd())
	err = applyMeta(n, !modeSet, metaCalls{
		chown: func(uid, gid int) error { return unix.Fchown(fd, uid, gid) },
		chmod: func(mode uint32) error { return unix.Fchmod(fd, mode) },
		times: func(ts []unix.Timespec) error { return setTimes(fd, dirfd, name, ts) },
	})
	if err != nil {
		unix.Close(fd)
		return false, fmt.Errorf("%s: %w", rel, err)
	}
	return false, rs.writeback.closeAfter(writeback{fd: uintptr(fd), off: 0, n: size, close: func() error {
		if err := unix.Close(fd); err != nil {
			return &os.PathError{Op: "close", Path: rel, Err: err}
		}
		return nil
	}})
}

func openatRetry(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// inTheWay reports whether opening failed on a symlink or directory at a file's place
// (O_NOFOLLOW), which restore replaces.
func inTheWay(err error) bool { return errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EISDIR) }

func (rs *restorer) mknod(f *restoreFile) error {
	_ = rs.root.Remove(f.rel)
	d, name, release, err := rs.parentFD(f.rel)
	if err != nil {
		return err
	}
	defer release()
	mode := uint32(f.node.Mode.Perm())
	switch f.node.Type {
	case TypeFIFO:
		mode |= unix.S_IFIFO
	case TypeCharDev:
		mode |= unix.S_IFCHR
	case TypeBlockDev:
		mode |= unix.S_IFBLK
	}
	if err := mknodat(int(d.Fd()), name, mode, int(f.node.Rdev)); err != nil {
		return fmt.Errorf("%s: %w", f.rel, err)
	}
	return rs.setMeta(f.rel, f.node)
}

// setMeta restores owner (when running as root), mode and times, never following a
// symlink.
func (rs *restorer) setMeta(rel string, n *Node) error {
	d, name, release, err := rs.parentFD(rel)
	if err != nil {
		return err
	}
	defer release()
	fd := int(d.Fd())
	err = applyMeta(n, n.Type != TypeSymlink, metaCalls{
		chown: func(uid, gid int) error { return unix.Fchownat(fd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW) },
		chmod: func(mode uint32) error { return unix.Fchmodat(fd, name, mode, 0) },
		times: func(ts []unix.Timespec) error { return unix.UtimesNanoAt(fd, name, ts, unix.AT_SYMLINK_NOFOLLOW) },
	})
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	return nil
}

// metaCalls set an entry's owner, mode and times: by name, or on an open descriptor.
type metaCalls struct {
	chown func(uid, gid int) error
	chmod func(mode uint32) error
	times func(ts []unix.Timespec) error
}

// applyMeta restores n's owner (when running as root), mode (when chmod is true) and
// times through c, in the order that matters: chown clears setuid/setgid bits, so the
// mode comes after it, and the times last.
func applyMeta(n *Node, chmod bool, c metaCalls) error {
	if euid() == 0 {
		if err := c.chown(int(n.UID), int(n.GID)); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if chmod {
		if err := c.chmod(unixMode(n.Mode)); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(n.AccessTime.UnixNano()), unix.NsecToTimespec(n.ModTime.UnixNano())}
	if err := c.times(ts); err != nil {
		return fmt.Errorf("times: %w", err)
	}
	return nil
}

func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		u |= unix.S_ISVTX
	}
	return u
}
