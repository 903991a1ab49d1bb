package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/einvault/einvault/internal/backend/location"
	"github.com/einvault/einvault/internal/config"
	"github.com/einvault/einvault/internal/daemon"
	"github.com/einvault/einvault/internal/journal"
	"github.com/einvault/einvault/internal/notify"
	"github.com/spf13/cobra"
)

// cliRunner performs the daemon's operations with the same code as the
// commands: each operation runs the command in-process with the config's
// repository, JSON output captured, and its own journaling off (the
// daemon journals the job).
type cliRunner struct {
	g   *Globals
	log *slog.Logger
	rng *rand.Rand // samples of new packs to verify; nil: random
}

func (cr cliRunner) exec(ctx context.Context, cfg *config.Config, op daemon.Op, args ...string) (*Globals, int, error) {
	g := cr.g
	var out, errb bytes.Buffer
	sub := &Globals{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: g.Getenv, StateDir: g.StateDirectory(cfg),
		cfg: cfg, noJournal: true, trigger: op.Trigger}
	if op.Job != nil {
		sub.job = op.Job.Name
	}
	sub.log = cr.log
	root := NewRootCmd(sub)
	// Flags, not fields: cobra resets the fields to the flag defaults.
	pre := []string{"--repo", cfg.Repository.Location, "--state-dir", sub.StateDir}
	if cfg.Repository.PasswordFile != "" {
		pre = append(pre, "--password-file", cfg.Repository.PasswordFile)
	}
	root.SetArgs(append(append(pre, "--json", "--no-progress"), args...))
	root.SetIn(sub.Stdin)
	root.SetOut(&out)
	root.SetErr(&errb)
	_, err := root.ExecuteContextC(ctx)
	code := ExitCode(err)
	if err != nil && unknownCommand(err) {
		code = ExitUsage
	}
	if msg := strings.TrimSpace(errb.String()); msg != "" {
		cr.log.Debug("operation output", "op", op.Name, "args", strings.Join(args, " "), "stderr", msg)
	}
	return sub, code, err
}

// retryable exit codes: a generic error (network, timeout) and a lock.
func retryable(code int) bool { return code == ExitError || code == ExitLocked }

func (cr cliRunner) Run(ctx context.Context, cfg *config.Config, op daemon.Op) daemon.Outcome {
	var o daemon.Outcome
	for _, c := range cfg.Repository.Copies {
		o.Entry.Copies = append(o.Entry.Copies, c.Name)
	}
	fail := func(code int, err error) daemon.Outcome {
		o.Entry.ExitCode, o.Entry.Error, o.Retryable = code, oneLine(err), retryable(code)
		o.Entry.Result = resultOf(code)
		return o
	}
	switch op.Name {
	case daemon.OpPreflight:
		if err := preflightJob(ctx, cfg, op.Job); err != nil {
			return fail(ExitError, err)
		}
		return o
	case daemon.OpBackup:
		var errs []string
		worst := ExitOK
		var snaps, srcs []string
		for _, name := range op.Job.Sources {
			src := cfg.Sources[name]
			args := backupArgs(cfg, op.Job, src)
			sub, code, err := cr.exec(ctx, cfg, op, args...)
			srcs = append(srcs, name)
			if rec := sub.op; rec != nil && rec.snapshot != "" {
				o.Entry.Files += rec.files
				o.Entry.BytesRead += rec.bytesRead
				o.Entry.BytesAdded += rec.bytesAdded
				if o.Entry.Kind == "" || o.Entry.Kind == rec.kind {
					o.Entry.Kind = rec.kind
				} else {
					o.Entry.Kind = "mixed"
				}
				snaps = append(snaps, rec.snapshot)
				for _, p := range rec.packs {
					o.NewPacks = append(o.NewPacks, daemon.Pack{ID: p.ID.String(), Size: p.Size})
				}
			}
			if err != nil {
				errs = append(errs, name+": "+oneLine(err))
				if worse(code, worst) {
					worst = code
				}
			}
			if ctx.Err() != nil {
				break
			}
		}
		o.Entry.Source, o.Entry.Snapshot = strings.Join(srcs, ","), strings.Join(snaps, ",")
		if worst != ExitOK {
			return fail(worst, errors.New(strings.Join(errs, "; ")))
		}
		return o
	case daemon.OpCheck:
		v, err := cr.verifyNewPacks(ctx, cfg, op)
		o.Entry.Snapshot, o.Entry.BytesRead, o.Entry.Detail = op.Snapshot, v.Bytes, v.Detail()
		if err != nil {
			return fail(ExitCode(err), err)
		}
		return o
	case daemon.OpForget:
		var errs []string
		worst := ExitOK
		for _, name := range cfg.ClassNames() {
			cl := cfg.Classes[name]
			args := []string{"forget", "--tag", config.ClassTag + name, "--group-by", "host,paths,tags", "--keep-within", cl.Effective().String()}
			k := cl.Keep
			for _, kv := range []struct {
				flag string
				n    int
			}{{"--keep-last", k.Last}, {"--keep-hourly", k.Hourly}, {"--keep-daily", k.Daily}, {"--keep-weekly", k.Weekly}, {"--keep-monthly", k.Monthly}, {"--keep-yearly", k.Yearly}} {
				if kv.n != 0 {
					args = append(args, kv.flag, fmt.Sprint(kv.n))
				}
			}
			if cl.Effective().Zero() && cl.Keep == (config.Keep{}) {
				continue // nothing would be kept: never forget by an empty policy
			}
			if _, code, err := cr.exec(ctx, cfg, op, args...); err != nil {
				errs = append(errs, name+": "+oneLine(err))
				if worse(code, worst) {
					worst = code
				}
			}
		}
		if worst != ExitOK {
			return fail(worst, errors.New(strings.Join(errs, "; ")))
		}
		return o
	case daemon.OpDrill:
		sub, code, err := cr.exec(ctx, cfg, op, "drill", op.Job.Name)
		if rec := sub.op; rec != nil {
			o.Entry.Start, o.Entry.Snapshot, o.Entry.Files, o.Entry.BytesRead = rec.start, rec.snapshot, rec.files, rec.bytesRead
			o.Entry.RTO, o.Entry.RPO, o.Entry.TargetRTO, o.Entry.TargetRPO, o.Entry.Detail = rec.rto, rec.rpo, rec.targetRTO, rec.targetRPO, rec.detail
		}
		if err != nil {
			return fail(code, err)
		}
		return o
	case daemon.OpBinlog:
		var errs []string
		worst := ExitOK
		var srcs, snaps []string
		for _, name := range op.Job.Sources {
			src := cfg.Sources[name]
			if src == nil || !config.IsMySQLDSN(src.Database) {
				continue
			}
			srcs = append(srcs, name)
			sub, code, err := cr.exec(ctx, cfg, op, "db", "binlog-archive", "--tag", config.ClassTag+op.Job.Class, "--tag", config.JobTag+op.Job.Name, src.Database)
			if rec := sub.op; rec != nil && rec.snapshot != "" {
				snaps = append(snaps, rec.snapshot)
				o.Entry.Files += rec.files
				o.Entry.BytesRead += rec.bytesRead
				o.Entry.BytesAdded += rec.bytesAdded
			}
			if err != nil {
				errs = append(errs, name+": "+oneLine(err))
				if worse(code, worst) {
					worst = code
				}
			}
		}
		o.Entry.Source, o.Entry.Snapshot = strings.Join(srcs, ","), strings.Join(snaps, ",")
		if worst != ExitOK {
			return fail(worst, errors.New(strings.Join(errs, "; ")))
		}
		return o
	case daemon.OpPrune:
		if _, code, err := cr.exec(ctx, cfg, op, "prune"); err != nil {
			return fail(code, err)
		}
		return o
	case daemon.OpReport:
		if _, code, err := cr.exec(ctx, cfg, op, reportArgs(cfg, cr.g.StateDirectory(cfg))...); err != nil {
			return fail(code, err)
		}
		return o
	}
	return fail(ExitError, fmt.Errorf("unknown operation %q", op.Name))
}

// reportArgs is the command line of the scheduled monthly report (the
// month before the run).
func reportArgs(cfg *config.Config, stateDir string) []string {
	r := cfg.Daemon.Report
	out := r.Out
	if out == "" {
		out = filepath.Join(stateDir, "reports")
	}
	args := []string{"report", "monthly", "--out", out}
	if r.Lang != "" {
		args = append(args, "--lang", r.Lang)
	}
	if r.Org != "" {
		args = append(args, "--org", r.Org)
	}
	for _, m := range r.Recipients {
		args = append(args, "--mail", m)
	}
	return args
}

// worse orders exit codes: failures over degraded over partial over ok.
func worse(a, b int) bool {
	rank := func(c int) int {
		switch c {
		case ExitOK:
			return 0
		case ExitPartial:
			return 1
		case ExitDegraded:
			return 2
		}
		return 3
	}
	return rank(a) > rank(b)
}

// backupArgs is the backup command line of one source of a job.
func backupArgs(cfg *config.Config, job *config.Job, src *config.Source) []string {
	args := []string{"backup", "--tag", config.ClassTag + job.Class, "--tag", config.JobTag + job.Name}
	for _, t := range job.Tags {
		args = append(args, "--tag", t)
	}
	if cl := cfg.Classes[job.Class]; cl != nil && cl.Full {
		args = append(args, "--full")
	}
	switch src.Type() {
	case "database":
		return append(args, src.Database)
	case "command":
		name := src.StdinFilename
		if name == "" {
			name = src.Name
		}
		return append(args, "--stdin-from-command", shellJoin(src.Command), "--stdin-filename", name)
	}
	for _, e := range src.Exclude {
		args = append(args, "--exclude", e)
	}
	if src.OneFileSystem {
		args = append(args, "--one-file-system")
	}
	return append(args, src.Paths...)
}

// shellJoin quotes argv for command.Split.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`") {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// preflightJob checks that the job's sources are reachable and that a
// local repository has the configured free space. Remote destinations
// and copies are checked by the backup itself (pre-flight of every copy).
func preflightJob(ctx context.Context, cfg *config.Config, job *config.Job) error {
	var errs []string
	for _, name := range job.Sources {
		src := cfg.Sources[name]
		switch src.Type() {
		case "files":
			for _, p := range src.Paths {
				if _, err := os.Stat(p); err != nil {
					errs = append(errs, fmt.Sprintf("source %s: %v", name, err))
				}
			}
		case "command":
			if _, err := exec.LookPath(src.Command[0]); err != nil {
				errs = append(errs, fmt.Sprintf("source %s: %v", name, err))
			}
		case "database":
			if err := probeDSN(ctx, src.Database); err != nil {
				errs = append(errs, fmt.Sprintf("source %s: %v", name, err))
			}
		}
	}
	loc := cfg.Repository.Location
	if location.Scheme(loc) == "local" && cfg.Daemon.MinFreeBytes > 0 {
		var st syscall.Statfs_t
		dir := loc
		for {
			if err := syscall.Statfs(dir, &st); err == nil {
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
		if free := int64(st.Bavail) * int64(st.Bsize); st.Bsize > 0 && free < cfg.Daemon.MinFreeBytes {
			errs = append(errs, fmt.Sprintf("repository %s: %s free, less than min_free_space %s (free space or lower daemon.min_free_space)",
				loc, formatBytes(uint64(free)), cfg.Daemon.MinFreeSpace))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// probeDSN connects to a database server's address (TCP), or checks that
// a SQLite file or a unix socket exists.
func probeDSN(ctx context.Context, dsn string) error {
	if p, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		p = strings.TrimPrefix(p, "//")
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		_, err := os.Stat(p)
		return err
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("DSN: %w", err)
	}
	if sock := u.Query().Get("socket"); sock != "" {
		_, err := os.Stat(sock)
		return err
	}
	if sock := u.Query().Get("host"); strings.HasPrefix(sock, "/") {
		return nil // a socket directory (PostgreSQL): the backup connects
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return nil // default socket: the backup connects
	}
	if port == "" {
		port = map[string]string{"pg": "5432", "postgres": "5432", "postgresql": "5432", "mysql": "3306", "mariadb": "3306"}[u.Scheme]
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fmt.Errorf("database server %s unreachable: %w", net.JoinHostPort(host, port), err)
	}
	return c.Close()
}

// dispatchNotifier adapts the notify dispatcher to the daemon.
type dispatchNotifier struct{ d *notify.Dispatcher }

func (n dispatchNotifier) Notify(ctx context.Context, ev notify.Event) error {
	_, err := n.d.Notify(ctx, ev)
	return err
}

// setupDaemon opens everything a daemon or 'run' needs.
func setupDaemon(ctx context.Context, g *Globals, cfg *config.Config, log *slog.Logger) (*daemon.Daemon, func(), error) {
	j, err := journal.Open(ctx, g.StateDirectory(cfg), journal.Options{Logger: log, SpoolDir: g.Getenv("EINVAULT_JOURNAL_SPOOL")})
	if err != nil {
		return nil, nil, err
	}
	closers := []func(){func() { j.Close() }}
	opts := daemon.Options{Logger: log, Journal: j, Runner: cliRunner{g: g, log: log}, WAL: walProber{g: g}}
	if len(cfg.Notifications.Channels) > 0 {
		path := filepath.Join(g.StateDirectory(cfg), "alerts.db")
		disp, err := notify.Open(ctx, path, cfg.Notifications, notify.Options{Env: notify.Env{Getenv: g.Getenv}, Logger: log})
		if err != nil {
			j.Close()
			return nil, nil, err
		}
		closers = append(closers, func() {
			_ = disp.Tick(context.Background()) // deliver what this run raised
			disp.Close()
		})
		opts.Notifier = dispatchNotifier{disp}
		opts.Tick = func(ctx context.Context) {
			if err := disp.Tick(ctx); err != nil {
				log.Warn("alerts", "err", err)
			}
		}
	}
	if g.ConfigFile != "" || g.Getenv("EINVAULT_CONFIG") != "" || cfg.Path != "" {
		path := cfg.Path
		opts.Load = func() (*config.Config, error) { return config.Load(path, g.Getenv) }
	}
	if v := g.Getenv("EINVAULT_STOP_GRACE"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			opts.StopGrace = d
		}
	}
	d, err := daemon.New(ctx, cfg, opts)
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return d, closeAll, nil
}

func (g *Globals) daemonLogger() *slog.Logger {
	level := slog.LevelInfo
	switch {
	case g.Quiet:
		level = slog.LevelError
	case g.Verbose > 0:
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: level}))
}

func newDaemonCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run every job of the configuration on its schedule",
		Long: `The daemon runs the jobs of the configuration file (--config,
EINVAULT_CONFIG or /etc/einvault/einvault.yaml) on their schedules: cron
expressions, intervals, or "on change" of their files. At most
daemon.concurrency jobs run at once; jobs are held back during maintenance
windows and run when a window closes. Retention (forget by each class's
effective retention, never below its legal minimum) and prune run on their
own schedules.

Each job: pre-flight (sources reachable, free space), backup of each
source (with the pre-flight and sync of the repository's copies), a read
of the packs the backup wrote (verify, default all within verify_budget,
then a random sample), retries of transient failures with backoff, then
the journal and notifications. Runs missed while the daemon was down are
reported when it starts, and run once. Each job's drill schedule runs
recovery drills ('einvault drill'); for continuous_wal classes the age of
the newest archived WAL in the repository and each copy is checked every
daemon.wal_check_interval against the class's wal_max_age.

Signals: SIGTERM or SIGINT stops: running jobs get EINVAULT_STOP_GRACE
(default 30s) to finish, then are cancelled; a cancelled backup leaves no
snapshot and nothing referenced that is partial. SIGHUP reloads the
configuration; a file that does not validate is reported (log, alert,
'daemon status') and the last good configuration stays in force.

State (jobs, last results, next runs) is kept in the state directory's
einvault.db, beside the journal. See docs/DAEMON.md for the systemd unit.`,
		Example: `  einvault daemon --config /etc/einvault/einvault.yaml
  systemctl enable --now einvault
  einvault daemon status
  kill -HUP $(pidof einvault)   # reload the configuration`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := g.LoadConfig(true)
			if err != nil {
				return err
			}
			log := g.daemonLogger()
			d, closeAll, err := setupDaemon(ctx, g, cfg, log)
			if err != nil {
				return err
			}
			defer closeAll()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{}, 1)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						select {
						case reload <- struct{}{}:
						default:
						}
					}
				}
			}()
			log.Info("daemon started", "config", cfg.Path, "jobs", len(cfg.Jobs), "state", g.StateDirectory(cfg))
			if err := d.Serve(ctx, reload); err != nil {
				return err
			}
			log.Info("daemon stopped")
			return nil
		},
	}
	cmd.AddCommand(newDaemonStatusCmd(g))
	return cmd
}

type daemonStatusJSON struct {
	MessageType string            `json:"message_type"`
	Daemon      *daemon.Status    `json:"daemon"`
	Running     bool              `json:"running"`
	Jobs        []daemon.JobState `json:"jobs"`
	WAL         []walStatus       `json:"wal,omitempty"`
	ConfigError []config.Problem  `json:"config_errors,omitempty"`
}

// walStatus is the freshness of the archived WAL in one place.
type walStatus struct {
	daemon.WALState
	AgeSeconds    float64 `json:"age_seconds,omitempty"`
	MaxAgeSeconds float64 `json:"max_age_seconds"`
	Stale         bool    `json:"stale"`
}

func newDaemonStatusCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Aliases: []string{"jobs"},
		Short:   "Show the daemon's jobs: last result and next run",
		Example: `  einvault daemon status
  einvault daemon jobs --json | jq '.jobs[] | select(.last_result != "ok")'`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, cfgErr := g.LoadConfig(false)
			dir := g.StateDirectory(cfg)
			if _, err := os.Stat(filepath.Join(dir, journal.DBFile)); err != nil {
				return fmt.Errorf("no daemon state in %s: the daemon has not run there (give --state-dir if it lives elsewhere)", dir)
			}
			db, err := journal.OpenDB(ctx, filepath.Join(dir, journal.DBFile))
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := daemon.OpenState(ctx, db)
			if err != nil {
				return err
			}
			out := daemonStatusJSON{MessageType: "daemon_status", Jobs: []daemon.JobState{}}
			if s, ok, err := st.GetStatus(ctx); err != nil {
				return err
			} else if ok {
				out.Daemon, out.Running = &s, s.Alive(time.Now(), Hostname())
			}
			jobs, err := st.Jobs(ctx)
			if err != nil {
				return err
			}
			seen := map[string]bool{}
			for _, j := range jobs {
				seen[j.Name] = true
			}
			if cfg != nil {
				for _, name := range cfg.JobNames() {
					if !seen[name] {
						jobs = append(jobs, daemon.JobState{Name: name, Schedule: cfg.Jobs[name].Spec.Describe()})
					}
				}
			}
			out.Jobs = append(out.Jobs, jobs...)
			wal, err := st.WAL(ctx)
			if err != nil {
				return err
			}
			now := time.Now()
			for _, w := range wal {
				ws := walStatus{WALState: w, MaxAgeSeconds: w.MaxAge.Seconds(), Stale: w.Stale(now)}
				if a := w.Age(now); a >= 0 {
					ws.AgeSeconds = a.Seconds()
				}
				out.WAL = append(out.WAL, ws)
			}
			var ce *config.Errors
			if errors.As(cfgErr, &ce) {
				out.ConfigError = ce.Problems
			}
			if g.JSON {
				return g.PrintJSON(out)
			}
			printDaemonStatus(g.Stdout, out, cfgErr)
			return nil
		},
	}
}

func printDaemonStatus(w io.Writer, out daemonStatusJSON, cfgErr error) {
	switch {
	case out.Daemon == nil:
		fmt.Fprintln(w, "daemon: has never run with this state directory")
	case out.Running:
		fmt.Fprintf(w, "daemon: running (pid %d on %s since %s, config %s)\n", out.Daemon.PID, out.Daemon.Host, out.Daemon.Started.Local().Format("2006-01-02 15:04:05"), out.Daemon.Config)
	default:
		fmt.Fprintf(w, "daemon: NOT running (last seen %s, pid %d on %s)\n", out.Daemon.Heartbeat.Local().Format("2006-01-02 15:04:05"), out.Daemon.PID, out.Daemon.Host)
	}
	if out.Daemon != nil && out.Daemon.ConfigError != "" {
		fmt.Fprintf(w, "config: %s\n", out.Daemon.ConfigError)
	}
	if cfgErr != nil {
		fmt.Fprintf(w, "config file: %v\n", cfgErr)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSCHEDULE\tLAST RUN\tRESULT\tNEXT RUN\tERROR")
	for _, j := range out.Jobs {
		last, next, result := "never", "-", dash(j.LastResult)
		if !j.LastStart.IsZero() {
			last = j.LastStart.Local().Format("2006-01-02 15:04:05")
		}
		if !j.NextRun.IsZero() {
			next = j.NextRun.Local().Format("2006-01-02 15:04:05")
		}
		if j.Running {
			result = "running"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, dash(j.Schedule), last, result, next, j.LastError)
	}
	tw.Flush()
	if len(out.WAL) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "WAL ARCHIVE\tNEWEST\tAGE\tMAX AGE\tSTATE\tCHECKED")
	for _, ws := range out.WAL {
		age, state := "-", "ok"
		if ws.AgeSeconds > 0 || !ws.Time.IsZero() {
			age = formatDuration(ws.AgeSeconds)
		}
		switch {
		case ws.Error != "":
			state = "ERROR: " + ws.Error
		case ws.Time.IsZero():
			state = "STALE: nothing archived"
		case ws.Stale:
			state = "STALE"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ws.Name, dash(ws.Newest), age, ws.MaxAge, state, ws.Checked.Local().Format("2006-01-02 15:04:05"))
	}
	tw.Flush()
}

func newRunCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "run JOB",
		Short: "Run one job of the configuration now, as the daemon would",
		Long: `Run runs the named job of the configuration file now, with the same
pre-flight, backup, sync to copies, verification of a sample, retries,
journal entries and notifications as the daemon: the manual fallback the
procedures require. The journal records who ran it.

Exit codes: 0 ok, 1 failed, 3 some source files unreadable, 4 degraded
(a copy or a check failed), 5 verification found damage, 10 repository
missing, 11 locked, 12 wrong password.`,
		Example: `  einvault run invoices-hourly
  einvault run invoice-db-daily --config /etc/einvault/einvault.yaml --json`,
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := g.LoadConfig(true)
			if err != nil {
				return err
			}
			if cfg.Jobs[args[0]] == nil {
				return usageError("no job named %q in %s (jobs: %s)", args[0], cfg.Path, strings.Join(cfg.JobNames(), ", "))
			}
			log := g.log
			if g.Verbose > 0 {
				log = g.daemonLogger()
			}
			d, closeAll, err := setupDaemon(ctx, g, cfg, log)
			if err != nil {
				return err
			}
			defer closeAll()
			res, err := d.RunJob(ctx, args[0], g.startedBy())
			if err != nil {
				return err
			}
			if g.JSON {
				if err := g.PrintJSON(map[string]any{"message_type": "run_summary", "job": res.Job, "result": res.Result, "exit_code": res.ExitCode,
					"error": res.Error, "attempts": res.Attempts, "entries": res.Entries}); err != nil {
					return err
				}
			} else {
				for _, e := range res.Entries {
					g.Printf("%s\n", journal.FormatLine(e))
				}
				g.Printf("job %s: %s\n", res.Job, res.Result)
			}
			switch res.Result {
			case journal.ResultOK:
				return nil
			case journal.ResultDegraded:
				code := res.ExitCode
				if code != ExitPartial {
					code = ExitDegraded
				}
				return WithExit(code, fmt.Errorf("job %s finished degraded: %s", res.Job, res.Error))
			}
			code := res.ExitCode
			if code <= 0 || code == ExitOK {
				code = ExitError
			}
			return WithExit(code, fmt.Errorf("job %s failed: %s", res.Job, res.Error))
		},
	}
}
