package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/einvault/einvault/internal/source"
	"github.com/einvault/einvault/internal/source/command"
)

// RestoreOptions describe restoring a dump into a new database.
type RestoreOptions struct {
	Meta   *source.Metadata // the snapshot's source metadata
	Target DSN              // server and NEW database name
	BinDir string           // directory of the mariadb/mysql client ("" = PATH)
	// WriteStream writes the snapshot's stream name to w.
	WriteStream func(ctx context.Context, name string, w io.Writer) error
}

// RestoreResult is the report of a restore.
type RestoreResult struct {
	Engine       string               `json:"engine"`
	Target       string               `json:"target"`
	Database     string               `json:"database"`
	Bytes        int64                `json:"bytes"`
	Seconds      float64              `json:"seconds"`
	Verification *source.Verification `json:"verification"`
}

// Restore creates o.Target.Database (it must not exist), feeds the dump
// to the mariadb (or mysql) client, and verifies the result against
// o.Meta: every table present, row counts and CHECKSUM TABLE values
// equal. When the client fails, the half-restored database is left for
// inspection and named in the error.
func Restore(ctx context.Context, o RestoreOptions) (*RestoreResult, error) {
	start := time.Now()
	if o.Meta == nil || !IsEngine(o.Meta.Engine) || len(o.Meta.Streams) != 1 {
		return nil, errors.New("mysql: the snapshot is not a MariaDB/MySQL backup")
	}
	d := o.Target
	prog, err := FindProgram(o.BinDir, "mariadb", "mysql")
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	admin, err := Open(ctx, d, "")
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	var exists int
	if err := admin.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", d.Database).Scan(&exists); err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	if exists > 0 {
		return nil, fmt.Errorf("mysql: database %s already exists on %s: restore into a NEW database name", d.Database, d.WithDatabase(""))
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+QuoteIdent(d.Database)+" CHARACTER SET utf8mb4"); err != nil {
		return nil, fmt.Errorf("mysql: create database %s: %w", d.Database, err)
	}
	args := append(d.ClientArgs(), "--binary-mode", "--default-character-set=utf8mb4", "--database="+d.Database)
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = d.ClientEnv()
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	tail := &tailWriter{}
	cmd.Stdout, cmd.Stderr = io.Discard, tail
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("mysql: start %s: %w", prog, err)
	}
	cw := &countWriter{w: in}
	werr := o.WriteStream(ctx, o.Meta.Streams[0].Name, cw)
	in.Close()
	cerr := cmd.Wait()
	hint := ""
	if last := command.LastLine(tail.String()); strings.Contains(last, " is full") || strings.Contains(last, "No space left") || strings.Contains(last, "Errcode: 28") {
		hint = " (the target server's disk or tablespace is full: free space there, drop " + d.Database + " and restore again)"
	}
	switch {
	case werr != nil && cerr != nil && tail.String() != "":
		return nil, fmt.Errorf("mysql: restore into %s failed (database left for inspection): %s: %s%s", d.Database, prog, command.LastLine(tail.String()), hint)
	case werr != nil:
		return nil, fmt.Errorf("mysql: restore into %s failed (database left for inspection): %w", d.Database, werr)
	case cerr != nil:
		return nil, fmt.Errorf("mysql: restore into %s failed (database left for inspection): %s %v: %s%s", d.Database, prog, cerr, command.LastLine(tail.String()), hint)
	}
	v, err := Verify(ctx, d, o.Meta)
	if err != nil {
		return nil, err
	}
	return &RestoreResult{Engine: o.Meta.Engine, Target: d.String(), Database: d.Database, Bytes: cw.n,
		Seconds: time.Since(start).Seconds(), Verification: v}, nil
}

// Verify compares database d.Database with what the backup recorded:
// tables present, row counts and CHECKSUM TABLE values.
func Verify(ctx context.Context, d DSN, want *source.Metadata) (*source.Verification, error) {
	db, err := Open(ctx, d, d.Database)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	v := &source.Verification{Engine: want.Engine, Database: d.Database}
	got := map[string]source.Table{}
	for _, w := range want.Tables {
		t, err := tableFacts(ctx, db, d.Database, w.Name)
		if err != nil {
			if isNoSuchTable(err) {
				continue // reported as missing by CompareTables
			}
			return nil, err
		}
		got[w.Name] = t
	}
	v.CompareTables(want.Tables, got)
	return v, nil
}

func isNoSuchTable(err error) bool {
	var me *driver.MySQLError
	return errors.As(err, &me) && me.Number == 1146
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

type tailWriter struct{ b []byte }

func (t *tailWriter) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailWriter) String() string { return string(t.b) }
