package restorer

import (
	"fmt"
	"io/fs"
	"sort"

	"github.com/einvault/einvault/internal/repo"
	"golang.org/x/sys/unix"
)

// finishLinks creates the second and later names of hard-linked files.
func (rs *run) finishLinks() {
	for i, f := range rs.files {
		if f.linkTo < 0 || f.flags.Load() != 0 || rs.ctx.Err() != nil {
			continue
		}
		fi := int32(i)
		p := rs.files[f.linkTo]
		if p.flags.Load()&fDone == 0 {
			rs.mu.Lock()
			reason, ok := rs.reasons[f.linkTo]
			rs.mu.Unlock()
			if ok {
				rs.markDamaged(fi, "hard link to a damaged file: "+reason)
			} else {
				rs.markFailed(fi, fmt.Errorf("hard link to %s, which was not restored", rs.filePath(f.linkTo)))
			}
			continue
		}
		old := joinRel(rs.relPath(p.dir), p.name)
		tmp := joinRel(rs.relPath(f.dir), rs.tmpName(fi))
		if err := rs.cache.top.Link(old, tmp); err != nil {
			rs.markFailed(fi, fmt.Errorf("create hard link: %w", err))
			continue
		}
		f.flags.Or(fCreated)
		root, err := rs.cache.get(f.dir)
		if err != nil {
			rs.markFailed(fi, err)
			continue
		}
		err = root.Rename(rs.tmpName(fi), f.name)
		rs.cache.release(f.dir)
		if err != nil {
			rs.markFailed(fi, fmt.Errorf("move hard link into place: %w", err))
			continue
		}
		f.flags.Or(fDone)
		rs.filesDone.Add(1)
		rs.hardlinks.Add(1)
	}
}

func joinRel(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// restoreSpecials creates symlinks, FIFOs and device nodes.
func (rs *run) restoreSpecials() {
	for i, s := range rs.specials {
		if rs.ctx.Err() != nil {
			return
		}
		p := joinSnap(rs.dirs[s.dir].spath, s.name)
		if (s.node.Type == repo.NodeDev || s.node.Type == repo.NodeCharDev) && !rs.isRoot {
			rs.addNote(p, "device node not restored (needs root)")
			continue
		}
		if err := rs.restoreSpecial(s, fmt.Sprintf(".einvault-restore-%s-s%d", rs.runID, i)); err != nil {
			rs.addError(p, err)
		}
	}
}

func (rs *run) restoreSpecial(s specialEntry, tmp string) error {
	root, err := rs.cache.get(s.dir)
	if err != nil {
		return err
	}
	defer rs.cache.release(s.dir)
	dir, err := root.Open(".")
	if err != nil {
		return err
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	n := s.node
	switch n.Type {
	case repo.NodeSymlink:
		err = root.Symlink(n.LinkTarget, tmp)
	case repo.NodeFifo:
		err = unix.Mkfifoat(dfd, tmp, uint32(n.Mode&fs.ModePerm))
	case repo.NodeCharDev:
		err = unix.Mknodat(dfd, tmp, unix.S_IFCHR|uint32(n.Mode&fs.ModePerm), int(n.Rdev))
	case repo.NodeDev:
		err = unix.Mknodat(dfd, tmp, unix.S_IFBLK|uint32(n.Mode&fs.ModePerm), int(n.Rdev))
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", n.Type, err)
	}
	fail := func(err error) error {
		_ = root.Remove(tmp)
		return err
	}
	if rs.isRoot {
		if err := root.Lchown(tmp, int(n.UID), int(n.GID)); err != nil {
			return fail(fmt.Errorf("set owner: %w", err))
		}
	}
	if n.Type != repo.NodeSymlink {
		if err := unix.Fchmodat(dfd, tmp, uint32(n.Mode&fs.ModePerm), 0); err != nil {
			return fail(fmt.Errorf("set mode: %w", err))
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime(n).UnixNano()), unix.NsecToTimespec(n.ModTime.UnixNano())}
	if !n.ModTime.IsZero() {
		if err := unix.UtimesNanoAt(dfd, tmp, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fail(fmt.Errorf("set times: %w", err))
		}
	}
	if err := root.Rename(tmp, s.name); err != nil {
		return fail(fmt.Errorf("move into place: %w", err))
	}
	if n.Type == repo.NodeSymlink {
		rs.symlinks.Add(1)
	} else {
		rs.special.Add(1)
	}
	return nil
}

// finishDirs sets the metadata of directories, deepest first, so that
// restoring their content no longer changes their times.
func (rs *run) finishDirs() {
	var order []int32
	for i := 1; i < len(rs.dirs); i++ {
		d := rs.dirs[i]
		if d.needed && !d.failed && (d.created || rs.r.opts.Overwrite) {
			order = append(order, int32(i))
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return rs.dirs[order[i]].depth > rs.dirs[order[j]].depth })
	for _, di := range order {
		d := rs.dirs[di]
		if err := rs.setDirMeta(d); err != nil {
			rs.addError(d.spath, err)
		}
	}
}

func (rs *run) setDirMeta(d *dirEntry) error {
	n := d.node
	if n == nil {
		return nil
	}
	root, err := rs.cache.get(d.parent)
	if err != nil {
		return err
	}
	defer rs.cache.release(d.parent)
	// Re-check: the name must still be the directory this restore made.
	fi, err := root.Lstat(d.name)
	if err != nil {
		return err
	}
	if err := checkDir(rs.cache.top.Name(), joinRel(rs.relPath(d.parent), d.name), root, d.name, fi); err != nil {
		return err
	}
	if rs.isRoot {
		if err := root.Lchown(d.name, int(n.UID), int(n.GID)); err != nil {
			return fmt.Errorf("set owner: %w", err)
		}
	}
	if err := root.Chmod(d.name, n.Mode&modeBits); err != nil {
		return fmt.Errorf("set mode: %w", err)
	}
	if err := root.Chtimes(d.name, atime(n), n.ModTime); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}
