package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/config"
	"github.com/einvault/einvault/internal/journal"
	"github.com/einvault/einvault/internal/notify"
	"github.com/jonboulle/clockwork"
)

// fakeRunner scripts operation outcomes; it is the only fake here: the
// journal and the state are the real SQLite ones.
type fakeRunner struct {
	mu      sync.Mutex
	calls   []string
	script  func(op Op, n int) Outcome
	active  atomic.Int32
	maxSeen atomic.Int32
	hold    time.Duration
}

func (f *fakeRunner) Run(ctx context.Context, cfg *config.Config, op Op) Outcome {
	n := f.active.Add(1)
	defer f.active.Add(-1)
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	name := op.Name
	if op.Job != nil {
		name += ":" + op.Job.Name
	}
	f.calls = append(f.calls, name)
	k := 0
	for _, c := range f.calls {
		if c == name {
			k++
		}
	}
	f.mu.Unlock()
	if f.hold > 0 && op.Name == OpBackup {
		time.Sleep(f.hold) // real time: lets concurrent runs overlap
	}
	if f.script != nil {
		return f.script(op, k)
	}
	return Outcome{}
}

type events struct {
	mu  sync.Mutex
	evs []notify.Event
}

func (e *events) Notify(_ context.Context, ev notify.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	return nil
}

func (e *events) kinds() []notify.Kind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []notify.Kind
	for _, ev := range e.evs {
		out = append(out, ev.Kind)
	}
	return out
}

const testConfig = `repository: {location: /r}
sources:
  a: {paths: [/a]}
jobs:
  one: {class: invoices, sources: [a], schedule: hourly}
  two: {class: logs, sources: [a], schedule: hourly, verify: "off"}
  three: {class: logs, sources: [a], schedule: hourly, verify: "off"}
daemon:
  concurrency: 1
  retries: 2
  backoff: 1m
  retention_schedule: manual
  prune_schedule: manual
`

func setup(t *testing.T, yaml string, r *fakeRunner, clk clockwork.Clock) (*Daemon, *journal.Journal, *events) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	j, err := journal.Open(context.Background(), t.TempDir(), journal.Options{SpoolDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	ev := &events{}
	d, err := New(context.Background(), cfg, Options{Clock: clk, Logger: log, Runner: r, Journal: j, Notifier: ev,
		Load: func() (*config.Config, error) { return nil, errors.New("line 3: broken") }})
	if err != nil {
		t.Fatal(err)
	}
	return d, j, ev
}

func entries(t *testing.T, j *journal.Journal, f journal.Filter) []journal.Entry {
	t.Helper()
	es, err := j.List(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestRunJobRetriesTransientFailures(t *testing.T) {
	clk := clockwork.NewFakeClockAt(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	r := &fakeRunner{script: func(op Op, n int) Outcome {
		if op.Name == OpBackup && n <= 2 {
			return Outcome{Entry: journal.Entry{ExitCode: 1, Error: "connection reset"}, Retryable: true}
		}
		return Outcome{Entry: journal.Entry{Kind: "incremental", Files: 3, BytesRead: 300, BytesAdded: 30}}
	}}
	d, j, ev := setup(t, testConfig, r, clk)
	done := make(chan JobResult)
	go func() {
		res, err := d.RunJob(context.Background(), "one", "root@host")
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	// Two backoffs: 1m, then 2m.
	for _, wait := range []time.Duration{time.Minute, 2 * time.Minute} {
		if err := clk.BlockUntilContext(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		clk.Advance(wait)
	}
	res := <-done
	if res.Result != journal.ResultOK || res.Attempts != 3 {
		t.Fatalf("result %+v", res)
	}
	es := entries(t, j, journal.Filter{})
	// Failed attempts that were retried are journaled too.
	var ops []string
	for _, e := range es {
		ops = append(ops, e.Op+"/"+e.Result)
	}
	want := []string{"backup/failed", "backup/failed", "backup/ok", "check/ok"}
	if len(ops) != len(want) {
		t.Fatalf("journal %v, want %v", ops, want)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Fatalf("journal %v, want %v", ops, want)
		}
	}
	if es[2].StartedBy != "root@host" || es[2].Files != 3 || es[2].Job != "one" {
		t.Errorf("entry %+v", es[2])
	}
	if k := ev.kinds(); len(k) != 0 {
		t.Errorf("events for a job that succeeded on retry: %v", k)
	}
	st, _ := d.State().Job(context.Background(), "one")
	if st.LastResult != journal.ResultOK || st.Running {
		t.Errorf("state %+v", st)
	}
}

func TestRunJobFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		script   func(op Op, n int) Outcome
		result   string
		attempts int
		kind     notify.Kind
	}{
		{"permanent", func(op Op, n int) Outcome {
			if op.Name == OpBackup {
				return Outcome{Entry: journal.Entry{ExitCode: 12, Error: "wrong password"}}
			}
			return Outcome{}
		}, journal.ResultFailed, 1, notify.KindFailure},
		{"preflight", func(op Op, n int) Outcome {
			if op.Name == OpPreflight {
				return Outcome{Entry: journal.Entry{ExitCode: 1, Error: "source a: no such file"}, Retryable: false}
			}
			return Outcome{}
		}, journal.ResultFailed, 1, notify.KindFailure},
		{"verification", func(op Op, n int) Outcome {
			if op.Name == OpCheck {
				return Outcome{Entry: journal.Entry{ExitCode: 5, Error: "pack damaged"}}
			}
			return Outcome{}
		}, journal.ResultFailed, 1, notify.KindFailure},
		{"degraded copy", func(op Op, n int) Outcome {
			if op.Name == OpBackup {
				return Outcome{Entry: journal.Entry{ExitCode: 4, Error: "copy nas unreachable"}}
			}
			return Outcome{}
		}, journal.ResultDegraded, 1, notify.KindDegraded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, j, ev := setup(t, testConfig, &fakeRunner{script: tc.script}, clockwork.NewFakeClock())
			res, err := d.RunJob(context.Background(), "one", "schedule")
			if err != nil {
				t.Fatal(err)
			}
			if res.Result != tc.result || res.Attempts != tc.attempts || res.Error == "" {
				t.Errorf("result %+v", res)
			}
			if k := ev.kinds(); len(k) != 1 || k[0] != tc.kind {
				t.Errorf("events %v, want one %s", k, tc.kind)
			}
			if n := len(entries(t, j, journal.Filter{Failed: true})); n != 1 {
				t.Errorf("%d failed journal entries, want 1", n)
			}
		})
	}
	d, _, _ := setup(t, testConfig, &fakeRunner{}, clockwork.NewFakeClock())
	if _, err := d.RunJob(context.Background(), "nope", "x"); err == nil {
		t.Error("unknown job accepted")
	}
}

func TestReloadKeepsLastGoodConfig(t *testing.T) {
	d, _, ev := setup(t, testConfig, &fakeRunner{}, clockwork.NewFakeClock())
	old := d.Config()
	if d.Reload(context.Background()) {
		t.Fatal("a broken config was accepted")
	}
	if d.Config() != old {
		t.Fatal("the config in force changed")
	}
	if k := ev.kinds(); len(k) != 1 || k[0] != notify.KindFailure {
		t.Errorf("bad reload not notified: %v", k)
	}
}

// TestServeMissedRunsWindowsAndLimit drives the daemon's loop with a fake
// clock: runs missed while it was down are reported and run once, the
// concurrency limit holds, and everything is in the journal and state.
func TestServeMissedRunsAndLimit(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)
	clk := clockwork.NewFakeClockAt(t0)
	r := &fakeRunner{hold: 30 * time.Millisecond}
	d, j, ev := setup(t, testConfig, r, clk)
	ctx := context.Background()
	// "one" last ran at 07:10: 08:00, 09:00 and 10:00 were due.
	if err := d.State().Started(ctx, "one", t0.Add(-200*time.Minute)); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error)
	go func() { served <- d.Serve(sctx, nil) }()
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait("the catch-up run", func() bool { return len(entries(t, j, journal.Filter{Job: "one", Op: "check"})) == 1 })
	missed := entries(t, j, journal.Filter{Job: "one", Failed: true})
	if len(missed) != 1 || missed[0].Result != journal.ResultMissed {
		t.Fatalf("missed runs not journaled: %+v", missed)
	}
	if k := ev.kinds(); len(k) != 1 || k[0] != notify.KindFailure {
		t.Errorf("missed runs not notified: %v", k)
	}
	// 11:00: all three are due; one runs at a time.
	clk.Advance(30 * time.Minute)
	wait("three jobs at 11:00", func() bool {
		return len(entries(t, j, journal.Filter{Op: "backup", Since: t0.Add(29 * time.Minute)})) == 3
	})
	if m := r.maxSeen.Load(); m != 1 {
		t.Errorf("%d jobs ran at once with concurrency 1", m)
	}
	wait("state", func() bool {
		st, _ := d.State().Job(ctx, "three")
		return st.NextRun.Equal(t0.Add(90*time.Minute)) && st.LastResult == journal.ResultOK
	})
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	s, ok, err := d.State().GetStatus(ctx)
	if err != nil || !ok || !s.Stopped {
		t.Errorf("status after stop: %+v %v %v", s, ok, err)
	}
}

// TestJournalFullJobsStillRun: with the state directory refusing writes,
// jobs still run, the missing entries are alerted and queued, and written
// once the directory works again.
func TestJournalFullJobsStillRun(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig), "test.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var full atomic.Bool
	j, err := journal.Open(context.Background(), t.TempDir(), journal.Options{SpoolDir: t.TempDir(), Logger: log,
		FailWrite: func(string) error {
			if full.Load() {
				return errors.New("no space left on device")
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ev := &events{}
	r := &fakeRunner{}
	d, err := New(context.Background(), cfg, Options{Clock: clockwork.NewFakeClock(), Logger: log, Runner: r, Journal: j, Notifier: ev})
	if err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	res, err := d.RunJob(context.Background(), "two", "schedule")
	if err != nil || res.Result != journal.ResultOK {
		t.Fatalf("job with a full state directory: %+v %v", res, err)
	}
	if len(r.calls) < 2 {
		t.Fatalf("the backup did not run: %v", r.calls)
	}
	if j.Pending() != 1 {
		t.Fatalf("%d entries queued, want 1", j.Pending())
	}
	if k := ev.kinds(); len(k) != 1 || k[0] != notify.KindDegraded {
		t.Errorf("journal failure not alerted: %v", k)
	}
	full.Store(false)
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if es := entries(t, j, journal.Filter{Job: "two"}); len(es) != 1 || es[0].ID == 0 {
		t.Errorf("queued entry not written: %+v", es)
	}
}
