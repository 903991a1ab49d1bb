package pg

import (
	"bytes"
	"errors"
	"maps"
	"strings"
	"testing"
	"testing/iotest"
)

// archive builds a pg_dump custom-format archive (the layout of
// pg_backup_archiver.c WriteHead/WriteToc and pg_backup_custom.c).
type archive struct {
	bytes.Buffer
	minor byte
}

func (a *archive) int(v int) {
	sign := byte(0)
	if v < 0 {
		sign, v = 1, -v
	}
	a.WriteByte(sign)
	for range 4 {
		a.WriteByte(byte(v))
		v >>= 8
	}
}

func (a *archive) str(s string) {
	if s == "\x00null" {
		a.int(-1)
		return
	}
	a.int(len(s))
	a.WriteString(s)
}

type tocEntry struct {
	id             int
	desc, ns, name string
}

func buildArchive(minor byte, compression int, toc []tocEntry, blocks func(a *archive)) []byte {
	a := &archive{minor: minor}
	a.WriteString("PGDMP")
	a.Write([]byte{1, minor, 0, 4, 8, 1})
	if minor >= 15 {
		a.WriteByte(byte(compression))
	} else {
		a.int(compression)
	}
	for _, v := range []int{1, 2, 3, 23, 10, 126, 0} {
		a.int(v)
	}
	a.str("einvoice")
	a.str("15.18")
	a.str("15.18")
	a.int(len(toc))
	for _, e := range toc {
		a.int(e.id)
		a.int(1)
		a.str("1259")
		a.str("16384")
		a.str(e.name)
		a.str(e.desc)
		a.int(3)
		a.str("")
		a.str("")
		a.str("COPY x FROM stdin;\n")
		a.str(e.ns)
		a.str("\x00null")
		a.str("heap")
		if minor >= 16 {
			a.int('r')
		}
		a.str("postgres")
		a.str("false")
		a.str("12")
		a.str("\x00null")
		a.WriteByte(1) // offset not set
		a.Write(make([]byte, 8))
	}
	blocks(a)
	return a.Bytes()
}

func dataBlock(a *archive, id int, chunks ...string) {
	a.WriteByte(blkData)
	a.int(id)
	for _, c := range chunks {
		a.int(len(c))
		a.WriteString(c)
	}
	a.int(0)
}

func TestDumpRowCounts(t *testing.T) {
	toc := []tocEntry{{1, "SCHEMA", "", "acct"}, {2, "TABLE DATA", "public", "invoices"}, {3, "TABLE DATA", "acct", "ledger"},
		{4, "TABLE DATA", "acct", "inserts"}, {5, "TABLE DATA", "public", "empty"}, {6, "BLOBS", "", "BLOBS"}}
	blocks := func(a *archive) {
		// One row per chunk, as pg_dump writes them; a length whose bytes
		// include '\n' (10) must not count.
		dataBlock(a, 2, "1\tC26T\n", "2\tC26T\n", strings.Repeat("x", 9)+"\n", copyEnd)
		dataBlock(a, 3, "1\ttwo\\nlines\n2\t\\\\.\n", "3\t\\N\n\\", ".\n\n\n") // end marker split over chunks
		dataBlock(a, 4, "INSERT INTO inserts VALUES (1);\n")                   // not COPY: left to SQL
		dataBlock(a, 5, copyEnd)
		a.WriteByte(blkBlobs)
		a.int(6)
		a.int(16500)
		a.int(len("blob\n\n\n\n\n\n"))
		a.WriteString("blob\n\n\n\n\n\n")
		a.int(0)
		a.int(0)
	}
	want := map[tocTable]int64{{"public", "invoices"}: 3, {"acct", "ledger"}: 3, {"public", "empty"}: 0}
	for _, tc := range []struct {
		name  string
		minor byte
		comp  int
		err   bool
	}{
		{"1.14 (PostgreSQL 12-15)", 14, 0, false},
		{"1.15 (PostgreSQL 16)", 15, 0, false},
		{"1.16 (PostgreSQL 17)", 16, 0, false},
		{"compressed", 14, 6, true},
		{"compressed 1.15", 15, 1, true},
		{"future version", 17, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := buildArchive(tc.minor, tc.comp, toc, blocks)
			got, err := DumpRowCounts(iotest.OneByteReader(bytes.NewReader(b)))
			if tc.err {
				if !errors.Is(err, errBadArchive) {
					t.Fatalf("err = %v, want errBadArchive", err)
				}
				return
			}
			if err != nil || !maps.Equal(got, want) {
				t.Fatalf("counts = %v, %v; want %v", got, err, want)
			}
		})
	}
	// A truncated archive is an error (the caller then counts in SQL).
	b := buildArchive(14, 0, toc, blocks)
	for _, n := range []int{3, 40, len(b) - 30, len(b) - 3} {
		if _, err := DumpRowCounts(bytes.NewReader(b[:n])); err == nil {
			t.Errorf("truncated at %d of %d: no error", n, len(b))
		}
	}
}

func FuzzDumpRowCounts(f *testing.F) {
	f.Add(buildArchive(14, 0, []tocEntry{{2, "TABLE DATA", "public", "t"}}, func(a *archive) { dataBlock(a, 2, "1\n", "2\n", copyEnd) }))
	f.Add(buildArchive(16, 0, []tocEntry{{2, "TABLE DATA", "s", "t"}, {3, "BLOBS", "", "BLOBS"}}, func(a *archive) { dataBlock(a, 2, copyEnd) }))
	f.Fuzz(func(t *testing.T, b []byte) {
		counts, err := DumpRowCounts(bytes.NewReader(b))
		if err != nil {
			return
		}
		for k, n := range counts {
			if n < 0 || int(n) > len(b) {
				t.Fatalf("%v: %d rows from %d bytes", k, n, len(b))
			}
		}
	})
}
