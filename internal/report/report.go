// Package report writes the monthly report for the head of IT: backup
// success rate per job, sizes and durations over the month, the state of
// the copies, restore and drill results, invoices protected per month,
// and every failure with how it was resolved — as a self-contained HTML
// page with SVG charts and as a PDF with the same charts. It only
// formats: the caller gathers the facts (journal, snapshots, copies,
// catalog) into a Month.
package report

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Run is one journaled operation.
type Run struct {
	Start      time.Time     `json:"start"`
	Duration   time.Duration `json:"duration"`
	Job        string        `json:"job"`
	Op         string        `json:"op"`   // backup, sync, check, prune, restore, drill
	Kind       string        `json:"kind"` // full, incremental, differential
	Result     string        `json:"result"`
	BytesRead  int64         `json:"bytes_read"`
	BytesAdded int64         `json:"bytes_added"`
	Error      string        `json:"error,omitempty"`
}

// Result words.
const (
	ResultOK       = "ok"
	ResultDegraded = "degraded"
	ResultFailed   = "failed"
)

// Copy is one copy of the repository at report time.
type Copy struct {
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	Reachable  bool      `json:"reachable"`
	LastSync   time.Time `json:"last_sync"`
	LastVerify time.Time `json:"last_verify"`
	Errors     int       `json:"errors"`
	Behind     int       `json:"snapshots_missing"`
}

// Recovery is a restore or a drill, with its measured RTO/RPO.
type Recovery struct {
	Time      time.Time     `json:"time"`
	Op        string        `json:"op"` // restore, drill
	What      string        `json:"what"`
	Result    string        `json:"result"`
	RTO       time.Duration `json:"rto"`
	RPO       time.Duration `json:"rpo"`
	TargetRTO time.Duration `json:"target_rto,omitempty"`
	TargetRPO time.Duration `json:"target_rpo,omitempty"`
}

// MonthCount is a count for one month ("2026-10").
type MonthCount struct {
	Month string `json:"month"`
	Count int64  `json:"count"`
}

// Month is everything the monthly report shows.
type Month struct {
	Month     time.Time    `json:"month"` // any time in the month, in the report's time zone
	Generated time.Time    `json:"generated"`
	Org       string       `json:"organisation,omitempty"`
	Repo      string       `json:"repository"`
	Runs      []Run        `json:"runs"`
	Copies    []Copy       `json:"copies"`
	Verdict   *Verdict     `json:"verdict,omitempty"` // 3-2-1-1-0 evaluation from copies status
	Recovery  []Recovery   `json:"recovery"`
	Invoices  []MonthCount `json:"invoices_per_month"` // oldest first, the report month last
	Snapshots int          `json:"snapshots"`
}

// Verdict is the 3-2-1-1-0 evaluation of the copies.
type Verdict struct {
	Met      bool        `json:"met"`
	Criteria []Criterion `json:"criteria"`
}

// Criterion is one rule of the verdict. Key is copies, media, offsite,
// immutable or errors (the report translates it).
type Criterion struct {
	Key  string `json:"key"`
	Want int    `json:"want"`
	Have int    `json:"have"`
	Met  bool   `json:"met"`
}

// JobSummary is the success rate of one job over the month.
type JobSummary struct {
	Job         string  `json:"job"`
	Runs        int     `json:"runs"`
	OK          int     `json:"ok"`
	Degraded    int     `json:"degraded"`
	Failed      int     `json:"failed"`
	SuccessRate float64 `json:"success_rate"` // ok / runs, 0..1
}

// Failure is a failed or degraded run and how it was resolved: by the
// next successful run of the same job and operation.
type Failure struct {
	Run        Run        `json:"run"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	ResolvedBy string     `json:"resolved_by,omitempty"` // "next successful backup" ...
	TimeToFix  string     `json:"time_to_fix,omitempty"`
}

// Summary is what the report derives from a Month.
type Summary struct {
	From, To      time.Time    `json:"-"`
	Jobs          []JobSummary `json:"jobs"`
	TotalRuns     int          `json:"total_runs"`
	SuccessRate   float64      `json:"success_rate"`
	BytesAdded    int64        `json:"bytes_added"`
	Failures      []Failure    `json:"failures"`
	Unresolved    int          `json:"unresolved"`
	DailyAdded    []float64    `json:"-"` // bytes added per day of the month (NaN: no backup)
	DailyDuration []float64    `json:"-"` // mean backup seconds per day
	DailyRead     []float64    `json:"-"`
	MTTR          string       `json:"mttr,omitempty"`
}

// Bounds returns the first instant of m's month and of the next.
func Bounds(m time.Time) (from, to time.Time) {
	from = time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, m.Location())
	return from, from.AddDate(0, 1, 0)
}

// Summarize derives the report's figures from m.
func Summarize(m *Month) Summary {
	from, to := Bounds(m.Month)
	s := Summary{From: from, To: to}
	days := int(to.Sub(from).Hours()/24 + 0.5)
	s.DailyAdded = nanSeries(days)
	s.DailyDuration = nanSeries(days)
	s.DailyRead = nanSeries(days)
	durCount := make([]int, days)
	runs := append([]Run(nil), m.Runs...)
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Start.Before(runs[j].Start) })
	jobs := map[string]*JobSummary{}
	ok := 0
	for _, r := range runs {
		if r.Start.Before(from) || !r.Start.Before(to) {
			continue
		}
		j := jobs[r.Job]
		if j == nil {
			j = &JobSummary{Job: r.Job}
			jobs[r.Job] = j
		}
		j.Runs++
		s.TotalRuns++
		switch r.Result {
		case ResultOK:
			j.OK++
			ok++
		case ResultDegraded:
			j.Degraded++
		default:
			j.Failed++
		}
		s.BytesAdded += r.BytesAdded
		if r.Op == "backup" {
			d := int(r.Start.In(from.Location()).Sub(from).Hours() / 24)
			if d >= 0 && d < days {
				s.DailyAdded[d] = addNaN(s.DailyAdded[d], float64(r.BytesAdded))
				s.DailyRead[d] = addNaN(s.DailyRead[d], float64(r.BytesRead))
				s.DailyDuration[d] = addNaN(s.DailyDuration[d], r.Duration.Seconds())
				durCount[d]++
			}
		}
	}
	for d := range s.DailyDuration {
		if durCount[d] > 0 {
			s.DailyDuration[d] /= float64(durCount[d])
		}
	}
	for _, j := range jobs {
		j.SuccessRate = float64(j.OK) / float64(j.Runs)
		s.Jobs = append(s.Jobs, *j)
	}
	sort.Slice(s.Jobs, func(a, b int) bool { return s.Jobs[a].Job < s.Jobs[b].Job })
	if s.TotalRuns > 0 {
		s.SuccessRate = float64(ok) / float64(s.TotalRuns)
	}
	var fixTotal time.Duration
	fixed := 0
	for i, r := range runs {
		if r.Result == ResultOK || r.Start.Before(from) || !r.Start.Before(to) {
			continue
		}
		f := Failure{Run: r}
		for _, n := range runs[i+1:] {
			if n.Job == r.Job && n.Op == r.Op && n.Result == ResultOK {
				at := n.Start.Add(n.Duration)
				f.ResolvedAt = &at
				f.ResolvedBy = "next successful " + n.Op
				fix := at.Sub(r.Start)
				f.TimeToFix = roundDur(fix)
				fixTotal += fix
				fixed++
				break
			}
		}
		if f.ResolvedAt == nil {
			s.Unresolved++
		}
		s.Failures = append(s.Failures, f)
	}
	if fixed > 0 {
		s.MTTR = roundDur(fixTotal / time.Duration(fixed))
	}
	return s
}

func nanSeries(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

func addNaN(a, b float64) float64 {
	if math.IsNaN(a) {
		return b
	}
	return a + b
}

func roundDur(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// bytesHuman formats n as KiB, MiB, GiB.
func bytesHuman(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", n, units[i])
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
