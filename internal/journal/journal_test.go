package journal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

func entry(op, job, result string, at time.Duration) Entry {
	return Entry{Op: op, Job: job, Kind: "incremental", Start: t0.Add(at), End: t0.Add(at + 90*time.Second), Files: 10, BytesRead: 1000,
		BytesAdded: 100, Result: result, StartedBy: "schedule", Copies: []string{"nas", "s3"}}
}

func TestRecordAndList(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	j, err := Open(ctx, dir, Options{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for i, e := range []Entry{
		entry("backup", "invoices", ResultOK, 0),
		entry("backup", "invoices", ResultFailed, time.Hour),
		entry("check", "invoices", ResultOK, 2*time.Hour),
		entry("backup", "logs", ResultDegraded, 3*time.Hour),
	} {
		if i == 1 {
			e.Error = "pre-flight: nas unreachable"
		}
		if _, err := j.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		f    Filter
		want int
	}{
		{Filter{}, 4},
		{Filter{Job: "invoices"}, 3},
		{Filter{Failed: true}, 2},
		{Filter{Since: t0.Add(90 * time.Minute)}, 2},
		{Filter{Op: "check"}, 1},
		{Filter{Limit: 1}, 1},
	} {
		got, err := j.List(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want {
			t.Errorf("%+v: %d entries, want %d", tc.f, len(got), tc.want)
		}
	}
	all, _ := j.List(ctx, Filter{})
	if all[0].Op != "backup" || all[0].Duration != 90 || all[0].ID == 0 || len(all[0].Copies) != 2 || all[3].Job != "logs" {
		t.Errorf("entries: %+v", all)
	}
	lines, err := ReadJSONL(filepath.Join(dir, JSONLFile))
	if err != nil || len(lines) != 4 || lines[1].Error == "" {
		t.Errorf("jsonl: %d %v", len(lines), err)
	}
	log, _ := os.ReadFile(filepath.Join(dir, LogFile))
	if n := bytes.Count(log, []byte("\n")); n != 4 || !strings.Contains(string(log), `FAILED   backup  job=invoices`) {
		t.Errorf("log file:\n%s", log)
	}
}

// TestQueuedWhenWritesFail: an entry that cannot be written is queued,
// survives the process (spool) and is written exactly once later.
func TestQueuedWhenWritesFail(t *testing.T) {
	ctx := context.Background()
	dir, spool := t.TempDir(), t.TempDir()
	var fail error = syscall.ENOSPC
	opts := Options{SpoolDir: spool, FailWrite: func(sink string) error { return fail }}
	j, err := Open(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Record(ctx, entry("backup", "invoices", ResultOK, 0))
	if !errors.Is(err, ErrNotRecorded) || !strings.Contains(err.Error(), "queued") {
		t.Fatalf("record on a full disk: %v", err)
	}
	if got, _ := j.List(ctx, Filter{}); len(got) != 1 {
		t.Errorf("queued entry not listed: %d", len(got))
	}
	// A new process finds it in the spool and writes it once the disk works.
	j.db.Close()
	fail = nil
	j2, err := Open(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if j2.Pending() != 0 {
		t.Fatalf("%d still pending", j2.Pending())
	}
	got, _ := j2.List(ctx, Filter{})
	lines, _ := ReadJSONL(filepath.Join(dir, JSONLFile))
	if len(got) != 1 || len(lines) != 1 {
		t.Fatalf("after recovery: %d in db, %d in jsonl", len(got), len(lines))
	}
	if m, _ := filepath.Glob(filepath.Join(spool, "*")); len(m) != 0 {
		t.Errorf("spool not emptied: %v", m)
	}
}

// TestDiskFullTmpfs fills a real tmpfs state directory.
func TestDiskFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; TestQueuedWhenWritesFail covers the logic with injected ENOSPC")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); TestQueuedWhenWritesFail covers the logic", err, bytes.TrimSpace(out))
	}
	defer exec.Command("umount", "-l", mnt).Run()
	ctx := context.Background()
	spool := t.TempDir()
	j, err := Open(ctx, mnt, Options{SpoolDir: spool})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Record(ctx, entry("backup", "a", ResultOK, 0)); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	f, _ := os.Create(filler)
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	var recErr error
	for i := 1; i < 200 && recErr == nil; i++ {
		e := entry("backup", "a", ResultOK, time.Duration(i)*time.Minute)
		e.Error = strings.Repeat("x", 4000)
		_, recErr = j.Record(ctx, e)
	}
	if !errors.Is(recErr, ErrNotRecorded) {
		t.Fatalf("full state directory: %v", recErr)
	}
	if !strings.Contains(recErr.Error(), spool) {
		t.Errorf("error does not say where the entry waits: %v", recErr)
	}
	os.Remove(filler)
	if err := j.Flush(ctx); err != nil {
		t.Fatalf("flush after freeing space: %v", err)
	}
	got, _ := j.List(ctx, Filter{})
	lines, err := ReadJSONL(filepath.Join(mnt, JSONLFile))
	if err != nil || len(lines) != len(got) {
		t.Errorf("db has %d, jsonl %d (%v): a line was lost or doubled", len(got), len(lines), err)
	}
}

// TestOldSchemaUpgraded opens a journal written before the drill
// columns existed: its entries stay readable and new entries carry
// RTO/RPO, targets and detail.
func TestOldSchemaUpgraded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := OpenDB(ctx, filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	old := `CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT NOT NULL UNIQUE, op TEXT NOT NULL, job TEXT NOT NULL,
		source TEXT NOT NULL, copies TEXT NOT NULL, kind TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, files INTEGER NOT NULL,
		bytes_read INTEGER NOT NULL, bytes_added INTEGER NOT NULL, result TEXT NOT NULL, error TEXT NOT NULL, exit_code INTEGER NOT NULL,
		started_by TEXT NOT NULL, snapshot TEXT NOT NULL, host TEXT NOT NULL);
		INSERT INTO journal (uid, op, job, source, copies, kind, start, end, files, bytes_read, bytes_added, result, error, exit_code, started_by, snapshot, host)
		VALUES ('old1', 'backup', 'inv', '', '', 'full', 1, 2, 3, 4, 5, 'ok', '', 0, 'schedule', '', '')`
	if _, err := db.ExecContext(ctx, old); err != nil {
		t.Fatal(err)
	}
	db.Close()
	j, err := Open(ctx, dir, Options{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	e := entry("drill", "inv", ResultFailed, 0)
	e.RTO, e.RPO, e.TargetRTO, e.TargetRPO, e.Detail = 12.5, 3600, 10, 7200, "restored 3 files"
	if _, err := j.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := j.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].UID != "old1" || got[0].RTO != 0 || got[0].Detail != "" {
		t.Fatalf("old entry not read back: %+v", got)
	}
	d := got[1]
	if d.RTO != 12.5 || d.RPO != 3600 || d.TargetRTO != 10 || d.TargetRPO != 7200 || d.Detail != "restored 3 files" {
		t.Fatalf("drill fields not stored: %+v", d)
	}
	if line := FormatLine(d); !strings.Contains(line, "rto=12.5s/10s") || !strings.Contains(line, "rpo=1h0m0s/2h0m0s") {
		t.Fatalf("log line lacks RTO/RPO: %s", line)
	}
}

// TestConcurrentUpgrade: processes opening an old journal at the same
// moment (the daemon and a command) all upgrade it without failing on
// the columns another one added first.
func TestConcurrentUpgrade(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	j, err := Open(ctx, dir, Options{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	db, err := OpenDB(ctx, filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range addedColumns {
		if _, err := db.ExecContext(ctx, "ALTER TABLE journal DROP COLUMN "+c.name); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			j, err := Open(ctx, dir, Options{SpoolDir: t.TempDir()})
			if err == nil {
				j.Close()
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent open of an old journal: %v", err)
		}
	}
}
