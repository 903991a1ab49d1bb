package repo

import (
	"context"
	"errors"
	"path"
)

// ErrSkipDir may be returned by a WalkFunc to skip a directory's contents.
var ErrSkipDir = errors.New("skip this directory")

// WalkFunc is called for every node below a tree, with its path inside
// the snapshot ("/srv/invoices/a.xml").
type WalkFunc func(p string, n *Node) error

// TreeLoader loads trees.
type TreeLoader interface {
	LoadTree(ctx context.Context, id ID) (*Tree, error)
}

// Walk visits every node below tree id depth-first in name order. Only
// one tree per directory level is held in memory.
func Walk(ctx context.Context, r TreeLoader, id ID, prefix string, fn WalkFunc) error {
	t, err := r.LoadTree(ctx, id)
	if err != nil {
		return err
	}
	for _, n := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := path.Join("/", prefix, n.Name)
		err := fn(p, n)
		if errors.Is(err, ErrSkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == NodeDir && n.Subtree != nil {
			if err := Walk(ctx, r, *n.Subtree, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// FindNode resolves a path inside a snapshot's tree. The root itself is
// returned as a directory node with the root tree as its subtree.
func FindNode(ctx context.Context, r TreeLoader, root ID, p string) (*Node, error) {
	p = CleanSnapshotPath(p)
	node := &Node{Name: "/", Type: NodeDir, Subtree: &root}
	if p == "/" {
		return node, nil
	}
	for _, name := range splitPath(p) {
		if node.Type != NodeDir || node.Subtree == nil {
			return nil, errors.New("path " + p + ": " + node.Name + " is not a directory")
		}
		t, err := r.LoadTree(ctx, *node.Subtree)
		if err != nil {
			return nil, err
		}
		next := t.Find(name)
		if next == nil {
			return nil, errors.New("path " + p + " not found in snapshot")
		}
		node = next
	}
	return node, nil
}

func splitPath(p string) []string {
	var out []string
	for p != "/" && p != "" {
		dir, file := path.Split(p)
		out = append([]string{file}, out...)
		p = path.Clean(dir)
	}
	return out
}
