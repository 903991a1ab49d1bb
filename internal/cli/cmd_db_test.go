package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/testsvc"
)

func runDB(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	g := &Globals{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	g.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	root := NewRootCmd(g)
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString("einvault: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), ExitCode(err)
}

func dbTestEnv(t *testing.T) map[string]string {
	dir := t.TempDir()
	env := map[string]string{"EINVAULT_REPO": filepath.Join(dir, "repo"), "EINVAULT_PASSWORD": "pw", "EINVAULT_INSECURE_TEST_KDF": "1", "HOME": dir}
	if _, errs, code := runDB(t, env, "init"); code != 0 {
		t.Fatalf("init: %s", errs)
	}
	return env
}

func snapshotCount(t *testing.T, env map[string]string) int {
	t.Helper()
	out, errs, code := runDB(t, env, "snapshots", "--json")
	if code != 0 {
		t.Fatalf("snapshots: %s", errs)
	}
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("snapshots --json: %v: %s", err, out)
	}
	return len(list)
}

func TestBackupFromCommandCLI(t *testing.T) {
	env := dbTestEnv(t)
	out, errs, code := runDB(t, env, "backup", "--stdin-from-command", `sh -c 'echo "CREATE TABLE hoadon;"; echo progress >&2'`, "--stdin-filename", "db.sql", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	dump, errs, code := runDB(t, env, "dump", "latest", "/db.sql")
	if code != 0 || dump != "CREATE TABLE hoadon;\n" {
		t.Fatalf("dump: %q %s", dump, errs)
	}
	_, errs, code = runDB(t, env, "backup", "--stdin-from-command", `sh -c 'echo partial; echo "sqlcmd: login failed" >&2; exit 1'`, "--stdin-filename", "x.bak")
	if code == 0 || !strings.Contains(errs, "exited with status 1: sqlcmd: login failed") || !strings.Contains(errs, "no snapshot was written") {
		t.Fatalf("failing command: exit %d, %s", code, errs)
	}
	if n := snapshotCount(t, env); n != 1 {
		t.Fatalf("%d snapshots, want 1 (the failed command must not add one)", n)
	}
	if _, errs, code := runDB(t, env, "backup", "--stdin-from-command", `x 'unclosed`); code != ExitUsage {
		t.Fatalf("bad command line: exit %d, %s", code, errs)
	}
}

func TestSQLiteBackupRestoreCLI(t *testing.T) {
	env := dbTestEnv(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "app.sqlite")
	db, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY, n TEXT); INSERT INTO invoices (n) VALUES ('a'), ('b'), ('c')"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if out, errs, code := runDB(t, env, "backup", "sqlite:"+p, "--tag", "sqlite"); code != 0 {
		t.Fatalf("backup: exit %d %s %s", code, out, errs)
	}
	target := filepath.Join(dir, "restored.sqlite")
	out, errs, code := runDB(t, env, "db", "restore", "latest", "--to", target, "--json")
	if code != 0 {
		t.Fatalf("restore: exit %d %s %s", code, out, errs)
	}
	var res struct {
		Target       string
		Verification struct {
			Checks []struct {
				Name string
				OK   bool
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Target != target || len(res.Verification.Checks) < 3 {
		t.Fatalf("report %s: %v", out, err)
	}
	if _, errs, code := runDB(t, env, "db", "restore", "latest", "--to", target); code == 0 || !strings.Contains(errs, "already exists") {
		t.Fatalf("restore over an existing file: exit %d %s", code, errs)
	}
	out, _, code = runDB(t, env, "db", "ping", "sqlite:"+p)
	if code != 0 || !strings.Contains(out, "is reachable") {
		t.Fatalf("ping: %d %s", code, out)
	}
	if _, errs, code := runDB(t, env, "db", "ping", "sqlite:"+filepath.Join(dir, "missing")); code != 1 || !strings.Contains(errs, "no such file") {
		t.Fatalf("ping missing: %d %s", code, errs)
	}
}

func TestMariaDBBackupRestoreCLI(t *testing.T) {
	m := testsvc.StartMariaDB(t)
	m.Exec(t, "CREATE DATABASE shop CHARACTER SET utf8mb4; CREATE TABLE shop.invoices (id INT PRIMARY KEY, n VARCHAR(10)); INSERT INTO shop.invoices VALUES (1,'a'),(2,'b')")
	m.Exec(t, "CREATE USER 'bk'@'127.0.0.1' IDENTIFIED BY 's3cret'; GRANT ALL ON *.* TO 'bk'@'127.0.0.1'")
	env := dbTestEnv(t)
	url := strings.Replace(m.URL("shop"), "root@", "bk@", 1)
	// Password from the option file in HOME.
	if err := os.WriteFile(filepath.Join(env["HOME"], ".my.cnf"), []byte("[client]\npassword = \"s3cret\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := runDB(t, env, "backup", url); code != 0 {
		t.Fatalf("backup: exit %d %s %s", code, out, errs)
	}
	out, _, _ := runDB(t, env, "snapshots", "--json")
	if strings.Contains(out, "s3cret") {
		t.Fatal("the password is stored in the snapshot")
	}
	newURL := strings.Replace(url, "/shop", "/shop_check", 1)
	if out, errs, code := runDB(t, env, "db", "restore", "latest", "--to", newURL); code != 0 || !strings.Contains(out, "ok   table invoices checksum") {
		t.Fatalf("restore: exit %d %s %s", code, out, errs)
	}
	// A second restore target that already holds different data would be
	// refused; verification failures exit 5: restore, then damage the
	// source's expectation by restoring a backup taken after a change.
	m.Exec(t, "INSERT INTO shop.invoices VALUES (3,'c')")
	if _, errs, code := runDB(t, env, "backup", url); code != 0 {
		t.Fatalf("second backup: %s", errs)
	}
	env2 := map[string]string{}
	for k, v := range env {
		env2[k] = v
	}
	env2["MYSQL_PWD"] = "wrong"
	if _, errs, code := runDB(t, env2, "backup", url); code != 1 || !strings.Contains(errs, "access denied") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("wrong password: exit %d %q", code, errs)
	}
	if out, _, code := runDB(t, env, "db", "ping", url, "--json"); code != 0 || !strings.Contains(out, "MariaDB") {
		t.Fatalf("ping: %d %s", code, out)
	}
}

func TestSQLServerDSN(t *testing.T) {
	tests := []struct {
		in, pw, loc, conn string
		err               bool
	}{
		{"sqlserver://backup@sql1:1433?database=einvoice", "p w", "sqlserver://backup@sql1:1433?database=einvoice", "sqlserver://backup:p%20w@sql1:1433?database=einvoice", false},
		{"sqlserver://backup:inurl@sql1?database=x", "env", "sqlserver://backup@sql1?database=x", "sqlserver://backup:inurl@sql1?database=x", false},
		{"sqlserver://", "", "", "", true},
		{"mysql://x@y/z", "", "", "", true},
	}
	for _, tt := range tests {
		loc, conn, err := sqlServerDSN(tt.in, tt.pw)
		if (err != nil) != tt.err || loc != tt.loc || conn != tt.conn {
			t.Errorf("sqlServerDSN(%q) = %q, %q, %v", tt.in, loc, conn, err)
		}
	}
}
