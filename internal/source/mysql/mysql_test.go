package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/restorer"
	"github.com/einvault/einvault/internal/source"
	"github.com/einvault/einvault/internal/source/sourcetest"
	"github.com/einvault/einvault/internal/testsvc"
)

const schema = `CREATE TABLE invoices (id BIGINT AUTO_INCREMENT PRIMARY KEY, number VARCHAR(32) NOT NULL, total DECIMAL(18,2), xml MEDIUMBLOB) ENGINE=InnoDB;
CREATE TABLE counter (id INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB;
INSERT INTO counter VALUES (1, 0);
CREATE TABLE audit (id BIGINT AUTO_INCREMENT PRIMARY KEY, invoice BIGINT) ENGINE=InnoDB;
CREATE TRIGGER invoices_audit AFTER INSERT ON invoices FOR EACH ROW INSERT INTO audit (invoice) VALUES (NEW.id);
CREATE PROCEDURE invoice_count() SELECT COUNT(*) FROM invoices;
CREATE TABLE ` + "`odd``name`" + ` (x TEXT);
INSERT INTO ` + "`odd``name`" + ` VALUES ('a''b\\c'), (NULL), ('Hóa đơn 发票');`

func setup(t *testing.T) (*testsvc.MariaDB, DSN) {
	t.Helper()
	m := testsvc.StartMariaDB(t)
	m.Exec(t, "CREATE DATABASE shop CHARACTER SET utf8mb4")
	m.ExecIn(t, "shop", schema)
	d, err := ParseDSN(m.URL("shop"), false)
	if err != nil {
		t.Fatal(err)
	}
	return m, d
}

func writer(t *testing.T, db *sql.DB, stop <-chan struct{}, commits *atomic.Int64) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		tx, err := db.Begin()
		if err != nil {
			t.Error(err)
			return
		}
		for j := 0; j < 10; j++ {
			if _, err := tx.Exec("INSERT INTO invoices (number, total, xml) VALUES (?, ?, REPEAT('x', 300))", fmt.Sprint("HD", j), j); err != nil {
				t.Error(err)
				tx.Rollback()
				return
			}
		}
		if _, err := tx.Exec("UPDATE counter SET n = n + 10 WHERE id = 1"); err != nil {
			t.Error(err)
			tx.Rollback()
			return
		}
		if err := tx.Commit(); err != nil {
			t.Error(err)
			return
		}
		commits.Add(1)
	}
}

func writeStream(r *repo.Repository, snap *repo.Snapshot) func(context.Context, string, io.Writer) error {
	return func(ctx context.Context, name string, w io.Writer) error {
		return restorer.New(r, restorer.Options{}).Dump(ctx, snap, "/"+name, w)
	}
}

func TestDumpRestoreVerifyWhileWriting(t *testing.T) {
	t.Parallel() // each test has its own server; they mostly wait on it
	m, d := setup(t)
	db := m.DB(t, "shop")
	var commits atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); writer(t, db, stop, &commits) }()
	for commits.Load() < 20 {
		time.Sleep(5 * time.Millisecond)
	}
	r := sourcetest.Repo(t)
	res, err := sourcetest.Backup(context.Background(), r, EngineMariaDB, DumpStreams(Options{DSN: d}))
	atBackup := commits.Load()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	md, _, err := source.FromMeta(res.Snapshot.Meta)
	if err != nil {
		t.Fatal(err)
	}
	if md.Engine != EngineMariaDB || !strings.Contains(md.ServerVersion, "MariaDB") || md.Extra["consistent"] != "exact" || md.SizeBytes <= 0 {
		t.Fatalf("metadata: %+v", md)
	}
	t.Logf("the writer committed %d transactions before and during the backup", atBackup)
	var inv source.Table
	for _, tb := range md.Tables {
		if tb.Name == "invoices" {
			inv = tb
		}
	}
	if inv.Rows == 0 || inv.Rows%10 != 0 || inv.Checksum == "" {
		t.Fatalf("invoices recorded as %+v", inv)
	}

	target := d
	target.Database = "shop_restored"
	rr, err := Restore(context.Background(), RestoreOptions{Meta: md, Target: target, WriteStream: writeStream(r, res.Snapshot)})
	if err != nil {
		t.Fatal(err)
	}
	if !rr.Verification.OK() {
		t.Fatalf("verification failed: %+v", rr.Verification.Failed())
	}
	if n := len(rr.Verification.Checks); n != 2*len(md.Tables) {
		t.Fatalf("%d checks for %d tables", n, len(md.Tables))
	}
	// One transaction's state: the counter equals the rows, and the
	// trigger's audit rows match; the procedure came back.
	got := m.QueryString(t, "shop_restored", "SELECT CONCAT((SELECT n FROM counter), ',', (SELECT COUNT(*) FROM invoices), ',', (SELECT COUNT(*) FROM audit))")
	want := fmt.Sprintf("%d,%d,%d", inv.Rows, inv.Rows, inv.Rows)
	if got != want {
		t.Fatalf("restored counter,rows,audit = %s, want %s", got, want)
	}
	if got := m.QueryString(t, "shop_restored", "SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = 'shop_restored' AND routine_name = 'invoice_count'"); got != "1" {
		t.Fatal("procedure not restored")
	}

	// Restoring over an existing database is refused.
	if _, err := Restore(context.Background(), RestoreOptions{Meta: md, Target: target, WriteStream: writeStream(r, res.Snapshot)}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("restore over an existing database: %v", err)
	}

	// Damage after the restore is reported per table.
	m.ExecIn(t, "shop_restored", "DELETE FROM invoices ORDER BY id DESC LIMIT 1; UPDATE `odd``name` SET x = 'changed' WHERE x IS NULL")
	v, err := Verify(context.Background(), target, md)
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]bool{}
	for _, c := range v.Failed() {
		failed[c.Name] = true
	}
	for _, want := range []string{"table invoices rows", "table invoices checksum", "table odd`name checksum"} {
		if !failed[want] {
			t.Errorf("%q did not fail: %v", want, failed)
		}
	}
	m.ExecIn(t, "shop_restored", "DROP TABLE audit")
	v, err = Verify(context.Background(), target, md)
	if err != nil {
		t.Fatal(err)
	}
	if v.OK() || !strings.Contains(fmt.Sprint(v.Failed()), "table audit present") {
		t.Fatalf("dropped table not reported: %+v", v.Failed())
	}
	b, _ := json.Marshal(rr)
	t.Logf("report: %.300s", b)
}

func TestDumpFaults(t *testing.T) {
	t.Parallel() // each test has its own server; they mostly wait on it
	m, d := setup(t)
	m.Exec(t, "CREATE USER 'clerk'@'127.0.0.1' IDENTIFIED BY 'right'; GRANT SELECT ON shop.* TO 'clerk'@'127.0.0.1'")
	// Enough rows that the dump is still running when it is killed.
	m.ExecIn(t, "shop", "INSERT INTO invoices (number, xml) SELECT seq, REPEAT('y', 2000) FROM seq_1_to_6000")

	// A wrapper records the dump's pid so the test can kill it mid-stream.
	bin := t.TempDir()
	pidFile := filepath.Join(bin, "pid")
	real, err := exec.LookPath("mariadb-dump")
	if err != nil {
		testsvc.Unavailable(t, "MariaDB", "mariadb-dump not found")
	}
	script := "#!/bin/sh\necho $$ > " + pidFile + "\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "mariadb-dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	killAfter := func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
		return DumpStreams(Options{DSN: d, BinDir: bin})(ctx, func(n string, r io.Reader) error {
			return emit(n, &killingReader{r: r, after: 256 << 10, kill: func() {
				b, _ := os.ReadFile(pidFile)
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				if pid > 0 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}})
		})
	}
	wrongPW := d
	wrongPW.User, wrongPW.Password = "clerk", "wrong"
	down := d
	down.Port = testsvc.FreePort(t)
	noDB := d
	noDB.Database = "nope"
	tests := []struct {
		name    string
		produce func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error)
		want    string
	}{
		{"wrong password", DumpStreams(Options{DSN: wrongPW}), "access denied"},
		{"server down", DumpStreams(Options{DSN: down}), "server not reachable"},
		{"unknown database", DumpStreams(Options{DSN: noDB}), "unknown database"},
		{"dump killed halfway", killAfter, "killed by signal KILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sourcetest.Repo(t)
			_, err := sourcetest.Backup(context.Background(), r, EngineMariaDB, tt.produce)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line containing %q", err, tt.want)
			}
			if n := sourcetest.Snapshots(t, r); n != 0 {
				t.Fatalf("%d snapshot(s) written", n)
			}
		})
	}
}

type killingReader struct {
	r     io.Reader
	n     int
	after int
	kill  func()
	done  bool
}

func (k *killingReader) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	k.n += n
	if !k.done && k.n >= k.after {
		k.done = true
		k.kill()
	}
	return n, err
}

func TestDumpWithoutReloadIsApproximate(t *testing.T) {
	t.Parallel() // each test has its own server; they mostly wait on it
	m, d := setup(t)
	m.Exec(t, "CREATE USER 'ro'@'127.0.0.1' IDENTIFIED BY 'pw'; GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON shop.* TO 'ro'@'127.0.0.1'")
	d.User, d.Password = "ro", "pw"
	r := sourcetest.Repo(t)
	res, err := sourcetest.Backup(context.Background(), r, EngineMariaDB, DumpStreams(Options{DSN: d}))
	if err != nil {
		t.Fatal(err)
	}
	md, _, err := source.FromMeta(res.Snapshot.Meta)
	if err != nil || md.Extra["consistent"] != "approximate" || len(md.Tables) == 0 {
		t.Fatalf("metadata %+v, %v", md, err)
	}
}

func TestRestoreDiskFull(t *testing.T) {
	t.Parallel() // each test has its own server; they mostly wait on it
	if os.Geteuid() != 0 {
		t.Skip("needs root to put a server's data directory on a small tmpfs")
	}
	small := testsvc.StartMariaDBWith(t, testsvc.MariaDBOptions{DataTmpfsMiB: 52})
	m, d := setup(t)
	m.ExecIn(t, "shop", "INSERT INTO invoices (number, xml) SELECT seq, REPEAT(MD5(seq), 100) FROM seq_1_to_4000")
	r := sourcetest.Repo(t)
	res, err := sourcetest.Backup(context.Background(), r, EngineMariaDB, DumpStreams(Options{DSN: d}))
	if err != nil {
		t.Fatal(err)
	}
	md, _, _ := source.FromMeta(res.Snapshot.Meta)
	target, err := ParseDSN(small.URL("shop_restored"), false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Restore(context.Background(), RestoreOptions{Meta: md, Target: target, WriteStream: writeStream(r, res.Snapshot)})
	if err == nil || !strings.Contains(err.Error(), "is full") || !strings.Contains(err.Error(), "disk or tablespace is full") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v, want one line saying the table is full", err)
	}
	t.Logf("disk full: %v", err)
}
