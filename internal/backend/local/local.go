// Package local owns the backend for a repository in a directory on a
// local disk or a NAS mount.
//
// Layout under the root directory:
//
//	config
//	keys/<name>
//	data/<first two characters of name>/<name>
//	index/<name>
//	snapshots/<name>
//	locks/<name>
//	pending/<name>
//	dicts/<name>
//
// Save writes to "<dir>/.tmp-<name>-<random>" in the destination directory,
// checks the byte count, fsyncs the file, renames it into place and fsyncs
// the directory, so a file is either complete and durable or absent. A
// process killed mid-save can leave ".tmp-*" files behind; List reports
// them so that a checker can find and remove them.
//
// Files are created with mode 0600 and directories with 0700.
package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/einvault/einvault/internal/backend"
)

// TempPrefix starts the names of temporary files of saves in progress.
const TempPrefix = ".tmp-"

const (
	fileMode = 0o600
	dirMode  = 0o700
)

// ErrAlreadyExists is matched by the error of Create when the directory
// already holds a repository.
var ErrAlreadyExists = errors.New("repository already exists")

// Backend stores a repository in a directory. It is safe for concurrent
// use.
type Backend struct {
	root string
}

var _ backend.Backend = (*Backend)(nil)

// dirs lists the per-type directories below the root: one per type of
// backend.AllFileTypes but config. A directory missing in an older
// repository is created by the first Save of its type.
var dirs = slices.DeleteFunc(slices.Clone(backend.AllFileTypes), func(t backend.FileType) bool { return t == backend.ConfigFile })

// Create makes the repository layout at path (creating path itself if
// needed) and returns a backend for it. It refuses, with an error matching
// ErrAlreadyExists, when path already holds a config file. Create does not
// write the config file; the caller saves it.
func Create(ctx context.Context, path string) (*Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create repository at %s: %w", path, err)
	}
	root, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("create repository at %s: %w", path, err)
	}
	b := &Backend{root: root}
	switch _, err := os.Lstat(b.path(backend.Handle{Type: backend.ConfigFile})); {
	case err == nil:
		return nil, fmt.Errorf("create repository at %s: %w (a config file is there; open it instead, or choose an empty directory)", root, ErrAlreadyExists)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, classify(fmt.Sprintf("create repository at %s", root), root, err)
	}
	mk := func(dir string) error {
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return classify(fmt.Sprintf("create repository at %s", root), dir, err)
		}
		return nil
	}
	if err := mk(root); err != nil {
		return nil, err
	}
	for _, t := range dirs {
		if err := mk(filepath.Join(root, string(t))); err != nil {
			return nil, err
		}
	}
	for i := range 256 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("create repository at %s: %w", root, err)
		}
		if err := mk(filepath.Join(root, string(backend.PackFile), fmt.Sprintf("%02x", i))); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{root, filepath.Join(root, string(backend.PackFile))} {
		if err := syncDir(d); err != nil {
			return nil, classify(fmt.Sprintf("create repository at %s", root), d, err)
		}
	}
	return b, nil
}

// Open returns a backend for the existing repository at path. When there
// is no config file the error matches backend.ErrNotExist.
func Open(ctx context.Context, path string) (*Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open repository at %s: %w", path, err)
	}
	root, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open repository at %s: %w", path, err)
	}
	b := &Backend{root: root}
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("repository not found at %s: directory does not exist (is the disk or NAS mounted? run 'einvault init' to create one): %w", root, backend.ErrNotExist)
	case err != nil:
		return nil, classify("open repository", root, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("repository not found at %s: not a directory: %w", root, backend.ErrNotExist)
	}
	cfg := b.path(backend.Handle{Type: backend.ConfigFile})
	switch _, err := os.Stat(cfg); {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("repository not found at %s: no config file (run 'einvault init' first): %w", root, backend.ErrNotExist)
	case err != nil:
		return nil, classify("open repository", cfg, err)
	}
	return b, nil
}

// Location returns the absolute path of the repository directory.
func (b *Backend) Location() string { return b.root }

// dirOf returns the directory that holds files of type t.
func (b *Backend) dirOf(t backend.FileType) string {
	if t == backend.ConfigFile {
		return b.root
	}
	return filepath.Join(b.root, string(t))
}

// path returns the file name of a validated handle.
func (b *Backend) path(h backend.Handle) string {
	switch h.Type {
	case backend.ConfigFile:
		return filepath.Join(b.root, "config")
	case backend.PackFile:
		// Temporary files are named ".tmp-<final name>-<random>" and live
		// beside their final name, so a listed leftover can be removed.
		prefix := h.Name[:2]
		if rest, ok := strings.CutPrefix(h.Name, TempPrefix); ok && len(rest) >= 2 {
			prefix = rest[:2]
		}
		return filepath.Join(b.root, string(backend.PackFile), prefix, h.Name)
	}
	return filepath.Join(b.root, string(h.Type), h.Name)
}

// check validates h for this layout: a known type, a valid name, and pack
// names long enough to pick their data/xx directory.
func check(h backend.Handle) error {
	if err := checkType(h.Type); err != nil {
		return err
	}
	if err := h.Valid(); err != nil {
		return err
	}
	if h.Type == backend.PackFile && len(h.Name) < 2 {
		return fmt.Errorf("invalid handle %v: pack names need at least two characters", h)
	}
	return nil
}

func checkType(t backend.FileType) error {
	if t == backend.ConfigFile {
		return nil
	}
	for _, d := range dirs {
		if t == d {
			return nil
		}
	}
	return fmt.Errorf("invalid file type %q: want one of %v", t, backend.AllFileTypes)
}

// ctxReader fails reads once ctx is done, so a long save stops promptly.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// readError marks an error of the caller's reader, as opposed to one of the
// file system.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

type srcReader struct{ r io.Reader }

func (r srcReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = readError{err}
	}
	return n, err
}

// Save stores size bytes from rd under h atomically and durably.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.Reader, size int64) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	if err := check(h); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if size < 0 {
		return fmt.Errorf("save %v: negative size %d", h, size)
	}
	op := "save " + h.String()
	final := b.path(h)
	dir := filepath.Dir(final)

	pattern := TempPrefix + filepath.Base(final) + "-*"
	f, err := os.CreateTemp(dir, pattern)
	if errors.Is(err, fs.ErrNotExist) && h.Type != backend.ConfigFile {
		// A data/xx directory may be missing in a copy made by a tool that
		// skips empty directories; the root itself must exist.
		if _, serr := os.Stat(b.root); serr == nil {
			if merr := os.MkdirAll(dir, dirMode); merr != nil {
				return classify(op, dir, merr)
			}
			f, err = os.CreateTemp(dir, pattern)
		}
	}
	if err != nil {
		return classify(op, dir, err)
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				_ = f.Close()
			}
			_ = os.Remove(tmp)
		}
	}()

	// CreateTemp uses 0600 already; be explicit in case that ever changes.
	if err := f.Chmod(fileMode); err != nil {
		return classify(op, tmp, err)
	}
	var n int64
	if mem, ok := inMemory(rd, size); ok {
		// Data already in memory goes down in one write, not in the
		// 32 KiB pieces of io.Copy (hundreds of system calls for a WAL
		// segment).
		n, err = mem.WriteTo(f)
	} else {
		n, err = io.Copy(f, srcReader{ctxReader{ctx, io.LimitReader(rd, size+1)}})
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		var re readError
		if errors.As(err, &re) {
			return fmt.Errorf("%s: read source: %w", op, re.err)
		}
		return classify(op, tmp, err)
	}
	if n != size {
		return fmt.Errorf("%s: source yielded %d bytes, %d announced (source changed while being saved?)", op, min(n, size+1), size)
	}
	if err := syncFile(f); err != nil {
		return classify(op, tmp, err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return classify(op, tmp, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return classify(op, final, err)
	}
	// The file is in place now; a failure to sync the directory means it
	// may not survive a power loss, which the caller must learn about, but
	// there is no temporary file left to remove.
	if err := syncDir(dir); err != nil {
		return classify(op+" (file written, directory not synced)", dir, err)
	}
	return nil
}

// inMemory returns rd as a writer of its remaining bytes when they are
// in memory and exactly size: their WriteTo is one Write, and it fails
// only with the destination's errors.
func inMemory(rd io.Reader, size int64) (io.WriterTo, bool) {
	switch r := rd.(type) {
	case *bytes.Reader:
		return r, int64(r.Len()) == size
	case *bytes.Buffer:
		return r, int64(r.Len()) == size
	case *strings.Reader:
		return r, int64(r.Len()) == size
	}
	return nil, false
}

// syncFile fsyncs f, ignoring file systems that do not support it.
func syncFile(f *os.File) error {
	err := f.Sync()
	if errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}

// syncDir fsyncs a directory so that renames and creations in it are
// durable. Some file systems (SMB, some FUSE) refuse fsync on directories;
// that is ignored.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// sectionReadCloser closes the file under a SectionReader.
type sectionReadCloser struct {
	*io.SectionReader
	f *os.File
}

func (s sectionReadCloser) Close() error { return s.f.Close() }

// Load returns a reader over length bytes of h at offset; length 0 means to
// the end.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load %v: %w", h, err)
	}
	if err := check(h); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("load %v: invalid range offset %d length %d", h, offset, length)
	}
	op := "load " + h.String()
	name := b.path(h)
	f, err := os.Open(name)
	if err != nil {
		return nil, classify(op, name, err)
	}
	if length > 0 {
		return sectionReadCloser{io.NewSectionReader(f, offset, length), f}, nil
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			_ = f.Close()
			return nil, classify(op, name, err)
		}
	}
	return f, nil
}

// Stat returns the size of h.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return backend.FileInfo{}, fmt.Errorf("stat %v: %w", h, err)
	}
	if err := check(h); err != nil {
		return backend.FileInfo{}, fmt.Errorf("stat: %w", err)
	}
	name := b.path(h)
	fi, err := os.Stat(name)
	if err != nil {
		return backend.FileInfo{}, classify("stat "+h.String(), name, err)
	}
	if !fi.Mode().IsRegular() {
		return backend.FileInfo{}, fmt.Errorf("stat %v: %s is not a regular file (%v); remove or move it", h, name, fi.Mode().Type())
	}
	return backend.FileInfo{Name: fi.Name(), Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List calls fn for every regular file of type t, including ".tmp-*"
// leftovers of interrupted saves. For packs it walks every directory below
// data/. A missing type directory is an error, not an empty listing: it
// usually means the NAS is not mounted, and an empty listing would make
// every pack look lost. An error from fn stops the listing and is returned
// as is.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %v: %w", t, err)
	}
	if err := checkType(t); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	op := "list " + string(t)
	switch t {
	case backend.ConfigFile:
		fi, err := b.Stat(ctx, backend.Handle{Type: backend.ConfigFile})
		if errors.Is(err, backend.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
	case backend.PackFile:
		top := b.dirOf(t)
		subdirs, err := os.ReadDir(top)
		if err != nil {
			return classify(op, top, err)
		}
		for _, sd := range subdirs {
			if !sd.IsDir() {
				continue
			}
			if err := listDir(ctx, op, filepath.Join(top, sd.Name()), fn); err != nil {
				return err
			}
		}
		return nil
	default:
		return listDir(ctx, op, b.dirOf(t), fn)
	}
}

// listDir calls fn for the regular files in dir, reading the directory in
// batches so that memory stays bounded for huge directories.
func listDir(ctx context.Context, op, dir string, fn func(backend.FileInfo) error) error {
	d, err := os.Open(dir)
	if err != nil {
		return classify(op, dir, err)
	}
	defer d.Close()
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		entries, err := d.ReadDir(1000)
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			info, ierr := e.Info()
			if errors.Is(ierr, fs.ErrNotExist) {
				continue // removed while listing
			}
			if ierr != nil {
				return classify(op, filepath.Join(dir, e.Name()), ierr)
			}
			if err := fn(backend.FileInfo{Name: e.Name(), Size: info.Size(), ModTime: info.ModTime()}); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return classify(op, dir, err)
		}
	}
}

// Remove deletes h.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove %v: %w", h, err)
	}
	if err := check(h); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	name := b.path(h)
	if err := os.Remove(name); err != nil {
		return classify("remove "+h.String(), name, err)
	}
	return nil
}

// Close releases nothing; it exists for the interface.
func (b *Backend) Close() error { return nil }

// FreeSpace returns the bytes available to an unprivileged user on the
// file system holding the repository.
func (b *Backend) FreeSpace(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("free space at %s: %w", b.root, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(b.root, &st); err != nil {
		return 0, classify("free space", b.root, &fs.PathError{Op: "statfs", Path: b.root, Err: err})
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// classify turns a file system error into a backend error: a missing file
// matches backend.ErrNotExist (and still fs.ErrNotExist), errors a retry
// can cure are marked transient, and the common permanent ones get a
// message that says what to do.
func classify(op, path string, err error) error {
	var errno syscall.Errno
	errors.As(err, &errno)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w: %w", op, backend.ErrNotExist, err)
	case errno == syscall.ENOSPC:
		return fmt.Errorf("%s: disk full at %s: free space and run again: %w", op, path, err)
	case errno == syscall.EDQUOT:
		return fmt.Errorf("%s: disk quota exceeded at %s: raise the quota or free space and run again: %w", op, path, err)
	case errno == syscall.EIO:
		return fmt.Errorf("%s: I/O error at %s: check the disk or NAS connection (kernel log) and run 'einvault check': %w", op, path, err)
	case errno == syscall.EROFS:
		return fmt.Errorf("%s: read-only file system at %s: remount it read-write: %w", op, path, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: permission denied at %s: give the einvault user access to the repository directory: %w", op, path, err)
	case errno == syscall.ETIMEDOUT || errno == syscall.ESTALE || errno == syscall.EAGAIN:
		// NAS mounts (NFS soft mounts, SMB) report these for a server that
		// is briefly away or restarted.
		return backend.Transient(fmt.Errorf("%s: %s temporarily unavailable: %w", op, path, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

var _ backend.TempFiler = (*Backend)(nil)

// TempFile creates a temporary file in the directory of type t.
func (b *Backend) TempFile(t backend.FileType) (*os.File, error) {
	if err := checkType(t); err != nil {
		return nil, err
	}
	dir, pattern := b.dirOf(t), TempPrefix+"stream-*"
	if t == backend.PackFile {
		// Live in a data/xx directory under a name whose two characters
		// after the prefix name it, so a leftover is listed and removable.
		var rb [1]byte
		_, _ = rand.Read(rb[:])
		sub := hex.EncodeToString(rb[:])
		dir, pattern = filepath.Join(dir, sub), TempPrefix+sub+"-stream-*"
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, classify("create temporary file", dir, err)
	}
	return f, nil
}

// CommitTemp fsyncs f, renames it to h's place and fsyncs the directory.
func (b *Backend) CommitTemp(ctx context.Context, h backend.Handle, f *os.File) (err error) {
	tmp := f.Name()
	op := "save " + h.String()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err := check(h); err != nil {
		_ = f.Close()
		return fmt.Errorf("save: %w", err)
	}
	if err := syncFile(f); err != nil {
		_ = f.Close()
		return classify(op, tmp, err)
	}
	if err := f.Close(); err != nil {
		return classify(op, tmp, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	final := b.path(h)
	dir := filepath.Dir(final)
	if err := os.Rename(tmp, final); errors.Is(err, fs.ErrNotExist) {
		if merr := os.MkdirAll(dir, dirMode); merr != nil {
			return classify(op, dir, merr)
		}
		err = os.Rename(tmp, final)
		if err != nil {
			return classify(op, final, err)
		}
	} else if err != nil {
		return classify(op, final, err)
	}
	if err := syncDir(dir); err != nil {
		return classify(op+" (file written, directory not synced)", dir, err)
	}
	return nil
}
