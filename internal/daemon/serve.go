package daemon

import (
	"context"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/einvault/einvault/internal/journal"
	"github.com/einvault/einvault/internal/notify"
	"github.com/einvault/einvault/internal/schedule"
)

// Names of the maintenance entries in the plan and the state.
const (
	RetentionJob = "@retention"
	PruneJob     = "@prune"
	ReportJob    = "@report"
	// DrillPrefix names a job's drills in the plan and the state
	// ("drill:invoices-hourly").
	DrillPrefix = "drill:"
	// BinlogPrefix names a job's binary log archiving ("binlog:shop-db").
	BinlogPrefix = "binlog:"
)

type finished struct{ job string }

// Serve runs jobs on their schedules until ctx ends (SIGTERM), then lets
// running jobs finish for StopGrace before cancelling them; it returns
// when all have stopped. A value on reload (SIGHUP) reads the config
// again; a config that does not load is reported and the last good one
// stays in force.
func (d *Daemon) Serve(ctx context.Context, reload <-chan struct{}) error {
	host, _ := os.Hostname()
	started := d.clock.Now()
	status := Status{PID: os.Getpid(), Host: host, Started: started, Heartbeat: started, Config: d.Config().Path}
	_ = d.state.ClearRunning(ctx)
	d.setStatus(ctx, status)

	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	var wg sync.WaitGroup
	done := make(chan finished, 16)
	change := make(chan string, 16)

	var plan *schedule.Plan
	var stopWatch context.CancelFunc
	build := func() {
		if stopWatch != nil {
			stopWatch()
		}
		var wctx context.Context
		wctx, stopWatch = context.WithCancel(ctx)
		plan = d.buildPlan(ctx)
		d.watch(wctx, change)
	}
	build()
	defer func() { stopWatch() }()

	start := func(job, trigger string) {
		d.mu.Lock()
		if d.running[job] {
			// Due again while it still runs: run once more when it ends.
			d.again[job] = true
			d.mu.Unlock()
			d.log.Info("job still running; it will run again when it ends", "job", job)
			return
		}
		d.running[job] = true
		limit := d.limit
		d.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { done <- finished{job} }()
			if err := limit.Acquire(ctx); err != nil {
				d.mu.Lock()
				delete(d.running, job)
				d.mu.Unlock()
				d.reportMissed(runCtx, job, 1, d.clock.Now(), "the daemon stopped while it waited for a free slot")
				return
			}
			defer limit.Release()
			switch {
			case job == RetentionJob || job == PruneJob || job == ReportJob:
				op := OpForget
				switch job {
				case PruneJob:
					op = OpPrune
				case ReportJob:
					op = OpReport
				}
				d.RunMaintenance(runCtx, op, trigger)
				d.mu.Lock()
				delete(d.running, job)
				d.mu.Unlock()
			case strings.HasPrefix(job, DrillPrefix):
				d.RunDrill(runCtx, strings.TrimPrefix(job, DrillPrefix), trigger)
				d.mu.Lock()
				delete(d.running, job)
				d.mu.Unlock()
			case strings.HasPrefix(job, BinlogPrefix):
				d.RunBinlog(runCtx, strings.TrimPrefix(job, BinlogPrefix), trigger)
				d.mu.Lock()
				delete(d.running, job)
				d.mu.Unlock()
			default:
				if _, err := d.runMarked(runCtx, job, trigger); err != nil {
					d.log.Error("job not run", "job", job, "err", err)
					d.reportMissed(runCtx, job, 1, d.clock.Now(), err.Error())
				}
			}
		}()
	}

	tick := d.clock.NewTicker(time.Minute)
	defer tick.Stop()
	var walRunning atomic.Bool
	var nextWAL time.Time
	checkWAL := func() {
		every := d.Config().Daemon.WALCheckDur
		now := d.clock.Now()
		if every <= 0 || now.Before(nextWAL) || !walRunning.CompareAndSwap(false, true) {
			return
		}
		nextWAL = now.Add(every)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer walRunning.Store(false)
			d.CheckWAL(runCtx)
		}()
	}
	checkWAL()
	for {
		d.savePlan(ctx, plan)
		var wake <-chan time.Time
		var timer interface{ Stop() bool }
		if next := plan.Next(); !next.IsZero() {
			t := d.clock.NewTimer(max(next.Sub(d.clock.Now()), 0))
			wake, timer = t.Chan(), t
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			d.stop(&wg, cancelRun, done)
			status.Stopped, status.Heartbeat = true, d.clock.Now()
			d.setStatus(context.WithoutCancel(ctx), status)
			_ = d.opts.Journal.Flush(context.WithoutCancel(ctx))
			return nil
		case <-wake:
			for _, due := range plan.Due(d.clock.Now()) {
				if due.Missed > 0 {
					d.reportMissed(ctx, due.Job, due.Missed, due.Scheduled, "the daemon was not running or was busy")
				}
				trigger := "schedule"
				if due.Deferred {
					trigger = "schedule (after maintenance window)"
				}
				start(due.Job, trigger)
			}
		case job := <-change:
			if _, ok := d.Config().Jobs[job]; ok {
				start(job, "change")
			}
		case f := <-done:
			d.mu.Lock()
			again := d.again[f.job]
			delete(d.again, f.job)
			d.mu.Unlock()
			if again && ctx.Err() == nil {
				start(f.job, "schedule (was due while running)")
			}
		case <-reload:
			if d.Reload(ctx) {
				status.Config, status.ConfigError = d.Config().Path, ""
				build()
			} else {
				status.ConfigError = "reload failed; running with the last good config"
			}
			d.setStatus(ctx, status)
		case <-tick.Chan():
			status.Heartbeat = d.clock.Now()
			d.setStatus(ctx, status)
			if d.opts.Journal.Pending() > 0 {
				if err := d.opts.Journal.Flush(ctx); err != nil {
					d.log.Error("journal: queued entries still not written", "err", err)
				}
			}
			d.CheckStale(ctx)
			checkWAL()
			if d.opts.Tick != nil {
				d.opts.Tick(ctx)
			}
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (d *Daemon) setStatus(ctx context.Context, st Status) {
	if err := d.state.SetStatus(ctx, st); err != nil {
		d.log.Error("daemon state not written", "err", err)
	}
}

// stop waits StopGrace for running jobs, then cancels them and waits.
func (d *Daemon) stop(wg *sync.WaitGroup, cancel context.CancelFunc, done chan finished) {
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	d.log.Info("stopping: waiting for running jobs", "grace", d.opts.StopGrace)
	grace := d.clock.After(d.opts.StopGrace)
	for {
		select {
		case <-all:
			return
		case <-done:
		case <-grace:
			d.log.Warn("stopping: cancelling running jobs (they leave nothing partial referenced)")
			cancel()
			grace = nil
		}
	}
}

// buildPlan schedules every timed job and the maintenance runs, counting
// runs missed since their last recorded start.
func (d *Daemon) buildPlan(ctx context.Context) *schedule.Plan {
	cfg := d.Config()
	plan := schedule.NewPlan(cfg.Windows())
	now := d.clock.Now()
	last := map[string]time.Time{}
	if js, err := d.state.Jobs(ctx); err == nil {
		for _, j := range js {
			last[j.Name] = j.LastStart
		}
	}
	for _, name := range cfg.JobNames() {
		plan.Add(name, cfg.Jobs[name].Spec, last[name], now)
		if sp := cfg.Jobs[name].DrillSpec; sp.Timed() {
			plan.Add(DrillPrefix+name, sp, last[DrillPrefix+name], now)
		}
		if sp := cfg.Jobs[name].BinlogSpec; sp.Timed() {
			plan.Add(BinlogPrefix+name, sp, last[BinlogPrefix+name], now)
		}
	}
	plan.Add(RetentionJob, cfg.Daemon.RetentionSpec, last[RetentionJob], now)
	plan.Add(PruneJob, cfg.Daemon.PruneSpec, last[PruneJob], now)
	plan.Add(ReportJob, cfg.Daemon.Report.Spec, last[ReportJob], now)
	return plan
}

func (d *Daemon) savePlan(ctx context.Context, plan *schedule.Plan) {
	cfg := d.Config()
	for _, name := range plan.Jobs() {
		sched := ""
		switch name {
		case RetentionJob:
			sched = cfg.Daemon.RetentionSpec.Describe()
		case PruneJob:
			sched = cfg.Daemon.PruneSpec.Describe()
		case ReportJob:
			sched = cfg.Daemon.Report.Spec.Describe()
		default:
			if j := cfg.Jobs[strings.TrimPrefix(name, DrillPrefix)]; j != nil && strings.HasPrefix(name, DrillPrefix) {
				sched = j.DrillSpec.Describe()
			} else if j := cfg.Jobs[strings.TrimPrefix(name, BinlogPrefix)]; j != nil && strings.HasPrefix(name, BinlogPrefix) {
				sched = j.BinlogSpec.Describe()
			} else if j := cfg.Jobs[name]; j != nil {
				sched = j.Spec.Describe()
			}
		}
		if err := d.state.Planned(ctx, name, sched, plan.NextRun(name)); err != nil {
			d.log.Error("daemon state not written", "err", err)
			return
		}
	}
}

// watch starts file-system watchers for "on change" jobs.
func (d *Daemon) watch(ctx context.Context, change chan<- string) {
	cfg := d.Config()
	for _, name := range cfg.JobNames() {
		j := cfg.Jobs[name]
		if j.Spec.Kind != schedule.KindChange {
			continue
		}
		var paths []string
		for _, s := range j.Sources {
			if src := cfg.Sources[s]; src != nil {
				paths = append(paths, src.Paths...)
			}
		}
		sort.Strings(paths)
		db, err := schedule.Watch(ctx, d.clock, paths, j.Spec.Debounce, d.log)
		if err != nil {
			d.log.Error("cannot watch for changes", "job", name, "err", err)
			d.record(ctx, journal.Entry{Op: OpBackup, Job: name, Start: d.clock.Now(), Result: journal.ResultFailed, ExitCode: -1,
				Error: "cannot watch for changes: " + err.Error(), StartedBy: "daemon"})
			d.notify(ctx, notify.Event{Kind: notify.KindFailure, Severity: notify.SeverityCritical, Job: name, Op: OpBackup,
				Message: "Job " + name + " cannot watch its files for changes: " + err.Error()})
			continue
		}
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-db.C:
					select {
					case change <- name:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
}

// Reload reads the config again; on failure it reports and keeps the
// last good one. It returns whether the new config is in force.
func (d *Daemon) Reload(ctx context.Context) bool {
	if d.opts.Load == nil {
		return false
	}
	cfg, err := d.opts.Load()
	if err != nil {
		d.log.Error("config reload failed; keeping the last good config", "err", err)
		d.notify(ctx, notify.Event{Kind: notify.KindFailure, Severity: notify.SeverityWarning, Op: "reload",
			Message: "The configuration could not be reloaded; the daemon keeps the last good one: " + err.Error(),
			Fields:  map[string]string{"error": err.Error()}})
		return false
	}
	d.mu.Lock()
	d.cfg = cfg
	if cfg.Daemon.Concurrency != d.limit.Cap() {
		d.limit = schedule.NewLimiter(cfg.Daemon.Concurrency)
	}
	d.mu.Unlock()
	d.log.Info("config reloaded", "file", cfg.Path, "jobs", len(cfg.Jobs))
	return true
}
