package archiver

import (
	"io/fs"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/einvault/einvault/internal/repo"
)

// idNames caches uid/gid to name look-ups.
type idNames struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
}

func (c *idNames) user(uid uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.users[uid]; ok {
		return n
	}
	name := ""
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		name = u.Username
	}
	c.users[uid] = name
	return name
}

func (c *idNames) group(gid uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.groups[gid]; ok {
		return n
	}
	name := ""
	if g, err := user.LookupGroupId(strconv.Itoa(int(gid))); err == nil {
		name = g.Name
	}
	c.groups[gid] = name
	return name
}

// nodeFromInfo fills a node's metadata from an lstat result.
func (a *Archiver) nodeFromInfo(name string, fi fs.FileInfo) *repo.Node {
	n := &repo.Node{Name: name, Mode: fi.Mode(), ModTime: fi.ModTime()}
	switch m := fi.Mode(); {
	case m.IsRegular():
		n.Type = repo.NodeFile
		n.Size = uint64(fi.Size())
	case m.IsDir():
		n.Type = repo.NodeDir
	case m&fs.ModeSymlink != 0:
		n.Type = repo.NodeSymlink
	case m&fs.ModeNamedPipe != 0:
		n.Type = repo.NodeFifo
	case m&fs.ModeSocket != 0:
		n.Type = repo.NodeSocket
	case m&fs.ModeCharDevice != 0:
		n.Type = repo.NodeCharDev
	case m&fs.ModeDevice != 0:
		n.Type = repo.NodeDev
	default:
		n.Type = repo.NodeFile
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		n.UID, n.GID = st.Uid, st.Gid
		n.Inode = st.Ino
		n.DeviceID = uint64(st.Dev)
		n.Links = uint64(st.Nlink)
		n.Rdev = uint64(st.Rdev)
		n.ChangeTime = time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
		n.User = a.names.user(st.Uid)
		n.Group = a.names.group(st.Gid)
	}
	if n.Type != repo.NodeFile || n.Links < 2 {
		// Inode and device only matter to restore hard links and to
		// change detection of files; keep them for files only.
		if n.Type != repo.NodeFile {
			n.Links = 0
		}
	}
	return n
}

// unchanged reports whether a file node can reuse its parent's content
// without being read: same size, mtime, ctime and inode.
func unchanged(old, cur *repo.Node) bool {
	return old != nil && old.Type == repo.NodeFile && cur.Type == repo.NodeFile &&
		old.Size == cur.Size && old.ModTime.Equal(cur.ModTime) &&
		old.ChangeTime.Equal(cur.ChangeTime) && old.Inode == cur.Inode
}
