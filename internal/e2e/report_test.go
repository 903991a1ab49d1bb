package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportMonthly: after backups (one with a failure on a copy), a
// check and a failed restore, the monthly report has the runs, the
// failure and its resolution, the copies and the invoices, in HTML and
// PDF, in Vietnamese.
func TestReportMonthly(t *testing.T) {
	e := newRepo(t)
	src := filepath.Join(e.dir, "src")
	e.generate(src, 60)
	e.mustRun("copies", "add", "nas", filepath.Join(e.dir, "nas"))
	e.mustRun("backup", src)
	if r := e.run("restore", "deadbeef", "--target", filepath.Join(e.dir, "out")); r.code == 0 {
		t.Fatal("restore of a missing snapshot succeeded")
	}
	e.mustRun("corpus", "mutate", src, "--seed", "7")
	e.mustRun("backup", src)
	e.mustRun("check")
	out := filepath.Join(e.dir, "reports")
	month := time.Now().Format("2006-01")
	res := e.mustRun("report", "monthly", "--month", month, "--out", out, "--lang", "vi", "--json")
	var got struct {
		Month   string   `json:"month"`
		Files   []string `json:"files"`
		Summary struct {
			TotalRuns int `json:"total_runs"`
			Jobs      []struct {
				Job  string `json:"job"`
				Runs int    `json:"runs"`
				OK   int    `json:"ok"`
			} `json:"jobs"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
		t.Fatalf("%v: %s", err, res.stdout)
	}
	if got.Month != month || len(got.Files) != 2 || got.Summary.TotalRuns < 3 {
		t.Fatalf("report result: %+v", got)
	}
	html, err := os.ReadFile(filepath.Join(out, "einvault-report-"+month+".html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Báo cáo sao lưu hằng tháng", "<svg", "manual", "nas", "Khôi phục và diễn tập", "Số hoá đơn được bảo vệ mỗi tháng"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	pdf, err := os.ReadFile(filepath.Join(out, "einvault-report-"+month+".pdf"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatal("not a PDF")
	}
	if r := e.run("report", "monthly", "--month", "October"); r.code != 2 || !strings.Contains(r.stderr, "YYYY-MM") {
		t.Fatalf("bad month: %s", r)
	}
}
