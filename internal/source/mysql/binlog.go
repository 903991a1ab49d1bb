package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/source"
	"github.com/einvault/einvault/internal/source/command"
)

// Metadata.Extra keys of a dump taken with binary logging on.
const (
	ExtraBinlogFile = "binlog_file"
	ExtraBinlogPos  = "binlog_pos"
	ExtraServerID   = "server_id"
	ExtraGTIDPos    = "gtid_binlog_pos"
)

// EngineBinlog is the engine of a snapshot of archived binary logs.
const EngineBinlog = "mariadb-binlog"

// binlogPosition records the server's current binary log file and
// position (and server ID, GTID position on MariaDB) in extra. It does
// nothing when binary logging is off.
func binlogPosition(ctx context.Context, conn *sql.Conn, extra map[string]string) error {
	rows, err := conn.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		// No BINLOG MONITOR / REPLICATION CLIENT privilege: no PITR
		// starting point, but the dump itself is fine.
		return nil
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("mysql: binary log position: %w", err)
	}
	if rows.Next() {
		vals, err := scanRaw(rows, len(cols))
		if err != nil {
			return fmt.Errorf("mysql: binary log position: %w", err)
		}
		if len(vals) >= 2 && len(vals[0]) > 0 {
			extra[ExtraBinlogFile] = string(vals[0])
			extra[ExtraBinlogPos] = string(vals[1])
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("mysql: binary log position: %w", err)
	}
	rows.Close()
	if _, ok := extra[ExtraBinlogFile]; !ok {
		return nil
	}
	var id string
	if err := conn.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err == nil {
		extra[ExtraServerID] = id
	}
	var gtid sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&gtid); err == nil && gtid.Valid {
		extra[ExtraGTIDPos] = gtid.String
	}
	return nil
}

// scanRaw scans the current row of a result with n columns of any type.
func scanRaw(rows *sql.Rows, n int) ([]sql.RawBytes, error) {
	vals := make([]sql.RawBytes, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	return vals, rows.Scan(ptrs...)
}

// BinlogFile is one archived binary log file, recorded in an archive
// snapshot's metadata (Extra["binlogs"], a JSON array).
type BinlogFile struct {
	Name     string    `json:"name"`
	Size     int64     `json:"size"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
	ServerID uint32    `json:"server_id"`
}

// ExtraBinlogs is the Metadata.Extra key of an archive snapshot's files.
const ExtraBinlogs = "binlogs"

// ArchivedBinlogs decodes an archive snapshot's file list.
func ArchivedBinlogs(m *source.Metadata) ([]BinlogFile, error) {
	if m == nil || m.Engine != EngineBinlog {
		return nil, nil
	}
	var fs []BinlogFile
	if err := json.Unmarshal([]byte(m.Extra[ExtraBinlogs]), &fs); err != nil {
		return nil, fmt.Errorf("binary log archive metadata is damaged: %w", err)
	}
	return fs, nil
}

// ServerKey names a server for matching dumps with archived binary logs:
// its location without user or database.
func ServerKey(location string) string {
	d, err := ParseDSN(location, true)
	if err != nil {
		return location
	}
	d.User, d.Database = "", ""
	return d.WithDatabase("")
}

// BinlogFetch describes collecting the binary logs a server has closed
// and einvault has not archived yet.
type BinlogFetch struct {
	DSN    DSN
	BinDir string // directory of mariadb-binlog/mysqlbinlog ("" = PATH)
	Dir    string // scratch directory the files are fetched into
	// Rotate closes the server's current binary log first (FLUSH BINARY
	// LOGS) when it holds any transaction, so that everything committed
	// until now is archived: this bounds the RPO by the archive
	// interval. It needs the RELOAD privilege.
	Rotate bool
	// Archived reports whether a file with this name and first event
	// time is already in the repository.
	Archived func(name string, first time.Time) bool
}

// FetchedBinlogs is what FetchBinlogs collected.
type FetchedBinlogs struct {
	Server        string       // ServerKey
	ServerVersion string       // SELECT VERSION()
	Files         []BinlogFile // new closed files, oldest first
	Paths         []string     // their fetched copies in Dir
	Active        string       // the file the server writes now (not archived)
}

// FetchBinlogs lists the server's binary logs, optionally rotates, and
// fetches every closed file not yet archived with mariadb-binlog
// --read-from-remote-server --raw (the backup user needs the REPLICATION
// SLAVE privilege; REPLICATION REPLICA / BINLOG MONITOR on new versions).
// Each fetched file is read back and must be complete (end with a rotate
// or stop event).
func FetchBinlogs(ctx context.Context, o BinlogFetch) (*FetchedBinlogs, error) {
	d := o.DSN
	prog, err := FindProgram(o.BinDir, "mariadb-binlog", "mysqlbinlog")
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	db, err := Open(ctx, d, "")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	out := &FetchedBinlogs{Server: ServerKey(d.String())}
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&out.ServerVersion); err != nil {
		return nil, fmt.Errorf("mysql: server version: %w", err)
	}
	var logBin string
	if err := db.QueryRowContext(ctx, "SELECT @@log_bin").Scan(&logBin); err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	if logBin != "1" && !strings.EqualFold(logBin, "ON") {
		return nil, fmt.Errorf("mysql: binary logging is off on %s: set log_bin (and server_id, binlog_format=ROW) in the server's configuration and restart it", d.WithDatabase(""))
	}
	names, err := binaryLogs(ctx, db)
	if err != nil {
		return nil, err
	}
	if o.Rotate && len(names) > 0 {
		busy, err := holdsTransactions(ctx, db, names[len(names)-1])
		if err != nil {
			return nil, err
		}
		if busy {
			if _, err := db.ExecContext(ctx, "FLUSH BINARY LOGS"); err != nil {
				return nil, fmt.Errorf("mysql: close the current binary log (FLUSH BINARY LOGS; grant RELOAD to the backup user, or archive without --rotate): %w", err)
			}
			if names, err = binaryLogs(ctx, db); err != nil {
				return nil, err
			}
		}
	}
	if len(names) == 0 {
		return out, nil
	}
	out.Active = names[len(names)-1]
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	for _, name := range names[:len(names)-1] {
		p := filepath.Join(o.Dir, name)
		args := append(d.ClientArgs(), "--read-from-remote-server", "--raw", "--result-file="+o.Dir+string(filepath.Separator), name)
		cmd := exec.CommandContext(ctx, prog, args...)
		cmd.Env = d.ClientEnv()
		if b, err := cmd.CombinedOutput(); err != nil {
			if strings.Contains(string(b), "Could not find first log") || strings.Contains(string(b), "1236") {
				// Purged between the listing and the fetch.
				continue
			}
			return nil, fmt.Errorf("mysql: fetch binary log %s: %s: %s", name, err, command.LastLine(string(b)))
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("mysql: fetch binary log %s: %w", name, err)
		}
		info, err := ReadBinlog(f, nil)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("mysql: fetched binary log %s: %w", name, err)
		}
		if !info.Closed {
			return nil, fmt.Errorf("mysql: fetched binary log %s does not end with a rotate or stop event: it is incomplete (fetch again)", name)
		}
		if o.Archived != nil && o.Archived(name, info.First) {
			os.Remove(p)
			continue
		}
		out.Files = append(out.Files, BinlogFile{Name: name, Size: info.Size, First: info.First, Last: info.Last, ServerID: info.ServerID})
		out.Paths = append(out.Paths, p)
	}
	return out, nil
}

func binaryLogs(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, fmt.Errorf("mysql: list binary logs (grant BINLOG MONITOR or REPLICATION CLIENT to the backup user): %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var names []string
	for rows.Next() {
		vals, err := scanRaw(rows, len(cols))
		if err != nil {
			return nil, fmt.Errorf("mysql: list binary logs: %w", err)
		}
		names = append(names, string(vals[0]))
	}
	return names, rows.Err()
}

// holdsTransactions reports whether the binary log name has any event
// past its preamble (format description, GTID list, checkpoint).
func holdsTransactions(ctx context.Context, db *sql.DB, name string) (bool, error) {
	rows, err := db.QueryContext(ctx, "SHOW BINLOG EVENTS IN '"+strings.ReplaceAll(name, "'", "''")+"' LIMIT 8")
	if err != nil {
		return false, fmt.Errorf("mysql: read binary log %s: %w", name, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	typ := -1
	for i, c := range cols {
		if strings.EqualFold(c, "Event_type") {
			typ = i
		}
	}
	for rows.Next() {
		vals, err := scanRaw(rows, len(cols))
		if err != nil {
			return false, err
		}
		if typ < 0 {
			return true, nil
		}
		switch string(vals[typ]) {
		case "Format_desc", "Gtid_list", "Binlog_checkpoint", "Start_encryption", "Previous_gtids":
		default:
			return true, nil
		}
	}
	return false, rows.Err()
}

// binlogSeq splits "mariadb-bin.000012" into its base and sequence.
func binlogSeq(name string) (string, int, bool) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return name[:i], n, true
}

// Chain is the archived binary logs a replay from a dump's position
// reads, in order, and the recovery window they give.
type Chain struct {
	Files []BinlogFile
	// From is the dump's time; Until the latest event time in the chain.
	From, Until time.Time
	// Hole names the first missing file after the chain, when later
	// files exist (the chain stops before it).
	Hole string
}

// BuildChain picks from archived the files a replay starting at the
// dump's binary log file needs: that file and each next sequence number,
// stopping at the first one missing. When a name was archived twice
// (a server whose logs were reset since), the copy created last is used.
func BuildChain(archived []BinlogFile, startFile string, dumpTime time.Time) (*Chain, error) {
	base, seq, ok := binlogSeq(startFile)
	if !ok {
		return nil, fmt.Errorf("mysql: the dump's binary log file name %q has no sequence number", startFile)
	}
	byName := map[string]BinlogFile{}
	maxSeq := seq
	for _, f := range archived {
		b, n, ok := binlogSeq(f.Name)
		if !ok || b != base || n < seq {
			continue
		}
		if old, dup := byName[f.Name]; !dup || f.First.After(old.First) {
			byName[f.Name] = f
		}
		maxSeq = max(maxSeq, n)
	}
	c := &Chain{From: dumpTime, Until: dumpTime}
	width := len(startFile) - len(base) - 1
	for n := seq; n <= maxSeq; n++ {
		name := fmt.Sprintf("%s.%0*d", base, width, n)
		f, ok := byName[name]
		if !ok {
			c.Hole = name
			break
		}
		c.Files = append(c.Files, f)
		if f.Last.After(c.Until) {
			c.Until = f.Last
		}
	}
	if len(c.Files) == 0 {
		return nil, fmt.Errorf("mysql: binary log %s (where the dump starts) is not archived: run 'einvault db binlog-archive' regularly, from before the dump", startFile)
	}
	return c, nil
}

// ReplayOptions describe replaying archived binary logs into a restored
// database.
type ReplayOptions struct {
	Target   DSN    // server and the restored (new) database
	SourceDB string // the database's name in the binary logs
	BinDir   string
	Paths    []string // the chain's files, fetched, in order
	StartPos int64    // the dump's position in Paths[0]
	// Until stops before the first event at or after this time (zero:
	// replay everything).
	Until time.Time
}

// ReplayResult reports a replay.
type ReplayResult struct {
	Files   int       `json:"files"`
	Bytes   int64     `json:"bytes"`
	Applied time.Time `json:"applied,omitempty"` // time of the last transaction replayed
	Seconds float64   `json:"seconds"`
}

// Replay pipes mariadb-binlog (from StartPos, --stop-datetime Until,
// only SourceDB, renamed to the target database) into the mariadb
// client. Applied is the time of the last commit before the stop,
// computed from the same files.
func Replay(ctx context.Context, o ReplayOptions) (*ReplayResult, error) {
	start := time.Now()
	if len(o.Paths) == 0 {
		return nil, errors.New("mysql: no binary logs to replay")
	}
	res := &ReplayResult{Files: len(o.Paths)}
	applied, err := lastCommitBefore(o.Paths, o.StartPos, o.Until)
	if err != nil {
		return nil, err
	}
	res.Applied = applied
	binlogProg, err := FindProgram(o.BinDir, "mariadb-binlog", "mysqlbinlog")
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	client, err := FindProgram(o.BinDir, "mariadb", "mysql")
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	d := o.Target
	args := []string{"--no-defaults", "--start-position=" + strconv.FormatInt(o.StartPos, 10),
		"--database=" + o.SourceDB, "--rewrite-db=" + o.SourceDB + "->" + d.Database}
	if !o.Until.IsZero() {
		args = append(args, "--stop-datetime="+o.Until.UTC().Format("2006-01-02 15:04:05"))
	}
	args = append(args, o.Paths...)
	dec := exec.CommandContext(ctx, binlogProg, args...)
	// --stop-datetime is read in the program's time zone.
	dec.Env = append(os.Environ(), "TZ=UTC")
	decErr := &tailWriter{}
	dec.Stderr = decErr
	pipe, err := dec.StdoutPipe()
	if err != nil {
		return nil, err
	}
	apply := exec.CommandContext(ctx, client, append(d.ClientArgs(), "--binary-mode", "--database="+d.Database)...)
	apply.Env = d.ClientEnv()
	cw := &countWriter{w: io.Discard}
	apply.Stdin = io.TeeReader(pipe, cw)
	applyErr := &tailWriter{}
	apply.Stdout, apply.Stderr = io.Discard, applyErr
	if err := dec.Start(); err != nil {
		return nil, fmt.Errorf("mysql: start %s: %w", binlogProg, err)
	}
	if err := apply.Start(); err != nil {
		_ = dec.Process.Kill()
		_ = dec.Wait()
		return nil, fmt.Errorf("mysql: start %s: %w", client, err)
	}
	aerr := apply.Wait()
	if aerr != nil {
		_ = dec.Process.Kill()
	}
	derr := dec.Wait()
	switch {
	case aerr != nil:
		return nil, fmt.Errorf("mysql: replaying the binary logs into %s failed (database left for inspection): %s %v: %s", d.Database, client, aerr, command.LastLine(applyErr.String()))
	case derr != nil:
		return nil, fmt.Errorf("mysql: reading the archived binary logs failed (database left for inspection): %s %v: %s", binlogProg, derr, command.LastLine(decErr.String()))
	}
	res.Bytes = cw.n
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// lastCommitBefore is the time of the last transaction end (XID, or a
// query event: COMMIT or a DDL statement) a replay from startPos that
// stops at the first event at or after until applies.
func lastCommitBefore(paths []string, startPos int64, until time.Time) (time.Time, error) {
	var last time.Time
	stop := errors.New("stop")
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return last, err
		}
		_, err = ReadBinlog(f, func(ev Event) error {
			if i == 0 && ev.Offset < startPos {
				return nil
			}
			if !until.IsZero() && !ev.Time.IsZero() && !ev.Time.Before(until) {
				return stop
			}
			if ev.Type == EventXID || ev.Type == EventQuery {
				last = ev.Time
			}
			return nil
		})
		f.Close()
		if err == stop {
			return last, nil
		}
		if err != nil {
			return last, fmt.Errorf("mysql: %s: %w", filepath.Base(p), err)
		}
	}
	return last, nil
}

// SortBinlogs orders files by name (sequence order within one base).
func SortBinlogs(fs []BinlogFile) {
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
}

// CheckTables runs CHECK TABLE on every table of the restored database
// and lists its tables with row counts: the verification after a replay,
// when the snapshot's counts and checksums no longer apply.
func CheckTables(ctx context.Context, d DSN, want *source.Metadata) (*source.Verification, error) {
	db, err := Open(ctx, d, d.Database)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	v := &source.Verification{Engine: want.Engine, Database: d.Database}
	for _, t := range want.Tables {
		var n int64
		err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+QuoteIdent(t.Name)).Scan(&n)
		if err != nil {
			if isNoSuchTable(err) {
				v.Checks = append(v.Checks, source.Check{Name: "table " + t.Name + " present", OK: false, Detail: "missing after the replay"})
				continue
			}
			return nil, fmt.Errorf("mysql: count %s: %w", t.Name, err)
		}
		rows, err := db.QueryContext(ctx, "CHECK TABLE "+QuoteIdent(t.Name))
		if err != nil {
			return nil, fmt.Errorf("mysql: check table %s: %w", t.Name, err)
		}
		ok, detail := true, ""
		for rows.Next() {
			var tbl, op, typ, text string
			if err := rows.Scan(&tbl, &op, &typ, &text); err != nil {
				rows.Close()
				return nil, fmt.Errorf("mysql: check table %s: %w", t.Name, err)
			}
			if strings.EqualFold(typ, "error") || (strings.EqualFold(typ, "status") && !strings.EqualFold(text, "OK")) {
				ok, detail = false, text
			}
		}
		rows.Close()
		v.Checks = append(v.Checks, source.Check{Name: "table " + t.Name + " CHECK TABLE", OK: ok, Got: fmt.Sprintf("%d rows", n), Detail: detail})
	}
	return v, nil
}

func parseInt64(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
