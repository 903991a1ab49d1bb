package replica

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/einvault/einvault/internal/backend"
)

// CopyStatus is the state of one copy.
type CopyStatus struct {
	Name      string  `json:"name"`
	Location  string  `json:"location"`
	Kind      Kind    `json:"kind"`
	Offsite   bool    `json:"offsite"`
	Immutable bool    `json:"immutable"`
	Order     int     `json:"order"`
	Reachable bool    `json:"reachable"`
	Error     string  `json:"error,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
	FreeBytes *int64  `json:"free_bytes,omitempty"`
	// SnapshotsMissing and BytesBehind compare the copy with the union of
	// all reachable copies.
	SnapshotsMissing int        `json:"snapshots_missing"`
	FilesMissing     int        `json:"files_missing"`
	BytesBehind      int64      `json:"bytes_behind"`
	Behind           bool       `json:"marked_behind,omitempty"`
	LastSync         *time.Time `json:"last_sync"`
	LastVerify       *time.Time `json:"last_verify"`
	VerifyErrors     int        `json:"verify_errors"`
	// DaysUntilFull forecasts when the copy runs out of space at the
	// recent growth rate; nil when free space or growth is unknown.
	DaysUntilFull *float64 `json:"days_until_full,omitempty"`
}

// Criterion is one part of the 3-2-1-1-0 rule.
type Criterion struct {
	// Key names the rule for programs and translations: copies, media,
	// offsite, immutable or errors.
	Key  string `json:"key"`
	Rule string `json:"rule"`
	Want int    `json:"want"`
	Have int    `json:"have"`
	Met  bool   `json:"met"`
}

// Verdict is the 3-2-1-1-0 evaluation.
type Verdict struct {
	Met      bool        `json:"met"`
	Criteria []Criterion `json:"criteria"`
}

// Status is the state of a copy set.
type Status struct {
	Time              time.Time    `json:"time"`
	Copies            []CopyStatus `json:"copies"`
	GrowthBytesPerDay float64      `json:"growth_bytes_per_day"`
	Verdict           Verdict      `json:"verdict"`
}

// GrowthPoint is one snapshot's contribution to growth.
type GrowthPoint struct {
	Time       time.Time
	BytesAdded int64
}

// GrowthWindow is how far back growth is measured.
const GrowthWindow = 28 * 24 * time.Hour

// GrowthPerDay estimates bytes added per day from the snapshots of the
// last GrowthWindow before now: their bytes added divided by the days
// from the oldest of them to now (at least one day).
func GrowthPerDay(points []GrowthPoint, now time.Time) float64 {
	var sum int64
	oldest := now
	n := 0
	for _, p := range points {
		if p.Time.After(now) || now.Sub(p.Time) > GrowthWindow {
			continue
		}
		sum += p.BytesAdded
		if p.Time.Before(oldest) {
			oldest = p.Time
		}
		n++
	}
	if n == 0 {
		return 0
	}
	days := now.Sub(oldest).Hours() / 24
	if days < 1 {
		days = 1
	}
	return float64(sum) / days
}

// StatusOptions carries what Status needs besides the members.
type StatusOptions struct {
	Now    func() time.Time
	Growth []GrowthPoint
	Probe  PreflightOptions
}

// ComputeStatus probes every member (without writing), compares their
// files with the union of all reachable members and evaluates the
// 3-2-1-1-0 rule.
func ComputeStatus(ctx context.Context, ms []Member, o StatusOptions) Status {
	if o.Now == nil {
		o.Now = time.Now
	}
	now := o.Now()
	o.Probe.Write = false
	o.Probe.Need = 0
	if o.Probe.Now == nil {
		o.Probe.Now = o.Now
	}
	probes := PreflightAll(ctx, ms, o.Probe)
	types := SyncOrder()
	lists := make([]listing, len(ms))
	union := listing{}
	for i, m := range ms {
		if !probes[i].Reachable {
			continue
		}
		l, err := listAll(ctx, m.Backend, types)
		if err != nil {
			probes[i].Reachable = false
			probes[i].Error = fmt.Sprintf("copy %q (%s): %s", m.Name, m.Location, oneLine(err))
			continue
		}
		lists[i] = l
		for t, files := range l {
			if union[t] == nil {
				union[t] = map[string]int64{}
			}
			for n, sz := range files {
				union[t][n] = sz
			}
		}
	}
	st := Status{Time: now, GrowthBytesPerDay: math.Round(GrowthPerDay(o.Growth, now))}
	for i, m := range ms {
		cs := CopyStatus{Name: m.Name, Location: m.Location, Kind: m.Kind, Offsite: m.Offsite, Immutable: m.Immutable, Order: m.Order,
			Reachable: probes[i].Reachable, Error: probes[i].Error, LatencyMS: probes[i].LatencyMS, FreeBytes: probes[i].FreeBytes,
			Behind: m.Behind, VerifyErrors: m.VerifyErrors}
		if !m.LastSync.IsZero() {
			t := m.LastSync
			cs.LastSync = &t
		}
		if !m.LastVerify.IsZero() {
			t := m.LastVerify
			cs.LastVerify = &t
		}
		if lists[i] != nil {
			for t, files := range union {
				for n, sz := range files {
					if _, ok := lists[i][t][n]; !ok {
						cs.FilesMissing++
						cs.BytesBehind += sz
						if t == backend.SnapshotFile {
							cs.SnapshotsMissing++
						}
					}
				}
			}
		}
		if cs.FreeBytes != nil && st.GrowthBytesPerDay > 0 {
			d := math.Round(float64(*cs.FreeBytes)/st.GrowthBytesPerDay*10) / 10
			cs.DaysUntilFull = &d
		}
		st.Copies = append(st.Copies, cs)
	}
	sort.SliceStable(st.Copies, func(a, b int) bool { return st.Copies[a].Order < st.Copies[b].Order })
	st.Verdict = Evaluate(st.Copies)
	return st
}

// Evaluate applies the 3-2-1-1-0 rule: at least 3 copies, on 2 kinds of
// media, 1 off-site, 1 immutable, and 0 errors at the last full
// verification of every copy (a copy never verified counts as an error).
func Evaluate(cs []CopyStatus) Verdict {
	kinds := map[Kind]bool{}
	var off, imm, errs int
	for _, c := range cs {
		kinds[c.Kind] = true
		if c.Offsite {
			off++
		}
		if c.Immutable {
			imm++
		}
		switch {
		case c.LastVerify == nil:
			errs++
		default:
			errs += c.VerifyErrors
		}
	}
	v := Verdict{Criteria: []Criterion{
		{Key: "copies", Rule: "copies", Want: 3, Have: len(cs), Met: len(cs) >= 3},
		{Key: "media", Rule: "media kinds", Want: 2, Have: len(kinds), Met: len(kinds) >= 2},
		{Key: "offsite", Rule: "off-site copies", Want: 1, Have: off, Met: off >= 1},
		{Key: "immutable", Rule: "immutable copies", Want: 1, Have: imm, Met: imm >= 1},
		{Key: "errors", Rule: "errors at last verification (a copy never verified counts as one)", Want: 0, Have: errs, Met: errs == 0},
	}}
	v.Met = true
	for _, c := range v.Criteria {
		v.Met = v.Met && c.Met
	}
	return v
}
