package drill

import (
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestMeasureAndJudge(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		targets  Targets
		snapAge  time.Duration
		walAge   time.Duration // 0: no WAL
		restore  time.Duration
		cleanup  time.Duration
		steps    []Step
		verdict  string
		rto, rpo time.Duration
		reason   string
	}{
		{name: "pass", targets: Targets{RTO: time.Hour, RPO: 2 * time.Hour}, snapAge: 30 * time.Minute, restore: 10 * time.Minute,
			steps: []Step{{Name: "restore", OK: true}}, verdict: Pass, rto: 10 * time.Minute, rpo: 30 * time.Minute},
		{name: "cleanup is not RTO", targets: Targets{RTO: 11 * time.Minute}, snapAge: time.Hour, restore: 10 * time.Minute, cleanup: 5 * time.Minute,
			steps: []Step{{Name: "restore", OK: true}}, verdict: Pass, rto: 10 * time.Minute, rpo: time.Hour},
		{name: "rto missed", targets: Targets{RTO: time.Minute, RPO: 2 * time.Hour}, snapAge: 30 * time.Minute, restore: 2 * time.Minute,
			steps: []Step{{Name: "restore", OK: true}}, verdict: Fail, rto: 2 * time.Minute, rpo: 30 * time.Minute, reason: "RTO 2m0s exceeds the target of 1m0s"},
		{name: "rpo missed", targets: Targets{RPO: time.Hour}, snapAge: 3 * time.Hour, restore: time.Second,
			steps: []Step{{Name: "restore", OK: true}}, verdict: Fail, rto: time.Second, rpo: 3 * time.Hour, reason: "RPO 3h0m0s exceeds"},
		{name: "wal newer than snapshot", targets: Targets{RPO: time.Hour}, snapAge: 20 * time.Hour, walAge: 5 * time.Minute, restore: time.Second,
			steps: []Step{{Name: "restore", OK: true}}, verdict: Pass, rto: time.Second, rpo: 5 * time.Minute},
		{name: "verification failed wins over targets", targets: Targets{RTO: time.Nanosecond}, snapAge: time.Hour, restore: time.Minute,
			steps: []Step{{Name: "restore", OK: false, Verification: true, Detail: "2 files differ"}}, verdict: VerifyFailed, rto: time.Minute, rpo: time.Hour, reason: "2 files differ"},
		{name: "error wins", snapAge: time.Hour, restore: time.Minute,
			steps:   []Step{{Name: "restore", OK: false, Verification: true, Detail: "differs"}, {Name: "database", OK: false, Detail: "no server reachable"}},
			verdict: Error, rto: time.Minute, rpo: time.Hour, reason: "no server reachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clockwork.NewFakeClockAt(t0)
			d := Start(clk, "job", "invoices")
			d.Snapshot("abc", t0.Add(-tc.snapAge))
			if tc.walAge > 0 {
				d.WAL(t0.Add(-tc.walAge))
			}
			began := d.Now()
			clk.Advance(tc.restore)
			for _, s := range tc.steps {
				d.Step(s, began, true)
			}
			clk.Advance(tc.cleanup)
			d.Step(Step{Name: "clean up", OK: true}, d.Now(), false)
			r := d.Finish(tc.targets, "/tmp/x", false)
			if r.Verdict != tc.verdict || secs(r.RTO) != tc.rto || secs(r.RPO) != tc.rpo {
				t.Fatalf("got %s rto %v rpo %v, want %s %v %v (%v)", r.Verdict, secs(r.RTO), secs(r.RPO), tc.verdict, tc.rto, tc.rpo, r.Reasons)
			}
			if tc.reason != "" && !strings.Contains(strings.Join(r.Reasons, ";"), tc.reason) {
				t.Fatalf("reasons %q lack %q", r.Reasons, tc.reason)
			}
			if !strings.Contains(r.Summary(), strings.ToUpper(tc.verdict)) {
				t.Fatalf("summary %q", r.Summary())
			}
		})
	}
}

func TestNothingRestoredIsError(t *testing.T) {
	d := Start(clockwork.NewFakeClock(), "job", "")
	if r := d.Finish(Targets{}, "", false); r.Verdict != Error || len(r.Reasons) == 0 {
		t.Fatalf("%+v", r)
	}
}

func TestReplayed(t *testing.T) {
	snap := time.Date(2026, 11, 23, 19, 49, 33, 477e6, time.UTC)
	tests := []struct {
		name     string
		at       time.Time
		wantTime time.Time
		wantFrom string
	}{
		{"later log", snap.Add(5 * time.Minute), snap.Add(5 * time.Minute), "binlog"},
		{"same second, truncated", snap.Truncate(time.Second), snap, "binlog"},
		{"older log", snap.Add(-2 * time.Second), snap, "snapshot"},
		{"no time", time.Time{}, snap, "snapshot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Start(clockwork.NewFakeClockAt(snap.Add(time.Hour)), "job", "class")
			d.Snapshot("s", snap)
			d.Replayed(tc.at, "binlog")
			if !d.res.DataTime.Equal(tc.wantTime) || d.res.DataFrom != tc.wantFrom {
				t.Fatalf("data %v from %q, want %v from %q", d.res.DataTime, d.res.DataFrom, tc.wantTime, tc.wantFrom)
			}
		})
	}
}
