// Package backend defines the storage interface that every place a
// repository can live in (local disk or NAS, memory, later S3, SFTP and
// rclone remotes) implements, and the errors a backend reports.
//
// A backend stores opaque, immutable files addressed by a Handle (a file
// type and a name). It knows nothing of the repository format: encryption,
// packing and indexing live in package repo.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// FileType is the kind of a repository file. Each kind lives in its own
// namespace (a directory on disk, a key prefix on S3).
type FileType string

// The file types of repository format v1.
const (
	ConfigFile   FileType = "config"    // exactly one file, name "config"
	KeyFile      FileType = "keys"      // one file per password
	PackFile     FileType = "data"      // packs of sealed blobs, stored as data/xx/<id>
	IndexFile    FileType = "index"     // blob -> pack maps
	SnapshotFile FileType = "snapshots" // one file per snapshot
	LockFile     FileType = "locks"     // writer announcements with heartbeats
	PendingFile  FileType = "pending"   // prune marks awaiting their grace window
	DictFile     FileType = "dicts"     // compression dictionaries
	CopiesFile   FileType = "copies"    // the copy list (package replica)
	WALFile      FileType = "wal"       // archived PostgreSQL WAL files, named as PostgreSQL names them
	CatalogFile  FileType = "catalogs"  // invoice catalogs of snapshots
)

// AllFileTypes lists every file type, in the order a copy should be made
// (data before the files that refer to it).
var AllFileTypes = []FileType{ConfigFile, KeyFile, DictFile, PackFile, IndexFile, CatalogFile, SnapshotFile, PendingFile, CopiesFile, WALFile, LockFile}

// Handle names one file in a backend.
type Handle struct {
	Type FileType
	Name string
}

func (h Handle) String() string {
	if h.Type == ConfigFile {
		return "config"
	}
	return string(h.Type) + "/" + h.Name
}

// Valid reports whether h can name a file: the name must be non-empty and
// must not contain path separators or dot segments.
func (h Handle) Valid() error {
	if h.Type == "" {
		return fmt.Errorf("invalid handle %q: empty file type", h.Name)
	}
	if h.Type == ConfigFile {
		return nil
	}
	if h.Name == "" || h.Name == "." || h.Name == ".." {
		return fmt.Errorf("invalid handle %v: bad name", h)
	}
	for _, c := range h.Name {
		if c == '/' || c == '\\' || c == 0 {
			return fmt.Errorf("invalid handle %v: name contains %q", h, c)
		}
	}
	return nil
}

// FileInfo describes a stored file.
type FileInfo struct {
	Name string
	Size int64
	// ModTime is when the file was stored, where the storage says
	// (local, SFTP, S3); zero where it does not.
	ModTime time.Time
}

// Backend is the storage contract.
//
//   - Save stores the whole content of rd under h atomically: afterwards the
//     file either has exactly the given content or does not exist; a reader
//     never sees a partial file. size is the number of bytes rd yields (it
//     lets object stores stream without buffering); a mismatch is an error
//     and leaves nothing behind. Saving an existing name replaces it
//     atomically (repository files are content-addressed, so a replacement
//     normally has identical content). When Save returns nil the file is
//     durable (fsynced or acknowledged by the store).
//   - Load returns a reader over length bytes starting at offset; length 0
//     means "to the end". Reading past the end returns fewer bytes, never
//     data from another file. The caller closes the reader.
//   - Read-after-write: a file whose Save has returned is visible to Load,
//     Stat and List on the same backend.
//   - List calls fn for every file of type t, in no particular order. It may
//     include leftover temporary files of interrupted saves only if their
//     names cannot be mistaken for repository IDs (local: ".tmp-" prefix).
//   - Remove deletes one file; removing a missing file returns an error
//     matching ErrNotExist.
//   - Errors: a missing file matches errors.Is(err, ErrNotExist); errors
//     that are worth a retry (timeouts, connection resets) are wrapped by
//     Transient; everything else is permanent.
//   - Every method honours ctx cancellation.
//
// Implementations must be safe for concurrent use.
type Backend interface {
	// Location is a human-readable description such as a path or URL,
	// without secrets.
	Location() string
	Save(ctx context.Context, h Handle, rd io.Reader, size int64) error
	Load(ctx context.Context, h Handle, offset, length int64) (io.ReadCloser, error)
	Stat(ctx context.Context, h Handle) (FileInfo, error)
	List(ctx context.Context, t FileType, fn func(FileInfo) error) error
	Remove(ctx context.Context, h Handle) error
	Close() error
}

// ErrNotExist is matched by errors for files that do not exist.
var ErrNotExist = errors.New("file does not exist")

// transientError marks an error as worth a retry.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// Transient marks err as temporary: a retry may succeed.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err}
}

// IsTransient reports whether err (or an error it wraps) was marked
// with Transient.
func IsTransient(err error) bool {
	var t transientError
	return errors.As(err, &t)
}

// LoadAll reads a whole file.
func LoadAll(ctx context.Context, be Backend, h Handle) ([]byte, error) {
	rd, err := be.Load(ctx, h, 0, 0)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	buf, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read %v: %w", h, err)
	}
	return buf, nil
}

// LoadRange reads exactly length bytes at offset; a short file is an error.
func LoadRange(ctx context.Context, be Backend, h Handle, offset, length int64, buf []byte) ([]byte, error) {
	rd, err := be.Load(ctx, h, offset, length)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	if int64(cap(buf)) < length {
		buf = make([]byte, length)
	}
	buf = buf[:length]
	if _, err := io.ReadFull(rd, buf); err != nil {
		return nil, fmt.Errorf("read %v at %d+%d: %w", h, offset, length, err)
	}
	return buf, nil
}

// TempFiler is implemented by backends on a local file system. A writer
// that produces a file incrementally (a pack) writes it to a TempFile
// inside the repository and CommitTemp moves it into place with one
// rename, avoiding a second copy. Decorators need not forward it: callers
// fall back to Save.
type TempFiler interface {
	// TempFile creates an empty temporary file for a file of type t, on
	// the same file system as its final place.
	TempFile(t FileType) (*os.File, error)
	// CommitTemp makes f durable and renames it to h. It closes f; on
	// error the temporary file is removed.
	CommitTemp(ctx context.Context, h Handle, f *os.File) error
}

// ErrSpaceUnknown is matched by FreeSpace errors when a backend cannot
// tell how much space is left (an S3 bucket without a configured quota).
var ErrSpaceUnknown = errors.New("free space unknown")

// SpaceReporter is implemented by backends that can tell the free space
// at their location (statfs for local paths, the statvfs extension for
// SFTP, a configured quota minus usage for S3). Pre-flight checks use it.
type SpaceReporter interface {
	// FreeSpace returns the bytes that can still be written, or an error
	// matching ErrSpaceUnknown.
	FreeSpace(ctx context.Context) (int64, error)
}

// ErrProtected is matched by Remove errors for files that the storage
// refuses to delete because a retention period still protects them (S3
// object lock). The message says until when; callers that clean up
// (prune) report such files as kept rather than failing.
var ErrProtected = errors.New("protected by a retention period")
