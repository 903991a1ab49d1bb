package restorer

import (
	"container/list"
	"fmt"
	"os"
	"sync"
)

// dirCache keeps a bounded number of directories of the target open as
// os.Root handles, so that files are created with one openat relative to
// their directory, and no path is ever resolved through a symbolic link.
type dirCache struct {
	rs  *run
	top *os.Root
	max int

	mu  sync.Mutex
	m   map[int32]*dirHandle
	lru list.List // of *dirHandle, most recently used first
}

type dirHandle struct {
	idx  int32
	root *os.Root
	// dir is the same directory opened for its descriptor: files are
	// created, timed and renamed with *at system calls on it, which cost
	// one call each (the directory itself was entered safely through root).
	dir  *os.File
	refs int
	el   *list.Element
}

func newDirCache(rs *run, top *os.Root, max int) *dirCache {
	c := &dirCache{rs: rs, top: top, max: max, m: map[int32]*dirHandle{}}
	c.m[0] = &dirHandle{idx: 0, root: top, refs: 1} // pinned, never in the LRU
	if d, err := top.Open("."); err == nil {
		c.m[0].dir = d
	}
	return c
}

// get returns the open directory d; call release(d) when done with it.
func (c *dirCache) get(d int32) (*os.Root, error) {
	c.mu.Lock()
	if h, ok := c.m[d]; ok {
		h.refs++
		if h.el != nil {
			c.lru.MoveToFront(h.el)
		}
		c.mu.Unlock()
		return h.root, nil
	}
	c.mu.Unlock()
	de := c.rs.dirs[d]
	parent, err := c.get(de.parent)
	if err != nil {
		return nil, err
	}
	root, err := openSubdir(parent, c.top.Name(), c.rs.relPath(d), de.name)
	c.release(de.parent)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.m[d]; ok { // opened meanwhile by another worker
		root.Close()
		h.refs++
		return h.root, nil
	}
	h := &dirHandle{idx: d, root: root, refs: 1}
	if dir, err := root.Open("."); err == nil {
		h.dir = dir
	}
	h.el = c.lru.PushFront(h)
	c.m[d] = h
	for e := c.lru.Back(); e != nil && c.lru.Len() > c.max; {
		prev := e.Prev()
		if v := e.Value.(*dirHandle); v.refs == 0 {
			c.lru.Remove(e)
			delete(c.m, v.idx)
			v.root.Close()
			if v.dir != nil {
				v.dir.Close()
			}
		}
		e = prev
	}
	return root, nil
}

func (c *dirCache) release(d int32) {
	c.mu.Lock()
	c.m[d].refs--
	c.mu.Unlock()
}

func (c *dirCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.m {
		h.root.Close()
		if h.dir != nil {
			h.dir.Close()
		}
	}
	c.m = map[int32]*dirHandle{}
	c.lru.Init()
}

// openSubdir opens name in parent, accepting only a real directory: the
// entry is checked with Lstat, and the opened directory must be the one
// that was checked.
func openSubdir(parent *os.Root, target, rel, name string) (*os.Root, error) {
	fi, err := parent.Lstat(name)
	if err != nil {
		return nil, err
	}
	if err := checkDir(target, rel, parent, name, fi); err != nil {
		return nil, err
	}
	r, err := parent.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	st, err := r.Stat(".")
	if err != nil {
		r.Close()
		return nil, err
	}
	if !os.SameFile(fi, st) {
		r.Close()
		return nil, fmt.Errorf("%w: %s/%s was replaced while restoring", ErrUnsafePath, target, rel)
	}
	return r, nil
}

// getFD is get returning the directory's descriptor; release it with
// release(d). It fails if the directory could not be opened for one.
func (c *dirCache) getFD(d int32) (int, error) {
	if _, err := c.get(d); err != nil {
		return -1, err
	}
	c.mu.Lock()
	h := c.m[d]
	c.mu.Unlock()
	if h == nil || h.dir == nil {
		c.release(d)
		return -1, fmt.Errorf("directory %s cannot be opened", c.rs.relPath(d))
	}
	return int(h.dir.Fd()), nil
}
