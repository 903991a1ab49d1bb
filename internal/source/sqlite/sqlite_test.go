package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/restorer"
	"github.com/einvault/einvault/internal/source"
	"github.com/einvault/einvault/internal/source/sourcetest"
)

// newDB creates a database with an invoices table and a counter that
// every writer transaction keeps equal to the number of invoices.
func newDB(t *testing.T, journal string) (string, *sql.DB) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "einvoice.sqlite")
	db, err := sql.Open("sqlite", dsn(p, false, 30*time.Second)+"&_pragma=journal_mode("+journal+")&_pragma=synchronous(off)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE invoices (id INTEGER PRIMARY KEY, number TEXT NOT NULL, xml BLOB);
		CREATE INDEX invoices_number ON invoices(number);
		CREATE TABLE counter (n INTEGER NOT NULL); INSERT INTO counter VALUES (0);
		CREATE TABLE "odd ""name""" (x)`); err != nil {
		t.Fatal(err)
	}
	return p, db
}

// write inserts batches until stop is closed; returns how many commits.
func write(t *testing.T, db *sql.DB, stop <-chan struct{}, commits *atomic.Int64) {
	payload := bytes.Repeat([]byte("<HDon>x</HDon>"), 60)
	for i := 0; ; i++ {
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
		for j := 0; j < 20; j++ {
			if _, err := tx.Exec("INSERT INTO invoices (number, xml) VALUES (?, ?)", "HD"+time.Now().Format("150405.000000"), payload); err != nil {
				t.Error(err)
				tx.Rollback()
				return
			}
		}
		if _, err := tx.Exec("UPDATE counter SET n = n + 20"); err != nil {
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

func TestBackupWhileWriting(t *testing.T) {
	for _, journal := range []string{"wal", "delete"} {
		t.Run(journal, func(t *testing.T) {
			p, db := newDB(t, journal)
			var commits atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); write(t, db, stop, &commits) }()
			for commits.Load() < 10 {
				time.Sleep(5 * time.Millisecond)
			}
			r := sourcetest.Repo(t)
			var snaps []*repo.Snapshot
			for i := 0; i < 2; i++ {
				res, err := sourcetest.Backup(context.Background(), r, Engine, Streams(Options{Path: p}))
				if err != nil {
					close(stop)
					wg.Wait()
					t.Fatal(err)
				}
				snaps = append(snaps, res.Snapshot)
				time.Sleep(20 * time.Millisecond)
			}
			close(stop)
			wg.Wait()
			before := commits.Load()
			if before < 12 {
				t.Logf("only %d commits: the writer was mostly blocked", before)
			}
			var last int64
			for i, snap := range snaps {
				md, _, err := source.FromMeta(snap.Meta)
				if err != nil {
					t.Fatal(err)
				}
				target := filepath.Join(t.TempDir(), "restored.sqlite")
				res, err := Restore(context.Background(), RestoreOptions{Meta: md, Target: target, WriteStream: writeStream(r, snap)})
				if err != nil {
					t.Fatal(err)
				}
				if !res.Verification.OK() {
					t.Fatalf("verification failed: %+v", res.Verification.Failed())
				}
				// Consistent: the counter equals the rows, ids have no holes.
				rdb, err := sql.Open("sqlite", dsn(res.Target, true, time.Second))
				if err != nil {
					t.Fatal(err)
				}
				var n, rows, maxID int64
				if err := rdb.QueryRow("SELECT (SELECT n FROM counter), (SELECT count(*) FROM invoices), (SELECT coalesce(max(id),0) FROM invoices)").Scan(&n, &rows, &maxID); err != nil {
					t.Fatal(err)
				}
				rdb.Close()
				if n != rows || rows != maxID || rows%20 != 0 || rows == 0 {
					t.Fatalf("snapshot %d is not one transaction's state: counter %d, rows %d, max id %d", i, n, rows, maxID)
				}
				if rows < last {
					t.Fatalf("snapshot %d has fewer rows than the one before", i)
				}
				last = rows
				if md.Tables[1].Name != "invoices" || md.Tables[1].Rows != rows {
					t.Fatalf("recorded tables %+v, restored rows %d", md.Tables, rows)
				}
			}
		})
	}
}

func writeStream(r *repo.Repository, snap *repo.Snapshot) func(context.Context, string, io.Writer) error {
	return func(ctx context.Context, name string, w io.Writer) error {
		return restorer.New(r, restorer.Options{}).Dump(ctx, snap, "/"+name, w)
	}
}

func TestVerifyDetectsDamage(t *testing.T) {
	p, db := newDB(t, "delete")
	if _, err := db.Exec("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < 300) INSERT INTO invoices (number, xml) SELECT i, randomblob(500) FROM c"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	md, cp, cleanup, err := Snapshot(context.Background(), Options{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if v := Verify(context.Background(), cp, md); !v.OK() {
		t.Fatalf("fresh copy fails verification: %+v", v.Failed())
	}
	tests := []struct {
		name  string
		edit  func(t *testing.T, file string, md *source.Metadata)
		fails []string
	}{
		{"row count differs", func(t *testing.T, file string, md *source.Metadata) { md.Tables[1].Rows++ }, []string{"table invoices rows"}},
		{"table missing", func(t *testing.T, file string, md *source.Metadata) {
			md.Tables = append(md.Tables, source.Table{Name: "gone", Rows: 1})
		}, []string{"table gone present"}},
		{"pages damaged", func(t *testing.T, file string, md *source.Metadata) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for i := 3 * 4096; i < 3*4096+200; i++ {
				b[i] ^= 0x5a
			}
			if err := os.WriteFile(file, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"file sha256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "x.sqlite")
			data, _ := os.ReadFile(cp)
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			m := *md
			m.Tables = append([]source.Table(nil), md.Tables...)
			tt.edit(t, file, &m)
			v := Verify(context.Background(), file, &m)
			if v.OK() {
				t.Fatal("verification passed")
			}
			failed := map[string]bool{}
			for _, c := range v.Failed() {
				failed[c.Name] = true
			}
			for _, f := range tt.fails {
				if !failed[f] {
					t.Errorf("check %q did not fail; failed: %v", f, failed)
				}
			}
		})
	}
}

func TestBackupErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notDB, bytes.Repeat([]byte("not a database\n"), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.sqlite"), "no such file"},
		{"not a database", notDB, "not a readable SQLite database"},
		{"directory", dir, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sourcetest.Repo(t)
			_, err := sourcetest.Backup(context.Background(), r, Engine, Streams(Options{Path: tt.path}))
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line containing %q", err, tt.want)
			}
			if sourcetest.Snapshots(t, r) != 0 {
				t.Fatal("snapshot written")
			}
			if _, err := os.Stat(filepath.Join(dir, "nope.sqlite")); err == nil {
				t.Fatal("backup created the missing database")
			}
		})
	}
}

func TestRestoreDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	p, db := newDB(t, "wal")
	if _, err := db.Exec("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < 2000) INSERT INTO invoices (number, xml) SELECT i, randomblob(1000) FROM c"); err != nil {
		t.Fatal(err)
	}
	r := sourcetest.Repo(t)
	res, err := sourcetest.Backup(context.Background(), r, Engine, Streams(Options{Path: p}))
	if err != nil {
		t.Fatal(err)
	}
	md, _, _ := source.FromMeta(res.Snapshot.Meta)
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); disk-full restore not tested", err, out)
	}
	defer exec.Command("umount", mnt).Run()
	target := filepath.Join(mnt, "restored.sqlite")
	_, err = Restore(context.Background(), RestoreOptions{Meta: md, Target: target, WriteStream: writeStream(r, res.Snapshot)})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v, want a one-line 'no space left on device'", err)
	}
	if ents, _ := os.ReadDir(mnt); len(ents) != 0 {
		t.Fatalf("a failed restore left %v behind", ents)
	}
}

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in, want string
		ok, err  bool
	}{
		{"sqlite:/var/lib/app/db.sqlite", "/var/lib/app/db.sqlite", true, false},
		{"sqlite:///var/lib/app/db.sqlite", "/var/lib/app/db.sqlite", true, false},
		{"sqlite:", "", true, true},
		{"sqlite:/x?mode=ro", "", true, true},
		{"/var/lib/app/db.sqlite", "", false, false},
		{"mysql://root@localhost/x", "", false, false},
	}
	for _, tt := range tests {
		got, ok, err := ParseLocation(tt.in)
		if got != tt.want || ok != tt.ok || (err != nil) != tt.err {
			t.Errorf("ParseLocation(%q) = %q, %v, %v", tt.in, got, ok, err)
		}
	}
}

func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{"sqlite:/a/b", "sqlite:///a", "sqlite:rel/x.db", "sqlite:", "sqlite:?#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok, err := ParseLocation(s)
		if ok && err == nil && !filepath.IsAbs(p) {
			t.Fatalf("ParseLocation(%q) = %q, not absolute", s, p)
		}
		if !ok && (p != "" || err != nil) {
			t.Fatalf("not a location but %q, %v", p, err)
		}
	})
}
