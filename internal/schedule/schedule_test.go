package schedule

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind Kind
		next time.Time // after t0+1m
		err  bool
	}{
		{"hourly", KindCron, t0.Add(time.Hour), false},
		{"daily", KindCron, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), false},
		{"*/15 * * * *", KindCron, t0.Add(15 * time.Minute), false},
		{"30 */10 * * * *", KindCron, t0.Add(10*time.Minute + 30*time.Second), false},
		{"@every 10m", KindInterval, t0.Add(11 * time.Minute), false},
		{"every 90s", KindInterval, t0.Add(150 * time.Second), false},
		{"on change", KindChange, time.Time{}, false},
		{"on change 5s", KindChange, time.Time{}, false},
		{"manual", KindManual, time.Time{}, false},
		{"", "", time.Time{}, true},
		{"every 0s", "", time.Time{}, true},
		{"every soon", "", time.Time{}, true},
		{"on change never", "", time.Time{}, true},
		{"61 * * * *", "", time.Time{}, true},
		{"fortnightly", "", time.Time{}, true},
	} {
		sp, err := Parse(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if err != nil {
			continue
		}
		if sp.Kind != tc.kind {
			t.Errorf("%q: kind %s, want %s", tc.in, sp.Kind, tc.kind)
		}
		if got := sp.Next(t0.Add(time.Minute)); !got.Equal(tc.next) {
			t.Errorf("%q: next %s, want %s", tc.in, got, tc.next)
		}
	}
	if sp, _ := Parse("on change 5s"); sp.Debounce != 5*time.Second {
		t.Errorf("debounce %s", sp.Debounce)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("hourly")
	f.Add("on change 1m")
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := Parse(s)
		if err != nil {
			return
		}
		if n := sp.Next(t0); sp.Timed() && !n.IsZero() && !n.After(t0) {
			t.Fatalf("%q: next %s not after %s", s, n, t0)
		}
	})
}

func mustParse(t *testing.T, s string) Spec {
	t.Helper()
	sp, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestPlanRunsMissesAndWindows(t *testing.T) {
	hourly := mustParse(t, "hourly")
	win := Window{Name: "patch", Start: mustParse(t, "30 11 * * *"), Duration: 2 * time.Hour, Jobs: []string{"db"}}
	p := NewPlan([]Window{win})
	now := t0.Add(5 * time.Minute) // 10:05
	p.Add("files", hourly, t0, now)
	p.Add("db", hourly, t0.Add(-3*time.Hour), now) // last ran 07:00: 08, 09, 10 were due
	p.Add("never", mustParse(t, "every 10m"), time.Time{}, now)
	p.Add("watch", mustParse(t, "on change"), time.Time{}, now)

	due := p.Due(now)
	if len(due) != 1 || due[0].Job != "db" || due[0].Missed != 2 || !due[0].Scheduled.Equal(t0.Add(-2*time.Hour)) {
		t.Fatalf("after downtime: %+v", due)
	}
	if got := p.Next(); !got.Equal(now.Add(10 * time.Minute)) {
		t.Errorf("next wake %s", got)
	}
	if !p.NextRun("watch").IsZero() {
		t.Errorf("on-change job has a clock time")
	}
	// 11:00: both hourly jobs are due.
	due = p.Due(t0.Add(time.Hour))
	names := map[string]Due{}
	for _, d := range due {
		names[d.Job] = d
	}
	if _, ok := names["files"]; !ok || names["db"].Missed != 0 {
		t.Fatalf("11:00: %+v", due)
	}
	// 12:00 is inside the db window (11:30-13:30): files runs, db waits.
	due = p.Due(t0.Add(2 * time.Hour))
	if len(due) != 2 && (len(due) != 1 || due[0].Job == "db") {
		t.Fatalf("12:00: %+v", due)
	}
	for _, d := range due {
		if d.Job == "db" {
			t.Fatalf("db ran inside its window: %+v", due)
		}
	}
	if got := p.NextRun("db"); !got.Equal(t0.Add(3*time.Hour + 30*time.Minute)) {
		t.Fatalf("db held until %s, want 13:30", got)
	}
	// 13:30: the window closes; db runs once, deferred, nothing missed.
	due = p.Due(t0.Add(3*time.Hour + 30*time.Minute))
	found := false
	for _, d := range due {
		if d.Job == "db" {
			found = true
			if !d.Deferred || d.Missed != 0 {
				t.Errorf("db after window: %+v", d)
			}
		}
	}
	if !found {
		t.Fatalf("db did not run after the window: %+v", due)
	}
	if got := p.NextRun("db"); !got.Equal(t0.Add(4 * time.Hour)) {
		t.Errorf("db next %s, want 14:00", got)
	}
}

func TestWindowActive(t *testing.T) {
	w := Window{Start: mustParse(t, "0 1 * * 6"), Duration: 3 * time.Hour} // Saturdays 01:00-04:00
	sat := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at     time.Duration
		active bool
	}{{0, false}, {time.Hour, true}, {2 * time.Hour, true}, {4 * time.Hour, false}, {30 * time.Minute, false}} {
		if ok, _ := w.ActiveAt(sat.Add(tc.at)); ok != tc.active {
			t.Errorf("at +%s: active %v", tc.at, ok)
		}
	}
	// Chained windows.
	w2 := Window{Start: mustParse(t, "0 3 * * 6"), Duration: 2 * time.Hour, Jobs: []string{"a"}}
	if got := HeldUntil([]Window{w, w2}, "a", sat.Add(90*time.Minute)); !got.Equal(sat.Add(5 * time.Hour)) {
		t.Errorf("chained: held until %s", got)
	}
	if got := HeldUntil([]Window{w2}, "b", sat.Add(3*time.Hour)); !got.IsZero() {
		t.Errorf("window held a job it does not name")
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(2)
	first, second, third := l.TryAcquire(), l.TryAcquire(), l.TryAcquire()
	if !first || !second || third {
		t.Fatal("limit of 2 not enforced")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if l.Acquire(ctx) == nil {
		t.Fatal("acquire past the limit succeeded")
	}
	l.Release()
	if l.InUse() != 1 || l.Acquire(context.Background()) != nil {
		t.Fatal("release did not free a slot")
	}
}

func TestDebounceWithFakeClock(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := clockwork.NewFakeClock()
	db := Debounce(ctx, clk, 10*time.Second)
	for i := 0; i < 5; i++ {
		db.Kick()
		if err := clk.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clk.Advance(5 * time.Second) // never quiet long enough
		select {
		case <-db.C:
			t.Fatal("fired during a burst")
		default:
		}
	}
	clk.Advance(5 * time.Second)
	select {
	case <-db.C:
	case <-time.After(5 * time.Second):
		t.Fatal("did not fire after the quiet period")
	}
}

func TestWatchFiles(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	clk := clockwork.NewFakeClock()
	db, err := Watch(ctx, clk, []string{dir}, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "new")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	<-db.C
	// A file in the new directory is seen too (it is watched).
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		if err := os.WriteFile(filepath.Join(sub, "f"), []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := clk.BlockUntilContext(wctx, 1)
		wcancel()
		if err == nil {
			break
		}
		select {
		case <-deadline:
			t.Fatal("no event for a file in a new directory")
		default:
		}
	}
	clk.Advance(time.Second)
	<-db.C
}
