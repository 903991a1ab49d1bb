package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/einvault/einvault/internal/archiver"
	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/restorer"
	"github.com/einvault/einvault/internal/source"
	"github.com/einvault/einvault/internal/source/pg"
	"github.com/spf13/cobra"
)

// runBackupPG is 'einvault backup pg://...': a logical backup.
func runBackupPG(ctx context.Context, g *Globals, o backupOptions, dsn string) error {
	d, err := pg.ParseDSN(dsn)
	if err != nil {
		return usageError("%v", err)
	}
	what := "PostgreSQL backup of " + d.URI
	// The dump starts before the repository is opened: the server's
	// first work overlaps with deriving the key.
	dump, err := pg.StartDump(ctx, pg.DumpOptions{DSN: d, BinDir: o.pgBin, Checksums: o.pgChecksums, Logger: g.Logger()})
	if err != nil {
		return fmt.Errorf("%s: %w (no snapshot was written)", what, err)
	}
	defer dump.Close()
	return runStreamBackup(ctx, g, o, what, archiver.Streams{Source: pg.SourceLogical, Paths: []string{d.URI}, Produce: dump.Produce})
}

// runStreamBackup stores a source's streams as a snapshot, with the same
// copy handling as a file backup (pre-flight, fail-over, sync after).
// PostgreSQL dumps and base backups are compressed at zstd's fastest
// level (see repo.UseFastCompression).
func runStreamBackup(ctx context.Context, g *Globals, o backupOptions, what string, s archiver.Streams) error {
	t, err := openBackupTarget(ctx, g)
	if err != nil {
		return err
	}
	defer t.close()
	if s.Source == pg.SourceLogical || s.Source == pg.SourceBase {
		if err := t.r.UseFastCompression(); err != nil {
			return err
		}
	}
	if !o.noSync {
		t.streamToCopies(ctx, g)
	}
	opts := archiver.Options{Host: o.host, Tags: splitTags(o.tags), Program: "einvault " + Version, Logger: g.Logger()}
	if opts.Host == "" {
		opts.Host = Hostname()
	}
	if u, err := user.Current(); err == nil {
		opts.Username = u.Username
	}
	res, err := archiver.New(t.r, opts).BackupStreams(ctx, s)
	if err != nil {
		return fmt.Errorf("%s: %w (no snapshot was written)", what, err)
	}
	rerr := reportBackup(g, res)
	if err := t.finish(ctx, g, o.noSync); err != nil {
		return err
	}
	return rerr
}

func splitTags(in []string) []string {
	var tags []string
	for _, t := range in {
		for _, x := range strings.Split(t, ",") {
			if x = strings.TrimSpace(x); x != "" {
				tags = append(tags, x)
			}
		}
	}
	return tags
}

func newPGCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pg",
		Short: "PostgreSQL: restore logical backups, base backups, recovery window and point-in-time recovery",
		Long: `PostgreSQL support. Logical backups are taken with
'einvault backup pg://user@host:port/db' and restored with 'pg restore-dump'.
Physical backups ('pg basebackup') plus WAL archiving ('wal-push' as
archive_command) allow point-in-time recovery ('pg restore') anywhere in the
window 'pg window' shows. See docs/DATABASES.md.

For archive_command use the small einvault-wal binary installed beside
einvault (same arguments and code as 'einvault wal-push', but it starts in
a few milliseconds; PostgreSQL starts one process per WAL segment):

  archive_command = 'einvault-wal -r /backup/repo wal-push --key-cache /var/lib/postgresql/.einvault-keys %p'

'einvault -r ... wal-push ...' does the same, only slower to start.

Passwords: give them in PGPASSWORD or ~/.pgpass (or, discouraged, in the
connection string); they are passed to PostgreSQL programs in the
environment and never stored in the repository.`,
	}
	cmd.AddCommand(newPGRestoreDumpCmd(g), newPGBaseBackupCmd(g), newPGWindowCmd(g), newPGRestoreCmd(g))
	return cmd
}

func newPGRestoreDumpCmd(g *Globals) *cobra.Command {
	var o pg.RestoreDumpOptions
	var filter SnapshotFilterFlags
	var target string
	cmd := &cobra.Command{
		Use:   "restore-dump SNAPSHOT --to pg://user@host:port/NEWDB",
		Short: "Restore a logical PostgreSQL backup into a new database and verify it",
		Long: `Recreate the database of a logical backup under a new name: CREATE
DATABASE, pg_restore --jobs N, then verification: every table recorded at
backup time must be present with the same row count (and checksum when the
backup recorded checksums), and every B-tree index must pass amcheck where
the extension is available.

pg_restore needs a seekable file to run parallel jobs, so the dump is first
written to a temporary file in --temp-dir (default: the system temp dir;
make sure it has room for the dump) and removed afterwards.

Exit codes: 0 verified, 5 restored but verification failed, 1 error.`,
		Example: `  einvault pg restore-dump latest --to pg://postgres@localhost/einvoice_check
  einvault pg restore-dump 4f2a9c1e --to pg://postgres@db2/einvoice_0301 --jobs 4 --json`,
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			d, err := pg.ParseDSN(target)
			if err != nil {
				return usageError("--to: %v", err)
			}
			o.Target = d
			r, err := g.OpenRepoForRestore(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			f := filter.Filter()
			snap, _, err := g.FindSnapshot(ctx, r, args[0], f)
			if err != nil {
				return err
			}
			meta, ok, err := source.FromMeta(snap.Meta)
			if err != nil {
				return err
			}
			if !ok || meta.Engine != "postgresql" {
				return usageError("snapshot %s is not a PostgreSQL logical backup", snap.ID.Short())
			}
			o.Meta = meta
			o.Logger = g.Logger()
			rs := restorer.New(r, restorer.Options{})
			o.WriteStream = func(ctx context.Context, name string, w io.Writer) error {
				return rs.Dump(ctx, snap, "/"+name, w)
			}
			o.StagedNotice = func(p string) {
				g.Warnf("staging the dump in %s (pg_restore --jobs needs a seekable file)\n", p)
			}
			res, err := pg.RestoreDump(ctx, o)
			if err != nil {
				return err
			}
			return reportVerification(g, res, res.Verification, fmt.Sprintf("Restored snapshot %s into database %s in %s.", snap.ID.Short(), res.Database, formatDuration(res.Seconds)))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&target, "to", "", "the NEW database to create, as pg://user@host:port/NEWDB (required)")
	fl.IntVarP(&o.Jobs, "jobs", "j", 2, "parallel pg_restore jobs")
	fl.StringVar(&o.TempDir, "temp-dir", "", "directory to stage the dump in (default: system temp dir)")
	fl.StringVar(&o.BinDir, "pg-bin", "", "directory of pg_restore and psql (default: newest installed)")
	fl.BoolVar(&o.NoOwner, "no-owner", false, "do not restore ownership and privileges (objects belong to the connecting user)")
	fl.BoolVar(&o.WithGlobals, "with-globals", false, "first apply the backed-up roles and tablespaces (globals.sql)")
	fl.BoolVar(&o.Checksums, "checksums", false, "also compare row checksums (when the backup recorded them with --pg-checksums)")
	fl.StringArrayVar(&filter.Hosts, "host", nil, "for \"latest\": only snapshots of this host (repeat)")
	fl.StringArrayVar(&filter.Tags, "tag", nil, "for \"latest\": only snapshots with these tags (repeat)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// reportVerification prints a database restore's result and verification
// and returns exit code 5 when a check failed.
func reportVerification(g *Globals, result any, v *source.Verification, headline string) error {
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
			if c.Want != "" || c.Got != "" {
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

func newPGBaseBackupCmd(g *Globals) *cobra.Command {
	var o backupOptions
	cmd := &cobra.Command{
		Use:   "basebackup pg://user@host:port/db",
		Short: "Take a physical base backup (pg_basebackup) into the repository",
		Long: `Stream 'pg_basebackup -D - -Ft -X none' into the repository as one
snapshot (base.tar), chunked and deduplicated: a second base backup of a
mostly unchanged cluster adds little. The start and stop LSN, timeline and
backup_label time are recorded. WAL is not included: archiving with
'einvault wal-push' must be on (the command refuses otherwise), and
together they allow point-in-time recovery ('einvault pg restore').
The user needs the REPLICATION privilege; the database in the connection
string is only used to read settings.`,
		Example: `  einvault pg basebackup pg://postgres@/postgres?host=/var/run/postgresql`,
		Args:    argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			d, err := pg.ParseDSN(args[0])
			if err != nil {
				return usageError("%v", err)
			}
			return runStreamBackup(ctx, g, o, "PostgreSQL base backup of "+d.URI, archiver.Streams{Source: pg.SourceBase, Paths: []string{d.URI},
				Produce: pg.BaseBackupStreams(pg.BaseOptions{DSN: d, BinDir: o.pgBin, Logger: g.Logger()})})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.tags, "tag", nil, "add a tag (repeat, or comma-separated)")
	f.StringVar(&o.host, "host", "", "record this host name instead of the machine's")
	f.StringVar(&o.pgBin, "pg-bin", "", "directory of pg_basebackup (default: newest installed)")
	f.BoolVar(&o.noSync, "no-sync", false, "do not bring the repository's copies up to date afterwards")
	return cmd
}

// loadWindow computes the recovery window from the repository.
func loadWindow(ctx context.Context, g *Globals, r *repo.Repository, binDir string) (*pg.Window, *pg.WALStore, error) {
	snaps, err := r.Snapshots(ctx)
	if err != nil && len(snaps) == 0 {
		return nil, nil, err
	}
	var bases []pg.BaseBackup
	for _, s := range snaps {
		if b, ok := pg.BaseBackupFromSnapshot(s); ok {
			bases = append(bases, b)
		}
	}
	st := pg.NewWALStore(r)
	names, err := st.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	pg.RefineStops(ctx, st, bases)
	w := pg.ComputeWindow(bases, names)
	if err := w.FillEndTimes(ctx, st, binDir); err != nil {
		return nil, nil, fmt.Errorf("find the last transaction in the archived WAL: %w", err)
	}
	return w, st, nil
}

func printWindow(g *Globals, w *pg.Window) {
	if w.Empty() {
		g.Printf("Recovery window: empty (no base backup with complete archived WAL; %d base backup(s), %d WAL segment(s)).\n", len(w.BaseBackups), w.Segments)
	} else {
		g.Printf("Recovery window (%d base backup(s), %d WAL segment(s)):\n", len(w.BaseBackups), w.Segments)
		for _, r := range w.Ranges {
			g.Printf("  from %s (LSN %s)\n    to %s (LSN %s), timeline %d, base backups %d\n",
				r.FromTime.UTC().Format("2006-01-02 15:04:05.000000Z07:00"), r.FromLSN, r.ToTime.UTC().Format("2006-01-02 15:04:05.000000Z07:00"), r.ToLSN, r.Timeline, len(r.Bases))
		}
	}
	for _, u := range w.Unusable {
		g.Warnf("unusable base backup %s\n", u)
	}
}

func newPGWindowCmd(g *Globals) *cobra.Command {
	var binDir, keyCache string
	cmd := &cobra.Command{
		Use:   "window",
		Short: "Show the point-in-time recovery window",
		Long: `Show what 'einvault pg restore' can reach: from the end of the oldest
base backup whose WAL is archived without gaps to the last transaction in
the newest archived WAL. A gap in the archived WAL splits the window into
ranges. The last transaction time is read from the WAL with pg_waldump.`,
		Example: `  einvault pg window
  einvault pg window --json | jq '.ranges[-1].to_time'`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.openRepoWithKeyCache(ctx, keyCache)
			if err != nil {
				return err
			}
			defer r.Close()
			w, _, err := loadWindow(ctx, g, r, binDir)
			if err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(w)
			}
			printWindow(g, w)
			return nil
		},
	}
	cmd.Flags().StringVar(&binDir, "pg-bin", "", "directory of pg_waldump (default: newest installed)")
	cmd.Flags().StringVar(&keyCache, "key-cache", "", "open the repository with a key cache instead of the password")
	return cmd
}

type pgRestoreOptions struct {
	toTime, toLSN, pgdata, socketDir, pgUser, runAs, binDir, keyCache string
	latest, stop                                                      bool
	port                                                              int
	timeout                                                           time.Duration
}

func newPGRestoreCmd(g *Globals) *cobra.Command {
	var o pgRestoreOptions
	cmd := &cobra.Command{
		Use:   "restore (--to-time TIME | --to-lsn LSN | --latest) --pgdata DIR",
		Short: "Point-in-time recovery into a new data directory",
		Long: `Recover the cluster to a point in time into a NEW data directory.

First the recovery window is computed and shown; a target outside it is
refused (exit code 1) rather than silently recovered to another point. Then
the data directory is built from the newest base backup that ended before
the target, recovery is configured (restore_command = einvault wal-fetch,
recovery_target_*, recovery_target_action = promote, recovery.signal), the
server is started, and einvault waits for promotion. The recovered server is
verified (it answers, the recovery point is not after the target, amcheck in
every database where available) and the achieved recovery point
(pg_last_xact_replay_timestamp, last replayed LSN) and the time taken (RTO)
are reported: the RTO to service (until the promoted server first answered)
and the total including verification (--json: rto_to_service_seconds,
rto_seconds, base_restore_seconds, verify_seconds).

The recovered cluster has archive_mode off so it never archives into the
original's WAL archive; turn it on (with a new repository or after retiring
the original) once it replaces the original. Unless --stop is given the
server keeps running. As root, the server runs as --run-as (default
postgres). wal-fetch uses --key-cache, or a temporary key cache readable
only by that user and removed when recovery ends.

Exit codes: 0 recovered and verified, 5 recovered but verification failed,
1 refused or failed.`,
		Example: `  einvault pg restore --to-time "2026-11-20 14:05:00+07" --pgdata /srv/pg-pitr --port 5433
  einvault pg restore --to-lsn 0/5A000028 --pgdata /srv/pg-pitr --json
  einvault pg restore --latest --pgdata /var/lib/postgresql/15/main`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPGRestore(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.toTime, "to-time", "", "recover to this time (with a zone: \"2026-11-20 14:05:00+07\")")
	f.StringVar(&o.toLSN, "to-lsn", "", "recover to this WAL position (e.g. 0/5A000028)")
	f.BoolVar(&o.latest, "latest", false, "recover to the end of the archived WAL")
	f.StringVar(&o.pgdata, "pgdata", "", "new (or empty) data directory to build (required)")
	f.IntVar(&o.port, "port", 0, "port for the recovered server (default: the cluster's own)")
	f.StringVar(&o.socketDir, "socket-dir", "", "unix socket directory for the recovered server (default: the cluster's own; einvault connects through it)")
	f.StringVar(&o.pgUser, "pg-user", "postgres", "database superuser to verify as")
	f.StringVar(&o.runAs, "run-as", "", "OS user to run the server as (when running as root; default postgres)")
	f.StringVar(&o.binDir, "pg-bin", "", "directory of pg_ctl, pg_waldump (default: newest installed)")
	f.StringVar(&o.keyCache, "key-cache", "", "key cache for restore_command (default: a temporary one)")
	f.BoolVar(&o.stop, "stop", false, "stop the recovered server after verification")
	f.DurationVar(&o.timeout, "timeout", time.Hour, "give up when recovery takes longer")
	_ = cmd.MarkFlagRequired("pgdata")
	return cmd
}

func runPGRestore(ctx context.Context, g *Globals, o pgRestoreOptions) error {
	start := time.Now()
	var target pg.Target
	n := 0
	if o.toTime != "" {
		t, err := pg.ParseTargetTime(o.toTime)
		if err != nil {
			return usageError("--to-time: %v", err)
		}
		target.Time = &t
		n++
	}
	if o.toLSN != "" {
		l, err := pg.ParseLSN(o.toLSN)
		if err != nil {
			return usageError("--to-lsn: %v", err)
		}
		target.LSN = &l
		n++
	}
	if o.latest {
		target.Latest = true
		n++
	}
	if n != 1 {
		return usageError("give exactly one of --to-time, --to-lsn, --latest")
	}
	pgdata, err := filepath.Abs(o.pgdata)
	if err != nil {
		return usageError("--pgdata: %v", err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		name := o.runAs
		if name == "" {
			name = "postgres"
		}
		u, err := user.Lookup(name)
		if err != nil {
			return usageError("PostgreSQL refuses to run as root and --run-as user %q does not exist: %v", name, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	loc, err := g.repoLocation()
	if err != nil {
		return err
	}
	if !strings.Contains(loc, ":") || filepath.IsAbs(loc) {
		if loc, err = filepath.Abs(loc); err != nil {
			return err
		}
	}
	r, err := g.OpenRepoForRestore(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	w, _, err := loadWindow(ctx, g, r, o.binDir)
	if err != nil {
		return err
	}
	if !g.JSON {
		printWindow(g, w)
	}
	if _, _, err := w.Choose(target); err != nil {
		return err
	}
	keyCache := o.keyCache
	if keyCache == "" {
		dir, err := os.MkdirTemp("", "einvault-pitr-keys-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		keyCache = filepath.Join(dir, "keys")
		data, err := r.ExportKeyCache()
		if err != nil {
			return err
		}
		if err := os.WriteFile(keyCache, data, 0o600); err != nil {
			return err
		}
		if cred != nil {
			for _, p := range []string{dir, keyCache} {
				if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
					return err
				}
			}
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// restore_command runs once per segment: the small einvault-wal
	// beside this binary starts faster; the same wal-fetch otherwise.
	if small := filepath.Join(filepath.Dir(self), "einvault-wal"); isExecutable(small) {
		self = small
	}
	// WAL is prefetched into a spool next to the new data directory (same
	// file system), which restore_command serves from.
	if err := os.MkdirAll(filepath.Dir(pgdata), 0o755); err != nil {
		return err
	}
	spool, err := os.MkdirTemp(filepath.Dir(pgdata), ".einvault-wal-prefetch-")
	if err != nil {
		return fmt.Errorf("create the WAL prefetch directory: %w", err)
	}
	defer os.RemoveAll(spool)
	var chown func(string) error
	if cred != nil {
		chown = func(p string) error { return os.Chown(p, int(cred.Uid), int(cred.Gid)) }
		if err := chown(spool); err != nil {
			return err
		}
	}
	st := pg.NewWALStore(r)
	prefetch := &pg.Prefetcher{Dir: spool, Fetch: st.Fetch, Chown: chown, Logger: g.Logger()}
	restoreCmd := strings.Join([]string{shellQuote(self), "-r", shellQuote(loc), "wal-fetch", "--key-cache", shellQuote(keyCache),
		"--spool", shellQuote(spool), "%f", "%p"}, " ")
	rs := restorer.New(r, restorer.Options{})
	snaps, err := r.Snapshots(ctx)
	if err != nil && len(snaps) == 0 {
		return err
	}
	g.Printf("Recovering to %s into %s...\n", target, pgdata)
	res, err := pg.Recover(ctx, pg.RecoverOptions{Target: target, Window: w, PGData: pgdata, Port: o.port, SocketDir: o.socketDir, User: o.pgUser,
		BinDir: o.binDir, RunAs: cred, RestoreCommand: restoreCmd, Prefetch: prefetch, Stop: o.stop, Timeout: o.timeout, Logger: g.Logger(), Start: start,
		WriteBase: func(ctx context.Context, id string, wr io.Writer) error {
			for _, s := range snaps {
				if s.ID.String() == id {
					return rs.Dump(ctx, s, "/base.tar", wr)
				}
			}
			return fmt.Errorf("base backup snapshot %s vanished", id)
		}})
	if err != nil {
		return err
	}
	at := "no transaction replayed"
	if res.RecoveredToTime != nil {
		at = res.RecoveredToTime.Format("2006-01-02 15:04:05.000000Z07:00")
	}
	state := "stopped"
	if res.ServerRunning {
		state = "running"
	}
	return reportVerification(g, res, res.Verification, fmt.Sprintf("Recovered to %s (last transaction %s, LSN %s, timeline %d) from base backup %s: answering after %s (RTO to service), verified after %s; server %s.",
		target, at, res.RecoveredToLSN, res.Timeline, res.BaseBackup[:8], formatDuration(res.ServiceSeconds), formatDuration(res.Seconds), state))
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:=@%+", c))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// isExecutable reports whether path is a regular file someone may execute.
func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}
