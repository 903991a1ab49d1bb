package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

type drillOut struct {
	Verdict   string   `json:"verdict"`
	RTO       float64  `json:"rto_seconds"`
	RPO       float64  `json:"rpo_seconds"`
	TargetRTO float64  `json:"target_rto_seconds"`
	Snapshots []string `json:"snapshots"`
	Target    string   `json:"target"`
	Kept      bool     `json:"kept"`
	Reasons   []string `json:"reasons"`
	Files     int64    `json:"files"`
}

func parseDrill(t *testing.T, res result) drillOut {
	t.Helper()
	var d drillOut
	// With a non-zero exit an error object follows the result line.
	first, _, _ := strings.Cut(strings.TrimSpace(res.stdout), "\n")
	if err := json.Unmarshal([]byte(first), &d); err != nil {
		t.Fatalf("drill --json: %v\n%s", err, res)
	}
	return d
}

// TestDrill runs drills of a file job: one that passes (journaled with
// its RTO and RPO, scratch directory removed), one with an impossible RTO
// target (exit 4), and one on a repository whose data pack is corrupted
// (exit 5).
func TestDrill(t *testing.T) {
	t.Parallel()
	e := newRepo(t)
	src := filepath.Join(e.dir, "invoices")
	e.generate(src, 30)
	var mu sync.Mutex
	var alerts []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		alerts = append(alerts, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	taken := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := alerts
		alerts = nil
		return out
	}
	writeCfg := func(rto string) {
		cfg := fmt.Sprintf("repository:\n  location: %s\nsources:\n  files: {paths: [%s]}\nclasses:\n  invoices: {rto: %s}\njobs:\n  inv:\n    class: invoices\n    sources: [files]\n", e.repo, src, rto)
		cfg += "notifications:\n  channels:\n    - {name: hook, type: webhook, url: \"" + hook.URL + "/hook\"}\n  recipients:\n    - {name: ops, channel: hook}\n  rules:\n    - {name: all, levels: [[ops]]}\n"
		p := filepath.Join(e.dir, "einvault.yaml")
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		e.vars["EINVAULT_CONFIG"] = p
	}
	writeCfg("1h")
	e.mustRun("run", "inv")

	res := e.run("drill", "inv", "--json")
	if res.code != exitOK {
		t.Fatalf("drill of an intact job: want exit 0\n%s", res)
	}
	d := parseDrill(t, res)
	if d.Verdict != "pass" || d.RTO <= 0 || d.TargetRTO != 3600 || len(d.Snapshots) != 1 || d.Files < 30 {
		t.Fatalf("drill result: %+v", d)
	}
	if _, err := os.Stat(d.Target); !os.IsNotExist(err) {
		t.Errorf("scratch directory %s left behind (%v)", d.Target, err)
	}
	human := e.run("drill", "inv")
	if human.code != exitOK || !strings.Contains(human.stdout, "drill of inv: PASS") {
		t.Fatalf("human output lacks the verdict line:\n%s", human)
	}
	if got := taken(); len(got) != 0 {
		t.Fatalf("alerts for passed drills: %q", got)
	}
	js := e.mustRun("journal", "--json", "--op", "drill").stdout
	if !strings.Contains(js, `"rto_seconds"`) || !strings.Contains(js, `"target_rto_seconds":3600`) || !strings.Contains(js, `"job":"inv"`) {
		t.Errorf("journal lacks the drill's RTO/RPO:\n%s", js)
	}

	// Impossible target: done and verified, but degraded.
	writeCfg("1ns")
	res = e.run("drill", "inv", "--json")
	if res.code != 4 {
		t.Fatalf("impossible rto: want exit 4\n%s", res)
	}
	if d := parseDrill(t, res); d.Verdict != "fail" || !strings.Contains(strings.Join(d.Reasons, ";"), "RTO") {
		t.Fatalf("impossible rto: %+v", d)
	}
	if got := taken(); len(got) != 1 || !strings.Contains(got[0], "drill") || !strings.Contains(got[0], "missed its target") {
		t.Fatalf("want one alert for the missed target, got %q", got)
	}

	// Kept scratch directory.
	writeCfg("1h")
	keep := filepath.Join(e.dir, "kept")
	res = e.run("drill", "inv", "--keep", "--target", keep, "--json")
	if res.code != exitOK || !parseDrill(t, res).Kept {
		t.Fatalf("--keep:\n%s", res)
	}
	if entries, _ := os.ReadDir(keep); len(entries) == 0 {
		t.Errorf("--keep left nothing in %s", keep)
	}

	// Corrupt the largest pack (file data, not trees): verification fails.
	var big string
	var size int64
	filepath.Walk(filepath.Join(e.repo, "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > size {
			big, size = p, fi.Size()
		}
		return nil
	})
	b, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0xff
	os.Chmod(big, 0o600)
	if err := os.WriteFile(big, b, 0o600); err != nil {
		t.Fatal(err)
	}
	res = e.run("drill", "inv", "--json")
	if res.code != exitDamaged {
		t.Fatalf("corrupted repository: want exit %d\n%s", exitDamaged, res)
	}
	if d := parseDrill(t, res); d.Verdict != "verification-failed" {
		t.Fatalf("corrupted repository: %+v", d)
	}
	var failed int
	for _, j := range e.journal() {
		if j.Op == "drill" && j.Result == "failed" {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("want 1 failed drill in the journal, got %d", failed)
	}
}
