package pg

import (
	"reflect"
	"testing"
)

func TestObsoleteWALAndChain(t *testing.T) {
	names := []string{
		"00000001000000000000000A", "00000001000000000000000B", "00000001000000000000000C",
		"00000001000000000000000C.00000028.backup", "00000001000000000000000D",
		"00000001000000000000000F", "00000001000000010000000F", "00000002.history",
		"000000020000000000000010",
	}
	bases := []BaseBackup{{Timeline: 1, StartLSN: LSN(0xC*SegmentSize + 0x28)}, {Timeline: 1, StartLSN: LSN(0xF*SegmentSize + 0x28)}}
	if got, want := ObsoleteWAL(bases, names), []string{"00000001000000000000000A", "00000001000000000000000B"}; !reflect.DeepEqual(got, want) {
		t.Errorf("obsolete = %v, want %v", got, want)
	}
	if got := ObsoleteWAL(nil, names); got != nil {
		t.Errorf("no base backup: obsolete = %v, want nothing", got)
	}
	rep := CheckChain(bases, names)
	if rep.Segments != 7 || len(rep.Timelines) != 2 || len(rep.Holes) != 2 {
		t.Fatalf("chain: %+v", rep)
	}
	if h := rep.Holes[0]; h.From != "00000001000000000000000E" || h.To != "00000001000000000000000E" || h.Count != 1 || !h.AffectsRecovery {
		t.Errorf("hole 0: %+v", h)
	}
	// 0/0F .. 1/0F: 0x100 segments per log id, so 255 missing.
	if h := rep.Holes[1]; h.From != "000000010000000000000010" || h.To != "00000001000000010000000E" || h.Count != 255 || !h.AffectsRecovery {
		t.Errorf("hole 1: %+v", h)
	}
	if !rep.Damaged() {
		t.Error("not damaged")
	}
	if rep := CheckChain(bases[1:], names[:3]); rep.Damaged() || len(rep.Holes) != 0 {
		t.Errorf("contiguous chain: %+v", rep)
	}
}

func TestComputeWindow(t *testing.T) {
	seg := func(n uint64) string { return SegmentOf(1, LSN(n*SegmentSize)).String() }
	bases := []BaseBackup{
		{Snapshot: "aaaaaaaa1", Timeline: 1, StartLSN: LSN(2*SegmentSize + 0x28), StopLSN: LSN(3*SegmentSize + 0x100)},
		{Snapshot: "bbbbbbbb2", Timeline: 1, StartLSN: LSN(9*SegmentSize + 0x28), StopLSN: LSN(9*SegmentSize + 0x200)},
		{Snapshot: "cccccccc3", Timeline: 1, StartLSN: LSN(20*SegmentSize + 0x28), StopLSN: LSN(20*SegmentSize + 0x200)},
	}
	names := []string{seg(2), seg(3), seg(4), seg(5), seg(9), seg(10), seg(12)}
	w := ComputeWindow(bases, names)
	if len(w.Ranges) != 2 || len(w.Unusable) != 1 {
		t.Fatalf("window: %+v", w)
	}
	if r := w.Ranges[0]; r.FromLSN != "0/3000100" || r.ToLSN != "0/6000000" {
		t.Errorf("range 0: %+v", r)
	}
	if r := w.Ranges[1]; r.FromLSN != "0/9000200" || r.ToLSN != "0/B000000" {
		t.Errorf("range 1: %+v", r)
	}
	for _, tc := range []struct {
		lsn  LSN
		ok   bool
		base string
	}{
		{LSN(3*SegmentSize + 0x50), false, ""},    // before the first backup ended
		{LSN(4 * SegmentSize), true, "aaaaaaaa1"}, // inside range 0
		{LSN(7 * SegmentSize), false, ""},         // in the gap
		{LSN(10 * SegmentSize), true, "bbbbbbbb2"},
		{LSN(12 * SegmentSize), false, ""}, // after a hole
	} {
		l := tc.lsn
		_, b, err := w.Choose(Target{LSN: &l})
		if (err == nil) != tc.ok || (tc.ok && b.Snapshot != tc.base) {
			t.Errorf("LSN %v: base %q, err %v", l, b.Snapshot, err)
		}
	}
}

func TestParseBackupLabelAndXact(t *testing.T) {
	l, err := ParseBackupLabel([]byte("START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-23 12:00:00 UTC\nLABEL: einvault\nSTART TIMELINE: 1\n"))
	if err != nil || l.StartLSN != 0x2000028 || l.Checkpoint != 0x2000060 || l.Timeline != 1 || l.StartTime != "2026-11-23 12:00:00 UTC" {
		t.Fatalf("%+v %v", l, err)
	}
	if _, err := ParseBackupLabel([]byte("LABEL: x\n")); err == nil {
		t.Error("incomplete label accepted")
	}
	out := `rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/03000148, prev 0/03000110, desc: COMMIT 2026-11-23 12:40:01.123456 UTC
rmgr: Transaction len (rec/tot):     34/    34, tx:        736, lsn: 0/03000190, prev 0/03000148, desc: ABORT 2026-11-23 12:40:02.5 UTC
pg_waldump: error: error in WAL record at 0/3000190: invalid record length`
	tm, ok := ParseLastXactTime(out)
	if !ok || tm.Format("15:04:05.000") != "12:40:02.500" {
		t.Errorf("last xact = %v %v", tm, ok)
	}
}

func FuzzParseBackupLabel(f *testing.F) {
	f.Add([]byte("START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTART TIMELINE: 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseBackupLabel(b)
		if err == nil && l.Timeline == 0 {
			t.Fatal("timeline 0 accepted")
		}
	})
}

func FuzzParseLSN(f *testing.F) {
	f.Add("0/16B3748")
	f.Add("FFFFFFFF/FFFFFFFF")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLSN(s)
		if err != nil {
			return
		}
		if again, err := ParseLSN(l.String()); err != nil || again != l {
			t.Fatalf("%q: %v does not round-trip", s, l)
		}
	})
}

func TestParseStopLocation(t *testing.T) {
	l, ok := parseStopLocation([]byte("START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\nSTOP WAL LOCATION: 0/6000138 (file 000000010000000000000006)\nCHECKPOINT LOCATION: 0/6000060\n"))
	if !ok || l != 0x6000138 {
		t.Errorf("stop = %v %v", l, ok)
	}
}
