package cli

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/einvault/einvault/internal/archiver"
	"github.com/einvault/einvault/internal/catalog"
	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/source/pg"
	"github.com/spf13/cobra"
)

type backupOptions struct {
	tags          []string
	host          string
	excludes      []string
	excludeFiles  []string
	oneFileSystem bool
	parent        string
	full          bool
	differential  bool
	stdin         bool
	stdinName     string
	noSync        bool
	db            dbBackupFlags
	pgChecksums   bool
	pgBin         string
	noCatalog     bool
}

func newBackupCmd(g *Globals) *cobra.Command {
	var o backupOptions
	cmd := &cobra.Command{
		Use:   "backup [flags] PATH...",
		Short: "Back up files and directories (or standard input) into a new snapshot",
		Long: `Back up files and directories into a new snapshot.

Kinds: by default the backup is incremental: files whose size, mtime, ctime
and inode match the latest snapshot of the same paths and host are not read
again. --differential compares with the latest full backup instead, --full
reads everything. Every snapshot restores on its own.

When the repository has copies ('einvault copies'), every destination is
checked first (reachable, writable, free space, clock); if this repository
fails, the backup goes to the next healthy copy. Afterwards every reachable
copy is brought up to date (--no-sync skips that). A failing copy makes the
result degraded: exit code 4, one line per copy.

Invoices: every file read is recognised by content (Vietnamese, Chinese and
EU e-invoice XML, also inside ZIP and OFD files) and recorded in the
snapshot's invoice catalog, stored encrypted in the repository; files not
read because they are unchanged keep their entries from the parent's
catalog. 'einvault invoices' queries it; --no-catalog skips it. Invoices the
parser refuses (malformed or hostile XML) are listed in the catalog and never
stop the backup. Signatures are checked later by 'einvault invoices verify'.

Files that cannot be read are listed at the end; the backup still completes
and exits with code 3.

Databases and programs (docs/DATABASES.md): give one location instead of
paths — mysql://user@host:port/db or mariadb://... (mariadb-dump streamed;
password from MYSQL_PWD or ~/.my.cnf), sqlite:/path/to/db (a consistent
copy of the live database) — or --stdin-from-command "PROGRAM ARGS" to store
a program's output. These fail, with no snapshot, when the dump or program
fails; restore them with 'einvault db restore'.`,
		Example: `  einvault backup /srv/invoices /etc/einvoice --tag invoices
  einvault backup --full /srv/invoices
  einvault backup --exclude '*.tmp' --exclude-file /etc/einvault/excludes /srv
  pg_dump -Fc einvoice | einvault backup --stdin --stdin-filename einvoice.dump
  einvault backup pg://backup@db1:5432/einvoice          # PostgreSQL logical backup (see 'einvault pg')
  einvault backup mysql://backup@db1:3306/einvoice       # MariaDB/MySQL (see 'einvault db')
  einvault backup sqlite:/srv/app/einvoice.sqlite          # live SQLite database
  einvault backup --stdin-from-command "mysqldump --all-databases" --stdin-filename all.sql`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBackup(cmd.Context(), g, o, args)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.tags, "tag", nil, "add a tag (repeat, or comma-separated)")
	f.StringVar(&o.host, "host", "", "record this host name instead of the machine's")
	f.StringArrayVarP(&o.excludes, "exclude", "e", nil, "exclude paths matching a pattern (repeat)")
	f.StringArrayVar(&o.excludeFiles, "exclude-file", nil, "read exclude patterns from a file (repeat)")
	f.BoolVarP(&o.oneFileSystem, "one-file-system", "x", false, "do not cross file-system boundaries")
	f.StringVar(&o.parent, "parent", "", "compare with this snapshot instead of the automatic choice")
	f.BoolVar(&o.full, "full", false, "read every file (full backup)")
	f.BoolVar(&o.differential, "differential", false, "compare with the latest full backup")
	f.BoolVar(&o.stdin, "stdin", false, "back up standard input")
	f.StringVar(&o.stdinName, "stdin-filename", "stdin", "file name for --stdin")
	f.BoolVar(&o.noSync, "no-sync", false, "do not bring the repository's copies up to date afterwards")
	addDBBackupFlags(f, &o.db)
	f.BoolVar(&o.pgChecksums, "pg-checksums", false, "PostgreSQL: also record an md5 of each table's rows (reads every row twice)")
	f.StringVar(&o.pgBin, "pg-bin", "", "PostgreSQL: directory of pg_dump and friends (default: newest installed)")
	f.BoolVar(&o.noCatalog, "no-catalog", false, "do not recognise invoices (no invoice catalog for this snapshot)")
	return cmd
}

func runBackup(ctx context.Context, g *Globals, o backupOptions, args []string) error {
	if len(args) == 1 && !o.stdin && pg.IsDSN(args[0]) {
		return runBackupPG(ctx, g, o, args[0]) // pg://, postgres://, postgresql:// (cmd_pg.go)
	}
	if handled, err := runBackupDB(ctx, g, o, args); handled {
		return err // mysql://, mariadb://, sqlite:, --stdin-from-command (cmd_db.go)
	}
	switch {
	case o.full && o.differential:
		return usageError("--full and --differential exclude each other")
	case o.stdin && len(args) > 0:
		return usageError("--stdin takes no paths")
	case !o.stdin && len(args) == 0:
		return usageError("nothing to back up: give at least one PATH, or --stdin")
	case o.parent != "" && (o.full || o.differential):
		return usageError("--parent cannot be combined with --full or --differential")
	}
	var patterns []string
	patterns = append(patterns, o.excludes...)
	for _, f := range o.excludeFiles {
		p, err := archiver.ReadExcludeFile(f)
		if err != nil {
			return usageError("%v", err)
		}
		patterns = append(patterns, p...)
	}
	excl, err := archiver.NewExcluder(patterns)
	if err != nil {
		return usageError("%v", err)
	}
	t, err := openBackupTarget(ctx, g)
	if err != nil {
		return err
	}
	defer t.close()
	if !o.noSync {
		t.streamToCopies(ctx, g)
	}
	r := t.r

	host := o.host
	if host == "" {
		host = Hostname()
	}
	opts := archiver.Options{Excluder: excl, OneFileSystem: o.oneFileSystem, Host: host, Tags: splitTags(o.tags), Program: "einvault " + Version, Logger: g.Logger()}
	if u, err := user.Current(); err == nil {
		opts.Username = u.Username
	}
	var res *archiver.Result
	var builder *catalog.Builder
	if o.stdin {
		res, err = archiver.New(r, opts).BackupReader(ctx, g.Stdin, o.stdinName)
	} else {
		paths, err := absPaths(args)
		if err != nil {
			return usageError("%v", err)
		}
		if err := chooseParent(ctx, g, r, o, host, paths, &opts); err != nil {
			return err
		}
		if !o.noCatalog {
			builder = newCatalogBuilder(ctx, g, r, opts.Parent)
			defer builder.Close()
			opts.Observer = builder
		}
		bar := g.newByteBar("scanning")
		if bar != nil || (g.JSON && !g.Quiet) {
			opts.Progress = backupProgress{g: g, bar: bar, start: time.Now()}
		}
		res, err = archiver.New(r, opts).Backup(ctx, args)
		bar.finish()
		if err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	var cs *catalog.BuildStats
	if builder != nil {
		st := builder.Stats()
		cs = &st
	}
	rerr := reportBackupCatalog(g, res, cs)
	if err := t.finish(ctx, g, o.noSync); err != nil {
		return err
	}
	return rerr
}

// backupTarget is the repository a backup writes to: opened, with the
// copies' pre-flight done (and fail-over to a healthy copy applied), the
// backup lock held and the index loaded.
type backupTarget struct {
	r      *repo.Repository
	bc     *backupCopies
	unlock func()
	closes []func()
}

func openBackupTarget(ctx context.Context, g *Globals) (_ *backupTarget, err error) {
	r, err := g.OpenRepo(ctx)
	if err != nil {
		return nil, err
	}
	t := &backupTarget{r: r, unlock: func() {}, closes: []func(){func() { r.Close() }}}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	// With copies: pre-flight every destination, fail over to the next
	// healthy copy when this one fails, sync afterwards.
	if t.bc, err = prepareBackupCopies(ctx, g, r); err != nil {
		return nil, err
	}
	if t.bc != nil {
		t.closes = append(t.closes, t.bc.cs.close)
		if t.bc.writer != nil {
			w := t.bc.writer
			t.closes = append(t.closes, func() { w.Close() })
			t.r = w
		}
	}
	unlock, err := announceBackup(ctx, t.r)
	if err != nil {
		return nil, err
	}
	t.unlock = sync.OnceFunc(unlock)
	if err := t.r.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("load index: %w (run 'einvault check')", err)
	}
	return t, nil
}

// finish releases the lock and brings the copies up to date.
func (t *backupTarget) finish(ctx context.Context, g *Globals, noSync bool) error {
	t.unlock()
	if t.bc == nil {
		return nil
	}
	return t.bc.finish(ctx, g, noSync)
}

// close releases the lock and closes what openBackupTarget opened, last first.
func (t *backupTarget) close() {
	t.unlock()
	if t.bc != nil && t.bc.streamer != nil {
		t.bc.streamer.Abort()
	}
	for i := len(t.closes) - 1; i >= 0; i-- {
		t.closes[i]()
	}
}

func chooseParent(ctx context.Context, g *Globals, r *repo.Repository, o backupOptions, host string, paths []string, opts *archiver.Options) error {
	if o.full {
		opts.Kind = repo.KindFull
		return nil
	}
	all, err := r.Snapshots(ctx)
	if err != nil && len(all) == 0 {
		return err
	}
	if o.parent != "" {
		s, err := repo.FindSnapshot(all, o.parent, repo.SnapshotFilter{})
		if err != nil {
			return err
		}
		opts.Parent, opts.Kind = s, repo.KindIncremental
		return nil
	}
	f := repo.SnapshotFilter{Hosts: []string{host}, Paths: paths}
	for i := len(all) - 1; i >= 0; i-- {
		s := all[i]
		if !f.Match(s) || s.Source != "files" {
			continue
		}
		if o.differential && s.Kind != repo.KindFull {
			continue
		}
		opts.Parent = s
		opts.Kind = repo.KindIncremental
		if o.differential {
			opts.Kind = repo.KindDifferential
		}
		return nil
	}
	opts.Kind = repo.KindFull // no parent yet
	if o.differential {
		g.Warnf("no full backup of these paths yet: this backup is a full one\n")
	}
	return nil
}

type backupProgress struct {
	g     *Globals
	bar   *byteBar
	start time.Time
}

func (p backupProgress) Update(c archiver.Counters) {
	if p.g.JSON && !p.g.Quiet {
		_ = writeJSONLine(p.g.Stderr, map[string]any{"message_type": "status", "seconds_elapsed": time.Since(p.start).Seconds(),
			"total_files": c.TotalFiles, "total_bytes": c.TotalBytes, "files_done": c.Files, "bytes_done": c.Bytes,
			"bytes_read": c.BytesRead, "bytes_added": c.BytesAdded, "errors": c.Errors, "scan_finished": c.ScanDone})
		return
	}
	total := int64(-1)
	if c.ScanDone {
		total = int64(c.TotalBytes)
	}
	p.bar.set(int64(c.Bytes), total, fmt.Sprintf("%d/%d files", c.Files, c.TotalFiles))
}

func reportBackup(g *Globals, res *archiver.Result) error { return reportBackupCatalog(g, res, nil) }

// reportBackupCatalog prints the summary of a backup and, when it made
// one, of its invoice catalog.
func reportBackupCatalog(g *Globals, res *archiver.Result, cat *catalog.BuildStats) error {
	s := res.Snapshot
	sum := s.Summary
	if g.op != nil {
		g.op.kind, g.op.files, g.op.bytesRead, g.op.bytesAdded = s.Kind, int64(sum.TotalFiles), int64(sum.BytesRead), int64(sum.BytesAdded)
		g.op.snapshot, g.op.source = s.ID.String(), strings.Join(s.Paths, " ")
		g.op.packs = res.NewPacks
	}
	if g.JSON {
		out := map[string]any{"message_type": "summary", "snapshot_id": s.ID.String(), "kind": s.Kind, "summary": sum, "paths": s.Paths,
			"unreadable": res.Unreadable}
		if s.Parent != nil {
			out["parent"] = s.Parent.String()
		}
		if cat != nil {
			out["catalog"] = cat
		}
		if err := g.PrintJSON(out); err != nil {
			return err
		}
	} else {
		parent := ""
		if s.Parent != nil {
			parent = ", parent " + s.Parent.Short()
		}
		g.Printf("Backup finished in %s (%s%s): %d files (%d new, %d changed, %d unchanged), %s read, %s added. Snapshot %s saved.\n",
			formatDuration(sum.Duration), s.Kind, parent, sum.TotalFiles, sum.FilesNew, sum.FilesChanged, sum.FilesUnchanged,
			formatBytes(sum.BytesRead), formatBytes(sum.BytesAdded), s.ID.Short())
		if cat != nil {
			g.Printf("Invoice catalog: %d invoices (%d carried over from the parent), %d file(s) refused by the parser, %s parsing.\n",
				cat.Invoices, cat.Reused, cat.Rejected, cat.ParseTime.Round(time.Millisecond))
		}
		for _, u := range res.Unreadable {
			g.Warnf("unreadable: %s: %s\n", u.Path, u.Err)
		}
	}
	if len(res.Unreadable) > 0 {
		return WithExit(ExitPartial, fmt.Errorf("%w: %d source file(s) could not be read (listed above); the snapshot holds everything else", errPartial, len(res.Unreadable)))
	}
	return nil
}

var errPartial = errors.New("backup incomplete")
