package pg

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/source"
)

// BaseBackup is a base backup snapshot as the recovery window sees it.
type BaseBackup struct {
	Snapshot  string    `json:"snapshot"`
	Time      time.Time `json:"time"`
	Timeline  uint32    `json:"timeline"`
	StartLSN  LSN       `json:"-"`
	StopLSN   LSN       `json:"-"`
	StopTime  time.Time `json:"stop_time"`
	LabelTime string    `json:"backup_label_time"`
	SystemID  string    `json:"system_identifier"`
	Start     string    `json:"start_lsn"`
	Stop      string    `json:"stop_lsn"`
}

// BaseBackupFromSnapshot reads a base backup's facts from its snapshot;
// ok is false for snapshots that are not base backups.
func BaseBackupFromSnapshot(s *repo.Snapshot) (BaseBackup, bool) {
	m, ok, err := source.FromMeta(s.Meta)
	if err != nil || !ok || m.Engine != "postgresql" || m.Extra[ExtraKind] != "basebackup" {
		return BaseBackup{}, false
	}
	b := BaseBackup{Snapshot: s.ID.String(), Time: s.Time, LabelTime: m.Extra[ExtraLabelTime], SystemID: m.Extra[ExtraSystemID]}
	var err1, err2, err3, err4 error
	b.StartLSN, err1 = ParseLSN(m.Extra[ExtraStartLSN])
	b.StopLSN, err2 = ParseLSN(m.Extra[ExtraStopLSN])
	tli, err3 := strconv.ParseUint(m.Extra[ExtraTimeline], 10, 32)
	b.StopTime, err4 = time.Parse(time.RFC3339Nano, m.Extra[ExtraStopTime])
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || tli == 0 {
		return BaseBackup{}, false
	}
	b.Timeline = uint32(tli)
	b.Start, b.Stop = b.StartLSN.String(), b.StopLSN.String()
	return b, true
}

// RefineStops replaces the recorded end point of each base backup (an
// upper bound: the server's position right after the backup) by the exact
// one from the backup history file PostgreSQL archived with the backup
// (<segment>.<offset>.backup), when it is there.
func RefineStops(ctx context.Context, s *WALStore, bases []BaseBackup) {
	for i := range bases {
		b := &bases[i]
		name := fmt.Sprintf("%s.%08X.backup", SegmentOf(b.Timeline, b.StartLSN), uint64(b.StartLSN)%SegmentSize)
		data, err := s.Fetch(ctx, name)
		if err != nil {
			continue
		}
		if stop, ok := parseStopLocation(data); ok && stop < b.StopLSN && stop > b.StartLSN {
			b.StopLSN, b.Stop = stop, stop.String()
		}
	}
}

// parseStopLocation reads STOP WAL LOCATION from a backup history file.
func parseStopLocation(b []byte) (LSN, bool) {
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "STOP WAL LOCATION: ")
		if !ok {
			continue
		}
		lsn, _, _ := strings.Cut(v, " ")
		l, err := ParseLSN(lsn)
		return l, err == nil
	}
	return 0, false
}

// Range is one stretch of time (and WAL) that recovery can reach: from
// the end of a base backup to the end of the unbroken WAL chain after it.
type Range struct {
	Timeline  uint32    `json:"timeline"`
	FromTime  time.Time `json:"from_time"`
	FromLSN   string    `json:"from_lsn"`
	ToTime    time.Time `json:"to_time"` // last commit/abort record in the chain; zero if none was found
	ToLSN     string    `json:"to_lsn"`  // end of the last archived segment of the chain
	Bases     []string  `json:"base_backups"`
	fromLSN   LSN
	toLSN     LSN
	lastSeg   Segment
	firstBase int
}

// Window is the set of recovery targets the archive can reach.
type Window struct {
	Ranges      []Range      `json:"ranges"`
	BaseBackups []BaseBackup `json:"base_backups"`
	Segments    int          `json:"wal_segments"`
	Unusable    []string     `json:"unusable_base_backups,omitempty"` // base backups whose WAL is incomplete, with the reason
	archived    map[string]bool
}

// Empty reports whether no target at all is reachable.
func (w *Window) Empty() bool { return len(w.Ranges) == 0 }

// ComputeWindow works out what can be recovered from base backups and
// the names of the archived WAL files. Only the base backups' own
// timelines are followed.
func ComputeWindow(bases []BaseBackup, walNames []string) *Window {
	w := &Window{BaseBackups: bases, archived: map[string]bool{}}
	have := map[uint32]map[uint64]bool{}
	for _, n := range walNames {
		w.archived[n] = true
		s, ok := ParseSegment(n)
		if !ok {
			continue
		}
		w.Segments++
		if have[s.Timeline] == nil {
			have[s.Timeline] = map[uint64]bool{}
		}
		have[s.Timeline][s.Number()] = true
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i].StopLSN < bases[j].StopLSN })
	for i, b := range bases {
		first := SegmentOf(b.Timeline, b.StartLSN)
		n := first.Number()
		for have[b.Timeline][n] {
			n++
		}
		if n == first.Number() {
			w.Unusable = append(w.Unusable, fmt.Sprintf("%s: WAL segment %s (its start) is not archived", short(b.Snapshot), first))
			continue
		}
		last := SegmentOf(b.Timeline, LSN((n-1)*SegmentSize))
		end := last.EndLSN()
		if end < b.StopLSN {
			w.Unusable = append(w.Unusable, fmt.Sprintf("%s: WAL up to its end point %s is not archived (missing %s)", short(b.Snapshot), b.StopLSN, SegmentOf(b.Timeline, end)))
			continue
		}
		r := Range{Timeline: b.Timeline, FromTime: b.StopTime, fromLSN: b.StopLSN, toLSN: end, lastSeg: last, Bases: []string{b.Snapshot}, firstBase: i}
		// Merge with the previous range when this base backup lies inside it.
		if k := len(w.Ranges) - 1; k >= 0 && w.Ranges[k].Timeline == r.Timeline && w.Ranges[k].toLSN >= r.fromLSN {
			p := &w.Ranges[k]
			if r.toLSN > p.toLSN {
				p.toLSN, p.lastSeg = r.toLSN, r.lastSeg
			}
			p.Bases = append(p.Bases, b.Snapshot)
			continue
		}
		w.Ranges = append(w.Ranges, r)
	}
	for i := range w.Ranges {
		w.Ranges[i].FromLSN, w.Ranges[i].ToLSN = w.Ranges[i].fromLSN.String(), w.Ranges[i].toLSN.String()
	}
	return w
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// FillEndTimes finds, for each range, the time of the last commit or
// abort record in its WAL (what recovery_target_time is compared with),
// reading the last segments of the chain with pg_waldump.
func (w *Window) FillEndTimes(ctx context.Context, st *WALStore, binDir string) error {
	waldump, err := FindProgram(binDir, "pg_waldump")
	if err != nil {
		return err
	}
	for i := range w.Ranges {
		r := &w.Ranges[i]
		seg := r.lastSeg
		firstSeg := SegmentOf(r.Timeline, r.fromLSN).Number()
		for tries := 0; tries < 16 && seg.Number() >= firstSeg; tries++ {
			t, ok, err := lastXactTime(ctx, st, waldump, seg)
			if err != nil {
				return err
			}
			if ok {
				r.ToTime = t
				break
			}
			if seg.Number() == 0 {
				break
			}
			seg = SegmentOf(seg.Timeline, LSN((seg.Number()-1)*SegmentSize))
		}
		if r.ToTime.Before(r.FromTime) {
			// No transaction after the base backup: only its end point
			// is reachable by time.
			r.ToTime = r.FromTime
		}
	}
	return nil
}

var xactRE = regexp.MustCompile(`desc: (?:COMMIT|ABORT)(?:_PREPARED)? (?:\d+: )?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC`)

// ParseLastXactTime returns the time of the last commit or abort record
// in pg_waldump output (run with TZ=UTC).
func ParseLastXactTime(out string) (time.Time, bool) {
	var last time.Time
	found := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := xactRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		t, err := time.Parse("2006-01-02 15:04:05.999999", m[1])
		if err != nil {
			continue
		}
		last, found = t.UTC(), true
	}
	return last, found
}

func lastXactTime(ctx context.Context, st *WALStore, waldump string, seg Segment) (time.Time, bool, error) {
	data, err := st.Fetch(ctx, seg.String())
	if err != nil {
		return time.Time{}, false, err
	}
	dir, err := os.MkdirTemp("", "einvault-waldump-")
	if err != nil {
		return time.Time{}, false, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, seg.String()), data, 0o600); err != nil {
		return time.Time{}, false, err
	}
	cmd := exec.CommandContext(ctx, waldump, "--path", dir, "--rmgr=Transaction", seg.String())
	cmd.Env = append(os.Environ(), "TZ=UTC", "PGTZ=UTC")
	// pg_waldump exits non-zero at the end of the valid records of a
	// segment that is not full; the records before that are what counts.
	out, _ := cmd.Output()
	t, ok := ParseLastXactTime(string(out))
	return t, ok, nil
}

// Target is a recovery target: a time, an LSN, or the latest point.
type Target struct {
	Time   *time.Time
	LSN    *LSN
	Latest bool
}

func (t Target) String() string {
	switch {
	case t.Time != nil:
		return "time " + t.Time.Format("2006-01-02 15:04:05.999999Z07:00")
	case t.LSN != nil:
		return "LSN " + t.LSN.String()
	}
	return "latest"
}

// ErrOutsideWindow is returned for a target recovery cannot reach.
var ErrOutsideWindow = fmt.Errorf("recovery target outside the recovery window")

// Choose returns the range and the base backup to recover target from:
// the newest base backup that ended before the target. A target outside
// every range is refused with ErrOutsideWindow, listing the window; it is
// never silently replaced by another point.
func (w *Window) Choose(t Target) (Range, BaseBackup, error) {
	if w.Empty() {
		return Range{}, BaseBackup{}, fmt.Errorf("%w: no base backup with complete archived WAL (run 'einvault pg basebackup' with archiving on)", ErrOutsideWindow)
	}
	in := func(r Range) bool {
		switch {
		case t.Time != nil:
			return !t.Time.Before(r.FromTime) && !t.Time.After(r.ToTime)
		case t.LSN != nil:
			return *t.LSN >= r.fromLSN && *t.LSN <= r.toLSN
		}
		return true
	}
	for i := len(w.Ranges) - 1; i >= 0; i-- {
		r := w.Ranges[i]
		if !in(r) {
			continue
		}
		var best *BaseBackup
		for j := range w.BaseBackups {
			b := &w.BaseBackups[j]
			if !contains(r.Bases, b.Snapshot) {
				continue
			}
			ok := true
			switch {
			case t.Time != nil:
				ok = !b.StopTime.After(*t.Time)
			case t.LSN != nil:
				ok = b.StopLSN <= *t.LSN
			}
			if ok && (best == nil || b.StopLSN > best.StopLSN) {
				best = b
			}
		}
		if best != nil {
			return r, *best, nil
		}
	}
	return Range{}, BaseBackup{}, fmt.Errorf("%w: %s is not in %s", ErrOutsideWindow, t, w.Describe())
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Describe renders the window in one line.
func (w *Window) Describe() string {
	if w.Empty() {
		return "an empty recovery window"
	}
	var parts []string
	for _, r := range w.Ranges {
		parts = append(parts, fmt.Sprintf("[%s (LSN %s) .. %s (LSN %s), timeline %d]", r.FromTime.UTC().Format("2006-01-02 15:04:05.000Z"), r.FromLSN,
			r.ToTime.UTC().Format("2006-01-02 15:04:05.000Z"), r.ToLSN, r.Timeline))
	}
	return "the recovery window " + strings.Join(parts, ", ")
}
