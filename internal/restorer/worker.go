package restorer

import (
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"sort"
	"syscall"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/repo"
)

const (
	// mergeGap: needed blobs of a pack closer than this are read with one
	// ranged read (skipping the gap costs less than another request).
	mergeGap = 1 << 20
	// maxRange bounds one ranged read.
	maxRange = 64 << 20
)

// writer is one worker's state: buffers and the file it last wrote to
// (consecutive blobs of a pack often belong to the same file).
type writer struct {
	rs     *run
	sealed []byte
	plain  []byte
	cur    *rawFile
	curIdx int32
}

func (w *writer) closeCur() {
	if w.cur != nil {
		w.cur.Close()
		w.cur, w.curIdx = nil, -1
	}
}

// handle returns an open handle on file fi's temporary file, creating it
// on first use.
func (w *writer) handle(fi int32) (*rawFile, error) {
	if w.curIdx == fi && w.cur != nil {
		return w.cur, nil
	}
	w.closeCur()
	rs := w.rs
	f := rs.files[fi]
	dirfd, err := rs.cache.getFD(f.dir)
	if err != nil {
		return nil, err
	}
	defer rs.cache.release(f.dir)
	mu := &rs.stripes[int(fi)%len(rs.stripes)]
	mu.Lock()
	defer mu.Unlock()
	// One component below a directory entered safely: O_NOFOLLOW (and
	// O_EXCL on creation) keep a planted symlink from being followed.
	flags := unix.O_WRONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if f.flags.Load()&fCreated == 0 {
		flags |= unix.O_CREAT | unix.O_EXCL
	}
	fd, err := openat(dirfd, rs.tmpName(fi), flags, 0o600)
	if err != nil {
		return nil, err
	}
	f.flags.Or(fCreated)
	w.cur, w.curIdx = &rawFile{fd: fd}, fi
	return w.cur, nil
}

// doPack restores every needed blob of one pack.
func (rs *run) doPack(w *writer, pp *packPlan) {
	bs := pp.blobs
	sort.Slice(bs, func(i, j int) bool { return bs[i].off < bs[j].off })
	for i := 0; i < len(bs); {
		start := int64(bs[i].off)
		end := start + int64(bs[i].length)
		j := i + 1
		for j < len(bs) {
			o := int64(bs[j].off)
			e := o + int64(bs[j].length)
			if o-end >= mergeGap || e-start > maxRange {
				break
			}
			end = max(end, e)
			j++
		}
		rs.readRange(w, pp, bs[i:j], start, end)
		i = j
	}
}

func (rs *run) readRange(w *writer, pp *packPlan, bs []*blobPlan, start, end int64) {
	h := backend.Handle{Type: backend.PackFile, Name: pp.info.ID.String()}
	rd, err := rs.r.repo.Backend().Load(rs.ctx, h, start, end-start)
	if err != nil {
		reason := fmt.Sprintf("pack %s cannot be read: %v", pp.info.ID.Short(), err)
		if errors.Is(err, backend.ErrNotExist) {
			reason = fmt.Sprintf("pack %s is missing (%v)", pp.info.ID.Short(), repo.ErrDamaged)
		}
		for _, b := range bs {
			rs.blobFailed(w, b, reason)
		}
		return
	}
	defer rd.Close()
	pos := start
	for k, b := range bs {
		if rs.ctx.Err() != nil {
			return
		}
		off := int64(b.off)
		if off < pos { // overlapping entries: impossible in a sound index
			rs.blobFailed(w, b, fmt.Sprintf("%v: blob %s overlaps another in pack %s", repo.ErrDamaged, b.id.Short(), pp.info.ID.Short()))
			continue
		}
		if off > pos {
			if _, err := io.CopyN(io.Discard, rd, off-pos); err != nil {
				rs.rangeFailed(w, pp, bs[k:], err)
				return
			}
		}
		if cap(w.sealed) < int(b.length) {
			w.sealed = make([]byte, b.length)
		}
		sealed := w.sealed[:b.length]
		if _, err := io.ReadFull(rd, sealed); err != nil {
			rs.rangeFailed(w, pp, bs[k:], err)
			return
		}
		pos = off + int64(b.length)
		plain, err := rs.r.repo.OpenBlob(pp.info, repo.DataBlob, b.flags, b.id, sealed, w.plain)
		if err != nil {
			rs.blobFailed(w, b, err.Error())
			continue
		}
		if cap(plain) > cap(w.plain) && cap(plain) <= 64<<20 {
			w.plain = plain[:0]
		}
		if rs.hashes != nil {
			h := repo.Hash(plain)
			rs.mu.Lock()
			rs.hashes[b.id] = h
			rs.mu.Unlock()
		}
		for _, d := range b.dests {
			rs.write(w, d, plain)
		}
	}
}

func (rs *run) rangeFailed(w *writer, pp *packPlan, bs []*blobPlan, err error) {
	reason := fmt.Sprintf("pack %s cannot be read: %v", pp.info.ID.Short(), err)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		reason = fmt.Sprintf("%v: pack %s is truncated", repo.ErrDamaged, pp.info.ID.Short())
	}
	if rs.ctx.Err() != nil {
		return
	}
	for _, b := range bs {
		rs.blobFailed(w, b, reason)
	}
}

// blobFailed marks every file that needs b as damaged.
func (rs *run) blobFailed(w *writer, b *blobPlan, reason string) {
	for _, d := range b.dests {
		rs.markDamaged(d.file, reason)
		rs.done(w, d.file)
	}
}

func (rs *run) write(w *writer, d dest, data []byte) {
	f := rs.files[d.file]
	if f.flags.Load()&(fDamaged|fFailed) == 0 {
		fh, err := w.handle(d.file)
		if err == nil {
			_, err = fh.WriteAt(data, d.off)
		}
		if err != nil {
			rs.markFailed(d.file, err)
			if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
				rs.cancel(fmt.Errorf("target is full: %w", err))
			}
		} else {
			rs.bytesDone.Add(uint64(len(data)))
		}
	}
	rs.done(w, d.file)
}

// done counts one written (or failed) piece of file fi and finalises the
// file after its last piece.
func (rs *run) done(w *writer, fi int32) {
	if rs.files[fi].remaining.Add(-1) == 0 {
		rs.finalize(w, fi)
	}
}

// finalize sets the metadata of a complete file and renames it into
// place, or removes it if any piece is damaged.
func (rs *run) finalize(w *writer, fi int32) {
	f := rs.files[fi]
	var fh *rawFile
	if w.curIdx == fi {
		fh = w.cur
		w.cur, w.curIdx = nil, -1
	}
	if f.flags.Load()&(fDamaged|fFailed) != 0 {
		if fh != nil {
			fh.Close()
		}
		if f.flags.Load()&fCreated != 0 {
			rs.removeTemp(fi)
		}
		return
	}
	if fh == nil {
		var err error
		if fh, err = w.handle(fi); err != nil {
			rs.markFailed(fi, err)
			return
		}
		w.cur, w.curIdx = nil, -1
	}
	err := rs.setFileMeta(fh, f)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rs.placeFile(f.dir, rs.tmpName(fi), f.name, fromNano(f.atime), fromNano(f.mtime))
	}
	if err != nil {
		rs.markFailed(fi, err)
		rs.removeTemp(fi)
		return
	}
	f.flags.Or(fDone)
	rs.filesDone.Add(1)
}

func (rs *run) setFileMeta(fh *rawFile, f *fileEntry) error {
	// A new file belongs to the process's user and group already, unless
	// its directory is set-group-ID.
	if rs.isRoot && (f.uid != rs.uid || f.gid != rs.gid || rs.dirs[f.dir].sgid) {
		if err := fh.Chown(int(f.uid), int(f.gid)); err != nil {
			return fmt.Errorf("set owner: %w", err)
		}
	}
	// After chown, which clears set-user-ID bits.
	if err := fh.Chmod(f.mode & modeBits); err != nil {
		return fmt.Errorf("set mode: %w", err)
	}
	return nil
}

// placeFile sets the times of the temporary file tmp in directory d and
// renames it to name.
func (rs *run) placeFile(d int32, tmp, name string, atime, mtime time.Time) error {
	dirfd, err := rs.cache.getFD(d)
	if err != nil {
		return err
	}
	defer rs.cache.release(d)
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := ignoringEINTR(func() error { return unix.UtimesNanoAt(dirfd, tmp, ts, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return fmt.Errorf("set times: %w", &os.PathError{Op: "utimensat", Path: tmp, Err: err})
	}
	if err := ignoringEINTR(func() error { return unix.Renameat(dirfd, tmp, dirfd, name) }); err != nil {
		return fmt.Errorf("move into place: %w", &os.LinkError{Op: "rename", Old: tmp, New: name, Err: err})
	}
	return nil
}

const modeBits = os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky

func atime(n *repo.Node) time.Time {
	if n.AccessTime.IsZero() {
		return n.ModTime
	}
	return n.AccessTime
}
