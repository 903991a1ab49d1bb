package pg

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"

	"github.com/einvault/einvault/internal/archiver"
	"github.com/einvault/einvault/internal/source"
	"github.com/jackc/pgx/v5"
)

// Stream formats recorded in source.Stream.Format.
const (
	FormatCustom    = "pg-custom"
	FormatGlobals   = "pg-globals-sql"
	FormatBaseTar   = "pg-basebackup-tar"
	SourceLogical   = "postgresql"
	SourceBase      = "postgresql-base"
	globalsFileName = "globals.sql"
)

// DumpOptions configure a logical backup.
type DumpOptions struct {
	DSN       DSN
	BinDir    string // PostgreSQL programs; empty: newest installed
	Checksums bool   // also record an md5 over each table's ordered rows (reads every row twice)
	NoGlobals bool   // skip pg_dumpall --globals-only
	Logger    *slog.Logger
}

// Connect opens a pgx connection for d with a one-line error a user can
// act on.
func Connect(ctx context.Context, d DSN) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(d.URI)
	if err != nil {
		return nil, fmt.Errorf("invalid PostgreSQL connection string: %v", redactErr(err))
	}
	if d.Password != "" {
		cfg.Password = d.Password
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL %s: %v (is the server running? check user, PGPASSWORD or ~/.pgpass)", d.URI, oneLine(err))
	}
	return c, nil
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// DumpStreams returns the producer of a logical backup: the output of
// pg_dump --format=custom streamed straight into the repository (no
// temporary file), preceded by pg_dumpall --globals-only (roles,
// tablespaces). Row counts are taken inside the very snapshot pg_dump
// dumps (pg_export_snapshot), so they match the dump exactly.
func DumpStreams(o DumpOptions) archiver.StreamFunc {
	return func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
		d, err := StartDump(ctx, o)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.Produce(ctx, emit)
	}
}

// earlyBytes bounds what a started dump reads ahead into memory before
// the repository is ready to take it.
const earlyBytes = 64 << 20

// A Dump is a logical backup under way: the snapshot is exported and
// pg_dump and pg_dumpall run. Starting it before the repository is open
// overlaps the server's work (connection, catalog reads, the first
// tables) with opening the repository (key derivation), the first
// earlyBytes of the dump waiting in memory. Produce stores it; Close
// stops whatever Produce did not finish (a dump never produced is
// killed).
type Dump struct {
	o        DumpOptions
	conn     *pgx.Conn
	tx       pgx.Tx
	meta     *source.Metadata
	tables   []source.Table
	globalsc chan globalsResult
	counted  chan error
	fromDump chan dumpCount
	tee      *bufPipe
	cmd      *exec.Cmd
	stderr   *tailBuffer
	early    *earlyReader
	waited   bool
	closed   bool
}

type globalsResult struct {
	sql string
	err error
}

// StartDump connects, exports a snapshot and starts pg_dump (and
// pg_dumpall --globals-only) in it; see Dump.
func StartDump(ctx context.Context, o DumpOptions) (_ *Dump, err error) {
	pgDump, err := FindProgram(o.BinDir, "pg_dump")
	if err != nil {
		return nil, err
	}
	conn, err := Connect(ctx, o.DSN)
	if err != nil {
		return nil, err
	}
	d := &Dump{o: o, conn: conn}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	d.tx, err = conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("start snapshot transaction on %s: %v", o.DSN.URI, oneLine(err))
	}
	d.meta = &source.Metadata{Engine: "postgresql", Database: o.DSN.Database, Location: o.DSN.URI, Extra: map[string]string{}}
	var snapshot string
	err = d.tx.QueryRow(ctx, `SELECT pg_export_snapshot(), current_setting('server_version'), pg_database_size(current_database())`).Scan(&snapshot, &d.meta.ServerVersion, &d.meta.SizeBytes)
	if err != nil {
		return nil, fmt.Errorf("export snapshot on %s: %v", o.DSN.URI, oneLine(err))
	}
	if d.tables, err = listTables(ctx, d.tx); err != nil {
		return nil, err
	}

	// pg_dumpall --globals-only runs while pg_dump streams (its output
	// is small, stored after the dump).
	d.globalsc = make(chan globalsResult, 1)
	if !o.NoGlobals {
		go func() {
			g, err := dumpGlobals(ctx, o)
			d.globalsc <- globalsResult{g, err}
		}()
	}

	// Row counts come from the dump itself as it streams past (the rows
	// it holds, in its snapshot, without scanning every table again).
	// Checksums need SQL: those queries run while pg_dump streams, on the
	// same snapshot.
	d.counted = make(chan error, 1)
	if o.Checksums {
		go func() { d.counted <- countTables(ctx, d.tx, d.tables, o.Checksums) }()
	} else {
		d.counted <- nil
		// A buffered pipe: the counter runs beside the backup instead
		// of taking turns with it on every read.
		d.tee = newBufPipe(16)
		d.fromDump = make(chan dumpCount, 1)
		go func() {
			c, err := DumpRowCounts(d.tee)
			d.fromDump <- dumpCount{c, err}
		}()
	}

	d.cmd = exec.CommandContext(ctx, pgDump, "--format=custom", "--compress=0", "--snapshot="+snapshot, "--dbname="+o.DSN.URI)
	d.cmd.Env = withLargeStdoutBuffer(o.DSN.Env(), nil)
	d.stderr = &tailBuffer{}
	d.cmd.Stderr = d.stderr
	out, err := source.StdoutPipe(d.cmd)
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		d.cmd = nil
		return nil, fmt.Errorf("start pg_dump: %w", err)
	}
	d.early = newEarlyReader(out, earlyBytes)
	return d, nil
}

// Produce stores the dump through emit (the archiver's), then the
// globals, and returns the snapshot's source metadata.
func (d *Dump) Produce(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
	o := d.o
	name := o.DSN.Database + ".dump"
	cr := &countingReader{r: d.early}
	if d.tee != nil {
		cr.r = io.TeeReader(d.early, d.tee)
	}
	emitErr := emit(name, cr)
	if d.tee != nil {
		d.tee.CloseWithError(nil)
	}
	if emitErr != nil {
		_ = d.cmd.Process.Kill()
	}
	d.waited = true
	waitErr := d.cmd.Wait()
	cerr := <-d.counted
	switch {
	case emitErr != nil:
		return nil, emitErr
	case waitErr != nil:
		return nil, progError("pg_dump of "+o.DSN.URI, waitErr, d.stderr.String())
	case cerr != nil:
		return nil, cerr
	}
	if d.fromDump != nil {
		if err := applyDumpCounts(ctx, d.tx, d.tables, <-d.fromDump, o.Logger); err != nil {
			return nil, err
		}
	}
	meta := d.meta
	if !o.NoGlobals {
		g := <-d.globalsc
		if g.err != nil {
			return nil, g.err
		}
		if err := emit(globalsFileName, strings.NewReader(g.sql)); err != nil {
			return nil, err
		}
		meta.Streams = append(meta.Streams, source.Stream{Name: globalsFileName, Format: FormatGlobals, Bytes: int64(len(g.sql))})
	}
	meta.Streams = append(meta.Streams, source.Stream{Name: name, Format: FormatCustom, Bytes: cr.n})
	meta.Tables = d.tables
	return meta.Encode()
}

// Close stops pg_dump if Produce did not see it finish, and ends the
// snapshot transaction. It may be called more than once.
func (d *Dump) Close() {
	if d.closed {
		return
	}
	d.closed = true
	if !d.waited {
		if d.cmd != nil {
			_ = d.cmd.Process.Kill()
			d.early.Close()
		}
		if d.tee != nil {
			d.tee.CloseWithError(io.ErrClosedPipe)
		}
		if d.cmd != nil {
			_ = d.cmd.Wait()
		}
	}
	ctx := context.Background()
	if d.tx != nil {
		_ = d.tx.Rollback(ctx)
	}
	d.conn.Close(ctx)
}

type dumpCount struct {
	rows map[tocTable]int64
	err  error
}

// applyDumpCounts fills in the row counts the dump held; tables it did
// not count (no data entry in the dump, or an archive it could not
// parse) are counted in SQL, in the same snapshot.
func applyDumpCounts(ctx context.Context, tx pgx.Tx, tables []source.Table, dc dumpCount, log *slog.Logger) error {
	if dc.err != nil && log != nil {
		log.Debug("row counts from the dump unavailable; counting in SQL", "err", dc.err)
	}
	var rest []source.Table
	var idx []int
	for i := range tables {
		if n, ok := dc.rows[tocTable{tables[i].Schema, tables[i].Name}]; ok && dc.err == nil {
			tables[i].Rows = n
			continue
		}
		rest = append(rest, tables[i])
		idx = append(idx, i)
	}
	if len(rest) == 0 {
		return nil
	}
	if err := countTables(ctx, tx, rest, false); err != nil {
		return err
	}
	for k, i := range idx {
		tables[i].Rows = rest[k].Rows
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func dumpGlobals(ctx context.Context, o DumpOptions) (string, error) {
	prog, err := FindProgram(o.BinDir, "pg_dumpall")
	if err != nil {
		return "", err
	}
	run := func(extra ...string) (string, string, error) {
		cmd := exec.CommandContext(ctx, prog, append([]string{"--globals-only", "--dbname=" + o.DSN.URI}, extra...)...)
		cmd.Env = o.DSN.Env()
		var stderr tailBuffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		return string(out), stderr.String(), err
	}
	out, stderr, err := run()
	if err != nil && strings.Contains(stderr, "permission denied") {
		// Not a superuser: role passwords are unreadable, the rest is not.
		out, stderr, err = run("--no-role-passwords")
	}
	if err != nil {
		return "", progError("pg_dumpall --globals-only", err, stderr)
	}
	return out, nil
}

func listTables(ctx context.Context, q pgx.Tx) ([]source.Table, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
		  AND n.nspname NOT LIKE 'pg\_temp%' ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %v", oneLine(err))
	}
	var out []source.Table
	for rows.Next() {
		var t source.Table
		if err := rows.Scan(&t.Schema, &t.Name); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// countTables fills in exact row counts (and checksums) of tables.
func countTables(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, tables []source.Table, checksums bool) error {
	for i := range tables {
		t := &tables[i]
		id := pgx.Identifier{t.Schema, t.Name}.Sanitize()
		if err := q.QueryRow(ctx, "SELECT count(*) FROM ONLY "+id).Scan(&t.Rows); err != nil {
			return fmt.Errorf("count rows of %s: %v", id, oneLine(err))
		}
		if checksums {
			if err := q.QueryRow(ctx, "SELECT coalesce(md5(string_agg(h, '' ORDER BY h)), '') FROM (SELECT md5(t::text) AS h FROM ONLY "+id+" t) s").Scan(&t.Checksum); err != nil {
				return fmt.Errorf("checksum %s: %v", id, oneLine(err))
			}
		}
	}
	return nil
}
