package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/config"
	"github.com/einvault/einvault/internal/daemon"
	"github.com/einvault/einvault/internal/journal"
	"github.com/einvault/einvault/internal/notify"
	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/source/mysql"
	"github.com/einvault/einvault/internal/testsvc"
)

// TestMariaDBPointInTimeCLI: dump, write more in two phases, archive the
// binary logs, then restore to a time between the phases and to the
// latest point, through the commands a user runs.
func TestMariaDBPointInTimeCLI(t *testing.T) {
	m := testsvc.StartMariaDBWith(t, testsvc.MariaDBOptions{LogBin: true})
	m.Exec(t, "CREATE DATABASE shop; CREATE TABLE shop.invoices (id INT PRIMARY KEY, n VARCHAR(10)) ENGINE=InnoDB; INSERT INTO shop.invoices VALUES (1,'a'),(2,'b')")
	env := dbTestEnv(t)
	url := m.URL("shop")
	server := m.URL("")
	if out, errs, code := runDB(t, env, "db", "binlog-archive", server); code != 0 {
		t.Fatalf("first archive: exit %d %s %s", code, out, errs)
	}
	if out, errs, code := runDB(t, env, "backup", url, "--tag", "mariadb"); code != 0 {
		t.Fatalf("backup: exit %d %s %s", code, out, errs)
	}
	m.Exec(t, "INSERT INTO shop.invoices VALUES (3,'c'), (4,'d')")
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 100*time.Millisecond)))
	between := time.Now().Truncate(time.Second)
	m.Exec(t, "INSERT INTO shop.invoices VALUES (5,'e'); DELETE FROM shop.invoices WHERE id = 1")

	// Before the dump's binary log is archived there is nothing to replay.
	if _, errs, code := runDB(t, env, "db", "restore", "latest", "--tag", "mariadb", "--to", m.URL("early"), "--latest"); code != 1 || !strings.Contains(errs, "not archived") {
		t.Fatalf("log not archived yet: exit %d %s", code, errs)
	}
	out, errs, code := runDB(t, env, "db", "binlog-archive", server, "--json")
	if code != 0 {
		t.Fatalf("archive: exit %d %s %s", code, out, errs)
	}
	if out, _, code := runDB(t, env, "db", "binlog-archive", server); code != 0 || !strings.Contains(out, "Nothing new") {
		t.Fatalf("archive again: exit %d %s", code, out)
	}

	// A target after the newest archived transaction is refused with the window.
	if _, errs, code := runDB(t, env, "db", "restore", "latest", "--tag", "mariadb", "--to", m.URL("late"), "--to-time", time.Now().Add(time.Hour).Format(time.RFC3339)); code != 1 || !strings.Contains(errs, "window") {
		t.Fatalf("target beyond the archive: exit %d %s", code, errs)
	}
	out, errs, code = runDB(t, env, "db", "restore", "latest", "--tag", "mariadb", "--to", m.URL("shop_between"), "--to-time", between.Format(time.RFC3339), "--json")
	if code != 0 {
		t.Fatalf("restore to time: exit %d %s %s", code, out, errs)
	}
	var res struct {
		Replay struct {
			Applied time.Time `json:"applied"`
		} `json:"replay"`
		Window struct{ From, Until time.Time } `json:"window"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if res.Replay.Applied.IsZero() || !res.Replay.Applied.Before(between) || res.Window.Until.Before(between) {
		t.Fatalf("report %+v, target %v", res, between)
	}
	if got := m.QueryString(t, "shop_between", "SELECT GROUP_CONCAT(id ORDER BY id) FROM invoices"); got != "1,2,3,4" {
		t.Fatalf("rows at %v: %s", between, got)
	}
	out, errs, code = runDB(t, env, "db", "restore", "latest", "--tag", "mariadb", "--to", m.URL("shop_latest"), "--latest")
	if code != 0 || !strings.Contains(out, "CHECK TABLE") {
		t.Fatalf("restore latest: exit %d %s %s", code, out, errs)
	}
	if got := m.QueryString(t, "shop_latest", "SELECT GROUP_CONCAT(id ORDER BY id) FROM invoices"); got != "2,3,4,5" {
		t.Fatalf("rows at the latest point: %s", got)
	}
	if got := m.QueryString(t, "shop", "SELECT GROUP_CONCAT(id ORDER BY id) FROM invoices"); got != "2,3,4,5" {
		t.Fatalf("the source database changed: %s", got)
	}
	// A target before the dump is refused; so is --to-time on an archive snapshot.
	if _, errs, code := runDB(t, env, "db", "restore", "latest", "--tag", "mariadb", "--to", m.URL("x"), "--to-time", "2001-01-01 00:00:00+00"); code != 1 || !strings.Contains(errs, "before snapshot") {
		t.Fatalf("target before the dump: exit %d %s", code, errs)
	}
	if _, errs, code := runDB(t, env, "db", "restore", "latest", "--tag", "binlog", "--to", m.URL("x"), "--latest"); code != ExitUsage || !strings.Contains(errs, "archived binary logs") {
		t.Fatalf("archive snapshot as dump: exit %d %s", code, errs)
	}

	// The daemon archives on the job's binlog schedule, with the job's
	// tags, and raises a critical alert when archiving fails.
	m.Exec(t, "INSERT INTO shop.invoices VALUES (6,'f')")
	cfg, err := config.Parse([]byte(fmt.Sprintf(`repository: {location: %s}
sources: {erp-db: {database: %q}}
jobs:
  erp: {class: transactions, sources: [erp-db], binlog: every 5m}
`, env["EINVAULT_REPO"], url)), "t.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g := &Globals{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string { return env[k] }, StateDir: t.TempDir(), log: log}
	j, err := journal.Open(ctx, g.StateDir, journal.Options{Logger: log, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	n := &recordingNotifier{}
	d, err := daemon.New(ctx, cfg, daemon.Options{Logger: log, Journal: j, Runner: cliRunner{g: g, log: log}, Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	if o := d.RunBinlog(ctx, "erp", "test"); o.Failed() || o.Entry.Snapshot == "" || o.Entry.Op != daemon.OpBinlog {
		t.Fatalf("scheduled archive: %+v", o.Entry)
	}
	if out, _, _ := runDB(t, env, "snapshots", "--tag", config.JobTag+"erp,binlog", "--json"); !strings.Contains(out, "mariadb-binlog") {
		t.Fatalf("archive snapshot without the job's tags: %s", out)
	}
	m.Stop(t)
	if o := d.RunBinlog(ctx, "erp", "test"); !o.Failed() {
		t.Fatalf("archive with the server down: %+v", o.Entry)
	}
	evs := n.take()
	if len(evs) == 0 || evs[len(evs)-1].Op != daemon.OpBinlog || evs[len(evs)-1].Severity != notify.SeverityCritical {
		t.Fatalf("no critical alert: %+v", evs)
	}
}

func TestNewestPerSourceSkipsBinlogArchives(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2026, 11, 23, 10, m, 0, 0, time.UTC) }
	tag := config.JobTag + "erp"
	snap := func(src, path string, m int, tags ...string) *repo.Snapshot {
		return &repo.Snapshot{Source: src, Paths: []string{path}, Time: at(m), Tags: tags}
	}
	all := []*repo.Snapshot{
		snap("mariadb", "mysql://h:3306/erp", 1, tag),
		snap("mariadb", "mysql://h:3306/erp", 5, tag),
		snap(mysql.EngineBinlog, "mysql://h:3306/", 9, tag, "binlog"),
		snap("files", "/srv", 7, tag),
		snap("files", "/other", 8, config.JobTag+"x"),
	}
	got := newestPerSource(all, tag)
	if len(got) != 2 || got[0].Time != at(5) || got[1].Time != at(7) {
		t.Fatalf("newest per source: %+v", got)
	}
}
