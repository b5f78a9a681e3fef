package snapshot

import (
	"io/fs"
	"os/user"
	"strconv"
	"sync"
)

// nodeFromInfo fills a node from lstat information.
func nodeFromInfo(name string, fi fs.FileInfo, names *nameCache) (*Node, bool) {
	n := &Node{Mode: fi.Mode(), ModTime: fi.ModTime().UTC()}
	setName(n, name)
	switch m := fi.Mode(); {
	case m.IsRegular():
		n.Type = TypeFile
		n.Size = uint64(fi.Size())
	case m.IsDir():
		n.Type = TypeDir
	case m&fs.ModeSymlink != 0:
		n.Type = TypeSymlink
	case m&fs.ModeNamedPipe != 0:
		n.Type = TypeFIFO
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0:
		n.Type = TypeCharDev
	case m&fs.ModeDevice != 0:
		n.Type = TypeBlockDev
	default:
		return nil, false // sockets and anything else tar and restic skip too
	}
	if st, ok := statOf(fi); ok {
		n.UID, n.GID = st.UID, st.GID
		n.Inode, n.DeviceID, n.Links = st.Ino, st.Dev, st.Nlink
		n.AccessTime = st.Atime.UTC()
		n.ChangeTime = st.Ctime.UTC()
		n.ModTime = st.Mtime.UTC()
		if n.Type == TypeCharDev || n.Type == TypeBlockDev {
			n.Rdev = st.Rdev
		}
		if n.Type == TypeFile && st.Blocks*512 < st.Size {
			n.Sparse = true
		}
		if names != nil {
			n.User, n.Group = names.user(st.UID), names.group(st.GID)
		}
	} else {
		n.AccessTime, n.ChangeTime = n.ModTime, n.ModTime
	}
	return n, true
}

// nameCache remembers user and group names by id: one lookup per id, not per file.
type nameCache struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
}

func newNameCache() *nameCache {
	return &nameCache{users: map[uint32]string{}, groups: map[uint32]string{}}
}

func (c *nameCache) user(id uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.users[id]; ok {
		return v
	}
	v := ""
	if u, err := user.LookupId(strconv.FormatUint(uint64(id), 10)); err == nil {
		v = u.Username
	}
	c.users[id] = v
	return v
}

func (c *nameCache) group(id uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.groups[id]; ok {
		return v
	}
	v := ""
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(id), 10)); err == nil {
		v = g.Name
	}
	c.groups[id] = v
	return v
}
