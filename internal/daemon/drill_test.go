package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/journal"
	"github.com/einvault/einvault/internal/notify"
	"github.com/jonboulle/clockwork"
)

const drillConfig = `repository: {location: /r}
sources:
  a: {paths: [/a]}
jobs:
  one: {class: invoices, sources: [a], schedule: manual, drill: "0 3 * * 0"}
daemon:
  retention_schedule: manual
  prune_schedule: manual
  report: {schedule: manual}
`

func TestRunDrillJournalsAndNotifies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		out    Outcome
		result string
		kind   notify.Kind // "" none
	}{
		{"pass", Outcome{Entry: journal.Entry{RTO: 12, RPO: 600, TargetRTO: 7200, TargetRPO: 7200}}, journal.ResultOK, ""},
		{"target missed", Outcome{Entry: journal.Entry{ExitCode: 4, Error: "RTO 3h exceeds the target of 2h", RTO: 10800, TargetRTO: 7200}}, journal.ResultDegraded, notify.KindDegraded},
		{"verification failed", Outcome{Entry: journal.Entry{ExitCode: 5, Error: "2 files differ"}}, journal.ResultFailed, notify.KindFailure},
		{"error", Outcome{Entry: journal.Entry{ExitCode: 1, Error: "no PostgreSQL server reachable"}}, journal.ResultFailed, notify.KindFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clockwork.NewFakeClockAt(time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC))
			r := &fakeRunner{script: func(op Op, n int) Outcome {
				if op.Name != OpDrill || op.Job == nil || op.Job.Name != "one" {
					t.Errorf("unexpected op %+v", op)
				}
				return tc.out
			}}
			d, j, ev := setup(t, drillConfig, r, clk)
			o := d.RunDrill(context.Background(), "one", "schedule")
			if o.Entry.Result != tc.result {
				t.Fatalf("result %q, want %q", o.Entry.Result, tc.result)
			}
			es := entries(t, j, journal.Filter{Op: OpDrill})
			if len(es) != 1 || es[0].Job != "one" || es[0].RTO != tc.out.Entry.RTO || es[0].TargetRTO != tc.out.Entry.TargetRTO {
				t.Fatalf("journal: %+v", es)
			}
			k := ev.kinds()
			switch {
			case tc.kind == "" && len(k) != 0:
				t.Fatalf("events for a passed drill: %v", k)
			case tc.kind != "" && (len(k) != 1 || k[0] != tc.kind):
				t.Fatalf("events %v, want [%s]", k, tc.kind)
			}
			if tc.kind != "" && !strings.Contains(ev.evs[0].Message, "drill") {
				t.Errorf("message %q", ev.evs[0].Message)
			}
			st, ok := d.State().Job(context.Background(), DrillPrefix+"one")
			if !ok || st.LastResult != tc.result {
				t.Errorf("state %+v", st)
			}
		})
	}
}

// TestServeRunsScheduledDrill serves on a fake clock: the drill runs on
// the job's drill schedule (Sunday 03:00), not the job's.
func TestServeRunsScheduledDrill(t *testing.T) {
	clk := clockwork.NewFakeClockAt(time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC)) // a Saturday
	r := &fakeRunner{}
	d, j, _ := setup(t, drillConfig, r, clk)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx, nil) }()
	deadline := time.Now().Add(20 * time.Second)
	for len(entries(t, j, journal.Filter{Op: OpDrill})) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the scheduled drill did not run")
		}
		clk.Advance(30 * time.Minute)
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	clk.Advance(time.Minute)
	<-served
	es := entries(t, j, journal.Filter{Op: OpDrill})
	if es[0].Job != "one" || es[0].StartedBy != "schedule" || es[0].Start.Before(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)) {
		t.Fatalf("drill entry %+v", es[0])
	}
	if n := len(entries(t, j, journal.Filter{Op: OpBackup})); n != 0 {
		t.Fatalf("%d backups of a manual job", n)
	}
}

// TestCheckGetsNewPacks: the verification after a backup is told which
// packs the backup wrote.
func TestCheckGetsNewPacks(t *testing.T) {
	clk := clockwork.NewFakeClock()
	var got []Pack
	r := &fakeRunner{script: func(op Op, n int) Outcome {
		switch op.Name {
		case OpBackup:
			return Outcome{Entry: journal.Entry{Snapshot: "s1"}, NewPacks: []Pack{{ID: "aa", Size: 10}, {ID: "bb", Size: 20}}}
		case OpCheck:
			got = op.Packs
			if op.Snapshot != "s1" {
				t.Errorf("check of snapshot %q", op.Snapshot)
			}
		}
		return Outcome{}
	}}
	d, _, _ := setup(t, testConfig, r, clk)
	if _, err := d.RunJob(context.Background(), "one", "test"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "aa" || got[1].Size != 20 {
		t.Fatalf("check got packs %+v", got)
	}
}
