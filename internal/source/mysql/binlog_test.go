package mysql

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/source"
	"github.com/einvault/einvault/internal/source/sourcetest"
	"github.com/einvault/einvault/internal/testsvc"
)

// synthBinlog builds a binary log from (time, type, body length) events.
func synthBinlog(evs ...[3]int) []byte {
	b := append([]byte(nil), binlogMagic...)
	pos := uint32(4)
	for _, e := range evs {
		l := uint32(eventHeaderLen + e[2])
		h := make([]byte, eventHeaderLen)
		binary.LittleEndian.PutUint32(h[0:], uint32(e[0]))
		h[4] = byte(e[1])
		binary.LittleEndian.PutUint32(h[5:], 7)
		binary.LittleEndian.PutUint32(h[9:], l)
		binary.LittleEndian.PutUint32(h[13:], pos+l)
		b = append(b, h...)
		b = append(b, make([]byte, e[2])...)
		pos += l
	}
	return b
}

func TestReadBinlog(t *testing.T) {
	closed := synthBinlog([3]int{1000, EventFormatDescription, 100}, [3]int{1001, EventMariaGTID, 20}, [3]int{1002, EventXID, 8}, [3]int{1005, EventRotate, 30})
	open := synthBinlog([3]int{1000, EventFormatDescription, 100}, [3]int{1001, EventXID, 8})
	tests := []struct {
		name    string
		in      []byte
		closed  bool
		events  int
		last    int64
		wantErr string
	}{
		{"closed", closed, true, 4, 1005, ""},
		{"open", open, false, 2, 1001, ""},
		{"truncated body", closed[:len(closed)-3], false, 0, 0, "truncated"},
		{"truncated header", closed[:4+eventHeaderLen+100+5], false, 0, 0, "header at offset"},
		{"bad magic", append([]byte("xbin"), closed[4:]...), false, 0, 0, "bad magic"},
		{"not format description first", synthBinlog([3]int{1, EventXID, 8}), false, 0, 0, "format description"},
		{"empty", binlogMagic, false, 0, 0, "no events"},
		{"impossible length", func() []byte {
			b := bytes.Clone(closed)
			binary.LittleEndian.PutUint32(b[4+9:], 3)
			return b
		}(), false, 0, 0, "impossible length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var offs []int64
			info, err := ReadBinlog(bytes.NewReader(tc.in), func(e Event) error { offs = append(offs, e.Offset); return nil })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Closed != tc.closed || info.Events != tc.events || info.Last.Unix() != tc.last || info.First.Unix() != 1000 || info.Size != int64(len(tc.in)) || info.ServerID != 7 {
				t.Fatalf("info %+v", info)
			}
			if offs[0] != 4 || len(offs) != tc.events {
				t.Fatalf("offsets %v", offs)
			}
		})
	}
}

func FuzzReadBinlog(f *testing.F) {
	f.Add(synthBinlog([3]int{1000, EventFormatDescription, 100}, [3]int{1002, EventXID, 8}, [3]int{1005, EventRotate, 30}))
	f.Add(synthBinlog([3]int{0, EventFormatDescription, 0}))
	f.Add([]byte("\xfebin"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ReadBinlog(bytes.NewReader(b), nil)
		if err == nil && (info.Events == 0 || info.Size != int64(len(b))) {
			t.Fatalf("accepted with %+v for %d bytes", info, len(b))
		}
	})
}

func TestBuildChain(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(1e9+s), 0).UTC() }
	files := []BinlogFile{
		{Name: "b.000003", First: at(30), Last: at(39)},
		{Name: "b.000001", First: at(10), Last: at(19)},
		{Name: "b.000002", First: at(20), Last: at(29)},
		{Name: "b.000005", First: at(50), Last: at(59)},
		{Name: "other.000002", First: at(20), Last: at(99)},
	}
	c, err := BuildChain(files, "b.000002", at(21))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 2 || c.Files[0].Name != "b.000002" || c.Files[1].Name != "b.000003" || !c.Until.Equal(at(39)) || c.Hole != "b.000004" {
		t.Fatalf("chain %+v", c)
	}
	if _, err := BuildChain(files, "b.000004", at(40)); err == nil || !strings.Contains(err.Error(), "not archived") {
		t.Fatalf("missing start: %v", err)
	}
	if _, err := BuildChain(files, "noseq", at(40)); err == nil {
		t.Fatal("a name without sequence number must be refused")
	}
}

// TestBinlogPointInTime dumps a database with binary logging on, writes
// in two later phases a second apart, archives the logs and replays them
// into restored copies: up to a time between the phases, exactly the
// first two phases' rows exist; to the end, all of them.
func TestBinlogPointInTime(t *testing.T) {
	t.Parallel()
	m := testsvc.StartMariaDBWith(t, testsvc.MariaDBOptions{LogBin: true})
	m.Exec(t, "CREATE DATABASE shop CHARACTER SET utf8mb4")
	m.Exec(t, "CREATE DATABASE other")
	m.ExecIn(t, "shop", "CREATE TABLE t (id INT PRIMARY KEY, phase INT NOT NULL) ENGINE=InnoDB")
	m.ExecIn(t, "other", "CREATE TABLE x (id INT PRIMARY KEY) ENGINE=InnoDB")
	insert := func(phase, from, to int) {
		for i := from; i < to; i++ {
			m.ExecIn(t, "shop", "INSERT INTO t VALUES (?, ?)", i, phase)
		}
	}
	insert(1, 0, 10)
	d, err := ParseDSN(m.URL("shop"), false)
	if err != nil {
		t.Fatal(err)
	}
	r := sourcetest.Repo(t)
	res, err := sourcetest.Backup(context.Background(), r, EngineMariaDB, DumpStreams(Options{DSN: d}))
	if err != nil {
		t.Fatal(err)
	}
	md, _, _ := source.FromMeta(res.Snapshot.Meta)
	if md.Extra[ExtraBinlogFile] == "" || md.Extra[ExtraBinlogPos] == "" || md.Extra[ExtraServerID] != "1" {
		t.Fatalf("no binary log position recorded: %+v", md.Extra)
	}
	insert(2, 10, 20)
	m.ExecIn(t, "shop", "DELETE FROM t WHERE id = 0")
	m.ExecIn(t, "other", "INSERT INTO x VALUES (1)") // another database: never replayed into shop's copy
	// The boundary: the next whole second, then phase 3 after it.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 100*time.Millisecond)))
	boundary := time.Now().Truncate(time.Second)
	insert(3, 20, 30)
	m.ExecIn(t, "shop", "UPDATE t SET phase = 4 WHERE id = 5")

	dir := t.TempDir()
	fb, err := FetchBinlogs(context.Background(), BinlogFetch{DSN: d, Dir: dir, Rotate: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(fb.Files) == 0 || fb.Active == "" {
		t.Fatalf("fetched %+v", fb)
	}
	// Nothing new the second time when everything is archived.
	names := map[string]bool{}
	for _, f := range fb.Files {
		names[f.Name] = true
	}
	again, err := FetchBinlogs(context.Background(), BinlogFetch{DSN: d, Dir: t.TempDir(), Rotate: true,
		Archived: func(name string, _ time.Time) bool { return names[name] }})
	if err != nil || len(again.Files) != 0 {
		t.Fatalf("second fetch: %+v, %v", again, err)
	}
	chain, err := BuildChain(fb.Files, md.Extra[ExtraBinlogFile], res.Snapshot.Time)
	if err != nil {
		t.Fatal(err)
	}
	if chain.Until.Before(boundary) {
		t.Fatalf("window ends %v, before the last phase %v", chain.Until, boundary)
	}
	var paths []string
	for _, f := range chain.Files {
		paths = append(paths, filepath.Join(dir, f.Name))
	}
	pos, _ := parseInt64(md.Extra[ExtraBinlogPos])

	for _, tc := range []struct {
		db    string
		until time.Time
		want  string
	}{
		{"shop_pitr", boundary, "19,1:9,2:10"},
		{"shop_latest", time.Time{}, "29,1:8,2:10,3:10,4:1"},
	} {
		target := d
		target.Database = tc.db
		rr, err := Restore(context.Background(), RestoreOptions{Meta: md, Target: target, WriteStream: writeStream(r, res.Snapshot)})
		if err != nil {
			t.Fatal(err)
		}
		if !rr.Verification.OK() {
			t.Fatalf("dump verification: %+v", rr.Verification.Failed())
		}
		rep, err := Replay(context.Background(), ReplayOptions{Target: target, SourceDB: "shop", Paths: paths, StartPos: pos, Until: tc.until})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: replay %+v", tc.db, rep)
		if os.Getenv("BINLOG_DEBUG") != "" {
			out, _ := exec.Command("mariadb-binlog", append([]string{"--start-position=" + md.Extra[ExtraBinlogPos]}, paths...)...).CombinedOutput()
			t.Logf("%s", out)
		}
		got := m.QueryString(t, tc.db, "SELECT CONCAT((SELECT COUNT(*) FROM t), ',', (SELECT GROUP_CONCAT(CONCAT(phase, ':', n) ORDER BY phase) FROM (SELECT phase, COUNT(*) n FROM t GROUP BY phase) g))")
		if got != tc.want {
			t.Fatalf("%s: rows = %s, want %s", tc.db, got, tc.want)
		}
		if !tc.until.IsZero() && (!rep.Applied.Before(tc.until) || rep.Applied.Before(res.Snapshot.Time.Truncate(time.Second))) {
			t.Fatalf("applied until %v, target %v", rep.Applied, tc.until)
		}
		v, err := CheckTables(context.Background(), target, md)
		if err != nil || !v.OK() {
			t.Fatalf("check tables: %+v %v", v, err)
		}
	}
	if got := m.QueryString(t, "shop", "SELECT CONCAT((SELECT COUNT(*) FROM t), ',', (SELECT GROUP_CONCAT(CONCAT(phase, ':', n) ORDER BY phase) FROM (SELECT phase, COUNT(*) n FROM t GROUP BY phase) g))"); got != "29,1:8,2:10,3:10,4:1" {
		t.Fatalf("the source database changed during the replays: %s", got)
	}
	if got := m.QueryString(t, "", "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema LIKE 'shop_%' AND table_name = 'x'"); got != "0" {
		t.Fatal("another database's table was replayed into the restored copy")
	}
	// A damaged archived file is refused before anything is applied.
	bad := filepath.Join(t.TempDir(), "bad")
	b, _ := os.ReadFile(paths[0])
	os.WriteFile(bad, b[:len(b)-7], 0o600)
	target := d
	target.Database = "shop_bad"
	if _, err := Replay(context.Background(), ReplayOptions{Target: target, SourceDB: "shop", Paths: []string{bad}, StartPos: pos}); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("damaged file: %v", err)
	}
}
