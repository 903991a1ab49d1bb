// Package daemon runs the jobs of einvault.yaml on their schedules: it
// limits how many run at once, holds them back during maintenance
// windows, runs retention (forget) and prune on their own schedules,
// retries transient failures with backoff, verifies the packs each backup
// wrote, runs recovery drills on their schedules, checks that archived WAL
// stays fresh, records every run in the journal, notifies, and keeps its
// state (jobs, last results, next runs) in the state database. A job
// that cannot run is reported, never silently skipped; runs missed while
// the daemon was down are reported when it starts. 'einvault run JOB'
// uses the same code for one job by hand.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/einvault/einvault/internal/config"
	"github.com/einvault/einvault/internal/journal"
	"github.com/einvault/einvault/internal/notify"
	"github.com/einvault/einvault/internal/schedule"
	"github.com/jonboulle/clockwork"
)

// Notifier tells people about events (internal/notify's dispatcher, or
// LogNotifier).
type Notifier interface {
	Notify(ctx context.Context, ev notify.Event) error
}

// LogNotifier writes events to a logger; used when no notification
// channel is configured.
type LogNotifier struct{ Log *slog.Logger }

// Notify logs ev.
func (n LogNotifier) Notify(_ context.Context, ev notify.Event) error {
	level := slog.LevelInfo
	switch ev.Severity {
	case notify.SeverityCritical:
		level = slog.LevelError
	case notify.SeverityWarning:
		level = slog.LevelWarn
	}
	n.Log.Log(context.Background(), level, "event: "+ev.Message, "kind", ev.Kind, "job", ev.Job, "op", ev.Op)
	return nil
}

// Operations a Runner performs.
const (
	OpPreflight = "preflight"
	OpBackup    = "backup"
	OpCheck     = "check"
	OpForget    = "forget"
	OpPrune     = "prune"
	OpReport    = "report"
	OpDrill     = "drill"
	OpBinlog    = "binlog"
)

// Op is one operation for a Runner.
type Op struct {
	Name    string
	Job     *config.Job // nil for forget and prune
	Trigger string      // who or what started it
	// Packs are, for the check after a backup, the packs the backup
	// wrote: the verification reads these, not the whole repository.
	Packs []Pack
	// Snapshot is, for the check after a backup, what it made.
	Snapshot string
}

// Pack is a pack file a backup wrote.
type Pack struct {
	ID   string
	Size int64
}

// Outcome is what an operation did. Entry carries the counts, kind,
// snapshot, copies, exit code and error; Result and times are filled in
// by the daemon when empty.
type Outcome struct {
	Entry journal.Entry
	// Retryable marks a failure worth another attempt (network, lock).
	Retryable bool
	// NewPacks are the packs a backup wrote.
	NewPacks []Pack
}

// Failed reports whether the outcome is a failure.
func (o Outcome) Failed() bool { return o.Entry.Result == journal.ResultFailed }

// Runner performs operations against the repository; the command line
// implements it with the same code as its commands.
type Runner interface {
	Run(ctx context.Context, cfg *config.Config, op Op) Outcome
}

// Options configure a Daemon.
type Options struct {
	Clock    clockwork.Clock
	Logger   *slog.Logger
	Runner   Runner
	Journal  *journal.Journal
	Notifier Notifier
	// Load reads the config again (SIGHUP).
	Load func() (*config.Config, error)
	// StopGrace is how long running jobs may take to finish after a stop
	// request before they are cancelled (default 30s).
	StopGrace time.Duration
	// Tick is called about every minute while serving (alert escalation).
	Tick func(ctx context.Context)
	// WAL finds the newest archived WAL files for the WAL freshness
	// check (nil: no check).
	WAL WALProber
}

// Daemon runs jobs.
type Daemon struct {
	opts  Options
	clock clockwork.Clock
	log   *slog.Logger
	state *State

	mu      sync.Mutex
	cfg     *config.Config
	running map[string]bool
	again   map[string]bool // due again while running: run once more after
	limit   *schedule.Limiter
	stale   map[string]bool // jobs alerted as older than their RPO
	started time.Time
}

// New makes a daemon for cfg; the state lives in the journal's database.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Daemon, error) {
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Notifier == nil {
		opts.Notifier = LogNotifier{Log: opts.Logger}
	}
	if opts.StopGrace == 0 {
		opts.StopGrace = 30 * time.Second
	}
	if opts.Runner == nil || opts.Journal == nil {
		return nil, errors.New("daemon: a runner and a journal are required")
	}
	st, err := OpenState(ctx, opts.Journal.DB())
	if err != nil {
		return nil, err
	}
	return &Daemon{opts: opts, clock: opts.Clock, log: opts.Logger, state: st, cfg: cfg, running: map[string]bool{}, again: map[string]bool{},
		limit: schedule.NewLimiter(cfg.Daemon.Concurrency), stale: map[string]bool{}, started: opts.Clock.Now()}, nil
}

// Config is the configuration in force.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// State is the daemon's state store.
func (d *Daemon) State() *State { return d.state }

// record journals e; a failure to journal is logged loudly and notified
// (the entry is queued by the journal, never dropped).
func (d *Daemon) record(ctx context.Context, e journal.Entry) journal.Entry {
	ctx = context.WithoutCancel(ctx)
	out, err := d.opts.Journal.Record(ctx, e)
	if err != nil {
		d.log.Error("journal: entry not written", "op", e.Op, "job", e.Job, "err", err)
		d.notify(ctx, notify.Event{Kind: notify.KindDegraded, Severity: notify.SeverityWarning, Job: e.Job, Op: "journal",
			Message: "The journal could not be written: " + err.Error(), Fields: map[string]string{"error": err.Error()}})
	}
	return out
}

func (d *Daemon) notify(ctx context.Context, ev notify.Event) {
	if ev.Time.IsZero() {
		ev.Time = d.clock.Now()
	}
	if err := d.opts.Notifier.Notify(context.WithoutCancel(ctx), ev); err != nil {
		d.log.Error("notification not queued", "event", ev.Message, "err", err)
	}
}

// JobResult is the outcome of one job run.
type JobResult struct {
	Job      string
	Result   string // ok, degraded, failed
	ExitCode int
	Error    string
	Attempts int
	Entries  []journal.Entry
}

// RunJob runs the job name now: pre-flight, backup (with its sync to
// copies), verification of a sample, with retries of transient failures;
// it journals, notifies and updates the job's state. trigger says who
// started it (user@host, schedule, change, daemon).
func (d *Daemon) RunJob(ctx context.Context, name, trigger string) (JobResult, error) {
	cfg := d.Config()
	if cfg.Jobs[name] == nil {
		return JobResult{}, fmt.Errorf("no job named %q in %s (jobs: %s)", name, cfg.Path, strings.Join(cfg.JobNames(), ", "))
	}
	d.mu.Lock()
	if d.running[name] {
		d.mu.Unlock()
		return JobResult{}, fmt.Errorf("job %s is already running", name)
	}
	d.running[name] = true
	d.mu.Unlock()
	return d.runMarked(ctx, name, trigger)
}

// runMarked runs a job already marked running, and clears the mark.
func (d *Daemon) runMarked(ctx context.Context, name, trigger string) (JobResult, error) {
	defer func() {
		d.mu.Lock()
		delete(d.running, name)
		d.mu.Unlock()
	}()
	cfg := d.Config()
	job := cfg.Jobs[name]
	if job == nil {
		return JobResult{}, fmt.Errorf("job %s is no longer in the config", name)
	}
	start := d.clock.Now()
	if err := d.state.Started(ctx, name, start); err != nil {
		d.log.Error("daemon state not written", "err", err)
	}
	res := d.runJob(ctx, cfg, job, trigger)
	if err := d.state.Finished(ctx, name, start, d.clock.Now(), res.Result, res.Error); err != nil {
		d.log.Error("daemon state not written", "err", err)
	}
	d.report(ctx, job, res)
	return res, nil
}

func (d *Daemon) runJob(ctx context.Context, cfg *config.Config, job *config.Job, trigger string) JobResult {
	res := JobResult{Job: job.Name}
	retries := cfg.Daemon.RetryCount
	if job.Retries != nil {
		retries = *job.Retries
	}
	backoff := cfg.Daemon.BackoffDur
	var last Outcome
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			d.log.Warn("retrying job after a transient failure", "job", job.Name, "attempt", attempt+1, "wait", backoff, "err", last.Entry.Error)
			select {
			case <-ctx.Done():
				attempt = retries + 1
				continue
			case <-d.clock.After(backoff):
			}
			backoff = min(2*backoff, max(cfg.Daemon.MaxBackoffDur, cfg.Daemon.BackoffDur))
		}
		res.Attempts = attempt + 1
		last = d.op(ctx, cfg, Op{Name: OpPreflight, Job: job, Trigger: trigger}, false)
		if !last.Failed() {
			last = d.op(ctx, cfg, Op{Name: OpBackup, Job: job, Trigger: trigger}, true)
		} else {
			// A failed pre-flight is journaled as the backup that could not run.
			last.Entry.Op = OpBackup
			last.Entry.Error = "pre-flight: " + last.Entry.Error
			last.Entry = d.finishEntry(last.Entry, job, trigger)
			if !last.Retryable || attempt == retries || ctx.Err() != nil {
				last.Entry = d.record(ctx, last.Entry)
			}
		}
		if !last.Failed() || !last.Retryable || ctx.Err() != nil {
			break
		}
	}
	res.Entries = append(res.Entries, last.Entry)
	res.Result, res.ExitCode, res.Error = last.Entry.Result, last.Entry.ExitCode, last.Entry.Error
	if last.Failed() || job.Verify == "off" || ctx.Err() != nil {
		return res
	}
	v := d.op(ctx, cfg, Op{Name: OpCheck, Job: job, Trigger: trigger, Packs: last.NewPacks, Snapshot: last.Entry.Snapshot}, true)
	res.Entries = append(res.Entries, v.Entry)
	switch v.Entry.Result {
	case journal.ResultFailed:
		res.Result, res.ExitCode, res.Error = journal.ResultFailed, v.Entry.ExitCode, "verification: "+v.Entry.Error
	case journal.ResultDegraded:
		if res.Result == journal.ResultOK {
			res.Result, res.ExitCode, res.Error = journal.ResultDegraded, v.Entry.ExitCode, "verification: "+v.Entry.Error
		}
	}
	return res
}

func (d *Daemon) finishEntry(e journal.Entry, job *config.Job, trigger string) journal.Entry {
	if job != nil {
		e.Job = job.Name
	}
	if e.StartedBy == "" {
		e.StartedBy = trigger
	}
	if e.End.IsZero() {
		e.End = d.clock.Now()
	}
	if e.Result == "" {
		switch {
		case e.ExitCode == 0 && e.Error == "":
			e.Result = journal.ResultOK
		case e.ExitCode == 3 || e.ExitCode == 4:
			e.Result = journal.ResultDegraded
		default:
			e.Result = journal.ResultFailed
		}
	}
	return e
}

// op runs one operation and, when journal is set, records it.
func (d *Daemon) op(ctx context.Context, cfg *config.Config, op Op, record bool) Outcome {
	start := d.clock.Now()
	o := d.opts.Runner.Run(ctx, cfg, op)
	if o.Entry.Op == "" {
		o.Entry.Op = op.Name
	}
	if o.Entry.Start.IsZero() {
		o.Entry.Start = start
	}
	o.Entry = d.finishEntry(o.Entry, op.Job, op.Trigger)
	if ctx.Err() != nil && o.Failed() && o.Entry.Error == "" {
		o.Entry.Error = "stopped: the daemon is shutting down"
	}
	if record {
		o.Entry = d.record(ctx, o.Entry)
	}
	return o
}

// report notifies about a finished job.
func (d *Daemon) report(ctx context.Context, job *config.Job, res JobResult) {
	fields := map[string]string{"attempts": fmt.Sprint(res.Attempts), "exit_code": fmt.Sprint(res.ExitCode)}
	if res.Error != "" {
		fields["error"] = res.Error
	}
	switch res.Result {
	case journal.ResultFailed:
		d.notify(ctx, notify.Event{Kind: notify.KindFailure, Severity: notify.SeverityCritical, Job: job.Name, Op: OpBackup,
			Message: fmt.Sprintf("Job %s failed after %d attempt(s): %s", job.Name, res.Attempts, res.Error), Fields: fields})
	case journal.ResultDegraded:
		d.notify(ctx, notify.Event{Kind: notify.KindDegraded, Severity: notify.SeverityWarning, Job: job.Name, Op: OpBackup,
			Message: fmt.Sprintf("Job %s finished degraded: %s", job.Name, res.Error), Fields: fields})
	case journal.ResultOK:
		if prev, ok := d.state.Job(ctx, job.Name); ok && prev.PrevResult == journal.ResultFailed {
			d.notify(ctx, notify.Event{Kind: notify.KindRecovered, Severity: notify.SeverityInfo, Job: job.Name, Op: OpBackup,
				Message: fmt.Sprintf("Job %s succeeded again", job.Name), Fields: fields})
		}
	}
}

// RunMaintenance runs retention (forget by each class's effective
// retention, never below its legal minimum) or prune, journaled and
// notified like a job.
func (d *Daemon) RunMaintenance(ctx context.Context, op, trigger string) Outcome {
	cfg := d.Config()
	name := RetentionJob
	switch op {
	case OpPrune:
		name = PruneJob
	case OpReport:
		name = ReportJob
	}
	start := d.clock.Now()
	d.state.Started(ctx, name, start)
	o := d.op(ctx, cfg, Op{Name: op, Trigger: trigger}, true)
	d.state.Finished(ctx, name, start, d.clock.Now(), o.Entry.Result, o.Entry.Error)
	if o.Failed() {
		d.notify(ctx, notify.Event{Kind: notify.KindFailure, Severity: notify.SeverityWarning, Op: op,
			Message: fmt.Sprintf("%s failed: %s", op, o.Entry.Error), Fields: map[string]string{"error": o.Entry.Error}})
	}
	return o
}

// RunDrill runs a recovery drill of job now (restore of its newest
// snapshot into a scratch place, verification, RTO/RPO against the
// class's targets), journals it and notifies when it does not pass: a
// missed target as degraded, a failed verification or a drill that could
// not run as a failure.
func (d *Daemon) RunDrill(ctx context.Context, name, trigger string) Outcome {
	o, ok := d.runJobOp(ctx, OpDrill, DrillPrefix, name, trigger)
	if !ok {
		return o
	}
	fields := map[string]string{"exit_code": fmt.Sprint(o.Entry.ExitCode), "rto": secs(o.Entry.RTO), "rpo": secs(o.Entry.RPO)}
	if o.Entry.TargetRTO > 0 {
		fields["target_rto"] = secs(o.Entry.TargetRTO)
	}
	if o.Entry.TargetRPO > 0 {
		fields["target_rpo"] = secs(o.Entry.TargetRPO)
	}
	if o.Entry.Error != "" {
		fields["error"] = o.Entry.Error
	}
	switch o.Entry.Result {
	case journal.ResultFailed:
		d.notify(ctx, notify.Event{Kind: notify.KindFailure, Severity: notify.SeverityCritical, Job: name, Op: OpDrill,
			Message: fmt.Sprintf("Recovery drill of %s failed: %s", name, o.Entry.Error), Fields: fields})
	case journal.ResultDegraded:
		d.notify(ctx, notify.Event{Kind: notify.KindDegraded, Severity: notify.SeverityWarning, Job: name, Op: OpDrill,
			Message: fmt.Sprintf("Recovery drill of %s missed its target: %s", name, o.Entry.Error), Fields: fields})
	}
	return o
}

// runJobOp runs operation op of job name (a drill, a binary log archive)
// and journals it, with its own line (prefix+name) in the state table.
func (d *Daemon) runJobOp(ctx context.Context, op, prefix, name, trigger string) (Outcome, bool) {
	cfg := d.Config()
	job := cfg.Jobs[name]
	if job == nil {
		return Outcome{Entry: journal.Entry{Op: op, Job: name, Result: journal.ResultFailed, Error: "no job named " + name}}, false
	}
	plan := prefix + name
	start := d.clock.Now()
	if err := d.state.Started(ctx, plan, start); err != nil {
		d.log.Error("daemon state not written", "err", err)
	}
	o := d.op(ctx, cfg, Op{Name: op, Job: job, Trigger: trigger}, true)
	if err := d.state.Finished(ctx, plan, start, d.clock.Now(), o.Entry.Result, o.Entry.Error); err != nil {
		d.log.Error("daemon state not written", "err", err)
	}
	return o, true
}

// RunBinlog archives the binary logs of job's MariaDB/MySQL sources now,
// journals it and raises a critical alert when it fails: until it works
// again, point-in-time restores cannot reach past the last archived log.
func (d *Daemon) RunBinlog(ctx context.Context, name, trigger string) Outcome {
	o, ok := d.runJobOp(ctx, OpBinlog, BinlogPrefix, name, trigger)
	if ok && o.Failed() {
		d.notify(ctx, notify.Event{Kind: notify.KindFailure, Severity: notify.SeverityCritical, Job: name, Op: OpBinlog,
			Message: fmt.Sprintf("Binary log archiving of %s failed (point-in-time restores stop at the last archived log): %s", name, o.Entry.Error),
			Fields:  map[string]string{"exit_code": fmt.Sprint(o.Entry.ExitCode), "error": o.Entry.Error}})
	}
	return o
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

// reportMissed journals and notifies runs that did not happen.
func (d *Daemon) reportMissed(ctx context.Context, job string, n int, since time.Time, why string) {
	if n <= 0 {
		return
	}
	msg := fmt.Sprintf("%d scheduled run(s) of %s did not happen (%s); running it now", n, job, why)
	d.log.Warn(msg)
	now := d.clock.Now()
	op := OpBackup
	switch {
	case strings.HasPrefix(job, DrillPrefix):
		op, job = OpDrill, strings.TrimPrefix(job, DrillPrefix)
	case strings.HasPrefix(job, BinlogPrefix):
		op, job = OpBinlog, strings.TrimPrefix(job, BinlogPrefix)
	case strings.HasPrefix(job, "@"):
		op, job = strings.TrimPrefix(job, "@"), ""
	}
	d.record(ctx, journal.Entry{Op: op, Job: job, Start: since, End: now, Result: journal.ResultMissed, Error: msg, StartedBy: "schedule", ExitCode: -1})
	d.notify(ctx, notify.Event{Kind: notify.KindFailure, Severity: notify.SeverityWarning, Job: job, Op: op, Message: msg,
		Fields: map[string]string{"missed": fmt.Sprint(n)}})
}
