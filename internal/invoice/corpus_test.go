package invoice

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/corpus"
)

// corpusName is the generator's file name: <MST>_<KHMSHDon><KHHDon>_<SHDon 8 digits>.xml
var corpusName = regexp.MustCompile(`^([0-9]{10}(?:-[0-9]{3})?)_([0-9])([A-Z][0-9]{2}[A-Z]{3})_([0-9]{8})\.xml$`)

func generateCorpus(t testing.TB, files int, dump int64) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := corpus.Generate(context.Background(), dir, corpus.Options{Files: files, Seed: 7, DumpSize: dump}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCorpusProperty: every invoice the corpus generator writes is
// recognised with the key its file name encodes; renderings, the SQL
// dump and the manifest are not invoices.
func TestCorpusProperty(t *testing.T) {
	dir := generateCorpus(t, 400, 256<<10)
	seen, others := 0, 0
	keys := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		invs, err := Recognize(t.Context(), p, data, Limits{})
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		m := corpusName.FindStringSubmatch(d.Name())
		if m == nil {
			others++
			if invs != nil {
				t.Errorf("%s is not an invoice but gave %+v", p, invs)
			}
			return nil
		}
		seen++
		if len(invs) != 1 {
			t.Errorf("%s: %d invoices", p, len(invs))
			return nil
		}
		inv := invs[0]
		want := strings.Join([]string{m[1], m[2], m[3], normNumber(m[4])}, "/")
		if inv.Key() != want {
			t.Errorf("%s: key %s, want %s", p, inv.Key(), want)
		}
		if keys[inv.Key()] {
			t.Errorf("%s: duplicate key %s", p, inv.Key())
		}
		keys[inv.Key()] = true
		if inv.Format != FormatVNTT78 || inv.IssueDate == "" || inv.Total == "" || len(inv.Signatures) == 0 {
			t.Errorf("%s: incomplete %+v", p, inv)
		}
		if _, err := Amount(inv.Total); err != nil {
			t.Errorf("%s: total %v", p, err)
		}
		if inv.IssueDate[2:4] != m[3][1:3] || !strings.Contains(p, filepath.FromSlash(inv.IssueDate[:4]+"/"+inv.IssueDate[5:7])) {
			t.Errorf("%s: issue date %s does not match its series or folder", p, inv.IssueDate)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != 400 || others < 2 {
		t.Fatalf("recognised %d of 400 invoices, %d other files", seen, others)
	}
}

// BenchmarkRecognizeCorpus measures recognition over every file of a
// generated corpus (invoices, PDF renderings, SQL dump): the cost the
// backup pays per byte. Compare its MB/s with the backup throughput
// (bench/invparse.sh does).
//
// EINVAULT_BENCH_CORPUS names an existing corpus to use instead of a
// generated 2000-invoice one.
func BenchmarkRecognizeCorpus(b *testing.B) {
	dir := os.Getenv("EINVAULT_BENCH_CORPUS")
	if dir == "" {
		dir = generateCorpus(b, 2000, 0)
	}
	type file struct {
		name string
		data []byte
	}
	var files []file
	var total int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			files = append(files, file{p, data})
			total += int64(len(data))
		}
		return nil
	})
	b.SetBytes(total)
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		for _, f := range files {
			if _, err := Recognize(context.Background(), f.name, f.data, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	// CPU time is the steadier measure on a shared machine (it includes
	// the garbage collector's work on other threads).
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(files)), "ns/file")
}

// BenchmarkRecognizeInvoice is the cost of parsing one invoice XML.
func BenchmarkRecognizeInvoice(b *testing.B) {
	dir := generateCorpus(b, 50, -1)
	var data []byte
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if data == nil && err == nil && strings.HasSuffix(p, ".xml") {
			data, _ = os.ReadFile(p)
		}
		return nil
	})
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if invs, err := Recognize(context.Background(), "x.xml", data, Limits{}); err != nil || len(invs) != 1 {
			b.Fatal(invs, err)
		}
	}
}

// BenchmarkRecognizeNonInvoice is the cost of sniffing a non-invoice.
func BenchmarkRecognizeNonInvoice(b *testing.B) {
	data := make([]byte, 1<<20)
	copy(data, "%PDF-1.7\n")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if invs, err := Recognize(context.Background(), "x.pdf", data, Limits{}); err != nil || invs != nil {
			b.Fatal(invs, err)
		}
	}
}

// BenchmarkVerify is the cost of checking both signatures of a coded
// (202) invoice, seller and tax authority.
func BenchmarkVerify(b *testing.B) {
	p := getPKI(b)
	s := p.signer(b, "0312345678", time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), false)
	data := signedInvoice(b, "0312345678", s, s, testTime)
	invs, err := Recognize(context.Background(), "x.xml", data, Limits{})
	if err != nil || len(invs) != 1 {
		b.Fatal(invs, err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		inv := invs[0]
		inv.Signatures = append([]Signature(nil), invs[0].Signatures...)
		if err := VerifySignatures(context.Background(), data, &inv, VerifyOptions{}); err != nil || inv.SigStatus() != SigValid {
			b.Fatal(err, inv.Signatures)
		}
	}
}

// BenchmarkVerifyReformatted is the cost when the stored bytes fail and
// the check is repeated after whitespace normalisation.
func BenchmarkVerifyReformatted(b *testing.B) {
	p := getPKI(b)
	s := p.signer(b, "0312345678", time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), false)
	d := mustDoc(b, string(signedInvoice(b, "0312345678", s, nil, testTime)))
	d.Indent(2)
	data := docBytes(b, d)
	invs, err := Recognize(context.Background(), "x.xml", data, Limits{})
	if err != nil || len(invs) != 1 {
		b.Fatal(invs, err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		inv := invs[0]
		inv.Signatures = append([]Signature(nil), invs[0].Signatures...)
		if err := VerifySignatures(context.Background(), data, &inv, VerifyOptions{}); err != nil || inv.SigStatus() != SigReformatted {
			b.Fatal(err, inv.Signatures)
		}
	}
}

// cpuTime is the process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
