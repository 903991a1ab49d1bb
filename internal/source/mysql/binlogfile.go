package mysql

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Binary log event types einvault looks at (MariaDB and MySQL share
// them; MariaDB's own types start at 160).
const (
	EventQuery             = 2
	EventStop              = 3
	EventRotate            = 4
	EventFormatDescription = 15
	EventXID               = 16
	EventMariaGTID         = 162
)

// binlogMagic starts every binary log file.
var binlogMagic = []byte{0xfe, 'b', 'i', 'n'}

// eventHeaderLen is the size of a v4 event header: timestamp u32, type
// u8, server ID u32, event length u32, next position u32, flags u16.
const eventHeaderLen = 19

// maxEventLen bounds one event (MariaDB's max_allowed_packet limit is
// 1 GiB); a larger length means a damaged file.
const maxEventLen = 1 << 30

// Event is one binary log event's header.
type Event struct {
	Offset   int64 // position of the event in the file
	Time     time.Time
	Type     byte
	ServerID uint32
	Length   uint32
	Flags    uint16
}

// BinlogInfo summarises a binary log file.
type BinlogInfo struct {
	Events   int       `json:"events"`
	First    time.Time `json:"first"` // first event's time (the file's creation)
	Last     time.Time `json:"last"`  // latest event time in the file
	ServerID uint32    `json:"server_id"`
	// Closed is true when the file ends with a rotate or stop event:
	// the server finished it, nothing more will be appended.
	Closed bool  `json:"closed"`
	Size   int64 `json:"size"`
}

// ReadBinlog walks the event headers of a binary log file (version 4,
// as MariaDB 10+ and MySQL 5+ write), calling fn for each event, and
// returns a summary. Event bodies are skipped, not parsed. A truncated
// or damaged file is an error naming the offset.
func ReadBinlog(r io.Reader, fn func(Event) error) (BinlogInfo, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var info BinlogInfo
	magic := make([]byte, 4)
	if _, err := io.ReadFull(br, magic); err != nil {
		return info, fmt.Errorf("binary log: too short for a header: %w", err)
	}
	if string(magic) != string(binlogMagic) {
		return info, errors.New("binary log: not a binary log file (bad magic number)")
	}
	off := int64(4)
	var h [eventHeaderLen]byte
	var lastType byte
	for {
		n, err := io.ReadFull(br, h[:])
		if err == io.EOF {
			break
		}
		if err != nil {
			return info, fmt.Errorf("binary log: event header at offset %d truncated (%d of %d bytes)", off, n, eventHeaderLen)
		}
		ev := Event{
			Offset:   off,
			Type:     h[4],
			ServerID: binary.LittleEndian.Uint32(h[5:9]),
			Length:   binary.LittleEndian.Uint32(h[9:13]),
			Flags:    binary.LittleEndian.Uint16(h[17:19]),
		}
		if ts := binary.LittleEndian.Uint32(h[0:4]); ts != 0 {
			ev.Time = time.Unix(int64(ts), 0).UTC()
		}
		if ev.Length < eventHeaderLen || ev.Length > maxEventLen {
			return info, fmt.Errorf("binary log: event at offset %d has an impossible length %d (damaged file)", off, ev.Length)
		}
		if skipped, err := br.Discard(int(ev.Length) - eventHeaderLen); err != nil {
			return info, fmt.Errorf("binary log: event at offset %d truncated (%d of %d bytes)", off, eventHeaderLen+skipped, ev.Length)
		}
		if info.Events == 0 && ev.Type != EventFormatDescription {
			return info, fmt.Errorf("binary log: first event is type %d, not a format description (not a version 4 binary log)", ev.Type)
		}
		info.Events++
		if !ev.Time.IsZero() {
			if info.First.IsZero() {
				info.First = ev.Time
			}
			if ev.Time.After(info.Last) {
				info.Last = ev.Time
			}
		}
		if info.ServerID == 0 {
			info.ServerID = ev.ServerID
		}
		lastType = ev.Type
		off += int64(ev.Length)
		if fn != nil {
			if err := fn(ev); err != nil {
				return info, err
			}
		}
	}
	if info.Events == 0 {
		return info, errors.New("binary log: no events")
	}
	info.Closed = lastType == EventRotate || lastType == EventStop
	info.Size = off
	return info, nil
}
