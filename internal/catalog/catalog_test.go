package catalog

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.Encode()
	if !bytes.Equal(data, again) {
		t.Fatalf("round trip changed the encoding:\n%s\n%s", data, again)
	}
	if got.Entries[0].Key() != "0105987432-999/1/C21TAQ/11" || got.Entries[0].PDF.Path != "/srv/pdf/a.pdf" {
		t.Fatalf("decoded %+v", got.Entries[0])
	}
}

// TestEncodeSharded: the payload does not depend on how many goroutines
// encoded it, and it decodes to the same entries in the same order.
func TestEncodeSharded(t *testing.T) {
	base := sampleCatalog()
	for _, n := range []int{0, 1, encodeShard - 1, 3*encodeShard + 7} {
		c := *base
		c.Entries = make([]Entry, n)
		for i := range c.Entries {
			e := base.Entries[0]
			e.Number = strconv.Itoa(i + 1)
			c.Entries[i] = e
		}
		want, err := c.encode(1)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []int{2, 3, 8} {
			got, err := c.encode(w)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%d entries, %d workers: payload differs from one worker's", n, w)
			}
		}
		dec, err := Decode(want)
		if err != nil {
			t.Fatalf("%d entries: %v", n, err)
		}
		if len(dec.Entries) != n {
			t.Fatalf("decoded %d entries, want %d", len(dec.Entries), n)
		}
		for i, e := range dec.Entries {
			if e.Number != strconv.Itoa(i+1) {
				t.Fatalf("entry %d has number %q: order lost", i, e.Number)
			}
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := sampleCatalog().Encode()
	hdrEnd := bytes.IndexByte(good, '\n') + 1
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"bad magic", append([]byte("EVX1"), good[4:]...)},
		{"future version", append(append([]byte("EVC1"), 9), good[5:]...)},
		{"truncated entries", good[:hdrEnd]},
		{"trailing data", append(append([]byte{}, good...), []byte("{}\n")...)},
		{"pack out of range", bytes.Replace(good, []byte(`"p":0`), []byte(`"p":5`), 1)},
		{"relative path", bytes.Replace(good, []byte(`"/srv/inv/a.xml"`), []byte(`"../a.xml"`), 1)},
		{"short content ID", bytes.Replace(good, []byte(strings.Repeat("ab", 32)), []byte("abab"), 1)},
		{"bad salt", bytes.Replace(good, []byte(`"salt":"BwcHBwcHBwcHBwcHBwcHBw=="`), []byte(`"salt":"Bw=="`), 1)},
		{"negative count", bytes.Replace(good, []byte(`"entries":1`), []byte(`"entries":-1`), 1)},
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
		if len(c2.Entries) != len(c.Entries) || len(c2.Packs) != len(c.Packs) {
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
