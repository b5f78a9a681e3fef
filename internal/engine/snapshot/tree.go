package snapshot

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
)

// NodeType is the kind of a directory entry.
type NodeType string

// Node types recorded in trees. Sockets are not recorded.
const (
	TypeFile     NodeType = "file"
	TypeDir      NodeType = "dir"
	TypeSymlink  NodeType = "symlink"
	TypeFIFO     NodeType = "fifo"
	TypeCharDev  NodeType = "chardev"
	TypeBlockDev NodeType = "blockdev"
)

// Node is one directory entry with its metadata (docs/repository-format.md "Trees").
type Node struct {
	Name       string      `json:"name"`
	NameRaw    []byte      `json:"name_raw,omitempty"` // when Name is not valid UTF-8
	Type       NodeType    `json:"type"`
	Mode       fs.FileMode `json:"mode"`
	UID        uint32      `json:"uid"`
	GID        uint32      `json:"gid"`
	User       string      `json:"user,omitempty"`
	Group      string      `json:"group,omitempty"`
	Size       uint64      `json:"size,omitempty"`
	ModTime    time.Time   `json:"mtime"`
	AccessTime time.Time   `json:"atime"`
	ChangeTime time.Time   `json:"ctime"`
	Inode      uint64      `json:"inode,omitempty"`
	DeviceID   uint64      `json:"devid,omitempty"`
	Links      uint64      `json:"links,omitempty"`
	LinkTarget string      `json:"linktarget,omitempty"`
	Rdev       uint64      `json:"rdev,omitempty"`
	Sparse     bool        `json:"sparse,omitempty"`
	Content    []crypto.ID `json:"content,omitempty"`
	Subtree    *crypto.ID  `json:"subtree,omitempty"`

	// skip drops the node from its tree (a tolerated read error).
	skip bool
}

// FileName is the name as it was on disk (NameRaw when the name was not UTF-8).
func (n *Node) FileName() string {
	if len(n.NameRaw) > 0 {
		return string(n.NameRaw)
	}
	return n.Name
}

// Tree is one directory listing, nodes sorted by name.
type Tree struct {
	Nodes []*Node `json:"nodes"`
}

// Find returns the node called name, or nil.
func (t *Tree) Find(name string) *Node {
	i := sort.Search(len(t.Nodes), func(i int) bool { return t.Nodes[i].FileName() >= name })
	if i < len(t.Nodes) && t.Nodes[i].FileName() == name {
		return t.Nodes[i]
	}
	return nil
}

func encodeTree(t *Tree) ([]byte, error) {
	kept := t.Nodes[:0:0]
	for _, n := range t.Nodes {
		if !n.skip {
			kept = append(kept, n)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].FileName() < kept[j].FileName() })
	return appendTree(make([]byte, 0, 64+400*len(kept)), kept)
}

// decodeTree parses a tree and rejects what restore must never act on: names that are not
// a single path component, and duplicate names.
func decodeTree(b []byte) (*Tree, error) {
	t, err := parseTree(b)
	if err == errSlowPath {
		t = &Tree{}
		err = json.Unmarshal(b, t)
	}
	if err != nil {
		return nil, err
	}
	for _, n := range t.Nodes {
		name := n.FileName()
		if err := ValidName(name); err != nil {
			return nil, err
		}
		switch n.Type {
		case TypeFile, TypeDir, TypeSymlink, TypeFIFO, TypeCharDev, TypeBlockDev:
		default:
			return nil, fmt.Errorf("entry %q has unknown type %q", name, n.Type)
		}
		if n.Type == TypeDir && n.Subtree == nil {
			return nil, fmt.Errorf("directory %q has no subtree", name)
		}
	}
	less := func(i, j int) bool { return t.Nodes[i].FileName() < t.Nodes[j].FileName() }
	if !sort.SliceIsSorted(t.Nodes, less) { // written sorted: this is for damaged trees
		sort.Slice(t.Nodes, less)
	}
	for i := 1; i < len(t.Nodes); i++ {
		if name := t.Nodes[i].FileName(); name == t.Nodes[i-1].FileName() {
			return nil, fmt.Errorf("tree lists %q twice", name)
		}
	}
	return t, nil
}

// ValidName accepts exactly one path component.
func ValidName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return fmt.Errorf("invalid entry name %q", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("invalid entry name %q: contains a path separator or NUL", name)
	}
	return nil
}

func setName(n *Node, name string) {
	n.Name = name
	if !utf8.ValidString(name) {
		n.Name = strings.ToValidUTF8(name, "\uFFFD")
		n.NameRaw = []byte(name)
	}
}
