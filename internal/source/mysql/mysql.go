// Package mysql backs up a MariaDB or MySQL database by streaming
// mariadb-dump (or mysqldump) into the repository, records what the
// database held, restores a dump into a new database and verifies it.
//
// Consistency of the recorded row counts and checksums: before the dump
// starts, einvault takes FLUSH TABLES WITH READ LOCK, opens its own
// START TRANSACTION WITH CONSISTENT SNAPSHOT, starts the dump (which
// opens its snapshot with --single-transaction) and releases the lock as
// soon as the dump has begun its first table. Both snapshots therefore
// see the same committed state — the sequence mysqldump itself uses for
// --master-data. Writers wait only for that moment (milliseconds, plus
// any statement already running). The counts and CHECKSUM TABLE values
// are read inside einvault's snapshot while the dump streams. Without the
// RELOAD privilege the lock is skipped; the metadata then says
// "consistent: approximate", and a restore's verification can report
// differences for tables written during the backup. Only transactional
// (InnoDB) tables are consistent under --single-transaction; the
// metadata lists the others.
package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/einvault/einvault/internal/source"
	"github.com/einvault/einvault/internal/source/command"
)

// Engines recorded in Metadata.Engine.
const (
	EngineMariaDB = "mariadb"
	EngineMySQL   = "mysql"
)

// lockWaitSeconds bounds how long FLUSH TABLES WITH READ LOCK may wait
// for running statements before einvault gives up the exact snapshot.
const lockWaitSeconds = 5

// Format is the stream format of a dump.
const Format = "sql"

// Options describe a backup.
type Options struct {
	DSN    DSN
	BinDir string // directory of mariadb-dump/mysqldump ("" = PATH)
	Logger *slog.Logger
	// SnapshotWait bounds how long the global read lock is held waiting
	// for the dump to begin (default 10s); after that the lock is
	// released and the metadata is marked approximate.
	SnapshotWait time.Duration
}

// IsEngine reports whether engine is one this package restores.
func IsEngine(engine string) bool { return engine == EngineMariaDB || engine == EngineMySQL }

// FindProgram returns the path of the first of names found in binDir
// (when set) or on PATH.
func FindProgram(binDir string, names ...string) (string, error) {
	for _, n := range names {
		if binDir != "" {
			p := filepath.Join(binDir, n)
			if _, err := exec.LookPath(p); err == nil {
				return p, nil
			}
			continue
		}
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %s found (install mariadb-client or mysql-client, or give the directory)", strings.Join(names, ", "))
}

// Open connects to database db of d and checks the connection, with an
// error a user can act on.
func Open(ctx context.Context, d DSN, db string) (*sql.DB, error) {
	h, err := sql.Open("mysql", d.DriverDSN(db))
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	if err := h.PingContext(ctx); err != nil {
		h.Close()
		return nil, connectError(d, err)
	}
	return h, nil
}

func connectError(d DSN, err error) error {
	where := d.String()
	var me *driver.MySQLError
	switch {
	case errors.As(err, &me) && (me.Number == 1045 || me.Number == 1698):
		return fmt.Errorf("mysql: %s: access denied for user %q (check the user and the password in MYSQL_PWD or the option file): %w", where, d.User, err)
	case errors.As(err, &me) && me.Number == 1049:
		return fmt.Errorf("mysql: %s: unknown database (check the name): %w", where, err)
	case strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no such file or directory"):
		return fmt.Errorf("mysql: %s: server not reachable (is it running, and is the host/port/socket right?): %w", where, err)
	}
	return fmt.Errorf("mysql: connect to %s: %w", where, err)
}

// DumpStreams returns the archiver.StreamFunc of a backup: one stream,
// DB.sql, the output of mariadb-dump.
func DumpStreams(o Options) func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
	return func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
		md, err := dump(ctx, o, emit)
		if err != nil {
			return nil, err
		}
		return md.Encode()
	}
}

func dump(ctx context.Context, o Options, emit func(string, io.Reader) error) (*source.Metadata, error) {
	d := o.DSN
	prog, err := FindProgram(o.BinDir, "mariadb-dump", "mysqldump")
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	db, err := Open(ctx, d, d.Database)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, connectError(d, err)
	}
	defer conn.Close()
	md := &source.Metadata{Engine: EngineMySQL, Database: d.Database, Location: d.String(), Extra: map[string]string{}}
	if err := conn.QueryRowContext(ctx, "SELECT VERSION()").Scan(&md.ServerVersion); err != nil {
		return nil, fmt.Errorf("mysql: server version: %w", err)
	}
	if strings.Contains(strings.ToLower(md.ServerVersion), "mariadb") {
		md.Engine = EngineMariaDB
	}
	var size sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = ?", d.Database).Scan(&size); err != nil {
		return nil, fmt.Errorf("mysql: database size: %w", err)
	}
	md.SizeBytes = size.Int64

	// Never let the global read lock queue behind a long statement for
	// long: while FLUSH TABLES WITH READ LOCK waits, new writes wait too.
	locked := true
	if _, err := conn.ExecContext(ctx, "SET SESSION lock_wait_timeout = "+strconv.Itoa(lockWaitSeconds)); err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
		locked = false
		md.Extra["consistent"] = "approximate"
		if o.Logger != nil {
			o.Logger.Warn("cannot take the global read lock: row counts and checksums are taken near, not exactly at, the dump's snapshot (grant RELOAD to the backup user, or back up when no long statement runs)", "err", err)
		}
	} else {
		md.Extra["consistent"] = "exact"
	}
	unlock := sync.OnceFunc(func() {
		if locked {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "UNLOCK TABLES")
		}
	})
	defer unlock()
	if _, err := conn.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return nil, fmt.Errorf("mysql: start consistent snapshot: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	if locked {
		// Under the global read lock nothing commits: the binary log
		// position now is exactly the dump's, the start of a
		// point-in-time replay (einvault db restore --to-time).
		if err := binlogPosition(ctx, conn, md.Extra); err != nil {
			return nil, err
		}
	}

	args := append(d.ClientArgs(), "--single-transaction", "--routines", "--events", "--triggers",
		"--hex-blob", "--quick", "--skip-dump-date", "--default-character-set=utf8mb4", "--", d.Database)
	cmd := exec.Command(prog, args...)
	cmd.Env = d.ClientEnv()

	name := d.Database + ".sql"
	begun := make(chan struct{})
	var once sync.Once
	signal := func() { once.Do(func() { close(begun) }) }
	wait := o.SnapshotWait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	// While the dump streams: release the lock once it has begun, then
	// read counts and checksums in our snapshot.
	type tablesResult struct {
		tables []source.Table
		nonTx  []string
		err    error
	}
	tr := make(chan tablesResult, 1)
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	go func() {
		ctx := tctx
		select {
		case <-begun:
		case <-time.After(wait):
			md.Extra["consistent"] = "approximate"
		case <-ctx.Done():
		}
		unlock()
		t, nonTx, err := tables(ctx, conn, d.Database)
		tr <- tablesResult{t, nonTx, err}
	}()
	mr := &markerReader{found: signal}
	res, runErr := command.Run(ctx, cmd, name, func(n string, r io.Reader) error {
		mr.r = r
		err := emit(n, mr)
		signal()
		return err
	})
	signal()
	if runErr != nil {
		tcancel()
	}
	t := <-tr
	if runErr != nil {
		var xe *command.ExitError
		if errors.As(runErr, &xe) {
			return nil, fmt.Errorf("mysql: dump of %s failed: %w", d.String(), runErr)
		}
		return nil, runErr
	}
	if t.err != nil {
		return nil, t.err
	}
	if !mr.complete() {
		return nil, fmt.Errorf("mysql: the dump of %s ended without its completion marker: it is incomplete", d.String())
	}
	md.Tables = t.tables
	if len(t.nonTx) > 0 {
		md.Extra["non_transactional_tables"] = strings.Join(t.nonTx, ",")
	}
	md.Extra["dump_program"] = filepath.Base(prog)
	md.Streams = []source.Stream{{Name: name, Format: Format, Bytes: res.Bytes}}
	return md, nil
}

// markerReader passes the dump through, calls found once the dump has
// begun its first table (or its end), and keeps the last bytes so that a
// dump cut short can be recognised.
type markerReader struct {
	r     io.Reader
	found func()
	tail  []byte
	done  bool
}

var dumpMarkers = [][]byte{[]byte("\n-- Table structure for table"), []byte("\n-- Dumping routines"), []byte("\n-- Dump completed")}

const tailKeep = 128

func (m *markerReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if n > 0 {
		// Only the bytes a marker can span are copied: the last tailKeep
		// of what came before and, past the first table, of this read
		// (copying every read cost a second pass over the whole dump).
		q := p[:n]
		if m.done && len(q) > tailKeep {
			q = q[len(q)-tailKeep:]
		}
		buf := append(m.tail, q...)
		if !m.done {
			for _, mk := range dumpMarkers {
				if bytes.Contains(buf, mk) {
					m.done = true
					m.found()
					break
				}
			}
		}
		if len(buf) > tailKeep {
			buf = buf[len(buf)-tailKeep:]
		}
		m.tail = append(m.tail[:0], buf...)
	}
	if err == io.EOF {
		m.found()
	}
	return n, err
}

// complete reports whether the dump ended with mariadb-dump's final comment.
func (m *markerReader) complete() bool {
	return bytes.Contains(m.tail, []byte("\n-- Dump completed"))
}

// tables lists the base tables of db with exact row counts and CHECKSUM
// TABLE values, read in conn's transaction, and the tables whose engine
// is not transactional.
func tables(ctx context.Context, conn *sql.Conn, db string) ([]source.Table, []string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT t.table_name, COALESCE(t.engine, ''), COALESCE(e.transactions, 'NO')
		FROM information_schema.tables t LEFT JOIN information_schema.engines e ON e.engine = t.engine
		WHERE t.table_schema = ? AND t.table_type = 'BASE TABLE' ORDER BY t.table_name`, db)
	if err != nil {
		return nil, nil, fmt.Errorf("mysql: list tables: %w", err)
	}
	var names, nonTx []string
	for rows.Next() {
		var n, engine, tx string
		if err := rows.Scan(&n, &engine, &tx); err != nil {
			rows.Close()
			return nil, nil, err
		}
		names = append(names, n)
		if tx != "YES" {
			nonTx = append(nonTx, n+"("+engine+")")
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("mysql: list tables: %w", err)
	}
	out := make([]source.Table, 0, len(names))
	for _, n := range names {
		t, err := tableFacts(ctx, conn, db, n)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, t)
	}
	return out, nonTx, nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func tableFacts(ctx context.Context, q queryer, db, name string) (source.Table, error) {
	t := source.Table{Name: name}
	qn := QuoteIdent(db) + "." + QuoteIdent(name)
	if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+qn).Scan(&t.Rows); err != nil {
		return t, fmt.Errorf("mysql: count rows of %s: %w", name, err)
	}
	var tn string
	var sum sql.NullInt64
	if err := q.QueryRowContext(ctx, "CHECKSUM TABLE "+qn).Scan(&tn, &sum); err != nil {
		return t, fmt.Errorf("mysql: checksum of %s: %w", name, err)
	}
	if sum.Valid {
		t.Checksum = fmt.Sprint(sum.Int64)
	}
	return t, nil
}

// QuoteIdent quotes a MySQL identifier with backticks.
func QuoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
