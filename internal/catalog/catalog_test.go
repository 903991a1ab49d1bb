package catalog

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/einvault/einvault/internal/corpus"
	"github.com/einvault/einvault/internal/invoice"
	"github.com/einvault/einvault/internal/repo"
)

func sampleCatalog() *Catalog {
	id := repo.Hash([]byte("pack"))
	return &Catalog{
		Packs: []Pack{{ID: id, Epoch: 1, Salt: bytes.Repeat([]byte{7}, 16)}},
		Entries: []Entry{{
			Invoice:   invoice.Invoice{Format: invoice.FormatVNTT78, SellerTaxCode: "0105987432-999", Form: "1", Series: "C21TAQ", Number: "11", Total: "1000"},
			File:      File{Path: "/srv/inv/a.xml", Size: 10, Blobs: []Blob{{ID: repo.Hash([]byte("b")), Pack: 0, Offset: 3, Length: 40}}},
			ContentID: strings.Repeat("ab", 32),
			PDF:       &File{Path: "/srv/pdf/a.pdf", Size: 5, Blobs: []Blob{{ID: repo.Hash([]byte("c")), Pack: -1}}},
		}},
		Rejected: []Rejected{{Path: "/srv/inv/bomb.xml", ContentID: strings.Repeat("cd", 32), Reason: "entity expansion"}},
	}
}

func TestEncodeDecode(t *testing.T) {
	c := sampleCatalog()
	data, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if data[4] != FormatVersion {
		t.Fatalf("version byte %d, want %d", data[4], FormatVersion)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.Encode()
	if !bytes.Equal(data, again) {
		t.Fatalf("round trip changed the encoding:\n%q\n%q", data, again)
	}
	e := got.Entries[0]
	if e.Key() != "0105987432-999/1/C21TAQ/11" || e.PDF == nil || e.PDF.Path != "/srv/pdf/a.pdf" {
		t.Fatalf("decoded %+v", e)
	}
	if b := e.Blobs[0]; b.Pack != 0 || b.Offset != 3 || b.Length != 40 || e.PDF.Blobs[0].Pack != -1 {
		t.Fatalf("blob locations lost: %+v / %+v", e.Blobs, e.PDF.Blobs)
	}
	if len(got.Rejected) != 1 || got.Rejected[0].Reason != "entity expansion" {
		t.Fatalf("rejected %+v", got.Rejected)
	}
}

// TestDecodeV1Golden: catalogs written by format 1 (one JSON line per
// entry, locations and renderings inline) still decode.
func TestDecodeV1Golden(t *testing.T) {
	data, err := os.ReadFile("testdata/catalog-v1.golden")
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenReader(data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version() != 1 || r.Len() != 2 || len(r.Packs()) != 1 || len(r.Rejected()) != 1 {
		t.Fatalf("version %d, %d entries, %d packs, %d rejected", r.Version(), r.Len(), len(r.Packs()), len(r.Rejected()))
	}
	c, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Entries[0], c.Entries[1]
	if a.Key() != "0105987432-999/1/C21TAQ/11" || a.PDF == nil || a.PDF.Path != "/srv/pdf/a.pdf" || a.Blobs[0].Offset != 3 {
		t.Fatalf("entry 1: %+v", a)
	}
	if b.Number != "24312000000000000001" || b.Inner != "Doc_0/Attachs/invoice.xml" || !b.Reused || b.Blobs[0].Flags != 1 || b.Blobs[1].Pack != -1 ||
		len(b.Signatures) != 1 || b.Signatures[0].Status != invoice.SigUnverified {
		t.Fatalf("entry 2: %+v", b)
	}
	// re-encoded as format 2, it decodes to the same entries
	v2, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Decode(v2)
	if err != nil {
		t.Fatal(err)
	}
	j1, _ := json.Marshal(c.Entries)
	j2, _ := json.Marshal(c2.Entries)
	if !bytes.Equal(j1, j2) {
		t.Fatalf("format 1 -> 2 changed the entries:\n%s\n%s", j1, j2)
	}
}

// TestBlocks: entries spread over many blocks, written concurrently,
// decode block by block with their locations.
func TestBlocks(t *testing.T) {
	base := sampleCatalog().Entries[0]
	w, err := NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	const n = 3*BlockEntries + 7
	pack := Pack{ID: repo.Hash([]byte("p2")), Epoch: 2, Salt: bytes.Repeat([]byte{9}, 16)}
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += BlockEntries {
		blk := make([]Entry, 0, BlockEntries)
		for i := lo; i < min(lo+BlockEntries, n); i++ {
			e := base
			e.Number = strconv.Itoa(i + 1)
			e.Path = fmt.Sprintf("/srv/inv/%d.xml", i)
			e.PDF = nil
			e.Blobs = []Blob{{ID: repo.Hash([]byte(e.Path)), Pack: -1}, {ID: repo.Hash([]byte("shared")), Pack: -1}}
			blk = append(blk, e)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.AddBlock(blk); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	pdfs := []File{{Path: "/srv/pdf/5.pdf", Size: 1, Blobs: []Blob{{ID: repo.Hash([]byte("pdf5"))}}}}
	data, err := w.Finish(pdfs, nil, func(id repo.ID) (Location, bool) {
		if id == repo.Hash([]byte("shared")) {
			return Location{}, false
		}
		return Location{Pack: pack, Offset: uint32(id[0]), Length: 77}, true
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenReader(data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != n || r.Blocks() != 4 || len(r.Packs()) != 1 {
		t.Fatalf("%d entries in %d blocks, %d packs", r.Len(), r.Blocks(), len(r.Packs()))
	}
	seen := map[string]bool{}
	err = r.Each(func(e *Entry) error {
		seen[e.Number] = true
		id := repo.Hash([]byte(e.Path))
		if b := e.Blobs[0]; b.Pack != 0 || b.Offset != uint32(id[0]) || b.Length != 77 || e.Blobs[1].Pack != -1 {
			return fmt.Errorf("%s: blobs %+v", e.Path, e.Blobs)
		}
		if (e.PDF != nil) != (e.Path == "/srv/inv/5.xml") {
			return fmt.Errorf("%s: rendering %+v", e.Path, e.PDF)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("%d distinct entries, want %d", len(seen), n)
	}
}

// damagedV2 builds a format 2 payload from raw entry lines and a trailer
// edit, for the decoder's rejection tests.
func damagedV2(t *testing.T, lines string, edit func(*trailer)) []byte {
	t.Helper()
	w, err := NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	good, err := sampleCatalog().Encode()
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenReader(good)
	if err != nil {
		t.Fatal(err)
	}
	var locs []byte
	for i := range r.t.Locations {
		l, err := r.locSection(i)
		if err != nil {
			t.Fatal(err)
		}
		locs = append(locs, l...)
	}
	tr := r.t
	tr.Blocks = []section{w.add([]byte(lines), max(strings.Count(lines, "\n"), 1))}
	tr.Locations = []section{w.add(locs, len(locs)/locRecord)}
	tr.Renderings = nil
	tr.Keys, tr.CIDs = nil, nil
	if edit != nil {
		edit(&tr)
	}
	tj, _ := json.Marshal(tr)
	out := bytes.Join(w.chunks, nil)
	out[len(magic)] = 2
	out = append(out, tj...)
	return binary.LittleEndian.AppendUint32(out, uint32(len(tj)))
}

func TestDecodeRejects(t *testing.T) {
	good, _ := sampleCatalog().Encode()
	entry := `{"format":"vn-tt78","seller_tax_code":"1","number":"1","path":"/srv/inv/a.xml","size":10,"blobs":[{"id":"10e5cf3d3c8a4f9f3468c8cc58eea84892a22fdadbc1acb22410190044c1d553","p":-1}],"content_id":"` + strings.Repeat("ab", 32) + `"}` + "\n"
	if _, err := Decode(damagedV2(t, entry, nil)); err != nil {
		t.Fatalf("the undamaged hand-made payload does not decode: %v", err)
	}
	v1, _ := os.ReadFile("testdata/catalog-v1.golden")
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"bad magic", append([]byte("EVX1"), good[4:]...)},
		{"future version", append(append([]byte("EVC1"), 9), good[5:]...)},
		{"truncated", good[:len(good)-9]},
		{"no trailer", good[:5]},
		{"trailer too long", append(bytes.Clone(good[:len(good)-4]), 0xff, 0xff, 0xff, 0x0f)},
		{"bit flip in a block", func() []byte { d := bytes.Clone(good); d[8] ^= 0x40; return d }()},
		{"relative path", damagedV2(t, strings.Replace(entry, "/srv/inv/a.xml", "../a.xml", 1), nil)},
		{"short content ID", damagedV2(t, strings.Replace(entry, strings.Repeat("ab", 32), "abab", 1), nil)},
		{"unknown blob", damagedV2(t, strings.Replace(entry, "10e5cf", "00e5cf", 1), nil)},
		{"rendering inline", damagedV2(t, strings.Replace(entry, `"size":10`, `"size":10,"pdf":{"path":"/a.pdf"}`, 1), nil)},
		{"unterminated", damagedV2(t, strings.TrimSuffix(entry, "\n"), nil)},
		{"more entries than counted", damagedV2(t, entry+entry, func(tr *trailer) { tr.Blocks[0].N = 1 })},
		{"count mismatch", damagedV2(t, entry, func(tr *trailer) { tr.Entries = 2 })},
		{"negative count", damagedV2(t, entry, func(tr *trailer) { tr.Entries = -1 })},
		{"section outside", damagedV2(t, entry, func(tr *trailer) { tr.Blocks[0].Len = 1 << 40 })},
		{"bad salt", damagedV2(t, entry, func(tr *trailer) { tr.Packs[0].Salt = []byte{7} })},
		{"location pack out of range", damagedV2(t, entry, func(tr *trailer) { tr.Packs = nil })},
		{"v1 truncated", v1[:bytes.IndexByte(v1, '\n')+1]},
		{"v1 trailing data", append(bytes.Clone(v1), []byte("{}\n")...)},
		{"v1 pack out of range", bytes.Replace(v1, []byte(`"p":0`), []byte(`"p":5`), 1)},
		{"v1 relative path", bytes.Replace(v1, []byte(`"/srv/inv/a.xml"`), []byte(`"../a.xml"`), 1)},
		{"v1 negative count", bytes.Replace(v1, []byte(`"entries":2`), []byte(`"entries":-1`), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.data); !errors.Is(err, ErrDamaged) {
				t.Fatalf("Decode = %v, want ErrDamaged", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := sampleCatalog().Encode()
	f.Add(good)
	f.Add([]byte("EVC1\x01{\"packs\":[],\"entries\":0}\n"))
	if v1, err := os.ReadFile("testdata/catalog-v1.golden"); err == nil {
		f.Add(v1)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			return
		}
		out, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		c2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-encoded catalog does not decode: %v", err)
		}
		if len(c2.Entries) != len(c.Entries) || len(c2.Packs) > len(c.Packs) {
			t.Fatal("re-encoding changed the catalog")
		}
	})
}

func TestCandidate(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"<?xml", true}, {"\xef\xbb\xbf<HDon", true}, {"\n  <x", true}, {"PK\x03\x04rest", true},
		{"%PDF-1.7", false}, {"INSERT INTO", false}, {"", false}, {"\xff\xfe<\x00?", true},
	}
	for _, tt := range tests {
		if got := Candidate([]byte(tt.in)); got != tt.want {
			t.Errorf("Candidate(%q) = %v", tt.in, got)
		}
	}
}

// TestCorpusProperty: on a generated corpus every invoice is cataloged
// and found, an unchanged second backup carries every entry over without
// reading, and every removed invoice is reported as a gap with the
// snapshot it was last in, while cancelled numbers on record are not.
func TestCorpusProperty(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "corpus")
	if _, err := corpus.Generate(ctx, dir, corpus.Options{Files: 100, Seed: 7, PDFRatio: 0.2, DumpSize: -1}); err != nil {
		t.Fatal(err)
	}
	files := xmlFiles(t, dir)
	e := newEnv(t)
	s1, st := e.backup(dir, nil)
	if st.Invoices != uint64(len(files)) || st.Rejected != 0 {
		t.Fatalf("first backup cataloged %d invoices (%d rejected) of %d files", st.Invoices, st.Rejected, len(files))
	}
	cat, err := LoadCatalog(ctx, e.r, s1)
	if err != nil {
		t.Fatal(err)
	}
	pdfs := 0
	for _, en := range cat.Entries {
		if !bytes.Equal([]byte(ContentID(files[en.Path])), []byte(en.ContentID)) {
			t.Fatalf("%s: content ID mismatch", en.Path)
		}
		base := filepath.Base(en.Path)
		if !strings.HasPrefix(base, en.SellerTaxCode+"_"+en.Form+en.Series+"_") {
			t.Fatalf("%s cataloged as %s", en.Path, en.Key())
		}
		if en.PDF != nil {
			pdfs++
			if strings.TrimSuffix(filepath.Base(en.PDF.Path), ".pdf") != strings.TrimSuffix(base, ".xml") {
				t.Fatalf("%s got rendering %s", en.Path, en.PDF.Path)
			}
		}
	}
	if pdfs == 0 {
		t.Fatal("no rendering attached")
	}

	// second backup: nothing changed, nothing read, every entry reused
	s2, st2 := e.backup(dir, s1)
	if st2.Offered != 0 || st2.Reused != uint64(len(files)) {
		t.Fatalf("unchanged backup: offered %d, reused %d of %d", st2.Offered, st2.Reused, len(files))
	}

	// remove some invoices, back up again
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	rng := rand.New(rand.NewPCG(1, 2))
	removed := map[string]bool{}
	for len(removed) < 12 {
		p := paths[rng.IntN(len(paths))]
		if !removed[p] {
			removed[p] = true
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	s3, st3 := e.backup(dir, s2)
	if st3.Invoices != uint64(len(files)-len(removed)) {
		t.Fatalf("third backup: %d invoices, want %d", st3.Invoices, len(files)-len(removed))
	}
	// one removed invoice was cancelled on record: not a gap
	var cancelled string
	for p := range removed {
		cancelled = p
		break
	}
	var cancelledKey string
	for _, en := range cat.Entries {
		if en.Path == cancelled {
			cancelledKey = en.Key()
		}
	}
	if _, err := SaveStatus(ctx, e.r, []StatusRecord{{Key: cancelledKey, Status: "cancelled", Source: "portal.json"}}); err != nil {
		t.Fatal(err)
	}
	ss := e.sync()
	if ss.SnapshotsAdded != 3 || ss.StatusFiles != 1 || ss.Entries != 2*len(files)+len(files)-len(removed) {
		t.Fatalf("sync: %+v", ss)
	}

	// every generated invoice is found (find by key)
	for _, en := range cat.Entries {
		m, err := e.cache.Find(ctx, Query{Key: en.Key()})
		if err != nil || len(m) != 1 {
			t.Fatalf("find %s: %v %v", en.Key(), m, err)
		}
		wantDeleted := removed[en.Path]
		if m[0].Deleted != wantDeleted {
			t.Fatalf("%s: deleted=%v, want %v", en.Key(), m[0].Deleted, wantDeleted)
		}
		wantLast := s3.ID.String()
		if wantDeleted {
			wantLast = s2.ID.String()
		}
		if m[0].LastSeen.Snapshot != wantLast || m[0].FirstSeen.Snapshot != s1.ID.String() {
			t.Fatalf("%s: history %+v / %+v", en.Key(), m[0].FirstSeen, m[0].LastSeen)
		}
	}

	rep, err := e.cache.Gaps(ctx, GapQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Snapshot != s3.ID.String() {
		t.Fatalf("gaps of %s, want latest %s", rep.Snapshot, s3.ID)
	}
	gotMissing := map[string]string{}
	gotRecorded := map[string]bool{}
	for _, g := range rep.Groups {
		for _, m := range g.Missing {
			gotMissing[m.Key] = m.LastSnapshot
		}
		for _, r := range g.Recorded {
			gotRecorded[strings.Join([]string{g.Seller, g.Form, g.Series, itoa(r.Number)}, "/")] = true
		}
	}
	for _, en := range cat.Entries {
		if !removed[en.Path] {
			continue
		}
		if en.Key() == cancelledKey {
			if !gotRecorded[en.Key()] {
				t.Fatalf("cancelled %s not listed as such", en.Key())
			}
			if _, ok := gotMissing[en.Key()]; ok {
				t.Fatalf("cancelled %s reported as a gap", en.Key())
			}
			continue
		}
		last, ok := gotMissing[en.Key()]
		if !ok {
			t.Fatalf("removed %s not reported as a gap (report: %+v)", en.Key(), gotMissing)
		}
		if last != s2.ID.String() {
			t.Fatalf("removed %s: last snapshot %s, want %s", en.Key(), last, s2.ID)
		}
	}
	if len(gotMissing) != len(removed)-1 {
		t.Fatalf("%d gaps reported, want %d: %v", len(gotMissing), len(removed)-1, gotMissing)
	}

	stats, err := e.cache.Stats(ctx, "")
	if err != nil || stats.Total != len(files)-len(removed) {
		t.Fatalf("stats: %+v %v", stats, err)
	}

	// one invoice read back without loading the index
	r2, err := repo.Open(ctx, e.be, []byte("pw"), e.repoOpts())
	if err != nil {
		t.Fatal(err)
	}
	some := cat.Entries[len(cat.Entries)/2]
	loc, err := e.cache.Locate(ctx, some.Key(), s1.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	fe := &Fetcher{Store: r2}
	data, err := fe.ReadFile(ctx, loc.Entry.File, loc.Packs)
	if err != nil || !bytes.Equal(data, files[some.Path]) || fe.IndexLoads != 0 {
		t.Fatalf("read back %d bytes (err %v, index loads %d)", len(data), err, fe.IndexLoads)
	}

	// verify the repository's copy and a directory
	vr, err := e.cache.Verify(ctx, s1.ID.String(), RepoSource(fe), VerifyOptions{Recheck: recheck, Workers: 4})
	if err != nil || vr.Failed() || vr.OK != len(files) {
		t.Fatalf("verify repository: %+v %v", vr, err)
	}
	vr, err = e.cache.Verify(ctx, "", DirSource("/", nil), VerifyOptions{Recheck: recheck})
	if err != nil || vr.Failed() || vr.OK != len(files)-len(removed) {
		t.Fatalf("verify source dir: %+v %v", vr, err)
	}
	// Bytes already checked take their cached verdict: same answer, no re-check.
	rv, err := e.cache.Verify(ctx, "", DirSource("/", nil), VerifyOptions{Recheck: recheck, ReuseVerdicts: true, Workers: 2})
	if err != nil || rv.Failed() || rv.OK != vr.OK || rv.SigCheckTime != 0 || fmt.Sprint(rv.ByStatus) != fmt.Sprint(vr.ByStatus) {
		t.Fatalf("verify reusing verdicts: %+v (full: %+v) %v", rv, vr, err)
	}
	// damage one file: content differs, exit-worthy
	victim := paths[0]
	for removed[victim] {
		victim = paths[1]
	}
	if err := os.WriteFile(victim, append(files[victim], ' '), 0o644); err != nil {
		t.Fatal(err)
	}
	vr, err = e.cache.Verify(ctx, "", DirSource("/", nil), VerifyOptions{Recheck: recheck, Workers: 3})
	if err != nil || !vr.Failed() || vr.ContentDiffers != 1 || vr.Findings[0].Path != victim {
		t.Fatalf("verify after damage: %+v %v", vr, err)
	}

	// rebuild gives the same answers
	if _, err := e.cache.Rebuild(ctx, e.r); err != nil {
		t.Fatal(err)
	}
	rep2, err := e.cache.Gaps(ctx, GapQuery{})
	if err != nil || rep2.Missing != rep.Missing || rep2.Recorded != rep.Recorded {
		t.Fatalf("after rebuild: %+v %v", rep2, err)
	}

	// reconcile against a real SQLite database
	dbPath := filepath.Join(t.TempDir(), "inv.db")
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE hoadon(mst TEXT, mau TEXT, kyhieu TEXT, so INTEGER, ngay TEXT, tong NUMERIC)`); err != nil {
		t.Fatal(err)
	}
	entries, err := e.cache.Entries(ctx, s3.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	for i, en := range entries {
		switch i {
		case 0: // no row for this file
			continue
		case 1: // a different total
			en.Entry.Total = "1"
		}
		if _, err := db.Exec(`INSERT INTO hoadon VALUES(?,?,?,?,?,?)`, en.Entry.SellerTaxCode, en.Entry.Form, en.Entry.Series, en.Entry.Number, en.Entry.IssueDate, en.Entry.Total); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO hoadon VALUES('0100000000','1','C24TZZ',5,'2024-01-01',100)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	rdb, err := OpenDB("sqlite:" + dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	rows, err := ReadRows(ctx, rdb, `SELECT mst AS seller_tax_code, mau AS form, kyhieu AS series, so AS number, ngay AS issue_date, tong AS total FROM hoadon`)
	if err != nil {
		t.Fatal(err)
	}
	rr := Reconcile(rows, entries, nil)
	if len(rr.RowsWithoutFile) != 1 || len(rr.FilesWithoutRow) != 1 || len(rr.Mismatches) != 1 || rr.Mismatches[0].Field != "total" {
		t.Fatalf("reconcile: without file %v, without row %d, mismatches %+v", rr.RowsWithoutFile, len(rr.FilesWithoutRow), rr.Mismatches)
	}
	if rr.FilesWithoutRow[0].Entry.Key() != entries[0].Entry.Key() {
		t.Fatalf("file without row: %s", rr.FilesWithoutRow[0].Entry.Key())
	}
}

func itoa(n int64) string { return strconvFormat(n) }

// TestGapsWideRange: a sequence whose numbers are far apart (20-digit
// numbers, IDs) is not enumerated; duplicates are still found.
func TestGapsWideRange(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	dir := t.TempDir()
	inv := func(num, extra string) []byte {
		return []byte(`<?xml version="1.0" encoding="UTF-8"?><HDon><DLHDon><TTChung><KHMSHDon>1</KHMSHDon><KHHDon>C24TXX</KHHDon><SHDon>` + num +
			`</SHDon><NLap>2024-01-02</NLap></TTChung><NDHDon><NBan><MST>0100000001</MST></NBan><NMua><MST>0200000002</MST></NMua><TToan><TgTTTBSo>10` + extra + `</TgTTTBSo></TToan></NDHDon></DLHDon></HDon>`)
	}
	for name, data := range map[string][]byte{"a.xml": inv("1", ""), "b.xml": inv("900000000000", ""), "c.xml": inv("900000000000", "0")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.backup(dir, nil)
	e.sync()
	rep, err := e.cache.Gaps(ctx, GapQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Groups) != 1 || !rep.Groups[0].Truncated || rep.Missing != 0 || rep.Dupes != 1 {
		t.Fatalf("gaps: %+v", rep)
	}
}
