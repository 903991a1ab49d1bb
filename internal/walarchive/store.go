// Package walarchive archives PostgreSQL WAL files into a repository and
// its copies, and fetches them back: the work of archive_command
// ('einvault wal-push', 'einvault-wal wal-push') and restore_command
// ('wal-fetch'). PostgreSQL starts one process per WAL segment, so the
// package imports only what a push needs (repository, crypto, storage)
// and nothing of the rest of einvault: the small einvault-wal binary is
// built from it and starts in a few milliseconds.
package walarchive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/repo"
)

// ValidName reports whether name is a file name PostgreSQL archives:
// segments (24 hex digits: timeline, log, segment), timeline history
// files, backup history files and partial segments. It is a hand-written
// matcher, not a regular expression, to keep process start cheap.
func ValidName(name string) bool {
	switch {
	case len(name) == 24:
		return upperHex(name)
	case len(name) == 32 && name[24:] == ".partial":
		return upperHex(name[:24])
	case len(name) == 40 && name[24] == '.' && name[33:] == ".backup":
		return upperHex(name[:24]) && upperHex(name[25:33])
	case len(name) == 16 && name[8:] == ".history":
		return upperHex(name[:8])
	}
	return false
}

func upperHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Store keeps archived WAL files as one sealed file each, wal/<name>,
// written and found by name without the repository index.
type Store struct {
	r     *repo.Repository
	be    backend.Backend
	arena *arena // memory to seal in; nil: the Go heap
}

// NewStore returns the WAL store of an open repository (typically opened
// with OpenWithKeyCache).
func NewStore(r *repo.Repository) *Store { return &Store{r: r, be: r.Backend()} }

// ErrConflict is returned when a WAL file of the same name but other
// content is already archived: two clusters archive into one repository
// (or a stale cluster was started after a restore).
var ErrConflict = errors.New("a different WAL file of the same name is already archived")

// ErrMissing is returned by Fetch for a WAL file that is not archived.
var ErrMissing = errors.New("WAL file is not in the archive")

// PushResult tells what Push did.
type PushResult struct {
	Name            string `json:"name"`
	Bytes           int    `json:"bytes"`
	Stored          int    `json:"stored_bytes"`
	AlreadyArchived bool   `json:"already_archived"`
}

// Push archives a WAL file. It is idempotent: pushing the same name with
// the same content again succeeds without writing; the same name with
// different content fails with ErrConflict and changes nothing.
func (s *Store) Push(ctx context.Context, name string, content []byte) (PushResult, error) {
	return s.PushTo(ctx, s.be, name, content, nil)
}

// PushTo is Push into be, another copy of the repository. sealed, when
// not nil, is content already sealed by an earlier PushTo (sealing once
// per segment, not once per copy).
func (s *Store) PushTo(ctx context.Context, be backend.Backend, name string, content, sealed []byte) (PushResult, error) {
	res, _, err := s.pushTo(ctx, be, name, source{data: content, size: int64(len(content))}, sealed)
	return res, err
}

// source is the content of a WAL file to push: in memory, or a file
// read block by block while it is sealed.
type source struct {
	data []byte
	file io.ReaderAt // when not nil, the content is size bytes of it
	size int64
}

// bytes returns the whole content (reading the file when there is one).
func (src source) bytes() ([]byte, error) {
	if src.file == nil {
		return src.data, nil
	}
	b := make([]byte, src.size)
	n, err := src.file.ReadAt(b, 0)
	if int64(n) == src.size {
		return b, nil
	}
	if err == nil || err == io.EOF {
		err = fmt.Errorf("read %d bytes, %d expected (the file shrank while being archived)", n, src.size)
	}
	return nil, fmt.Errorf("read WAL file: %w", err)
}

// seal seals the content in the store's arena.
func (s *Store) seal(name string, src source) ([]byte, error) {
	if src.file != nil {
		return s.r.SealWALFrom(name, src.file, src.size, s.arena.alloc)
	}
	return s.r.SealWALWith(name, src.data, s.arena.alloc)
}

// pushTo is PushTo of src; it returns the sealed file it stored (nil
// when the file was already archived).
func (s *Store) pushTo(ctx context.Context, be backend.Backend, name string, src source, sealed []byte) (PushResult, []byte, error) {
	res := PushResult{Name: name, Bytes: int(src.size)}
	if !ValidName(name) {
		return res, nil, fmt.Errorf("%q is not a PostgreSQL WAL file name (archive_command must pass %%p)", name)
	}
	h := backend.Handle{Type: backend.WALFile, Name: name}
	if _, err := be.Stat(ctx, h); err == nil {
		old, err := s.fetchFrom(ctx, be, name)
		if err != nil {
			return res, nil, fmt.Errorf("compare with the archived %s: %w", name, err)
		}
		content, err := src.bytes()
		if err != nil {
			return res, nil, err
		}
		if !bytes.Equal(old, content) {
			return res, nil, fmt.Errorf("%w: %s (is another cluster archiving into this repository? each cluster needs its own)", ErrConflict, name)
		}
		res.AlreadyArchived = true
		return res, nil, nil
	} else if !errors.Is(err, backend.ErrNotExist) {
		return res, nil, fmt.Errorf("look up wal/%s: %w", name, err)
	}
	if sealed == nil {
		var err error
		if sealed, err = s.seal(name, src); err != nil {
			return res, nil, err
		}
	}
	if err := be.Save(ctx, h, bytes.NewReader(sealed), int64(len(sealed))); err != nil {
		return res, sealed, fmt.Errorf("store wal/%s: %w", name, err)
	}
	res.Stored = len(sealed)
	return res, sealed, nil
}

// Fetch returns the content of an archived WAL file, or an error matching
// ErrMissing.
func (s *Store) Fetch(ctx context.Context, name string) ([]byte, error) {
	return s.FetchFrom(ctx, s.be, name)
}

// FetchFrom is Fetch from be, another copy of the repository.
func (s *Store) FetchFrom(ctx context.Context, be backend.Backend, name string) ([]byte, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%q is not a PostgreSQL WAL file name (restore_command must pass %%f)", name)
	}
	return s.fetchFrom(ctx, be, name)
}

func (s *Store) fetchFrom(ctx context.Context, be backend.Backend, name string) ([]byte, error) {
	data, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.WALFile, Name: name})
	if errors.Is(err, backend.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrMissing, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read wal/%s: %w", name, err)
	}
	return s.r.OpenWAL(name, data)
}

// List returns the names of all archived WAL files, sorted.
func (s *Store) List(ctx context.Context) ([]string, error) {
	var names []string
	err := s.be.List(ctx, backend.WALFile, func(fi backend.FileInfo) error {
		if ValidName(fi.Name) {
			names = append(names, fi.Name)
		}
		return nil
	})
	if err != nil && !errors.Is(err, backend.ErrNotExist) {
		return nil, fmt.Errorf("list archived WAL: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// Remove deletes an archived WAL file.
func (s *Store) Remove(ctx context.Context, name string) error {
	return s.be.Remove(ctx, backend.Handle{Type: backend.WALFile, Name: name})
}

// WriteFileAtomic writes a fetched WAL file to path atomically (temporary
// file in the same directory, fsync, rename), as restore_command must.
func WriteFileAtomic(path, name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".einvault-"+name+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
