package corpus

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// treeHash hashes every regular file's path, content and mtime.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %d %d\n", rel, len(b), fi.ModTime().Unix())
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fileHashes maps corpus-relative paths to content hashes.
func fileHashes(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		s := sha256.Sum256(b)
		m[filepath.ToSlash(rel)] = hex.EncodeToString(s[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func generate(t *testing.T, opts Options) (string, Stats) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "corpus")
	st, err := Generate(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return dir, st
}

func TestGenerateDeterministic(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"defaults", Options{Files: 300, Seed: 1}},
		{"many pdfs small dump", Options{Files: 80, Seed: 7, PDFRatio: 0.5, DumpSize: 100_000}},
		{"no pdfs no dump", Options{Files: 40, Seed: -3, PDFRatio: -1, DumpSize: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d1, st1 := generate(t, tt.opts)
			d2, st2 := generate(t, tt.opts)
			if h1, h2 := treeHash(t, d1), treeHash(t, d2); h1 != h2 {
				t.Fatalf("same options, different trees: %s vs %s", h1, h2)
			}
			st1.Duration, st2.Duration = 0, 0
			if st1 != st2 {
				t.Fatalf("stats differ: %+v vs %+v", st1, st2)
			}
			other := tt.opts
			other.Seed++
			d3, _ := generate(t, other)
			if treeHash(t, d1) == treeHash(t, d3) {
				t.Fatal("different seeds gave identical trees")
			}
			files := len(fileHashes(t, d1))
			if files != st1.Files {
				t.Fatalf("stats say %d files, found %d", st1.Files, files)
			}
			if tt.opts.PDFRatio < 0 && st1.Renderings != 0 || tt.opts.DumpSize < 0 && st1.DumpBytes != 0 {
				t.Fatalf("negative ratio/size should disable: %+v", st1)
			}
		})
	}
}

type xInvoice struct {
	XMLName xml.Name `xml:"HDon"`
	DLHDon  struct {
		ID      string `xml:"Id,attr"`
		TTChung struct {
			PBan, THDon, KHMSHDon, KHHDon, SHDon, NLap, DVTTe, TGia string
		}
		NDHDon struct {
			NBan    struct{ Ten, MST, DChi string }
			NMua    struct{ Ten, MST, DChi string }
			DSHHDVu struct {
				HHDVu []struct {
					TChat  string
					ThTien string
				}
			}
			TToan struct {
				TgTCThue, TgTThue, TgTTTBSo, TgTTTBChu string
			}
		}
	}
	MCCQT string
	DSCKS struct {
		NBan struct {
			Signature struct {
				XMLName    xml.Name
				SignedInfo struct {
					Reference []struct {
						URI string `xml:"URI,attr"`
					}
				}
				SignatureValue string
			}
		}
	}
}

func amount(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(strings.TrimSuffix(s, ".0000"), 10, 64)
	if err != nil {
		t.Fatalf("bad amount %q", s)
	}
	return v
}

var nameRe = regexp.MustCompile(`^invoices/(\d{4})/(\d{2})/(\d{10}(?:-\d{3})?)_([1-6])([CK]\d{2}[A-Z]{3})_(\d{8})\.xml$`)

func TestInvoices(t *testing.T) {
	dir, st := generate(t, Options{Files: 600, Seed: 42})
	numbers := map[string][]int{}
	diacritics := 0
	for rel := range fileHashes(t, dir) {
		if !strings.HasPrefix(rel, "invoices/") {
			continue
		}
		m := nameRe.FindStringSubmatch(rel)
		if m == nil {
			t.Fatalf("bad invoice path %s", rel)
		}
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < minXML || len(b) > maxXML {
			t.Errorf("%s: %d bytes, want 3-12 KB", rel, len(b))
		}
		var x xInvoice
		if err := xml.Unmarshal(b, &x); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		tc := x.DLHDon.TTChung
		if tc.KHMSHDon != m[4] || tc.KHHDon != m[5] || x.DLHDon.NDHDon.NBan.MST != m[3] {
			t.Errorf("%s: content %s/%s/%s does not match name", rel, x.DLHDon.NDHDon.NBan.MST, tc.KHMSHDon, tc.KHHDon)
		}
		if n, _ := strconv.Atoi(m[6]); strconv.Itoa(n) != tc.SHDon {
			t.Errorf("%s: SHDon %s", rel, tc.SHDon)
		}
		if tc.NLap[:4] != m[1] || tc.NLap[5:7] != m[2] || tc.KHHDon[1:3] != m[1][2:] {
			t.Errorf("%s: NLap %s, series %s", rel, tc.NLap, tc.KHHDon)
		}
		if (tc.KHHDon[0] == 'C') != (len(x.MCCQT) == 34) {
			t.Errorf("%s: series %s with MCCQT %q", rel, tc.KHHDon, x.MCCQT)
		}
		sig := x.DSCKS.NBan.Signature
		if sig.XMLName.Space != xmldsigNS || sig.SignatureValue == "" || len(sig.SignedInfo.Reference) != 2 || sig.SignedInfo.Reference[0].URI != "#"+x.DLHDon.ID {
			t.Errorf("%s: bad signature block %+v", rel, sig)
		}
		var sum int64
		for _, l := range x.DLHDon.NDHDon.DSHHDVu.HHDVu {
			if l.TChat == "1" {
				sum += amount(t, l.ThTien)
			}
		}
		tt := x.DLHDon.NDHDon.TToan
		if sum != amount(t, tt.TgTCThue) || amount(t, tt.TgTCThue)+amount(t, tt.TgTThue) != amount(t, tt.TgTTTBSo) {
			t.Errorf("%s: totals do not add up: lines %d, %+v", rel, sum, tt)
		}
		if tt.TgTTTBChu != vndWords(amount(t, tt.TgTTTBSo)) {
			t.Errorf("%s: words %q", rel, tt.TgTTTBChu)
		}
		if strings.ContainsAny(x.DLHDon.NDHDon.NMua.DChi, "ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđ") {
			diacritics++
		}
		key := m[3] + "_" + m[4] + m[5]
		n, _ := strconv.Atoi(tc.SHDon)
		numbers[key] = append(numbers[key], n)
	}
	if diacritics == 0 {
		t.Error("no Vietnamese diacritics in any buyer address")
	}
	if len(numbers) < 6 {
		t.Errorf("only %d series", len(numbers))
	}
	count := 0
	for key, ns := range numbers {
		seen := map[int]bool{}
		for _, n := range ns {
			seen[n] = true
		}
		for i := 1; i <= len(ns); i++ {
			if !seen[i] {
				t.Errorf("series %s: numbers not 1..%d: missing %d", key, len(ns), i)
				break
			}
		}
		count += len(ns)
	}
	if count != st.Invoices {
		t.Errorf("found %d invoices, stats say %d", count, st.Invoices)
	}
}

func TestRenderings(t *testing.T) {
	dir, st := generate(t, Options{Files: 200, Seed: 5, PDFRatio: 0.3})
	if st.Renderings < 30 || st.Renderings > 90 {
		t.Fatalf("%d renderings for 200 invoices at 0.3", st.Renderings)
	}
	n := 0
	for rel := range fileHashes(t, dir) {
		if !strings.HasPrefix(rel, "renderings/") {
			continue
		}
		n++
		if _, err := os.Stat(filepath.Join(dir, "invoices", strings.TrimSuffix(strings.TrimPrefix(rel, "renderings/"), ".pdf")+".xml")); err != nil {
			t.Errorf("%s has no invoice: %v", rel, err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, rel))
		if len(b) < minPDF || len(b) > maxPDF || !bytes.HasPrefix(b, []byte("%PDF-1.7\n")) || !bytes.HasSuffix(b, []byte("%%EOF\n")) {
			t.Errorf("%s: %d bytes, head %q", rel, len(b), b[:10])
		}
		var c bytes.Buffer
		w, _ := flate.NewWriter(&c, flate.BestSpeed)
		w.Write(b)
		w.Close()
		if float64(c.Len()) < 0.97*float64(len(b)) {
			t.Errorf("%s compresses from %d to %d", rel, len(b), c.Len())
		}
	}
	if n != st.Renderings {
		t.Errorf("found %d renderings, stats say %d", n, st.Renderings)
	}
}

func TestDump(t *testing.T) {
	tests := []struct {
		files int
		size  int64
	}{
		{100, 0},
		{100, 2 << 20},
		{400, 50_000}, // smaller than the invoice rows: truncated, still valid
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.files, "/", tt.size), func(t *testing.T) {
			dir, st := generate(t, Options{Files: tt.files, Seed: 9, DumpSize: tt.size})
			b, err := os.ReadFile(filepath.Join(dir, DumpPath))
			if err != nil {
				t.Fatal(err)
			}
			want := tt.size
			if want == 0 {
				want = DefaultDumpSize(tt.files)
			}
			if int64(len(b)) != st.DumpBytes || math.Abs(float64(int64(len(b))-want)) > 70_000 {
				t.Errorf("dump is %d bytes (stats %d), want about %d", len(b), st.DumpBytes, want)
			}
			s := string(b)
			for _, frag := range []string{"-- MySQL dump", "CREATE TABLE `invoices`", "INSERT INTO `invoices` VALUES (1,", "INSERT INTO `invoice_lines` VALUES (1,1,1,", "UNLOCK TABLES;"} {
				if !strings.Contains(s, frag) {
					t.Errorf("dump lacks %q", frag)
				}
			}
			if !strings.HasSuffix(s, dumpTrailer) {
				t.Error("dump does not end with the trailer")
			}
			if strings.Count(s, "LOCK TABLES `") != strings.Count(s, "UNLOCK TABLES;") {
				t.Error("unbalanced LOCK/UNLOCK")
			}
		})
	}
}

func TestVNDWords(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "Không đồng"},
		{5, "Năm đồng"},
		{15, "Mười lăm đồng"},
		{21, "Hai mươi mốt đồng"},
		{24, "Hai mươi tư đồng"},
		{105, "Một trăm lẻ năm đồng"},
		{200000, "Hai trăm nghìn đồng"},
		{976103, "Chín trăm bảy mươi sáu nghìn một trăm lẻ ba đồng"},
		{1001000, "Một triệu không trăm lẻ một nghìn đồng"},
		{13690000, "Mười ba triệu sáu trăm chín mươi nghìn đồng"},
		{2000000015, "Hai tỷ không trăm mười lăm đồng"},
	}
	for _, tt := range tests {
		if got := vndWords(tt.n); got != tt.want {
			t.Errorf("vndWords(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	if _, err := Generate(context.Background(), dir, Options{Files: 10}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty dir: %v", err)
	}
	if _, err := Generate(context.Background(), t.TempDir(), Options{}); err == nil {
		t.Error("Files=0 accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Generate(ctx, filepath.Join(t.TempDir(), "c"), Options{Files: 5000}); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestMutate(t *testing.T) {
	tests := []struct {
		name string
		opts MutateOptions
	}{
		{"defaults", MutateOptions{Seed: 11}},
		{"a fifth", MutateOptions{Seed: 12, Change: 0.2, Add: 0.1, DumpAppend: 100_000}},
	}
	gen := Options{Files: 400, Seed: 3}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d1, _ := generate(t, gen)
			d2, _ := generate(t, gen)
			before := fileHashes(t, d1)
			var calls, last int
			opts := tt.opts
			opts.Progress = func(done, total int) { calls++; last = done }
			st, err := Mutate(context.Background(), d1, opts)
			if err != nil {
				t.Fatal(err)
			}
			if calls == 0 || last != st.Changed+st.AddedInvoices {
				t.Errorf("progress: %d calls, last %d, stats %+v", calls, last, st)
			}
			if _, err := Mutate(context.Background(), d2, tt.opts); err != nil {
				t.Fatal(err)
			}
			after := fileHashes(t, d1)
			if !equalMaps(after, fileHashes(t, d2)) {
				t.Fatal("same seed mutated two equal corpora differently")
			}
			changed, added := 0, 0
			for p, h := range after {
				if old, ok := before[p]; !ok {
					added++
				} else if old != h {
					changed++
				}
			}
			change := tt.opts.Change
			if change == 0 {
				change = DefaultChange
			}
			wantChanged := int(math.Round(change * float64(len(before)-1))) // corpus.json is not a candidate
			if changed != st.Changed || changed != wantChanged {
				t.Errorf("changed %d files, stats %d, want %d", changed, st.Changed, wantChanged)
			}
			if added != st.Added || st.AddedInvoices < 1 {
				t.Errorf("added %d files, stats %+v", added, st)
			}
			if after[DumpPath] == before[DumpPath] || st.DumpAppended == 0 {
				t.Error("dump not changed")
			}
			dump, _ := os.ReadFile(filepath.Join(d1, DumpPath))
			if !strings.HasSuffix(string(dump), dumpTrailer) || strings.Count(string(dump), dumpTrailer) != 1 {
				t.Error("dump trailer not rewritten")
			}
			for p, h := range after {
				if before[p] == h || !strings.HasSuffix(p, ".xml") {
					continue
				}
				b, _ := os.ReadFile(filepath.Join(d1, p))
				var x xInvoice
				if err := xml.Unmarshal(b, &x); err != nil {
					t.Errorf("%s after mutation: %v", p, err)
				}
				if _, existed := before[p]; existed && !bytes.Contains(b, []byte(adjustMarker)) {
					t.Errorf("%s: changed but not marked adjusted", p)
				}
			}
			// a second round with another seed changes other bytes again
			if _, err := Mutate(context.Background(), d2, MutateOptions{Seed: tt.opts.Seed + 100}); err != nil {
				t.Fatal(err)
			}
			if equalMaps(after, fileHashes(t, d2)) {
				t.Error("second round changed nothing")
			}
		})
	}
}

func TestMutateAddContinuesSeries(t *testing.T) {
	dir, _ := generate(t, Options{Files: 300, Seed: 21})
	before := fileHashes(t, dir)
	maxNum := map[string]int{}
	for p := range before {
		if m := nameRe.FindStringSubmatch(p); m != nil {
			n, _ := strconv.Atoi(m[6])
			k := m[3] + m[4] + m[5]
			maxNum[k] = max(maxNum[k], n)
		}
	}
	if _, err := Mutate(context.Background(), dir, MutateOptions{Seed: 1, Change: -1, Add: 0.05}); err != nil {
		t.Fatal(err)
	}
	next := map[string][]int{}
	for p := range fileHashes(t, dir) {
		if _, ok := before[p]; ok {
			continue
		}
		if strings.HasSuffix(p, ".pdf") {
			continue
		}
		m := nameRe.FindStringSubmatch(p)
		if m == nil {
			t.Fatalf("bad new path %s", p)
		}
		if m[1] != "2025" || m[2] != "12" {
			t.Errorf("%s not in the latest month", p)
		}
		n, _ := strconv.Atoi(m[6])
		next[m[3]+m[4]+m[5]] = append(next[m[3]+m[4]+m[5]], n)
	}
	total := 0
	for k, ns := range next {
		for _, n := range ns {
			if n <= maxNum[k] || n > maxNum[k]+len(ns) {
				t.Errorf("series %s: new number %d after max %d (%d new)", k, n, maxNum[k], len(ns))
			}
		}
		total += len(ns)
	}
	if total != 15 {
		t.Errorf("%d new invoices, want 15", total)
	}
}

func TestMutateNotACorpus(t *testing.T) {
	if _, err := Mutate(context.Background(), t.TempDir(), MutateOptions{}); err == nil {
		t.Error("mutating an empty directory succeeded")
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
