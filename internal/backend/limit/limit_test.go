package limit_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/backendtest"
	"github.com/einvault/einvault/internal/backend/limit"
	"github.com/einvault/einvault/internal/backend/mem"
)

// fakeClock advances only when someone sleeps.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept += d
	return nil
}

func (c *fakeClock) Slept() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slept
}

func TestConformance(t *testing.T) {
	for _, o := range []limit.Options{
		{},
		{Connections: 2, UploadBPS: 1 << 30, DownloadBPS: 1 << 30},
	} {
		backendtest.RunConformance(t, func(t *testing.T) backend.Backend { return limit.New(mem.New(), o) })
	}
}

// The time a transfer takes is its size beyond the first second's burst
// divided by the rate.
func TestBandwidth(t *testing.T) {
	tests := []struct {
		name  string
		rate  int64
		size  int
		chunk int // caller's read size
		want  time.Duration
	}{
		{"within burst", 1000, 1000, 4096, 0},
		{"five seconds", 1000, 6000, 4096, 5 * time.Second},
		{"small reads", 1000, 3000, 7, 2 * time.Second},
		{"fast link", 1 << 20, 3 << 20, 1 << 20, 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, dir := range []string{"upload", "download"} {
				clk := newFakeClock()
				o := limit.Options{Clock: clk}
				if dir == "upload" {
					o.UploadBPS = tc.rate
				} else {
					o.DownloadBPS = tc.rate
				}
				be := limit.New(mem.New(), o)
				ctx := context.Background()
				data := bytes.Repeat([]byte{7}, tc.size)
				h := backend.Handle{Type: backend.IndexFile, Name: "f"}
				if err := be.Save(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
					t.Fatal(err)
				}
				if dir == "download" {
					rd, err := be.Load(ctx, h, 0, 0)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(&chunkReader{rd, tc.chunk})
					rd.Close()
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("download: %d bytes, %v", len(got), err)
					}
				}
				if got := clk.Slept(); (got - tc.want).Abs() > 10*time.Millisecond {
					t.Errorf("%s of %d bytes at %d B/s waited %v, want %v", dir, tc.size, tc.rate, got, tc.want)
				}
			}
		})
	}
}

type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// Concurrent transfers share one rate.
func TestBandwidthShared(t *testing.T) {
	clk := newFakeClock()
	be := limit.New(mem.New(), limit.Options{UploadBPS: 1000, Clock: clk})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := bytes.Repeat([]byte{1}, 2000)
			h := backend.Handle{Type: backend.IndexFile, Name: string(rune('a' + i))}
			if err := be.Save(context.Background(), h, bytes.NewReader(data), 2000); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// 8000 bytes at 1000 B/s with a 1000-byte burst: 7 s of waiting in
	// total time. The fake clock adds every sleeper's wait, so the sum
	// is at least that.
	if got := clk.Slept(); got < 7*time.Second {
		t.Errorf("4 concurrent uploads of 2000 bytes at 1000 B/s waited %v in total, want >= 7s", got)
	}
}

// With the real clock, a limited upload takes about as long as it
// should (tolerances for a busy machine).
func TestBandwidthRealClock(t *testing.T) {
	be := limit.New(mem.New(), limit.Options{UploadBPS: 200 << 10})
	data := make([]byte, 300<<10) // 1 s burst + 0.5 s
	start := time.Now()
	if err := be.Save(context.Background(), backend.Handle{Type: backend.IndexFile, Name: "x"}, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
		t.Errorf("300 KiB at 200 KiB/s took %v, want about 0.5 s", d)
	}
}

func TestBandwidthCanceled(t *testing.T) {
	be := limit.New(mem.New(), limit.Options{UploadBPS: 1000})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	data := make([]byte, 100000) // 99 s at this rate
	start := time.Now()
	err := be.Save(ctx, backend.Handle{Type: backend.IndexFile, Name: "x"}, bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Save: got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancellation took %v", d)
	}
	if _, err := be.Stat(context.Background(), backend.Handle{Type: backend.IndexFile, Name: "x"}); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("a canceled save left a file: %v", err)
	}
}

// blockingBackend counts concurrent Saves and Loads and holds them until
// released.
type blockingBackend struct {
	backend.Backend
	cur, peak atomic.Int32
	gate      chan struct{}
}

func (b *blockingBackend) enter() {
	n := b.cur.Add(1)
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	<-b.gate
	b.cur.Add(-1)
}

func (b *blockingBackend) Save(ctx context.Context, h backend.Handle, rd io.Reader, size int64) error {
	b.enter()
	return b.Backend.Save(ctx, h, rd, size)
}

func TestConnections(t *testing.T) {
	tests := []struct{ limit, ops, wantPeak int }{
		{1, 5, 1},
		{3, 8, 3},
		{10, 4, 4},
	}
	for _, tc := range tests {
		inner := &blockingBackend{Backend: mem.New(), gate: make(chan struct{})}
		be := limit.New(inner, limit.Options{Connections: tc.limit})
		var wg sync.WaitGroup
		for i := range tc.ops {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := backend.Handle{Type: backend.IndexFile, Name: string(rune('a' + i))}
				if err := be.Save(context.Background(), h, bytes.NewReader(nil), 0); err != nil {
					t.Error(err)
				}
			}()
		}
		// Let the goroutines pile up, then release them one by one.
		for range tc.ops {
			time.Sleep(5 * time.Millisecond)
			inner.gate <- struct{}{}
		}
		wg.Wait()
		if got := int(inner.peak.Load()); got != tc.wantPeak {
			t.Errorf("limit %d, %d operations: peak concurrency %d, want %d", tc.limit, tc.ops, got, tc.wantPeak)
		}
	}
}

// A Load holds its slot until the reader is closed; a waiting operation
// gives up when its context ends; List may call back into the backend.
func TestConnectionsLoadAndList(t *testing.T) {
	be := limit.New(mem.New(), limit.Options{Connections: 1})
	ctx := context.Background()
	h := backend.Handle{Type: backend.IndexFile, Name: "a"}
	if err := be.Save(ctx, h, bytes.NewReader([]byte("abc")), 3); err != nil {
		t.Fatal(err)
	}
	rd, err := be.Load(ctx, h, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := be.Stat(short, h); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stat while the only slot is held by a reader: got %v, want DeadlineExceeded", err)
	}
	rd.Close()
	rd.Close() // a second Close must not free a slot twice
	if _, err := be.Stat(ctx, h); err != nil {
		t.Fatalf("Stat after Close: %v", err)
	}
	err = be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
		_, err := be.Stat(ctx, backend.Handle{Type: backend.IndexFile, Name: fi.Name})
		return err
	})
	if err != nil {
		t.Fatalf("List calling Stat with one connection: %v", err)
	}
}
