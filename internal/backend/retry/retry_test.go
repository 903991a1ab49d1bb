package retry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/backendtest"
	"github.com/einvault/einvault/internal/backend/fault"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/einvault/einvault/internal/backend/retry"
)

// sleeper records the waits instead of sleeping.
type sleeper struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.delays = append(s.delays, d)
	s.mu.Unlock()
	return ctx.Err()
}

func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func TestConformance(t *testing.T) {
	backendtest.RunConformance(t, func(t *testing.T) backend.Backend {
		return retry.New(mem.New(), retry.Options{Sleep: noSleep})
	})
}

// TestConformanceFlaky runs the suite with the first call of every method
// failing transiently: retries must make the faults invisible.
func TestConformanceFlaky(t *testing.T) {
	backendtest.RunConformance(t, func(t *testing.T) backend.Backend {
		fb := fault.New(mem.New())
		flaky := backend.Transient(errors.New("connection reset"))
		for _, op := range []fault.Op{fault.OpSave, fault.OpLoad, fault.OpStat, fault.OpList, fault.OpRemove} {
			fb.Add(fault.Rule{Op: op, Nth: 1, Err: flaky})
			fb.Add(fault.Rule{Op: op, Nth: 3, Err: flaky})
		}
		fb.Add(fault.Rule{Op: fault.OpSave, Nth: 5, Action: fault.Interrupt, At: 7, Err: flaky})
		return retry.New(fb, retry.Options{Sleep: noSleep, MaxAttempts: 3})
	})
}

var h1 = backend.Handle{Type: backend.PackFile, Name: "aa01"}

func TestRetryPolicy(t *testing.T) {
	ctx := context.Background()
	transient := backend.Transient(errors.New("timeout"))
	permanent := errors.New("access denied")
	tests := []struct {
		name      string
		failures  int   // how many first calls fail
		err       error // with this error
		wantCalls int
		wantErr   error // nil: success
	}{
		{"no failure", 0, nil, 1, nil},
		{"two transient", 2, transient, 3, nil},
		{"transient until the last attempt", 3, transient, 4, nil},
		{"transient beyond max attempts", 10, transient, 4, transient},
		{"permanent", 10, permanent, 1, permanent},
		{"transient not-exist", 10, backend.Transient(backend.ErrNotExist), 1, backend.ErrNotExist},
	}
	ops := []struct {
		op  fault.Op
		run func(backend.Backend) error
	}{
		{fault.OpSave, func(be backend.Backend) error { return be.Save(ctx, h1, strings.NewReader("hello"), 5) }},
		{fault.OpLoad, func(be backend.Backend) error { _, err := backend.LoadAll(ctx, be, h1); return err }},
		{fault.OpStat, func(be backend.Backend) error { _, err := be.Stat(ctx, h1); return err }},
		{fault.OpList, func(be backend.Backend) error {
			return be.List(ctx, backend.PackFile, func(backend.FileInfo) error { return nil })
		}},
		{fault.OpRemove, func(be backend.Backend) error { return be.Remove(ctx, h1) }},
	}
	for _, op := range ops {
		for _, tc := range tests {
			t.Run(string(op.op)+"/"+tc.name, func(t *testing.T) {
				m := mem.New()
				if err := m.Save(ctx, h1, strings.NewReader("hello"), 5); err != nil {
					t.Fatal(err)
				}
				fb := fault.New(m)
				for i := range tc.failures {
					fb.Add(fault.Rule{Op: op.op, Nth: i + 1, Err: tc.err})
				}
				var s sleeper
				var retries int
				be := retry.New(fb, retry.Options{MaxAttempts: 4, Sleep: s.sleep,
					OnRetry: func(string, backend.Handle, int, time.Duration, error) { retries++ }})
				err := op.run(be)
				if tc.wantErr == nil && err != nil {
					t.Fatalf("got %v, want success", err)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want an error matching %v", err, tc.wantErr)
				}
				if got := fb.Calls(op.op); got != tc.wantCalls {
					t.Errorf("%d calls, want %d", got, tc.wantCalls)
				}
				if len(s.delays) != tc.wantCalls-1 || retries != tc.wantCalls-1 {
					t.Errorf("%d waits and %d OnRetry calls, want %d", len(s.delays), retries, tc.wantCalls-1)
				}
				if tc.wantErr == transient && !strings.Contains(err.Error(), "giving up after 4 attempts") {
					t.Errorf("error %q does not say it gave up", err)
				}
			})
		}
	}
}

func TestBackoff(t *testing.T) {
	var s sleeper
	fb := fault.New(mem.New())
	fb.FailSave(0, "", backend.Transient(errors.New("busy")))
	be := retry.New(fb, retry.Options{MaxAttempts: 7, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second, Sleep: s.sleep})
	if err := be.Save(context.Background(), h1, strings.NewReader("x"), 1); err == nil {
		t.Fatal("Save succeeded")
	}
	nominal := []time.Duration{100, 200, 400, 800, 1000, 1000}
	if len(s.delays) != len(nominal) {
		t.Fatalf("waits %v, want %d", s.delays, len(nominal))
	}
	for i, n := range nominal {
		n *= time.Millisecond
		if got := be.Delay(i + 1); got != n {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, n)
		}
		if d := s.delays[i]; d < n/2 || d > n {
			t.Errorf("wait %d = %v, want within [%v, %v]", i+1, d, n/2, n)
		}
	}
}

func TestContextCanceledWhileWaiting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fb := fault.New(mem.New())
	fb.FailSave(0, "", backend.Transient(errors.New("busy")))
	be := retry.New(fb, retry.Options{Sleep: func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}})
	err := be.Save(ctx, h1, strings.NewReader("x"), 1)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if got := fb.Calls(fault.OpSave); got != 1 {
		t.Errorf("%d attempts after cancel, want 1", got)
	}
}

func TestRealSleepHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	fb := fault.New(mem.New())
	fb.FailSave(0, "", backend.Transient(errors.New("busy")))
	be := retry.New(fb, retry.Options{BaseDelay: time.Hour})
	start := time.Now()
	err := be.Save(ctx, h1, strings.NewReader("x"), 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want DeadlineExceeded", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Save waited %v despite the deadline", time.Since(start))
	}
}

// onlyReader hides every method but Read.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestSaveRereadsSource(t *testing.T) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	flaky := backend.Transient(errors.New("connection reset"))
	tests := []struct {
		name      string
		src       func() io.Reader
		want      []byte
		maxBuffer int64
		wantErr   bool
	}{
		{"seeker", func() io.Reader { return bytes.NewReader(data) }, data, 0, false},
		{"seeker not at start", func() io.Reader {
			r := bytes.NewReader(data)
			_, _ = r.Seek(10, io.SeekStart)
			return r
		}, data[10:], 0, false},
		{"plain reader buffered", func() io.Reader { return onlyReader{bytes.NewReader(data)} }, data, 0, false},
		{"plain reader too large to buffer", func() io.Reader { return onlyReader{bytes.NewReader(data)} }, data, 100, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mem.New()
			fb := fault.New(m)
			fb.InterruptSave(1, "", 5000, flaky)
			be := retry.New(fb, retry.Options{Sleep: noSleep, MaxBuffer: tc.maxBuffer})
			err := be.Save(ctx, h1, tc.src(), int64(len(tc.want)))
			if tc.wantErr {
				if !errors.Is(err, flaky) || fb.Calls(fault.OpSave) != 1 {
					t.Errorf("got %v after %d attempts, want the injected error after 1", err, fb.Calls(fault.OpSave))
				}
				return
			}
			if err != nil {
				t.Fatalf("Save: %v", err)
			}
			got, err := backend.LoadAll(ctx, m, h1)
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("stored %d bytes (%v), want the %d saved", len(got), err, len(tc.want))
			}
			if fb.Calls(fault.OpSave) != 2 {
				t.Errorf("%d attempts, want 2", fb.Calls(fault.OpSave))
			}
		})
	}
}

// removeThenFail removes the file and then reports a transient failure,
// like a store whose response was lost.
type removeThenFail struct {
	backend.Backend
	failed bool
}

func (r *removeThenFail) Remove(ctx context.Context, h backend.Handle) error {
	err := r.Backend.Remove(ctx, h)
	if err == nil && !r.failed {
		r.failed = true
		return backend.Transient(errors.New("response lost"))
	}
	return err
}

func TestRemoveLostResponse(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	if err := m.Save(ctx, h1, strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	be := retry.New(&removeThenFail{Backend: m}, retry.Options{Sleep: noSleep})
	err := be.Remove(ctx, h1)
	if !errors.Is(err, backend.ErrNotExist) || !strings.Contains(err.Error(), "earlier attempt") {
		t.Errorf("Remove: %v, want ErrNotExist noting the earlier attempt", err)
	}
	if err := be.Remove(ctx, h1); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("Remove of missing file: %v, want ErrNotExist", err)
	}
}

// failMidList delivers one entry and then fails transiently.
type failMidList struct {
	backend.Backend
	calls int
}

func (f *failMidList) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	f.calls++
	if err := fn(backend.FileInfo{Name: "aa01", Size: 1}); err != nil {
		return err
	}
	return backend.Transient(errors.New("connection reset"))
}

func TestListNotRetriedAfterDelivery(t *testing.T) {
	fl := &failMidList{Backend: mem.New()}
	be := retry.New(fl, retry.Options{Sleep: noSleep})
	n := 0
	err := be.List(context.Background(), backend.PackFile, func(backend.FileInfo) error { n++; return nil })
	if !backend.IsTransient(err) || fl.calls != 1 || n != 1 {
		t.Errorf("List: %v after %d calls delivering %d entries; want the transient error after 1 call", err, fl.calls, n)
	}

	// A transient error from fn itself is the caller's, never retried.
	fnErr := backend.Transient(errors.New("caller busy"))
	fl.calls = 0
	err = be.List(context.Background(), backend.PackFile, func(backend.FileInfo) error { return fnErr })
	if err != fnErr || fl.calls != 1 {
		t.Errorf("List: %v after %d calls, want fn's error unchanged after 1", err, fl.calls)
	}
}

func TestUnwrap(t *testing.T) {
	m := mem.New()
	if got := retry.New(m, retry.Options{}).Unwrap(); got != backend.Backend(m) {
		t.Errorf("Unwrap = %v", got)
	}
}
