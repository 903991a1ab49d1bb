package schedule

import (
	"sort"
	"time"
)

// Due is a job whose time has come.
type Due struct {
	Job string
	// Scheduled is the time it was due (before any window held it).
	Scheduled time.Time
	// Missed counts earlier runs that did not happen (the process was
	// down or asleep); they collapse into this one run and are reported.
	Missed int
	// Deferred is set when a maintenance window held the run back.
	Deferred bool
}

type entry struct {
	spec      Spec
	next      time.Time // when it is due (moved by windows)
	scheduled time.Time // when it was due by its schedule
	deferred  bool
}

// Plan keeps the next run of every timed job. It is not safe for
// concurrent use; the daemon's loop owns it.
type Plan struct {
	windows []Window
	jobs    map[string]*entry
}

// NewPlan makes an empty plan honouring windows.
func NewPlan(windows []Window) *Plan {
	return &Plan{windows: windows, jobs: map[string]*entry{}}
}

// maxMissedCount bounds the count of missed runs (an interval of 1s over
// a year of downtime would otherwise loop for long).
const maxMissedCount = 10000

// countBetween counts the runs of spec in (from, to].
func countBetween(spec Spec, from, to time.Time) int {
	n := 0
	for t := spec.Next(from); !t.IsZero() && !t.After(to) && n < maxMissedCount; t = spec.Next(t) {
		n++
	}
	return n
}

// Add schedules job. last is its previous run (zero: never ran). A job
// whose runs were missed while the daemon was down is due at once, with
// the missed runs counted.
func (p *Plan) Add(job string, spec Spec, last, now time.Time) {
	e := &entry{spec: spec}
	p.jobs[job] = e
	if !spec.Timed() {
		return
	}
	if last.IsZero() || last.After(now) {
		e.next = spec.Next(now)
		e.scheduled = e.next
		return
	}
	next := spec.Next(last)
	if next.After(now) {
		e.next, e.scheduled = next, next
		return
	}
	// At least one run was due while nobody ran it: run once now and
	// report the others.
	e.scheduled, e.next = next, now
}

// Remove drops job from the plan.
func (p *Plan) Remove(job string) { delete(p.jobs, job) }

// Jobs lists the planned jobs, sorted.
func (p *Plan) Jobs() []string {
	out := make([]string, 0, len(p.jobs))
	for j := range p.jobs {
		out = append(out, j)
	}
	sort.Strings(out)
	return out
}

// NextRun is when job runs next (zero: not by the clock).
func (p *Plan) NextRun(job string) time.Time {
	if e, ok := p.jobs[job]; ok {
		return e.next
	}
	return time.Time{}
}

// Next is the earliest time anything is due (zero: nothing timed).
func (p *Plan) Next() time.Time {
	var min time.Time
	for _, e := range p.jobs {
		if !e.next.IsZero() && (min.IsZero() || e.next.Before(min)) {
			min = e.next
		}
	}
	return min
}

// Due returns the jobs due at now, sorted by name, and schedules their
// next runs. Jobs held by a maintenance window move to its end.
func (p *Plan) Due(now time.Time) []Due {
	var out []Due
	for _, job := range p.Jobs() {
		e := p.jobs[job]
		if e.next.IsZero() || e.next.After(now) {
			continue
		}
		if until := HeldUntil(p.windows, job, now); !until.IsZero() {
			e.next, e.deferred = until, true
			continue
		}
		// Runs that passed while the loop was late (suspend, a long
		// window) count as missed, except the one that was held.
		// Runs that fell inside a window are folded into this one.
		missed := 0
		if !e.deferred {
			missed = countBetween(e.spec, e.scheduled, now)
		}
		out = append(out, Due{Job: job, Scheduled: e.scheduled, Missed: missed, Deferred: e.deferred})
		e.deferred = false
		e.next = e.spec.Next(now)
		e.scheduled = e.next
	}
	return out
}
