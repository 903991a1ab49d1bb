// Package drill measures recovery drills: a drill restores a job's newest
// snapshot into a scratch place with the same verification as a real
// restore, and this package times it and judges it. RTO is the wall time
// from the start of the drill until everything was restored and
// verified; RPO is how old the newest restored data was when the drill
// started (the snapshot's time, or for continuous-WAL classes the time of
// the newest archived WAL file). Both are compared with the class's
// targets. The clock is injected, so the judgement is tested without
// waiting. Restoring is the caller's job (the command line, which uses
// the restorer and the database restore paths).
package drill

import (
	"fmt"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
)

// Verdicts.
const (
	Pass         = "pass"                // restored, verified, within the targets
	Fail         = "fail"                // restored and verified, but a target was missed
	VerifyFailed = "verification-failed" // restored data differs from the backup
	Error        = "error"               // the drill could not restore (or a step could not run)
)

// Targets are the class's recovery objectives (0: none).
type Targets struct {
	RTO time.Duration
	RPO time.Duration
}

// Step is one part of a drill (restore of one snapshot, database
// verification, clean-up).
type Step struct {
	Name    string  `json:"name"`
	OK      bool    `json:"ok"`
	Detail  string  `json:"detail,omitempty"`
	Seconds float64 `json:"seconds"`
	// Verification marks a step whose failure means the restored data
	// differs from the backup (exit code 5), not that it could not run.
	Verification bool `json:"-"`
}

// Result is a finished drill.
type Result struct {
	Job       string    `json:"job,omitempty"`
	Class     string    `json:"class,omitempty"`
	Snapshots []string  `json:"snapshots"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	// DataTime is the time of the newest restored data (the oldest of
	// the restored snapshots' times when several are restored, or the
	// newest archived WAL file).
	DataTime  time.Time `json:"data_time"`
	DataFrom  string    `json:"data_from"` // "snapshot", "wal" or "binlog"
	RTO       float64   `json:"rto_seconds"`
	RPO       float64   `json:"rpo_seconds"`
	TargetRTO float64   `json:"target_rto_seconds,omitempty"`
	TargetRPO float64   `json:"target_rpo_seconds,omitempty"`
	Verdict   string    `json:"verdict"`
	Reasons   []string  `json:"reasons,omitempty"`
	Steps     []Step    `json:"steps"`
	Files     int64     `json:"files"`
	Bytes     int64     `json:"bytes"`
	Target    string    `json:"target"`
	Kept      bool      `json:"kept"`
}

// Drill is a drill being measured.
type Drill struct {
	clock clockwork.Clock
	res   Result
	// recovered is when the last restore-and-verify step ended: clean-up
	// after it (dropping a scratch database) is not part of the RTO.
	recovered time.Time
}

// Start begins measuring a drill at clock.Now().
func Start(clock clockwork.Clock, job, class string) *Drill {
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	now := clock.Now()
	return &Drill{clock: clock, res: Result{Job: job, Class: class, Start: now, Steps: []Step{}, Snapshots: []string{}}}
}

// Now is the drill's clock.
func (d *Drill) Now() time.Time { return d.clock.Now() }

// Began is when the drill started.
func (d *Drill) Began() time.Time { return d.res.Start }

// Snapshot records a restored snapshot and the time of its data.
func (d *Drill) Snapshot(id string, at time.Time) {
	d.res.Snapshots = append(d.res.Snapshots, id)
	if d.res.DataTime.IsZero() || at.Before(d.res.DataTime) {
		d.res.DataTime, d.res.DataFrom = at, "snapshot"
	}
}

// WAL records the time of the newest archived WAL file: for a
// continuous-WAL class, the data a recovery reaches.
func (d *Drill) WAL(at time.Time) {
	if !at.IsZero() && at.After(d.res.DataTime) {
		d.res.DataTime, d.res.DataFrom = at, "wal"
	}
}

// Replayed records the newest transaction log time a recovery replayed
// to (MariaDB binary logs after a dump): the data the recovery reaches.
// Log times have one-second resolution: a log whose newest event lies in
// the snapshot's own second still carries the data to at least the
// snapshot's time, so it counts (the data time never moves back).
func (d *Drill) Replayed(at time.Time, from string) {
	if at.IsZero() || at.Before(d.res.DataTime.Truncate(time.Second)) {
		return
	}
	if at.After(d.res.DataTime) {
		d.res.DataTime = at
	}
	d.res.DataFrom = from
}

// Count adds restored files and bytes.
func (d *Drill) Count(files, bytes int64) { d.res.Files += files; d.res.Bytes += bytes }

// Step records a finished step that started at began. A recovery step
// (restore or verification) moves the recovery time forward.
func (d *Drill) Step(s Step, began time.Time, recovery bool) {
	now := d.clock.Now()
	s.Seconds = now.Sub(began).Seconds()
	d.res.Steps = append(d.res.Steps, s)
	if recovery {
		d.recovered = now
	}
}

// Finish judges the drill against t: error if a step could not run (or
// nothing was restored), verification-failed if restored data differs,
// fail if the RTO or RPO exceeds its target, else pass.
func (d *Drill) Finish(t Targets, target string, kept bool) Result {
	r := d.res
	r.End = d.clock.Now()
	rec := d.recovered
	if rec.IsZero() {
		rec = r.End
	}
	rto := rec.Sub(r.Start)
	r.RTO = rto.Seconds()
	var rpo time.Duration
	if !r.DataTime.IsZero() {
		rpo = max(r.Start.Sub(r.DataTime), 0)
	}
	r.RPO = rpo.Seconds()
	r.TargetRTO, r.TargetRPO = t.RTO.Seconds(), t.RPO.Seconds()
	r.Target, r.Kept = target, kept
	var errs, bad []string
	for _, s := range r.Steps {
		if s.OK {
			continue
		}
		if s.Verification {
			bad = append(bad, s.Name+": "+s.Detail)
		} else {
			errs = append(errs, s.Name+": "+s.Detail)
		}
	}
	switch {
	case len(errs) > 0 || len(r.Snapshots) == 0:
		r.Verdict = Error
		if len(r.Snapshots) == 0 && len(errs) == 0 {
			errs = append(errs, "nothing was restored")
		}
		r.Reasons = append(errs, bad...)
	case len(bad) > 0:
		r.Verdict, r.Reasons = VerifyFailed, bad
	default:
		if t.RTO > 0 && rto > t.RTO {
			r.Reasons = append(r.Reasons, fmt.Sprintf("RTO %s exceeds the target of %s", Round(rto), t.RTO))
		}
		if t.RPO > 0 && rpo > t.RPO {
			r.Reasons = append(r.Reasons, fmt.Sprintf("RPO %s exceeds the target of %s (newest data from %s)", Round(rpo), t.RPO, r.DataFrom))
		}
		r.Verdict = Pass
		if len(r.Reasons) > 0 {
			r.Verdict = Fail
		}
	}
	return r
}

// Summary is the one-line verdict of r.
func (r Result) Summary() string {
	what := "drill"
	if r.Job != "" {
		what = "drill of " + r.Job
	}
	line := fmt.Sprintf("%s: %s — RTO %s%s, RPO %s%s", what, strings.ToUpper(r.Verdict), Round(secs(r.RTO)), target(r.TargetRTO), Round(secs(r.RPO)), target(r.TargetRPO))
	if len(r.Reasons) > 0 {
		line += "; " + strings.Join(r.Reasons, "; ")
	}
	return line
}

func target(s float64) string {
	if s <= 0 {
		return " (no target)"
	}
	return " (target " + secs(s).String() + ")"
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Round shortens d for people: ms under a minute, s under an hour.
func Round(d time.Duration) time.Duration {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute)
	case d >= time.Minute:
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
