package repo

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// NodeType is the kind of a tree entry.
type NodeType string

// Node types.
const (
	NodeFile    NodeType = "file"
	NodeDir     NodeType = "dir"
	NodeSymlink NodeType = "symlink"
	NodeDev     NodeType = "dev"
	NodeCharDev NodeType = "chardev"
	NodeFifo    NodeType = "fifo"
	NodeSocket  NodeType = "socket"
)

// Node is one entry of a directory listing.
type Node struct {
	Name       string      `json:"name"`
	Type       NodeType    `json:"type"`
	Mode       fs.FileMode `json:"mode"`
	ModTime    time.Time   `json:"mtime"`
	AccessTime time.Time   `json:"atime,omitzero"`
	ChangeTime time.Time   `json:"ctime,omitzero"`
	UID        uint32      `json:"uid"`
	GID        uint32      `json:"gid"`
	User       string      `json:"user,omitempty"`
	Group      string      `json:"group,omitempty"`
	Inode      uint64      `json:"inode,omitempty"`
	DeviceID   uint64      `json:"device_id,omitempty"`
	Links      uint64      `json:"links,omitempty"`
	Size       uint64      `json:"size,omitempty"`
	Rdev       uint64      `json:"rdev,omitempty"`
	LinkTarget string      `json:"linktarget,omitempty"`
	Content    []ID        `json:"content,omitempty"`
	Subtree    *ID         `json:"subtree,omitempty"`
}

// Tree is a directory listing, sorted by name.
type Tree struct {
	Nodes []*Node `json:"nodes"`
}

// Find returns the node with the given name, or nil.
func (t *Tree) Find(name string) *Node {
	i := sort.Search(len(t.Nodes), func(i int) bool { return t.Nodes[i].Name >= name })
	if i < len(t.Nodes) && t.Nodes[i].Name == name {
		return t.Nodes[i]
	}
	return nil
}

// Encode serialises a tree; nodes are sorted by name first. Nodes are
// encoded one by one into a buffer sized up front, so a directory of
// 100,000 invoices does not need several growing copies of its listing.
func (t *Tree) Encode() ([]byte, error) {
	sort.Slice(t.Nodes, func(i, j int) bool { return t.Nodes[i].Name < t.Nodes[j].Name })
	buf := make([]byte, 0, 16+len(t.Nodes)*(300+IDSize*2))
	buf = append(buf, `{"nodes":[`...)
	for i, n := range t.Nodes {
		if i > 0 {
			buf = append(buf, ',')
		}
		b, err := json.Marshal(n)
		if err != nil {
			return nil, err
		}
		buf = append(buf, b...)
	}
	return append(buf, "]}"...), nil
}

// ValidName reports whether a tree entry name is safe to create in a
// directory: not empty, not "." or "..", no slash and no NUL.
func ValidName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// DecodeTree parses and validates a tree blob. Hostile names (path
// separators, dot segments, duplicates) are rejected here so no consumer
// ever sees them.
func DecodeTree(data []byte) (*Tree, error) {
	var t Tree
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("%w: tree: %v", ErrDamaged, err)
	}
	for i, n := range t.Nodes {
		if n == nil {
			return nil, fmt.Errorf("%w: tree: null entry", ErrDamaged)
		}
		if !ValidName(n.Name) {
			return nil, fmt.Errorf("%w: tree entry name %q is not a plain file name (refusing it: it could escape the restore target)", ErrDamaged, n.Name)
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return nil, fmt.Errorf("%w: tree entries not sorted or duplicated at %q", ErrDamaged, n.Name)
		}
		switch n.Type {
		case NodeDir:
			if n.Subtree == nil {
				return nil, fmt.Errorf("%w: directory %q has no subtree", ErrDamaged, n.Name)
			}
		case NodeFile, NodeSymlink, NodeDev, NodeCharDev, NodeFifo, NodeSocket:
		default:
			return nil, fmt.Errorf("%w: tree entry %q has unknown type %q", ErrDamaged, n.Name, n.Type)
		}
	}
	return &t, nil
}

// CleanSnapshotPath normalises a path inside a snapshot ("/a/b").
func CleanSnapshotPath(p string) string { return path.Clean("/" + p) }
