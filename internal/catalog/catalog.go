// Package catalog records the invoices inside each snapshot: a catalog
// file per snapshot stored in the repository (sealed file kind 5 in
// catalogs/, named by Snapshot.Catalog), built during backup from what
// the archiver reads, and a local SQLite cache built from all catalogs for
// fast queries across snapshots (find, gaps, stats, reconcile, restore of
// one invoice without loading the repository index).
package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/einvault/einvault/internal/invoice"
	"github.com/einvault/einvault/internal/repo"
)

// FormatVersion is the catalog encoding written by this package.
const FormatVersion = 3

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

// Encode writes the catalog as a format 2 payload (see Writer). Blob
// locations come from the entries; renderings are stored once each and
// attached again by file name stem when read.
func (c *Catalog) Encode() ([]byte, error) {
	w, err := NewWriter()
	if err != nil {
		return nil, err
	}
	locs := map[repo.ID]Location{}
	var pdfs []File
	seenPDF := map[string]bool{}
	note := func(f *File) {
		for _, b := range f.Blobs {
			if b.Pack >= 0 && b.Pack < len(c.Packs) {
				locs[b.ID] = Location{Pack: c.Packs[b.Pack], Flags: b.Flags, Offset: b.Offset, Length: b.Length}
			}
		}
	}
	for lo := 0; lo < len(c.Entries); lo += BlockEntries {
		blk := slices.Clone(c.Entries[lo:min(lo+BlockEntries, len(c.Entries))])
		for i := range blk {
			note(&blk[i].File)
			if p := blk[i].PDF; p != nil {
				note(p)
				if !seenPDF[p.Path] {
					seenPDF[p.Path] = true
					pdfs = append(pdfs, *p)
				}
			}
		}
		if err := w.AddBlock(blk); err != nil {
			return nil, err
		}
	}
	return w.Finish(pdfs, c.Rejected, func(id repo.ID) (Location, bool) {
		l, ok := locs[id]
		return l, ok
	})
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
	return checkContentID(e.ContentID)
}

func checkContentID(id string) error {
	if len(id) != 64 {
		return fmt.Errorf("content ID %q is not a SHA-256", id)
	}
	return nil
}

// ValidPath reports whether p is a clean absolute snapshot path.
func ValidPath(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p && p != "/" && !strings.ContainsRune(p, 0)
}

// Sort orders entries by key, then path and member, so that catalogs of
// the same files are identical.
func (c *Catalog) Sort() { sortEntries(c.Entries) }

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.SellerTaxCode, b.SellerTaxCode), cmp.Compare(a.Form, b.Form), cmp.Compare(a.Series, b.Series),
			cmp.Compare(a.Number, b.Number), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Inner, b.Inner))
	})
}
