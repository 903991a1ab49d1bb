package pg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Counting rows from the dump itself: pg_dump --format=custom
// --compress=0 writes each table's COPY data uncompressed, one row per
// line, so the rows a dump holds can be counted as it streams past,
// exactly and in the dump's own snapshot, without a second scan of
// every table on the server (SELECT count(*) reads each table once
// more and competed with pg_dump for the same CPU and disk).

// Archive block types of the custom format (pg_backup_custom.c).
const (
	blkData  = 1
	blkBlobs = 3
)

// tocTable is the table a TABLE DATA entry of the dump's TOC fills.
type tocTable struct{ schema, name string }

// DumpRowCounts parses a custom-format archive from r and returns the
// number of rows in each table's data, keyed by schema and table name.
// It reads r to the end (also after an error, so a tee feeding it never
// blocks). Archives it cannot count exactly — compressed data, an
// unknown format version — give an error: the caller counts in SQL
// instead.
func DumpRowCounts(r io.Reader) (map[tocTable]int64, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	counts, err := dumpRowCounts(br)
	_, _ = io.Copy(io.Discard, br)
	return counts, err
}

type archiveReader struct {
	r       *bufio.Reader
	intSize int
	offSize int
}

var errBadArchive = errors.New("not a pg_dump custom-format archive it can count")

func (a *archiveReader) byte() (byte, error) { return a.r.ReadByte() }

// int reads pg_dump's integer: a sign byte, then intSize bytes, least
// significant first.
func (a *archiveReader) int() (int64, error) {
	sign, err := a.r.ReadByte()
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := 0; i < a.intSize; i++ {
		b, err := a.r.ReadByte()
		if err != nil {
			return 0, err
		}
		if i < 8 {
			v |= uint64(b) << (8 * i)
		}
	}
	if v > 1<<62 {
		return 0, fmt.Errorf("%w: integer out of range", errBadArchive)
	}
	if sign != 0 {
		return -int64(v), nil
	}
	return int64(v), nil
}

// str reads a length-prefixed string; -1 is NULL (returned as "").
func (a *archiveReader) str() (string, error) {
	n, err := a.int()
	if err != nil || n <= 0 {
		return "", err
	}
	if n > 1<<30 {
		return "", fmt.Errorf("%w: string of %d bytes", errBadArchive, n)
	}
	b := make([]byte, 0, min(n, 64<<10))
	buf := bytes.NewBuffer(b)
	if _, err := io.CopyN(buf, a.r, n); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func (a *archiveReader) skip(n int) error {
	_, err := a.r.Discard(n)
	return err
}

func dumpRowCounts(br *bufio.Reader) (map[tocTable]int64, error) {
	a := &archiveReader{r: br, intSize: 4}
	magic := make([]byte, 5)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != "PGDMP" {
		return nil, fmt.Errorf("%w: bad magic", errBadArchive)
	}
	var v [6]byte // major, minor, rev, intSize, offSize, format
	if _, err := io.ReadFull(br, v[:]); err != nil {
		return nil, err
	}
	major, minor := v[0], v[1]
	a.intSize, a.offSize = int(v[3]), int(v[4])
	if major != 1 || minor < 14 || minor > 16 || a.intSize < 1 || a.intSize > 8 || a.offSize < 1 || a.offSize > 16 || v[5] != 1 {
		return nil, fmt.Errorf("%w: archive version %d.%d, format %d", errBadArchive, major, minor, v[5])
	}
	// Compression: an int (the zlib level) up to 1.14, then a byte (the
	// algorithm). Either way 0 means none.
	var compression int64
	if minor >= 15 {
		b, err := a.byte()
		if err != nil {
			return nil, err
		}
		compression = int64(b)
	} else {
		c, err := a.int()
		if err != nil {
			return nil, err
		}
		compression = c
	}
	if compression != 0 {
		return nil, fmt.Errorf("%w: table data is compressed", errBadArchive)
	}
	for range 7 { // creation time
		if _, err := a.int(); err != nil {
			return nil, err
		}
	}
	for range 3 { // database, server version, pg_dump version
		if _, err := a.str(); err != nil {
			return nil, err
		}
	}
	n, err := a.int()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > 1<<24 {
		return nil, fmt.Errorf("%w: %d TOC entries", errBadArchive, n)
	}
	tables := map[int64]tocTable{}
	for range n {
		id, err := a.int()
		if err != nil {
			return nil, err
		}
		if _, err := a.int(); err != nil { // has data dumper
			return nil, err
		}
		var f [10]string // tableoid, oid, tag, desc, (section), defn, drop, copy, namespace, tablespace, tableam
		for i := range f {
			if i == 4 {
				if _, err := a.int(); err != nil { // section
					return nil, err
				}
			}
			if f[i], err = a.str(); err != nil {
				return nil, err
			}
		}
		if minor >= 16 {
			if _, err := a.int(); err != nil { // relkind
				return nil, err
			}
		}
		if _, err := a.str(); err != nil { // owner
			return nil, err
		}
		if _, err := a.str(); err != nil { // "false" (with oids)
			return nil, err
		}
		for deps := 0; ; deps++ { // dependencies, up to a NULL
			l, err := a.int()
			if err != nil {
				return nil, err
			}
			if l < 0 {
				break
			}
			if l > 64 || deps > 1<<20 {
				return nil, fmt.Errorf("%w: bad dependency list", errBadArchive)
			}
			if err := a.skip(int(l)); err != nil {
				return nil, err
			}
		}
		if err := a.skip(1 + a.offSize); err != nil { // data offset (custom format)
			return nil, err
		}
		if f[3] == "TABLE DATA" {
			tables[id] = tocTable{schema: f[7], name: f[2]}
		}
	}
	counts, uncounted := map[tocTable]int64{}, map[tocTable]bool{}
	for {
		typ, err := a.byte()
		if err == io.EOF {
			return counts, nil
		}
		if err != nil {
			return nil, err
		}
		id, err := a.int()
		if err != nil {
			return nil, err
		}
		switch typ {
		case blkData:
			rows, tail, err := a.countChunks()
			if err != nil {
				return nil, err
			}
			t, ok := tables[id]
			switch {
			case !ok || uncounted[t]:
			case string(tail[:]) == copyEnd:
				counts[t] += rows - int64(len(copyEnd)-2) // the end marker's newlines are no rows
			default:
				// Not COPY text (--inserts?): leave the table to SQL.
				uncounted[t] = true
				delete(counts, t)
			}
		case blkBlobs:
			for {
				oid, err := a.int()
				if err != nil {
					return nil, err
				}
				if oid == 0 {
					break
				}
				if _, _, err := a.countChunks(); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("%w: unknown block type %d", errBadArchive, typ)
		}
	}
}

// copyEnd ends the COPY data of every table in a dump (pg_dump writes
// it after the rows).
const copyEnd = "\\.\n\n\n"

// countChunks reads data chunks up to the empty one that ends them and
// returns the number of newlines in them and their last bytes.
func (a *archiveReader) countChunks() (int64, [len(copyEnd)]byte, error) {
	var rows int64
	var tail [len(copyEnd)]byte
	for {
		l, err := a.int()
		if err != nil {
			return 0, tail, err
		}
		if l == 0 {
			return rows, tail, nil
		}
		if l < 0 || l > 1<<30 {
			return 0, tail, fmt.Errorf("%w: data chunk of %d bytes", errBadArchive, l)
		}
		for l > 0 {
			b, err := a.r.Peek(int(min(l, int64(a.r.Size()))))
			if len(b) == 0 && err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return 0, tail, err
			}
			rows += int64(bytes.Count(b, []byte{'\n'}))
			if len(b) >= len(tail) {
				copy(tail[:], b[len(b)-len(tail):])
			} else {
				k := copy(tail[:], tail[len(b):])
				copy(tail[k:], b)
			}
			_, _ = a.r.Discard(len(b))
			l -= int64(len(b))
		}
	}
}
