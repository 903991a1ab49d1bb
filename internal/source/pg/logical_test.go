package pg_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/testsvc"
)

const invoiceSchema = `CREATE TABLE invoices (id bigserial PRIMARY KEY, series text NOT NULL, no int NOT NULL, total numeric(14,2), created timestamptz DEFAULT now(), UNIQUE (series, no));
CREATE SCHEMA acct; CREATE TABLE acct.ledger (id int PRIMARY KEY, note text);`

func TestLogicalBackupRestoreVerify(t *testing.T) {
	t.Parallel()
	p := testsvc.StartPostgres(t, testsvc.PGOptions{})
	e := newEnv(t)
	p.Exec(t, "postgres", "CREATE DATABASE einvoice")
	p.Exec(t, "einvoice", invoiceSchema+`
		INSERT INTO invoices (series, no, total) SELECT 'C26TAA', g, g * 1.5 FROM generate_series(1, 3000) g;
		INSERT INTO acct.ledger SELECT g, repeat('x', g % 50) FROM generate_series(1, 117) g;
		INSERT INTO acct.ledger VALUES (118, E'two\nlines'), (119, E'\\.\n'), (120, NULL);`)

	out := e.mustRun("backup", "--json", "--pg-checksums", p.DSN("einvoice"))
	var sum struct {
		SnapshotID string `json:"snapshot_id"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.SnapshotID == "" {
		t.Fatalf("backup output %q: %v", out, err)
	}
	ls := e.mustRun("ls", sum.SnapshotID)
	for _, want := range []string{"/einvoice.dump", "/globals.sql"} {
		if !strings.Contains(ls, want) {
			t.Errorf("snapshot lacks %s:\n%s", want, ls)
		}
	}
	var snaps []struct {
		Meta struct {
			Source struct {
				ServerVersion string `json:"server_version"`
				Location      string `json:"location"`
				Tables        []struct {
					Schema, Name, Checksum string
					Rows                   int64
				} `json:"tables"`
			} `json:"source"`
		} `json:"meta"`
	}
	// A second backup without checksums counts the rows from the dump
	// as it streams (rows with newlines and backslashes included).
	p.Exec(t, "einvoice", "CREATE TABLE acct.empty (id int); CREATE UNLOGGED TABLE acct.scratch (id int); INSERT INTO acct.scratch VALUES (1), (2)")
	e.mustRun("backup", p.DSN("einvoice"))
	if err := json.Unmarshal([]byte(e.mustRun("snapshots", "--json")), &snaps); err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots: %v %d", err, len(snaps))
	}
	src := snaps[0].Meta.Source
	if !strings.HasPrefix(src.ServerVersion, "1") || len(src.Tables) != 2 || src.Tables[0].Name != "ledger" || src.Tables[0].Rows != 120 || src.Tables[1].Rows != 3000 || src.Tables[1].Checksum == "" {
		t.Fatalf("recorded metadata: %+v", src)
	}
	got := map[string]int64{}
	for _, tb := range snaps[1].Meta.Source.Tables {
		got[tb.Schema+"."+tb.Name] = tb.Rows
	}
	if want := map[string]int64{"acct.empty": 0, "acct.ledger": 120, "acct.scratch": 2, "public.invoices": 3000}; !maps.Equal(got, want) {
		t.Fatalf("row counts from the dump = %v, want %v", got, want)
	}
	p.Exec(t, "einvoice", "DROP TABLE acct.empty, acct.scratch")

	// Restore under a new name; the rows and indexes come back verified.
	out = e.mustRun("pg", "restore-dump", sum.SnapshotID, "--to", p.DSN("einvoice_restored"), "--jobs", "2", "--checksums", "--json")
	var res struct {
		Verification struct {
			Checks []struct {
				Name   string
				OK     bool
				Detail string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Verification.Checks) < 5 {
		t.Fatalf("too few checks: %s", out)
	}
	if got := p.QueryString(t, "einvoice_restored", "SELECT sum(no) FROM invoices"); got != "4501500" {
		t.Errorf("restored sum = %s", got)
	}
	// Restoring over an existing database is refused.
	if _, errOut, code := e.run("pg", "restore-dump", sum.SnapshotID, "--to", p.DSN("einvoice")); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("restore over existing db: exit %d, %s", code, errOut)
	}

	// Faults: wrong credentials, pg_dump killed halfway, server down.
	// Each is one line, non-zero, and leaves no snapshot.
	wrapper := t.TempDir()
	for _, prog := range []string{"pg_dumpall", "psql", "pg_restore"} {
		if err := os.Symlink(filepath.Join(p.BinDir, prog), filepath.Join(wrapper, prog)); err != nil {
			t.Fatal(err)
		}
	}
	script := "#!/bin/sh\n\"" + filepath.Join(p.BinDir, "pg_dump") + "\" \"$@\" | head -c 20000\nkill -KILL $$\n"
	if err := os.WriteFile(filepath.Join(wrapper, "pg_dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	faults := []struct {
		name string
		args []string
		want string
	}{
		{"wrong user", []string{"backup", strings.Replace(p.DSN("einvoice"), "postgres@", "nobody@", 1)}, "connect to PostgreSQL"},
		{"missing database", []string{"backup", p.DSN("nosuchdb")}, "nosuchdb"},
		{"pg_dump killed", []string{"backup", "--pg-bin", wrapper, p.DSN("einvoice")}, "pg_dump"},
	}
	for _, f := range faults {
		_, errOut, code := e.run(f.args...)
		if code == 0 || !strings.Contains(errOut, f.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
			t.Errorf("%s: exit %d, stderr %q", f.name, code, errOut)
		}
	}
	p.Stop(t)
	if _, errOut, code := e.run("backup", p.DSN("einvoice")); code == 0 || !strings.Contains(errOut, "is the server running") {
		t.Errorf("server down: exit %d, %q", code, errOut)
	}
	if n := e.snapshotCount(); n != 2 {
		t.Errorf("%d snapshots after failed backups, want 2", n)
	}
}
