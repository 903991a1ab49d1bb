package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/repo"
)

// indexedCatalog writes n entries over several blocks: keys repeat across
// blocks (the same invoice number in many files), some files hold the
// same bytes (one content ID in several entries), so that both indexes
// have runs that cross index and entry block boundaries.
func indexedCatalog(t testing.TB, n int) ([]byte, []Entry) {
	t.Helper()
	base := sampleCatalog().Entries[0]
	w, err := NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	w.per = perBlock{loc: 300, render: 50, keys: 97, cids: 101} // many small index sections
	var all []Entry
	for lo := 0; lo < n; lo += BlockEntries {
		var blk []Entry
		for i := lo; i < min(lo+BlockEntries, n); i++ {
			e := base
			e.Number = fmt.Sprint(i % 1500)        // each number in several blocks
			e.SellerTaxCode = fmt.Sprint(i%7 + 10) // several sellers
			e.Path = fmt.Sprintf("/srv/inv/%d.xml", i)
			sum := sha256.Sum256([]byte(fmt.Sprint(i % 4000)))
			e.ContentID = hex.EncodeToString(sum[:])
			e.PDF = nil
			e.Blobs = []Blob{{ID: repo.Hash([]byte(e.Path)), Pack: -1}}
			blk = append(blk, e)
			all = append(all, e)
		}
		if err := w.AddBlock(blk); err != nil {
			t.Fatal(err)
		}
	}
	data, err := w.Finish(nil, nil, func(repo.ID) (Location, bool) { return Location{}, false })
	if err != nil {
		t.Fatal(err)
	}
	return data, all
}

func paths(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Path)
	}
	slices.Sort(out)
	return out
}

// TestLookup: every key and content ID is found with exactly the
// entries a full scan finds, in catalogs whose index spans many blocks.
func TestLookup(t *testing.T) {
	const n = 2*BlockEntries + 11
	data, all := indexedCatalog(t, n)
	r, err := OpenReader(data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version() != 3 || !r.Indexed() || len(r.t.Keys) < 2 || len(r.t.CIDs) < 1 {
		t.Fatalf("version %d, indexed %v, %d key blocks, %d content-ID blocks", r.Version(), r.Indexed(), len(r.t.Keys), len(r.t.CIDs))
	}
	byKey, byCID := map[string][]Entry{}, map[string][]Entry{}
	for _, e := range all {
		byKey[e.Key()] = append(byKey[e.Key()], e)
		byCID[e.ContentID] = append(byCID[e.ContentID], e)
	}
	check := func(name string, want []Entry) {
		t.Helper()
		got, err := r.Lookup(name)
		if err != nil {
			t.Fatalf("Lookup(%s): %v", name, err)
		}
		if g, w := paths(got), paths(want); !slices.Equal(g, w) {
			t.Fatalf("Lookup(%s) = %d entries %v, want %d %v", name, len(g), g[:min(len(g), 5)], len(w), w[:min(len(w), 5)])
		}
	}
	i := 0
	for k, want := range byKey {
		if i++; i%97 == 0 || i < 10 {
			check(k, want)
		}
	}
	// the first key of every index block and the one before it: runs
	// that may cross a block boundary
	for _, s := range r.t.Keys {
		check(s.First, byKey[s.First])
	}
	i = 0
	for c, want := range byCID {
		if i++; i%151 == 0 {
			check(c, want)
			check(strings.ToUpper(c), want)
		}
	}
	for _, s := range r.t.CIDs {
		check(s.First, byCID[s.First])
	}
	for _, missing := range []string{"", "0/0/0/0", "zzzz/1/C/1", "10/1/C21TAQ/99999", strings.Repeat("0", 64), strings.Repeat("f", 64)} {
		if got, err := r.Lookup(missing); err != nil || len(got) != 0 {
			t.Fatalf("Lookup(%q) = %d entries, %v", missing, len(got), err)
		}
	}
	// found entries are complete: blobs located as a full decode has them
	got, _ := r.Lookup(all[5].Key())
	c, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range got {
		j := slices.IndexFunc(c.Entries, func(e Entry) bool { return e.Path == g.Path })
		a, _ := json.Marshal(g)
		b, _ := json.Marshal(c.Entries[j])
		if !bytes.Equal(a, b) {
			t.Fatalf("looked-up entry differs from the decoded one:\n%s\n%s", a, b)
		}
	}
}

// TestDecodeV2Golden: catalogs written by format 2 (no index) still
// decode; Lookup says they have no index so callers scan them.
func TestDecodeV2Golden(t *testing.T) {
	data, err := os.ReadFile("testdata/catalog-v2.golden")
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenReader(data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version() != 2 || r.Indexed() || r.Len() != 1 {
		t.Fatalf("version %d, indexed %v, %d entries", r.Version(), r.Indexed(), r.Len())
	}
	if _, err := r.Lookup("0105987432-999/1/C21TAQ/11"); !errors.Is(err, ErrNoIndex) {
		t.Fatalf("Lookup on format 2 = %v, want ErrNoIndex", err)
	}
	c, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	want := sampleCatalog()
	want.Sort()
	a, _ := json.Marshal(c.Entries)
	b, _ := json.Marshal(want.Entries)
	if !bytes.Equal(a, b) {
		t.Fatalf("format 2 entries:\n%s\nwant\n%s", a, b)
	}
}

// withTrailer replaces a format 3 payload's trailer by edit's result.
func withTrailer(t *testing.T, data []byte, edit func(*trailer)) []byte {
	t.Helper()
	tl := int(binary.LittleEndian.Uint32(data[len(data)-4:]))
	body := data[:len(data)-4-tl]
	var tr trailer
	if err := json.Unmarshal(data[len(body):len(data)-4], &tr); err != nil {
		t.Fatal(err)
	}
	edit(&tr)
	tj, _ := json.Marshal(tr)
	out := append(bytes.Clone(body), tj...)
	return binary.LittleEndian.AppendUint32(out, uint32(len(tj)))
}

// TestLookupRejects: a damaged index is reported as damage, never as
// "not found" and never by a panic.
func TestLookupRejects(t *testing.T) {
	data, all := indexedCatalog(t, BlockEntries+5)
	key, cid := all[0].Key(), all[0].ContentID
	tests := []struct {
		name string
		edit func(*trailer)
		open bool // OpenReader itself refuses it
	}{
		{"first key differs", func(tr *trailer) { tr.Keys[0].First = "0" }, false},
		{"keys out of order", func(tr *trailer) { tr.Keys[0], tr.Keys[1] = tr.Keys[1], tr.Keys[0] }, true},
		{"record count", func(tr *trailer) { tr.Keys[0].N-- }, false},
		{"too many records", func(tr *trailer) { tr.CIDs[0].N = tr.Entries + 1 }, true},
		{"empty first key", func(tr *trailer) { tr.CIDs[0].First = "" }, true},
		{"index section outside", func(tr *trailer) { tr.Keys[0].Len = 1 << 40 }, true},
		{"index on format 2", func(tr *trailer) {}, true},
		{"content-ID block swapped for a key block", func(tr *trailer) {
			for i := range tr.CIDs {
				tr.CIDs[i].Off, tr.CIDs[i].Len = tr.Keys[0].Off, tr.Keys[0].Len
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := withTrailer(t, data, tt.edit)
			if tt.name == "index on format 2" {
				d[len(magic)] = 2
			}
			r, err := OpenReader(d)
			if tt.open {
				if !errors.Is(err, ErrDamaged) {
					t.Fatalf("OpenReader = %v, want ErrDamaged", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenReader: %v", err)
			}
			_, err1 := r.Lookup(key)
			_, err2 := r.Lookup(cid)
			if !errors.Is(err1, ErrDamaged) && !errors.Is(err2, ErrDamaged) {
				t.Fatalf("Lookup = %v / %v, want ErrDamaged", err1, err2)
			}
		})
	}
}

// FuzzLookup: no payload makes OpenReader or Lookup panic or loop, and
// whatever Lookup returns matches the name asked for.
func FuzzLookup(f *testing.F) {
	good, _ := sampleCatalog().Encode()
	f.Add(good, "0105987432-999/1/C21TAQ/11")
	f.Add(good, strings.Repeat("ab", 32))
	if v2, err := os.ReadFile("testdata/catalog-v2.golden"); err == nil {
		f.Add(v2, "0105987432-999/1/C21TAQ/11")
	}
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		r, err := OpenReader(data)
		if err != nil {
			return
		}
		got, err := r.Lookup(name)
		if err != nil {
			return
		}
		for _, e := range got {
			if e.Key() != name && e.ContentID != strings.ToLower(name) {
				t.Fatalf("Lookup(%q) returned %s (%s)", name, e.Key(), e.ContentID)
			}
		}
	})
}

type payloads map[repo.ID][]byte

func (p payloads) LoadCatalog(_ context.Context, id repo.ID) ([]byte, error) { return p[id], nil }

// TestLocateInCatalogs: the cache-less look-up searches snapshots newest
// first, through the index of format 3 catalogs and by a scan of older
// ones, and reports ambiguity and absence as Cache.Locate does.
func TestLocateInCatalogs(t *testing.T) {
	v2, err := os.ReadFile("testdata/catalog-v2.golden")
	if err != nil {
		t.Fatal(err)
	}
	v3, all := indexedCatalog(t, 2*BlockEntries)
	idA, idB := repo.Hash([]byte("a")), repo.Hash([]byte("b"))
	src := payloads{idA: v2, idB: v3}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	snaps := []*repo.Snapshot{
		{ID: repo.Hash([]byte("s1")), Time: t0, Catalog: &idA},
		{ID: repo.Hash([]byte("s2")), Time: t0.Add(time.Hour), Catalog: &idB},
		{ID: repo.Hash([]byte("s3")), Time: t0.Add(2 * time.Hour)}, // --no-catalog
	}
	sel, err := SelectSnapshots(snaps, "")
	if err != nil || len(sel) != 2 || sel[0] != snaps[1] {
		t.Fatalf("SelectSnapshots: %v %v", sel, err)
	}
	ctx := context.Background()
	// only in the format 2 catalog: found by a scan
	loc, err := LocateInCatalogs(ctx, src, sel, "0105987432-999/1/C21TAQ/11")
	if err != nil || loc.Snapshot != snaps[0].ID.String() || loc.Entry.Path != "/srv/inv/a.xml" || loc.Packs[0].Epoch != 1 || loc.Entry.PDF == nil {
		t.Fatalf("format 2 look-up: %+v %v", loc, err)
	}
	// one version in the newest snapshot
	e := all[3000%len(all)]
	byCID := 0
	for _, a := range all {
		if a.ContentID == e.ContentID {
			byCID++
		}
	}
	loc, err = LocateInCatalogs(ctx, src, sel, e.ContentID)
	if err != nil || loc.Snapshot != snaps[1].ID.String() || loc.Entry.ContentID != e.ContentID {
		t.Fatalf("content ID look-up (%d entries): %+v %v", byCID, loc, err)
	}
	// two versions of one key in a snapshot: ambiguous
	var dup string
	cids := map[string]map[string]bool{}
	for _, a := range all {
		if cids[a.Key()] == nil {
			cids[a.Key()] = map[string]bool{}
		}
		if cids[a.Key()][a.ContentID] = true; len(cids[a.Key()]) > 1 && dup == "" {
			dup = a.Key()
		}
	}
	if dup != "" {
		if _, err := LocateInCatalogs(ctx, src, sel, dup); err == nil || !strings.Contains(err.Error(), "different versions") {
			t.Fatalf("ambiguous key %s: %v", dup, err)
		}
	}
	if _, err := LocateInCatalogs(ctx, src, sel, "9/9/9/9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := SelectSnapshots(snaps, snaps[2].ID.String()[:8]); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("snapshot without a catalog: %v", err)
	}
	if sel, err := SelectSnapshots(snaps, "latest"); err != nil || len(sel) != 1 || sel[0] != snaps[1] {
		t.Fatalf("latest: %v %v", sel, err)
	}
}

// TestLazySections: format 3 readers decode location and rendering
// blocks only when an entry needs them; entries come out exactly as a
// reader that decodes everything up front (no first keys) gives them,
// across several location and rendering blocks; damage in a lazily read
// block is reported when it is read.
func TestLazySections(t *testing.T) {
	base := sampleCatalog().Entries[0]
	w, err := NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	w.per = perBlock{loc: 1000, render: 40, keys: keysPerBlock, cids: cidsPerBlock}
	var blk []Entry
	for i := range 70 {
		e := base
		e.Number = fmt.Sprint(i)
		e.Path = fmt.Sprintf("/srv/inv/%04d.xml", i)
		e.PDF = nil
		e.Blobs = nil
		for j := range 40 {
			e.Blobs = append(e.Blobs, Blob{ID: repo.Hash([]byte(fmt.Sprint(i, "/", j))), Pack: -1})
		}
		blk = append(blk, e)
	}
	if err := w.AddBlock(blk); err != nil {
		t.Fatal(err)
	}
	var pdfs []File
	for i := range 500 {
		p := fmt.Sprintf("/srv/pdf/%04d.pdf", i%450) // some stems twice
		if i >= 450 {
			p = fmt.Sprintf("/srv/other/%04d.pdf", i%450)
		}
		pdfs = append(pdfs, File{Path: p, Size: 1, Blobs: []Blob{{ID: repo.Hash([]byte(p))}}})
	}
	pack := Pack{ID: repo.Hash([]byte("p")), Epoch: 3, Salt: bytes.Repeat([]byte{1}, 16)}
	data, err := w.Finish(pdfs, nil, func(id repo.ID) (Location, bool) {
		return Location{Pack: pack, Offset: uint32(id[1]), Length: 9}, id[0]%2 == 0
	})
	if err != nil {
		t.Fatal(err)
	}
	lazy, err := OpenReader(data)
	if err != nil {
		t.Fatal(err)
	}
	if !lazy.lazy || len(lazy.t.Locations) < 2 || len(lazy.t.Renderings) < 2 {
		t.Fatalf("lazy %v, %d location and %d rendering blocks", lazy.lazy, len(lazy.t.Locations), len(lazy.t.Renderings))
	}
	eagerData := withTrailer(t, data, func(tr *trailer) {
		for i := range tr.Locations {
			tr.Locations[i].First = ""
		}
	})
	eager, err := OpenReader(eagerData)
	if err != nil || eager.lazy {
		t.Fatalf("without first keys: lazy %v, %v", eager != nil && eager.lazy, err)
	}
	a, err := lazy.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	b, err := eager.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a.Entries)
	jb, _ := json.Marshal(b.Entries)
	if !bytes.Equal(ja, jb) {
		t.Fatal("lazy and eager readers decode different entries")
	}
	for _, e := range a.Entries {
		if e.PDF == nil || e.PDF.Path != "/srv/pdf/"+strings.TrimPrefix(e.Path, "/srv/inv/")[:4]+".pdf" {
			t.Fatalf("%s: rendering %+v", e.Path, e.PDF)
		}
	}
	// a rendering block whose first stem is not the trailer's, a
	// location block that does not start with its first key
	for name, edit := range map[string]func(*trailer){
		"rendering first": func(tr *trailer) { tr.Renderings[0].First = "0000a" },
		"location first":  func(tr *trailer) { tr.Locations[0].First = strings.Repeat("0", 64) },
		"location sections": func(tr *trailer) {
			tr.Locations[1].Off = tr.Locations[0].Off
			tr.Locations[1].Len = tr.Locations[0].Len
		},
	} {
		r, err := OpenReader(withTrailer(t, data, edit))
		if err != nil {
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("%s: OpenReader = %v", name, err)
			}
			continue
		}
		if _, err := r.Catalog(); !errors.Is(err, ErrDamaged) {
			t.Fatalf("%s: Catalog = %v, want ErrDamaged", name, err)
		}
	}
}
