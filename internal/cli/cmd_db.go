package cli

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	_ "github.com/microsoft/go-mssqldb" // sqlserver driver for 'db ping'
	"github.com/spf13/cobra"

	"github.com/einvault/einvault/internal/archiver"
	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/restorer"
	"github.com/einvault/einvault/internal/source"
	"github.com/einvault/einvault/internal/source/command"
	"github.com/einvault/einvault/internal/source/mysql"
	"github.com/einvault/einvault/internal/source/sqlite"
)

// dbBackupFlags are the backup flags of the MariaDB/MySQL, SQLite and
// command sources.
type dbBackupFlags struct {
	fromCommand   string
	mysqlBin      string
	mysqlDefaults string
	tempDir       string
}

func addDBBackupFlags(f interface {
	StringVar(p *string, name, value, usage string)
}, o *dbBackupFlags) {
	f.StringVar(&o.fromCommand, "stdin-from-command", "", "back up the standard output of this command (no shell: write sh -c '...' for one); fails if it exits non-zero")
	f.StringVar(&o.mysqlBin, "mysql-bin", "", "MariaDB/MySQL: directory of mariadb-dump/mysqldump (default: PATH)")
	f.StringVar(&o.mysqlDefaults, "mysql-defaults-file", "", "MariaDB/MySQL: option file with [client] user/password (default ~/.my.cnf)")
	f.StringVar(&o.tempDir, "temp-dir", "", "SQLite: directory for the consistent copy before it is stored (default: system temp dir)")
}

// runBackupDB handles the database and command sources; handled is false
// when args are plain paths.
func runBackupDB(ctx context.Context, g *Globals, o backupOptions, args []string) (handled bool, err error) {
	db := o.db
	if db.fromCommand != "" {
		if o.stdin || len(args) > 0 {
			return true, usageError("--stdin-from-command takes no paths and excludes --stdin")
		}
		argv, err := command.Split(db.fromCommand)
		if err != nil {
			return true, usageError("--stdin-from-command: %v", err)
		}
		return true, streamBackup(ctx, g, o, command.Engine, []string{"/" + o.stdinName},
			command.Streams(command.Options{Argv: argv, Name: o.stdinName, Logger: g.Logger()}), "command "+argv[0])
	}
	if len(args) != 1 || o.stdin {
		return false, nil
	}
	if mysql.IsDSN(args[0]) {
		d, err := mysql.ParseDSN(args[0], false)
		if err != nil {
			return true, usageError("%v", err)
		}
		if err := d.FillCredentials(g.Getenv, db.mysqlDefaults); err != nil {
			return true, err
		}
		return true, streamBackup(ctx, g, o, mysql.EngineMariaDB, []string{d.String()},
			mysql.DumpStreams(mysql.Options{DSN: d, BinDir: db.mysqlBin, Logger: g.Logger()}), "MariaDB/MySQL backup of "+d.String())
	}
	p, ok, err := sqlite.ParseLocation(args[0])
	if !ok {
		return false, nil
	}
	if err != nil {
		return true, usageError("%v", err)
	}
	return true, streamBackup(ctx, g, o, sqlite.Engine, []string{"sqlite:" + p},
		sqlite.Streams(sqlite.Options{Path: p, TempDir: db.tempDir, Logger: g.Logger()}), "SQLite backup of "+p)
}

func streamBackup(ctx context.Context, g *Globals, o backupOptions, src string, paths []string, produce archiver.StreamFunc, what string) error {
	return runStreamBackup(ctx, g, o, what, archiver.Streams{Source: src, Paths: paths, Produce: produce})
}

func newDBCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "MariaDB/MySQL, SQLite and SQL Server: restore with verification, connectivity checks",
		Long: `Database helpers for the MariaDB/MySQL and SQLite sources (PostgreSQL has
'einvault pg'). Backups are taken with 'einvault backup mysql://...',
'einvault backup sqlite:/path' or 'einvault backup --stdin-from-command'.
See docs/DATABASES.md, which also has the SQL Server recipe.`,
	}
	cmd.AddCommand(newDBRestoreCmd(g), newDBPingCmd(g), newDBBinlogArchiveCmd(g))
	return cmd
}

func newDBRestoreCmd(g *Globals) *cobra.Command {
	var filter SnapshotFilterFlags
	var to, bin, defaults, toTime string
	var overwrite, latest bool
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT --to TARGET [--to-time TIME | --latest]",
		Short: "Restore a MariaDB/MySQL or SQLite backup and verify it",
		Long: `Restore a database backup and verify what came back against what the
backup recorded.

MariaDB/MySQL: TARGET is mysql://user@host:port/NEWDB (or mariadb://, or
?socket=/path): NEWDB must not exist; it is created and the dump is fed to
the mariadb (mysql) client. Verification: every table present, the same row
count and the same CHECKSUM TABLE value.

Point in time (MariaDB/MySQL with binary logs archived by 'einvault db
binlog-archive'): --to-time TIME (with a zone) or --latest restores the
dump, verifies it, then replays the archived binary logs from the dump's
position up to TIME (or to the end of the archive), only the dumped
database's changes, renamed to NEWDB. The recovery window (dump time ..
newest archived transaction) is shown first; a target outside it is
refused before anything is written. After the replay every table is
checked (CHECK TABLE) and its rows counted; the report gives the time of
the last transaction replayed.

SQLite: TARGET is a file path (or sqlite:/path) that must not exist unless
--overwrite is given. The file is written under a temporary name, checked
(file SHA-256, PRAGMA integrity_check, tables and row counts) and renamed
into place; a file that fails verification is kept as TARGET.unverified.

The report goes to stdout (--json for machine-readable output).
Exit codes: 0 verified, 5 restored but verification failed, 1 error.`,
		Example: `  einvault db restore latest --tag mariadb --to mysql://root@localhost/einvoice_check?socket=/run/mysqld/mysqld.sock
  einvault db restore 4f2a9c1e --to mysql://admin@db2:3306/einvoice_0301 --json
  einvault db restore latest --tag sqlite --to /srv/app/restored.sqlite
  einvault db restore latest --tag mariadb --to mysql://root@localhost/einvoice_1405?socket=/run/mysqld/mysqld.sock --to-time "2026-11-20 14:05:00+07"`,
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if to == "" {
				return usageError("no target: give --to")
			}
			r, err := g.OpenRepoForRestore(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			snap, _, err := g.FindSnapshot(ctx, r, args[0], filter.Filter())
			if err != nil {
				return err
			}
			meta, ok, err := source.FromMeta(snap.Meta)
			if err != nil {
				return err
			}
			if !ok {
				return usageError("snapshot %s is not a database backup (use 'einvault restore')", snap.ID.Short())
			}
			ws := streamWriter(r, snap)
			switch {
			case mysql.IsEngine(meta.Engine):
				d, err := mysql.ParseDSN(to, false)
				if err != nil {
					return usageError("--to: %v", err)
				}
				if err := d.FillCredentials(g.Getenv, defaults); err != nil {
					return err
				}
				if toTime != "" || latest {
					if toTime != "" && latest {
						return usageError("give --to-time or --latest, not both")
					}
					return runBinlogRestore(ctx, g, r, snap, meta, d, bin, toTime, latest)
				}
				res, err := mysql.Restore(ctx, mysql.RestoreOptions{Meta: meta, Target: d, BinDir: bin, WriteStream: ws})
				if err != nil {
					return err
				}
				return printDBVerification(g, res, res.Verification, fmt.Sprintf("Restored snapshot %s into database %s (%s) in %s.",
					snap.ID.Short(), res.Database, formatBytes(uint64(res.Bytes)), formatDuration(res.Seconds)))
			case meta.Engine == mysql.EngineBinlog:
				return usageError("snapshot %s holds archived binary logs: restore a dump snapshot (--tag mariadb) with --to-time or --latest, and they are replayed from here", snap.ID.Short())
			case toTime != "" || latest:
				return usageError("--to-time and --latest are for MariaDB/MySQL dumps (PostgreSQL: 'einvault pg restore')")
			case meta.Engine == sqlite.Engine:
				target := to
				if p, ok, err := sqlite.ParseLocation(to); ok {
					if err != nil {
						return usageError("--to: %v", err)
					}
					target = p
				}
				res, err := sqlite.Restore(ctx, sqlite.RestoreOptions{Meta: meta, Target: target, Overwrite: overwrite, WriteStream: ws})
				if err != nil {
					return err
				}
				return printDBVerification(g, res, res.Verification, fmt.Sprintf("Restored snapshot %s to %s (%s) in %s.",
					snap.ID.Short(), res.Target, formatBytes(uint64(res.Bytes)), formatDuration(res.Seconds)))
			case meta.Engine == command.Engine:
				return usageError("snapshot %s holds a command's output: restore it with 'einvault dump %s /%s > FILE' (or 'einvault restore')", snap.ID.Short(), snap.ID.Short(), meta.Streams[0].Name)
			}
			return usageError("snapshot %s is a %s backup: restore it with 'einvault pg restore-dump'", snap.ID.Short(), meta.Engine)
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "where to restore: mysql://user@host:port/NEWDB, or a new SQLite file path (required)")
	f.BoolVar(&overwrite, "overwrite", false, "SQLite: replace an existing file")
	f.StringVar(&toTime, "to-time", "", "MariaDB/MySQL: replay archived binary logs up to this time (with a zone: \"2026-11-20 14:05:00+07\")")
	f.BoolVar(&latest, "latest", false, "MariaDB/MySQL: replay every archived binary log after the dump")
	f.StringVar(&bin, "mysql-bin", "", "MariaDB/MySQL: directory of the mariadb/mysql client (default: PATH)")
	f.StringVar(&defaults, "mysql-defaults-file", "", "MariaDB/MySQL: option file with [client] user/password (default ~/.my.cnf)")
	f.StringArrayVar(&filter.Hosts, "host", nil, "for \"latest\": only snapshots of this host (repeat)")
	f.StringArrayVar(&filter.Tags, "tag", nil, "for \"latest\": only snapshots with these tags (repeat)")
	return cmd
}

func streamWriter(r *repo.Repository, snap *repo.Snapshot) func(context.Context, string, io.Writer) error {
	rs := restorer.New(r, restorer.Options{})
	return func(ctx context.Context, name string, w io.Writer) error {
		return rs.Dump(ctx, snap, "/"+name, w)
	}
}

// printDBVerification prints a database restore's result and its
// verification, and returns exit code 5 when a check failed.
func printDBVerification(g *Globals, result any, v *source.Verification, headline string) error {
	if g.JSON {
		if err := g.PrintJSON(result); err != nil {
			return err
		}
	} else {
		g.Printf("%s\n", headline)
		for _, c := range v.Checks {
			mark := "ok  "
			if !c.OK {
				mark = "FAIL"
			}
			line := "  " + mark + " " + c.Name
			if !c.OK && (c.Want != "" || c.Got != "") {
				line += fmt.Sprintf(" (want %s, got %s)", c.Want, c.Got)
			}
			if c.Detail != "" {
				line += ": " + c.Detail
			}
			g.Printf("%s\n", line)
		}
	}
	if !v.OK() {
		return WithExit(ExitDamaged, fmt.Errorf("verification of %s failed: %d check(s) did not pass", v.Database, len(v.Failed())))
	}
	return nil
}

func newDBPingCmd(g *Globals) *cobra.Command {
	var timeout time.Duration
	var defaults string
	cmd := &cobra.Command{
		Use:   "ping DSN",
		Short: "Check that a database accepts the connection (sqlserver://, mysql://, sqlite:)",
		Long: `Connect to a database and report its version: a pre-flight check before a
backup job. sqlserver://user@host:1433?database=NAME uses go-mssqldb (the
password from MSSQL_PASSWORD or the URL); mysql:// and mariadb:// use
MYSQL_PWD or the option file; sqlite:/path opens the file read-only.

Exit codes: 0 reachable, 1 not reachable (the reason on stderr), 2 usage.`,
		Example: `  MSSQL_PASSWORD=... einvault db ping 'sqlserver://backup@sql1:1433?database=einvoice'
  einvault db ping mysql://backup@db1:3306/einvoice --json`,
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			res, err := pingDB(ctx, g, args[0], defaults)
			if err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(res)
			}
			g.Printf("%s is reachable (%s, %s).\n", res.Location, res.Version, res.Took)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Second, "give up after this long")
	cmd.Flags().StringVar(&defaults, "mysql-defaults-file", "", "MariaDB/MySQL: option file with [client] user/password (default ~/.my.cnf)")
	return cmd
}

type pingResult struct {
	Location string `json:"location"`
	Engine   string `json:"engine"`
	Version  string `json:"version"`
	Took     string `json:"took"`
}

func pingDB(ctx context.Context, g *Globals, dsn, defaults string) (*pingResult, error) {
	start := time.Now()
	res := &pingResult{}
	switch {
	case strings.HasPrefix(dsn, "sqlserver://"):
		loc, connStr, err := sqlServerDSN(dsn, g.Getenv("MSSQL_PASSWORD"))
		if err != nil {
			return nil, usageError("%v", err)
		}
		res.Location, res.Engine = loc, "sqlserver"
		db, err := sql.Open("sqlserver", connStr)
		if err != nil {
			return nil, fmt.Errorf("sqlserver: %w", err)
		}
		defer db.Close()
		if err := db.QueryRowContext(ctx, "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128))").Scan(&res.Version); err != nil {
			return nil, fmt.Errorf("sqlserver: %s not reachable: %w (check host, port, user and MSSQL_PASSWORD)", loc, err)
		}
	case mysql.IsDSN(dsn):
		d, err := mysql.ParseDSN(dsn, true)
		if err != nil {
			return nil, usageError("%v", err)
		}
		if err := d.FillCredentials(g.Getenv, defaults); err != nil {
			return nil, err
		}
		res.Location, res.Engine = d.String(), "mysql"
		db, err := mysql.Open(ctx, d, d.Database)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&res.Version); err != nil {
			return nil, fmt.Errorf("mysql: %w", err)
		}
	default:
		p, ok, err := sqlite.ParseLocation(dsn)
		if !ok {
			return nil, usageError("unknown database location %q: give sqlserver://, mysql://, mariadb:// or sqlite:", dsn)
		}
		if err != nil {
			return nil, usageError("%v", err)
		}
		v, err := sqlite.Ping(ctx, p)
		if err != nil {
			return nil, err
		}
		res.Location, res.Engine, res.Version = "sqlite:"+p, "sqlite", v
	}
	res.Took = time.Since(start).Round(time.Millisecond).String()
	return res, nil
}

// sqlServerDSN returns the location without password and the connection
// string for go-mssqldb, with password (when not in the URL) from env.
func sqlServerDSN(dsn, password string) (loc, conn string, err error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "sqlserver" || u.Host == "" {
		return "", "", fmt.Errorf("bad SQL Server location %q: write sqlserver://user@host:1433?database=NAME", redactURL(dsn))
	}
	user := ""
	if u.User != nil {
		user = u.User.Username()
		if p, ok := u.User.Password(); ok && p != "" {
			password = p
		}
	}
	safe := *u
	safe.User = nil
	if user != "" {
		safe.User = url.User(user)
	}
	if password != "" {
		u.User = url.UserPassword(user, password)
	}
	return safe.String(), u.String(), nil
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return s
}
