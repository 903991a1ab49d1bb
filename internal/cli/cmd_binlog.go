package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/einvault/einvault/internal/archiver"
	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/source"
	"github.com/einvault/einvault/internal/source/mysql"
	"github.com/einvault/einvault/internal/source/pg"
)

func newDBBinlogArchiveCmd(g *Globals) *cobra.Command {
	var o backupOptions
	var bin, defaults string
	var noRotate bool
	cmd := &cobra.Command{
		Use:   "binlog-archive DSN",
		Short: "Archive a MariaDB/MySQL server's closed binary logs (for point-in-time restores)",
		Long: `Archive the binary logs of a MariaDB/MySQL server into the repository, so
that 'einvault db restore --to-time' can replay the transactions committed
after a dump.

Each run closes the server's current binary log when it holds any
transaction (FLUSH BINARY LOGS; --no-rotate leaves it open), fetches every
closed log not archived yet with mariadb-binlog --read-from-remote-server,
checks that each is complete, and stores them in one snapshot (tag
"binlog"). Run it every few minutes: the interval is the RPO of the
database between dumps. Nothing new: no snapshot, exit 0.

The server needs binary logging on (log_bin, server_id, binlog_format=ROW)
and the user the REPLICATION SLAVE (REPLICATION REPLICA) and RELOAD
privileges. Dumps taken with 'einvault backup mysql://...' record the
binary log position they start from.

Exit codes: 0 archived (or nothing new), 1 error.`,
		Example: `  einvault db binlog-archive mysql://backup@db1:3306/
  einvault db binlog-archive "mysql://root@localhost/?socket=/run/mysqld/mysqld.sock" --json
  # crontab: every 5 minutes
  */5 * * * * einvault db binlog-archive mysql://backup@db1:3306/`,
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			d, err := mysql.ParseDSN(args[0], true)
			if err != nil {
				return usageError("%v", err)
			}
			if err := d.FillCredentials(g.Getenv, defaults); err != nil {
				return err
			}
			return runBinlogArchive(ctx, g, o, d, bin, !noRotate)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&noRotate, "no-rotate", false, "do not close the current binary log: archive only logs the server closed itself")
	f.StringVar(&bin, "mysql-bin", "", "directory of mariadb-binlog/mysqlbinlog (default: PATH)")
	f.StringVar(&defaults, "mysql-defaults-file", "", "option file with [client] user/password (default ~/.my.cnf)")
	f.StringVar(&o.host, "host", "", "host name recorded in the snapshot (default: this machine)")
	f.StringArrayVar(&o.tags, "tag", nil, "extra tags for the snapshot (repeat)")
	f.BoolVar(&o.noSync, "no-sync", false, "do not bring the repository's copies up to date afterwards")
	return cmd
}

// archivedBinlogs lists the binary logs archived in the repository for
// server (a mysql.ServerKey), with the snapshot holding each.
func archivedBinlogs(ctx context.Context, r *repo.Repository, server string) ([]mysql.BinlogFile, map[string]*repo.Snapshot, error) {
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return nil, nil, err
	}
	var files []mysql.BinlogFile
	holder := map[string]*repo.Snapshot{}
	for _, s := range snaps {
		m, ok, err := source.FromMeta(s.Meta)
		if err != nil || !ok || m.Engine != mysql.EngineBinlog || mysql.ServerKey(m.Location) != server {
			continue
		}
		fs, err := mysql.ArchivedBinlogs(m)
		if err != nil {
			return nil, nil, fmt.Errorf("snapshot %s: %w", s.ID.Short(), err)
		}
		for _, f := range fs {
			files = append(files, f)
			holder[binlogKey(f.Name, f.First)] = s
		}
	}
	return files, holder, nil
}

func binlogKey(name string, first time.Time) string {
	return name + "@" + strconv.FormatInt(first.Unix(), 10)
}

func runBinlogArchive(ctx context.Context, g *Globals, o backupOptions, d mysql.DSN, bin string, rotate bool) error {
	server := mysql.ServerKey(d.String())
	r, err := g.OpenRepo(ctx)
	if err != nil {
		return err
	}
	have, _, err := archivedBinlogs(ctx, r, server)
	r.Close()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, f := range have {
		seen[binlogKey(f.Name, f.First)] = true
	}
	dir, err := os.MkdirTemp("", "einvault-binlog-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fb, err := mysql.FetchBinlogs(ctx, mysql.BinlogFetch{DSN: d, BinDir: bin, Dir: dir, Rotate: rotate,
		Archived: func(name string, first time.Time) bool { return seen[binlogKey(name, first)] }})
	if err != nil {
		return err
	}
	if len(fb.Files) == 0 {
		if g.JSON {
			return g.PrintJSON(map[string]any{"server": server, "archived": []mysql.BinlogFile{}, "active": fb.Active})
		}
		g.Printf("Nothing new to archive on %s (the server writes %s).\n", server, fb.Active)
		return nil
	}
	produce := func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
		md := &source.Metadata{Engine: mysql.EngineBinlog, ServerVersion: fb.ServerVersion, Location: server, Extra: map[string]string{}}
		for i, p := range fb.Paths {
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			err = emit(fb.Files[i].Name, f)
			f.Close()
			if err != nil {
				return nil, err
			}
			md.Streams = append(md.Streams, source.Stream{Name: fb.Files[i].Name, Format: "mysql-binlog", Bytes: fb.Files[i].Size})
		}
		b, err := json.Marshal(fb.Files)
		if err != nil {
			return nil, err
		}
		md.Extra[mysql.ExtraBinlogs] = string(b)
		return md.Encode()
	}
	o.tags = append(o.tags, "binlog")
	return runStreamBackup(ctx, g, o, "binary log archive of "+server,
		archiver.Streams{Source: mysql.EngineBinlog, Paths: []string{server}, Produce: produce})
}

// binlogPITR is a MariaDB/MySQL restore to a point in time: the dump,
// then the archived binary logs replayed up to the target.
type binlogPITR struct {
	Restore *mysql.RestoreResult `json:"restore"`
	Window  struct {
		From  time.Time `json:"from"`
		Until time.Time `json:"until"`
		Hole  string    `json:"missing_after,omitempty"`
	} `json:"window"`
	Target       *time.Time           `json:"target_time,omitempty"`
	Replay       *mysql.ReplayResult  `json:"replay"`
	RPO          string               `json:"achieved_point,omitempty"`
	Verification *source.Verification `json:"verification"`
	Seconds      float64              `json:"seconds"`
}

// runBinlogRestore restores dump snapshot snap into d and replays the
// archived binary logs to toTime ("" with latest: everything archived).
func runBinlogRestore(ctx context.Context, g *Globals, r *repo.Repository, snap *repo.Snapshot, meta *source.Metadata, d mysql.DSN, bin, toTime string, latest bool) error {
	start := time.Now()
	var until time.Time
	if toTime != "" {
		t, err := pg.ParseTargetTime(toTime)
		if err != nil {
			return usageError("--to-time: %v", err)
		}
		until = t
	}
	file, posText := meta.Extra[mysql.ExtraBinlogFile], meta.Extra[mysql.ExtraBinlogPos]
	pos, err := strconv.ParseInt(posText, 10, 64)
	if file == "" || err != nil {
		return usageError("snapshot %s records no binary log position (binary logging was off, or the backup user lacked RELOAD): it can be restored only as it is, without --to-time/--latest", snap.ID.Short())
	}
	server := mysql.ServerKey(meta.Location)
	files, holder, err := archivedBinlogs(ctx, r, server)
	if err != nil {
		return err
	}
	chain, err := mysql.BuildChain(files, file, snap.Time)
	if err != nil {
		return WithExit(ExitError, err)
	}
	var out binlogPITR
	out.Window.From, out.Window.Until, out.Window.Hole = snap.Time, chain.Until, chain.Hole
	loc := time.Local
	window := fmt.Sprintf("%s .. %s", snap.Time.In(loc).Format(time.RFC3339), chain.Until.In(loc).Format(time.RFC3339))
	if !g.JSON {
		g.Printf("Recovery window of %s from snapshot %s: %s (%d archived binary logs", meta.Database, snap.ID.Short(), window, len(chain.Files))
		if chain.Hole != "" {
			g.Printf("; %s is missing, later logs cannot be used", chain.Hole)
		}
		g.Printf(").\n")
	}
	if !latest {
		if until.Before(snap.Time) {
			return WithExit(ExitError, fmt.Errorf("target %s is before snapshot %s was taken (window %s): choose an older dump snapshot", until.Format(time.RFC3339), snap.ID.Short(), window))
		}
		if until.After(chain.Until.Add(time.Second)) {
			return WithExit(ExitError, fmt.Errorf("target %s is after the newest archived transaction (window %s): run 'einvault db binlog-archive' first, or choose a time inside the window", until.Format(time.RFC3339), window))
		}
		out.Target = &until
	}
	dir, err := os.MkdirTemp("", "einvault-binlog-restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	paths, err := fetchChain(ctx, r, chain, holder, dir)
	if err != nil {
		return err
	}
	res, err := mysql.Restore(ctx, mysql.RestoreOptions{Meta: meta, Target: d, BinDir: bin, WriteStream: streamWriter(r, snap)})
	if err != nil {
		return err
	}
	out.Restore = res
	if !res.Verification.OK() {
		_ = printDBVerification(g, out, res.Verification, fmt.Sprintf("Restored snapshot %s into %s, but it does not match the snapshot: no binary logs replayed.", snap.ID.Short(), d.Database))
		return WithExit(ExitDamaged, fmt.Errorf("verification of %s failed before the replay: %d check(s) did not pass", d.Database, len(res.Verification.Failed())))
	}
	rep, err := mysql.Replay(ctx, mysql.ReplayOptions{Target: d, SourceDB: meta.Database, BinDir: bin, Paths: paths, StartPos: pos, Until: until})
	if err != nil {
		return err
	}
	out.Replay = rep
	if !rep.Applied.IsZero() {
		out.RPO = rep.Applied.In(loc).Format(time.RFC3339)
	}
	v, err := mysql.CheckTables(ctx, d, meta)
	if err != nil {
		return err
	}
	out.Verification = v
	out.Seconds = time.Since(start).Seconds()
	point := "the end of the archive"
	if out.Target != nil {
		point = out.Target.In(loc).Format(time.RFC3339)
	}
	achieved := "no transaction after the dump"
	if out.RPO != "" {
		achieved = "last transaction replayed at " + out.RPO
	}
	return printDBVerification(g, out, v, fmt.Sprintf("Restored snapshot %s into database %s and replayed %d binary logs to %s (%s) in %s; the dump itself verified (%d checks).",
		snap.ID.Short(), d.Database, rep.Files, point, achieved, formatDuration(out.Seconds), len(res.Verification.Checks)))
}

// fetchChain writes the chain's archived binary logs into dir, in order.
func fetchChain(ctx context.Context, r *repo.Repository, chain *mysql.Chain, holder map[string]*repo.Snapshot, dir string) ([]string, error) {
	var paths []string
	for _, f := range chain.Files {
		s := holder[binlogKey(f.Name, f.First)]
		p := filepath.Join(dir, f.Name)
		w, err := os.Create(p)
		if err != nil {
			return nil, err
		}
		err = streamWriter(r, s)(ctx, f.Name, w)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("read archived binary log %s from snapshot %s: %w", f.Name, s.ID.Short(), err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}
