package pg

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/walarchive"
)

// ValidWALName reports whether name is a file name PostgreSQL archives:
// segments, timeline history files, backup history files and partial
// segments.
func ValidWALName(name string) bool { return walarchive.ValidName(name) }

// Segment is a parsed WAL segment name.
type Segment struct {
	Timeline uint32
	Log      uint32 // high 32 bits of the segment's LSN
	Seg      uint32 // segment number within Log (0..0xFF for 16 MiB segments)
}

// ParseSegment parses a 24-hex-digit segment name.
func ParseSegment(name string) (Segment, bool) {
	if len(name) != 24 || !ValidWALName(name) {
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

// WALStore is the archive of WAL files in a repository (package
// walarchive, which the small einvault-wal binary shares).
type WALStore = walarchive.Store

// NewWALStore returns the WAL store of an open repository.
func NewWALStore(r *repo.Repository) *WALStore { return walarchive.NewStore(r) }

// ErrWALConflict and ErrWALMissing are walarchive's ErrConflict and
// ErrMissing.
var (
	ErrWALConflict = walarchive.ErrConflict
	ErrWALMissing  = walarchive.ErrMissing
)

// PushResult tells what a push did.
type PushResult = walarchive.PushResult

// WriteFileAtomic writes a fetched WAL file to path atomically.
func WriteFileAtomic(path, name string, data []byte) error {
	return walarchive.WriteFileAtomic(path, name, data)
}
