package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/einvault/einvault/internal/journal"
	"github.com/einvault/einvault/internal/notify"
)

// CheckStale raises a "stale" alert for every job whose newest
// successful backup is older than its class's RPO — the data at risk if
// the server died now is more than the procedures allow. One alert per
// episode: it is raised again only after a backup of the job succeeded
// in between. A job that never backed up counts from when the daemon
// started. The daemon calls it every minute.
func (d *Daemon) CheckStale(ctx context.Context) {
	cfg := d.Config()
	now := d.clock.Now()
	for _, name := range cfg.JobNames() {
		job := cfg.Jobs[name]
		cl := cfg.Classes[job.Class]
		if cl == nil || cl.RPODur <= 0 {
			continue
		}
		last, ok, err := d.lastBackup(ctx, name)
		if err != nil {
			d.log.Error("stale check: cannot read the journal", "job", name, "err", err)
			continue
		}
		since, what := last, "the newest successful backup"
		if !ok {
			since, what = d.startedAt(), "no successful backup since the daemon started"
		}
		age := now.Sub(since)
		d.mu.Lock()
		if age <= cl.RPODur {
			delete(d.stale, name)
			d.mu.Unlock()
			continue
		}
		already := d.stale[name]
		d.stale[name] = true
		d.mu.Unlock()
		if already {
			continue
		}
		fields := map[string]string{"age": age.Round(time.Minute).String(), "rpo": cl.RPODur.String(), "class": cl.Name}
		if ok {
			fields["last_backup"] = last.Format(time.RFC3339)
		}
		d.notify(ctx, notify.Event{Kind: notify.KindStale, Severity: notify.SeverityCritical, Job: name, Op: OpBackup,
			Message: fmt.Sprintf("Job %s: %s is %s old, more than the RPO of %s for %s", name, what, age.Round(time.Minute), cl.RPODur, cl.Name),
			Fields:  fields})
	}
}

// lastBackup is the end of the newest backup of job that stored data
// (ok or degraded).
func (d *Daemon) lastBackup(ctx context.Context, job string) (time.Time, bool, error) {
	es, err := d.opts.Journal.List(ctx, journal.Filter{Job: job, Op: OpBackup, Limit: 200})
	if err != nil {
		return time.Time{}, false, err
	}
	for i := len(es) - 1; i >= 0; i-- {
		if r := es[i].Result; r == journal.ResultOK || r == journal.ResultDegraded {
			return es[i].End, true, nil
		}
	}
	return time.Time{}, false, nil
}

func (d *Daemon) startedAt() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.started
}
