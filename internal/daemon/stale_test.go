package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/journal"
	"github.com/einvault/einvault/internal/notify"
	"github.com/jonboulle/clockwork"
)

func TestCheckStale(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clk := clockwork.NewFakeClockAt(t0)
	d, j, ev := setup(t, testConfig, &fakeRunner{}, clk)
	ctx := context.Background()
	stale := func() []notify.Event {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		var out []notify.Event
		for _, e := range ev.evs {
			if e.Kind == notify.KindStale {
				out = append(out, e)
			}
		}
		return out
	}
	backup := func(job, result string, end time.Time) {
		if _, err := j.Record(ctx, journal.Entry{Op: OpBackup, Job: job, Start: end.Add(-time.Minute), End: end, Result: result}); err != nil {
			t.Fatal(err)
		}
	}
	// Job one is class invoices (RPO 2h), two and three are logs (2h).
	backup("one", journal.ResultOK, t0)
	backup("two", journal.ResultDegraded, t0)
	backup("three", journal.ResultOK, t0)
	clk.Advance(time.Hour)
	d.CheckStale(ctx)
	if n := len(stale()); n != 0 {
		t.Fatalf("%d stale alerts within the RPO", n)
	}
	backup("one", journal.ResultFailed, clk.Now()) // a failure does not count
	backup("three", journal.ResultOK, clk.Now())
	clk.Advance(90 * time.Minute)
	d.CheckStale(ctx)
	got := stale()
	if len(got) != 2 || got[0].Job != "one" || got[1].Job != "two" || got[0].Fields["rpo"] != "2h0m0s" || got[0].Severity != notify.SeverityCritical {
		t.Fatalf("stale alerts: %+v", got)
	}
	clk.Advance(10 * time.Minute)
	d.CheckStale(ctx)
	if n := len(stale()); n != 2 {
		t.Fatalf("a stale job alerted twice in one episode: %d", n)
	}
	backup("one", journal.ResultOK, clk.Now())
	d.CheckStale(ctx)
	clk.Advance(3 * time.Hour)
	d.CheckStale(ctx)
	got = stale()
	// one: new episode after its success; two still in its first episode;
	// three: first episode now.
	if len(got) != 4 || got[2].Job != "one" || got[3].Job != "three" {
		t.Fatalf("after recovery and a new gap: %+v", got)
	}
}
