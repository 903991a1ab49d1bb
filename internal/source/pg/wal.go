package pg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/repo"
)

// WAL file names PostgreSQL archives: segments (24 hex digits: timeline,
// log, segment), timeline history files, backup history files and
// partial segments.
var walNameRE = regexp.MustCompile(`^([0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$`)

// ValidWALName reports whether name is a file name PostgreSQL archives.
func ValidWALName(name string) bool { return walNameRE.MatchString(name) }

// Segment is a parsed WAL segment name.
type Segment struct {
	Timeline uint32
	Log      uint32 // high 32 bits of the segment's LSN
	Seg      uint32 // segment number within Log (0..0xFF for 16 MiB segments)
}

// ParseSegment parses a 24-hex-digit segment name.
func ParseSegment(name string) (Segment, bool) {
	if len(name) != 24 || !walNameRE.MatchString(name) {
		return Segment{}, false
	}
	var v [3]uint32
	for i := range v {
		x, err := strconv.ParseUint(name[i*8:i*8+8], 16, 32)
		if err != nil {
			return Segment{}, false
		}
		v[i] = uint32(x)
	}
	return Segment{Timeline: v[0], Log: v[1], Seg: v[2]}, true
}

// String is the segment's file name.
func (s Segment) String() string { return fmt.Sprintf("%08X%08X%08X", s.Timeline, s.Log, s.Seg) }

// segsPerLog is the number of 16 MiB segments per 4 GiB "log" id.
const (
	SegmentSize = 16 << 20
	segsPerLog  = 0x100000000 / SegmentSize
)

// Number is the segment's position in the WAL (independent of timeline).
func (s Segment) Number() uint64 { return uint64(s.Log)*segsPerLog + uint64(s.Seg) }

// StartLSN and EndLSN bound the WAL the segment holds.
func (s Segment) StartLSN() LSN { return LSN(s.Number() * SegmentSize) }

// EndLSN is the first LSN after the segment.
func (s Segment) EndLSN() LSN { return LSN((s.Number() + 1) * SegmentSize) }

// SegmentOf returns the segment holding lsn on a timeline.
func SegmentOf(tli uint32, lsn LSN) Segment {
	n := uint64(lsn) / SegmentSize
	return Segment{Timeline: tli, Log: uint32(n / segsPerLog), Seg: uint32(n % segsPerLog)}
}

// LSN is a PostgreSQL log sequence number.
type LSN uint64

// ParseLSN parses "X/Y".
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := cut(s, '/')
	if !ok {
		return 0, fmt.Errorf("invalid LSN %q: want the form 0/16B3748", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil || hi == "" || lo == "" {
		return 0, fmt.Errorf("invalid LSN %q: want the form 0/16B3748", s)
	}
	return LSN(h<<32 | l), nil
}

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xFFFFFFFF) }

func cut(s string, sep byte) (string, string, bool) {
	i := bytes.IndexByte([]byte(s), sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// WALStore keeps archived WAL files as one sealed file each, wal/<name>,
// written and found by name without the repository index.
type WALStore struct {
	r  *repo.Repository
	be backend.Backend
}

// NewWALStore returns the WAL store of an open repository (typically
// opened with repo.OpenWithKeyCache).
func NewWALStore(r *repo.Repository) *WALStore { return &WALStore{r: r, be: r.Backend()} }

// ErrWALConflict is returned when a WAL file of the same name but other
// content is already archived: two clusters archive into one repository
// (or a stale cluster was started after a restore).
var ErrWALConflict = errors.New("a different WAL file of the same name is already archived")

// ErrWALMissing is returned by Fetch for a WAL file that is not archived.
var ErrWALMissing = errors.New("WAL file is not in the archive")

// PushResult tells what Push did.
type PushResult struct {
	Name            string `json:"name"`
	Bytes           int    `json:"bytes"`
	Stored          int    `json:"stored_bytes"`
	AlreadyArchived bool   `json:"already_archived"`
}

// Push archives a WAL file. It is idempotent: pushing the same name with
// the same content again succeeds without writing; the same name with
// different content fails with ErrWALConflict and changes nothing.
func (s *WALStore) Push(ctx context.Context, name string, content []byte) (PushResult, error) {
	return s.PushTo(ctx, s.be, name, content, nil)
}

// PushTo is Push into be, another copy of the repository. sealed, when
// not nil, is content already sealed by an earlier PushTo (sealing once
// per segment, not once per copy).
func (s *WALStore) PushTo(ctx context.Context, be backend.Backend, name string, content, sealed []byte) (PushResult, error) {
	res := PushResult{Name: name, Bytes: len(content)}
	if !ValidWALName(name) {
		return res, fmt.Errorf("%q is not a PostgreSQL WAL file name (archive_command must pass %%p)", name)
	}
	h := backend.Handle{Type: backend.WALFile, Name: name}
	if _, err := be.Stat(ctx, h); err == nil {
		old, err := s.fetchFrom(ctx, be, name)
		if err != nil {
			return res, fmt.Errorf("compare with the archived %s: %w", name, err)
		}
		if !bytes.Equal(old, content) {
			return res, fmt.Errorf("%w: %s (is another cluster archiving into this repository? each cluster needs its own)", ErrWALConflict, name)
		}
		res.AlreadyArchived = true
		return res, nil
	} else if !errors.Is(err, backend.ErrNotExist) {
		return res, fmt.Errorf("look up wal/%s: %w", name, err)
	}
	if sealed == nil {
		var err error
		if sealed, err = s.r.SealWAL(name, content); err != nil {
			return res, err
		}
	}
	if err := be.Save(ctx, h, bytes.NewReader(sealed), int64(len(sealed))); err != nil {
		return res, fmt.Errorf("store wal/%s: %w", name, err)
	}
	res.Stored = len(sealed)
	return res, nil
}

// Fetch returns the content of an archived WAL file, or an error matching
// ErrWALMissing.
func (s *WALStore) Fetch(ctx context.Context, name string) ([]byte, error) {
	if !ValidWALName(name) {
		return nil, fmt.Errorf("%q is not a PostgreSQL WAL file name (restore_command must pass %%f)", name)
	}
	return s.fetchFrom(ctx, s.be, name)
}

func (s *WALStore) fetchFrom(ctx context.Context, be backend.Backend, name string) ([]byte, error) {
	data, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.WALFile, Name: name})
	if errors.Is(err, backend.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrWALMissing, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read wal/%s: %w", name, err)
	}
	return s.r.OpenWAL(name, data)
}

// FetchFrom is Fetch from be, another copy of the repository.
func (s *WALStore) FetchFrom(ctx context.Context, be backend.Backend, name string) ([]byte, error) {
	if !ValidWALName(name) {
		return nil, fmt.Errorf("%q is not a PostgreSQL WAL file name (restore_command must pass %%f)", name)
	}
	return s.fetchFrom(ctx, be, name)
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

// List returns the names of all archived WAL files, sorted.
func (s *WALStore) List(ctx context.Context) ([]string, error) {
	var names []string
	err := s.be.List(ctx, backend.WALFile, func(fi backend.FileInfo) error {
		if ValidWALName(fi.Name) {
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
func (s *WALStore) Remove(ctx context.Context, name string) error {
	return s.be.Remove(ctx, backend.Handle{Type: backend.WALFile, Name: name})
}

// ReadWALFile reads a WAL file PostgreSQL asks to archive, into a buffer
// of exactly its size (one allocation: a 16 MiB segment read through a
// growing buffer cost more CPU than compressing it).
func ReadWALFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read WAL file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read WAL file %s: %w", path, err)
	}
	buf := make([]byte, st.Size())
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("read WAL file %s: %w", path, err)
	}
	buf = buf[:n]
	// A file that grew after Stat is read to its end as well.
	var extra bytes.Buffer
	if _, err := io.Copy(&extra, f); err != nil {
		return nil, fmt.Errorf("read WAL file %s: %w", path, err)
	}
	if extra.Len() > 0 {
		buf = append(buf, extra.Bytes()...)
	}
	return buf, nil
}
