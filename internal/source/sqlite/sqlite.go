// Package sqlite backs up a live SQLite database through SQLite's online
// backup API (modernc.org/sqlite), restores it to a file and verifies
// the restored file.
//
// Consistency: the copy is made with one sqlite3_backup_step(-1), which
// holds a read transaction on the source for the whole copy, so the copy
// is exactly the database as of one transaction. In WAL mode writers go
// on meanwhile; in rollback-journal mode writers wait (with their busy
// timeout) until the copy is done. Copying in small steps instead would
// restart from scratch whenever another process writes, and so might
// never finish under a continuous writer.
package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/source"
	msqlite "modernc.org/sqlite"
)

// Engine is the Metadata.Engine and snapshot Source of a SQLite backup.
const Engine = "sqlite"

// Format is the stream format of a SQLite database file.
const Format = "sqlite-db"

// ParseLocation returns the database path of "sqlite:PATH",
// "sqlite://PATH" or "sqlite:///abs/path", and ok=false when s is not a
// SQLite location.
func ParseLocation(s string) (path string, ok bool, err error) {
	rest, found := strings.CutPrefix(s, "sqlite:")
	if !found {
		return "", false, nil
	}
	rest = strings.TrimPrefix(rest, "//")
	if rest == "" {
		return "", true, errors.New("sqlite: no database path: write sqlite:/path/to/db.sqlite")
	}
	if strings.ContainsAny(rest, "?#") {
		return "", true, fmt.Errorf("sqlite: %q: query parameters are not supported, give a plain path", s)
	}
	abs, err := filepath.Abs(rest)
	if err != nil {
		return "", true, fmt.Errorf("sqlite: %w", err)
	}
	return abs, true, nil
}

// Options describe a SQLite backup.
type Options struct {
	Path        string        // the live database
	TempDir     string        // where the consistent copy is staged ("" = os.TempDir())
	BusyTimeout time.Duration // how long to wait for a lock (default 30s)
	Logger      *slog.Logger
}

// Streams returns the archiver.StreamFunc of a SQLite backup: one stream,
// the database file's base name, holding a consistent copy.
func Streams(o Options) func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
	return func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
		md, copyPath, cleanup, err := Snapshot(ctx, o)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		f, err := os.Open(copyPath)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read the copy: %w", err)
		}
		defer f.Close()
		if err := emit(md.Streams[0].Name, f); err != nil {
			return nil, err
		}
		return md.Encode()
	}
}

// Snapshot takes the consistent copy of o.Path into a temporary file and
// describes it. cleanup removes the file.
func Snapshot(ctx context.Context, o Options) (md *source.Metadata, copyPath string, cleanup func(), err error) {
	cleanup = func() {}
	st, err := os.Stat(o.Path)
	if err != nil {
		return nil, "", cleanup, fmt.Errorf("sqlite: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, "", cleanup, fmt.Errorf("sqlite: %s is not a regular file", o.Path)
	}
	busy := o.BusyTimeout
	if busy <= 0 {
		busy = 30 * time.Second
	}
	dir, err := os.MkdirTemp(o.TempDir, "einvault-sqlite-")
	if err != nil {
		return nil, "", cleanup, fmt.Errorf("sqlite: staging directory: %w (choose another with --temp-dir)", err)
	}
	cleanup = func() { os.RemoveAll(dir) }
	copyPath = filepath.Join(dir, "copy.db")
	start := time.Now()
	if err := onlineBackup(ctx, o.Path, copyPath, busy); err != nil {
		cleanup()
		return nil, "", func() {}, err
	}
	md, err = Describe(ctx, copyPath)
	if err != nil {
		cleanup()
		return nil, "", func() {}, err
	}
	md.Location = o.Path
	md.Database = filepath.Base(o.Path)
	md.Streams = []source.Stream{{Name: streamName(o.Path), Format: Format, Bytes: md.SizeBytes}}
	if o.Logger != nil {
		o.Logger.Info("sqlite copy taken", "path", o.Path, "bytes", md.SizeBytes, "took", time.Since(start))
	}
	return md, copyPath, cleanup, nil
}

func streamName(p string) string {
	n := filepath.Base(p)
	if n == "" || n == "." || n == "/" {
		return "database.sqlite"
	}
	return n
}

func dsn(path string, readOnly bool, busy time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	if readOnly {
		q.Add("mode", "ro")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

type backuper interface {
	NewBackup(dstURI string) (*msqlite.Backup, error)
}

// onlineBackup copies src to dst with one backup step.
func onlineBackup(ctx context.Context, src, dst string, busy time.Duration) error {
	db, err := sql.Open("sqlite", dsn(src, true, busy))
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", src, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", src, err)
	}
	defer conn.Close()
	// Touch the schema so that a file that is not a database fails here
	// with SQLite's own message.
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		return fmt.Errorf("sqlite: %s is not a readable SQLite database: %w", src, err)
	}
	return conn.Raw(func(dc any) error {
		b, ok := dc.(backuper)
		if !ok {
			return errors.New("sqlite: the driver offers no online backup API")
		}
		bk, err := b.NewBackup(dsn(dst, false, busy))
		if err != nil {
			return fmt.Errorf("sqlite: start online backup: %w", err)
		}
		_, stepErr := bk.Step(-1)
		finErr := bk.Finish()
		if stepErr != nil {
			return fmt.Errorf("sqlite: online backup of %s: %w (a writer held the lock longer than the busy timeout?)", src, stepErr)
		}
		if finErr != nil {
			return fmt.Errorf("sqlite: finish online backup: %w", finErr)
		}
		return nil
	})
}

// Describe returns the size, tables, row counts and file checksum
// (Extra["sha256"]) of the database file at p, which nobody else writes.
func Describe(ctx context.Context, p string) (*source.Metadata, error) {
	// Hash first: the file must be hashed as it is, before SQLite touches it.
	sum, size, err := fileSHA256(p)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(p, true, time.Second))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", p, err)
	}
	defer db.Close()
	md := &source.Metadata{Engine: Engine, Extra: map[string]string{}}
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&md.ServerVersion); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", p, err)
	}
	tables, err := Tables(ctx, db)
	if err != nil {
		return nil, err
	}
	md.Tables = tables
	md.SizeBytes = size
	md.Extra["sha256"] = sum
	return md, nil
}

// Tables lists the tables of db with their exact row counts.
func Tables(ctx context.Context, db *sql.DB) ([]source.Table, error) {
	rows, err := db.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list tables: %w", err)
	}
	out := make([]source.Table, 0, len(names))
	for _, n := range names {
		var c int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(n)).Scan(&c); err != nil {
			return nil, fmt.Errorf("sqlite: count rows of %s: %w", n, err)
		}
		out = append(out, source.Table{Name: n, Rows: c})
	}
	return out, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func fileSHA256(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, fmt.Errorf("sqlite: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("sqlite: read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Ping opens the database at p read-only, reads its schema and returns
// the SQLite library version: a pre-flight check.
func Ping(ctx context.Context, p string) (string, error) {
	if st, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("sqlite: %w", err)
	} else if !st.Mode().IsRegular() {
		return "", fmt.Errorf("sqlite: %s is not a regular file", p)
	}
	db, err := sql.Open("sqlite", dsn(p, true, 5*time.Second))
	if err != nil {
		return "", fmt.Errorf("sqlite: open %s: %w", p, err)
	}
	defer db.Close()
	var v string
	var n int
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version(), (SELECT count(*) FROM sqlite_schema)").Scan(&v, &n); err != nil {
		return "", fmt.Errorf("sqlite: %s is not a readable SQLite database: %w", p, err)
	}
	return v, nil
}
