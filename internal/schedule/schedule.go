// Package schedule decides when jobs run: cron expressions (robfig/cron
// syntax, optional seconds field), intervals ("every 15m"), "on change"
// (file-system notifications with debounce, see Watcher), maintenance
// windows that hold jobs back, and the concurrency limit. Time comes from
// an injected clock, so every decision is tested without sleeping.
package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Kind is how a schedule triggers.
type Kind string

// Schedule kinds.
const (
	KindCron     Kind = "cron"
	KindInterval Kind = "interval"
	KindChange   Kind = "change" // on every change of the job's files
	KindManual   Kind = "manual" // only 'einvault run'
)

// DefaultDebounce is how long "on change" waits for quiet before it runs.
const DefaultDebounce = 30 * time.Second

// Spec is a parsed schedule.
type Spec struct {
	Text     string
	Kind     Kind
	Every    time.Duration // KindInterval
	Debounce time.Duration // KindChange
	cron     cron.Schedule
}

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

var words = map[string]string{
	"hourly":  "0 * * * *",
	"daily":   "0 0 * * *",
	"weekly":  "0 0 * * 0",
	"monthly": "0 0 1 * *",
	"yearly":  "0 0 1 1 *",
}

// Parse reads a schedule: "hourly", "daily", "weekly", "monthly", a cron
// expression ("15 * * * *", "*/10 * * * * *" with seconds, "@daily"),
// an interval ("every 15m", "@every 1h"), "on change" (optionally with a
// debounce: "on change 10s") or "manual".
func Parse(s string) (Spec, error) {
	text := strings.TrimSpace(s)
	low := strings.ToLower(text)
	sp := Spec{Text: text}
	switch {
	case low == "":
		return Spec{}, fmt.Errorf("empty schedule: use hourly, daily, a cron expression such as \"0 * * * *\", \"every 15m\", \"on change\" or \"manual\"")
	case low == "manual":
		sp.Kind = KindManual
		return sp, nil
	case strings.HasPrefix(low, "on change"):
		sp.Kind, sp.Debounce = KindChange, DefaultDebounce
		if rest := strings.TrimSpace(strings.TrimPrefix(low, "on change")); rest != "" {
			d, err := time.ParseDuration(rest)
			if err != nil || d <= 0 {
				return Spec{}, fmt.Errorf("schedule %q: debounce %q is not a positive duration (write e.g. \"on change 30s\")", text, rest)
			}
			sp.Debounce = d
		}
		return sp, nil
	case strings.HasPrefix(low, "every ") || strings.HasPrefix(low, "@every "):
		rest := strings.TrimSpace(low[strings.Index(low, " ")+1:])
		d, err := time.ParseDuration(rest)
		if err != nil || d < time.Second {
			return Spec{}, fmt.Errorf("schedule %q: interval %q must be a duration of at least 1s (write e.g. \"every 15m\")", text, rest)
		}
		sp.Kind, sp.Every = KindInterval, d
		return sp, nil
	}
	expr := text
	if w, ok := words[low]; ok {
		expr = w
	}
	c, err := parser.Parse(expr)
	if err != nil {
		return Spec{}, fmt.Errorf("schedule %q: %v (use hourly, daily, a cron expression such as \"30 2 * * *\", \"every 15m\", \"on change\" or \"manual\")", text, err)
	}
	sp.Kind, sp.cron = KindCron, c
	return sp, nil
}

// Timed reports whether the schedule runs by the clock.
func (s Spec) Timed() bool { return s.Kind == KindCron || s.Kind == KindInterval }

// Next is the first run strictly after t; zero for schedules that do not
// run by the clock (on change, manual). An interval counts from t (the
// previous run).
func (s Spec) Next(t time.Time) time.Time {
	switch s.Kind {
	case KindCron:
		return s.cron.Next(t)
	case KindInterval:
		return t.Add(s.Every)
	}
	return time.Time{}
}

// Describe is a short human description.
func (s Spec) Describe() string {
	switch s.Kind {
	case KindInterval:
		return "every " + s.Every.String()
	case KindChange:
		return "on change (debounce " + s.Debounce.String() + ")"
	case KindManual:
		return "manual"
	}
	return s.Text
}

// Window is a maintenance window: from each Start (a cron schedule) for
// Duration, the jobs it names (all when Jobs is empty) are held back and
// run when it ends.
type Window struct {
	Name     string
	Start    Spec
	Duration time.Duration
	Jobs     []string
}

// Covers reports whether the window holds back job.
func (w Window) Covers(job string) bool {
	if len(w.Jobs) == 0 {
		return true
	}
	for _, j := range w.Jobs {
		if j == job {
			return true
		}
	}
	return false
}

// ActiveAt reports whether the window is open at t, and when it closes.
func (w Window) ActiveAt(t time.Time) (bool, time.Time) {
	if !w.Start.Timed() || w.Duration <= 0 {
		return false, time.Time{}
	}
	// The first start after t-Duration opens a window that still lasts at t.
	start := w.Start.Next(t.Add(-w.Duration))
	if start.IsZero() || start.After(t) {
		return false, time.Time{}
	}
	return true, start.Add(w.Duration)
}

// HeldUntil returns the time the windows that cover job release it, or
// zero when none holds it at t. Overlapping windows chain.
func HeldUntil(windows []Window, job string, t time.Time) time.Time {
	var until time.Time
	at := t
	for range 32 { // chained windows; bounded
		moved := false
		for _, w := range windows {
			if !w.Covers(job) {
				continue
			}
			if ok, end := w.ActiveAt(at); ok && end.After(at) {
				at, until, moved = end, end, true
			}
		}
		if !moved {
			break
		}
	}
	return until
}
