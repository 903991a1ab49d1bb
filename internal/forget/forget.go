// Package forget owns the retention policy: which snapshots to keep and
// which to forget, grouped by host and paths (or another grouping), with
// restic's keep-last/hourly/daily/weekly/monthly/yearly/within/tag rules
// and a hook for a legal minimum retention. It only decides; removing
// snapshot files is the caller's job, and freeing their data is prune's.
package forget

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/repo"
)

// Policy says which snapshots of a group to keep. Counts are the number
// of most recent buckets to keep one snapshot from (the newest in each);
// -1 means unlimited, 0 means the rule is off.
type Policy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
	// Within keeps every snapshot younger than this, measured back from
	// the newest snapshot of the group (as restic does, so a host that
	// stopped backing up does not lose its last backups).
	Within Duration
	// Tags keeps every snapshot carrying all tags of any one entry
	// ("a,b" means a and b).
	Tags []string

	// GroupBy chooses the grouping; nil means DefaultGroupBy (host and
	// paths). &GroupBy{} puts all snapshots in one group.
	GroupBy *GroupBy

	// MinAge is the legal minimum retention hook: snapshots of a group
	// younger than MinAge(group) (measured from now) are always kept,
	// with the reason "legal minimum". nil means no minimum.
	MinAge func(g GroupKey) time.Duration

	// Location is the time zone calendar buckets are computed in; nil
	// means time.Local (as restic does).
	Location *time.Location
}

// ErrEmptyPolicy is returned by Validate for a policy that keeps nothing.
var ErrEmptyPolicy = errors.New("no keep rule given: this would forget every snapshot")

// Empty reports whether no keep rule is set.
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 && p.Yearly == 0 &&
		p.Within.Zero() && len(p.Tags) == 0
}

// Validate refuses an empty policy and negative counts other than -1.
func (p Policy) Validate() error {
	if p.Empty() {
		return fmt.Errorf("%w; give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within, --keep-tag (or name snapshot IDs to forget)", ErrEmptyPolicy)
	}
	for name, n := range map[string]int{"last": p.Last, "hourly": p.Hourly, "daily": p.Daily, "weekly": p.Weekly, "monthly": p.Monthly, "yearly": p.Yearly} {
		if n < -1 {
			return fmt.Errorf("--keep-%s %d: use a positive count, or -1 for unlimited", name, n)
		}
	}
	if p.Within.Negative() {
		return fmt.Errorf("--keep-within %v: negative duration", p.Within)
	}
	return nil
}

// String describes the policy in flag form.
func (p Policy) String() string {
	var parts []string
	for _, r := range []struct {
		name string
		n    int
	}{{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}} {
		if r.n != 0 {
			parts = append(parts, fmt.Sprintf("keep %d %s", r.n, r.name))
		}
	}
	if !p.Within.Zero() {
		parts = append(parts, "keep within "+p.Within.String())
	}
	for _, t := range p.Tags {
		parts = append(parts, "keep tag "+t)
	}
	if len(parts) == 0 {
		return "keep nothing"
	}
	return strings.Join(parts, ", ")
}

// GroupBy selects the snapshot fields that form a group.
type GroupBy struct {
	Host, Paths, Tags bool
}

// DefaultGroupBy groups by host and paths.
var DefaultGroupBy = GroupBy{Host: true, Paths: true}

// ParseGroupBy parses "host,paths", "host", "tags", "" (one group) etc.
func ParseGroupBy(s string) (GroupBy, error) {
	var g GroupBy
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(f) {
		case "":
		case "host", "hosts":
			g.Host = true
		case "path", "paths":
			g.Paths = true
		case "tag", "tags":
			g.Tags = true
		default:
			return g, fmt.Errorf("--group-by %q: unknown field %q (use host, paths, tags, comma-separated, or '' for one group)", s, f)
		}
	}
	return g, nil
}

func (g GroupBy) String() string {
	var f []string
	if g.Host {
		f = append(f, "host")
	}
	if g.Paths {
		f = append(f, "paths")
	}
	if g.Tags {
		f = append(f, "tags")
	}
	return strings.Join(f, ",")
}

// GroupKey identifies a group; fields not grouped by are empty.
type GroupKey struct {
	Host  string   `json:"host,omitempty"`
	Paths []string `json:"paths,omitempty"`
	Tags  []string `json:"tags,omitempty"`
}

func (k GroupKey) String() string {
	var parts []string
	if k.Host != "" {
		parts = append(parts, "host "+k.Host)
	}
	if k.Paths != nil {
		parts = append(parts, "paths ["+strings.Join(k.Paths, ", ")+"]")
	}
	if k.Tags != nil {
		parts = append(parts, "tags ["+strings.Join(k.Tags, ", ")+"]")
	}
	if len(parts) == 0 {
		return "all snapshots"
	}
	return strings.Join(parts, ", ")
}

func (k GroupKey) id() string {
	return k.Host + "\x00" + strings.Join(k.Paths, "\x01") + "\x00" + strings.Join(k.Tags, "\x01")
}

// Key returns the group of a snapshot.
func (g GroupBy) Key(s *repo.Snapshot) GroupKey {
	var k GroupKey
	if g.Host {
		k.Host = s.Host
	}
	if g.Paths {
		k.Paths = append([]string{}, s.Paths...)
		sort.Strings(k.Paths)
	}
	if g.Tags {
		k.Tags = append([]string{}, s.Tags...)
		sort.Strings(k.Tags)
	}
	return k
}

// Group is one group's snapshots, oldest first.
type Group struct {
	Key       GroupKey
	Snapshots []*repo.Snapshot
}

// Groups splits snapshots into groups, in order of each group's first
// appearance in snaps sorted oldest first.
func Groups(snaps []*repo.Snapshot, by GroupBy) []Group {
	sorted := append([]*repo.Snapshot(nil), snaps...)
	repo.SortSnapshots(sorted)
	var out []Group
	pos := map[string]int{}
	for _, s := range sorted {
		k := by.Key(s)
		i, ok := pos[k.id()]
		if !ok {
			i = len(out)
			pos[k.id()] = i
			out = append(out, Group{Key: k})
		}
		out[i].Snapshots = append(out[i].Snapshots, s)
	}
	return out
}

// GroupResult is the decision for one group; Keep and Remove are oldest
// first.
type GroupResult struct {
	Key     GroupKey
	Keep    []*repo.Snapshot
	Remove  []*repo.Snapshot
	Reasons map[repo.ID][]string
}

// Apply decides over all snapshots, group by group. An empty policy keeps
// everything (call Validate first to refuse it with a clear error).
func Apply(snaps []*repo.Snapshot, p Policy, now time.Time) (keep, remove []*repo.Snapshot, reasons map[repo.ID][]string) {
	reasons = map[repo.ID][]string{}
	for _, g := range ApplyGroups(snaps, p, now) {
		keep = append(keep, g.Keep...)
		remove = append(remove, g.Remove...)
		for id, r := range g.Reasons {
			reasons[id] = r
		}
	}
	repo.SortSnapshots(keep)
	repo.SortSnapshots(remove)
	return keep, remove, reasons
}

// ApplyGroups is Apply with the result per group.
func ApplyGroups(snaps []*repo.Snapshot, p Policy, now time.Time) []GroupResult {
	by := DefaultGroupBy
	if p.GroupBy != nil {
		by = *p.GroupBy
	}
	var out []GroupResult
	for _, g := range Groups(snaps, by) {
		out = append(out, applyGroup(g, p, now))
	}
	return out
}

type bucket struct {
	count  int
	key    func(t time.Time, nr int) int
	last   int
	reason string
}

func applyGroup(g Group, p Policy, now time.Time) GroupResult {
	res := GroupResult{Key: g.Key, Reasons: map[repo.ID][]string{}}
	loc := p.Location
	if loc == nil {
		loc = time.Local
	}
	// Newest first, as the buckets count back from the newest.
	list := slices.Clone(g.Snapshots)
	slices.Reverse(list)
	if p.Empty() {
		for _, s := range list {
			res.Reasons[s.ID] = []string{"no policy"}
		}
		res.Keep = g.Snapshots
		return res
	}
	buckets := []bucket{
		{p.Last, func(_ time.Time, nr int) int { return nr }, -1, "last snapshot"},
		{p.Hourly, func(t time.Time, _ int) int {
			return t.Year()*1_000_000 + int(t.Month())*10_000 + t.Day()*100 + t.Hour()
		}, -1, "hourly snapshot"},
		{p.Daily, func(t time.Time, _ int) int { return t.Year()*10_000 + int(t.Month())*100 + t.Day() }, -1, "daily snapshot"},
		{p.Weekly, func(t time.Time, _ int) int { y, w := t.ISOWeek(); return y*100 + w }, -1, "weekly snapshot"},
		{p.Monthly, func(t time.Time, _ int) int { return t.Year()*100 + int(t.Month()) }, -1, "monthly snapshot"},
		{p.Yearly, func(t time.Time, _ int) int { return t.Year() }, -1, "yearly snapshot"},
	}
	var minAge time.Duration
	if p.MinAge != nil {
		minAge = p.MinAge(g.Key)
	}
	var withinLimit time.Time
	if !p.Within.Zero() && len(list) > 0 {
		withinLimit = p.Within.Before(list[0].Time)
	}
	for nr, s := range list {
		var why []string
		for _, tags := range p.Tags {
			if hasAllTags(s, tags) {
				why = append(why, "has tags "+tags)
			}
		}
		if !withinLimit.IsZero() && s.Time.After(withinLimit) {
			why = append(why, "within "+p.Within.String())
		}
		t := s.Time.In(loc)
		for i := range buckets {
			b := &buckets[i]
			if b.count == 0 {
				continue
			}
			v := b.key(t, nr)
			// Keep the newest snapshot of every new bucket while counts
			// last, and the oldest snapshot of the group if counts are
			// left over (it extends the history kept, as restic does).
			if v != b.last {
				why = append(why, b.reason)
			} else if nr == len(list)-1 {
				why = append(why, "oldest "+b.reason)
			} else {
				continue
			}
			b.last = v
			if b.count > 0 {
				b.count--
			}
		}
		if minAge > 0 && now.Sub(s.Time) < minAge {
			why = append(why, "legal minimum")
		}
		if len(why) > 0 {
			res.Keep = append(res.Keep, s)
			res.Reasons[s.ID] = why
		} else {
			res.Remove = append(res.Remove, s)
		}
	}
	slices.Reverse(res.Keep)
	slices.Reverse(res.Remove)
	return res
}

func hasAllTags(s *repo.Snapshot, spec string) bool {
	some := false
	for _, t := range strings.Split(spec, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		some = true
		if !s.HasTag(t) {
			return false
		}
	}
	return some
}

// Duration is a calendar duration such as "1y2m7d3h" (years, months,
// days, hours), as restic's --keep-within takes it.
type Duration struct {
	Years, Months, Days, Hours int
}

// ParseDuration parses "7d", "1y2m", "2y5m7d3h", "36h". A unit may
// appear once; "w" (weeks) counts as 7 days.
func ParseDuration(s string) (Duration, error) {
	var d Duration
	orig := s
	if s == "" {
		return d, errors.New("empty duration")
	}
	seen := map[byte]bool{}
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) {
			return Duration{}, fmt.Errorf("invalid duration %q: want numbers with units y, m, w, d, h such as 7d or 1y2m", orig)
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return Duration{}, fmt.Errorf("invalid duration %q: %v", orig, err)
		}
		unit := s[i]
		if seen[unit] {
			return Duration{}, fmt.Errorf("invalid duration %q: unit %c given twice", orig, unit)
		}
		seen[unit] = true
		switch unit {
		case 'y':
			d.Years = n
		case 'm':
			d.Months = n
		case 'w':
			d.Days += 7 * n
		case 'd':
			d.Days += n
		case 'h':
			d.Hours = n
		default:
			return Duration{}, fmt.Errorf("invalid duration %q: unknown unit %q (use y, m, w, d, h)", orig, unit)
		}
		s = s[i+1:]
	}
	return d, nil
}

// Zero reports whether d is empty.
func (d Duration) Zero() bool { return d == Duration{} }

// Negative reports whether any part is negative.
func (d Duration) Negative() bool { return d.Years < 0 || d.Months < 0 || d.Days < 0 || d.Hours < 0 }

// Before returns t minus d, by the calendar.
func (d Duration) Before(t time.Time) time.Time {
	return t.AddDate(-d.Years, -d.Months, -d.Days).Add(-time.Duration(d.Hours) * time.Hour)
}

func (d Duration) String() string {
	var b strings.Builder
	for _, u := range []struct {
		n int
		c string
	}{{d.Years, "y"}, {d.Months, "m"}, {d.Days, "d"}, {d.Hours, "h"}} {
		if u.n != 0 {
			b.WriteString(strconv.Itoa(u.n) + u.c)
		}
	}
	if b.Len() == 0 {
		return "0"
	}
	return b.String()
}

// Set implements pflag.Value, so a Duration can be a flag.
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Type implements pflag.Value.
func (d *Duration) Type() string { return "duration" }
