package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/testsvc"
)

// TestDrillPostgres drills a job of the invoice database against a real
// PostgreSQL server: the dump is restored into a scratch database
// <db>_drill_<timestamp>, verified and dropped; with the server down the
// drill fails (exit 1) naming the unreachable server, never skipping the
// database silently.
func TestDrillPostgres(t *testing.T) {
	p := testsvc.StartPostgres(t, testsvc.PGOptions{})
	p.Exec(t, "postgres", "CREATE DATABASE einvoice")
	p.Exec(t, "einvoice", `CREATE TABLE hoa_don (id serial PRIMARY KEY, so text NOT NULL, tong numeric NOT NULL);
		INSERT INTO hoa_don (so, tong) SELECT 'HD' || g, g * 1000 FROM generate_series(1, 500) g`)
	e := newRepo(t)
	cfg := fmt.Sprintf("repository:\n  location: %s\nsources:\n  db: {database: %q}\njobs:\n  db-daily:\n    class: invoice-database\n    sources: [db]\n", e.repo, p.DSN("einvoice"))
	path := filepath.Join(e.dir, "einvault.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.vars["EINVAULT_CONFIG"] = path
	e.mustRun("run", "db-daily")

	res := e.run("drill", "db-daily", "--json")
	if res.code != exitOK {
		t.Fatalf("drill of the database job: want exit 0\n%s", res)
	}
	d := parseDrill(t, res)
	if d.Verdict != "pass" || d.TargetRTO != 7200 {
		t.Fatalf("drill: %+v", d)
	}
	for _, want := range []string{"restore PostgreSQL snapshot", "einvoice_drill_", "drop scratch database", "no WAL archived"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("drill output lacks %q:\n%s", want, res.stdout)
		}
	}
	if left := p.QueryString(t, "postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'einvoice_drill_%'"); left != "0" {
		t.Errorf("%s scratch database(s) left behind", left)
	}

	p.Stop(t)
	res = e.run("drill", "db-daily")
	if res.code != exitError {
		t.Fatalf("drill with the server down: want exit 1\n%s", res)
	}
	if !strings.Contains(res.stdout, "no PostgreSQL server reachable") || !strings.Contains(res.stdout, "ERROR") {
		t.Fatalf("the unreachable server is not named clearly:\n%s", res)
	}
}

// TestDrillMariaDB drills a MariaDB job: restored into a scratch database
// <db>_drill_<timestamp>, verified (row counts, CHECKSUM TABLE) and
// dropped.
func TestDrillMariaDB(t *testing.T) {
	m := testsvc.StartMariaDBWith(t, testsvc.MariaDBOptions{LogBin: true})
	m.Exec(t, "CREATE DATABASE shop CHARACTER SET utf8mb4; CREATE TABLE shop.invoices (id INT PRIMARY KEY, n VARCHAR(10)); INSERT INTO shop.invoices VALUES (1,'a'),(2,'b'),(3,'c')")
	e := newRepo(t)
	cfg := fmt.Sprintf("repository:\n  location: %s\nsources:\n  db: {database: %q}\njobs:\n  shop-daily:\n    class: transactions\n    sources: [db]\n", e.repo, m.URL("shop"))
	path := filepath.Join(e.dir, "einvault.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.vars["EINVAULT_CONFIG"] = path
	e.mustRun("run", "shop-daily")
	res := e.run("drill", "shop-daily")
	if res.code != exitOK || !strings.Contains(res.stdout, "shop_drill_") || !strings.Contains(res.stdout, "drop scratch database") || !strings.Contains(res.stdout, "PASS") {
		t.Fatalf("MariaDB drill: want exit 0 with the scratch database restored and dropped\n%s", res)
	}
	if left := m.QueryString(t, "", "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name LIKE 'shop_drill_%'"); left != "0" {
		t.Errorf("%s scratch database(s) left behind", left)
	}

	// With binary logs archived after the dump, the drill rolls the dump
	// forward and measures the RPO from the newest archived log.
	m.Exec(t, "INSERT INTO shop.invoices VALUES (4,'d')")
	e.mustRun("db", "binlog-archive", m.URL(""))
	res = e.run("drill", "shop-daily", "--keep", "--json")
	var out struct {
		Verdict  string `json:"verdict"`
		DataFrom string `json:"data_from"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); res.code != exitOK || err != nil || out.DataFrom != "binlog" || !strings.Contains(res.stdout, "replay archived binary logs") {
		t.Fatalf("drill with archived binary logs: want exit 0, data from binlog\n%s", res)
	}
	if got := m.QueryString(t, "", "SELECT GROUP_CONCAT(schema_name) FROM information_schema.schemata WHERE schema_name LIKE 'shop_drill_%'"); got == "" ||
		m.QueryString(t, got, "SELECT COUNT(*) FROM invoices") != "4" {
		t.Fatalf("the kept scratch database %q lacks the row written after the dump", got)
	}
}
