package pg

import (
	"fmt"
	"sort"
	"strings"
)

// walSegmentOf returns the segment a WAL file name belongs to: the
// segment itself, a partial segment, or the segment a backup history file
// was written in. Timeline history files have none.
func walSegmentOf(name string) (Segment, bool) {
	if len(name) < 24 {
		return Segment{}, false
	}
	return ParseSegment(name[:24])
}

// ObsoleteWAL returns the archived WAL files that no kept base backup
// needs: everything before the start segment of the oldest base backup,
// on its timeline or earlier ones. Timeline history files are always
// kept. Without any base backup nothing is obsolete (the first base
// backup may be on its way, and WAL without one is all there is).
func ObsoleteWAL(bases []BaseBackup, names []string) []string {
	if len(bases) == 0 {
		return nil
	}
	oldest := bases[0]
	for _, b := range bases[1:] {
		if b.StartLSN < oldest.StartLSN {
			oldest = b
		}
	}
	first := SegmentOf(oldest.Timeline, oldest.StartLSN)
	var out []string
	for _, n := range names {
		s, ok := walSegmentOf(n)
		if !ok || strings.HasSuffix(n, ".history") {
			continue
		}
		if s.Timeline <= first.Timeline && s.Number() < first.Number() {
			out = append(out, n)
		}
	}
	return out
}

// Hole is a run of missing WAL segments.
type Hole struct {
	Timeline uint32 `json:"timeline"`
	From     string `json:"from"` // first missing segment
	To       string `json:"to"`   // last missing segment
	Count    uint64 `json:"count"`
	// AffectsRecovery is true when the hole lies after the start of a base
	// backup: recovery cannot pass it.
	AffectsRecovery bool `json:"affects_recovery"`
}

// TimelineSpan is the archived WAL of one timeline.
type TimelineSpan struct {
	Timeline uint32 `json:"timeline"`
	First    string `json:"first"`
	Last     string `json:"last"`
	Segments int    `json:"segments"`
}

// ChainReport is the WAL-chain section of check.
type ChainReport struct {
	Segments    int            `json:"segments"`
	BaseBackups int            `json:"base_backups"`
	Timelines   []TimelineSpan `json:"timelines"`
	Holes       []Hole         `json:"holes"`
}

// Damaged reports whether a hole breaks recovery from a base backup.
func (c *ChainReport) Damaged() bool {
	for _, h := range c.Holes {
		if h.AffectsRecovery {
			return true
		}
	}
	return false
}

// CheckChain finds the holes in the archived WAL of every timeline.
func CheckChain(bases []BaseBackup, names []string) *ChainReport {
	rep := &ChainReport{BaseBackups: len(bases), Timelines: []TimelineSpan{}, Holes: []Hole{}}
	byTLI := map[uint32][]uint64{}
	for _, n := range names {
		s, ok := ParseSegment(n)
		if !ok {
			continue
		}
		rep.Segments++
		byTLI[s.Timeline] = append(byTLI[s.Timeline], s.Number())
	}
	var tlis []uint32
	for t := range byTLI {
		tlis = append(tlis, t)
	}
	sort.Slice(tlis, func(i, j int) bool { return tlis[i] < tlis[j] })
	seg := func(tli uint32, n uint64) string { return SegmentOf(tli, LSN(n*SegmentSize)).String() }
	for _, t := range tlis {
		nums := byTLI[t]
		sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
		rep.Timelines = append(rep.Timelines, TimelineSpan{Timeline: t, First: seg(t, nums[0]), Last: seg(t, nums[len(nums)-1]), Segments: len(nums)})
		for i := 1; i < len(nums); i++ {
			if nums[i] == nums[i-1] || nums[i] == nums[i-1]+1 {
				continue
			}
			h := Hole{Timeline: t, From: seg(t, nums[i-1]+1), To: seg(t, nums[i]-1), Count: nums[i] - nums[i-1] - 1}
			for _, b := range bases {
				if b.Timeline == t && SegmentOf(t, b.StartLSN).Number() <= nums[i]-1 {
					h.AffectsRecovery = true
				}
			}
			rep.Holes = append(rep.Holes, h)
		}
	}
	return rep
}

// Text renders the report as the WAL-chain section of check.
func (c *ChainReport) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "WAL chain: %d segment(s), %d base backup(s)\n", c.Segments, c.BaseBackups)
	for _, t := range c.Timelines {
		fmt.Fprintf(&b, "  timeline %d: %s .. %s (%d segments)\n", t.Timeline, t.First, t.Last, t.Segments)
	}
	for _, h := range c.Holes {
		what := "before every base backup (harmless; prune removes it)"
		if h.AffectsRecovery {
			what = "RECOVERY CANNOT PASS IT: point-in-time recovery stops before it; take a new base backup"
		}
		fmt.Fprintf(&b, "  hole on timeline %d: %s .. %s (%d missing): %s\n", h.Timeline, h.From, h.To, h.Count, what)
	}
	if len(c.Holes) == 0 && c.Segments > 0 {
		b.WriteString("  no holes\n")
	}
	return b.String()
}
