package e2e

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// TestInvoices runs the invoice commands on a generated corpus: every
// invoice is cataloged and found, one invoice and its rendering are
// restored by key, removed invoices are gaps naming the snapshot that
// last held them (a cancelled one is listed as such), the database is
// reconciled, restored invoices are verified and damage gives exit 5.
// corpusXMLs lists the invoice XML files of a generated corpus, sorted,
// and fails unless there are want of them.
func corpusXMLs(t *testing.T, src string, want int) []string {
	t.Helper()
	var xmls []string
	_ = filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".xml") {
			xmls = append(xmls, p)
		}
		return nil
	})
	sort.Strings(xmls)
	if len(xmls) != want {
		t.Fatalf("corpus has %d invoices, want %d", len(xmls), want)
	}
	return xmls
}

func TestInvoices(t *testing.T) {
	t.Parallel()
	e := newRepo(t)
	e.vars["EINVAULT_CACHE_DIR"] = filepath.Join(e.dir, "cache")
	src := filepath.Join(e.dir, "corpus")
	e.mustRun("corpus", "generate", src, "--files", "120", "--seed", "3", "--pdf-ratio", "0.3", "--dump-size", "-1")
	xmls := corpusXMLs(t, src, 120)

	res := e.mustRun("backup", src, "--json")
	var sum struct {
		Snapshot string `json:"snapshot_id"`
		Catalog  struct {
			Invoices int `json:"invoices"`
		} `json:"catalog"`
	}
	if err := json.Unmarshal([]byte(lastLine(res.stdout)), &sum); err != nil || sum.Catalog.Invoices != 120 {
		t.Fatalf("backup summary %q: %v", res.stdout, err)
	}
	s1 := sum.Snapshot

	var stats struct {
		Total int `json:"total"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("invoices", "stats", "--json").stdout), &stats); err != nil || stats.Total != 120 {
		t.Fatalf("stats total %d (%v)", stats.Total, err)
	}

	// every invoice is found by its file's key
	var found struct {
		Count    int `json:"count"`
		Invoices []struct {
			Key      string `json:"key"`
			Deleted  bool   `json:"deleted"`
			Versions []struct {
				ContentID string `json:"content_id"`
				LastSeen  struct {
					Path string `json:"path"`
				} `json:"last_seen"`
			} `json:"versions"`
		} `json:"invoices"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("invoices", "find", "--json", "--limit", "1000").stdout), &found); err != nil {
		t.Fatal(err)
	}
	keyOf := map[string]string{}
	for _, m := range found.Invoices {
		keyOf[m.Versions[0].LastSeen.Path] = m.Key
	}
	for _, x := range xmls {
		if keyOf[x] == "" {
			t.Fatalf("%s not found by 'invoices find'", x)
		}
	}

	// restore one invoice with a rendering, by key
	var withPDF string
	for _, x := range xmls {
		pdf := strings.Replace(strings.TrimSuffix(x, ".xml")+".pdf", "/invoices/", "/renderings/", 1)
		if _, err := os.Stat(pdf); err == nil {
			withPDF = x
			break
		}
	}
	target := filepath.Join(e.dir, "one")
	res = e.mustRun("invoices", "restore", keyOf[withPDF], "--target", target, "--json")
	var rr struct {
		IndexLoaded bool `json:"index_loaded"`
		Files       []struct {
			Path     string `json:"path"`
			Verified bool   `json:"verified"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &rr); err != nil || len(rr.Files) != 2 || rr.IndexLoaded {
		t.Fatalf("restore one: %v\n%s", err, res)
	}
	rel, _ := filepath.Rel(src, withPDF)
	if got, want := readFile(t, filepath.Join(target, rel)), readFile(t, withPDF); !bytes.Equal(got, want) {
		t.Fatal("restored invoice differs from the original")
	}
	if res := e.run("invoices", "restore", keyOf[withPDF], "--target", target); res.code != exitError || !strings.Contains(res.stderr, "--overwrite") {
		t.Fatalf("restoring over an existing file: %s", res)
	}
	if res := e.run("invoices", "restore", "0000000000/1/X/1", "--target", target); res.code != exitError {
		t.Fatalf("unknown key: %s", res)
	}

	// remove five invoices, cancel one of them on record, back up again
	removed := []string{xmls[3], xmls[17], xmls[42], xmls[77], xmls[111]}
	for _, x := range removed {
		if err := os.Remove(x); err != nil {
			t.Fatal(err)
		}
	}
	res = e.mustRun("backup", src, "--json")
	if err := json.Unmarshal([]byte(lastLine(res.stdout)), &sum); err != nil || sum.Catalog.Invoices != 115 {
		t.Fatalf("second backup: %v %s", err, res.stdout)
	}
	s2 := sum.Snapshot
	cancelled := strings.Split(keyOf[removed[0]], "/")
	portal := fmt.Sprintf(`[{"nbmst":%q,"khmshdon":%s,"khhdon":%q,"shdon":%s,"tthai":6,"tdlap":"2024-05-01T00:00:00Z"}]`,
		cancelled[0], cancelled[1], cancelled[2], cancelled[3])
	statusFile := filepath.Join(e.dir, "portal.json")
	if err := os.WriteFile(statusFile, []byte(portal), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("invoices", "import-status", statusFile)

	var gaps struct {
		Snapshot string `json:"snapshot"`
		Groups   []struct {
			Missing []struct {
				Key  string `json:"key"`
				Last string `json:"last_snapshot"`
			} `json:"missing"`
			Recorded []struct {
				Number int    `json:"number"`
				Status string `json:"status"`
			} `json:"cancelled_or_replaced"`
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("invoices", "gaps", "--json").stdout), &gaps); err != nil || gaps.Snapshot != s2 {
		t.Fatalf("gaps: %v (snapshot %s, want %s)", err, gaps.Snapshot, s2)
	}
	missing := map[string]string{}
	recorded := 0
	for _, g := range gaps.Groups {
		for _, m := range g.Missing {
			missing[m.Key] = m.Last
		}
		recorded += len(g.Recorded)
	}
	for _, x := range removed[1:] {
		if missing[keyOf[x]] != s1 {
			t.Errorf("removed %s: gap last in %q, want %s (all: %v)", keyOf[x], missing[keyOf[x]], s1, missing)
		}
	}
	if len(missing) != 4 || recorded != 1 {
		t.Errorf("%d gaps and %d cancelled, want 4 and 1: %v", len(missing), recorded, missing)
	}
	goldenInvoices(t, "invoices_gaps.golden", e.mustRun("invoices", "gaps").stdout, s1, s2)
	goldenInvoices(t, "invoices_stats.golden", e.mustRun("invoices", "stats").stdout, s1, s2)

	// reconcile with a real SQLite database: one row missing, one total wrong
	dbPath := filepath.Join(e.dir, "inv.db")
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE hd(mst TEXT, mau TEXT, kh TEXT, so INTEGER, tong TEXT)`); err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, x := range xmls {
		if _, gone := missing[keyOf[x]]; gone || x == removed[0] {
			continue
		}
		i++
		if i == 1 {
			continue
		}
		k := strings.Split(keyOf[x], "/")
		var total any // NULL: not compared
		if i == 2 {
			total = "1.00"
		}
		if _, err := db.Exec(`INSERT INTO hd VALUES(?,?,?,?,?)`, k[0], k[1], k[2], k[3], total); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	res = e.run("invoices", "reconcile", "--db", "sqlite:"+dbPath, "--json",
		"--query", "SELECT mst AS seller_tax_code, mau AS form, kh AS series, so AS number, tong AS total FROM hd")
	var rec struct {
		Rows     int               `json:"rows"`
		Matched  int               `json:"matched"`
		Clean    bool              `json:"clean"`
		NoRow    []json.RawMessage `json:"files_without_row"`
		NoFile   []json.RawMessage `json:"rows_without_file"`
		NotOnRec []string          `json:"files_not_on_record"`
		Mismatch []struct {
			Field string `json:"field"`
			DB    string `json:"database"`
		} `json:"mismatches"`
	}
	// differences: exit 5, the report and then the error as JSON lines
	if err := json.Unmarshal([]byte(strings.SplitN(res.stdout, "\n", 2)[0]), &rec); err != nil || res.code != exitDamaged || rec.Rows != 114 || rec.Matched != 114 || len(rec.NoRow) != 1 || len(rec.NoFile) != 0 || rec.Clean ||
		len(rec.Mismatch) != 1 || rec.Mismatch[0].Field != "total" || rec.Mismatch[0].DB != "1.00" {
		t.Fatalf("reconcile: %v %+v\n%s", err, rec, res)
	}

	// full restore: invoices verified automatically
	rt := filepath.Join(e.dir, "restore")
	res = e.mustRun("restore", "latest", "--target", rt)
	if !strings.Contains(res.stdout, "Verified 115 invoice(s)") {
		t.Fatalf("restore did not verify the invoices:\n%s", res)
	}
	// signatures were re-checked, not taken as "pending" from the cache
	if sig := regexp.MustCompile(`Signatures: ([^(]*)\(`).FindStringSubmatch(res.stdout); sig == nil || strings.Contains(sig[1], "pending") || sig[1] == "- " {
		t.Fatalf("restore did not re-check signatures:\n%s", res)
	}
	// damage one restored invoice: verify fails with exit 5 naming it
	victim := filepath.Join(rt, xmls[5])
	if err := os.WriteFile(victim, append(readFile(t, victim), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	res = e.run("invoices", "verify", rt)
	if res.code != exitDamaged || !strings.Contains(res.stdout, "content-differs: "+xmls[5]) {
		t.Fatalf("verify after damage: %s", res)
	}
	e.mustRun("invoices", "verify", "latest")

	// a backup without catalog leaves the cataloged snapshots answering
	e.mustRun("backup", "--no-catalog", src)
	if err := json.Unmarshal([]byte(e.mustRun("invoices", "stats", "--json").stdout), &stats); err != nil || stats.Total != 115 {
		t.Fatalf("stats after --no-catalog backup: %d %v", stats.Total, err)
	}
	e.mustRun("invoices", "cache", "rebuild")
	if res := e.mustRun("invoices", "find", "--number", cancelled[3], "--series", cancelled[2], "--seller", cancelled[0], "--json"); !strings.Contains(res.stdout, `"deleted":true`) {
		t.Fatalf("removed invoice not shown as deleted:\n%s", res)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var timeRE = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z`)

// goldenInvoices compares command output with testdata/NAME with the
// snapshot IDs and times replaced (they differ on every run).
func goldenInvoices(t *testing.T, name, got string, s1, s2 string) {
	t.Helper()
	got = strings.ReplaceAll(got, s1[:8], "SNAP1")
	got = strings.ReplaceAll(got, s2[:8], "SNAP2")
	got = timeRE.ReplaceAllString(got, "TIME")
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run 'go test ./internal/e2e -run Invoices -update' to create it)", err)
	}
	if string(want) != got {
		t.Errorf("output differs from %s (run with -update if the change is deliberate):\n--- want\n%s\n--- got\n%s", p, want, got)
	}
}
