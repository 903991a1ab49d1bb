// Package catalog records the invoices inside each snapshot: a catalog
// file per snapshot stored in the repository (sealed file kind 5 in
// catalogs/, named by Snapshot.Catalog), built during backup from what
// the archiver reads, and a local SQLite cache built from all catalogs for
// fast queries across snapshots (find, gaps, stats, reconcile, restore of
// one invoice without loading the repository index).
package catalog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/einvault/einvault/internal/invoice"
	"github.com/einvault/einvault/internal/repo"
)

// FormatVersion is the catalog encoding written by this package.
const FormatVersion = 1

// magic opens every catalog payload; the byte after it is the version.
const magic = "EVC1"

// Limits of the decoder: a hostile or damaged catalog cannot make a
// reader allocate without bound.
const (
	maxLine    = 4 << 20
	maxEntries = 50_000_000
	maxPacks   = 50_000_000
)

// ErrDamaged marks a catalog that does not decode.
var ErrDamaged = errors.New("catalog is damaged")

// Pack is a pack some entry's blobs live in: enough to open a blob with a
// single ranged read and without the repository index.
type Pack struct {
	ID    repo.ID `json:"id"`
	Epoch uint32  `json:"epoch"`
	Salt  []byte  `json:"salt"`
}

// Blob locates one data blob of a file at the time of the backup. Prune
// may move blobs later; readers fall back to the index then.
type Blob struct {
	ID     repo.ID `json:"id"`
	Pack   int     `json:"p"` // position in Catalog.Packs
	Flags  uint8   `json:"f,omitempty"`
	Offset uint32  `json:"o"`
	Length uint32  `json:"l"`
}

// File is a stored file: its path in the snapshot, size and blobs.
type File struct {
	Path  string `json:"path"`
	Size  uint64 `json:"size"`
	Blobs []Blob `json:"blobs,omitempty"`
}

// Entry is one invoice found in a snapshot. ContentID is the SHA-256 of
// the bytes of the file that holds it (hex), so anyone can check it with
// sha256sum; for an invoice inside a ZIP or OFD it is the container's
// hash and Inner names the member.
type Entry struct {
	invoice.Invoice
	File
	ContentID string `json:"content_id"`
	// PDF is the rendering stored beside the invoice, if any.
	PDF *File `json:"pdf,omitempty"`
	// Reused is true when the file was unchanged since the parent
	// snapshot and its entry was carried over from the parent's catalog.
	Reused bool `json:"reused,omitempty"`
}

// Rejected is a file that looked like an invoice but was refused by the
// parser (hostile or malformed): recorded so that it is not silently lost.
type Rejected struct {
	Path      string `json:"path"`
	ContentID string `json:"content_id"`
	Reason    string `json:"reason"`
}

// Catalog is the content of one catalog file.
type Catalog struct {
	Packs    []Pack     `json:"packs"`
	Entries  []Entry    `json:"-"`
	Rejected []Rejected `json:"rejected,omitempty"`
}

type header struct {
	Packs    []Pack     `json:"packs"`
	Entries  int        `json:"entries"`
	Rejected []Rejected `json:"rejected,omitempty"`
}

// Encode writes the catalog payload:
//
//	"EVC1" | version u8 | header JSON line | one JSON line per entry
//
// The repository seals and zstd-compresses it as a whole.
func (c *Catalog) Encode() ([]byte, error) {
	return c.encode(runtime.GOMAXPROCS(0))
}

// encodeShard is the entry count below which Encode does not split the
// work: goroutines cost more than they save on small catalogs.
const encodeShard = 512

// encode writes the payload with up to workers goroutines, each encoding
// a contiguous run of entries into its own buffer; the runs are joined in
// order, so the bytes do not depend on workers. The catalog is encoded
// at the end of a backup, on its critical path.
func (c *Catalog) encode(workers int) ([]byte, error) {
	n := len(c.Entries)
	shards := min(max(workers, 1), max(n/encodeShard, 1))
	parts := make([][]byte, shards)
	errs := make([]error, shards)
	var wg sync.WaitGroup
	for s := range shards {
		lo, hi := s*n/shards, (s+1)*n/shards
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b bytes.Buffer
			b.Grow(1024 + 900*(hi-lo))
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			for i := lo; i < hi; i++ {
				if err := enc.Encode(&c.Entries[i]); err != nil {
					errs[s] = err
					return
				}
			}
			parts[s] = b.Bytes()
		}()
	}
	var head bytes.Buffer
	head.WriteString(magic)
	head.WriteByte(FormatVersion)
	enc := json.NewEncoder(&head)
	enc.SetEscapeHTML(false)
	herr := enc.Encode(header{Packs: c.Packs, Entries: n, Rejected: c.Rejected})
	wg.Wait()
	if err := errors.Join(append(errs, herr)...); err != nil {
		return nil, err
	}
	size := head.Len()
	for _, p := range parts {
		size += len(p)
	}
	out := make([]byte, 0, size)
	out = append(out, head.Bytes()...)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, nil
}

// Decode parses a catalog payload, checking every reference it holds.
func Decode(data []byte) (*Catalog, error) {
	if len(data) < len(magic)+1 || string(data[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: bad magic", ErrDamaged)
	}
	if v := data[len(magic)]; v != FormatVersion {
		return nil, fmt.Errorf("%w: version %d is not supported by this einvault (upgrade it)", ErrDamaged, v)
	}
	sc := bufio.NewScanner(bytes.NewReader(data[len(magic)+1:]))
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	line := func() ([]byte, error) {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
			}
			return nil, io.ErrUnexpectedEOF
		}
		return sc.Bytes(), nil
	}
	hl, err := line()
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrDamaged, err)
	}
	var h header
	if err := json.Unmarshal(hl, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrDamaged, err)
	}
	if h.Entries < 0 || h.Entries > maxEntries || len(h.Packs) > maxPacks {
		return nil, fmt.Errorf("%w: header counts out of range", ErrDamaged)
	}
	for i, p := range h.Packs {
		if len(p.Salt) != 16 {
			return nil, fmt.Errorf("%w: pack %d: salt of %d bytes", ErrDamaged, i, len(p.Salt))
		}
	}
	c := &Catalog{Packs: h.Packs, Rejected: h.Rejected, Entries: make([]Entry, 0, min(h.Entries, 1<<16))}
	for i := 0; i < h.Entries; i++ {
		l, err := line()
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d of %d: %v", ErrDamaged, i+1, h.Entries, err)
		}
		var e Entry
		if err := json.Unmarshal(l, &e); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrDamaged, i+1, err)
		}
		if err := c.check(&e); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrDamaged, i+1, err)
		}
		c.Entries = append(c.Entries, e)
	}
	if sc.Scan() {
		return nil, fmt.Errorf("%w: data after the last entry", ErrDamaged)
	}
	return c, nil
}

func (c *Catalog) check(e *Entry) error {
	files := []*File{&e.File}
	if e.PDF != nil {
		files = append(files, e.PDF)
	}
	for _, f := range files {
		if !ValidPath(f.Path) {
			return fmt.Errorf("invalid path %q", f.Path)
		}
		for _, b := range f.Blobs {
			if b.Pack < -1 || b.Pack >= len(c.Packs) {
				return fmt.Errorf("blob refers to pack %d of %d", b.Pack, len(c.Packs))
			}
		}
	}
	if len(e.ContentID) != 64 {
		return fmt.Errorf("content ID %q is not a SHA-256", e.ContentID)
	}
	return nil
}

// ValidPath reports whether p is a clean absolute snapshot path.
func ValidPath(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p && p != "/" && !strings.ContainsRune(p, 0)
}

// Sort orders entries by key, then path and member, so that catalogs of
// the same files are identical.
func (c *Catalog) Sort() {
	sort.Slice(c.Entries, func(i, j int) bool {
		a, b := &c.Entries[i], &c.Entries[j]
		if ka, kb := a.Key(), b.Key(); ka != kb {
			return ka < kb
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Inner < b.Inner
	})
}
