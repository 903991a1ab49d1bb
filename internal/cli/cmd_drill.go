package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/config"
	"github.com/einvault/einvault/internal/drill"
	"github.com/einvault/einvault/internal/notify"
	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/restorer"
	"github.com/einvault/einvault/internal/source"
	"github.com/einvault/einvault/internal/source/mysql"
	"github.com/einvault/einvault/internal/source/pg"
	"github.com/einvault/einvault/internal/source/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jonboulle/clockwork"
	"github.com/spf13/cobra"
)

type drillOptions struct {
	snapshot string
	target   string
	keep     bool
	db       string
	pgBin    string
}

func newDrillCmd(g *Globals) *cobra.Command {
	var o drillOptions
	cmd := &cobra.Command{
		Use:   "drill [JOB] [--snapshot ID] [--target DIR] [--keep]",
		Short: "Run a recovery drill: restore and verify a job's newest snapshot, measure RTO and RPO",
		Long: `A drill proves that recovery works and measures how long it takes. It
restores the job's newest snapshot (of each of its sources), or the one
given with --snapshot, into a scratch directory (default under the state
directory; removed afterwards unless --keep) with the same verification a
real restore does: every restored file is read back and compared with the
snapshot's content hashes, and restored invoices are checked against the
snapshot's invoice catalog.

A PostgreSQL logical backup is restored into a scratch database on the
job's server (or --db), named <db>_drill_<timestamp>, verified (tables, row
counts, amcheck) as 'pg restore-dump' does, and dropped afterwards unless
--keep; a MariaDB/MySQL backup likewise with the 'db restore' path (tables,
row counts, CHECKSUM TABLE). When no server is reachable the drill fails with that step named:
a database drill is never skipped silently. A SQLite backup is restored
and checked in the scratch directory.

RTO is the wall time from the start until everything was restored and
verified; RPO is the age, at the start, of the newest restored data (the
snapshot's time; for classes with continuous_wal, the newest archived WAL
file). They are compared with the class's rto and rpo targets from the
configuration. Every drill is journaled (op drill, with RTO and RPO) and
shown in the monthly report; the daemon runs drills on each job's drill
schedule and raises an alert when one does not pass.

Exit codes: 0 pass, 4 a target was missed, 5 verification failed (restored
data differs from the backup), 1 the drill could not run (error).`,
		Example: `  einvault drill invoices-hourly
  einvault drill invoice-db-daily --db pg://postgres@db-test/einvoice
  einvault drill --snapshot 4f2a9c1e --keep --target /srv/drill
  einvault drill invoices-hourly --json | jq '.verdict, .rto_seconds'`,
		Args: argsRange(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			job := ""
			if len(args) == 1 {
				job = args[0]
			}
			if job == "" && o.snapshot == "" {
				return usageError("give a JOB of the configuration, or --snapshot ID")
			}
			return runDrillCmd(cmd.Context(), g, o, job)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.snapshot, "snapshot", "", "drill this snapshot instead of the job's newest")
	f.StringVar(&o.target, "target", "", "scratch directory to restore into (must be empty; default under the state directory)")
	f.BoolVar(&o.keep, "keep", false, "keep the scratch directory and scratch database afterwards")
	f.StringVar(&o.db, "db", "", "database server for a database drill, as pg://user@host:port/db or mysql://user@host:port/db (default: the job's source)")
	f.StringVar(&o.pgBin, "pg-bin", "", "directory of pg_restore (default: newest installed)")
	return cmd
}

func runDrillCmd(ctx context.Context, g *Globals, o drillOptions, job string) error {
	res, err := runDrill(ctx, g, o, job, clockwork.NewRealClock())
	if err != nil {
		return err
	}
	if g.op != nil {
		g.op.kind = ""
		g.op.files, g.op.bytesRead = res.Files, res.Bytes
		g.op.snapshot = strings.Join(res.Snapshots, ",")
		g.op.rto, g.op.rpo, g.op.targetRTO, g.op.targetRPO = res.RTO, res.RPO, res.TargetRTO, res.TargetRPO
		g.op.detail = res.Summary()
		g.op.start = res.Start
	}
	if g.JSON {
		if err := g.PrintJSON(struct {
			MessageType string `json:"message_type"`
			drill.Result
		}{"drill", res}); err != nil {
			return err
		}
	} else {
		for _, s := range res.Steps {
			mark := "ok  "
			if !s.OK {
				mark = "FAIL"
			}
			line := fmt.Sprintf("  %s %s (%s)", mark, s.Name, formatDuration(s.Seconds))
			if s.Detail != "" {
				line += ": " + s.Detail
			}
			g.Printf("%s\n", line)
		}
		if res.Kept {
			g.Printf("kept: %s\n", res.Target)
		}
		g.Printf("%s\n", res.Summary())
	}
	if res.Verdict != drill.Pass && !g.noJournal {
		// By hand: alert like the daemon does (the daemon alerts itself).
		notifyDrill(ctx, g, res)
	}
	switch res.Verdict {
	case drill.Pass:
		return nil
	case drill.Fail:
		return WithExit(ExitDegraded, fmt.Errorf("drill missed its target: %s", strings.Join(res.Reasons, "; ")))
	case drill.VerifyFailed:
		return WithExit(ExitDamaged, fmt.Errorf("drill verification failed: %s", strings.Join(res.Reasons, "; ")))
	}
	return WithExit(ExitError, fmt.Errorf("drill failed: %s", strings.Join(res.Reasons, "; ")))
}

// runDrill restores and verifies, measured by a drill.Drill on clock.
// An error is returned only when the drill cannot start (configuration,
// repository, snapshot); everything after is a step of the result.
func runDrill(ctx context.Context, g *Globals, o drillOptions, jobName string, clock clockwork.Clock) (drill.Result, error) {
	cfg, err := g.LoadConfig(jobName != "")
	if err != nil {
		return drill.Result{}, err
	}
	var job *config.Job
	var class *config.Class
	if jobName != "" {
		if job = cfg.Jobs[jobName]; job == nil {
			return drill.Result{}, usageError("no job named %q in %s (jobs: %s)", jobName, cfg.Path, strings.Join(cfg.JobNames(), ", "))
		}
		class = cfg.Classes[job.Class]
		if g.job == "" {
			g.job = jobName
		}
	}
	if cfg != nil && g.Repo == "" && g.Getenv("EINVAULT_REPO") == "" {
		g.Repo = cfg.Repository.Location
		if g.PasswordFile == "" {
			g.PasswordFile = cfg.Repository.PasswordFile
		}
	}
	r, err := g.OpenRepoForRestore(ctx)
	if err != nil {
		return drill.Result{}, err
	}
	defer r.Close()
	var snaps []*repo.Snapshot
	if o.snapshot != "" {
		s, _, err := g.FindSnapshot(ctx, r, o.snapshot, repo.SnapshotFilter{})
		if err != nil {
			return drill.Result{}, err
		}
		snaps = []*repo.Snapshot{s}
		if class == nil && cfg != nil {
			class = cfg.Classes[config.ClassOf(s.Tags)]
		}
	} else {
		all, err := r.Snapshots(ctx)
		if err != nil && len(all) == 0 {
			return drill.Result{}, err
		}
		snaps = newestPerSource(all, config.JobTag+jobName)
		if len(snaps) == 0 {
			return drill.Result{}, fmt.Errorf("job %s has no snapshot to drill (tag %s%s): run 'einvault run %s' first", jobName, config.JobTag, jobName, jobName)
		}
	}
	className := ""
	var targets drill.Targets
	if class != nil {
		className, targets = class.Name, drill.Targets{RTO: class.RTODur, RPO: class.RPODur}
	}
	d := drill.Start(clock, jobName, className)
	stamp := d.Began().UTC().Format("20060102150405")
	scratch := o.target
	if scratch == "" {
		name := jobName
		if name == "" {
			name = "snapshot-" + snaps[0].ID.Short()
		}
		scratch = filepath.Join(g.StateDirectory(cfg), "drills", name+"-"+stamp)
	} else if entries, err := os.ReadDir(scratch); err == nil && len(entries) > 0 {
		return drill.Result{}, usageError("--target %s is not empty: a drill restores into an empty directory", scratch)
	}
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return drill.Result{}, fmt.Errorf("scratch directory: %w (give --target on a disk with room)", err)
	}
	for i, s := range snaps {
		if ctx.Err() != nil {
			break
		}
		d.Snapshot(s.ID.String(), s.Time)
		dir := scratch
		if len(snaps) > 1 {
			dir = filepath.Join(scratch, fmt.Sprint(i+1))
		}
		drillSnapshot(ctx, g, d, r, s, dir, o, cfg, job, stamp)
	}
	if class != nil && class.ContinuousWAL {
		began := d.Now()
		newest, name, err := newestFile(ctx, r.Backend(), backend.WALFile)
		switch {
		case err != nil:
			d.Step(drill.Step{Name: "archived WAL", OK: false, Detail: err.Error()}, began, false)
		case name == "":
			d.Step(drill.Step{Name: "archived WAL", OK: true, Detail: "no WAL archived: the RPO is the snapshot's age"}, began, false)
		default:
			d.WAL(newest)
			d.Step(drill.Step{Name: "archived WAL", OK: true, Detail: fmt.Sprintf("newest %s from %s", name, newest.Local().Format(time.DateTime))}, began, false)
		}
	}
	if !o.keep {
		began := d.Now()
		if err := os.RemoveAll(scratch); err != nil {
			d.Step(drill.Step{Name: "remove scratch directory", OK: false, Detail: err.Error()}, began, false)
		}
	}
	return d.Finish(targets, scratch, o.keep), nil
}

// newestPerSource picks, among the snapshots tagged tag, the newest of
// each source (same paths): one run of a job makes one per source.
func newestPerSource(all []*repo.Snapshot, tag string) []*repo.Snapshot {
	newest := map[string]*repo.Snapshot{}
	for _, s := range all {
		has := false
		for _, t := range s.Tags {
			has = has || t == tag
		}
		if !has || s.Source == mysql.EngineBinlog {
			// Archived binary logs are not a restorable source of their
			// own: they extend the job's dumps.
			continue
		}
		key := strings.Join(s.Paths, "\x00")
		if cur := newest[key]; cur == nil || s.Time.After(cur.Time) {
			newest[key] = s
		}
	}
	out := make([]*repo.Snapshot, 0, len(newest))
	for _, s := range newest {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// newestFile is the newest file of type t by the storage's file times.
func newestFile(ctx context.Context, be backend.Backend, t backend.FileType) (time.Time, string, error) {
	var newest time.Time
	var name string
	err := be.List(ctx, t, func(fi backend.FileInfo) error {
		if name == "" || fi.ModTime.After(newest) {
			newest, name = fi.ModTime, fi.Name
		}
		return nil
	})
	if err != nil && !errors.Is(err, backend.ErrNotExist) {
		return time.Time{}, "", fmt.Errorf("list %s/ of %s: %w", t, be.Location(), err)
	}
	if name != "" && newest.IsZero() {
		return time.Time{}, name, fmt.Errorf("the storage %s does not report file times: the age of the archived WAL is unknown", be.Location())
	}
	return newest, name, nil
}

// drillSnapshot restores one snapshot as a real restore would, and
// records the steps.
func drillSnapshot(ctx context.Context, g *Globals, d *drill.Drill, r *repo.Repository, s *repo.Snapshot, dir string, o drillOptions, cfg *config.Config, job *config.Job, stamp string) {
	began := d.Now()
	meta, isDB, err := source.FromMeta(s.Meta)
	if err != nil {
		d.Step(drill.Step{Name: "snapshot " + s.ID.Short(), OK: false, Detail: err.Error()}, began, true)
		return
	}
	if isDB {
		switch {
		case meta.Engine == "postgresql":
			drillPostgres(ctx, g, d, r, s, meta, dir, o, cfg, job, stamp)
			return
		case meta.Engine == sqlite.Engine:
			res, err := sqlite.Restore(ctx, sqlite.RestoreOptions{Meta: meta, Target: filepath.Join(dir, "drill.sqlite"), WriteStream: streamWriter(r, s)})
			name := "restore SQLite snapshot " + s.ID.Short()
			if err != nil {
				d.Step(drill.Step{Name: name, OK: false, Detail: oneLine(err)}, began, true)
				return
			}
			d.Count(1, res.Bytes)
			d.Step(verificationStep(name, res.Verification), began, true)
			return
		case mysql.IsEngine(meta.Engine):
			drillMySQL(ctx, g, d, r, s, meta, o, cfg, job, stamp)
			return
		case meta.Engine != "command":
			d.Step(drill.Step{Name: "restore " + meta.Engine + " snapshot " + s.ID.Short(), OK: false,
				Detail: "drills of " + meta.Engine + " backups are not supported yet: restore it by hand with 'einvault db restore' into a scratch database"}, began, true)
			return
		}
	}
	// Files (and a command's output): restore and read back every file.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		d.Step(drill.Step{Name: "restore snapshot " + s.ID.Short(), OK: false, Detail: err.Error()}, began, true)
		return
	}
	rep, rerr := restorer.New(r, restorer.Options{VerifyAfter: true}).Restore(ctx, s, "", dir)
	name := "restore snapshot " + s.ID.Short()
	if rep == nil {
		d.Step(drill.Step{Name: name, OK: false, Detail: oneLine(rerr)}, began, true)
		return
	}
	d.Count(int64(rep.Files), int64(rep.Bytes))
	detail := fmt.Sprintf("%d files, %s; %d verified", rep.Files, formatBytes(rep.Bytes), rep.Verified)
	step := drill.Step{Name: name, OK: true, Detail: detail}
	switch {
	case len(rep.Damaged) > 0 || len(rep.VerifyFailed) > 0:
		step.OK, step.Verification = false, true
		step.Detail = fmt.Sprintf("%s; %d damaged or missing, %d differ from the snapshot (first: %s)", detail, len(rep.Damaged), len(rep.VerifyFailed), firstBad(rep))
	case rerr != nil && (errors.Is(rerr, repo.ErrDamaged) || errors.Is(rerr, repo.ErrBlobMissing) || errors.Is(rerr, restorer.ErrVerifyFailed)):
		step.OK, step.Verification, step.Detail = false, true, detail+"; "+oneLine(rerr)
	case rerr != nil || len(rep.Errors) > 0:
		msg := ""
		if rerr != nil {
			msg = oneLine(rerr)
		} else {
			msg = rep.Errors[0].Path + ": " + rep.Errors[0].Reason
		}
		step.OK, step.Detail = false, detail+"; "+msg
	}
	d.Step(step, began, true)
	if s.Catalog != nil && ctx.Err() == nil {
		began := d.Now()
		differ, err := verifyRestoredInvoices(ctx, g, r, s, "", dir)
		st := drill.Step{Name: "verify invoices of " + s.ID.Short(), OK: err == nil && !differ}
		switch {
		case err != nil:
			st.Detail = oneLine(err)
		case differ:
			st.Verification, st.Detail = true, "restored invoices differ from the catalog"
		default:
			st.Detail = "every restored invoice matches the catalog"
		}
		d.Step(st, began, true)
	}
}

func firstBad(rep *restorer.Report) string {
	if len(rep.Damaged) > 0 {
		return rep.Damaged[0].Path + ": " + rep.Damaged[0].Reason
	}
	return rep.VerifyFailed[0].Path + ": " + rep.VerifyFailed[0].Reason
}

func verificationStep(name string, v *source.Verification) drill.Step {
	if v == nil {
		return drill.Step{Name: name, OK: false, Detail: "no verification result"}
	}
	if v.OK() {
		return drill.Step{Name: name, OK: true, Detail: fmt.Sprintf("%d checks passed", len(v.Checks))}
	}
	var bad []string
	for _, c := range v.Failed() {
		s := c.Name
		if c.Want != "" || c.Got != "" {
			s += fmt.Sprintf(" (want %s, got %s)", c.Want, c.Got)
		}
		bad = append(bad, s)
	}
	return drill.Step{Name: name, OK: false, Verification: true, Detail: "verification failed: " + strings.Join(bad, "; ")}
}

// drillPostgres restores a logical PostgreSQL backup into a scratch
// database on the configured server, verifies it and drops it.
func drillPostgres(ctx context.Context, g *Globals, d *drill.Drill, r *repo.Repository, s *repo.Snapshot, meta *source.Metadata, dir string, o drillOptions, cfg *config.Config, job *config.Job, stamp string) {
	began := d.Now()
	name := "restore PostgreSQL snapshot " + s.ID.Short()
	server := o.db
	if server == "" && job != nil && cfg != nil {
		// The source the snapshot came from (its path is the DSN's URI),
		// else the job's first PostgreSQL source.
		for _, sn := range job.Sources {
			src := cfg.Sources[sn]
			if src == nil || !pg.IsDSN(src.Database) {
				continue
			}
			if server == "" {
				server = src.Database
			}
			if dsn, err := pg.ParseDSN(src.Database); err == nil && len(s.Paths) > 0 && dsn.URI == s.Paths[0] {
				server = src.Database
				break
			}
		}
	}
	if server == "" {
		d.Step(drill.Step{Name: name, OK: false, Detail: "no PostgreSQL server to restore into: give --db pg://user@host:port/db (the drill was not run)"}, began, true)
		return
	}
	base, err := pg.ParseDSN(server)
	if err != nil {
		d.Step(drill.Step{Name: name, OK: false, Detail: oneLine(err)}, began, true)
		return
	}
	dbName := base.Database + "_drill_" + stamp
	if len(dbName) > 63 {
		dbName = dbName[len(dbName)-63:]
	}
	target := base.WithDatabase(dbName)
	admin, err := pg.Connect(ctx, base.WithDatabase("postgres"))
	if err != nil {
		d.Step(drill.Step{Name: name, OK: false, Detail: fmt.Sprintf("no PostgreSQL server reachable at %s: %s — the database restore was NOT tested", base.URI, oneLine(err))}, began, true)
		return
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		d.Step(drill.Step{Name: name, OK: false, Detail: err.Error()}, began, true)
		return
	}
	res, err := pg.RestoreDump(ctx, pg.RestoreDumpOptions{Target: target, Jobs: 2, TempDir: dir, BinDir: o.pgBin, NoOwner: true, Logger: g.Logger(),
		Meta: meta, WriteStream: streamWriter(r, s)})
	if err != nil {
		d.Step(drill.Step{Name: name, OK: false, Detail: oneLine(err)}, began, true)
	} else {
		st := verificationStep(name+" into "+dbName, res.Verification)
		d.Step(st, began, true)
		d.Count(int64(len(meta.Tables)), 0)
	}
	if o.keep {
		return
	}
	dropBegan := d.Now()
	if _, err := admin.Exec(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+pgx.Identifier{dbName}.Sanitize()); err != nil {
		d.Step(drill.Step{Name: "drop scratch database " + dbName, OK: false, Detail: oneLine(err) + " (drop it by hand)"}, dropBegan, false)
		return
	}
	d.Step(drill.Step{Name: "drop scratch database " + dbName, OK: true}, dropBegan, false)
}

// drillMySQL restores a MariaDB/MySQL backup into a scratch database on
// the configured server, verifies it and drops it.
func drillMySQL(ctx context.Context, g *Globals, d *drill.Drill, r *repo.Repository, s *repo.Snapshot, meta *source.Metadata, o drillOptions, cfg *config.Config, job *config.Job, stamp string) {
	began := d.Now()
	name := "restore " + meta.Engine + " snapshot " + s.ID.Short()
	server := ""
	if mysql.IsDSN(o.db) {
		server = o.db
	} else if job != nil && cfg != nil {
		for _, sn := range job.Sources {
			if src := cfg.Sources[sn]; src != nil && mysql.IsDSN(src.Database) {
				server = src.Database
				break
			}
		}
	}
	if server == "" {
		d.Step(drill.Step{Name: name, OK: false, Detail: "no MariaDB/MySQL server to restore into: give --db mysql://user@host:port/db (the drill was not run)"}, began, true)
		return
	}
	dsn, err := mysql.ParseDSN(server, false)
	if err == nil {
		err = dsn.FillCredentials(g.Getenv, "")
	}
	if err != nil {
		d.Step(drill.Step{Name: name, OK: false, Detail: oneLine(err)}, began, true)
		return
	}
	dbName := dsn.Database + "_drill_" + stamp
	if len(dbName) > 64 {
		dbName = dbName[len(dbName)-64:]
	}
	dsn.Database = dbName
	admin, err := mysql.Open(ctx, dsn, "")
	if err == nil {
		err = admin.PingContext(ctx)
	}
	if err != nil {
		if admin != nil {
			admin.Close()
		}
		d.Step(drill.Step{Name: name, OK: false, Detail: fmt.Sprintf("no MariaDB/MySQL server reachable at %s: %s — the database restore was NOT tested", dsn.WithDatabase(""), oneLine(err))}, began, true)
		return
	}
	defer admin.Close()
	res, err := mysql.Restore(ctx, mysql.RestoreOptions{Meta: meta, Target: dsn, WriteStream: streamWriter(r, s)})
	if err != nil {
		d.Step(drill.Step{Name: name, OK: false, Detail: oneLine(err)}, began, true)
	} else {
		d.Step(verificationStep(name+" into "+dbName, res.Verification), began, true)
		d.Count(int64(len(meta.Tables)), res.Bytes)
		if res.Verification.OK() {
			drillBinlogReplay(ctx, d, r, s, meta, dsn)
		}
	}
	if o.keep {
		return
	}
	dropBegan := d.Now()
	if _, err := admin.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+mysql.QuoteIdent(dbName)); err != nil {
		d.Step(drill.Step{Name: "drop scratch database " + dbName, OK: false, Detail: oneLine(err) + " (drop it by hand)"}, dropBegan, false)
		return
	}
	d.Step(drill.Step{Name: "drop scratch database " + dbName, OK: true}, dropBegan, false)
}

// drillBinlogReplay rolls the restored dump forward with every archived
// binary log of its server (when the dump recorded its position and any
// is archived), checks the tables, and records the time reached: the
// drill then measures the RPO a point-in-time restore really gives.
func drillBinlogReplay(ctx context.Context, d *drill.Drill, r *repo.Repository, s *repo.Snapshot, meta *source.Metadata, dsn mysql.DSN) {
	file := meta.Extra[mysql.ExtraBinlogFile]
	pos, err := strconv.ParseInt(meta.Extra[mysql.ExtraBinlogPos], 10, 64)
	if file == "" || err != nil {
		return
	}
	files, holder, err := archivedBinlogs(ctx, r, mysql.ServerKey(meta.Location))
	if err != nil || len(files) == 0 {
		return // no binary log archiving for this server
	}
	began := d.Now()
	name := "replay archived binary logs into " + dsn.Database
	chain, err := mysql.BuildChain(files, file, s.Time)
	if err != nil {
		d.Step(drill.Step{Name: name, OK: false, Detail: oneLine(err)}, began, true)
		return
	}
	dir, err := os.MkdirTemp("", "einvault-drill-binlog-")
	if err != nil {
		d.Step(drill.Step{Name: name, OK: false, Detail: oneLine(err)}, began, true)
		return
	}
	defer os.RemoveAll(dir)
	paths, err := fetchChain(ctx, r, chain, holder, dir)
	if err == nil {
		var rep *mysql.ReplayResult
		if rep, err = mysql.Replay(ctx, mysql.ReplayOptions{Target: dsn, SourceDB: meta.Database, Paths: paths, StartPos: pos}); err == nil {
			detail := fmt.Sprintf("%d logs, %s replayed, archive reaches %s", rep.Files, formatBytes(uint64(rep.Bytes)), chain.Until.Local().Format(time.DateTime))
			if chain.Hole != "" {
				detail += "; " + chain.Hole + " is missing, later logs unusable"
			}
			d.Step(drill.Step{Name: name, OK: true, Detail: detail}, began, true)
			d.Replayed(chain.Until, "binlog")
			checkBegan := d.Now()
			v, err := mysql.CheckTables(ctx, dsn, meta)
			if err != nil {
				d.Step(drill.Step{Name: "check tables after the replay", OK: false, Detail: oneLine(err)}, checkBegan, true)
				return
			}
			d.Step(verificationStep("check tables after the replay", v), checkBegan, true)
			return
		}
	}
	d.Step(drill.Step{Name: name, OK: false, Detail: oneLine(err)}, began, true)
}

// notifyDrill raises the alert of a drill that did not pass through the
// configuration's notifications (nothing when none are configured).
func notifyDrill(ctx context.Context, g *Globals, res drill.Result) {
	cfg, err := g.LoadConfig(false)
	if err != nil || cfg == nil || len(cfg.Notifications.Channels) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	disp, err := notify.Open(ctx, filepath.Join(g.StateDirectory(cfg), "alerts.db"), cfg.Notifications, notify.Options{Env: notify.Env{Getenv: g.Getenv}, Logger: g.Logger()})
	if err != nil {
		g.Warnf("warning: the drill's alert was not raised: %v\n", err)
		return
	}
	defer disp.Close()
	ev := notify.Event{Kind: notify.KindFailure, Severity: notify.SeverityCritical, Job: res.Job, Op: "drill", Time: res.End,
		Message: "Recovery drill failed: " + res.Summary(), Fields: map[string]string{"verdict": res.Verdict, "rto": drill.Round(seconds(res.RTO)).String(), "rpo": drill.Round(seconds(res.RPO)).String()}}
	if res.Verdict == drill.Fail {
		ev.Kind, ev.Severity, ev.Message = notify.KindDegraded, notify.SeverityWarning, "Recovery drill missed its target: "+res.Summary()
	}
	if _, err := disp.Notify(ctx, ev); err != nil {
		g.Warnf("warning: the drill's alert was not raised: %v\n", err)
		return
	}
	if err := disp.Tick(ctx); err != nil {
		g.Warnf("warning: the drill's alert is queued, not yet delivered: %v\n", err)
	}
}
