package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/source"
)

// RestoreOptions describe restoring a SQLite snapshot to a file.
type RestoreOptions struct {
	Meta      *source.Metadata // the snapshot's source metadata
	Target    string           // the database file to create
	Overwrite bool             // replace Target if it exists
	// WriteStream writes the snapshot's stream name to w.
	WriteStream func(ctx context.Context, name string, w io.Writer) error
}

// RestoreResult is the report of a SQLite restore.
type RestoreResult struct {
	Engine       string               `json:"engine"`
	Target       string               `json:"target"`
	Bytes        int64                `json:"bytes"`
	Seconds      float64              `json:"seconds"`
	Verification *source.Verification `json:"verification"`
}

// Restore writes the snapshot's database to a temporary file beside
// o.Target, verifies it (Verify) and renames it into place. When the
// verification fails the file is kept as TARGET.unverified and the
// result says why; the error is nil because the restore itself worked
// (callers turn a failed verification into exit code 5).
func Restore(ctx context.Context, o RestoreOptions) (*RestoreResult, error) {
	start := time.Now()
	if o.Meta == nil || o.Meta.Engine != Engine || len(o.Meta.Streams) != 1 {
		return nil, errors.New("sqlite: the snapshot is not a SQLite backup")
	}
	target, err := filepath.Abs(o.Target)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if _, err := os.Lstat(target); err == nil && !o.Overwrite {
		return nil, fmt.Errorf("sqlite: %s already exists (choose a new file, or give --overwrite)", target)
	}
	for _, side := range []string{"-wal", "-journal"} {
		if _, err := os.Lstat(target + side); err == nil {
			return nil, fmt.Errorf("sqlite: %s%s exists: a database is in use there; restore to a new file", target, side)
		}
	}
	f, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".einvault-*")
	if err != nil {
		return nil, fmt.Errorf("sqlite: restore to %s: %w", target, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	cw := &countWriter{w: f}
	if err := o.WriteStream(ctx, o.Meta.Streams[0].Name, cw); err != nil {
		return nil, fmt.Errorf("sqlite: restore to %s: %w", target, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sqlite: restore to %s: %w", target, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: restore to %s: %w", target, err)
	}
	v := Verify(ctx, tmp, o.Meta)
	v.Database = target
	final := target
	if !v.OK() {
		final = target + ".unverified"
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("sqlite: restore to %s: %w", final, err)
	}
	ok = true
	if d, err := os.Open(filepath.Dir(final)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return &RestoreResult{Engine: Engine, Target: final, Bytes: cw.n, Seconds: time.Since(start).Seconds(), Verification: v}, nil
}

// Verify checks a restored database file against what the backup
// recorded: the file's SHA-256, PRAGMA integrity_check, and every table
// present with its row count.
func Verify(ctx context.Context, p string, want *source.Metadata) *source.Verification {
	v := &source.Verification{Engine: Engine, Database: p}
	sum, _, err := fileSHA256(p)
	switch {
	case err != nil:
		v.Checks = append(v.Checks, source.Check{Name: "file sha256", OK: false, Detail: err.Error()})
	case want.Extra["sha256"] != "":
		v.Checks = append(v.Checks, source.Check{Name: "file sha256", OK: sum == want.Extra["sha256"], Want: want.Extra["sha256"], Got: sum})
	}
	db, err := sql.Open("sqlite", dsn(p, true, time.Second))
	if err != nil {
		v.Checks = append(v.Checks, source.Check{Name: "open", OK: false, Detail: err.Error()})
		return v
	}
	defer db.Close()
	v.Checks = append(v.Checks, integrityCheck(ctx, db))
	got, err := Tables(ctx, db)
	if err != nil {
		v.Checks = append(v.Checks, source.Check{Name: "list tables", OK: false, Detail: err.Error()})
		return v
	}
	m := make(map[string]source.Table, len(got))
	for _, t := range got {
		m[t.Name] = t
	}
	v.CompareTables(want.Tables, m)
	return v
}

func integrityCheck(ctx context.Context, db *sql.DB) source.Check {
	c := source.Check{Name: "integrity_check", Want: "ok"}
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			c.Detail = err.Error()
			return c
		}
		lines = append(lines, s)
	}
	if err := rows.Err(); err != nil {
		c.Detail = err.Error()
		return c
	}
	c.Got = strings.Join(lines, "; ")
	if len(c.Got) > 500 {
		c.Got = c.Got[:500] + "..."
	}
	c.OK = c.Got == "ok"
	return c
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
