package pg

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/einvault/einvault/internal/source"
	"github.com/jackc/pgx/v5"
)

// RestoreDumpOptions configure restoring a logical backup into a new
// database.
type RestoreDumpOptions struct {
	Target       DSN    // the new database; it must not exist yet
	Jobs         int    // pg_restore --jobs
	TempDir      string // where the dump is staged (pg_restore --jobs needs a seekable file)
	BinDir       string
	NoOwner      bool // pg_restore --no-owner --no-privileges: objects belong to the connecting user
	WithGlobals  bool // apply globals.sql (roles, tablespaces) first; existing roles are left alone
	Checksums    bool // compare row checksums too (when recorded at backup time)
	Logger       *slog.Logger
	WriteStream  func(ctx context.Context, name string, w io.Writer) error // writes one stream of the snapshot
	Meta         *source.Metadata
	StagedNotice func(path string) // told where the dump is staged
}

// RestoreDumpResult reports a logical restore.
type RestoreDumpResult struct {
	Database     string               `json:"database"`
	Staged       string               `json:"staged_file"`
	Seconds      float64              `json:"seconds"`
	Verification *source.Verification `json:"verification"`
}

// RestoreDump recreates the database of a logical backup under a new
// name: CREATE DATABASE, then pg_restore --jobs N from a staged copy of
// the dump, then VerifyDatabase. The new database must not exist (no
// restore ever overwrites a database). The caller treats a verification
// that is not OK as failed (exit code 5).
func RestoreDump(ctx context.Context, o RestoreDumpOptions) (*RestoreDumpResult, error) {
	start := time.Now()
	var dump, globals *source.Stream
	for i, s := range o.Meta.Streams {
		switch s.Format {
		case FormatCustom:
			dump = &o.Meta.Streams[i]
		case FormatGlobals:
			globals = &o.Meta.Streams[i]
		}
	}
	if dump == nil {
		return nil, fmt.Errorf("the snapshot holds no pg_dump custom-format stream: it is not a PostgreSQL logical backup")
	}
	pgRestore, err := FindProgram(o.BinDir, "pg_restore")
	if err != nil {
		return nil, err
	}
	admin, err := Connect(ctx, o.Target.WithDatabase("postgres"))
	if err != nil {
		return nil, err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", o.Target.Database).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look up database %s: %v", o.Target.Database, oneLine(err))
	}
	if exists {
		return nil, fmt.Errorf("database %q already exists on the target server: restore into a new name (or drop it first)", o.Target.Database)
	}

	f, err := os.CreateTemp(o.TempDir, "einvault-pgdump-*.dump")
	if err != nil {
		return nil, fmt.Errorf("stage the dump for pg_restore: %w (choose another --temp-dir)", err)
	}
	defer os.Remove(f.Name())
	if o.StagedNotice != nil {
		o.StagedNotice(f.Name())
	}
	if err := o.WriteStream(ctx, dump.Name, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("stage %s: %w", dump.Name, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("stage %s: %w", dump.Name, err)
	}

	if o.WithGlobals && globals != nil {
		if err := applyGlobals(ctx, o, admin, globals.Name); err != nil {
			return nil, err
		}
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{o.Target.Database}.Sanitize()+" TEMPLATE template0"); err != nil {
		return nil, fmt.Errorf("create database %s: %v", o.Target.Database, oneLine(err))
	}
	jobs := max(o.Jobs, 1)
	args := []string{"--exit-on-error", "--jobs=" + strconv.Itoa(jobs), "--dbname=" + o.Target.URI}
	if o.NoOwner {
		args = append(args, "--no-owner", "--no-privileges")
	}
	cmd := exec.CommandContext(ctx, pgRestore, append(args, f.Name())...)
	cmd.Env = o.Target.Env()
	var stderr tailBuffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w (database %s is incomplete: drop it before trying again)", progError("pg_restore", err, stderr.String()), o.Target.Database)
	}
	conn, err := Connect(ctx, o.Target)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	v, err := VerifyDatabase(ctx, conn, o.Target.Database, o.Meta.Tables, o.Checksums)
	if err != nil {
		return nil, err
	}
	return &RestoreDumpResult{Database: o.Target.Database, Staged: f.Name(), Seconds: time.Since(start).Seconds(), Verification: v}, nil
}

// applyGlobals runs globals.sql statement by statement; roles that exist
// already are skipped, other errors are fatal.
func applyGlobals(ctx context.Context, o RestoreDumpOptions, admin *pgx.Conn, name string) error {
	psql, err := FindProgram(o.BinDir, "psql")
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(o.WriteStream(ctx, name, pw)) }()
	cmd := exec.CommandContext(ctx, psql, "--quiet", "--no-psqlrc", "--dbname="+o.Target.WithDatabase("postgres").URI)
	cmd.Env = o.Target.Env()
	cmd.Stdin = pr
	var stderr tailBuffer
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	if err := cmd.Run(); err != nil {
		return progError("apply globals.sql with psql", err, stderr.String())
	}
	return nil
}
