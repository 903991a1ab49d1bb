package restorer

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/einvault/einvault/internal/repo"
)

// findNode resolves a snapshot path to its node. The root is returned as
// a synthetic directory node.
func findNode(rs *run, root repo.ID, p string) (*repo.Node, error) {
	id := root
	node := &repo.Node{Name: "", Type: repo.NodeDir, Subtree: &id}
	if p == "/" {
		return node, nil
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, name := range parts {
		if node.Type != repo.NodeDir {
			return nil, fmt.Errorf("path %s: %s is not a directory", p, "/"+strings.Join(parts[:i], "/"))
		}
		t, err := rs.r.repo.LoadTree(rs.ctx, *node.Subtree)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", p, err)
		}
		n := t.Find(name)
		if n == nil {
			return nil, fmt.Errorf("path %s not found in the snapshot", p)
		}
		node = n
	}
	return node, nil
}

// walkRoot builds the plan: directories, files and special entries.
func (rs *run) walkRoot(snap *repo.Snapshot, sub string) error {
	n, err := findNode(rs, snap.Tree, sub)
	if err != nil {
		return err
	}
	rs.dirs = append(rs.dirs, &dirEntry{parent: -1, spath: sub, needed: true})
	links := map[[2]uint64]int32{}
	anc := len(rs.r.opts.Include) == 0 || matchAny(rs.r.opts.Include, sub)
	if sub != "/" && matchAny(rs.r.opts.Exclude, sub) {
		return nil
	}
	if n.Type != repo.NodeDir {
		rs.addNode(0, n, sub, anc, links)
		return nil
	}
	t, err := rs.r.repo.LoadTree(rs.ctx, *n.Subtree)
	if err != nil {
		if errors.Is(err, repo.ErrDamaged) || errors.Is(err, repo.ErrBlobMissing) {
			return fmt.Errorf("the snapshot's top directory cannot be read: %w", err)
		}
		return err
	}
	return rs.walk(0, t, anc, links)
}

// walk adds the entries of tree t, which is directory d.
func (rs *run) walk(d int32, t *repo.Tree, anc bool, links map[[2]uint64]int32) error {
	for _, n := range t.Nodes {
		if err := rs.ctx.Err(); err != nil {
			return err
		}
		if !repo.ValidName(n.Name) {
			// DecodeTree refuses these; check again so that no
			// Repository implementation can make the restore escape.
			rs.addDamaged(joinSnap(rs.dirs[d].spath, strings.ToValidUTF8(n.Name, "?")), fmt.Sprintf("%v: tree entry name %q is not a plain file name", repo.ErrDamaged, n.Name))
			continue
		}
		p := joinSnap(rs.dirs[d].spath, n.Name)
		if matchAny(rs.r.opts.Exclude, p) {
			continue
		}
		sel := anc || matchAny(rs.r.opts.Include, p)
		if n.Type != repo.NodeDir {
			rs.addNode(d, n, p, sel, links)
			continue
		}
		sub, err := rs.r.repo.LoadTree(rs.ctx, *n.Subtree)
		if err != nil {
			if errors.Is(err, repo.ErrDamaged) || errors.Is(err, repo.ErrBlobMissing) {
				// A damaged directory listing loses what is below it,
				// nothing else.
				rs.addDamaged(p+"/", err.Error())
				continue
			}
			return err
		}
		di := int32(len(rs.dirs))
		de := &dirEntry{parent: d, name: n.Name, spath: p, node: n, depth: rs.dirs[d].depth + 1, needed: sel}
		rs.dirs = append(rs.dirs, de)
		if err := rs.walk(di, sub, sel, links); err != nil {
			return err
		}
		if de.needed {
			rs.markNeeded(d)
		}
	}
	return nil
}

func (rs *run) markNeeded(d int32) {
	for d >= 0 && !rs.dirs[d].needed {
		rs.dirs[d].needed = true
		d = rs.dirs[d].parent
	}
}

func (rs *run) addNode(d int32, n *repo.Node, p string, sel bool, links map[[2]uint64]int32) {
	if !sel {
		return
	}
	rs.markNeeded(d)
	switch n.Type {
	case repo.NodeFile:
		fi := int32(len(rs.files))
		f := &fileEntry{dir: d, name: n.Name, content: n.Content, size: n.Size, mode: n.Mode, uid: n.UID, gid: n.GID,
			mtime: unixNano(n.ModTime), atime: unixNano(atime(n)), linkTo: -1}
		if n.Links > 1 && n.Inode != 0 {
			k := [2]uint64{n.DeviceID, n.Inode}
			if first, ok := links[k]; ok {
				f.linkTo = first
			} else {
				links[k] = fi
			}
		}
		rs.files = append(rs.files, f)
		rs.totalFiles++
		if f.linkTo < 0 {
			rs.totalBytes += n.Size
		}
	case repo.NodeSymlink, repo.NodeFifo, repo.NodeDev, repo.NodeCharDev:
		rs.specials = append(rs.specials, specialEntry{dir: d, name: n.Name, node: n})
	case repo.NodeSocket:
		rs.addNote(p, "socket not restored (sockets are created by the program that listens on them)")
	}
}

// makeDirs creates every needed directory, parents first, refusing
// anything in the target that is not a real directory.
func (rs *run) makeDirs() {
	for i := 1; i < len(rs.dirs); i++ {
		d := rs.dirs[i]
		if !d.needed {
			continue
		}
		parent := rs.dirs[d.parent]
		if parent.failed {
			d.failed = true
			continue
		}
		if err := rs.makeDir(int32(i)); err != nil {
			d.failed = true
			rs.addError(d.spath, err)
		}
	}
}

func (rs *run) makeDir(di int32) error {
	d := rs.dirs[di]
	parent := rs.dirs[d.parent]
	root, err := rs.cache.get(d.parent)
	if err != nil {
		return err
	}
	defer rs.cache.release(d.parent)
	if !parent.created {
		fi, err := root.Lstat(d.name)
		switch {
		case err == nil:
			if err := checkDir(rs.cache.top.Name(), rs.relPath(di), root, d.name, fi); err != nil {
				return err
			}
			d.existed = true
			d.sgid = fi.Mode()&fs.ModeSetgid != 0
			return nil
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	if err := root.Mkdir(d.name, 0o700); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	d.created = true
	d.sgid = parent.sgid // Linux: a new directory inherits set-group-ID
	rs.dirsDone.Add(1)
	return nil
}

// checkDir accepts only a real directory.
func checkDir(target, rel string, root interface {
	Readlink(string) (string, error)
}, name string, fi fs.FileInfo) error {
	full := target + "/" + rel
	if fi.Mode()&fs.ModeSymlink != 0 {
		dest, _ := root.Readlink(name)
		return fmt.Errorf("%w: %s is a symbolic link (to %s); restore never writes through symbolic links: remove it or choose another target", ErrUnsafePath, full, dest)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s exists and is not a directory", ErrUnsafePath, full)
	}
	return nil
}

// checkExisting applies the overwrite policy to entries of directories
// that existed before the restore (new directories are empty).
func (rs *run) checkExisting() {
	for i, f := range rs.files {
		d := rs.dirs[f.dir]
		if d.failed {
			f.flags.Store(fFailed)
			continue
		}
		if !d.existed {
			continue
		}
		if !rs.checkName(f.dir, f.name, rs.filePath(int32(i))) {
			f.flags.Store(fFailed)
		}
	}
	kept := rs.specials[:0]
	for _, s := range rs.specials {
		d := rs.dirs[s.dir]
		if d.failed {
			continue
		}
		if d.existed && !rs.checkName(s.dir, s.name, joinSnap(d.spath, s.name)) {
			continue
		}
		kept = append(kept, s)
	}
	rs.specials = kept
	// A hard link whose first name was skipped links to the next one.
	primary := map[int32]int32{}
	for i, f := range rs.files {
		if f.linkTo < 0 {
			if f.flags.Load() != 0 {
				primary[int32(i)] = -1 // not restored: next one takes over
			}
			continue
		}
		p := f.linkTo
		if np, ok := primary[p]; ok {
			if np == -1 {
				if f.flags.Load() == 0 {
					f.linkTo = -1
					primary[p] = int32(i)
					rs.totalBytes += f.size
				}
				continue
			}
			f.linkTo = np
		}
	}
}

// checkName reports whether an entry may be created at name in directory
// d: it does not exist, or Overwrite is set and it is not a directory.
func (rs *run) checkName(d int32, name, spath string) bool {
	root, err := rs.cache.get(d)
	if err != nil {
		rs.addError(spath, err)
		return false
	}
	defer rs.cache.release(d)
	fi, err := root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true
	case err != nil:
		rs.addError(spath, err)
		return false
	case fi.IsDir():
		rs.addError(spath, fmt.Errorf("%w: a directory exists where the snapshot has a %s", ErrUnsafePath, "file"))
		return false
	case !rs.r.opts.Overwrite:
		rs.addSkipped(spath)
		return false
	}
	return true
}

// planPacks collects the blobs every file needs, grouped by pack.
func (rs *run) planPacks() []*packPlan {
	idx := rs.r.repo.Index()
	blobs := map[repo.ID]*blobPlan{}
	packs := map[repo.ID]*packPlan{}
	var entries []repo.IndexEntry
	for i, f := range rs.files {
		fi := int32(i)
		if f.linkTo >= 0 || f.flags.Load() != 0 {
			continue
		}
		content := f.content
		entries = entries[:0]
		bad := ""
		for _, id := range content {
			e, ok := idx.Lookup(id)
			if !ok {
				bad = fmt.Sprintf("data blob %s is missing from the index: %v", id.Short(), repo.ErrBlobMissing)
				break
			}
			if e.Type != repo.DataBlob {
				bad = fmt.Sprintf("%v: blob %s is a %v blob, expected data", repo.ErrDamaged, id.Short(), e.Type)
				break
			}
			entries = append(entries, e)
		}
		if bad != "" {
			rs.markDamaged(fi, bad)
			continue
		}
		f.remaining.Store(int32(len(content)))
		var off int64
		for k, id := range content {
			e := entries[k]
			bp := blobs[id]
			if bp == nil {
				bp = &blobPlan{id: id, off: e.Offset, length: e.Length, raw: e.RawLength, flags: e.Flags}
				blobs[id] = bp
				p := idx.PackOf(e)
				pp := packs[p.ID]
				if pp == nil {
					pp = &packPlan{info: p}
					packs[p.ID] = pp
				}
				pp.blobs = append(pp.blobs, bp)
			}
			bp.dests = append(bp.dests, dest{file: fi, off: off})
			off += int64(e.RawLength)
		}
	}
	out := make([]*packPlan, 0, len(packs))
	for _, pp := range packs {
		out = append(out, pp)
	}
	return out
}
