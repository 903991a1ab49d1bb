package report

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/testsvc"
)

var update = flag.Bool("update", false, "rewrite golden files")

var ict = time.FixedZone("ICT", 7*3600)

// sampleMonth is a deterministic October 2026: two hourly jobs and a
// daily database job, a few failures (one unresolved), copies, drills.
func sampleMonth() *Month {
	m := &Month{Month: time.Date(2026, 10, 1, 0, 0, 0, 0, ict), Generated: time.Date(2026, 11, 1, 6, 0, 0, 0, ict),
		Org: "Công ty Hoá đơn Số", Repo: "/srv/einvault/repo", Snapshots: 1512, Verdict: &Verdict{Met: false, Criteria: []Criterion{
			{Key: "copies", Want: 3, Have: 3, Met: true}, {Key: "media", Want: 2, Have: 2, Met: true},
			{Key: "offsite", Want: 1, Have: 1, Met: true}, {Key: "immutable", Want: 1, Have: 0, Met: false},
			{Key: "errors", Want: 0, Have: 0, Met: true}}}}
	for day := 0; day < 31; day++ {
		for hour := 0; hour < 24; hour += 3 {
			start := time.Date(2026, 10, 1+day, hour, 5, 0, 0, ict)
			r := Run{Start: start, Duration: time.Duration(40+day%7*5) * time.Second, Job: "invoices-hourly", Op: "backup",
				Kind: "incremental", Result: ResultOK, BytesRead: int64(200+day*10) << 20, BytesAdded: int64(20+day%5*3) << 20}
			if day == 9 && hour == 3 {
				r.Result, r.Error = ResultFailed, "copy s3: connection refused"
			}
			if day == 17 && hour == 12 {
				r.Result, r.Error = ResultDegraded, "copy cloud: pre-flight: only 2.1 GiB free, 5.0 GiB needed"
			}
			m.Runs = append(m.Runs, r)
		}
		db := Run{Start: time.Date(2026, 10, 1+day, 1, 0, 0, 0, ict), Duration: 4 * time.Minute, Job: "invoice-db-daily", Op: "backup",
			Kind: "full", Result: ResultOK, BytesRead: 2 << 30, BytesAdded: 60 << 20}
		if day == 30 {
			db.Result, db.Error = ResultFailed, "pg_dump: connection to server failed: FATAL: password authentication failed"
		}
		m.Runs = append(m.Runs, db)
	}
	m.Copies = []Copy{
		{Name: "local", Kind: "disk", Reachable: true, LastSync: time.Date(2026, 10, 31, 23, 5, 0, 0, ict), LastVerify: time.Date(2026, 10, 30, 2, 0, 0, 0, ict)},
		{Name: "s3", Kind: "s3", Reachable: true, LastSync: time.Date(2026, 10, 31, 23, 6, 0, 0, ict), LastVerify: time.Date(2026, 10, 25, 2, 0, 0, 0, ict)},
		{Name: "cloud", Kind: "cloud", Reachable: false, LastSync: time.Date(2026, 10, 29, 11, 0, 0, 0, ict), Errors: 1, Behind: 14},
	}
	m.Recovery = []Recovery{
		{Time: time.Date(2026, 10, 12, 9, 30, 0, 0, ict), Op: "drill", What: "invoice database PITR", Result: ResultOK,
			RTO: 11 * time.Minute, RPO: 3 * time.Minute, TargetRTO: 4 * time.Hour, TargetRPO: 15 * time.Minute},
		{Time: time.Date(2026, 10, 21, 15, 2, 0, 0, ict), Op: "restore", What: "0105987432-999/1/C21TAQ/11", Result: ResultOK, RTO: 800 * time.Millisecond},
	}
	for i, n := range []int64{81000, 84500, 90210, 88000, 95120, 99800, 101250, 97400, 103900, 110020, 108700, 115300} {
		m.Invoices = append(m.Invoices, MonthCount{Month: time.Date(2025, time.Month(11+i), 1, 0, 0, 0, 0, ict).Format("2006-01"), Count: n})
	}
	return m
}

func TestSummarize(t *testing.T) {
	s := Summarize(sampleMonth())
	if s.TotalRuns != 31*8+31 {
		t.Fatalf("runs %d", s.TotalRuns)
	}
	if len(s.Jobs) != 2 || s.Jobs[1].Job != "invoices-hourly" || s.Jobs[1].Failed != 1 || s.Jobs[1].Degraded != 1 {
		t.Fatalf("jobs %+v", s.Jobs)
	}
	if len(s.Failures) != 3 || s.Unresolved != 1 {
		t.Fatalf("failures %+v unresolved %d", s.Failures, s.Unresolved)
	}
	// The 10 Oct 03:05 failure is fixed by the 06:05 run that took 85 s.
	if f := s.Failures[0]; f.ResolvedAt == nil || f.TimeToFix != "3h1m0s" {
		t.Fatalf("first failure: %+v", f)
	}
	if s.Failures[2].ResolvedAt != nil {
		t.Fatal("the last failure of the month has no later success")
	}
	if len(s.DailyAdded) != 31 {
		t.Fatalf("days %d", len(s.DailyAdded))
	}
	empty := Summarize(&Month{Month: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)})
	if empty.TotalRuns != 0 || len(empty.DailyAdded) != 28 || empty.SuccessRate != 0 {
		t.Fatalf("empty month: %+v", empty)
	}
}

func TestHTMLGolden(t *testing.T) {
	for _, lang := range Languages {
		t.Run(lang, func(t *testing.T) {
			got := HTML(sampleMonth(), lang)
			golden := filepath.Join("testdata", "monthly-"+lang+".html")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("HTML report differs from %s (run go test -update after checking it)", golden)
			}
			for _, w := range []string{"<svg", label(lang, "failures"), "pg_dump: connection", label(lang, "not_resolved")} {
				if !strings.Contains(string(got), w) {
					t.Errorf("%q missing", w)
				}
			}
		})
	}
}

func TestPDF(t *testing.T) {
	out := os.Getenv("EINVAULT_REPORT_OUT") // write the PDFs there to look at them
	for _, lang := range Languages {
		t.Run(lang, func(t *testing.T) {
			if _, err := findFont(lang, nil); err != nil {
				testsvc.Unavailable(t, "report font", "%v", err)
			}
			pdf, err := PDF(sampleMonth(), lang, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(pdf, []byte("%PDF-")) || len(pdf) < 5000 {
				t.Fatalf("not a PDF: %d bytes", len(pdf))
			}
			if out != "" {
				if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("monthly-%s.pdf", lang)), pdf, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	if _, err := PDF(sampleMonth(), "en", func(string) string { return "/nonexistent/font.ttf" }); err == nil {
		t.Fatal("a missing font must be an error")
	}
}
